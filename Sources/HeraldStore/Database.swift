import Foundation
import Synchronization
import HeraldCore
import Logging
import PostgresNIO
import Prometheus

/// The PostgreSQL pool plus the two kinds of transaction Herald uses.
///
/// A *tenant transaction* sets the row-level-security variable `herald.tenant_id`, so even a query
/// that forgot its tenant filter sees only that tenant's rows. A *system transaction* (operator actions,
/// token exchange, background workers) sets `herald.system`, and must scope its queries itself.
public struct Database: Sendable {
    /// The underlying pool; run it as a service (`client.run()`).
    public let client: PostgresClient
    /// Logger for queries.
    public let logger: Logger
    /// Pool and transaction metrics, when a registry is attached.
    public var metrics: DatabaseMetrics?
    /// Whether the hot statements are prepared (parsed and planned once per connection). Not through
    /// pgbouncer in transaction mode (`DATABASE_URL` with `pgbouncer=true`): a server connection there is
    /// shared by every client between transactions, so a statement one prepared is not the next one's.
    public var preparedStatements = true

    /// Wraps a pool.
    public init(client: PostgresClient, logger: Logger, metrics: DatabaseMetrics? = nil) {
        self.client = client
        self.logger = logger
        self.metrics = metrics
    }

    /// Runs `body` in a transaction scoped to `tenantID` by row-level security.
    public func withTenant<R: Sendable>(_ tenantID: UUID, _ body: @escaping (PostgresConnection) async throws -> R) async throws -> R {
        try await transaction { connection in
            try await connection.query("SELECT set_config('herald.tenant_id', \(tenantID.uuidString), true)", logger: logger)
            return try await body(connection)
        }
    }

    /// Runs `body` in a transaction that may see every tenant's rows.
    public func withSystem<R: Sendable>(_ body: @escaping (PostgresConnection) async throws -> R) async throws -> R {
        try await transaction { connection in
            try await connection.query("SELECT set_config('herald.system', 'on', true)", logger: logger)
            return try await body(connection)
        }
    }

    /// Answers whether the database is reachable (readiness).
    public func ping() async -> Bool {
        do {
            try await client.query("SELECT 1", logger: logger)
            return true
        } catch {
            return false
        }
    }

    /// How many times a transaction runs when it keeps losing a race (``isRetryable(_:)``).
    static let attempts = 4

    /// BEGIN … COMMIT around `body`, ROLLBACK on any error, rethrowing the body's own error unchanged
    /// (PostgresNIO's helper wraps it, and callers need to see a `HeraldError` as it was thrown). A
    /// transaction that lost a race the database could not resolve for it (``isRetryable(_:)``) is rolled
    /// back and run again, up to ``attempts`` times: its body does database work only, so running it again
    /// is what the first run would have done a moment later.
    func transaction<R: Sendable>(_ body: @escaping (PostgresConnection) async throws -> R) async throws -> R {
        var attempt = 1
        while true {
            do {
                return try await transactionOnce(body)
            } catch where attempt < Self.attempts && Self.isRetryable(error) {
                metrics?.retries.increment()
                try await Task.sleep(for: .milliseconds(Int.random(in: 1...5) * attempt))
                attempt += 1
            }
        }
    }

    /// A race lost inside the database: a serialization failure (40001; in READ COMMITTED, e.g. "tuple to be
    /// locked was already moved to another partition due to concurrent update", when a message this
    /// transaction wanted to lock left the queue partition for the history while it ran) or a deadlock
    /// (40P01).
    public static func isRetryable(_ error: any Error) -> Bool {
        guard let error = error as? PSQLError, error.code == .server else { return false }
        return ["40001", "40P01"].contains(error.serverInfo?[.sqlState] ?? "")
    }

    private func transactionOnce<R: Sendable>(_ body: @escaping (PostgresConnection) async throws -> R) async throws -> R {
        try await connection { connection in
            try await connection.query("BEGIN", logger: logger)
            let value: R
            do {
                value = try await body(connection)
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: logger)
                metrics?.rollbacks.increment()
                throw error
            }
            try await connection.query("COMMIT", logger: logger)
            metrics?.commits.increment()
            return value
        }
    }

    /// A connection of the pool for `body`, outside any transaction: each statement commits on its own, and
    /// one that needs the tenant scope sets it itself (as the accepting statements do).
    func connection<R: Sendable>(_ body: @escaping (PostgresConnection) async throws -> R) async throws -> R {
        let requested = ContinuousClock.now
        metrics?.waiting.increment()
        let lease = Lease()
        defer { if !lease.acquired { metrics?.waiting.decrement() } }
        return try await client.withConnection { connection in
            lease.acquired = true
            metrics?.acquired(after: ContinuousClock.now - requested)
            defer { metrics?.inUse.decrement() }
            return try await ConnectionWatch.shared.run(on: connection, logger: logger, UncheckedWork { try await body(connection) })
        }
    }
}

