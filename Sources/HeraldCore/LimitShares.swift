import Foundation
import Synchronization

/// One process's request for its share of a cluster-wide limit.
public struct ShareRequest: Sendable, Equatable {
    /// The limit's name across the installation (`tenant:<id>`, `sender:<id>|<address>`, …).
    public var bucket: String
    /// The limit (per second, for every process together).
    public var limit: Double
    /// This process's measured demand (per second); with `release`, nothing.
    public var wants: Double
    /// The process hands its share back (it has not used the bucket for a while).
    public var release: Bool
    /// The roles whose processes share the limit (`api`, `smtp`): the others never ask for it.
    public var roles: [String]
    /// The limit counts whole things (connections): grants are whole numbers
    /// (``LimitShareRule/wholeGrant(limit:wants:others:processes:)``).
    public var whole: Bool
    /// Whole things the process holds now: until it gives them back, the others are not granted them,
    /// even when its own grant shrank below them.
    public var holding: Int

    public init(bucket: String, limit: Double, wants: Double, release: Bool = false, roles: [String], whole: Bool = false, holding: Int = 0) {
        self.bucket = bucket
        self.limit = limit
        self.wants = wants
        self.release = release
        self.roles = roles
        self.whole = whole
        self.holding = holding
    }

    /// This request's grant, given what the others hold (``LimitShareRule``).
    public func grant(others: OtherShares, processes: Int) -> Double {
        if release { return 0 }
        if whole { return Double(LimitShareRule.wholeGrant(limit: Int(limit), wants: wants, others: others, processes: processes)) }
        return LimitShareRule.grant(limit: limit, wants: wants, others: others, processes: processes)
    }
}

/// Where the processes trade their shares (the database, in production): the exchange locks each
/// bucket, decides each grant with ``LimitShareRule`` from what the others hold, and records it for
/// `ttl` seconds.
public protocol LimitShareExchange: Sendable {
    /// The grants (per second) for `requests`, in their order (0 for a release), and the number of live
    /// processes of the installation (of any role).
    func exchange(_ requests: [ShareRequest], ttl: Double) async throws -> (grants: [Double], processes: Int)
}

/// What holds shares through a ``LimitShareBook``: a limiter's keys and their grants.
protocol ShareHolder: AnyObject, Sendable {
    /// The requests for `keys` (nil: every key in use), measuring each one's demand since its last
    /// exchange; keys unused for `idleRelease` seconds are handed back.
    func requests(for keys: Set<String>?, at time: Double, idleRelease: Double) -> [ShareRequest]
    /// Applies the grants of an exchange that started at `start`, each holding until `until`.
    func apply(_ requests: [ShareRequest], grants: ArraySlice<Double>, from start: Double, until: Double)
    /// Grants each of `buckets` the limit split evenly over `processes`, until `until`.
    func fallback(_ buckets: [String], processes: Int, until: Double, at time: Double)
}

