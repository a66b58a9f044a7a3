import Foundation
import HeraldCore

/// A tenant as the operator sees it.
public struct TenantRecord: Sendable, Codable, Equatable {
    /// Tenant id.
    public var id: UUID
    /// Display name.
    public var name: String
    /// Enterprise or personal.
    public var kind: TenantKind
    /// Active, frozen or banned.
    public var status: TenantStatus
    /// Credit grade 1–16.
    public var grade: Int
    /// Highest grade automatic promotion may reach.
    public var gradeCeiling: Int
    /// How many times the tenant has been frozen.
    public var freezeCount: Int
    /// Creation time.
    public var createdAt: Date
    /// Last change.
    public var updatedAt: Date
}

/// What creating a tenant returns: the tenant and its root AccessKey (the secret is shown only now).
public struct CreatedTenant: Sendable {
    /// The new tenant.
    public var tenant: TenantRecord
    /// Root AccessKey id.
    public var accessKeyID: String
    /// Root AccessKey secret, in clear, once.
    public var accessKeySecret: String
}

/// A tenant's user (the root user or a RAM sub-user).
public struct UserRecord: Sendable, Codable, Equatable {
    /// User id.
    public var id: UUID
    /// Unique name within the tenant.
    public var name: String
    /// Disabled users cannot authenticate; their tokens stop working at once.
    public var enabled: Bool
    /// The tenant's root user (allowed everything; cannot be disabled or deleted).
    public var root: Bool
    /// Creation time.
    public var createdAt: Date
}

/// An AccessKey without its secret.
public struct AccessKeyRecord: Sendable, Codable, Equatable {
    /// Key id (`LTAI…`).
    public var accessKeyId: String
    /// Owning user.
    public var userId: UUID
    /// Always `active` (deleted keys are gone).
    public var status: String
    /// Creation time.
    public var createdAt: Date
    /// Last successful token exchange (updated at most once a minute).
    public var lastUsedAt: Date?
}

/// Whether a policy is built in or the tenant's own.
public enum PolicyType: String, Sendable, Codable {
    /// Built in (FullAccess, ReadOnlyAccess).
    case system = "System"
    /// Created by the tenant.
    case custom = "Custom"
}

/// A policy with its document.
public struct PolicyRecord: Sendable, Codable, Equatable {
    /// Name, unique per tenant; built-in names are reserved.
    public var name: String
    /// System or Custom.
    public var type: PolicyType
    /// Free text.
    public var description: String
    /// The RAM document.
    public var document: PolicyDocument
    /// Creation time (nil for built-ins).
    public var createdAt: Date?
    /// Last change (nil for built-ins).
    public var updatedAt: Date?
}

/// A policy attached to a user.
public struct AttachedPolicy: Sendable, Codable, Equatable {
    /// Policy name.
    public var name: String
    /// System or Custom.
    public var type: PolicyType
}

/// A tenant's IP protection setting.
public struct IPProtectionRecord: Sendable, Codable, Equatable {
    /// Whether the allowlist is enforced on sends.
    public var enabled: Bool
    /// Allowed addresses and CIDRs in canonical form.
    public var allow: [String]
    /// Last change, if ever set.
    public var updatedAt: Date?
}

/// One audit log entry.
public struct AuditEntry: Sendable, Codable, Equatable {
    /// Monotonic id (also the pagination cursor).
    public var id: String
    /// When it happened.
    public var at: Date
    /// user, operator or system.
    public var actorType: String
    /// Acting user.
    public var userId: UUID?
    /// AccessKey of the acting user's token.
    public var accessKeyId: String?
    /// Client address.
    public var sourceIp: String?
    /// Direct Mail action name, e.g. `dm:CreateUser`.
    public var action: String
    /// Resource name.
    public var resource: String
    /// `success` or the error code of a refusal.
    public var result: String
    /// Request id.
    public var requestId: String?
    /// Extra facts (never secrets).
    public var detail: [String: String]?
}

/// Filters for listing the audit log.
public struct AuditQuery: Sendable {
    /// Page size, 1–100.
    public var limit: Int = 50
    /// Entries older than this id (the previous page's cursor).
    public var before: Int64?
    /// Only this action.
    public var action: String?
    /// Only this user.
    public var userID: UUID?
    /// Not before.
    public var from: Date?
    /// Before.
    public var until: Date?

    /// Creates an unfiltered query.
    public init() {}
}
