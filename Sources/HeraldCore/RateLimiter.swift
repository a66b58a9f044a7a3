import Foundation
import Synchronization

/// The answer of a rate limiter.
public enum RateLimitDecision: Sendable, Equatable {
    /// Go ahead; `remaining` tokens are left.
    case allowed(remaining: Int)
    /// Refused; retry after this many seconds (at least 1).
    case limited(retryAfterSeconds: Int)
}

/// A rate limit by key: this process's alone (``TokenBucketLimiter``) or the installation's, shared by
/// its processes (``SharedRateLimiter``).
public protocol RateLimiting: Sendable {
    /// The bucket size (the `RateLimit-Limit` header).
    var limit: Int { get }
    /// Takes one token for `key`.
    func acquire(_ key: String) async -> RateLimitDecision
    /// Whether `key` has no token left now (without taking one): for counting only failures, check this
    /// first and ``acquire(_:)`` when a failure happens.
    func isExhausted(_ key: String) async -> Bool
}

/// Token buckets by key (per AccessKey id, per client IP, per tenant), with an injected clock and a
/// bounded number of keys so memory cannot be exhausted by many distinct keys: one process's own limit.
public final class TokenBucketLimiter: RateLimiting, Sendable {
    private struct Bucket {
        var tokens: Double
        var updated: Double
    }
    private let capacity: Double
    private let refillPerSecond: Double
    private let maxKeys: Int
    private let now: @Sendable () -> Double
    private let buckets = Mutex<[String: Bucket]>([:])

    /// Creates a limiter; `now` returns seconds on any monotonic scale.
    public init(capacity: Int, refillPerSecond: Double, maxKeys: Int = 100_000, now: @escaping @Sendable () -> Double = TokenBucketLimiter.monotonicSeconds) {
        self.capacity = Double(max(1, capacity))
        self.refillPerSecond = max(refillPerSecond, 0.000_001)
        self.maxKeys = maxKeys
        self.now = now
    }

    /// Seconds on the continuous clock.
    public static let monotonicSeconds: @Sendable () -> Double = {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    /// Bucket size.
    public var limit: Int { Int(capacity) }

    /// Takes one token for `key`.
    public func acquire(_ key: String) -> RateLimitDecision {
        let time = now()
        return buckets.withLock { buckets in
            var bucket = buckets[key] ?? Bucket(tokens: capacity, updated: time)
            bucket.tokens = min(capacity, bucket.tokens + max(0, time - bucket.updated) * refillPerSecond)
            bucket.updated = time
            let decision: RateLimitDecision
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                decision = .allowed(remaining: Int(bucket.tokens))
            } else {
                decision = .limited(retryAfterSeconds: max(1, Int(((1 - bucket.tokens) / refillPerSecond).rounded(.up))))
            }
            if buckets[key] == nil && buckets.count >= maxKeys {
                // Full buckets carry no information: drop them first; if none, drop the stalest half.
                buckets = buckets.filter { $0.value.tokens + (time - $0.value.updated) * refillPerSecond < capacity }
                if buckets.count >= maxKeys {
                    let sorted = buckets.sorted { $0.value.updated < $1.value.updated }
                    for (stale, _) in sorted.prefix(buckets.count / 2 + 1) { buckets[stale] = nil }
                }
            }
            buckets[key] = bucket
            return decision
        }
    }

    /// Whether `key` has no token left now (without taking one): for counting only failures, check this
    /// first and ``acquire(_:)`` when a failure happens.
    public func isExhausted(_ key: String) -> Bool {
        let time = now()
        return buckets.withLock { buckets in
            guard let bucket = buckets[key] else { return false }
            return min(capacity, bucket.tokens + max(0, time - bucket.updated) * refillPerSecond) < 1
        }
    }
}

/// SPEC §11's limit of the send endpoints per sender address: every send path (REST single and batch,
/// SMTP submission, the Direct Mail compatibility actions) takes a token for its sender before anything
/// is queued; without one the send is refused with `Throttling.Sender` and a retry time.
public struct SenderRateLimit: Sendable {
    let limiter: any RateLimiting