/// The process's side of the cluster-wide limits: every ``SharedRateLimiter`` of the process registers
/// here, and its buckets' shares are renewed together — every `interval` for all buckets in use (one
/// exchange for all of them, by ``renew()``), and at once for a bucket the process meets for the first
/// time or runs dry (coalesced: the requests that arrive while an exchange is under way all go in the
/// next). One exchange is under way at a time, so grants are applied in the order they were recorded.
///
/// When an exchange fails (the database is away), each bucket asked for gets the limit divided by the
/// number of processes last seen, for `fallbackHold` seconds, and no exchange is tried before then.
public actor LimitShareBook {
    public struct Settings: Sendable {
        /// Seconds between renewals of every share.
        public var interval: Double = 1
        /// Seconds a grant holds (longer than `interval`, so a renewal that is late does not drop it; a
        /// crashed process's grants are free again after this).
        public var ttl: Double = 3
        /// Seconds between two urgent renewals of one bucket that ran dry.
        public var urgentSpacing: Double = 0.1
        /// Seconds without use after which a bucket's share is handed back.
        public var idleRelease: Double = 30
        /// Seconds the fallback grants hold after a failed exchange.
        public var fallbackHold: Double = 1

        public init() {}
    }

    public nonisolated let settings: Settings
    let exchanger: (any LimitShareExchange)?
    nonisolated let now: @Sendable () -> Double
    private nonisolated let registered = Mutex<[any ShareHolder]>([])
    private var urgent: [ObjectIdentifier: Set<String>] = [:]
    private var renewAll = false
    private var waiters: [CheckedContinuation<Void, Never>] = []
    private var exchanging = false
    private var backoffUntil = -Double.infinity
    /// Live processes of the installation, as last seen (this one included).
    public private(set) var processes = 1
    /// The error of the last exchange, when it failed (nil once one succeeds).
    public private(set) var lastFailure: String?

    /// A book trading through `exchanger`; without one every limit is this process's alone.
    public init(exchanger: (any LimitShareExchange)?, settings: Settings = Settings(),
                now: @escaping @Sendable () -> Double = TokenBucketLimiter.monotonicSeconds) {
        self.exchanger = exchanger
        self.settings = settings
        self.now = now
    }

    nonisolated func register(_ limiter: any ShareHolder) {
        registered.withLock { $0.append(limiter) }
    }

    /// Renews the share of every bucket in use, and hands back those not used for `idleRelease`.
    public func renew() async {
        renewAll = true
        await exchangeSoon()
    }

    /// A share for `key` of `limiter` as soon as possible.
    func share(_ limiter: any ShareHolder, _ key: String) async {
        let time = now()
        if exchanger == nil {
            // Alone: the whole limit, for good.
            limiter.fallback([key], processes: 1, until: .infinity, at: time)
            return
        }
        if time < backoffUntil {
            limiter.fallback([key], processes: processes, until: backoffUntil, at: time)
            return
        }
        urgent[ObjectIdentifier(limiter), default: []].insert(key)
        await exchangeSoon()
    }

    /// Waits for the next exchange (which starts now, unless one is under way: then it follows it).
    private func exchangeSoon() async {
        await withCheckedContinuation { continuation in
            waiters.append(continuation)
            if !exchanging {
                exchanging = true
                Task { await self.drain() }
            }
        }
    }

    private func drain() async {
        while !waiters.isEmpty {
            let waiting = waiters, all = renewAll, keys = urgent
            waiters = []
            renewAll = false
            urgent = [:]
            await exchange(all: all, urgent: keys)
            for waiter in waiting { waiter.resume() }
        }
        exchanging = false
    }

    private func exchange(all: Bool, urgent: [ObjectIdentifier: Set<String>]) async {
        let time = now()
        var batches: [(limiter: any ShareHolder, requests: [ShareRequest])] = []
        for limiter in registered.withLock({ $0 }) {
            let keys = urgent[ObjectIdentifier(limiter)]
            guard all || keys != nil else { continue }
            let requests = limiter.requests(for: all ? nil : keys, at: time, idleRelease: settings.idleRelease)
            if !requests.isEmpty { batches.append((limiter, requests)) }
        }
        guard !batches.isEmpty else { return }
        guard let exchanger, time >= backoffUntil else {
            for (limiter, requests) in batches {
                limiter.fallback(requests.filter { !$0.release }.map(\.bucket), processes: processes, until: max(backoffUntil, time + settings.fallbackHold), at: time)
            }
            return
        }
        do {
            let (grants, processes) = try await exchanger.exchange(batches.flatMap(\.requests), ttl: settings.ttl)
            self.processes = max(1, processes)
            lastFailure = nil
            var offset = 0
            for (limiter, requests) in batches {
                limiter.apply(requests, grants: grants[offset..<offset + requests.count], from: time, until: time + settings.ttl)
                offset += requests.count
            }
        } catch {
            lastFailure = String(reflecting: error)
            backoffUntil = time + settings.fallbackHold
            for (limiter, requests) in batches {
                limiter.fallback(requests.filter { !$0.release }.map(\.bucket), processes: processes, until: backoffUntil, at: time)
            }
        }
    }
}

/// One key's share as a process keeps it: its grant and its measured demand.
protocol ShareEntry: Sendable {
    init(at time: Double)
    /// When the key was last used (a key unused for `idleRelease` seconds is handed back).
    var lastUse: Double { get }
    /// The demand last sent (per second, or things wanted at once).
    var wants: Double { get set }
    /// The demand since the last exchange, restarting the count.
    mutating func measure(at time: Double) -> Double
    /// Whole things held now (connections in use), which the grant must cover.
    var holding: Int { get }
    /// Takes a grant (of an exchange that started at `start`) holding until `until`.
    /// (`scale`: the limit's burst per unit of rate.)
    mutating func take(grant: Double, scale: Double, at time: Double, from start: Double, until: Double)
}

