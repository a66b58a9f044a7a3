import Foundation

/// When a soft failure is tried again (SPEC §4): about 1 min, 5 min, 30 min, 2 h, 6 h, then every 6 h,
/// with ±10 % jitter, until 72 h after the message was accepted; after that it has failed.
public struct RetryPolicy: Sendable {
    /// Delays after the 1st, 2nd, … attempt; the last repeats.
    public var delays: [TimeInterval] = [60, 300, 1_800, 7_200, 21_600]
    /// How long after acceptance retries stop.
    public var giveUpAfter: TimeInterval = 72 * 3_600
    /// Fraction of jitter either way.
    public var jitter: Double = 0.1

    public init() {}

    /// The next attempt after `attempts` failed ones, or nil when the message should fail now.
    public func nextAttempt(attempts: Int, acceptedAt: Date, now: Date, random: Double = Double.random(in: -1...1)) -> Date? {
        let base = delays[min(max(attempts, 1), delays.count) - 1]
        let next = now.addingTimeInterval(base * (1 + jitter * random))
        return next.timeIntervalSince(acceptedAt) > giveUpAfter ? nil : next
    }
}
