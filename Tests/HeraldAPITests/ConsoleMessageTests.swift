import Foundation
import HTTPTypes
import HeraldAPI
import HeraldAppTestSupport
import HeraldCore
import HeraldDNS
import HeraldDelivery
import HeraldStore
import HeraldTestSupport
import Testing

/// The console's messages, suppressions and invalid addresses, and statistics (issue #19), on mail really sent and
/// delivered to a test SMTP peer by the delivery worker.
@Suite struct ConsoleMessageTests {
    static let form = "application/x-www-form-urlencoded"

    /// Sends to ann (deferred once, then delivered) and bad (550 5.1.1: bounced, an invalid address) with tag otp,
    /// runs the worker until both are done; answers their message ids.
    static func sendAndDeliver(_ app: TestApp, dns: DNSTestServer, peer: SMTPTestServer, token: String) async throws -> (ann: String, bad: String) {
        #expect(try await app.request(.post, "/v1/tags", token: token, json: ["name": "otp"]).status == 201)
        try peer.script(["ann@example.org": ["450 4.2.1 Mailbox busy"], "bad@example.org": ["550 5.1.1 No such user"]])
        let sent = try await app.request(.post, "/v1/mail/single", token: token,
                                         json: TestApp.mail(to: ["ann@example.org", "bad@example.org"], subject: "Your code", extra: ["tag": "otp"]))
        #expect(sent.status == 200, "\(sent.body)")
        let messages = try #require(sent.json["messages"] as? [[String: Any]])
        let ids = Dictionary(uniqueKeysWithValues: messages.map { ($0["to"] as? String ?? "", $0["id"] as? String ?? "") })
        let worker = try app.deliveryWorker(dns: dns, smtp: peer)
        #expect(try await worker.runOnce() == 2)
        app.clock.advance(900)
        #expect(try await worker.runOnce() == 1)
        return (try #require(ids["ann@example.org"]), try #require(ids["bad@example.org"]))
    }

    static func get(_ app: TestApp, _ path: String, _ session: String, language: String? = nil) async throws -> Reply {
        var headers: HTTPFields = [.cookie: "herald_console=\(session)"]
        if let language { headers[.acceptLanguage] = language }
        return try await app.request(.get, path, contentType: nil, headers: headers)
    }

    static func post(_ app: TestApp, _ path: String, _ body: String, _ session: String) async throws -> Reply {
        try await app.request(.post, path, raw: body, contentType: form, headers: [.cookie: "herald_console=\(session)"])
    }

    /// A ReadOnlyAccess sub-user of the tenant whose root token is `token`, signed in.
    static func reader(_ app: TestApp, token: String) async throws -> String {
        let user = try #require(try await app.request(.post, "/v1/users", token: token, json: ["name": "reader"])["id"])
        #expect(try await app.request(.post, "/v1/users/\(user)/policies", token: token, json: ["policy": "ReadOnlyAccess"]).status == 200)
        let key = try await app.request(.post, "/v1/users/\(user)/access-keys", token: token)
        return try await ConsoleTests.signIn(app, keyID: try #require(key["accessKeyId"]), secret: try #require(key["accessKeySecret"]))
    }

    /// Search by recipient, status and days; one message's events in order (queued, the deferred attempt with its
    /// SMTP reply, delivered); another tenant's id, or a bad one, is a not-found page that shows nothing.
    @Test func messagesAreSearchedAndTheirEventsShownInOrder() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await SMTPTestServer.with { peer in
                try await TestApp.run(dnsPort: dns.port) { app in
                    let (_, token, keyID, secret) = try await app.sendingTenant(dns)
                    let (ann, bad) = try await Self.sendAndDeliver(app, dns: dns, peer: peer, token: token)
                    let session = try await ConsoleTests.signIn(app, keyID: keyID, secret: secret)

                    let all = try await Self.get(app, "/console/messages", session)
                    #expect(all.status == 200 && all.body.contains("id=\"message-search\"") && all.body.contains("<label for=\"msg-to\">")
                            && all.body.contains("href=\"/console/messages/\(ann)\"") && all.body.contains("href=\"/console/messages/\(bad)\"")
                            && all.body.contains("[otp]"), "\(all.body)")
                    let byRecipient = try await Self.get(app, "/console/messages?to=ann%40example.org&status=&from=&until=", session)
                    #expect(byRecipient.body.contains("id=\"msg-\(ann)\"") && !byRecipient.body.contains("id=\"msg-\(bad)\"")
                            && byRecipient.body.contains("class=\"status-delivered\">Delivered<"), "\(byRecipient.body)")
                    #expect(byRecipient.body.contains("value=\"ann@example.org\""), "the form keeps the search")
                    let bounced = try await Self.get(app, "/console/messages?status=bounced", session)
                    #expect(bounced.body.contains("id=\"msg-\(bad)\"") && !bounced.body.contains("id=\"msg-\(ann)\"")
                            && bounced.body.contains("<option value=\"bounced\" selected>"), "\(bounced.body)")
                    let today = StatsDay.format(app.clock.now()), yesterday = StatsDay.format(app.clock.now().addingTimeInterval(-86_400))
                    let inRange = try await Self.get(app, "/console/messages?from=\(today)&until=\(today)", session)
                    #expect(inRange.body.contains("id=\"msg-\(ann)\"") && inRange.body.contains("id=\"msg-\(bad)\""), "until is the whole day")
                    let before = try await Self.get(app, "/console/messages?until=\(yesterday)", session)
                    #expect(before.body.contains("id=\"msg-none\"") && !before.body.contains("id=\"msg-\(ann)\""))
                    let older = try await Self.get(app, "/console/messages?cursor=\(ann)", session)
                    #expect(older.body.contains("id=\"msg-newest\"") && !older.body.contains("id=\"msg-\(ann)\""), "the page after ann's")
                    for query in ["from=garbage", "status=lost", "cursor=nope"] {
                        let refused = try await Self.get(app, "/console/messages?" + query, session)
                        #expect(refused.status == 200 && refused.body.contains("<p class=\"notice\" role=\"status\">")
                                && refused.body.contains("id=\"msg-none\""), "\(query): \(refused.body)")
                    }

