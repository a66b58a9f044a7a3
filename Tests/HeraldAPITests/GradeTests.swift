import Foundation
import HTTPTypes
import HeraldAPI
import HeraldAppTestSupport
import HeraldCore
import HeraldDelivery
import HeraldStore
import HeraldTestSupport
import PostgresNIO
import Prometheus
import Testing

/// Credit grades against the database: the daily figures kept by delivery results, the evaluator's
/// decisions and their effects (grade, history, events, paused and resumed mail).
@Suite struct GradeTests {
    /// Rows of one column.
    static func query<T: PostgresDecodable & Sendable>(_ app: TestApp, _ sql: PostgresQuery, as type: T.Type) async throws -> [T] {
        try await app.dependencies.database.withSystem { connection in
            var rows: [T] = []
            for try await row in try await connection.query(sql, logger: app.dependencies.database.logger).decode(T.self) { rows.append(row) }
            return rows
        }
    }

    /// Rows of several columns, each as text.
    static func rows(_ app: TestApp, _ sql: PostgresQuery, columns: Int) async throws -> [[String]] {
        try await app.dependencies.database.withSystem { connection in
            var rows: [[String]] = []
            for try await row in try await connection.query(sql, logger: app.dependencies.database.logger) {
                rows.append(try row.makeRandomAccess().prefix(columns).map { try $0.decode(String.self) })
            }
            return rows
        }
    }

    static func setFigures(_ app: TestApp, tenant: UUID, dayOffset: Int = 0, sent: Int, delivered: Int, invalid: Int = 0, spam: Int = 0) async throws {
        let day = SendRules.quotaDay(app.clock.now().addingTimeInterval(Double(dayOffset) * 86_400), timeZone: TimeZone(identifier: "UTC")!).day
        let now = app.clock.now()
        _ = try await query(app, """
            INSERT INTO tenant_daily_stats (tenant_id, day, sent, delivered, invalid, spam, updated_at)
            VALUES (\(tenant), \(day)::date, \(sent), \(delivered), \(invalid), \(spam), \(now))
            ON CONFLICT (tenant_id, day) DO UPDATE SET sent = EXCLUDED.sent, delivered = EXCLUDED.delivered, invalid = EXCLUDED.invalid,
                spam = EXCLUDED.spam, updated_at = EXCLUDED.updated_at
            RETURNING 1
            """, as: Int.self)
    }