/// The keys of one limit and their shares: what ``LimitShareBook`` asks of every limit (the requests of
/// an exchange, its grants, the fallback when it fails), the same for rates and for caps.
final class ShareTable<Entry: ShareEntry>: ShareHolder, Sendable {
    /// The bucket names' prefix.
    let name: String
    let limit: Double
    let roles: [String]
    /// Grants are whole things (connections).
    let whole: Bool
    /// Burst per unit of rate (the bucket a grant of one per second gets).
    let scale: Double
    let entries = Mutex<[String: Entry]>([:])
    let now: @Sendable () -> Double

    init(name: String, limit: Double, roles: [String], whole: Bool = false, scale: Double = 1, now: @escaping @Sendable () -> Double) {
        self.name = name
        self.limit = limit
        self.roles = roles
        self.whole = whole
        self.scale = scale
        self.now = now
    }

    func requests(for keys: Set<String>?, at time: Double, idleRelease: Double) -> [ShareRequest] {
        entries.withLock { entries in
            var requests: [ShareRequest] = []
            for key in keys.map(Array.init) ?? Array(entries.keys) {
                guard var entry = entries[key] else { continue }
                let bucket = name + ":" + key
                if time - entry.lastUse >= idleRelease {
                    requests.append(ShareRequest(bucket: bucket, limit: limit, wants: 0, release: true, roles: roles, whole: whole, holding: entry.holding))
                    continue
                }
                // Demand rises at once and falls by halves.
                let measured = entry.measure(at: time)
                entry.wants = measured >= entry.wants ? measured : (entry.wants + measured) / 2
                entries[key] = entry
                requests.append(ShareRequest(bucket: bucket, limit: limit, wants: entry.wants, roles: roles, whole: whole, holding: entry.holding))
            }
            return requests
        }
    }

    func apply(_ requests: [ShareRequest], grants: ArraySlice<Double>, from start: Double, until: Double) {
        let prefix = name.count + 1, time = now()
        entries.withLock { entries in
            for (request, grant) in zip(requests, grants) {
                let key = String(request.bucket.dropFirst(prefix))
                if request.release {
                    if let entry = entries[key], entry.lastUse <= start { entries[key] = nil }
                    continue
                }
                guard var entry = entries[key] else { continue }
                entry.take(grant: grant, scale: scale, at: time, from: start, until: until)
                entries[key] = entry
            }
        }
    }

    func fallback(_ buckets: [String], processes: Int, until: Double, at time: Double) {
        let prefix = name + ":"
        let grant = whole ? Double(max(1, Int(limit) / max(1, processes))) : limit / Double(max(1, processes))
        entries.withLock { entries in
            for bucket in buckets {
                let key = bucket.hasPrefix(prefix) ? String(bucket.dropFirst(prefix.count)) : bucket
                var entry = entries[key] ?? Entry(at: time)
                entry.take(grant: grant, scale: scale, at: time, from: time, until: until)
                entries[key] = entry
            }
        }
    }
}

/// A token bucket per key whose rate and size are this process's share of a limit that holds for the
/// whole installation (`rate` per second, bursts of `burst`), renewed through a ``LimitShareBook``. A key
/// with a live grant is decided here, in memory; a key met for the first time, whose grant lapsed, or
/// whose bucket ran dry (at most every `urgentSpacing` seconds) waits for an exchange first.
///
/// Each process's bucket holds `burst × grant / rate` tokens (at least one while it has a grant) and
/// fills at its grant. Because the live grants never add up to more than `rate`, all the processes
/// together admit at most `rate × w + burst + N` requests in any `w` seconds (N processes, each
/// rounding its bucket up to a whole token), plus the share of the burst of each process that starts
/// using the bucket within those seconds (its bucket starts full), plus what a renewal in flight lets
/// overlap: the process whose grant shrinks applies it a round trip after the database recorded it.
/// Before a database failover (the shares table is not replicated) grants given before it are
/// forgotten there, so for one `ttl` after it the processes may admit up to twice the limit.
public final class SharedRateLimiter: RateLimiting, Sendable {
    /// A key's bucket: its grant, its tokens, its attempts since the last exchange.
    struct Entry: ShareEntry {
        var grant = 0.0
        var capacity = 0.0
        var tokens = 0.0
        var updated: Double
        var expires = -Double.infinity
        var lastExchange = -Double.infinity
        var attempts = 0.0
        var since: Double
        var wants = 0.0
        var lastUse: Double
        var filled = false
        var holding: Int { 0 }