                    // One message's events, in order, with the SMTP replies.
                    let detail = try await Self.get(app, "/console/messages/\(ann)", session)
                    #expect(detail.status == 200 && detail.body.contains("id=\"message-events\"") && detail.body.contains("ann@example.org"), "\(detail.body)")
                    let order = ["message.accepted", "message.deferred", "message.delivered"].map {
                        detail.body.range(of: "data-event=\"\($0)\"")?.lowerBound
                    }
                    #expect(order.allSatisfy { $0 != nil } && order[0]! < order[1]! && order[1]! < order[2]!, "\(detail.body)")
                    #expect(detail.body.contains("450 4.2.1 Mailbox busy") && detail.body.contains(">Queued<") && detail.body.contains(">Delivered<"))
                    #expect(detail.body.contains("<span class=\"muted\">Attempts:</span> <code>1</code>")
                            && detail.body.contains("<code class=\"copy\">\(ann)</code>"), "\(detail.body)")
                    #expect(!detail.body.contains("data-refresh"), "a delivered message is not refreshed")
                    #expect(detail.body.contains("<a href=\"/console/messages\" aria-current=\"page\">"), "the menu shows where the page is")
                    let chinese = try await Self.get(app, "/console/messages/\(ann)", session, language: "zh-CN")
                    #expect(chinese.body.contains("已送达") && chinese.body.contains("事件"), "\(chinese.body)")
                    let bounce = try await Self.get(app, "/console/messages/\(bad)", session)
                    #expect(bounce.body.contains("data-event=\"message.bounced\"") && bounce.body.contains("550 5.1.1 No such user"), "\(bounce.body)")

                    // Another tenant sees nothing of it; a bad id is the same not-found page.
                    let other = try await app.createTenant("Other")
                    let otherSession = try await ConsoleTests.signIn(app, keyID: other.keyID, secret: other.secret)
                    for path in ["/console/messages/\(ann)", "/console/messages/not-a-uuid", "/console/messages/\(UUID().uuidString)"] {
                        let hidden = try await Self.get(app, path, otherSession)
                        #expect(hidden.status == 404 && hidden.body.contains("There is no such message.") && !hidden.body.contains("ann@example.org")
                                && !hidden.body.contains("Your code"), "\(path): \(hidden.body)")
                    }
                    let otherSearch = try await Self.get(app, "/console/messages", otherSession)
                    #expect(otherSearch.status == 200 && otherSearch.body.contains("id=\"msg-none\"") && !otherSearch.body.contains("ann@example.org"))
                    #expect(try await Self.get(app, "/console/messages/\(ann)", "forged").status == 303, "signed out: to the sign-in page")

                    // Statistics: by day with the chart, by tag and sender, the rates; bad days are the API's message.
                    let stats = try await Self.get(app, "/console/statistics", session)
                    #expect(stats.status == 200 && stats.body.contains("<svg class=\"chart\"") && stats.body.contains("id=\"stats-form\"")
                            && stats.body.contains("Delivery rate") && stats.body.contains("Bounce rate") && stats.body.contains("Spam rate")
                            && stats.body.contains("Open rate"), "\(stats.body)")
                    let total = String(try #require(stats.body.range(of: "<tr id=\"stats-total\">").map { stats.body[$0.lowerBound...].prefix { $0 != "\n" } }))
                    // 2 requests, 2 accepted, 1 delivered, 1 hard bounce: 50 % delivered, 50 % bounced, no spam.
                    #expect(total.contains("<td>2</td><td>2</td><td>1</td><td>1</td><td>0</td>")
                            && total.contains("<td class=\"delivery-rate\">50.0 %</td><td class=\"bounce-rate\">50.0 %</td><td class=\"spam-rate\">0.0 %</td>"),
                            "\(total)")
                    #expect(stats.body.contains("<td class=\"delivery-rate\">—</td>"), "a day without mail has no rate")
                    let byTag = try await Self.get(app, "/console/statistics?groupBy=tag&from=\(yesterday)&until=\(today)", session)
                    #expect(byTag.status == 200 && byTag.body.contains("<th scope=\"row\">otp</th>") && !byTag.body.contains("<svg")
                            && byTag.body.contains("<option value=\"tag\" selected>"), "\(byTag.body)")
                    let bySender = try await Self.get(app, "/console/statistics?groupBy=sender&from=\(today)&until=\(today)&tag=otp", session)
                    #expect(bySender.body.contains("<th scope=\"row\">app@example.test</th>"), "\(bySender.body)")
                    let noTag = try await Self.get(app, "/console/statistics?groupBy=sender&from=\(today)&until=\(today)&tag=nope", session)
                    #expect(noTag.body.contains("id=\"stats-none\""), "\(noTag.body)")
                    let badDays = try await Self.get(app, "/console/statistics?from=2026-13-01&until=\(today)", session)
                    #expect(badDays.status == 200 && badDays.body.contains("from must be a day like 2026-11-01."), "\(badDays.body)")
                    let chineseStats = try await Self.get(app, "/console/statistics", session, language: "zh")
                    #expect(chineseStats.body.contains("送达率"))

                    // Pages of 50, newest first: the older page follows the form's search.
                    let many = (0..<50).map { "r\($0)@example.org" }
                    #expect(try await app.request(.post, "/v1/mail/single", token: token, json: TestApp.mail(to: many, subject: "Many")).status == 200)
                    let first = try await Self.get(app, "/console/messages?from=\(today)", session)
                    #expect(first.body.components(separatedBy: "class=\"message-row\"").count == 51 && !first.body.contains("id=\"msg-\(ann)\""),
                            "\(first.body)")
                    let next = try #require(first.body.range(of: "id=\"msg-older\" href=\"").map { first.body[$0.upperBound...].prefix { $0 != "\"" } })
                    #expect(next.hasPrefix("/console/messages?from=\(today)&amp;cursor="), "\(next)")
                    let second = try await Self.get(app, next.replacingOccurrences(of: "&amp;", with: "&"), session)
                    #expect(second.body.components(separatedBy: "class=\"message-row\"").count == 3 && second.body.contains("id=\"msg-\(ann)\"")
                            && second.body.contains("id=\"msg-\(bad)\"") && !second.body.contains("id=\"msg-older\""), "\(second.body)")

                    // A read-only user reads both.
                    let reader = try await Self.reader(app, token: token)
                    #expect(try await Self.get(app, "/console/messages/\(ann)", reader).status == 200)
                    #expect(try await Self.get(app, "/console/statistics", reader).status == 200)
                }
            }
        }
    }

    /// Suppressions: add (audited, the API agrees), search, export, remove; invalid addresses (a real hard bounce):
    /// search, export, remove. A ReadOnly sub-user sees the lists without forms, and a forged post gets 403.
    @Test func suppressionsAndInvalidAddressesAsPoliciesAllow() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await SMTPTestServer.with { peer in
                try await TestApp.run(dnsPort: dns.port) { app in
                    let (_, token, keyID, secret) = try await app.sendingTenant(dns)
                    _ = try await Self.sendAndDeliver(app, dns: dns, peer: peer, token: token)
                    let session = try await ConsoleTests.signIn(app, keyID: keyID, secret: secret)

                    let page = try await Self.get(app, "/console/suppressions", session)
                    #expect(page.status == 200 && page.body.contains("id=\"sup-add\"") && page.body.contains("<label for=\"sup-address\">")
                            && page.body.contains("id=\"sup-none\"") && page.body.contains("<code>bad@example.org</code>")
                            && page.body.contains("class=\"danger inv-remove\""), "\(page.body)")
                    let csrf = try ConsoleTests.csrf(page)
                    #expect(try await Self.post(app, "/console/suppressions", "address=zed%40example.org", session).status == 403, "no CSRF token")
                    let added = try await Self.post(app, "/console/suppressions", "csrf=\(csrf)&address=zed%40example.org", session)
                    #expect(added.status == 200 && added.body.contains("The address is suppressed.") && added.body.contains("<code>zed@example.org</code>")
                            && added.body.contains("class=\"danger sup-remove\""), "\(added.body)")
                    _ = try await Self.post(app, "/console/suppressions", "csrf=\(csrf)&address=amy%40example.org", session)
                    let wrong = try await Self.post(app, "/console/suppressions", "csrf=\(csrf)&address=not-an-address", session)
                    #expect(wrong.status == 200 && wrong.body.contains("role=\"status\"") && !wrong.body.contains("<code>not-an-address</code>"), "\(wrong.body)")
                    #expect(try await app.request(.get, "/v1/suppressions", token: token).body.contains("zed@example.org"), "the API agrees")
                    #expect(try await app.request(.get, "/v1/audit-log", token: token).body.contains("dm:AddSuppression"))

                    let found = try await Self.get(app, "/console/suppressions?q=ZED", session)
                    #expect(found.body.contains("<code>zed@example.org</code>") && !found.body.contains("<code>amy@example.org</code>")
                            && found.body.contains("id=\"inv-none\"") && found.body.contains("value=\"ZED\""), "\(found.body)")
                    let export = try await Self.get(app, "/console/suppressions/export", session)
                    #expect(export.status == 200 && export.headers[.contentType] == "text/csv; charset=utf-8"
                            && export.headers[.contentDisposition] == "attachment; filename=\"suppressions.csv\""
                            && export.body.hasPrefix("address,scope,source,createdAt\r\namy@example.org,*,api,") && export.body.contains("\r\nzed@example.org,*,api,"),
                            "\(export.body)")
                    let invalidExport = try await Self.get(app, "/console/invalid-addresses/export", session)
                    #expect(invalidExport.status == 200 && invalidExport.body.hasPrefix("address,hardBounces,listed,updatedAt\r\nbad@example.org,1,"),
                            "\(invalidExport.body)")

                    // Read-only: the lists, no forms; a forged post is refused (403) and changes nothing.
                    let reader = try await Self.reader(app, token: token)
                    let view = try await Self.get(app, "/console/suppressions", reader)
                    #expect(view.status == 200 && view.body.contains("<code>zed@example.org</code>") && view.body.contains("<code>bad@example.org</code>")
                            && !view.body.contains("id=\"sup-add\"") && !view.body.contains("sup-remove") && !view.body.contains("inv-remove")
                            && view.body.contains("id=\"sup-export\""), "\(view.body)")
                    let readerCSRF = try ConsoleTests.csrf(view)
                    #expect(try await Self.post(app, "/console/suppressions/remove", "csrf=\(readerCSRF)&address=zed%40example.org", reader).status == 403)
                    #expect(try await Self.post(app, "/console/suppressions", "csrf=\(readerCSRF)&address=eve%40example.org", reader).status == 403)
                    #expect(try await Self.post(app, "/console/invalid-addresses/remove", "csrf=\(readerCSRF)&address=bad%40example.org", reader).status == 403)
                    #expect(try await Self.get(app, "/console/suppressions/export", reader).status == 200)
                    #expect(try await app.request(.get, "/v1/suppressions", token: token).body.contains("zed@example.org"))
                    #expect(try await app.request(.get, "/v1/audit-log", token: token).body.contains("Forbidden.RAM"))

                    // Removals.
                    let removed = try await Self.post(app, "/console/suppressions/remove", "csrf=\(csrf)&address=zed%40example.org", session)
                    #expect(removed.status == 200 && removed.body.contains("The suppression was removed.") && !removed.body.contains("<code>zed@example.org</code>"),
                            "\(removed.body)")
                    let again = try await Self.post(app, "/console/suppressions/remove", "csrf=\(csrf)&address=zed%40example.org", session)
                    #expect(again.status == 200 && again.body.contains("was not found"), "\(again.body)")
                    let invalid = try await Self.post(app, "/console/invalid-addresses/remove", "csrf=\(csrf)&address=bad%40example.org", session)
                    #expect(invalid.status == 200 && invalid.body.contains("The invalid address was removed.") && !invalid.body.contains("<code>bad@example.org</code>"),
                            "\(invalid.body)")
                    #expect(!(try await app.request(.get, "/v1/invalid-addresses", token: token)).body.contains("bad@example.org"))
                    let audit = try await app.request(.get, "/v1/audit-log", token: token).body
                    #expect(audit.contains("dm:RemoveSuppression") && audit.contains("dm:RemoveInvalidAddress"))

                    // Another tenant sees none of it.
                    let other = try await app.createTenant("Other")
                    let otherSession = try await ConsoleTests.signIn(app, keyID: other.keyID, secret: other.secret)
                    let otherPage = try await Self.get(app, "/console/suppressions", otherSession)
                    #expect(otherPage.status == 200 && !otherPage.body.contains("amy@example.org"))
                    #expect(!(try await Self.get(app, "/console/suppressions/export", otherSession)).body.contains("amy@example.org"))
                }
            }
        }
    }

    /// A message on its way is refreshed in place until it arrives; a tracked one's opens and clicks follow its
    /// delivery in its events, the clicked link with them.
    @Test func trackedMessagesShowOpensAndClicks() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await SMTPTestServer.with { peer in
                try await TestApp.run(dnsPort: dns.port) { app in
                    let (_, token, keyID, secret) = try await app.sendingTenant(dns)
                    let html = "<html><body><p>Hi</p><a href=\"https://example.org/offer\">Offer</a></body></html>"
                    let sent = try await app.request(.post, "/v1/mail/single", token: token, json: TestApp.mail(
                        to: ["cat@example.org"], extra: ["html": html, "clickTracking": true]))
                    let id = try #require((sent.json["messages"] as? [[String: Any]])?.first?["id"] as? String)
                    let session = try await ConsoleTests.signIn(app, keyID: keyID, secret: secret)
                    let queued = try await Self.get(app, "/console/messages/\(id)", session)
                    #expect(queued.body.contains("<div id=\"message-live\" data-refresh=\"5\">") && queued.body.contains(">Queued<"), "\(queued.body)")
                    #expect(try await app.deliveryWorker(dns: dns, smtp: peer).runOnce() == 1)
                    let data = try #require(peer.received.first).data.replacingOccurrences(of: "=\r\n", with: "").replacingOccurrences(of: "=3D", with: "=")
                    let link = { (prefix: String) -> String? in
                        data.components(separatedBy: "https://herald.test" + prefix).dropFirst().first.map { prefix + String($0.prefix { $0 != "\"" }) }
                    }
                    #expect(try await app.request(.get, try #require(link("/t/o/")), contentType: nil).status == 200)
                    #expect(try await app.request(.get, try #require(link("/t/c/")), contentType: nil).status == 302)
                    let done = try await Self.get(app, "/console/messages/\(id)", session)
                    let order = ["message.accepted", "message.delivered", "message.opened", "message.clicked"].map {
                        done.body.range(of: "data-event=\"\($0)\"")?.lowerBound
                    }
                    #expect(order.allSatisfy { $0 != nil } && order[0]! < order[1]! && order[1]! < order[2]! && order[2]! < order[3]!, "\(done.body)")
                    #expect(done.body.contains(">Opened<") && done.body.contains(">Link clicked<") && done.body.contains("<code>https://example.org/offer</code>")
                            && done.body.contains("<span class=\"muted\">First time:</span> <code>yes</code>") && !done.body.contains("data-refresh"),
                            "\(done.body)")
                }
            }
        }
    }
}