/// Database work that does not outlive its connection. PostgresNIO 1.33 can leave a query that was sent as its
/// connection closed waiting forever (vapor/postgres-nio#487, reverted in #501): seen when the database fails
/// over (`ops/failover-test`), where such a request never got an answer and its pool connection was never
/// given back. So the work runs in a task of its own, and a second after its connection closed, a caller still
/// waiting gets ``HeraldError/databaseUnavailable`` (503, retry) and its lease returns to the pool; the stuck
/// task is left behind, holding nothing but its memory.
final class ConnectionWatch: Sendable {
    static let shared = ConnectionWatch()
    /// How long work may go on after its connection closed.
    static let grace = TimeAmount.seconds(1)

    /// Answers the one caller of one piece of work once: with its result, or with the connection's loss.
    final class Waiter: Sendable {
        private let continuation = Mutex<UnsafeContinuation<any Sendable, any Error>?>(nil)

        init(_ continuation: UnsafeContinuation<any Sendable, any Error>) {
            self.continuation.withLock { $0 = continuation }
        }

        func resume(_ result: Result<any Sendable, any Error>) {
            continuation.withLock { $0.take() }?.resume(with: result)
        }
    }

    /// The work under way on each open connection (a connection is watched from its first work until a
    /// second after its close), and the number of the last work. The entry holds its connection, so that
    /// no new connection can be made at the same address (and so under the same key) while it is watched:
    /// the old one's grace would otherwise abandon the new one's work.
    private let watched = Mutex<(byConnection: [ObjectIdentifier: (connection: PostgresConnection, work: [UInt64: Waiter])], last: UInt64)>(([:], 0))

    func run<R: Sendable>(on connection: PostgresConnection, logger: Logger, _ box: UncheckedWork<R>) async throws -> R {
        let key = ObjectIdentifier(connection)
        let value = try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<any Sendable, any Error>) in
            let waiter = Waiter(continuation)
            let (id, first) = watched.withLock { watched -> (UInt64, Bool) in
                watched.last &+= 1
                let first = watched.byConnection[key] == nil
                watched.byConnection[key, default: (connection, [:])].work[watched.last] = waiter
                return (watched.last, first)
            }
            if first {
                connection.closeFuture.whenComplete { [self] _ in
                    connection.eventLoop.scheduleTask(in: Self.grace) {
                        let stuck = self.watched.withLock { $0.byConnection.removeValue(forKey: key)?.work } ?? [:]
                        if !stuck.isEmpty {
                            logger.warning("database work still waiting a second after its connection closed: abandoned",
                                           metadata: ["count": "\(stuck.count)"])
                        }
                        for waiter in stuck.values { waiter.resume(.failure(HeraldError.databaseUnavailable)) }
                    }
                }
            }
            Task {
                let result: Result<any Sendable, any Error>
                do { result = .success(try await box.work()) } catch { result = .failure(error) }
                _ = self.watched.withLock { $0.byConnection[key]?.work.removeValue(forKey: id) }
                waiter.resume(result)
            }
        }
        guard let typed = value as? R else { throw HeraldError(code: "Internal", kind: .internal, message: "Database work returned the wrong type.") }
        return typed
    }
}

/// The work of ``ConnectionWatch/run(on:logger:_:)``, handed to the task that runs it while its caller waits
/// (the caller touches nothing it captured until the work is done or abandoned).
struct UncheckedWork<R>: @unchecked Sendable {
    let work: () async throws -> R
    init(_ work: @escaping () async throws -> R) { self.work = work }
}

extension PostgresConnection {
    /// The rows of `statement`, run prepared or, when `prepared` is false, as an unnamed statement with
    /// the same text and values (``Database/preparedStatements``).
    func run<Statement: PostgresPreparedStatement>(_ statement: Statement, prepared: Bool, logger: Logger) async throws -> [Statement.Row] {
        var rows: [Statement.Row] = []
        if prepared {
            for try await row in try await execute(statement, logger: logger) { rows.append(row) }
        } else {
            for try await row in try await query(PostgresQuery(unsafeSQL: Statement.sql, binds: try statement.makeBindings()), logger: logger) {
                rows.append(try statement.decodeRow(row))
            }
        }
        return rows
    }
}

