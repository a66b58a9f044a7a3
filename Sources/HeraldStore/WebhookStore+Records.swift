import Foundation
import HeraldCore

/// A webhook endpoint as the API shows it (never its secret).
public struct WebhookRecord: Sendable, Equatable {
    public var id: UUID
    public var url: String
    public var eventTypes: [String]
    public var enabled: Bool
    /// tenant, gone or failing, when disabled.
    public var disabledReason: String?
    public var failingSince: Date?
    /// Until when the secret before the last rotation is still signed with.
    public var previousSecretExpiresAt: Date?
    public var createdAt: Date
    public var updatedAt: Date
}

/// One try of a webhook delivery.
public struct WebhookAttemptRecord: Sendable, Equatable {
    public var at: Date
    public var httpStatus: Int?
    public var error: String?
    public var latencyMs: Int
    /// The first kilobyte of the answer's body.
    public var response: String?
}

/// One event on its way to one endpoint.
public struct WebhookDeliveryRecord: Sendable, Equatable {
    public var id: UUID
    public var eventID: Int64
    public var eventType: String
    public var status: String
    public var attempts: Int
    /// When the next attempt is due (pending deliveries only).
    public var nextAttemptAt: Date?
    public var lastHTTPStatus: Int?
    public var lastError: String?
    public var lastLatencyMs: Int?
    public var lastResponse: String?
    public var createdAt: Date
    public var updatedAt: Date
    public var attemptLog: [WebhookAttemptRecord]
}

/// A delivery a dispatcher has claimed: what to send, where, and with which secrets.
public struct ClaimedWebhookDelivery: Sendable {
    public var id: UUID
    public var tenantID: UUID
    public var endpointID: UUID
    /// Attempts made before this one.
    public var attempts: Int
    public var eventType: String
    /// `{"type", "timestamp", "data"}`, exactly the bytes to sign and send.
    public var body: [UInt8]
    public var url: String
    /// The current secret first, then the previous one while it is still honoured.
    public var secrets: [WebhookSecret]
    /// When the event was written (for the latency from event to POST).
    public var eventAt: Date
}

/// What one attempt came to, as the dispatcher reports it.
public struct WebhookAttemptOutcome: Sendable {
    public var id: UUID
    public var endpointID: UUID
    public var attemptedAt: Date
    public var httpStatus: Int?
    public var error: String?
    public var latencyMs: Int
    public var response: String?
    public var decision: WebhookRetryPolicy.Decision

    public init(id: UUID, endpointID: UUID, attemptedAt: Date, httpStatus: Int?, error: String?, latencyMs: Int, response: String?,
                decision: WebhookRetryPolicy.Decision) {
        self.id = id
        self.endpointID = endpointID
        self.attemptedAt = attemptedAt
        self.httpStatus = httpStatus
        self.error = error
        self.latencyMs = latencyMs
        self.response = response
        self.decision = decision
    }
}
