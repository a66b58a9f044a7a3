import Foundation
import HeraldCore
import Logging
import PostgresNIO
import Prometheus
import Synchronization

/// What a ``TenantCache`` is keyed by: something of one tenant.
public protocol TenantScopedKey: Hashable, Sendable {
    var tenantID: UUID { get }
}

/// What ``TenantChangeListener`` tells every tenant cache of the process.
public protocol TenantChangeObserver: Sendable {
    /// A change to the tenant was announced.
    func invalidate(tenantID: UUID)
    /// Everything goes; afterwards the cache serves only if `live`.
    func reset(live: Bool)
}

/// Facts of tenants kept in the process — principals (a caller's user, key, policies, IP protection and
/// account status), a tenant's IP allowlist, a sender's SMTP password fingerprint — so that the hot paths
/// need no database round trip for them, and dropped the moment PostgreSQL says they changed.
///
/// Every change to what such a fact holds notifies the channel `herald_principal` with the tenant's id
/// (migrations 0025 and 0026), and ``TenantChangeListener`` drops that tenant's entries when the
/// notification arrives. A cache serves only while the listener's connection is up (``isLive``): when it
/// is lost, every entry goes and lookups read the database until a new `LISTEN` is in place, so a lost
/// notification can never leave a stale grant.
///
/// A lookup that missed reads the database and stores what it read only if no change to that tenant was
/// announced meanwhile (``Ticket``): a read that raced a change is used once and not kept.
public final class TenantCache<Key: TenantScopedKey, Value: Sendable>: TenantChangeObserver {
    struct Entry {
        var value: Value
        var storedAt: ContinuousClock.Instant
    }

    struct State {
        var live = false
        /// Raised when everything is dropped (the listener connected or was lost).
        var epoch: UInt64 = 0
        /// Raised for a tenant when its facts changed (kept only for tenants seen since the last full drop).
        var tenantEpochs: [UUID: UInt64] = [:]
        /// By tenant, so that a tenant's change drops its entries without walking everyone's (a tenant that
        /// changes its settings in a loop must not make other tenants' lookups wait on the lock).
        var entries: [UUID: [Key: Entry]] = [:]
        var count = 0
    }

    /// What a lookup that missed saw before it read the database; its result is kept only if nothing
    /// changed since.
    public struct Ticket: Sendable {
        let epoch: UInt64
        let tenantEpoch: UInt64
    }

    private let state = Mutex(State())
    /// The longest an entry is served, notifications or not.
    let maxAge: Duration
    /// The most entries kept; past that the cache starts again empty.
    let capacity: Int
    let metrics: TenantCacheMetrics?

    public init(maxAge: Duration = .seconds(60), capacity: Int = 100_000, metrics: TenantCacheMetrics? = nil) {
        self.maxAge = maxAge
        self.capacity = capacity
        self.metrics = metrics
    }

    /// Whether the cache serves (its listener is connected and listening).
    public var isLive: Bool { state.withLock { $0.live } }

    /// The number of entries held now.
    public var count: Int { state.withLock { $0.count } }

    /// The value of `key` if it is held and fresh; otherwise a ticket to store the one read from the
    /// database (nil when the cache does not serve).
    public func lookup(_ key: Key) -> (Value?, Ticket?) {
        let now = ContinuousClock.now
        let (value, ticket): (Value?, Ticket?) = state.withLock { state in
            guard state.live else { return (nil, nil) }
            if let entry = state.entries[key.tenantID]?[key] {
                if now - entry.storedAt < maxAge { return (entry.value, nil) }
                state.entries[key.tenantID]?[key] = nil
                state.count -= 1
            }
            return (nil, Ticket(epoch: state.epoch, tenantEpoch: state.tenantEpochs[key.tenantID] ?? 0))
        }
        if value != nil { metrics?.hits.increment() } else if ticket != nil { metrics?.misses.increment() }
        return (value, ticket)
    }

