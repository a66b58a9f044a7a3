import Foundation
import HeraldCore
import Logging
import PostgresNIO

/// One partition of the history (migrations 0032 and 0035): which table it belongs to and the days it holds
/// (expiry days; for the statistics, their own days).
public struct HistoryPartition: Sendable, Equatable {
    /// One of ``HistoryStore/tables``.
    public var parent: String
    public var name: String
    /// First day held (`yyyy-MM-dd`); nil for a legacy partition (rows from before the migration) and a DEFAULT one.
    public var from: String?
    /// The day after the last one held.
    public var until: String?
    /// The planner's estimate (no count, which would scan the table).
    public var estimatedRows: Int
}

/// The history's upkeep: partitions made ahead of the days that need them and dropped whole when their
/// last day is past (``herald_partition_step`` in migration 0032 decides each step). Steps run one per
/// transaction, under a short lock timeout (a step that cannot have its lock in time is tried again at
/// the next run), and only one process runs them at a time.
public struct HistoryStore: Sendable {
    /// Advisory lock key of the upkeep ("hist" in ASCII; herald_partition_step takes it too, so that a tenant's
    /// retention change and the upkeep never make the same partition at once).
    static let lockKey: Int64 = 0x68_69_73_74
    /// The partitioned history tables (migrations 0032 and 0035).
    public static let tables = ["messages", "events", "webhook_deliveries", "webhook_attempts", "message_stats", "tenant_daily_stats"]
    let database: Database

    public init(database: Database) {
        self.database = database
    }

    /// Runs upkeep steps as of `today` (nil: the database's UTC day) until none is left; answers what was
    /// done, in order. Stops early, answering what it did, when another process is running them.
    @discardableResult
    public func maintain(today: String? = nil, maxSteps: Int = 1_000) async throws -> [String] {
        var done: [String] = []
        for _ in 0..<maxSteps {
            let step = try await database.withSystem { connection in
                try await connection.query("SET LOCAL lock_timeout = '1s'", logger: database.logger)
                return try await connection.query("""
                    SELECT CASE WHEN pg_try_advisory_xact_lock(\(Self.lockKey))
                                THEN coalesce(herald_partition_step(coalesce(\(today)::date, herald_today()), false), '')
                                ELSE 'busy' END
                    """, logger: database.logger).decode(String.self).first { _ in true } ?? ""
            }
            if step.isEmpty || step == "busy" { break }
            done.append(step)
        }
        return done
    }

    /// The installation's retentions, from now on: finished webhook deliveries and their attempts are kept
    /// `webhookDays` after they finish (HERALD_WEBHOOK_RETENTION_DAYS), the statistics `statsDays` after their
    /// day (HERALD_STATS_RETENTION_DAYS).
    public func setRetention(webhookDays: Int, statsDays: Int) async throws {
        _ = try await database.withSystem { connection in
            try await connection.query("""
                UPDATE herald_partitioned
                SET fixed_days = CASE key_column WHEN 'day' THEN \(statsDays) ELSE \(webhookDays) END
                WHERE retention = 'fixed' AND fixed_days IS DISTINCT FROM CASE key_column WHEN 'day' THEN \(statsDays) ELSE \(webhookDays) END
                """, logger: database.logger)
        }
    }

    /// Makes the partitions that the rows of the transaction's tenant will need under its retention, in the caller's
    /// transaction (after a retention change, so that the next final message has its partition). Attaching a
    /// partition waits for the queue partition's lock: a second at most, so that a long transaction elsewhere
    /// cannot make the hot paths queue behind this one; then the change is refused with 503 (try again).
    static func prepare(_ connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query("SET LOCAL lock_timeout = '1s'", logger: logger)
        do {
            for _ in 0..<100 {
                let step = try await connection.query("SELECT herald_partition_step(herald_today(), true)", logger: logger)
                    .decode(String?.self).first { _ in true } ?? nil
                if step == nil { break }
            }
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == "55P03" {
            throw HeraldError.databaseUnavailable
        }
        try await connection.query("SET LOCAL lock_timeout = 0", logger: logger)
    }

    /// Every partition of the history tables, oldest expiry first.
    public func partitions() async throws -> [HistoryPartition] {
        try await database.withSystem { connection in
            var result: [HistoryPartition] = []
            for try await (parent, name, bound, rows) in try await connection.query("""
                SELECT p.parent, c.relname, pg_get_expr(c.relpartbound, c.oid), greatest(c.reltuples, 0)::bigint
                FROM herald_partitioned p JOIN pg_inherits i ON i.inhparent = p.parent::regclass JOIN pg_class c ON c.oid = i.inhrelid
                ORDER BY p.parent, c.relname
                """, logger: database.logger).decode((String, String, String, Int).self) {
                let days = bound.split(separator: "'").map(String.init).filter { $0.count == 10 && $0.first?.isNumber == true }
                let legacy = bound.contains("MINVALUE")
                result.append(HistoryPartition(parent: parent, name: name, from: legacy ? nil : days.first, until: legacy ? nil : days.last,
                                               estimatedRows: rows))
            }
            return result
        }
    }
}