        init(at time: Double) {
            updated = time
            since = time
            lastUse = time
        }

        mutating func refill(_ time: Double) {
            tokens = min(capacity, tokens + max(0, time - updated) * grant)
            updated = max(updated, time)
        }

        /// Attempts per second, over at least a second.
        mutating func measure(at time: Double) -> Double {
            defer {
                attempts = 0
                since = time
            }
            return attempts / max(time - since, 1)
        }

        /// The bucket fills at the grant and holds `scale × grant` tokens (at least one while there is a
        /// grant); it starts full the first time, and a smaller grant empties what no longer fits.
        mutating func take(grant: Double, scale: Double, at time: Double, from start: Double, until: Double) {
            refill(time)
            self.grant = grant
            capacity = grant > 0 ? max(1, scale * grant) : 0
            tokens = filled ? min(tokens, capacity) : capacity
            if grant > 0 { filled = true }
            expires = until
            lastExchange = start
        }
    }

    enum Step {
        /// Tokens taken (possibly fewer than asked), tokens left, seconds until the next one.
        case decided(taken: Int, remaining: Int, retryAfter: Double)
        case needShare
    }

    /// The bucket names' prefix (`tenant`, `sender`, `link`, …).
    public var name: String { table.name }
    /// Requests per second for the whole installation.
    public let rate: Double
    /// The installation's burst.
    public let burst: Double
    let book: LimitShareBook
    let table: ShareTable<Entry>
    private let maxKeys: Int

    /// A limiter of `rate` per second, bursts of `burst`, for the processes of `roles`, registered with `book`.
    public init(name: String, rate: Double, burst: Double, roles: [String], book: LimitShareBook, maxKeys: Int = 100_000) {
        self.rate = max(rate, 0.000_001)
        self.burst = max(1, burst)
        self.book = book
        self.maxKeys = maxKeys
        table = ShareTable(name: name, limit: self.rate, roles: roles, scale: self.burst / self.rate, now: book.now)
        book.register(table)
    }

    public var limit: Int { Int(burst) }

    public func acquire(_ key: String) async -> RateLimitDecision {
        let (taken, remaining, retryAfter) = await take(key, count: 1)
        if taken == 1 { return .allowed(remaining: remaining) }
        return .limited(retryAfterSeconds: max(1, Int(min(retryAfter, 3600).rounded(.up))))
    }

    /// Takes up to `count` tokens for `key`: how many it got, how many are left, and (when it got fewer
    /// than asked) in how many seconds the next one comes.
    public func take(_ key: String, count: Int) async -> (taken: Int, remaining: Int, retryAfter: Double) {
        guard count > 0 else { return (0, 0, 0) }
        if case .decided(let taken, let remaining, let retryAfter) = step(key, count: count, at: book.now(), counting: true, final: false) {
            return (taken, remaining, retryAfter)
        }
        await book.share(table, key)
        if case .decided(let taken, let remaining, let retryAfter) = step(key, count: count, at: book.now(), counting: false, final: true) {
            return (taken, remaining, retryAfter)
        }
        return (0, 0, book.settings.interval)
    }

    public func isExhausted(_ key: String) async -> Bool {
        let time = book.now()
        let known: Bool? = table.entries.withLock { entries in
            guard var entry = entries[key], time < entry.expires else { return nil }
            entry.refill(time)
            entries[key] = entry
            return entry.tokens < 1
        }
        if let known { return known }
        table.entries.withLock { entries in if entries[key] == nil { entries[key] = Entry(at: time) } }
        await book.share(table, key)
        return table.entries.withLock { entries in
            guard var entry = entries[key] else { return false }
            entry.refill(book.now())
            entries[key] = entry
            return entry.tokens < 1
        }
    }

