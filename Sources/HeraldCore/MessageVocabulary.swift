/// Where a message stands in its life (the `messages.status` column). The database holds the same list in
/// one place, `herald_message_statuses()` (migration 0024), which the column's CHECK constraint uses; a
/// test keeps the two equal.
public enum MessageStatus: String, CaseIterable, Hashable, Codable, Sendable {
    /// Accepted, waiting for its first attempt (or handed back unattempted).
    case queued
    /// Soft-failed, waiting for its next attempt.
    case deferred
    /// Claimed by a delivery worker, on the wire.
    case sending
    /// The next hop said 250.
    case delivered
    /// Refused for good (5xx), or refused after delivery (a late bounce).
    case bounced
    /// Refused for spam, policy or reputation (5.7.x).
    case spamRejected = "spam_rejected"
    /// Soft failures until the retry window closed.
    case failed
    /// Not sent: refused at acceptance (suppressed, invalid…) or when its account was banned.
    case dropped
    /// Set aside while its account is frozen.
    case paused

    /// Whether a message in this status waits no more: it leaves the queue partition for the history, with
    /// its expiry day (migration 0032; the upkeep's sweep, `herald_partition_step`, lists the same statuses).
    public var isFinal: Bool {
        switch self {
        case .delivered, .bounced, .spamRejected, .failed, .dropped: true
        case .queued, .deferred, .sending, .paused: false
        }
    }

    /// The event a message gets when it takes this status, if any (`sending`, `queued` and `paused` have none).
    public var event: EventType? {
        switch self {
        case .delivered: .messageDelivered
        case .deferred: .messageDeferred
        case .bounced: .messageBounced
        case .spamRejected: .messageSpamRejected
        case .failed: .messageFailed
        case .dropped: .messageDropped
        case .queued, .sending, .paused: nil
        }
    }
}

/// The type of an event in the outbox (`events.type`), which is also the webhook's `type`. The database
/// holds the same list in one place, `herald_event_types()` (migration 0024), which the column's CHECK
/// constraint uses; a test keeps the two equal, and another checks each type's payload against the
/// contract (`OpenAPI/openapi.yaml`).
public enum EventType: String, CaseIterable, Hashable, Sendable {
    case messageAccepted = "message.accepted"
    case messageDropped = "message.dropped"
    case messageDeferred = "message.deferred"
    case messageDelivered = "message.delivered"
    case messageBounced = "message.bounced"
    case messageSpamRejected = "message.spam_rejected"
    case messageFailed = "message.failed"
    case messageOpened = "message.opened"
    case messageClicked = "message.clicked"
    case messageUnsubscribed = "message.unsubscribed"
    /// A feedback-loop report (ARF) said the recipient called the message spam.
    case messageComplained = "message.complained"
    case accountGradeChanged = "account.grade_changed"
    case accountFrozen = "account.frozen"
    case accountUnfrozen = "account.unfrozen"
    case accountBanned = "account.banned"
    case webhookDisabled = "webhook.disabled"
    /// Sent to one endpoint on request; no endpoint subscribes to it.
    case webhookTest = "webhook.test"

    /// The types a webhook endpoint can ask for, in the order the API lists them.
    public static let subscribable: [EventType] = allCases.filter { $0 != .webhookTest }

    /// Whether the event is about one message (its payload is built by `herald_message_event`).
    public var isMessageEvent: Bool { rawValue.hasPrefix("message.") }

}

/// What a message is (`messages.kind`): the kind of mail of its sender, or Herald's own mail on a tenant's
/// behalf (reply-to confirmations), which the tenant's reads, statistics, events and links never show.
public enum MessageKind: String, CaseIterable, Hashable, Sendable {
    case trigger
    case batch
    case system

    public init(_ kind: MailKind) {
        switch kind {
        case .trigger: self = .trigger
        case .batch: self = .batch
        }
    }
}

/// A change in an account's standing (`grade_history.change`), by the grader or the operator.
public enum GradeChange: String, CaseIterable, Hashable, Sendable {
    case promoted
    case demoted
    /// Set by the operator.
    case set
    case frozen
    case unfrozen
    case banned

    /// The change of an account that becomes `status` by the operator's hand (active again: unfrozen).
    public init(becoming status: TenantStatus) {
        switch status {
        case .active: self = .unfrozen
        case .frozen: self = .frozen
        case .banned: self = .banned
        }
    }

    /// The event the tenant's webhooks get.
    public var event: EventType {
        switch self {
        case .frozen: .accountFrozen
        case .unfrozen: .accountUnfrozen
        case .banned: .accountBanned
        case .promoted, .demoted, .set: .accountGradeChanged
        }
    }
}