    /// Keeps a value read from the database after `ticket` was taken, unless its tenant changed (or
    /// everything was dropped) since.
    public func store(_ value: Value, for key: Key, ticket: Ticket) {
        state.withLock { state in
            guard state.live, state.epoch == ticket.epoch, (state.tenantEpochs[key.tenantID] ?? 0) == ticket.tenantEpoch else { return }
            if state.count >= capacity {
                state.entries.removeAll()
                state.count = 0
            }
            if state.entries[key.tenantID, default: [:]].updateValue(Entry(value: value, storedAt: ContinuousClock.now), forKey: key) == nil {
                state.count += 1
            }
        }
    }

    /// The value of `key`: from memory when the cache serves and holds it, otherwise from `load` (kept
    /// when nothing changed meanwhile; a nil answer is not kept).
    public func value(_ key: Key, load: () async throws -> Value?) async throws -> Value? {
        let (cached, ticket) = lookup(key)
        if let cached { return cached }
        let value = try await load()
        if let value, let ticket { store(value, for: key, ticket: ticket) }
        return value
    }

    /// The value of `key` from `cache` (see ``value(_:load:)``), or from `load` when there is no cache.
    public static func value(in cache: TenantCache?, _ key: Key, load: () async throws -> Value?) async throws -> Value? {
        guard let cache else { return try await load() }
        return try await cache.value(key, load: load)
    }

    public func invalidate(tenantID: UUID) {
        state.withLock { state in
            state.tenantEpochs[tenantID, default: 0] &+= 1
            state.count -= state.entries.removeValue(forKey: tenantID)?.count ?? 0
        }
        metrics?.invalidations.increment()
    }

    public func reset(live: Bool) {
        state.withLock { state in
            state.live = live
            state.epoch &+= 1
            state.tenantEpochs.removeAll()
            state.entries.removeAll()
            state.count = 0
        }
        metrics?.live.set(Double(live ? 1 : 0))
    }
}

/// A caller: the claims of a token.
public struct PrincipalKey: TenantScopedKey {
    public var tenantID: UUID
    public var userID: UUID
    public var accessKeyID: String

    public init(tenantID: UUID, userID: UUID, accessKeyID: String) {
        self.tenantID = tenantID
        self.userID = userID
        self.accessKeyID = accessKeyID
    }
}

/// A tenant as a whole (its IP allowlist).
public struct TenantKey: TenantScopedKey {
    public var tenantID: UUID

    public init(tenantID: UUID) {
        self.tenantID = tenantID
    }
}

/// A sender of a tenant (its SMTP password's fingerprint).
public struct SenderKey: TenantScopedKey {
    public var tenantID: UUID
    public var senderID: UUID

    public init(tenantID: UUID, senderID: UUID) {
        self.tenantID = tenantID
        self.senderID = senderID
    }
}

/// Callers as they are now (see ``TenantCache``).
public typealias PrincipalCache = TenantCache<PrincipalKey, Principal>

/// A tenant cache as Prometheus sees it, labelled with what it holds (`cache`).
public struct TenantCacheMetrics: Sendable {
    let hits: Counter
    let misses: Counter
    let invalidations: Counter
    let live: Gauge

    public init(registry: PrometheusCollectorRegistry, cache: String) {
        let lookups = MetricNameDescriptor(metricName: "herald_tenant_cache_lookups", unitName: "total",
                                           helpText: "Lookups of the in-process tenant caches by where they were answered")
        hits = registry.makeCounter(descriptor: lookups, labels: [("cache", cache), ("result", "hit")])
        misses = registry.makeCounter(descriptor: lookups, labels: [("cache", cache), ("result", "miss")])
        invalidations = registry.makeCounter(descriptor: .init(metricName: "herald_tenant_cache_invalidations", unitName: "total",
                                                               helpText: "Tenants whose cached facts were dropped on a change"),
                                             labels: [("cache", cache)])
        live = registry.makeGauge(descriptor: .init(metricName: "herald_tenant_cache_live", unitName: "",
                                                    helpText: "1 while the cache's LISTEN connection is up and the cache serves"),
                                  labels: [("cache", cache)])
    }
}

/// Why the listening connection was given up.
struct ListenerLost: Error, CustomStringConvertible {
    var reason: String
    var description: String { reason }
}