    /// The limit `limiter` keeps (by `<tenant>|<address>`).
    public init(limiter: any RateLimiting) {
        self.limiter = limiter
    }

    public func check(tenantID: UUID, sender: String) async throws(HeraldError) {
        if case .limited(let retryAfter) = await limiter.acquire(tenantID.lowercasedString + "|" + sender.lowercased()) {
            throw HeraldError(code: "Throttling.Sender", kind: .throttled, message: "Too many sends from \(sender); retry later.", retryAfter: retryAfter)
        }
    }
}

/// Every rate limit of SPEC §11 a process keeps, by what it limits.
public struct RateLimits: Sendable {
    /// API requests per tenant (`HERALD_TENANT_RATE`, bursts of twice that).
    public var tenant: any RateLimiting
    /// Sends per sender address, on every send path (`HERALD_SENDER_RATE`).
    public var sender: SenderRateLimit
    /// Public link requests per client address (`HERALD_LINK_RATE`, bursts of three times that).
    public var link: any RateLimiting
    /// Token requests per AccessKey id (`HERALD_AUTH_RATE`, bursts of three times that).
    public var authKey: any RateLimiting
    /// Token requests per client address (`HERALD_AUTH_RATE`).
    public var authAddress: any RateLimiting
    /// Failed SMTP logins per client address (`HERALD_AUTH_RATE`).
    public var smtpAddress: any RateLimiting
    /// Failed SMTP logins per user name (`HERALD_SMTP_AUTH_USER_FAILURES` per `HERALD_SMTP_AUTH_USER_WINDOW`).
    public var smtpUser: any RateLimiting

    /// The rates as numbers; `userWindow` in seconds.
    public struct Rates: Sendable {
        public var tenant: Int
        public var sender: Int
        public var link: Int
        public var auth: Int
        public var userFailures: Int
        public var userWindow: Int

        public init(tenant: Int, sender: Int, link: Int, auth: Int, userFailures: Int, userWindow: Int) {
            self.tenant = tenant
            self.sender = sender
            self.link = link
            self.auth = auth
            self.userFailures = userFailures
            self.userWindow = userWindow
        }
    }

    /// The limits of the whole installation, each process keeping its share traded through `book`.
    public static func shared(_ rates: Rates, book: LimitShareBook) -> RateLimits {
        func limiter(_ name: String, _ rate: Double, burst: Int, roles: [String]) -> SharedRateLimiter {
            SharedRateLimiter(name: name, rate: rate, burst: Double(burst), roles: roles, book: book)
        }
        let auth = Double(rates.auth)
        return RateLimits(
            tenant: limiter("tenant", Double(rates.tenant), burst: rates.tenant * 2, roles: ["api"]),
            sender: SenderRateLimit(limiter: limiter("sender", Double(rates.sender), burst: rates.sender * 2, roles: ["api", "smtp"])),
            link: limiter("link", Double(rates.link), burst: rates.link * 3, roles: ["api"]),
            authKey: limiter("auth-key", auth, burst: rates.auth * 3, roles: ["api"]),
            authAddress: limiter("auth-address", auth, burst: rates.auth * 3, roles: ["api"]),
            smtpAddress: limiter("smtp-address", auth, burst: rates.auth * 3, roles: ["smtp"]),
            smtpUser: limiter("smtp-user", Double(rates.userFailures) / Double(max(1, rates.userWindow)), burst: rates.userFailures,
                              roles: ["smtp"]))
    }

    public init(tenant: any RateLimiting, sender: SenderRateLimit, link: any RateLimiting, authKey: any RateLimiting,
                authAddress: any RateLimiting, smtpAddress: any RateLimiting, smtpUser: any RateLimiting) {
        self.tenant = tenant
        self.sender = sender
        self.link = link
        self.authKey = authKey
        self.authAddress = authAddress
        self.smtpAddress = smtpAddress
        self.smtpUser = smtpUser
    }
}