    /// Takes up to `count` tokens for `key` if the grant allows; asks for a share first when the key has no
    /// live grant, or when it ran dry and was not renewed in the last `urgentSpacing` seconds; `final`
    /// decides with what there is (after an exchange).
    func step(_ key: String, count: Int, at time: Double, counting: Bool, final: Bool) -> Step {
        table.entries.withLock { entries in
            var entry = entries[key] ?? Entry(at: time)
            if entries[key] == nil && entries.count >= maxKeys { Self.evict(&entries, at: time) }
            entry.refill(time)
            if counting {
                entry.attempts += Double(count)
                entry.lastUse = time
            }
            let live = time < entry.expires
            let available = Int(entry.tokens.rounded(.down))
            let step: Step
            if !final && (!live || (available < count && time - entry.lastExchange >= book.settings.urgentSpacing)) {
                step = .needShare
            } else {
                let taken = min(count, max(0, available))
                entry.tokens -= Double(taken)
                let wait = taken == count ? 0 : entry.grant > 0 ? (1 - entry.tokens) / entry.grant : book.settings.interval
                step = .decided(taken: taken, remaining: Int(entry.tokens), retryAfter: wait)
            }
            entries[key] = entry
            return step
        }
    }

    /// Drops the entries least recently used (half of them) when there are too many keys.
    private static func evict(_ entries: inout [String: Entry], at time: Double) {
        let sorted = entries.sorted { $0.value.lastUse < $1.value.lastUse }
        for (stale, _) in sorted.prefix(entries.count / 2 + 1) { entries[stale] = nil }
    }

    /// The grant of `key` now (per second), for tests and metrics.
    public func grant(_ key: String) -> Double {
        table.entries.withLock { $0[key]?.grant ?? 0 }
    }
}

/// A cap on things held at once (connections to one destination) for the whole installation: each
/// process may hold `slots(_:wanting:)` of them, its whole share of `limit` traded through a
/// ``LimitShareBook`` like the rate limits' (``LimitShareRule/wholeGrant(limit:wants:others:processes:)``:
/// whole grants add up to no more than the limit). A process asks for what it would use now (in use and
/// waiting); it asks at once for a key it has no live share of, and again (at most every `urgentSpacing`
/// seconds) while it wants more than it holds. When it holds more than its share after a renewal, it
/// opens no new one until it is within it (those in use finish).
public final class SharedConcurrencyLimit: Sendable {
    struct Entry: ShareEntry {
        var slots = 0
        var expires = -Double.infinity
        var lastExchange = -Double.infinity
        /// What the process uses now (in use and waiting), the most since the last exchange, and the
        /// connections open now.
        var current = 0
        var peak = 0
        var wants = 0.0
        var used: Double
        var holding = 0

        init(at time: Double) { used = time }

        /// A key in use is never idle.
        var lastUse: Double { current > 0 ? .infinity : used }

        mutating func measure(at time: Double) -> Double {
            defer { peak = current }
            return Double(max(peak, current))
        }

        mutating func take(grant: Double, scale: Double, at time: Double, from start: Double, until: Double) {
            slots = Int(grant)
            expires = until
            lastExchange = start
        }
    }

    /// Things held at once, all processes together.
    public let limit: Int
    let book: LimitShareBook
    let table: ShareTable<Entry>

    public init(name: String, limit: Int, roles: [String], book: LimitShareBook) {
        self.limit = max(1, limit)
        self.book = book
        table = ShareTable(name: name, limit: Double(self.limit), roles: roles, whole: true, now: book.now)
        book.register(table)
    }

    /// How many of `key` this process may hold now, when it would hold `wanting` (those in use and
    /// those waiting).
    public func slots(_ key: String, wanting: Int, holding: Int = 0) async -> Int {
        let time = book.now()
        let known: Int? = table.entries.withLock { entries in
            var entry = entries[key] ?? Entry(at: time)
            entry.current = wanting
            entry.holding = holding
            entry.peak = max(entry.peak, wanting)
            entry.used = time
            entries[key] = entry
            let live = time < entry.expires
            if live && (wanting <= entry.slots || time - entry.lastExchange < book.settings.urgentSpacing) { return entry.slots }
            return nil
        }
        if let known { return known }
        await book.share(table, key)
        return table.entries.withLock { $0[key]?.slots ?? 0 }
    }

    /// Tells how many of `key` the process uses now (in use and waiting) and holds (open), when that goes down.
    public func using(_ key: String, count: Int, holding: Int = 0) {
        let time = book.now()
        table.entries.withLock { entries in
            guard var entry = entries[key] else { return }
            entry.current = count
            entry.holding = holding
            entry.used = time
            entries[key] = entry
        }
    }
}
