import Foundation
import HeraldCore
import HeraldStore
import HeraldTestSupport
import Logging
import PostgresNIO
import Synchronization
import Testing

/// The online migration of a populated database to the partitioned history (0030–0035), while a writer
/// that knows nothing of partitions (a process of the previous release) goes on writing: no row is lost
/// or duplicated, the queue moves to its partition and is claimed and delivered from there, the old final
/// messages and events stay readable in the legacy partitions, a webhook delivery of an old event is
/// still sent with that event, and the writer is never refused.
@Suite struct HistoryMigrationTests {
    static let box = SecretBox(masterKey: .random())
    static let statuses = ["queued", "deferred", "sending", "paused", "delivered", "bounced", "dropped", "failed"]

    @Test func aPopulatedDatabaseMigratesOnlineAndLosesNothing() async throws {
        try await withTestDatabase(migrated: false) { database, url in
            let logger = database.logger
            let all = try TestDatabases.migrations()
            try await Migrator(migrations: all.filter { $0.version <= "0029" }, logger: logger).migrate(client: database.client)
            let tenant = try await TenantStore(database: database, secrets: Self.box).create(name: "Old", actor: .cli).tenant.id
            let now = Date()
            _ = try await WebhookStore(database: database, secrets: Self.box)
                .create(tenantID: tenant, url: "https://hooks.example.test/h", eventTypes: ["*"], enabled: true, actor: .cli, now: now)
            // 20,000 messages of every status, each with its event (and so a webhook delivery each).
            _ = try await database.withSystem { connection in
                try await connection.query("""
                    WITH m AS (
                        INSERT INTO messages (id, tenant_id, request_id, kind, priority, from_address, to_address, subject, status, attempts,
                                              next_attempt_at, locked_by, locked_until, created_at, updated_at)
                        SELECT gen_random_uuid(), \(tenant), gen_random_uuid(), 'trigger', 1, 'app@example.test', 'r' || g || '@example.org', 's',
                               (\(Self.statuses)::text[])[1 + g % 8], CASE WHEN g % 8 IN (1, 2) THEN 1 ELSE 0 END,
                               CASE WHEN g % 8 IN (0, 1, 3) THEN \(now) - interval '1 minute' END,
                               CASE WHEN g % 8 = 2 THEN 'gone-worker' END, CASE WHEN g % 8 = 2 THEN \(now) - interval '1 minute' END,
                               \(now) - interval '1 day', \(now) - interval '1 day'
                        FROM generate_series(0, 19999) g
                        RETURNING id, tenant_id
                    )
                    INSERT INTO events (tenant_id, message_id, type, data, created_at)
                    SELECT tenant_id, id, 'message.accepted', jsonb_build_object('messageId', id), \(now) - interval '1 day' FROM m
                    """, logger: logger)
            }
            #expect(try await Self.count(database, "SELECT count(*)::int FROM webhook_deliveries WHERE status = 'pending'") == 20_000)
            // A month of the grades' daily figures (the sending statistics came with the events, by their trigger).
            _ = try await database.withSystem { connection in
                try await connection.query("""
                    INSERT INTO tenant_daily_stats (tenant_id, day, sent, delivered)
                    SELECT \(tenant), (now() AT TIME ZONE 'UTC')::date - g, 100, 90 FROM generate_series(0, 29) g
                    """, logger: logger)
            }
            #expect(try await Self.count(database, "SELECT sum(accepted)::int FROM message_stats") == 20_000)

            // The previous release's writes go on during the migration: a message and its event at a time.
            let stop = Atomic<Bool>(false)
            let writer = Task { () -> (written: Int, refused: [String], slowest: Duration) in
                var written = 0, refused: [String] = [], slowest = Duration.zero
                let clock = ContinuousClock()
                while !stop.load(ordering: .relaxed) {
                    let start = clock.now
                    do {
                        _ = try await database.withSystem { connection in
                            try await connection.query("""
                                WITH m AS (
                                    INSERT INTO messages (id, tenant_id, request_id, kind, priority, from_address, to_address, subject, status,
                                                          next_attempt_at)
                                    VALUES (gen_random_uuid(), \(tenant), gen_random_uuid(), 'trigger', 1, 'app@example.test', 'new@example.org', 's',
                                            'queued', now() + interval '1 hour')
                                    RETURNING id, tenant_id
                                )
                                INSERT INTO events (tenant_id, message_id, type, data) SELECT tenant_id, id, 'message.accepted', '{}' FROM m
                                """, logger: logger)
                        }
                        written += 1
                    } catch {
                        refused.append(String(reflecting: error))
                    }
                    slowest = max(slowest, clock.now - start)
                    try? await Task.sleep(for: .milliseconds(2))
                }
                return (written, refused, slowest)
            }
            try await Task.sleep(for: .milliseconds(100))
            let applied = try await Migrator(migrations: all, logger: logger).migrate(client: database.client)
            try await Task.sleep(for: .milliseconds(100))
            stop.store(true, ordering: .relaxed)
            let (written, refused, slowest) = await writer.value
            #expect(applied.contains("0032_history_partitions") && applied.contains("0035_stats_partitions"), "\(applied)")
            #expect(refused.isEmpty, "\(refused.prefix(3))")
            #expect(written > 0)
            print("HistoryMigrationTests: \(written) writes during the migration, the slowest took \(slowest)")
            #expect(slowest < .seconds(5), "0032 holds its locks for catalog changes only (0.13 s measured alone)")
            // The queue rows of the legacy partitions move out with the scheduler's upkeep (at its start).
            let steps = try await HistoryStore(database: database).maintain()
            #expect(steps.contains { $0.hasPrefix("moved 10000 waiting messages out of messages_legacy") }, "\(steps)")
            #expect(steps.contains { $0.hasPrefix("moved 10000 pending deliveries out of webhook_deliveries_legacy") }, "\(steps)")

            // Every row is there once; the queue is in its partition, the final rows in the legacy one.
            #expect(try await Self.count(database, "SELECT count(*)::int FROM messages") == 20_000 + written)
            #expect(try await Self.count(database, "SELECT count(DISTINCT id)::int FROM messages") == 20_000 + written)
            #expect(try await Self.count(database, "SELECT count(*)::int FROM events") == 20_000 + written)
            #expect(try await Self.count(database, "SELECT count(*)::int FROM ONLY messages_queue") == 10_000 + written)
            #expect(try await Self.count(database, """
                SELECT count(*)::int FROM ONLY messages_legacy WHERE status NOT IN ('delivered', 'bounced', 'dropped', 'failed')
                """) == 0)
            #expect(try await Self.count(database, "SELECT count(*)::int FROM ONLY messages_legacy") == 10_000)
            #expect(try await Self.count(database, "SELECT count(*)::int FROM ONLY events_legacy") >= 20_000)
            // The statistics counted every event, the old ones and the writer's, and kept their days in the legacy partition.
            #expect(try await Self.count(database, "SELECT sum(accepted)::int FROM message_stats") == 20_000 + written)
            #expect(try await Self.count(database, "SELECT sum(accepted)::int FROM ONLY message_stats_legacy") == 20_000 + written)
            #expect(try await Self.count(database, "SELECT count(*)::int FROM ONLY tenant_daily_stats_legacy") == 30)
            #expect(try await Self.count(database, "SELECT count(*)::int FROM tenant_daily_stats WHERE sent = 100 AND delivered = 90") == 30)

            // The queue goes on: due legacy rows (queued, deferred, a dead worker's lease) are claimed and
            // delivered, and leave the queue for their partition.
            let deliveries = DeliveryStore(database: database)
            let claimed = try await deliveries.claim(worker: "w1", limit: 10_000, now: Date(), lease: .seconds(60))
            #expect(claimed.count == 7_500, "queued, deferred and the expired leases are due; paused and future ones are not")
            try await deliveries.record(claimed.map { DeliveryAttempt(messageID: $0.id, result: .delivered, response: "250 ok") }, worker: "w1", now: Date())
            #expect(try await Self.count(database, "SELECT count(*)::int FROM ONLY messages_queue") == 2_500 + written)
            #expect(try await Self.count(database, "SELECT count(*)::int FROM messages WHERE status = 'delivered'") == 2_500 + 7_500)
            #expect(try await Self.count(database, """
                SELECT count(*)::int FROM messages WHERE status = 'delivered' AND expires_on = herald_today() + 30
                """) == 7_500)

            // The pending webhook deliveries (one per event) moved to their queue partition.
            #expect(try await Self.count(database, "SELECT count(*)::int FROM webhook_deliveries WHERE status = 'pending'")
                    == Self.count(database, "SELECT count(*)::int FROM ONLY webhook_deliveries_queue"))
            #expect(try await Self.count(database, "SELECT count(*)::int FROM ONLY webhook_deliveries_legacy") == 0)

            // A pending webhook delivery of an old event is claimed with that event.
            let hooks = WebhookStore(database: database, secrets: Self.box)
            let sent = try await hooks.claim(worker: "d1", limit: 5, excluding: [], now: Date().addingTimeInterval(60), lease: .seconds(30))
            #expect(sent.count == 5)
            #expect(sent.allSatisfy { String(decoding: $0.body, as: UTF8.self).contains("\"type\" : \"message.accepted\"")
                                      || String(decoding: $0.body, as: UTF8.self).contains("\"type\":\"message.accepted\"") },
                    "\(sent.first.map { String(decoding: $0.body, as: UTF8.self) } ?? "")")

            // Migrating again does nothing, and the row-level wall covers every partition.
            #expect(try await Migrator(migrations: all, logger: logger).migrate(client: database.client).isEmpty)
            #expect(try await Self.count(database, """
                SELECT count(*)::int FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
                  AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
                  AND NOT (c.relrowsecurity AND c.relforcerowsecurity)
                """) == 0)
            _ = url
        }
    }

    /// Schedulers claiming while others record: a claim can meet a row that left the queue partition for
    /// the history during the claim ("tuple to be locked was already moved to another partition", 40001),
    /// which Database.transaction runs again. Every message is delivered once and no claim fails.
    @Test func claimsGoOnWhileMessagesLeaveTheQueueUnderThem() async throws {
        try await withTestDatabase { database, _ in
            let tenant = try await TenantStore(database: database, secrets: Self.box).create(name: "Busy", actor: .cli).tenant.id
            _ = try await database.withSystem { connection in
                try await connection.query("""
                    INSERT INTO messages (id, tenant_id, request_id, kind, priority, from_address, to_address, subject, status, next_attempt_at)
                    SELECT gen_random_uuid(), \(tenant), gen_random_uuid(), 'trigger', 1, 'app@example.test', 'r' || g || '@example.org', 's',
                           'queued', now() - interval '1 minute'
                    FROM generate_series(1, 5000) g
                    """, logger: database.logger)
            }
            let store = DeliveryStore(database: database)
            let delivered = try await withThrowingTaskGroup(of: Int.self) { group in
                for worker in 0..<6 {
                    group.addTask {
                        var count = 0
                        while true {
                            let claimed = try await store.claim(worker: "w\(worker)", limit: 25, now: Date(), lease: .seconds(60))
                            if claimed.isEmpty { return count }
                            try await store.record(claimed.map { DeliveryAttempt(messageID: $0.id, result: .delivered, response: "250 ok") },
                                                   worker: "w\(worker)", now: Date())
                            count += claimed.count
                        }
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(delivered == 5000)
            #expect(try await Self.count(database, "SELECT count(*)::int FROM messages WHERE status = 'delivered' AND expires_on IS NOT NULL") == 5000)
            #expect(try await Self.count(database, "SELECT count(*)::int FROM events WHERE type = 'message.delivered'") == 5000)
            #expect(try await Self.count(database, "SELECT count(*)::int FROM ONLY messages_queue") == 0)
        }
    }

    static func count(_ database: Database, _ sql: String) async throws -> Int {
        try await database.withSystem { connection in
            try await connection.query(PostgresQuery(unsafeSQL: sql), logger: database.logger).decode(Int.self).first { _ in true } ?? -1
        }
    }
}
