import Foundation
import Synchronization

/// Messages per second to a recipient domain (`HERALD_DELIVERY_RATES`, e.g. `gmail.com=20,qq.com=5,*=100`;
/// `*` applies to every domain not named; a domain with no rate is not limited). Each domain has a
/// token bucket holding one second's worth (at least one message), refilled continuously; the clock is
/// injected. The rates hold for the whole installation: each domain's bucket is a ``SharedRateLimiter``
/// traded through `book` by the processes of the scheduler role (without an exchanger, this process's alone).
public final class DomainRateLimits: Sendable {
    /// Messages per second by domain (lower case), `*` for the rest.
    public let rates: [String: Double]
    private let limiters: [String: SharedRateLimiter]

    public init(rates: [String: Double], book: LimitShareBook) {
        let rates = Dictionary(rates.map { ($0.key.lowercased(), $0.value) }) { $1 }
        self.rates = rates
        limiters = rates.mapValues { SharedRateLimiter(name: "delivery", rate: $0, burst: max(1, $0), roles: ["scheduler"], book: book) }
    }

    /// This process's limits alone.
    public convenience init(rates: [String: Double], now: @escaping @Sendable () -> Double = TokenBucketLimiter.monotonicSeconds) {
        self.init(rates: rates, book: LimitShareBook(exchanger: nil, now: now))
    }

    /// Parses `domain=rate` pairs separated by commas, naming the first bad one.
    public static func parse(_ text: String) throws(HeraldError) -> [String: Double] {
        var rates: [String: Double] = [:]
        for item in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
            let parts = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, !parts[0].isEmpty, parts[0] == "*" || parts[0].contains("."), let rate = Double(parts[1]), rate > 0, rate.isFinite else {
                throw .validation("\"\(item)\" is not domain=messages-per-second (e.g. gmail.com=20).")
            }
            rates[parts[0].lowercased()] = rate
        }
        return rates
    }

    /// The rate for `domain`, if it is limited.
    public func rate(for domain: String) -> Double? {
        rates[domain.lowercased()] ?? rates["*"]
    }

    /// Takes up to `count` messages' worth for `domain`: answers how many may go now and, when that is
    /// fewer than asked, in how many seconds the next one may.
    public func take(_ domain: String, count: Int) async -> (granted: Int, retryAfter: Double) {
        let key = domain.lowercased()
        guard count > 0, let limiter = limiters[key] ?? limiters["*"] else { return (count, 0) }
        let (taken, _, retryAfter) = await limiter.take(key, count: count)
        return (taken, retryAfter)
    }
}
