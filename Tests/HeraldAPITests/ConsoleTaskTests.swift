import Foundation
import HTTPTypes
import HeraldAPI
import HeraldAppTestSupport
import HeraldCore
import HeraldDNS
import HeraldDelivery
import HeraldSMTP
import HeraldTestSupport
import Testing

/// The test send and batch tasks in the console (issue #19): one message through the accepting service of the REST
/// single send, a batch started from a template, a list and a sender and its progress watched to the end; refusals
/// show the API's message; a ReadOnly user sees no form and a forged post is refused.
@Suite struct ConsoleTaskTests {
    static let form = "application/x-www-form-urlencoded"

    static func encoded(_ fields: KeyValuePairs<String, String>) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return fields.map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")" }.joined(separator: "&")
    }

    /// The text of a page as HTML escapes it (for comparing the API's messages).
    static func escaped(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;").replacingOccurrences(of: "'", with: "&#39;")
    }

    @Test func testSendIsAcceptedOrRefusedAsTheAPIWould() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await TestApp.run(dnsPort: dns.port) { app in
                let (tenant, token, keyID, secret) = try await app.sendingTenant(dns)
                let session = try await ConsoleTests.signIn(app, keyID: keyID, secret: secret)
                let cookie: HTTPFields = [.cookie: "herald_console=\(session)"]
                let page = try await app.request(.get, "/console/send-test", contentType: nil, headers: cookie)
                #expect(page.status == 200 && page.body.contains("id=\"send-test\"") && page.body.contains("<option value=\"app@example.test\""),
                        "\(page.body)")
                let csrf = try ConsoleTests.csrf(page)
                let fields: KeyValuePairs<String, String> = ["csrf": csrf, "from": "app@example.test", "to": "ann@example.org", "subject": "Hello",
                                                             "text": "Hi Ann", "html": ""]
                #expect(try await app.request(.post, "/console/send-test", raw: "from=app%40example.test&to=ann%40example.org&subject=x&text=y",
                                              contentType: Self.form, headers: cookie).status == 403, "no CSRF token")
                let sent = try await app.request(.post, "/console/send-test", raw: Self.encoded(fields), contentType: Self.form, headers: cookie)
                #expect(sent.status == 200 && sent.body.contains("Accepted.") && sent.body.contains("id=\"send-test-result\""), "\(sent.body)")
                let messageID = try #require(sent.body.range(of: "id=\"sent-message\" href=\"/console/messages/").map {
                    String(sent.body[$0.upperBound...].prefix { $0 != "\"" })
                }, "\(sent.body)")
                let message = try await app.request(.get, "/v1/messages/\(messageID)", token: token)
                #expect(message.status == 200 && message.body.contains("ann@example.org") && message.body.contains("Hello"), "\(message.body)")

                // Refused as the REST single send refuses: the same message on the page, nothing queued.
                let before = try await app.request(.get, "/v1/messages?to=ann%40example.org", token: token).json["items"] as? [[String: Any]]
                let casino: KeyValuePairs<String, String> = ["csrf": csrf, "from": "app@example.test", "to": "ann@example.org", "subject": "Casino night",
                                                             "text": "Win"]
                let rest = try await app.request(.post, "/v1/mail/single", token: token,
                                                 json: ["from": "app@example.test", "to": ["ann@example.org"], "subject": "Casino night", "text": "Win"])
                let restMessage = try #require(rest["detail"], "\(rest.body)")
                #expect(rest.status >= 400)
                let refused = try await app.request(.post, "/console/send-test", raw: Self.encoded(casino), contentType: Self.form, headers: cookie)
                #expect(refused.status == 200 && refused.body.contains(Self.escaped(restMessage)) && !refused.body.contains("id=\"send-test-result\"")
                        && refused.body.contains("value=\"Casino night\""), "the form keeps what was typed: \(refused.body)")
                let unknown = try await app.request(.post, "/v1/mail/single", token: token,
                                                    json: ["from": "nobody@example.test", "to": ["ann@example.org"], "subject": "Hi", "text": "Hi"])
                let wrongSender = try await app.request(.post, "/console/send-test",
                                                        raw: Self.encoded(["csrf": csrf, "from": "nobody@example.test", "to": "ann@example.org",
                                                                           "subject": "Hi", "text": "Hi"]),
                                                        contentType: Self.form, headers: cookie)
                let unknownMessage = try #require(unknown["detail"])
                #expect(wrongSender.body.contains(Self.escaped(unknownMessage)), "\(unknown.body) \(wrongSender.body)")
                // IP protection and a frozen account apply as they do to the API.
                _ = try await app.request(.put, "/v1/ip-protection", token: token, json: ["enabled": true, "allow": ["203.0.113.0/24"]])
                let denied = try await app.request(.post, "/v1/mail/single", token: token, json: TestApp.mail(to: ["ann@example.org"]))
                #expect(denied.code == "IpProtection.Denied", "\(denied.body)")
                let deniedMessage = try #require(denied["detail"])
                let outside = try await app.request(.post, "/console/send-test", raw: Self.encoded(fields), contentType: Self.form, headers: cookie)
                #expect(outside.status == 200 && outside.body.contains(Self.escaped(deniedMessage)) && !outside.body.contains("id=\"send-test-result\""),
                        "\(outside.body)")
                _ = try await app.request(.put, "/v1/ip-protection", token: token, json: ["enabled": false, "allow": [String]()])
                _ = try await app.admin(.post, "/admin/v1/tenants/\(tenant)/freeze")
                let frozen = try await app.request(.post, "/console/send-test", raw: Self.encoded(fields), contentType: Self.form, headers: cookie)
                #expect(frozen.body.contains(Self.escaped(HeraldError.accountFrozen.message)), "\(frozen.body)")
                _ = try await app.admin(.post, "/admin/v1/tenants/\(tenant)/unfreeze")
                let after = try await app.request(.get, "/v1/messages?to=ann%40example.org", token: token).json["items"] as? [[String: Any]]
                #expect(before?.count == 1 && after?.count == 1, "nothing more was queued")

                // A template fills the form in.
                let template = try #require(try await app.request(.post, "/v1/templates", token: token, json: [
                    "name": "welcome", "subject": "Welcome ${name}", "type": "trigger", "text": "Hello ${name}",
                ])["id"])
                let filled = try await app.request(.get, "/console/send-test?template=\(template)", contentType: nil, headers: cookie)
                #expect(filled.body.contains("<option value=\"\(template)\" selected>welcome</option>") && filled.body.contains("value=\"Welcome ${name}\"")
                        && filled.body.contains(">Hello ${name}</textarea>"), "\(filled.body)")

                // A ReadOnly user: no form; a forged post is refused.
                let user = try #require(try await app.request(.post, "/v1/users", token: token, json: ["name": "reader"])["id"])
                #expect(try await app.request(.post, "/v1/users/\(user)/policies", token: token, json: ["policy": "ReadOnlyAccess"]).status == 200)
                let key = try await app.request(.post, "/v1/users/\(user)/access-keys", token: token)
                let reader = try await ConsoleTests.signIn(app, keyID: try #require(key["accessKeyId"]), secret: try #require(key["accessKeySecret"]))
                let readerCookie: HTTPFields = [.cookie: "herald_console=\(reader)"]
                let view = try await app.request(.get, "/console/send-test", contentType: nil, headers: readerCookie)
                #expect(view.status == 200 && !view.body.contains("id=\"send-test\"") && view.body.contains("Your policies do not allow this."))
                let forged = Self.encoded(["csrf": try ConsoleTests.csrf(view), "from": "app@example.test", "to": "ann@example.org", "subject": "x", "text": "y"])
                #expect(try await app.request(.post, "/console/send-test", raw: forged, contentType: Self.form, headers: readerCookie).status == 403)
            }
        }
    }

    @Test func batchIsStartedAndWatchedToTheEnd() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await SMTPTestServer.with { peer in
                try await TestApp.run(dnsPort: dns.port) { app in
                    let (tenant, token, keyID, secret) = try await app.sendingTenant(dns)
                    try await app.setGrade(tenant: tenant, 3)
                    #expect(try await app.request(.post, "/v1/senders", token: token, json: ["address": "news@example.test", "type": "batch"]).status == 201)
                    let templateID = try #require(try await app.request(.post, "/v1/templates", token: token, json: [
                        "name": "newsletter", "subject": "News for ${name}", "type": "batch",
                        "html": "<p>Hi ${name}</p><a href=\"${unsubscribe}\">Unsubscribe</a>", "text": "Hi ${name}. Leave: ${unsubscribe}",
                    ])["id"])
                    _ = try await app.request(.post, "/v1/templates/\(templateID)/submit", token: token)
                    #expect(try await app.admin(.post, "/admin/v1/templates/\(templateID)/approve")["status"] == "approved")
                    let listID = try #require(try await app.request(.post, "/v1/lists", token: token, json: ["name": "readers"])["id"])
                    _ = try await app.request(.post, "/v1/lists/\(listID)/recipients", token: token, raw: "address,name\nann@example.org,Ann\nben@example.org,Ben\n",
                                              contentType: "text/csv")

                    #expect(try await app.request(.post, "/v1/tags", token: token, json: ["name": "weekly"]).status == 201)
                    let session = try await ConsoleTests.signIn(app, keyID: keyID, secret: secret)
                    let cookie: HTTPFields = [.cookie: "herald_console=\(session)"]
                    let tasks = try await app.request(.get, "/console/tasks", contentType: nil, headers: cookie)
                    #expect(tasks.status == 200 && tasks.body.contains("id=\"task-start\"") && tasks.body.contains("<option value=\"\(templateID)\">newsletter</option>")
                            && tasks.body.contains("<option value=\"\(listID)\">readers (2)</option>")
                            && tasks.body.contains("<option value=\"news@example.test\">") && !tasks.body.contains("<option value=\"app@example.test\">")
                            && tasks.body.contains("<option value=\"weekly\">weekly</option>") && tasks.body.contains("No batch sends yet."), "\(tasks.body)")
                    let csrf = try ConsoleTests.csrf(tasks)

                    // Refused as the REST batch route refuses (a trigger sender): its message, no task.
                    let rest = try await app.request(.post, "/v1/mail/batch", token: token, json: ["templateId": templateID, "listId": listID, "from": "app@example.test"])
                    #expect(rest.code == "Sender.WrongType", "\(rest.body)")
                    let wrong = try await app.request(.post, "/console/tasks",
                                                      raw: Self.encoded(["csrf": csrf, "templateId": templateID, "listId": listID, "from": "app@example.test"]),
                                                      contentType: Self.form, headers: cookie)
                    let restMessage = try #require(rest["detail"])
                    #expect(wrong.status == 200 && wrong.body.contains(Self.escaped(restMessage)) && wrong.body.contains("No batch sends yet."),
                            "\(wrong.body)")

                    let started = try await app.request(.post, "/console/tasks",
                                                        raw: Self.encoded(["csrf": csrf, "templateId": templateID, "listId": listID, "from": "news@example.test",
                                                                           "tag": "weekly"]),
                                                        contentType: Self.form, headers: cookie)
                    let location = try #require(started.headers[.location], "\(started.status) \(started.body)")
                    #expect(started.status == 303 && location.hasPrefix("/console/tasks/") && location.hasSuffix("?started=1"))
                    let taskID = String(location.dropFirst("/console/tasks/".count).prefix { $0 != "?" })
                    let rested = try await app.request(.get, "/v1/tasks/\(taskID)", token: token)
                    #expect(rested["status"] == "scheduled" && rested.json["total"] as? Int == 2, "the REST API sees the task: \(rested.body)")

                    let progress = try await app.request(.get, location, contentType: nil, headers: cookie)
                    #expect(progress.status == 200 && progress.body.contains("The batch send was accepted.")
                            && progress.body.contains("id=\"task-progress\" aria-live=\"polite\" data-refresh=\"3\"")
                            && progress.body.contains("<progress id=\"task-bar\" max=\"2\" value=\"0\">") && progress.body.contains("<dd id=\"task-total\">2</dd>")
                            && progress.body.contains("id=\"task-refresh\" href=\"/console/tasks/\(taskID)\"") && !progress.body.contains("id=\"task-finished\""),
                            "\(progress.body)")

                    // Expanded: messages created and waiting, still refreshing.
                    let expander = TaskExpander(store: app.dependencies.batches, unsubscribeLinks: app.dependencies.unsubscribeLinks, now: app.clock.now)
                    #expect(try await expander.runOnce())
                    let expanded = try await app.request(.get, "/console/tasks/\(taskID)", contentType: nil, headers: cookie)
                    #expect(expanded.body.contains("<dd id=\"task-expanded\">2</dd>") && expanded.body.contains("<dd id=\"task-queued\">2</dd>")
                            && expanded.body.contains("data-refresh=\"3\""), "\(expanded.body)")
                    // Delivered: finished, no more refresh.
                    let worker = try app.deliveryWorker(dns: dns, smtp: peer)
                    #expect(try await worker.runOnce() == 2)
                    let finished = try await app.request(.get, "/console/tasks/\(taskID)", contentType: nil, headers: cookie)
                    #expect(finished.body.contains("<dd id=\"task-delivered\">2</dd>") && finished.body.contains("id=\"task-finished\"")
                            && finished.body.contains("<progress id=\"task-bar\" max=\"2\" value=\"2\">") && !finished.body.contains("data-refresh"),
                            "\(finished.body)")
                    #expect(Set(peer.received.flatMap(\.to)) == ["ann@example.org", "ben@example.org"])

                    let listed = try await app.request(.get, "/console/tasks", contentType: nil, headers: cookie)
                    #expect(listed.body.contains("id=\"task-\(taskID)\"") && listed.body.contains("<td>newsletter</td><td>readers</td><td>2</td><td>2</td><td>0</td>")
                            && listed.body.contains("news@example.test · weekly"), "\(listed.body)")

                    // A ReadOnly user sees the tasks, not the form; a forged start is refused. Another tenant sees nothing of the task.
                    let user = try #require(try await app.request(.post, "/v1/users", token: token, json: ["name": "reader"])["id"])
                    #expect(try await app.request(.post, "/v1/users/\(user)/policies", token: token, json: ["policy": "ReadOnlyAccess"]).status == 200)
                    let key = try await app.request(.post, "/v1/users/\(user)/access-keys", token: token)
                    let reader = try await ConsoleTests.signIn(app, keyID: try #require(key["accessKeyId"]), secret: try #require(key["accessKeySecret"]))
                    let readerCookie: HTTPFields = [.cookie: "herald_console=\(reader)"]
                    let view = try await app.request(.get, "/console/tasks", contentType: nil, headers: readerCookie)
                    #expect(view.status == 200 && view.body.contains("id=\"task-\(taskID)\"") && !view.body.contains("id=\"task-start\""), "\(view.body)")
                    let forged = Self.encoded(["csrf": try ConsoleTests.csrf(view), "templateId": templateID, "listId": listID, "from": "news@example.test"])
                    #expect(try await app.request(.post, "/console/tasks", raw: forged, contentType: Self.form, headers: readerCookie).status == 403)
                    #expect(try await app.request(.get, "/console/tasks/\(taskID)", contentType: nil, headers: readerCookie).status == 200)

                    let other = try await app.createTenant("Other")
                    let otherSession = try await ConsoleTests.signIn(app, keyID: other.keyID, secret: other.secret)
                    let foreign = try await app.request(.get, "/console/tasks/\(taskID)", contentType: nil, headers: [.cookie: "herald_console=\(otherSession)"])
                    #expect(foreign.status == 404 && !foreign.body.contains("task-progress"))
                    let foreignList = try await app.request(.get, "/console/tasks", contentType: nil, headers: [.cookie: "herald_console=\(otherSession)"])
                    #expect(foreignList.status == 200 && !foreignList.body.contains(taskID))
                }
            }
        }
    }
}
