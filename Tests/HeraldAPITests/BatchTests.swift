import Foundation
import HTTPTypes
import HeraldAPI
import HeraldAppTestSupport
import HeraldCore
import HeraldDNS
import HeraldDelivery
import HeraldSMTP
import HeraldStore
import HeraldTestSupport
import NIOCore
import Testing

@Suite struct BatchSendTests {
    @Test func templateTimesListThroughExpansionAndDelivery() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await SMTPTestServer.with { peer in
                try await TestApp.run(dnsPort: dns.port) { app in
                    let (tenant, token, _, _) = try await app.sendingTenant(dns)
                    try await app.setGrade(tenant: tenant, 3)
                    let batchSender = try await app.request(.post, "/v1/senders", token: token, json: ["address": "news@example.test", "type": "batch"])
                    #expect(batchSender.status == 201)
                    let template = try await app.request(.post, "/v1/templates", token: token, json: [
                        "name": "newsletter", "subject": "News for ${name}", "type": "batch",
                        "html": "<p>Hi ${name}</p><a href=\"${unsubscribe}\">Unsubscribe</a>", "text": "Hi ${name}. Leave: ${unsubscribe}",
                    ])
                    let templateID = template["id"] ?? ""
                    let list = try await app.request(.post, "/v1/lists", token: token, json: ["name": "readers"])
                    let listID = list["id"] ?? ""
                    _ = try await app.request(.post, "/v1/lists/\(listID)/recipients", token: token, json: [
                        ["address": "ann@example.org", "variables": ["name": "Ann"]], ["address": "ben@example.org", "variables": ["name": "<b>Ben</b>"]],
                        ["address": "cy@example.org", "variables": ["name": "Cy"]], ["address": "gone@example.org", "variables": ["name": "Gone"]],
                    ])
                    _ = try await app.request(.post, "/v1/suppressions", token: token, json: ["address": "gone@example.org"])
                    let batch: [String: Any] = ["templateId": templateID, "listId": listID, "from": "news@example.test"]

                    // Refusals before anything is queued.
                    expectProblem(try await app.request(.post, "/v1/mail/batch", token: token, json: batch), 409, "Template.NotApproved")
                    _ = try await app.request(.post, "/v1/templates/\(templateID)/submit", token: token)
                    _ = try await app.admin(.post, "/admin/v1/templates/\(templateID)/approve")
                    expectProblem(try await app.request(.post, "/v1/mail/batch", token: token, json: batch.merging(["from": "app@example.test"]) { $1 }),
                                  400, "Sender.WrongType")
                    expectProblem(try await app.request(.post, "/v1/mail/batch", token: token, json: batch.merging(["templateId": UUID().uuidString]) { $1 }),
                                  400, "InvalidTemplate.NotFound")

                    let accepted = try await app.request(.post, "/v1/mail/batch", token: token, json: batch)
                    #expect(accepted.status == 202, "\(accepted.body)")
                    let taskID = accepted["taskId"] ?? ""
                    #expect(try await app.request(.get, "/v1/tasks/\(taskID)", token: token)["status"] == "scheduled")

                    let expander = TaskExpander(store: app.dependencies.batches, unsubscribeLinks: app.dependencies.unsubscribeLinks, now: app.clock.now)
                    #expect(try await expander.runOnce())
                    #expect(try await !expander.runOnce())
                    let worker = try app.deliveryWorker(dns: dns, smtp: peer)
                    #expect(try await worker.runOnce() == 3)

                    let task = try await app.request(.get, "/v1/tasks/\(taskID)", token: token)
                    #expect(task["status"] == "done", "\(task.body)")

                    // The task list: newest first, with names, filtered by status, a page at a time.
                    app.clock.advance(1) // the test clock stands still otherwise: "newest" needs a later time
                    let second = try await app.request(.post, "/v1/mail/batch", token: token, json: batch)
                    #expect(second.status == 202, "\(second.body)")
                    let listed = try await app.request(.get, "/v1/tasks", token: token)
                    let items = try #require(listed.json["items"] as? [[String: Any]], "\(listed.body)")
                    #expect(items.map { $0["id"] as? String } == [second["taskId"], taskID], "\(listed.body)")
                    #expect(items.last?["template"] as? String == "newsletter" && items.last?["list"] as? String == "readers"
                            && items.last?["status"] as? String == "done" && items.last?["total"] as? Int == 4)
                    let done = try await app.request(.get, "/v1/tasks?status=done", token: token)
                    #expect((done.json["items"] as? [[String: Any]])?.map { $0["id"] as? String } == [taskID])
                    let page = try await app.request(.get, "/v1/tasks?limit=1", token: token)
                    let cursor = try #require(page.json["nextCursor"] as? String)
                    let next = try await app.request(.get, "/v1/tasks?limit=1&cursor=\(cursor)", token: token)
                    #expect((next.json["items"] as? [[String: Any]])?.map { $0["id"] as? String } == [taskID])
                    expectProblem(try await app.request(.get, "/v1/tasks?cursor=nope", token: token), 400, "Validation.Failed")
                    #expect(task.json["total"] as? Int == 4 && task.json["delivered"] as? Int == 3 && task.json["dropped"] as? Int == 1, "\(task.body)")

                    // Each message: personalised, escaped, and its body link is its List-Unsubscribe URL.
                    let received = peer.received
                    #expect(Set(received.flatMap(\.to)) == ["ann@example.org", "ben@example.org", "cy@example.org"])
                    for message in received {
                        let data = message.data.replacingOccurrences(of: "=\r\n", with: "")
                        let header = try #require(data.range(of: "List-Unsubscribe: <").map { data[$0.upperBound...].prefix { $0 != ">" } })
                        #expect(header.hasPrefix("https://herald.test/u/"))
                        #expect(data.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"))
                        #expect(data.contains(String(header)), "the body link is the header's URL")
                    }
                    let ben = try #require(received.first { $0.to == ["ben@example.org"] })
                    #expect(ben.data.contains("&lt;b&gt;Ben&lt;/b&gt;") && ben.data.contains("Subject: News for <b>Ben</b>"))
                }
            }
        }
    }
}
