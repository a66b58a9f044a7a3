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
import PostgresNIO
import Testing

/// Issue 14 on the accept path and batch tasks, tried as a hostile tenant would: one tenant's request can
/// never fail another's, a task sends exactly what was approved and never more than the quota, replies go
/// only to confirmed addresses, and a batch-type sender sends batch mail whatever path it takes.
@Suite struct AcceptTrustTests {
    /// Runs `sql` as the system (test set-up that has no API).
    static func system(_ app: TestApp, _ sql: PostgresQuery) async throws {
        _ = try await app.dependencies.database.withSystem { connection in
            try await connection.query(sql, logger: app.dependencies.database.logger)
        }
    }

    static func strings(_ app: TestApp, _ sql: PostgresQuery) async throws -> [String] {
        try await app.dependencies.database.withSystem { connection in
            var values: [String] = []
            for try await value in try await connection.query(sql, logger: app.dependencies.database.logger).decode(String.self) { values.append(value) }
            return values
        }
    }

    static func int(_ app: TestApp, _ sql: PostgresQuery) async throws -> Int {
        try await app.dependencies.database.withSystem { connection in
            try await connection.query(sql, logger: app.dependencies.database.logger).decode(Int.self).first { _ in true } ?? -1
        }
    }

    /// A NUL (or another control character) in any text of a send is one client's 400 naming the field,
    /// and nothing is written.
    @Test func controlCharactersInASendAreRefusedWithTheirField() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await TestApp.run(dnsPort: dns.port) { app in
                let (tenant, token, _, _) = try await app.sendingTenant(dns)
                let cases: [([String: Any], String)] = [
                    (["subject": "x\u{0}"], "subject"),
                    (["subject": "line\r\nBcc: victim@example.org"], "subject"),
                    (["text": "a\u{0}b"], "text"),
                    (["html": "<p>\u{1}</p>"], "html"),
                    (["fromAlias": "A\u{0}"], "fromAlias"),
                    (["headers": ["X-Campaign": "a\u{0}"]], "headers.X-Campaign"),
                ]
                for (extra, field) in cases {
                    let reply = try await app.request(.post, "/v1/mail/single", token: token, json: TestApp.mail(to: ["ann@example.org"], extra: extra))
                    #expect(reply.status == 400 && reply.code == "Validation.Failed", "\(extra): \(reply.body)")
                    #expect(reply["field"] == field, "\(extra): \(reply.body)")
                }
                #expect(try await app.count("messages", tenant: tenant) == 0)
                let fine = try await app.request(.post, "/v1/mail/single", token: token,
                                                 json: TestApp.mail(to: ["ann@example.org"], extra: ["text": "tab\there\r\nand a line"]))
                #expect(fine.status == 200, "\(fine.body)")
            }
        }
    }

    /// The group commit shares one transaction among many tenants' requests. A request whose value the
    /// database refuses (a NUL that got past the checks, here put in on purpose below the API) fails alone:
    /// every other request of the same transaction is written and answered.
    @Test func onePoisonedRequestFailsAloneInTheSharedTransaction() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await TestApp.run(dnsPort: dns.port) { app in
                let a = try await app.sendingTenant(dns, name: "A")
                let b = try await app.sendingTenant(dns, name: "B")
                let good = try SendRules.validate(SingleSendRequest(from: "app@example.test", to: ["ann@example.org"], subject: "Hi", text: "Hello"))
                var poisoned = good
                poisoned.subject = "x\u{0}"
                let tenantA = try #require(UUID(uuidString: a.tenant)), tenantB = try #require(UUID(uuidString: b.tenant))
                // A batcher that waits for 40 requests before writing, so they certainly share one transaction.
                let batcher = AcceptBatcher(store: app.dependencies.sending, maxBatch: 256, maxFlushes: 1)
                let jobs: [AcceptBatcher.Job] = (0..<40).map { index in
                    .init(tenantID: index % 2 == 0 ? tenantA : tenantB, send: index == 17 ? poisoned : good, idempotency: nil, now: app.clock.now())
                }
                let results = await withTaskGroup(of: (Int, Bool).self) { group in
                    for (index, job) in jobs.enumerated() {
                        group.addTask { (index, (try? await batcher.accept(job)) != nil) }
                    }
                    var results: [Int: Bool] = [:]
                    for await (index, accepted) in group { results[index] = accepted }
                    return results
                }
                #expect(results.filter { !$0.value }.map(\.key) == [17], "only the poisoned request fails: \(results.filter { !$0.value })")
                let (countA, countB) = (try await app.count("messages", tenant: a.tenant),
                                        try await app.count("messages", tenant: b.tenant))
                #expect(countA == 20 && countB == 19, "\(countA) and \(countB) messages")
            }
        }
    }

    /// A task sends the content that was approved when it was submitted: editing the template afterwards
    /// sends the template back to review (a new task is refused) but never changes the queued task.
    @Test func aTaskSendsTheApprovedVersion() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await TestApp.run(dnsPort: dns.port) { app in
                let (task, token, _) = try await Self.scheduledTask(app, dns, members: ["ann@example.org", "ben@example.org"])
                let edited = try await app.request(.put, "/v1/templates/\(task.template)", token: token, json: [
                    "name": "newsletter", "subject": "WIN A PRIZE ${name}", "type": "batch",
                    "html": "<p>Click here ${name}</p><a href=\"${unsubscribe}\">u</a>", "text": "Swapped ${name} ${unsubscribe}",
                ])
                #expect(edited.status == 200 && edited["status"] == "pending", "\(edited.body)")
                expectProblem(try await app.request(.post, "/v1/mail/batch", token: token, json: task.body), 409, "Template.NotApproved")

                let expander = TaskExpander(store: app.dependencies.batches, unsubscribeLinks: app.dependencies.unsubscribeLinks, now: app.clock.now)
                #expect(try await expander.runOnce())
                let subjects = try await Self.strings(app, "SELECT subject || ' | ' || body_text FROM messages ORDER BY to_address")
                #expect(subjects.count == 2)
                #expect(subjects.allSatisfy { $0.hasPrefix("News for ") && $0.contains("| Hi ") && !$0.contains("PRIZE") && !$0.contains("Swapped") },
                        "\(subjects)")
            }
        }
    }

    /// The quota bypass: tasks reserve the list's size at submission, then the tenant fills the list. The
    /// expansion reserves what goes beyond from the day's quota and drops the rest (`quota_exceeded`, with
    /// its event), so the day's mail never passes the quota and the account says what was used. Tasks due
    /// at the same second are claimed one at a time, each expanded by its own claim.
    @Test func batchTasksNeverPassTheDailyQuota() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await TestApp.run(dnsPort: dns.port) { app in
                let (first, token, tenant) = try await Self.scheduledTask(app, dns, members: ["a0000@example.org"], grade: 1)
                var tasks = [first.id]
                for _ in 0..<7 {
                    let reply = try await app.request(.post, "/v1/mail/batch", token: token, json: first.body)
                    #expect(reply.status == 202, "\(reply.body)")
                    tasks.append(reply["taskId"] ?? "")
                }
                // Now the list grows to 150 members: 8 tasks × 150 would be 1,200 messages on a quota of 200.
                let members = (1..<150).map { ["address": String(format: "a%04d@example.org", $0), "variables": ["name": "R\($0)"]] as [String: Any] }
                let imported = try await app.request(.post, "/v1/lists/\(first.list)/recipients", token: token, json: members)
                #expect(imported.status == 200, "\(imported.body)")

                // One claim takes one task; the others stay scheduled for their own claims.
                let claimed = try #require(try await app.dependencies.batches.claim(now: app.clock.now(), lease: .seconds(300)))
                let expanding = try await Self.int(app, "SELECT count(*)::int FROM tasks WHERE status = 'expanding'")
                #expect(expanding == 1, "one claim, one task")
                _ = claimed

                let expander = TaskExpander(store: app.dependencies.batches, unsubscribeLinks: app.dependencies.unsubscribeLinks, now: app.clock.now)
                app.clock.advance(301) // the first claim's lease runs out: it is claimed again and resumed
                var runs = 0
                while try await expander.runOnce() { runs += 1 }
                #expect(runs == 8)
                let queued = try await Self.int(app, "SELECT count(*)::int FROM messages WHERE status = 'queued'")
                let overQuota = try await Self.int(app, "SELECT count(*)::int FROM messages WHERE reason = 'quota_exceeded'")
                let events = try await Self.int(app, "SELECT count(*)::int FROM events WHERE type = 'message.dropped' AND data->>'reason' = 'quota_exceeded'")
                #expect(queued == 200, "the day's quota, exactly")
                #expect(overQuota == 8 * 150 - 200 && events == overQuota)
                let expandedPerTask = try await Self.strings(app, "SELECT expanded::text FROM tasks ORDER BY id")
                #expect(expandedPerTask == Array(repeating: "150", count: 8), "each task expanded its members once: \(expandedPerTask)")
                let account = try await app.request(.get, "/v1/account", token: token)
                #expect(account.json["dailyUsed"] as? Int == 200 && account.json["dailyRemaining"] as? Int == 0, "\(account.body)")
                _ = tenant
            }
        }
    }

    /// `replyTo` must be the sender's confirmed reply-to; a confirmed one is set on the sender's mail even
    /// when the send does not ask for it.
    @Test func replyToMustBeTheSendersConfirmedAddress() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await SMTPTestServer.with { peer in
                try await TestApp.run(dnsPort: dns.port) { app in
                    let (tenant, token, _, _) = try await app.sendingTenant(dns)
                    let unconfirmed = try await app.request(.post, "/v1/mail/single", token: token,
                                                            json: TestApp.mail(to: ["ann@example.org"], extra: ["replyTo": "attacker@evil.example"]))
                    expectProblem(unconfirmed, 400, "InvalidReplyAddress.NotVerified")
                    #expect(unconfirmed["field"] == "replyTo")
                    #expect(try await app.count("messages", tenant: tenant) == 0)

                    // The sender's reply-to, confirmed (the link flow is SenderTests'; here it is set below the API).
                    let tenantID = try #require(UUID(uuidString: tenant))
                    try await Self.system(app, """
                        UPDATE senders SET reply_to = 'help@example.test', reply_to_status = 'verified' WHERE tenant_id = \(tenantID)
                        """)
                    let asked = try await app.request(.post, "/v1/mail/single", token: token,
                                                      json: TestApp.mail(to: ["ann@example.org"], extra: ["replyTo": "HELP@example.test"]))
                    #expect(asked.status == 200, "\(asked.body)")
                    let implied = try await app.request(.post, "/v1/mail/single", token: token, json: TestApp.mail(to: ["ben@example.org"]))
                    #expect(implied.status == 200, "\(implied.body)")
                    expectProblem(try await app.request(.post, "/v1/mail/single", token: token,
                                                        json: TestApp.mail(to: ["cy@example.org"], extra: ["replyTo": "other@example.test"])),
                                  400, "InvalidReplyAddress.NotVerified")
                    let worker = try app.deliveryWorker(dns: dns, smtp: peer)
                    #expect(try await worker.runOnce() == 2)
                    let received = peer.received
                    #expect(received.count == 2)
                    for message in received {
                        #expect(message.data.components(separatedBy: "\r\n").filter { $0.lowercased().hasPrefix("reply-to:") } == ["Reply-To: <help@example.test>"],
                                "\(message.data.prefix(600))")
                    }
                }
            }
        }
    }

    /// A batch-type sender used for a single send sends batch mail: batch priority, the one-click
    /// unsubscribe fields, and a recipient who unsubscribed is dropped as `unsubscribed` (a trigger sender's
    /// mail to the same recipient still goes).
    @Test func aBatchSenderSendsBatchMailOnEveryPath() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await SMTPTestServer.with { peer in
                try await TestApp.run(dnsPort: dns.port) { app in
                    let (tenant, token, _, _) = try await app.sendingTenant(dns)
                    #expect(try await app.request(.post, "/v1/senders", token: token, json: ["address": "news@example.test", "type": "batch"]).status == 201)
                    let tenantID = try #require(UUID(uuidString: tenant))
                    try await Self.system(app, """
                        INSERT INTO suppressions (tenant_id, address, scope, source) VALUES (\(tenantID), 'gone@example.org', '*', 'unsubscribe')
                        """)
                    let batchMail = try await app.request(.post, "/v1/mail/single", token: token,
                                                          json: TestApp.mail(to: ["ann@example.org", "gone@example.org"], extra: ["from": "news@example.test"]))
                    #expect(batchMail.status == 200, "\(batchMail.body)")
                    let statuses = (batchMail.json["messages"] as? [[String: Any]] ?? []).map { "\($0["to"] ?? "") \($0["status"] ?? "") \($0["reason"] ?? "-")" }
                    #expect(statuses == ["ann@example.org queued -", "gone@example.org dropped unsubscribed"], "\(batchMail.body)")
                    let trigger = try await app.request(.post, "/v1/mail/single", token: token, json: TestApp.mail(to: ["gone@example.org"]))
                    #expect((trigger.json["messages"] as? [[String: Any]])?.first?["status"] as? String == "queued", "\(trigger.body)")
                    let kinds = try await Self.strings(app, "SELECT from_address || ' ' || kind || ' ' || priority FROM messages WHERE status = 'queued' ORDER BY from_address")
                    #expect(kinds == ["app@example.test trigger 0", "news@example.test batch 1"])
                    let worker = try app.deliveryWorker(dns: dns, smtp: peer)
                    #expect(try await worker.runOnce() == 2)
                    let news = try #require(peer.received.first { $0.data.contains("From: <news@example.test>") || $0.data.contains("news@example.test>") })
                    #expect(news.data.contains("List-Unsubscribe: <https://herald.test/u/") && news.data.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
                            "\(news.data.prefix(800))")
                    let app2 = try #require(peer.received.first { $0.to == ["gone@example.org"] })
                    #expect(!app2.data.contains("List-Unsubscribe"), "trigger mail without the tenant's setting has no unsubscribe fields")
                }
            }
        }
    }

    struct Task {
        var id: String
        var template: String
        var list: String
        var body: [String: Any]
    }

    /// A tenant with a batch sender, an approved batch template, a list of `members` and one scheduled task.
    static func scheduledTask(_ app: TestApp, _ dns: DNSTestServer, members: [String], grade: Int = 3) async throws -> (Task, String, String) {
        let (tenant, token, _, _) = try await app.sendingTenant(dns)
        try await app.setGrade(tenant: tenant, grade)
        #expect(try await app.request(.post, "/v1/senders", token: token, json: ["address": "news@example.test", "type": "batch"]).status == 201)
        let template = try await app.request(.post, "/v1/templates", token: token, json: [
            "name": "newsletter", "subject": "News for ${name}", "type": "batch",
            "html": "<p>Hi ${name}</p><a href=\"${unsubscribe}\">Unsubscribe</a>", "text": "Hi ${name}. Leave: ${unsubscribe}",
        ])
        let templateID = template["id"] ?? ""
        _ = try await app.request(.post, "/v1/templates/\(templateID)/submit", token: token)
        #expect(try await app.admin(.post, "/admin/v1/templates/\(templateID)/approve").status == 200)
        let list = try await app.request(.post, "/v1/lists", token: token, json: ["name": "readers"])
        let listID = list["id"] ?? ""
        let imported = try await app.request(.post, "/v1/lists/\(listID)/recipients", token: token,
                                             json: members.map { ["address": $0, "variables": ["name": $0.prefix { $0 != "@" }.capitalized]] })
        #expect(imported.status == 200, "\(imported.body)")
        let body: [String: Any] = ["templateId": templateID, "listId": listID, "from": "news@example.test"]
        let accepted = try await app.request(.post, "/v1/mail/batch", token: token, json: body)
        #expect(accepted.status == 202, "\(accepted.body)")
        return (Task(id: accepted["taskId"] ?? "", template: templateID, list: listID, body: body), token, tenant)
    }
}
