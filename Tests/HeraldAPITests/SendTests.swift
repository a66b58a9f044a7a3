import Foundation
import HTTPTypes
import HeraldAPI
import HeraldAppTestSupport
import HeraldCore
import HeraldStore
import HeraldTestSupport
import PostgresNIO
import Testing

@Suite struct SingleSendTests {
    /// SPEC §11: sends are limited per sender address (here 2/s, bursts of 4), with Retry-After, and nothing
    /// of a refused send is queued; another sender address of the same tenant has its own budget; the clock
    /// refills it.
    @Test func sendsAreLimitedPerSenderAddress() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await TestApp.run(dnsPort: dns.port, senderRate: 2) { app in
                let (tenant, token, _, _) = try await app.sendingTenant(dns)
                #expect(try await app.request(.post, "/v1/senders", token: token, json: ["address": "alerts@example.test", "type": "trigger"]).status == 201)
                var statuses: [Int] = []
                var refused: Reply?
                for index in 0..<6 {
                    let reply = try await app.request(.post, "/v1/mail/single", token: token, json: TestApp.mail(to: ["r\(index)@example.org"]))
                    statuses.append(reply.status)
                    if reply.status == 429 { refused = reply }
                }
                #expect(statuses == [200, 200, 200, 200, 429, 429], "\(statuses)")
                let refusal = try #require(refused)
                expectProblem(refusal, 429, "Throttling.Sender")
                #expect(Int(refusal.headers[.retryAfter] ?? "") ?? 0 >= 1)
                #expect(try await app.count("messages", tenant: tenant) == 4, "nothing of a refused send is queued")
                let other = try await app.request(.post, "/v1/mail/single", token: token,
                                                  json: TestApp.mail(to: ["x@example.org"]).merging(["from": "alerts@example.test"]) { $1 })
                #expect(other.status == 200, "another sender has its own budget: \(other.body)")
                app.clock.advance(1)
                #expect(try await app.request(.post, "/v1/mail/single", token: token, json: TestApp.mail(to: ["y@example.org"])).status == 200)
            }
        }
    }

    @Test func acceptsDropsAndRefusesLeavingNothingBehind() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await TestApp.run(dnsPort: dns.port) { app in
                let (tenant, token, _, _) = try await app.sendingTenant(dns)
                #expect(try await app.request(.post, "/v1/suppressions", token: token, json: ["address": "Gone@Example.org"]).status == 201)
                #expect(try await app.request(.post, "/v1/tags", token: token, json: ["name": "otp"]).status == 201)

                let sent = try await app.request(.post, "/v1/mail/single", token: token,
                                                 json: TestApp.mail(to: ["a@example.org", "gone@example.org", "B@example.org", "a@example.org"],
                                                                 extra: ["tag": "otp", "fromAlias": "Acme", "headers": ["X-Campaign": "q4"]]))
                #expect(sent.status == 200, "\(sent.body)")
                let messages = sent.json["messages"] as? [[String: Any]] ?? []
                #expect(messages.map { $0["to"] as? String } == ["a@example.org", "gone@example.org", "b@example.org"])
                #expect(messages.map { $0["status"] as? String } == ["queued", "dropped", "queued"])
                #expect(messages[1]["reason"] as? String == "suppressed")
                #expect(try await app.count("messages", tenant: tenant) == 3)
                #expect(try await app.count("events", tenant: tenant) == 3)
                let id = try #require(UUID(uuidString: tenant))
                let used = try await app.dependencies.database.withSystem { connection in
                    try await connection.query("SELECT used FROM quota_usage WHERE tenant_id = \(id)", logger: app.dependencies.database.logger)
                        .decode(Int.self).first { _ in true }
                }
                #expect(used == 2)

                // Every refusal: its code, its field, and no row written.
                let refusals: [([String: Any], Int, String, String?)] = [
                    (TestApp.mail(to: (0...100).map { "r\($0)@example.org" }), 400, "Validation.Failed", "to"),
                    (TestApp.mail(to: ["ok@example.org", "not an address"]), 400, "InvalidToAddress", "to[1]"),
                    (TestApp.mail(to: ["ok@example.org"], subject: String(repeating: "s", count: 101)), 400, "Validation.Failed", "subject"),
                    (TestApp.mail(to: ["ok@example.org"], extra: ["html": String(repeating: "x", count: 81 * 1024)]), 400, "Validation.Failed", "html"),
                    (TestApp.mail(to: ["ok@example.org"], extra: ["from": "nobody@example.test"]), 400, "InvalidMailAddress.NotFound", "from"),
                    (TestApp.mail(to: ["ok@example.org"], extra: ["tag": "unknown"]), 400, "Validation.Failed", "tag"),
                    (TestApp.mail(to: ["ok@example.org"], extra: ["headers": ["Bcc": "x@example.org"]]), 400, "Validation.Failed", "headers.Bcc"),
                    (TestApp.mail(to: ["ok@example.org"], extra: ["fromAlias": String(repeating: "a", count: 16)]), 400, "Validation.Failed", "fromAlias"),
                    (TestApp.mail(to: []), 400, "Validation.Failed", "to"),
                ]
                for (body, status, code, field) in refusals {
                    let reply = try await app.request(.post, "/v1/mail/single", token: token, json: body)
                    expectProblem(reply, status, code)
                    #expect(reply["field"] == field, "\(code): \(reply.body.prefix(300))")
                }
                // IP protection and a frozen account.
                _ = try await app.request(.put, "/v1/ip-protection", token: token, json: ["enabled": true, "allow": ["203.0.113.0/24"]])
                expectProblem(try await app.request(.post, "/v1/mail/single", token: token, json: TestApp.mail(to: ["ok@example.org"])),
                              403, "IpProtection.Denied")
                _ = try await app.request(.put, "/v1/ip-protection", token: token, json: ["enabled": false, "allow": [String]()])
                _ = try await app.admin(.post, "/admin/v1/tenants/\(tenant)/freeze")
                expectProblem(try await app.request(.post, "/v1/mail/single", token: token, json: TestApp.mail(to: ["ok@example.org"])), 403, "Account.Frozen")
                _ = try await app.admin(.post, "/admin/v1/tenants/\(tenant)/unfreeze")
                #expect(try await app.count("messages", tenant: tenant) == 3)
                // The three messages' events, and the account's frozen and unfrozen.
                #expect(try await app.count("events", tenant: tenant) == 5)
                #expect(try await app.request(.post, "/v1/mail/single", token: token, json: TestApp.mail(to: ["ok@example.org"])).status == 200)
            }
        }
    }

    /// Several processes accepting for one tenant take its quota from leases (``QuotaLease``): they never
    /// pass it together, a request is refused only when it does not fit with every lease's untaken part taken
    /// back, the account shows what is really used while leases hold more, and leases handed back leave the
    /// day's row at exactly what was sent.
    @Test func quotaLeasesOfSeveralProcessesKeepTheQuotaExact() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await TestApp.run(dnsPort: dns.port) { app in
                let (tenant, _, _, _) = try await app.sendingTenant(dns)
                try await app.setGrade(tenant: tenant, 1)
                let tenantID = try #require(UUID(uuidString: tenant))
                let holders = (0..<4).map { _ in UUID() }
                let stores = holders.map { holder in
                    var store = app.dependencies.sending
                    store.quotaHolder = holder
                    return store
                }
                let send = { (prefix: String, count: Int) in
                    try SendRules.validate(SingleSendRequest(from: "app@example.test", to: (0..<count).map { "\(prefix)-\($0)@example.org" },
                                                             subject: "S", text: "T"))
                }
                let accept: @Sendable (SendStore, ValidatedSend) async throws -> String = { store, send in
                    do {
                        _ = try await store.acceptSingle(tenantID: tenantID, send: send, idempotency: nil, now: app.clock.now())
                        return "accepted"
                    } catch let error as HeraldError {
                        return error.code
                    }
                }
                let used = { (sql: String) in try await app.count(sql.replacingOccurrences(of: "$TENANT", with: tenant)) }
                let realUsed = "SELECT herald_quota_used('$TENANT', (now() AT TIME ZONE 'UTC')::date, (now() AT TIME ZONE 'UTC')::date)"

                // 48 sends of 7 at once, through four processes, on a quota of 200: 28 fit (196), and the 20
                // refused did not fit.
                _ = try await accept(stores[0], try send("first", 1))
                let outcomes = try await withThrowingTaskGroup(of: String.self) { group in
                    for index in 0..<48 {
                        let store = stores[index % 4], mail = try send("c\(index)", 7)
                        group.addTask { try await accept(store, mail) }
                    }
                    return try await group.reduce(into: [String]()) { $0.append($1) }
                }
                #expect(outcomes.filter { $0 == "accepted" }.count == 28, "\(outcomes)")
                #expect(outcomes.filter { $0 == "Quota.Exceeded" }.count == 20, "\(outcomes)")
                #expect(try await used(realUsed) == 197)
                #expect(try await app.count("messages", tenant: tenant) == 197)
                #expect(try await app.count("SELECT count(*)::int FROM quota_leases WHERE holder = ANY('{\(holders.map(\.uuidString).joined(separator: ","))}')") > 0)
                for holder in holders { try await ProcessStore(database: app.dependencies.database).releaseQuotaLeases(holder: holder) }
                #expect(try await app.count("quota_leases", tenant: tenant) == 0)
                #expect(try await used("SELECT used FROM quota_usage WHERE tenant_id = '$TENANT'") == 197)

                // A new day: each process's first send takes a slice more than it needs, which the day's row
                // counts but the account does not.
                app.clock.advance(86_401)
                let day = "(now() AT TIME ZONE 'UTC')::date + 1"
                let dayUsed = "SELECT herald_quota_used('$TENANT', \(day), \(day))"
                _ = try await accept(stores[0], try send("opening", 1))
                for (index, store) in stores.enumerated() { #expect(try await accept(store, try send("one\(index)", 1)) == "accepted") }
                #expect(try await used(dayUsed) == 5)
                #expect(try await used("SELECT used FROM quota_usage WHERE tenant_id = '$TENANT' AND day = \(day)") > 5)
                let account = try await app.dependencies.grades.account(tenantID: tenantID, now: app.clock.now())
                #expect(account.dailyUsed == 5, "\(account)")
                // What the others hold untaken is taken back when one process needs it: 195 more fit exactly.
                #expect(try await accept(stores[0], try send("big1", 98)) == "accepted")
                #expect(try await accept(stores[0], try send("big2", 97)) == "accepted")
                #expect(try await used(dayUsed) == 200)
                #expect(try await accept(stores[1], try send("over", 1)) == "Quota.Exceeded")
                #expect(try await accept(stores[2], try send("over", 1)) == "Quota.Exceeded")
                #expect(try await used("SELECT used FROM quota_usage WHERE tenant_id = '$TENANT' AND day = \(day)") == 200)
            }
        }
    }

    @Test func idempotencyAndQuotaHoldUnderConcurrency() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await TestApp.run(dnsPort: dns.port) { app in
                let (tenant, token, keyID, secret) = try await app.sendingTenant(dns)
                let key: HTTPFields = [HTTPField.Name("Idempotency-Key")!: "order-42"]
                let body = String(decoding: try JSONSerialization.data(withJSONObject: TestApp.mail(to: ["x@example.org", "y@example.org"])), as: UTF8.self)
                // 32 concurrent requests with one key create one set of messages and all answer the same.
                let replies = try await withThrowingTaskGroup(of: Reply.self) { group in
                    for _ in 0..<32 { group.addTask { try await app.request(.post, "/v1/mail/single", token: token, raw: body, headers: key) } }
                    return try await group.reduce(into: [Reply]()) { $0.append($1) }
                }
                #expect(replies.allSatisfy { $0.status == 200 }, "\(replies.map(\.status))")
                #expect(Set(replies.map { $0["requestId"] ?? "" }).count == 1)
                #expect(try await app.count("messages", tenant: tenant) == 2)
                expectProblem(try await app.request(.post, "/v1/mail/single", token: token, json: TestApp.mail(to: ["z@example.org"]), headers: key),
                              409, "Idempotency.Conflict")
                // The same straight at the store, where the 32 surely run at once on separate connections.
                let tenantID = try #require(UUID(uuidString: tenant))
                let send = try SendRules.validate(SingleSendRequest(from: "app@example.test", to: ["w@example.org"], subject: "S", text: "T"))
                let direct = try await withThrowingTaskGroup(of: UUID.self) { group in
                    for _ in 0..<32 {
                        group.addTask {
                            try await app.dependencies.sending.acceptSingle(tenantID: tenantID, send: send,
                                                                            idempotency: .init(key: "direct", bodyHash: [1, 2, 3]), now: Date()).0.requestId
                        }
                    }
                    return try await group.reduce(into: Set<UUID>()) { $0.insert($1) }
                }
                #expect(direct.count == 1)
                #expect(try await app.count("messages", tenant: tenant) == 3)
                // A day later the key is free again (and the day's quota is new).
                app.clock.advance(86_401)
                let token2 = try await app.token(keyID, secret)
                let again = try await app.request(.post, "/v1/mail/single", token: token2, json: TestApp.mail(to: ["z@example.org"]), headers: key)
                #expect(again.status == 200 && again["requestId"] != replies[0]["requestId"], "\(again.body)")

                // Quota: grade 1 allows 200 a day; 32 concurrent sends of 10 never pass it.
                app.clock.advance(86_401)
                let token3 = try await app.token(keyID, secret)
                try await app.setGrade(tenant: tenant, 1)
                let results = try await withThrowingTaskGroup(of: Reply.self) { group in
                    for index in 0..<32 {
                        let to = (0..<10).map { "q\(index)-\($0)@example.org" }
                        let raw = String(decoding: try JSONSerialization.data(withJSONObject: TestApp.mail(to: to)), as: UTF8.self)
                        group.addTask { try await app.request(.post, "/v1/mail/single", token: token3, raw: raw) }
                    }
                    return try await group.reduce(into: [Reply]()) { $0.append($1) }
                }
                let accepted = results.filter { $0.status == 200 }.count
                #expect(accepted == 20, "\(results.map(\.status))")
                #expect(results.filter { $0.code == "Quota.Exceeded" }.count == 12)
                let id = try #require(UUID(uuidString: tenant))
                let used = try await app.dependencies.database.withSystem { connection in
                    try await connection.query("SELECT used FROM quota_usage WHERE tenant_id = \(id) ORDER BY day DESC LIMIT 1",
                                               logger: app.dependencies.database.logger)
                        .decode(Int.self).first { _ in true }
                }
                #expect(used == 200)

                // The same straight at the store: 32 transactions at once, each deciding on the day's usage as it
                // read it without a lock; the writes check it, and those that no longer fit decide again locked.
                app.clock.advance(86_401)
                let outcomes = try await withThrowingTaskGroup(of: String.self) { group in
                    for index in 0..<32 {
                        let send = try SendRules.validate(SingleSendRequest(from: "app@example.test", to: (0..<10).map { "d\(index)-\($0)@example.org" },
                                                                            subject: "S", text: "T"))
                        group.addTask {
                            do {
                                _ = try await app.dependencies.sending.acceptSingle(tenantID: tenantID, send: send, idempotency: nil, now: app.clock.now())
                                return "accepted"
                            } catch let error as HeraldError {
                                return error.code
                            }
                        }
                    }
                    return try await group.reduce(into: [String]()) { $0.append($1) }
                }
                #expect(outcomes.filter { $0 == "accepted" }.count == 20, "\(outcomes)")
                #expect(outcomes.filter { $0 == "Quota.Exceeded" }.count == 12, "\(outcomes)")
                let usedDirect = try await app.dependencies.database.withSystem { connection in
                    try await connection.query("SELECT used FROM quota_usage WHERE tenant_id = \(id) ORDER BY day DESC LIMIT 1",
                                               logger: app.dependencies.database.logger)
                        .decode(Int.self).first { _ in true }
                }
                #expect(usedDirect == 200)
            }
        }
    }
}
