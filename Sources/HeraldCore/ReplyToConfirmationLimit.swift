import Foundation

/// How many reply-to confirmation mails a sender address and a tenant may cause in a sliding hour
/// (`HERALD_REPLY_TO_CONFIRMATIONS`, 5 each by default). The confirmation goes from Herald's own address
/// to any address the tenant names, outside the tenant's quota, so without a limit it would be a free,
/// unmetered way to mail strangers in Herald's name.
public struct ReplyToConfirmationLimit: Sendable, Equatable {
    /// Confirmations per sender address in `window`.
    public var perSender: Int
    /// Confirmations per tenant in `window`, over all its senders.
    public var perTenant: Int
    /// The sliding window, in seconds.
    public var window: TimeInterval

    /// Creates a limit; 5 an hour each by default.
    public init(perSender: Int = 5, perTenant: Int = 5, window: TimeInterval = 3600) {
        self.perSender = perSender
        self.perTenant = perTenant
        self.window = window
    }

    /// Refuses one more confirmation when the sender or the tenant already had its allowance in the window.
    /// `senderRecent` and `tenantRecent` are the times of their latest confirmations, newest first (at least
    /// `perSender` and `perTenant` of them when there are that many): one more is allowed again when the
    /// oldest of the allowance leaves the window, which is what `Retry-After` says.
    public func check(senderRecent: [Date], tenantRecent: [Date], now: Date) throws(HeraldError) {
        var wait: TimeInterval = 0
        for (recent, limit) in [(senderRecent, perSender), (tenantRecent, perTenant)] {
            let inWindow = recent.filter { now.timeIntervalSince($0) < window }
            guard inWindow.count >= limit else { continue }
            let freedAt = limit > 0 ? inWindow.sorted(by: >)[limit - 1].addingTimeInterval(window) : now.addingTimeInterval(window)
            wait = max(wait, freedAt.timeIntervalSince(now))
        }
        guard wait > 0 else { return }
        throw HeraldError(code: "Throttling.ReplyToConfirmation", kind: .throttled,
                          message: "Too many reply-to confirmation mails: at most \(perSender) an hour per sender address and \(perTenant) per account.",
                          retryAfter: max(1, Int(wait.rounded(.up))))
    }
}