    /// The operator chooses the account type and the starting grade when creating a tenant (issue #18); the default
    /// stays 2, a grade above the default ceiling raises the ceiling, and the personal type's limits apply.
    @Test func theOperatorChoosesTheStartingGradeAndAccountType() async throws {
        try await TestApp.run { app in
            let plain = try await app.admin(.post, "/admin/v1/tenants", json: ["name": "Plain"])
            let big = try await app.admin(.post, "/admin/v1/tenants", json: ["name": "Big", "kind": "personal", "grade": 12])
            #expect(plain.status == 201 && big.status == 201, "\(plain.body) \(big.body)")
            let plainTenant = try await app.admin(.get, "/admin/v1/tenants/\(try #require(plain["tenantId"]))")
            let bigTenant = try await app.admin(.get, "/admin/v1/tenants/\(try #require(big["tenantId"]))")
            #expect(plainTenant.json["grade"] as? Int == 2 && plainTenant.json["gradeCeiling"] as? Int == 10 && plainTenant["kind"] == "enterprise",
                    "\(plainTenant.body)")
            #expect(bigTenant.json["grade"] as? Int == 12 && bigTenant.json["gradeCeiling"] as? Int == 12 && bigTenant["kind"] == "personal",
                    "\(bigTenant.body)")
            let limits = try await app.admin(.get, "/admin/v1/tenants/\(try #require(big["tenantId"]))/limits")
            #expect(limits.body.contains("\"senderDeletionsPerMonth\":5"), "a personal account's limits: \(limits.body)")
            for bad in [0, 17] {
                expectProblem(try await app.admin(.post, "/admin/v1/tenants", json: ["name": "Bad", "grade": bad]), 400, "Validation.Failed")
            }
            #expect(try await app.count("SELECT count(*)::int FROM tenants WHERE name = 'Bad'") == 0)
            let audit = try await app.count("SELECT count(*)::int FROM audit_log WHERE action = 'admin:CreateTenant' AND detail->>'grade' = '12'")
            #expect(audit == 1)
        }
    }

    @Test func deliveryResultsCountTowardTheDaysFigures() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await SMTPTestServer.with { peer in
                try await TestApp.run(dnsPort: dns.port) { app in
                    let (tenant, token, _, _) = try await app.sendingTenant(dns)
                    try peer.script(["gone@example.org": ["550 5.1.1 No such user"], "spam@example.org": ["550 5.7.1 Message rejected as spam"],
                                     "busy@example.org": ["450 4.2.1 Busy"]])
                    let sent = try await app.request(.post, "/v1/mail/single", token: token, json: TestApp.mail(
                        to: ["ok@example.org", "gone@example.org", "spam@example.org", "busy@example.org"]))
                    #expect(sent.status == 200, "\(sent.body)")
                    #expect(try await app.deliveryWorker(dns: dns, smtp: peer).runOnce() == 4)
                    let id = try #require(UUID(uuidString: tenant))
                    let figures = try await Self.rows(app, """
                        SELECT sent::text, delivered::text, invalid::text, spam::text FROM tenant_daily_stats WHERE tenant_id = \(id)
                        """, columns: 4)
                    // The deferred one has no final outcome yet.
                    #expect(figures == [["3", "1", "1", "1"]])
                }
            }
        }
    }

    @Test func theEvaluatorPromotesFreezesAndTheOperatorUnfreezesAndBans() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await TestApp.run(dnsPort: dns.port) { app in
                let registry = PrometheusCollectorRegistry()
                var grades = GradeStore(database: app.dependencies.database)
                grades.metrics = GradeMetrics(registry: registry)
                let (good, goodToken, _, _) = try await app.sendingTenant(dns, name: "Good")
                let (bad, badToken) = try await app.rootToken("Bad")
                let goodID = try #require(UUID(uuidString: good)), badID = try #require(UUID(uuidString: bad))

                // Good: a busy, clean day at grade 2 (1,500 of 2,000) → grade 3, with history and event.
                try await Self.setFigures(app, tenant: goodID, sent: 1_500, delivered: 1_490, invalid: 5)
                // Bad: a day with 20 % invalid addresses → frozen. It has queued mail.
                try await Self.setFigures(app, tenant: badID, sent: 1_000, delivered: 800, invalid: 200)
                let earlier = app.clock.now()
                _ = try await Self.query(app, """
                    INSERT INTO messages (id, tenant_id, request_id, kind, priority, from_address, to_address, subject, body_text, status,
                                          next_attempt_at, created_at, updated_at)
                    SELECT gen_random_uuid(), \(badID), gen_random_uuid(), 'trigger', 0, 'x@bad.example', 'r' || g || '@example.org', 'S', 'x', 'queued',
                           \(earlier), \(earlier), \(earlier)
                    FROM generate_series(1, 5) AS g RETURNING 1
                    """, as: Int.self)

                let (evaluated, changes) = try await grades.evaluateDue(now: app.clock.now())
                #expect(evaluated == 2)
                #expect(changes.contains { $0.tenantID == goodID && { if case .promote(3, _, _) = $0.decision { true } else { false } }($0) })
                #expect(changes.contains { $0.tenantID == badID && { if case .freeze = $0.decision { true } else { false } }($0) })
                // Nothing changed since: nothing to evaluate.
                #expect(try await grades.evaluateDue(now: app.clock.now()).evaluated == 0)
                var buffer: [UInt8] = []
                registry.emit(into: &buffer)
                let metrics = String(decoding: buffer, as: UTF8.self)
                #expect(metrics.contains("herald_grade_evaluations_total 2") && metrics.contains(#"herald_grade_changes_total{change="frozen"} 1"#),
                        "\(metrics)")

                let history = try await Self.rows(app, "SELECT change, from_grade::text, to_grade::text FROM grade_history WHERE tenant_id = \(goodID)",
                                                  columns: 3)
                #expect(history == [["promoted", "2", "3"]])
                let event = try await Self.query(app, """
                    SELECT data::text FROM events WHERE tenant_id = \(goodID) AND type = 'account.grade_changed'
                    """, as: String.self)
                let data = try #require(event.first.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] })
                #expect(data["from"] as? Int == 2 && data["to"] as? Int == 3 && (data["figures"] as? [String: Any])?["sent"] as? Int == 1_500)
                // The quota follows the grade at once: 5,000 a day at grade 3.
                let big = try await app.request(.post, "/v1/mail/single", token: goodToken, json: TestApp.mail(
                    to: (0..<100).map { "q\($0)@example.org" }))
                #expect(big.status == 200)

                // The frozen tenant: refused, its mail paused and not claimed.
                expectProblem(try await app.request(.post, "/v1/mail/single", token: badToken, json: TestApp.mail(to: ["a@example.org"])),
                              403, "Account.Frozen")
                func statuses() async throws -> [String] {
                    try await Self.query(app, "SELECT status FROM messages WHERE tenant_id = \(badID)", as: String.self)
                }
                #expect(try await statuses().allSatisfy { $0 == "paused" })
                let frozenEvent = try await Self.query(app, "SELECT count(*)::int FROM events WHERE tenant_id = \(badID) AND type = 'account.frozen'",
                                                       as: Int.self)
                #expect(frozenEvent == [1])
                let claimed = try await DeliveryStore(database: app.dependencies.database).claim(worker: "w", limit: 100, now: app.clock.now(),
                                                                                                   lease: .seconds(60))
                #expect(!claimed.contains { $0.tenantID == badID })

                // Unfrozen by the operator: the mail is due again.
                #expect(try await app.admin(.post, "/admin/v1/tenants/\(bad)/unfreeze").status == 200)
                #expect(try await statuses().allSatisfy { $0 == "queued" })
                // Banned: the waiting mail is dropped, each with its event.
                #expect(try await app.admin(.post, "/admin/v1/tenants/\(bad)/ban").status == 200)
                #expect(try await statuses().allSatisfy { $0 == "dropped" })
                let types = try await Self.query(app, "SELECT type FROM events WHERE tenant_id = \(badID) ORDER BY id", as: String.self)
                #expect(types.filter { $0 == "message.dropped" }.count == 5)
                #expect(types.filter { $0.hasPrefix("account.") } == ["account.frozen", "account.unfrozen", "account.banned"])
            }
        }
    }

    @Test func theAccountItsCeilingItsHistoryAndTheOperatorsGrade() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await TestApp.run(dnsPort: dns.port) { app in
                let (tenant, token, _, _) = try await app.sendingTenant(dns)
                let (_, other) = try await app.rootToken("Other")
                let id = try #require(UUID(uuidString: tenant))
                _ = try await app.request(.post, "/v1/mail/single", token: token, json: TestApp.mail(to: ["a@example.org", "b@example.org"]))
                let account = try await app.request(.get, "/v1/account", token: token)
                #expect(account.status == 200, "\(account.body)")
                #expect(account.json["grade"] as? Int == 2 && account.json["gradeCeiling"] as? Int == 10 && account["status"] == "active")
                #expect(account.json["dailyQuota"] as? Int == 2_000 && account.json["dailyUsed"] as? Int == 2 && account.json["dailyRemaining"] as? Int == 1_998)
                #expect(account.json["monthlyQuota"] as? Int == 60_000 && account.json["monthlyUsed"] as? Int == 2 && account.json["freeRemaining"] as? Int == 198)
                #expect((try await app.request(.get, "/v1/account", token: other)).json["dailyUsed"] as? Int == 0, "another tenant's own account")

                // The ceiling: 9–16, never below the grade.
                expectProblem(try await app.request(.put, "/v1/account/grade-ceiling", token: token, json: ["gradeCeiling": 8]), 400, "Validation.Failed")
                #expect(try await app.request(.put, "/v1/account/grade-ceiling", token: token, json: ["gradeCeiling": 12]).json["gradeCeiling"] as? Int == 12)
                try await app.setGrade(tenant: tenant, 11)
                expectProblem(try await app.request(.put, "/v1/account/grade-ceiling", token: token, json: ["gradeCeiling": 10]), 409,
                              "Grade.CeilingBelowGrade")
                try await app.setGrade(tenant: tenant, 2)

                // A promotion shows in the history with its reason and figures.
                try await Self.setFigures(app, tenant: id, sent: 1_500, delivered: 1_500)
                _ = try await GradeStore(database: app.dependencies.database).evaluateDue(now: app.clock.now())
                let history = try await app.request(.get, "/v1/account/grade-history", token: token)
                let first = try #require((history.json["items"] as? [[String: Any]])?.first)
                #expect(first["change"] as? String == "promoted" && first["fromGrade"] as? Int == 2 && first["toGrade"] as? Int == 3)
                #expect((first["figures"] as? [String: Any])?["sent"] as? Int == 1_500 && first["actor"] as? String == "system")
                #expect(((try await app.request(.get, "/v1/account/grade-history", token: other)).json["items"] as? [Any])?.isEmpty == true)

                // The operator sets a grade once a day.
                let set = try await app.admin(.post, "/admin/v1/tenants/\(tenant)/grade", json: ["grade": 6, "reason": "verified business"])
                #expect(set.status == 200 && set.json["grade"] as? Int == 6, "\(set.body)")
                expectProblem(try await app.admin(.post, "/admin/v1/tenants/\(tenant)/grade", json: ["grade": 7]), 409, "Grade.ManualLimit")
                expectProblem(try await app.admin(.post, "/admin/v1/tenants/\(tenant)/grade", json: ["grade": 17]), 400, "Validation.Failed")
                app.clock.advance(86_400)
                #expect(try await app.admin(.post, "/admin/v1/tenants/\(tenant)/grade", json: ["grade": 7]).status == 200)
                let changes = try await Self.rows(app, "SELECT change, to_grade::text, actor FROM grade_history WHERE tenant_id = \(id) ORDER BY id", columns: 3)
                #expect(changes == [["promoted", "3", "system"], ["set", "6", "operator"], ["set", "7", "operator"]])
                let events = try await Self.query(app, "SELECT count(*)::int FROM events WHERE tenant_id = \(id) AND type = 'account.grade_changed'",
                                                  as: Int.self)
                #expect(events == [3])
            }
        }
    }

    @Test func aSecondFreezeIsFinalUnlessRestoredByHand() async throws {
        try await TestApp.run { app in
            let (tenant, _) = try await app.rootToken()
            let id = try #require(UUID(uuidString: tenant))
            #expect(try await app.admin(.post, "/admin/v1/tenants/\(tenant)/freeze").status == 200)
            #expect(try await app.admin(.post, "/admin/v1/tenants/\(tenant)/unfreeze").status == 200)
            #expect(try await app.admin(.post, "/admin/v1/tenants/\(tenant)/freeze").status == 200)
            expectProblem(try await app.admin(.post, "/admin/v1/tenants/\(tenant)/unfreeze"), 409, "Tenant.FreezeFinal")
            let restored = try await app.dependencies.tenants.change(id, .unfreeze, reason: "restored by hand", actor: .cli, force: true)
            #expect(restored.status == .active)
        }
    }

    @Test func severalEvaluatorsAtOnceEvaluateEachTenantOnce() async throws {
        try await TestApp.run { app in
            var ids: [UUID] = []
            for index in 0..<12 {
                let id = try #require(UUID(uuidString: try await app.rootToken("T\(index)").tenant))
                try await Self.setFigures(app, tenant: id, sent: 1_500, delivered: 1_500)
                ids.append(id)
            }
            let now = app.clock.now()
            let results = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
                for _ in 0..<3 {
                    group.addTask {
                        var store = GradeStore(database: app.dependencies.database)
                        store.thresholds.promotionsPerDay = 4
                        let (evaluated, changes) = try await store.evaluateDue(now: now, limit: 5)
                        return (evaluated, changes.count)
                    }
                }
                return try await group.reduce(into: [(Int, Int)]()) { $0.append($1) }
            }
            // Between them they took distinct tenants (at most 5 each); then the rest, once.
            var evaluated = results.map(\.0).reduce(0, +)
            while true {
                let (more, _) = try await GradeStore(database: app.dependencies.database).evaluateDue(now: now, limit: 5)
                if more == 0 { break }
                evaluated += more
            }
            #expect(evaluated == 12)
            let promotions = try await Self.query(app, "SELECT count(*)::int FROM grade_history WHERE change = 'promoted'", as: Int.self)
            #expect(promotions == [12], "each tenant promoted once, not once per evaluator")
        }
    }

    /// The whole loop with a 1-second grader: deliveries to a local SMTP peer feed the figures, the
    /// grader promotes a clean busy tenant and freezes one whose mail bounces.
    @Test func endToEndPromotionAndFreezeWithAOneSecondGrader() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await SMTPTestServer.with { peer in
                try await TestApp.run(dnsPort: dns.port) { app in
                    let (good, goodToken, _, _) = try await app.sendingTenant(dns, name: "Good")
                    let (bad, badToken) = try await app.rootToken("Bad")
                    _ = try await app.verifiedDomain(dns, token: badToken, name: "bad.example.test")
                    _ = try await app.request(.post, "/v1/senders", token: badToken, json: ["address": "app@bad.example.test", "type": "trigger"])
                    // A fifth of Bad's recipients do not exist.
                    var script: [String: [String]] = [:]
                    for index in 0..<80 { script["gone\(index)@example.org"] = ["550 5.1.1 No such user"] }
                    try peer.script(script)
                    for batch in 0..<15 {
                        let sent = try await app.request(.post, "/v1/mail/single", token: goodToken,
                                                         json: TestApp.mail(to: (0..<100).map { "g\(batch)-\($0)@example.org" }))
                        #expect(sent.status == 200, "\(sent.body)")
                    }
                    for batch in 0..<4 {
                        let to = (0..<100).map { index in batch * 100 + index < 80 ? "gone\(batch * 100 + index)@example.org" : "b\(batch)-\(index)@example.org" }
                        let sent = try await app.request(.post, "/v1/mail/single", token: badToken, json: [
                            "from": "app@bad.example.test", "to": to, "subject": "News", "text": "hello",
                        ])
                        #expect(sent.status == 200, "\(sent.body)")
                    }
                    let grader = Task {
                        try await GradeEvaluationService(store: GradeStore(database: app.dependencies.database), interval: .seconds(1),
                                                         now: app.clock.now, logger: TestDatabases.logger).run()
                    }
                    defer { grader.cancel() }
                    let worker = try app.deliveryWorker(dns: dns, smtp: peer)
                    func standing(_ tenant: String) async throws -> (Int, String) {
                        let id = try #require(UUID(uuidString: tenant))
                        let row = try await Self.rows(app, "SELECT grade::text, status FROM tenants WHERE id = \(id)", columns: 2)
                        return (Int(row[0][0]) ?? 0, row[0][1])
                    }
                    let deadline = Date().addingTimeInterval(90)
                    while Date() < deadline {
                        let worked = try await worker.runOnce()
                        let (goodGrade, _) = try await standing(good)
                        let (_, badStatus) = try await standing(bad)
                        if goodGrade == 3 && badStatus == "frozen" { break }
                        if worked == 0 { try await Task.sleep(for: .milliseconds(200)) }
                    }
                    #expect(try await standing(good) == (3, "active"))
                    #expect(try await standing(bad).1 == "frozen")
                    let account = try await app.request(.get, "/v1/account", token: goodToken)
                    #expect(account.json["grade"] as? Int == 3 && account.json["dailyQuota"] as? Int == 5_000, "\(account.body)")
                    expectProblem(try await app.request(.post, "/v1/mail/single", token: badToken, json: [
                        "from": "app@bad.example.test", "to": ["x@example.org"], "subject": "More", "text": "hello",
                    ]), 403, "Account.Frozen")
                }
            }
        }
    }
}
