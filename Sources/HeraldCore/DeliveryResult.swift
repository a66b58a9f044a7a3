import Foundation

/// What one delivery attempt of one message came to, as the delivery worker decides it (SPEC §4): the
/// store writes it as it is and decides nothing again. The SMTP conversation's own verdict (a reply's
/// class) becomes a result once, in HeraldDelivery, with the retry time from ``RetryPolicy`` and the
/// invalid-address rule (``InvalidAddressRule``) applied there.
public enum DeliveryResult: Hashable, Sendable {
    /// The next hop took it (2xx after the data).
    case delivered
    /// A soft failure (4xx, no connection, a DNS failure): tried again at `until`.
    case deferred(until: Date)
    /// A soft failure after which the retry window is closed: given up.
    case failed
    /// Refused for good (5xx); `invalid` when the refusal says the address does not exist (5.1.x), which
    /// counts against the tenant's invalid-address rate.
    case bounced(invalid: Bool)
    /// Refused for spam, policy or reputation.
    case spamRejected
    /// Not attempted (a delivery-rate limit): back to the queue until `until`, without counting an
    /// attempt or writing an event.
    case released(until: Date)

    /// A permanent refusal whose server said `response`.
    public static func bounced(response: String) -> DeliveryResult {
        .bounced(invalid: InvalidAddressRule.isInvalidAddress(response: response))
    }

    /// The status the message takes.
    public var status: MessageStatus {
        switch self {
        case .delivered: .delivered
        case .deferred: .deferred
        case .failed: .failed
        case .bounced: .bounced
        case .spamRejected: .spamRejected
        case .released: .queued
        }
    }

    /// The event it writes (none for a released message).
    public var event: EventType? {
        if case .released = self { return nil }
        return status.event
    }

    /// When the message is due again (deferred or released), else nil.
    public var nextAttemptAt: Date? {
        switch self {
        case .deferred(let until), .released(let until): until
        case .delivered, .failed, .bounced, .spamRejected: nil
        }
    }

    /// Whether it is a hard bounce of an address that does not exist (the grade's `invalid` figure).
    public var isInvalidAddress: Bool {
        if case .bounced(invalid: true) = self { return true }
        return false
    }

    /// The name of the result in metrics: the status, or `released`.
    public var name: String {
        if case .released = self { return "released" }
        return status.rawValue
    }
}

/// One attempt's result for one message, with what the server (or Herald) said, as the store records it.
public struct DeliveryAttempt: Hashable, Sendable {
    public var messageID: UUID
    public var result: DeliveryResult
    /// The server's reply or Herald's reason, for `last_response` and the event's `smtpResponse`.
    public var response: String

    public init(messageID: UUID, result: DeliveryResult, response: String) {
        self.messageID = messageID
        self.result = result
        self.response = response
    }
}

/// The invalid-address rule: a permanent refusal whose reply is `5xx 5.1.x` (RFC 3463 "addressing
/// status": no such mailbox, no such domain, …) says the address is invalid. Such bounces are the
/// `invalid` figure of the credit grade; every hard bounce counts toward the tenant's invalid-address list,
/// which lists an address after ``listedAfterHardBounces`` of them.
public enum InvalidAddressRule {
    /// Hard bounces after which an address joins the tenant's invalid-address list.
    public static let listedAfterHardBounces = 2

    /// Whether a reply (as written in `last_response`: `550 5.1.1 text`) names an invalid address.
    public static func isInvalidAddress(response: String) -> Bool {
        let bytes = Array(response.utf8.prefix(8))
        guard bytes.count == 8 else { return false }
        func digit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }
        return bytes[0] == UInt8(ascii: "5") && digit(bytes[1]) && digit(bytes[2]) && bytes[3] == UInt8(ascii: " ")
            && bytes[4] == UInt8(ascii: "5") && bytes[5] == UInt8(ascii: ".") && bytes[6] == UInt8(ascii: "1") && bytes[7] == UInt8(ascii: ".")
    }
}

extension RetryPolicy {
    /// The result of a soft failure after `attempts` attempts of a message accepted at `acceptedAt`:
    /// deferred to the next attempt, or failed when the retry window is closed.
    public func afterSoftFailure(attempts: Int, acceptedAt: Date, now: Date, random: Double = Double.random(in: -1...1)) -> DeliveryResult {
        nextAttempt(attempts: attempts, acceptedAt: acceptedAt, now: now, random: random).map { .deferred(until: $0) } ?? .failed
    }
}