extension Database {
    /// Whether `error` says the database cannot be reached right now — a connection lost or refused, a
    /// server shutting down, starting, or no longer taking writes (a demoted primary) — so the request is
    /// worth repeating once it is back (a failover), rather than a fault of Herald's.
    public static func isUnavailable(_ error: any Error) -> Bool {
        if let error = error as? PSQLError {
            switch error.code {
            case .serverClosedConnection, .clientClosedConnection, .connectionError, .uncleanShutdown, .poolClosed:
                return true
            case .server:
                let state = error.serverInfo?[.sqlState] ?? ""
                // 08: connection exceptions; 57P01-57P03: shut down or not yet accepting; 25006: read-only.
                return state.hasPrefix("08") || ["57P01", "57P02", "57P03", "25006"].contains(state)
            default:
                return false
            }
        }
        // The pool's own (no connection could be made); its module is not one Herald imports.
        return String(describing: type(of: error)) == "ConnectionPoolError"
    }
}

/// Whether a transaction got its connection; written inside `withConnection` and read after it returned,
/// so the accesses are ordered by the await between them.
private final class Lease: @unchecked Sendable {
    var acquired = false
}

/// The database pool as Prometheus sees it: connections in use and awaited, how long a transaction
/// waited for its connection, transactions by outcome, and those run again.
public struct DatabaseMetrics: Sendable {
    let inUse: Gauge
    let waiting: Gauge
    let acquireTime: DurationHistogram
    let commits: Counter
    let rollbacks: Counter
    let retries: Counter

    /// Registers the metrics in `registry`; `poolSize` is published as `herald_db_pool_max_connections`.
    public init(registry: PrometheusCollectorRegistry, poolSize: Int) {
        registry.makeGauge(descriptor: .init(metricName: "herald_db_pool_max_connections", unitName: "", helpText: "Most connections the pool opens"))
            .set(Double(poolSize))
        inUse = registry.makeGauge(descriptor: .init(metricName: "herald_db_connections_in_use", unitName: "", helpText: "Connections leased to transactions now"))
        waiting = registry.makeGauge(descriptor: .init(metricName: "herald_db_connections_waiting", unitName: "", helpText: "Transactions waiting for a connection now"))
        acquireTime = registry.makeDurationHistogram(
            descriptor: .init(metricName: "herald_db_connection_acquire", unitName: "seconds", helpText: "Time a transaction waited for its connection"),
            buckets: [.microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(5),
                      .milliseconds(25), .milliseconds(100), .milliseconds(500), .seconds(2)])
        let transactions = MetricNameDescriptor(metricName: "herald_db_transactions", unitName: "total", helpText: "Transactions by outcome")
        commits = registry.makeCounter(descriptor: transactions, labels: [("outcome", "commit")])
        rollbacks = registry.makeCounter(descriptor: transactions, labels: [("outcome", "rollback")])
        retries = registry.makeCounter(descriptor: .init(metricName: "herald_db_transaction_retries", unitName: "total",
                                                         helpText: "Transactions run again after losing a race in the database (40001, 40P01)"),
                                       labels: [])
    }

    func acquired(after wait: Duration) {
        waiting.decrement()
        inUse.increment()
        acquireTime.record(wait)
    }
}

extension PostgresError.Code {
    /// unique_violation
    static let uniqueViolation = PostgresError.Code(raw: "23505")
    /// foreign_key_violation
    static let foreignKeyViolation = PostgresError.Code(raw: "23503")
}

extension Error {
    /// Whether this is PostgreSQL's foreign-key violation (a referenced row still in use).
    func isForeignKeyViolation() -> Bool {
        (self as? PSQLError)?.serverInfo?[.sqlState] == PostgresError.Code.foreignKeyViolation.raw
    }

    /// Whether this is PostgreSQL's unique-constraint violation (optionally on the named constraint).
    func isUniqueViolation(constraint: String? = nil) -> Bool {
        guard let error = self as? PSQLError, error.serverInfo?[.sqlState] == PostgresError.Code.uniqueViolation.raw else { return false }
        if let constraint { return error.serverInfo?[.constraintName] == constraint }
        return true
    }
}
