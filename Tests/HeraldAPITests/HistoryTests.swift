import Foundation
import HTTPTypes
import HeraldAPI
import HeraldAppTestSupport
import HeraldCore
import HeraldDelivery
import HeraldStore
import HeraldTestSupport
import PostgresNIO
import Testing

/// History apart from the queue (issue #17, item 5): a message waits in the small queue partition, takes
/// its expiry day (today plus its tenant's retention) when it becomes final, and goes with its whole
/// partition when that day is past; events likewise with the event retention. Each tenant's setting holds
/// for its own rows only.
@Suite struct HistoryTests {
    /// Which partition holds each of `ids`, read through the parent.
    static func partitions(_ app: TestApp, table: String, column: String, ids: [String]) async throws -> [String: [String]] {
        let uuids = ids.compactMap(UUID.init(uuidString:))
        return try await app.dependencies.database.withSystem { connection in
            var found: [String: [String]] = [:]
            for try await (id, partition) in try await connection.query(PostgresQuery(unsafeSQL: """
                SELECT \(column)::text, tableoid::regclass::text FROM \(table) WHERE \(column) = ANY($1) ORDER BY 2
                """, binds: { var b = PostgresBindings(); b.append(uuids); return b }()), logger: app.dependencies.database.logger)
                .decode((String, String).self) {
                found[id.uppercased(), default: []].append(partition)
            }
            return found
        }
    }

