import Foundation

/// Lifecycle state of a tenant account.
public enum TenantStatus: String, Sendable, Codable, CaseIterable {
    /// Sends and manages normally.
    case active
    /// Cannot send; management still works.
    case frozen
    /// Can neither send nor manage; final.
    case banned
}

/// Whether a tenant is a company or a person (sets, e.g., the monthly sender-deletion allowance).
public enum TenantKind: String, Sendable, Codable, CaseIterable {
    /// A company account.
    case enterprise
    /// An individual's account.
    case personal
}

/// Who performed an action, for the audit log.
public enum ActorType: String, Sendable, Codable {
    /// A tenant's user (root or sub-user) with a token.
    case user
    /// The platform operator (admin token or CLI).
    case `operator`
    /// Herald itself (grader, scheduler).
    case system
}

/// The who/where of a change, written to the audit log with it.
public struct AuditActor: Sendable {
    /// Kind of actor.
    public var type: ActorType
    /// Acting user, if a user.
    public var userID: UUID?
    /// AccessKey the user's token came from.
    public var accessKeyID: String?
    /// Client IP address as seen by Herald.
    public var sourceIP: String?
    /// Request id (X-Request-Id) tying the entry to logs.
    public var requestID: String?

    /// Creates an actor description.
    public init(type: ActorType, userID: UUID? = nil, accessKeyID: String? = nil, sourceIP: String? = nil, requestID: String? = nil) {
        self.type = type
        self.userID = userID
        self.accessKeyID = accessKeyID
        self.sourceIP = sourceIP
        self.requestID = requestID
    }

    /// The operator acting from the command line.
    public static let cli = AuditActor(type: .operator, sourceIP: "local")
}

/// An authenticated caller: a user of a tenant, resolved fresh from the database on every request.
public struct Principal: Sendable {
    /// The tenant the caller acts for.
    public var tenantID: UUID
    /// The tenant's status at the time of the request.
    public var tenantStatus: TenantStatus
    /// The calling user.
    public var userID: UUID
    /// Whether the user is the tenant's root (allowed everything).
    public var isRoot: Bool
    /// The AccessKey the token was issued for.
    public var accessKeyID: String
    /// Policies attached to the user (built-ins resolved to their documents).
    public var policies: [PolicyDocument]
    /// The tenant's IP protection for sending, as it was at the time of the request.
    public var ipAllowlist: IPAllowlist

    /// Creates a principal.
    public init(tenantID: UUID, tenantStatus: TenantStatus, userID: UUID, isRoot: Bool, accessKeyID: String, policies: [PolicyDocument],
                ipAllowlist: IPAllowlist = IPAllowlist(enabled: false, networks: [])) {
        self.ipAllowlist = ipAllowlist
        self.tenantID = tenantID
        self.tenantStatus = tenantStatus
        self.userID = userID
        self.isRoot = isRoot
        self.accessKeyID = accessKeyID
        self.policies = policies
    }

    /// The RAM decision for `action` on `resource`: the root user may do everything, others need an Allow and no Deny.
    public func authorize(action: String, resource: String) throws(HeraldError) {
        if isRoot { return }
        guard PolicyEvaluator.evaluate(action: action, resource: resource, policies: policies) == .allow else {
            throw .forbiddenRAM(action: action, resource: resource)
        }
    }

    /// The resource name of a tenant object, e.g. `acs:dm:*:<tenant>:user/<id>`.
    public func resource(_ kind: String, _ name: String) -> String {
        ResourceName.tenantResource(tenantID: tenantID.lowercasedString, kind: kind, name: name)
    }

    /// The resource name covering the whole tenant (collections and creates).
    public var tenantResource: String {
        ResourceName.tenantWildcard(tenantID: tenantID.lowercasedString)
    }
}

/// Time-ordered UUIDs (version 7, RFC 9562): unique like v4, but index-friendly and sortable by creation.
public enum UUIDv7 {
    /// A new id for `date`.
    public static func make(at date: Date = Date()) -> UUID {
        let millis = UInt64(max(0, date.timeIntervalSince1970 * 1000))
        let (high, low) = (RandomPool.next(), RandomPool.next())
        // 48 bits of milliseconds, version 7, 12 random bits; variant 10, 62 random bits (RFC 9562 §5.7).
        let first = millis << 16 | 0x7000 | (high & 0x0FFF)
        let second = (low & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000
        func byte(_ word: UInt64, _ index: UInt64) -> UInt8 { UInt8(truncatingIfNeeded: word >> (56 - 8 * index)) }
        return UUID(uuid: (byte(first, 0), byte(first, 1), byte(first, 2), byte(first, 3), byte(first, 4), byte(first, 5), byte(first, 6),
                           byte(first, 7), byte(second, 0), byte(second, 1), byte(second, 2), byte(second, 3), byte(second, 4),
                           byte(second, 5), byte(second, 6), byte(second, 7)))
    }
}

extension UUID {
    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// The lower-case text form (RFC 9562 §4) Herald writes everywhere, made here: Foundation's
    /// `uuidString` formats with `snprintf`, in upper case, and every request writes a few of these.
    public var lowercasedString: String {
        withUnsafeBytes(of: uuid) { bytes in
            String(unsafeUninitializedCapacity: 36) { buffer in
                var position = 0
                for (index, byte) in bytes.enumerated() {
                    if index == 4 || index == 6 || index == 8 || index == 10 {
                        buffer[position] = 45
                        position += 1
                    }
                    buffer[position] = Self.hexDigits[Int(byte >> 4)]
                    buffer[position + 1] = Self.hexDigits[Int(byte & 0x0F)]
                    position += 2
                }
                return position
            }
        }
    }
}

/// Herald writes UUIDs in lower case everywhere (RFC 9562 §4), in JSON as in tokens and resource names;
/// Foundation would write them in upper case. Synthesized `Encodable` conformances in modules that import
/// HeraldCore pick these overloads.
extension KeyedEncodingContainer {
    /// Encodes a UUID in lower case.
    public mutating func encode(_ value: UUID, forKey key: Key) throws {
        try encode(value.lowercasedString, forKey: key)
    }

    /// Encodes an optional UUID in lower case.
    public mutating func encodeIfPresent(_ value: UUID?, forKey key: Key) throws {
        try encodeIfPresent(value?.lowercasedString, forKey: key)
    }
}
