import Foundation
import Synchronization

/// The answer of a rate limiter.
public enum RateLimitDecision: Sendable, Equatable {
    /// Go ahead; `remaining` tokens are left.
    case allowed(remaining: Int)
    /// Refused; retry after this many seconds (at least 1).
    case limited(retryAfterSeconds: Int)
}

/// Token buckets by key (per AccessKey id, per client IP, per tenant), with an injected clock and a
/// bounded number of keys so memory cannot be exhausted by many distinct keys.
public final class TokenBucketLimiter: Sendable {
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

/// SPEC §11's limit of the send endpoints per sender address (per process): every send path (REST single and
/// batch, SMTP submission, the Direct Mail compatibility actions) takes a token for its sender before
/// anything is queued; without one the send is refused with `Throttling.Sender` and a retry time.
public struct SenderRateLimit: Sendable {
    let limiter: TokenBucketLimiter

    /// `perSecond` sends per sender address, bursts of twice that.
    public init(perSecond: Int, now: @escaping @Sendable () -> Double = TokenBucketLimiter.monotonicSeconds) {
        limiter = TokenBucketLimiter(capacity: perSecond * 2, refillPerSecond: Double(perSecond), now: now)
    }

    public func check(tenantID: UUID, sender: String) throws(HeraldError) {
        if case .limited(let retryAfter) = limiter.acquire(tenantID.lowercasedString + "|" + sender.lowercased()) {
            throw HeraldError(code: "Throttling.Sender", kind: .throttled, message: "Too many sends from \(sender); retry later.", retryAfter: retryAfter)
        }
    }
}