    static func day(_ offset: Int, from today: String) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd"
        return formatter.string(from: formatter.date(from: today)!.addingTimeInterval(Double(offset) * 86_400))
    }

    @Test func finalMessagesLeaveTheQueueAndGoWithTheirPartition() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await SMTPTestServer.with { peer in
                try await TestApp.run(dnsPort: dns.port) { app in
                    let database = app.dependencies.database
                    let today = try await database.withSystem { connection in
                        try await connection.query("SELECT herald_today()::text", logger: database.logger).decode(String.self).first { _ in true } ?? ""
                    }
                    let compact = { (day: String) in day.replacingOccurrences(of: "-", with: "") }
                    let (_, keeper, _, _) = try await app.sendingTenant(dns, name: "Keeper")
                    let (_, brief, _, _) = try await app.sendingTenant(dns, name: "Brief")

                    // Retention is a setting of the account: bounded, and absent fields keep their value.
                    let base: [String: Any] = ["trackOpensAndClicks": false, "unsubscribeLinkInTriggerMail": false]
                    let defaults = try await app.request(.get, "/v1/account/settings", token: brief)
                    #expect(defaults.json["messageRetentionDays"] as? Int == 30 && defaults.json["eventRetentionDays"] as? Int == 180, "\(defaults.body)")
                    for bad in [0, 401, -5] {
                        let refused = try await app.request(.put, "/v1/account/settings", token: brief, json: base.merging(["messageRetentionDays": bad]) { $1 })
                        #expect(refused.status == 400 && refused["code"] == "Validation.Failed", "\(refused.body)")
                    }
                    let changed = try await app.request(.put, "/v1/account/settings", token: brief,
                                                        json: base.merging(["messageRetentionDays": 2, "eventRetentionDays": 3]) { $1 })
                    #expect(changed.status == 200 && changed.json["messageRetentionDays"] as? Int == 2 && changed.json["eventRetentionDays"] as? Int == 3,
                            "\(changed.body)")
                    let kept = try await app.request(.put, "/v1/account/settings", token: brief, json: base)
                    #expect(kept.json["messageRetentionDays"] as? Int == 2, "absent keeps the value: \(kept.body)")

                    var ids: [String: String] = [:]
                    for (name, token) in [("keeper", keeper), ("brief", brief)] {
                        let sent = try await app.request(.post, "/v1/mail/single", token: token, json: TestApp.mail(to: ["\(name)@example.org"]))
                        #expect(sent.status == 200, "\(sent.body)")
                        ids[name] = ((sent.json["messages"] as? [[String: Any]])?.first?["id"] as? String)?.uppercased()
                    }
                    let keeperID = try #require(ids["keeper"]), briefID = try #require(ids["brief"])
                    var where_ = try await Self.partitions(app, table: "messages", column: "id", ids: [keeperID, briefID])
                    #expect(where_[keeperID] == ["messages_queue"] && where_[briefID] == ["messages_queue"], "queued mail is in the queue: \(where_)")

                    let worker = try app.deliveryWorker(dns: dns, smtp: peer)
                    #expect(try await worker.runOnce() == 2)
                    where_ = try await Self.partitions(app, table: "messages", column: "id", ids: [keeperID, briefID])
                    #expect(where_[keeperID] == ["messages_p\(compact(Self.day(30, from: today)))"], "\(where_)")
                    #expect(where_[briefID] == ["messages_p\(compact(Self.day(2, from: today)))"], "\(where_)")
                    let events = try await Self.partitions(app, table: "events", column: "message_id", ids: [keeperID, briefID])
                    #expect(events[keeperID]?.count == 2 && events[briefID]?.count == 2, "accepted and delivered: \(events)")
                    #expect(Set(events[keeperID] ?? []).count == 1 && events[keeperID]?.first != events[briefID]?.first, "\(events)")
                    #expect(try await app.count("SELECT count(*)::int FROM ONLY messages_queue") == 0, "the queue is empty once all is delivered")

                    // Ten days on: the brief tenant's message and events are gone with their partitions, the
                    // keeper's stay; nothing was deleted row by row.
                    let history = HistoryStore(database: database)
                    let steps = try await history.maintain(today: Self.day(10, from: today))
                    #expect(steps.contains("dropped messages_p\(compact(Self.day(2, from: today)))"), "\(steps)")
                    #expect(steps.contains { $0.hasPrefix("dropped events_p") }, "\(steps)")
                    #expect(!steps.contains { $0.hasPrefix("dropped messages_legacy") || $0.hasPrefix("dropped events_legacy") }, "\(steps)")
                    #expect(try await app.request(.get, "/v1/messages/\(briefID.lowercased())", token: brief).status == 404)
                    let stays = try await app.request(.get, "/v1/messages/\(keeperID.lowercased())", token: keeper)
                    #expect(stays.status == 200 && (stays.json["events"] as? [Any])?.count == 2, "\(stays.body)")
                    #expect(try await Self.partitions(app, table: "events", column: "message_id", ids: [briefID]).isEmpty)
                    #expect(try await history.maintain(today: Self.day(10, from: today)).isEmpty, "nothing left to do")

                    // Every partition forces row-level security like the tables it belongs to.
                    let partitions = try await history.partitions()
                    #expect(partitions.contains { $0.name == "messages_queue" } && partitions.contains { $0.name == "messages_legacy" })
                    #expect(try await app.count("""
                        SELECT count(*)::int FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                        WHERE i.inhparent IN ('messages'::regclass, 'events'::regclass, 'webhook_deliveries'::regclass, 'webhook_attempts'::regclass)
                          AND NOT (c.relrowsecurity AND c.relforcerowsecurity)
                        """) == 0)
                }
            }
        }
    }

    /// The statistics are partitioned by their own day, with the installation's retention: a day that has no
    /// partition yet (here the application's clock runs 20 days ahead of the database's) waits in the DEFAULT
    /// partition and is counted from there; the upkeep makes its partition and moves it in; partitions go
    /// whole once their last day is past the retention, and rows left in the DEFAULT partition are deleted then.
    @Test func statisticsArePartitionedByTheirDay() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await SMTPTestServer.with { peer in
                try await TestApp.run(dnsPort: dns.port) { app in
                    let database = app.dependencies.database
                    let history = HistoryStore(database: database)
                    let today = try await database.withSystem { connection in
                        try await connection.query("SELECT herald_today()::text", logger: database.logger).decode(String.self).first { _ in true } ?? ""
                    }
                    let (tenant, _, keyID, secret) = try await app.sendingTenant(dns, name: "Counted")
                    app.clock.advance(20 * 86_400)
                    let token = try await app.token(keyID, secret)
                    let ahead = StatsDay.format(app.clock.now())
                    let sent = try await app.request(.post, "/v1/mail/single", token: token, json: TestApp.mail(to: ["ann@example.org"]))
                    #expect(sent.status == 200, "\(sent.body)")
                    #expect(try await app.deliveryWorker(dns: dns, smtp: peer).runOnce() == 1)
                    let waiting = "SELECT count(*)::int FROM ONLY %@_other WHERE tenant_id = '\(tenant)'"
                    #expect(try await app.count("SELECT sum(accepted + delivered)::int FROM ONLY message_stats_other WHERE tenant_id = '\(tenant)'") == 2)
                    #expect(try await app.count(String(format: waiting, "tenant_daily_stats")) == 1)
                    let counted = { () async throws -> [String: Any] in
                        let answer = try await app.request(.get, "/v1/stats?from=\(ahead)&until=\(ahead)", token: token)
                        #expect(answer.status == 200, "\(answer.body)")
                        return answer.json["total"] as? [String: Any] ?? [:]
                    }
                    var total = try await counted()
                    #expect(total["accepted"] as? Int == 1 && total["delivered"] as? Int == 1, "\(total)")

                    // The upkeep makes the week's partition and moves the waiting rows into it.
                    let week = try await app.count("SELECT (herald_partition_start('\(ahead)'::date, 7) - '\(today)'::date)::int")
                    let partition = Self.day(week, from: today).replacingOccurrences(of: "-", with: "")
                    let steps = try await history.maintain()
                    #expect(steps.contains { $0.hasPrefix("created message_stats_p\(partition) with ") && $0.hasSuffix(" rows from message_stats_other") },
                            "\(steps)")
                    #expect(steps.contains("created tenant_daily_stats_p\(partition) with 1 rows from tenant_daily_stats_other"), "\(steps)")
                    #expect(try await app.count(String(format: waiting, "message_stats")) == 0)
                    #expect(try await app.count("SELECT count(*)::int FROM ONLY tenant_daily_stats_p\(partition) WHERE tenant_id = '\(tenant)' AND sent = 1") == 1)
                    total = try await counted()
                    #expect(total["accepted"] as? Int == 1 && total["delivered"] as? Int == 1, "\(total)")

                    // A shorter retention: the week goes whole once its last day is 31 days old, and a row
                    // still waiting in the DEFAULT partition for a day past the retention is deleted.
                    let stray = Self.day(week + 40, from: today)
                    _ = try await app.count("""
                        WITH d AS (INSERT INTO tenant_daily_stats (tenant_id, day, sent) VALUES ('\(tenant)', '\(stray)', 3) RETURNING 1)
                        SELECT count(*)::int FROM d
                        """)
                    try await history.setRetention(webhookDays: 30, statsDays: 31)
                    let later = try await history.maintain(today: Self.day(week + 40 + 32, from: today))
                    #expect(later.contains("dropped message_stats_p\(partition)") && later.contains("dropped tenant_daily_stats_p\(partition)"),
                            "\(later)")
                    #expect(later.contains("deleted 1 rows past their retention from tenant_daily_stats_other"), "\(later)")
                    #expect(later.contains("dropped message_stats_legacy"), "the days before the migration go once the retention has passed: \(later)")
                    total = try await counted()
                    #expect(total["accepted"] as? Int == 0, "\(total)")
                    #expect(try await app.count("tenant_daily_stats", tenant: tenant) == 0)

                    // Every statistics partition forces row-level security.
                    #expect(try await app.count("""
                        SELECT count(*)::int FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                        WHERE i.inhparent IN ('message_stats'::regclass, 'tenant_daily_stats'::regclass)
                          AND NOT (c.relrowsecurity AND c.relforcerowsecurity)
                        """) == 0)
                    #expect(try await history.partitions().contains { $0.name == "tenant_daily_stats_other" && $0.from == nil })
                }
            }
        }
    }

    /// A retention change that needs a new partition waits at most a second for the queue partition's lock
    /// (held here by a long transaction), then is refused with 503 and changes nothing: the hot paths never
    /// queue behind it for longer.
    @Test func aRetentionChangeDoesNotWaitBehindALongTransaction() async throws {
        try await TestApp.run { app in
            let root = try await app.createTenant("Patient")
            let token = try await app.token(root.keyID, root.secret)
            let database = app.dependencies.database
            let holding = Task {
                try await database.withSystem { connection in
                    try await connection.query("LOCK TABLE messages_queue IN ACCESS SHARE MODE", logger: database.logger)
                    try await Task.sleep(for: .seconds(4))
                }
            }
            try await Task.sleep(for: .milliseconds(300))
            let started = ContinuousClock.now
            let refused = try await app.request(.put, "/v1/account/settings", token: token,
                                                json: ["trackOpensAndClicks": false, "unsubscribeLinkInTriggerMail": false, "messageRetentionDays": 7])
            let waited = ContinuousClock.now - started
            #expect(refused.status == 503 && refused.headers[.retryAfter] == "1", "\(refused.status) \(refused.body)")
            #expect(waited < .seconds(3), "\(waited)")
            try await holding.value
            #expect(try await app.request(.get, "/v1/account/settings", token: token).json["messageRetentionDays"] as? Int == 30)
            let changed = try await app.request(.put, "/v1/account/settings", token: token,
                                                json: ["trackOpensAndClicks": false, "unsubscribeLinkInTriggerMail": false, "messageRetentionDays": 7])
            #expect(changed.status == 200 && changed.json["messageRetentionDays"] as? Int == 7, "\(changed.body)")
        }
    }

    /// A final message that a process without `expires_on` (older than migration 0032, during a rolling
    /// upgrade) left in the queue partition is moved to its partition by the next upkeep.
    @Test func upkeepMovesFinalMessagesLeftInTheQueue() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await TestApp.run(dnsPort: dns.port) { app in
                let (tenant, token, _, _) = try await app.sendingTenant(dns)
                let sent = try await app.request(.post, "/v1/mail/single", token: token, json: TestApp.mail(to: ["ann@example.org"]))
                #expect(sent.status == 200, "\(sent.body)")
                _ = try await app.count("""
                    WITH d AS (UPDATE messages SET status = 'delivered' WHERE tenant_id = '\(tenant)' AND expires_on IS NULL RETURNING 1)
                    SELECT count(*)::int FROM d
                    """)
                #expect(try await app.count("SELECT count(*)::int FROM ONLY messages_queue WHERE status = 'delivered'") == 1)
                let steps = try await HistoryStore(database: app.dependencies.database).maintain()
                #expect(steps == ["moved 1 final messages out of messages_queue"], "\(steps)")
                #expect(try await app.count("SELECT count(*)::int FROM ONLY messages_queue") == 0)
                #expect(try await app.count("messages", tenant: tenant) == 1)
            }
        }
    }
}
