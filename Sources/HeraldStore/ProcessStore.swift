import Foundation
import HeraldCore
import Logging
import PostgresNIO

/// A running Herald process as the installation sees it (`herald_processes`).
public struct ProcessRecord: Sendable, Equatable, Codable {
    public var id: UUID
    public var roles: [String]
    public var host: String
    public var pid: Int
    public var httpPort: Int?
    public var startedAt: Date
    public var lastSeen: Date
    /// Seen within ``ProcessStore/liveWindow``.
    public var alive: Bool
    /// Shares of cluster-wide limits it holds now.
    public var shares: Int

    /// The names of `GET /admin/v1/processes`.
    enum CodingKeys: String, CodingKey {
        case id, roles, host, pid, httpPort, startedAt, lastSeen, alive
        case shares = "limitShares"
    }

    public init(id: UUID, roles: [String], host: String, pid: Int, httpPort: Int?, startedAt: Date = Date(), lastSeen: Date = Date(), alive: Bool = true, shares: Int = 0) {
        self.id = id
        self.roles = roles
        self.host = host
        self.pid = pid
        self.httpPort = httpPort
        self.startedAt = startedAt
        self.lastSeen = lastSeen
        self.alive = alive
        self.shares = shares
    }
}

/// The processes of the installation: each registers when it starts, says it is alive every few
/// seconds, and removes itself (with its shares of the cluster-wide limits) when it stops. Times are
/// the database's, so the hosts' clocks need not agree.
public struct ProcessStore: Sendable {
    let database: Database
    /// Seconds since its last heartbeat within which a process counts as alive (herald_limit_shares uses
    /// the same 10 s).
    public static let liveWindow = 10
    /// Seconds after which a process not seen is forgotten.
    public static let forgetAfter = 300

    public init(database: Database) {
        self.database = database
    }

    /// Registers `process` (again, if it was forgotten), or marks it seen; sweeps the processes and
    /// shares gone for good. Answers the live processes by role.
    @discardableResult
    public func heartbeat(_ process: ProcessRecord) async throws -> [String: Int] {
        try await database.connection { connection in
            let rows = try await connection.query("""
                WITH seen AS (
                    INSERT INTO herald_processes (id, roles, host, pid, http_port)
                    VALUES (\(process.id), \(process.roles), \(process.host), \(process.pid), \(process.httpPort))
                    ON CONFLICT (id) DO UPDATE SET last_seen = clock_timestamp()
                ), gone AS (
                    DELETE FROM herald_processes WHERE last_seen < clock_timestamp() - make_interval(secs => \(Self.forgetAfter))
                ), lapsed AS (
                    DELETE FROM herald_limit_shares WHERE expires_at < clock_timestamp() - interval '1 minute'
                )
                SELECT r, count(*)::int FROM herald_processes p, unnest(p.roles) r
                WHERE p.last_seen > clock_timestamp() - make_interval(secs => \(Self.liveWindow)) AND p.id <> \(process.id)
                GROUP BY r
                """, logger: database.logger)
            var live: [String: Int] = [:]
            for try await (role, count) in rows.decode((String, Int).self) { live[role] = count }
            for role in process.roles { live[role, default: 0] += 1 }
            return live
        }
    }

    /// Removes `id` and hands back its shares at once (a graceful stop).
    public func deregister(_ id: UUID) async throws {
        try await database.connection { connection in
            _ = try await connection.query("""
                WITH shares AS (DELETE FROM herald_limit_shares WHERE process_id = \(id))
                DELETE FROM herald_processes WHERE id = \(id)
                """, logger: database.logger)
        }
    }

    /// Seconds without a write after which a quota lease is handed back (idle, of a past day, or of a process
    /// that died; ``QuotaLease``).
    public static let quotaLeaseIdle = 10

    /// Hands back the quota leases of `holder` (a process that stops) and every lease idle for
    /// ``quotaLeaseIdle`` seconds: what they hold untaken returns to the tenant's day (`herald_quota_release`).
    public func releaseQuotaLeases(holder: UUID?) async throws {
        _ = try await database.withSystem { connection in
            try await connection.query("SELECT herald_quota_release(\(holder), \(Self.quotaLeaseIdle)::int4)", logger: database.logger)
        }
    }

    /// Every process known (alive or not yet forgotten), the newest first.
    public func list() async throws -> [ProcessRecord] {
        try await database.connection { connection in
            let rows = try await connection.query("""
                SELECT p.id, p.roles, p.host, p.pid, p.http_port, p.started_at, p.last_seen,
                       p.last_seen > clock_timestamp() - make_interval(secs => \(Self.liveWindow)),
                       (SELECT count(*)::int FROM herald_limit_shares s WHERE s.process_id = p.id AND s.expires_at > clock_timestamp())
                FROM herald_processes p ORDER BY p.started_at DESC, p.id
                """, logger: database.logger)
            var records: [ProcessRecord] = []
            for try await (id, roles, host, pid, port, started, seen, alive, shares) in rows.decode(
                (UUID, [String], String, Int, Int?, Date, Date, Bool, Int).self) {
                records.append(ProcessRecord(id: id, roles: roles, host: host, pid: pid, httpPort: port,
                                             startedAt: started, lastSeen: seen, alive: alive, shares: shares))
            }
            return records
        }
    }
}

/// The shares of the cluster-wide limits, traded in the database by one process (`process`): each
/// exchange locks its buckets, reads what the other live processes hold, lets ``LimitShareRule``
/// decide, and records the grants — one transaction of two statements for any number of buckets.
public struct LimitShareStore: LimitShareExchange {
    let database: Database
    /// The process the shares are recorded for.
    public let process: UUID

    public init(database: Database, process: UUID) {
        self.database = database
        self.process = process
    }

    public func exchange(_ requests: [ShareRequest], ttl: Double) async throws -> (grants: [Double], processes: Int) {
        guard !requests.isEmpty else { return ([], 1) }
        let buckets = requests.map(\.bucket)
        return try await database.transaction { connection in
            let rows = try await connection.query(
                "SELECT bucket, wants, granted, holders, roles FROM herald_limit_shares(\(process), \(buckets))", logger: database.logger)
            var others: [String: OtherShares] = [:]
            var live: [[String]] = []
            for try await (bucket, wants, granted, holders, roles) in rows.decode((String?, Double, Double, Int, [String]?).self) {
                if let bucket {
                    others[bucket] = OtherShares(wants: wants, granted: granted, holders: holders)
                } else {
                    live.append(roles ?? [])
                }
            }
            var counts: [[String]: Int] = [:]
            let grants = requests.map { request -> Double in
                let processes = counts[request.roles] ?? {
                    let count = live.filter { !Set($0).isDisjoint(with: request.roles) }.count
                    counts[request.roles] = count
                    return count
                }()
                return request.grant(others: others[request.bucket] ?? .none, processes: max(1, processes))
            }
            try await connection.query("""
                SELECT herald_limit_record(\(process), \(buckets), \(requests.map { $0.release ? 0 : $0.wants }), \(grants),
                                           \(requests.map { Double($0.holding) }), \(Int(ttl * 1000))::int)
                """, logger: database.logger)
            return (grants, max(1, live.count))
        }
    }
}