/// Keeps the process's ``TenantCache``s truthful: one direct connection (never through a pooler, which would not keep
/// the session's `LISTEN`) listening on `herald_principal`, a ping every few seconds so that a dead
/// connection is noticed, and a new connection after a loss. The cache serves only between the moment
/// `LISTEN` is in place and the moment the connection is lost.
public struct TenantChangeListener: Sendable {
    public static let channel = "herald_principal"
    /// The listening session's `application_name` (in `pg_stat_activity`).
    public static let applicationName = "herald tenant change listener"
    let caches: [any TenantChangeObserver]
    let configuration: PostgresConnection.Configuration
    let logger: Logger
    /// How often the connection is checked.
    var pingInterval: Duration = .seconds(5)
    /// How long a check may take before the connection counts as lost.
    var pingTimeout: Duration = .seconds(3)

    public init(caches: [any TenantChangeObserver], url: DatabaseURL, logger: Logger) throws {
        self.caches = caches
        var configuration = try url.connectionConfiguration()
        configuration.options.additionalStartupParameters.append(("application_name", Self.applicationName))
        self.configuration = configuration
        self.logger = logger
    }

    private func reset(live: Bool) {
        for cache in caches { cache.reset(live: live) }
    }

    /// Listens until cancelled, reconnecting after a loss (1 s, doubling to 30 s). Nothing on the way out of
    /// a lost connection waits on that connection: the cache stops serving first.
    public func run() async {
        var backoff: Duration = .seconds(1)
        var connectionID = 0
        while !Task.isCancelled {
            connectionID += 1
            do {
                let connection = try await PostgresConnection.connect(configuration: configuration, id: connectionID, logger: logger)
                defer { Task { try? await connection.close() } }
                try await listen(on: connection) { backoff = .seconds(1) }
            } catch where Task.isCancelled {
                break
            } catch {
                reset(live: false)
                logger.warning("tenant caches: LISTEN connection lost; requests read from the database until it is back",
                               metadata: ["error": "\(String(reflecting: error))"])
            }
            reset(live: false)
            guard !Task.isCancelled else { break }
            try? await Task.sleep(for: backoff)
            backoff = min(backoff * 2, .seconds(30))
        }
        reset(live: false)
    }

    /// Listens on one connection until it fails or the task is cancelled.
    private func listen(on connection: PostgresConnection, connected: () -> Void) async throws {
        try await connection.listen(on: Self.channel) { notifications in
            // LISTEN is in place: from now on every change is heard, so what was kept before can go.
            reset(live: true)
            connected()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for try await notification in notifications {
                        if let tenantID = UUID(uuidString: notification.payload) {
                            for cache in caches { cache.invalidate(tenantID: tenantID) }
                        } else {
                            reset(live: true)
                        }
                    }
                    throw ListenerLost(reason: "the notifications ended")
                }
                group.addTask {
                    while true {
                        try await Task.sleep(for: pingInterval)
                        try await Self.ping(connection, timeout: pingTimeout, logger: logger)
                    }
                }
                do {
                    try await group.next()
                } catch {
                    reset(live: false)
                    group.cancelAll()
                    throw error
                }
            }
        }
    }

    /// `SELECT 1` on the listening connection, answered within `timeout`; a query that hangs on a dead
    /// connection is left behind (cancelled), not waited for.
    static func ping(_ connection: PostgresConnection, timeout: Duration, logger: Logger) async throws {
        let answer = Answer()
        let result: Result<Void, any Error> = await withCheckedContinuation { continuation in
            answer.waiting(continuation)
            let query = Task {
                do {
                    try await connection.query("SELECT 1", logger: logger)
                    answer.resume(.success(()))
                } catch {
                    answer.resume(.failure(error))
                }
            }
            Task {
                try? await Task.sleep(for: timeout)
                query.cancel()
                answer.resume(.failure(ListenerLost(reason: "no answer to a ping within \(timeout)")))
            }
        }
        try result.get()
    }

    /// The first of two racing answers.
    final class Answer: Sendable {
        private let continuation = Mutex<CheckedContinuation<Result<Void, any Error>, Never>?>(nil)

        func waiting(_ continuation: CheckedContinuation<Result<Void, any Error>, Never>) {
            self.continuation.withLock { $0 = continuation }
        }

        func resume(_ result: Result<Void, any Error>) {
            continuation.withLock { $0.take() }?.resume(returning: result)
        }
    }
}
