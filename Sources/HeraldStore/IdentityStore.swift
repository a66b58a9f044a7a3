import Foundation
import HeraldCore
import Logging
import PostgresNIO

/// A tenant's identity objects: sub-users, AccessKeys, policies and their attachments, IP protection.
/// Every method runs in a tenant transaction (row-level security on) and every query also names the tenant.
/// Every change writes its audit entry in the same transaction.
public struct IdentityStore: Sendable {
    let database: Database
    let secrets: SecretBox
    /// Product limits (users, AccessKeys per user, custom policies) and the tenant's overrides.
    public var limits = TenantLimits()

    /// Creates the store.
    public init(database: Database, secrets: SecretBox) {
        self.database = database
        self.secrets = secrets
    }

    private var logger: Logger { database.logger }

    private static func resource(_ tenantID: UUID, _ kind: String, _ name: String) -> String {
        ResourceName.tenantResource(tenantID: tenantID.lowercasedString, kind: kind, name: name)
    }

    // MARK: Users

    static func validateUserName(_ name: String) throws(HeraldError) {
        guard (1...64).contains(name.count), name.unicodeScalars.allSatisfy({ $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "._@-".unicodeScalars.contains($0)) }) else {
            throw HeraldError.validation("name must be 1 to 64 characters of letters, digits and . _ @ -", field: "name")
        }
    }

    private static func decodeUsers(_ rows: PostgresRowSequence) async throws -> [UserRecord] {
        var users: [UserRecord] = []
        for try await (id, name, enabled, root, created) in rows.decode((UUID, String, Bool, Bool, Date).self) {
            users.append(UserRecord(id: id, name: name, enabled: enabled, root: root, createdAt: created))
        }
        return users
    }

    /// Creates a sub-user (enabled, no policies).
    public func createUser(tenantID: UUID, name: String, actor: AuditActor) async throws -> UserRecord {
        try Self.validateUserName(name)
        let id = UUIDv7.make()
        return try await database.withTenant(tenantID) { connection in
            let count = try await connection.query("SELECT count(*) FROM users WHERE tenant_id = \(tenantID)", logger: logger)
                .decode(Int.self).first { _ in true } ?? 0
            let maxUsers = try await limits.effective(connection, tenantID: tenantID, logger: logger).limits.users
            guard count < maxUsers + 1 else { throw HeraldError.limitExceeded("A tenant can have at most \(maxUsers) sub-users (limit: users).") }
            do {
                let user = try await Self.decodeUsers(try await connection.query("""
                    INSERT INTO users (id, tenant_id, name) VALUES (\(id), \(tenantID), \(name))
                    RETURNING id, name, enabled, is_root, created_at
                    """, logger: logger))[0]
                try await AuditLog.record(on: connection, logger: logger, tenantID: tenantID, actor: actor, action: "dm:CreateUser",
                                          resource: Self.resource(tenantID, "user", id.lowercasedString), detail: ["name": name])
                return user
            } catch where error.isUniqueViolation() {
                throw HeraldError.conflict("User.AlreadyExists", "A user named \(name) already exists.")
            }
        }
    }

    /// Lists users in creation order after `after`.
    public func listUsers(tenantID: UUID, limit: Int, after: UUID?) async throws -> [UserRecord] {
        let limit = min(max(limit, 1), 100)
        return try await database.withTenant(tenantID) { connection in
            try await Self.decodeUsers(try await connection.query("""
                SELECT id, name, enabled, is_root, created_at FROM users
                WHERE tenant_id = \(tenantID) AND (\(after)::uuid IS NULL OR id > \(after))
                ORDER BY id LIMIT \(limit)
                """, logger: logger))
        }
    }

    /// One user; another tenant's id is not found.
    public func getUser(tenantID: UUID, id: UUID) async throws -> UserRecord {
        try await database.withTenant(tenantID) { connection in
            try await Self.fetchUser(tenantID: tenantID, id: id, on: connection, logger: logger)
        }
    }

    private static func fetchUser(tenantID: UUID, id: UUID, on connection: PostgresConnection, logger: Logger, lock: Bool = false) async throws -> UserRecord {
        let rows = try await connection.query("""
            SELECT id, name, enabled, is_root, created_at FROM users WHERE tenant_id = \(tenantID) AND id = \(id)
            """, logger: logger)
        guard let user = try await decodeUsers(rows).first else { throw HeraldError.notFound("user") }
        return user
    }

    /// Renames and/or enables/disables a user. Disabling takes effect on the next request of any of its tokens.
    public func updateUser(tenantID: UUID, id: UUID, name: String?, enabled: Bool?, actor: AuditActor) async throws -> UserRecord {
        if let name { try Self.validateUserName(name) }
        return try await database.withTenant(tenantID) { connection in
            let user = try await Self.fetchUser(tenantID: tenantID, id: id, on: connection, logger: logger)
            if user.root, enabled == false || name != nil {
                throw HeraldError.conflict("User.Root", "The root user cannot be disabled or renamed.")
            }
            do {
                let updated = try await Self.decodeUsers(try await connection.query("""
                    UPDATE users SET name = coalesce(\(name), name), enabled = coalesce(\(enabled), enabled), updated_at = now()
                    WHERE tenant_id = \(tenantID) AND id = \(id)
                    RETURNING id, name, enabled, is_root, created_at
                    """, logger: logger))[0]
                var detail: [String: String] = [:]
                if let name { detail["name"] = name }
                if let enabled { detail["enabled"] = String(enabled) }
                try await AuditLog.record(on: connection, logger: logger, tenantID: tenantID, actor: actor, action: "dm:UpdateUser",
                                          resource: Self.resource(tenantID, "user", id.lowercasedString), detail: detail)
                return updated
            } catch where error.isUniqueViolation() {
                throw HeraldError.conflict("User.AlreadyExists", "A user with that name already exists.")
            }
        }
    }

    /// Deletes a sub-user with its keys and attachments.
    public func deleteUser(tenantID: UUID, id: UUID, actor: AuditActor) async throws {
        try await database.withTenant(tenantID) { connection in
            let user = try await Self.fetchUser(tenantID: tenantID, id: id, on: connection, logger: logger)
            guard !user.root else { throw HeraldError.conflict("User.Root", "The root user cannot be deleted.") }
            try await connection.query("DELETE FROM users WHERE tenant_id = \(tenantID) AND id = \(id)", logger: logger)
            try await AuditLog.record(on: connection, logger: logger, tenantID: tenantID, actor: actor, action: "dm:DeleteUser",
                                      resource: Self.resource(tenantID, "user", id.lowercasedString), detail: ["name": user.name])
        }
    }

    // MARK: AccessKeys

    /// Creates an AccessKey for a user; returns it with its secret (shown once, stored only encrypted).
    public func createAccessKey(tenantID: UUID, userID: UUID, actor: AuditActor) async throws -> (AccessKeyRecord, String) {
        let keyID = AccessKeyGenerator.newID()
        let secret = AccessKeyGenerator.newSecret()
        let sealed = secrets.seal(Array(secret.utf8), context: "access_key:\(keyID)")
        return try await database.withTenant(tenantID) { connection in
            _ = try await Self.fetchUser(tenantID: tenantID, id: userID, on: connection, logger: logger)
            // Serialise concurrent key creation for one user so the limit holds.
            try await connection.query("SELECT 1 FROM users WHERE tenant_id = \(tenantID) AND id = \(userID) FOR UPDATE", logger: logger)
            let count = try await connection.query("SELECT count(*) FROM access_keys WHERE tenant_id = \(tenantID) AND user_id = \(userID)", logger: logger)
                .decode(Int.self).first { _ in true } ?? 0
            let maxKeysPerUser = try await limits.effective(connection, tenantID: tenantID, logger: logger).limits.accessKeysPerUser
            guard count < maxKeysPerUser else {
                throw HeraldError.limitExceeded("A user can have at most \(maxKeysPerUser) AccessKeys (limit: accessKeysPerUser).")
            }
            let created = try await connection.query("""
                INSERT INTO access_keys (id, tenant_id, user_id, secret_ciphertext) VALUES (\(keyID), \(tenantID), \(userID), \(ByteBuffer(bytes: sealed)))
                RETURNING created_at
                """, logger: logger).decode(Date.self).first { _ in true } ?? Date()
            try await AuditLog.record(on: connection, logger: logger, tenantID: tenantID, actor: actor, action: "dm:CreateAccessKey",
                                      resource: Self.resource(tenantID, "user", userID.lowercasedString), detail: ["accessKeyId": keyID])
            return (AccessKeyRecord(accessKeyId: keyID, userId: userID, status: "active", createdAt: created, lastUsedAt: nil), secret)
        }
    }

    /// Lists a user's AccessKeys (never the secrets).
    public func listAccessKeys(tenantID: UUID, userID: UUID) async throws -> [AccessKeyRecord] {
        try await database.withTenant(tenantID) { connection in
            _ = try await Self.fetchUser(tenantID: tenantID, id: userID, on: connection, logger: logger)
            var keys: [AccessKeyRecord] = []
            for try await (id, status, created, used) in try await connection.query("""
                SELECT id, status, created_at, last_used_at FROM access_keys WHERE tenant_id = \(tenantID) AND user_id = \(userID) ORDER BY created_at
                """, logger: logger).decode((String, String, Date, Date?).self) {
                keys.append(AccessKeyRecord(accessKeyId: id, userId: userID, status: status, createdAt: created, lastUsedAt: used))
            }
            return keys
        }
    }

    /// Deletes an AccessKey; tokens issued for it stop working at once.
    public func deleteAccessKey(tenantID: UUID, userID: UUID, keyID: String, actor: AuditActor) async throws {
        try await database.withTenant(tenantID) { connection in
            let deleted = try await connection.query("""
                DELETE FROM access_keys WHERE tenant_id = \(tenantID) AND user_id = \(userID) AND id = \(keyID) RETURNING id
                """, logger: logger).decode(String.self).first { _ in true }
            guard deleted != nil else { throw HeraldError.notFound("AccessKey") }
            try await AuditLog.record(on: connection, logger: logger, tenantID: tenantID, actor: actor, action: "dm:DeleteAccessKey",
                                      resource: Self.resource(tenantID, "user", userID.lowercasedString), detail: ["accessKeyId": keyID])
        }
    }

    // MARK: Policies

    private static func decodePolicies(_ rows: PostgresRowSequence) async throws -> [PolicyRecord] {
        var result: [PolicyRecord] = []
        for try await (name, description, document, created, updated) in rows.decode((String, String, String, Date, Date).self) {
            let parsed = try JSONDecoder().decode(PolicyDocument.self, from: Data(document.utf8))
            result.append(PolicyRecord(name: name, type: .custom, description: description, document: parsed, createdAt: created, updatedAt: updated))
        }
        return result
    }

    private static func builtin(_ policy: BuiltinPolicy) -> PolicyRecord {
        PolicyRecord(name: policy.rawValue, type: .system, description: policy.description, document: policy.document, createdAt: nil, updatedAt: nil)
    }

    static func validatePolicyName(_ name: String) throws(HeraldError) {
        guard (1...128).contains(name.utf8.count), name.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || $0 == 45 }) else {
            throw HeraldError.validation("name must be 1 to 128 letters, digits or hyphens.", field: "name")
        }
        if BuiltinPolicy(rawValue: name) != nil {
            throw HeraldError.conflict("Policy.BuiltIn", "\(name) is a built-in policy name.")
        }
    }

    private static func encode(_ document: PolicyDocument) throws -> String {
        String(decoding: try JSONEncoder().encode(document), as: UTF8.self)
    }

    /// Creates a custom policy.
    public func createPolicy(tenantID: UUID, name: String, description: String, document: PolicyDocument, actor: AuditActor) async throws -> PolicyRecord {
        try Self.validatePolicyName(name)
        guard description.count <= 1024 else { throw HeraldError.validation("description must be at most 1024 characters.", field: "description") }
        let json = try Self.encode(document)
        return try await database.withTenant(tenantID) { connection in
            let count = try await connection.query("SELECT count(*) FROM policies WHERE tenant_id = \(tenantID)", logger: logger)
                .decode(Int.self).first { _ in true } ?? 0
            let maxPolicies = try await limits.effective(connection, tenantID: tenantID, logger: logger).limits.policies
            guard count < maxPolicies else { throw HeraldError.limitExceeded("A tenant can have at most \(maxPolicies) custom policies (limit: policies).") }
            do {
                let policy = try await Self.decodePolicies(try await connection.query("""
                    INSERT INTO policies (tenant_id, name, description, document) VALUES (\(tenantID), \(name), \(description), \(json)::jsonb)
                    RETURNING name, description, document::text, created_at, updated_at
                    """, logger: logger))[0]
                try await AuditLog.record(on: connection, logger: logger, tenantID: tenantID, actor: actor, action: "dm:CreatePolicy",
                                          resource: Self.resource(tenantID, "policy", name))
                return policy
            } catch where error.isUniqueViolation() {
                throw HeraldError.conflict("Policy.AlreadyExists", "A policy named \(name) already exists.")
            }
        }
    }

    /// Built-in policies first, then the tenant's own by name.
    public func listPolicies(tenantID: UUID) async throws -> [PolicyRecord] {
        let custom = try await database.withTenant(tenantID) { connection in
            try await Self.decodePolicies(try await connection.query("""
                SELECT name, description, document::text, created_at, updated_at FROM policies WHERE tenant_id = \(tenantID) ORDER BY name
                """, logger: logger))
        }
        return BuiltinPolicy.allCases.map(Self.builtin) + custom
    }

    /// One policy by name (built-in or custom).
    public func getPolicy(tenantID: UUID, name: String) async throws -> PolicyRecord {
        if let builtin = BuiltinPolicy(rawValue: name) { return Self.builtin(builtin) }
        return try await database.withTenant(tenantID) { connection in
            guard let policy = try await Self.decodePolicies(try await connection.query("""
                SELECT name, description, document::text, created_at, updated_at FROM policies WHERE tenant_id = \(tenantID) AND name = \(name)
                """, logger: logger)).first else { throw HeraldError.notFound("policy") }
            return policy
        }
    }

    /// Replaces a custom policy's document (and description); attached users are affected on their next request.
    public func updatePolicy(tenantID: UUID, name: String, description: String?, document: PolicyDocument, actor: AuditActor) async throws -> PolicyRecord {
        if let description, description.count > 1024 {
            throw HeraldError.validation("description must be at most 1024 characters.", field: "description")
        }
        if BuiltinPolicy(rawValue: name) != nil { throw HeraldError.conflict("Policy.BuiltIn", "Built-in policies cannot be changed.") }
        let json = try Self.encode(document)
        return try await database.withTenant(tenantID) { connection in
            guard let policy = try await Self.decodePolicies(try await connection.query("""
                UPDATE policies SET document = \(json)::jsonb, description = coalesce(\(description), description), updated_at = now()
                WHERE tenant_id = \(tenantID) AND name = \(name)
                RETURNING name, description, document::text, created_at, updated_at
                """, logger: logger)).first else { throw HeraldError.notFound("policy") }
            try await AuditLog.record(on: connection, logger: logger, tenantID: tenantID, actor: actor, action: "dm:UpdatePolicy",
                                      resource: Self.resource(tenantID, "policy", name))
            return policy
        }
    }

    /// Deletes a custom policy that no user has attached.
    public func deletePolicy(tenantID: UUID, name: String, actor: AuditActor) async throws {
        if BuiltinPolicy(rawValue: name) != nil { throw HeraldError.conflict("Policy.BuiltIn", "Built-in policies cannot be deleted.") }
        try await database.withTenant(tenantID) { connection in
            let lock = try await connection.query("SELECT name FROM policies WHERE tenant_id = \(tenantID) AND name = \(name) FOR UPDATE", logger: logger)
                .decode(String.self).first { _ in true }
            guard lock != nil else { throw HeraldError.notFound("policy") }
            let attached = try await connection.query("SELECT count(*) FROM user_policies WHERE tenant_id = \(tenantID) AND policy_name = \(name)", logger: logger)
                .decode(Int.self).first { _ in true } ?? 0
            guard attached == 0 else { throw HeraldError.conflict("Policy.InUse", "The policy is attached to \(attached) user(s); detach it first.") }
            try await connection.query("DELETE FROM policies WHERE tenant_id = \(tenantID) AND name = \(name)", logger: logger)
            try await AuditLog.record(on: connection, logger: logger, tenantID: tenantID, actor: actor, action: "dm:DeletePolicy",
                                      resource: Self.resource(tenantID, "policy", name))
        }
    }

    /// Policies attached to a user.
    public func listUserPolicies(tenantID: UUID, userID: UUID) async throws -> [AttachedPolicy] {
        try await database.withTenant(tenantID) { connection in
            _ = try await Self.fetchUser(tenantID: tenantID, id: userID, on: connection, logger: logger)
            var result: [AttachedPolicy] = []
            for try await (name, type) in try await connection.query("""
                SELECT policy_name, policy_type FROM user_policies WHERE tenant_id = \(tenantID) AND user_id = \(userID) ORDER BY attached_at, policy_name
                """, logger: logger).decode((String, String).self) {
                result.append(AttachedPolicy(name: name, type: PolicyType(rawValue: type) ?? .custom))
            }
            return result
        }
    }

    /// Attaches a built-in or custom policy to a user (idempotent).
    public func attachPolicy(tenantID: UUID, userID: UUID, name: String, actor: AuditActor) async throws -> AttachedPolicy {
        try await database.withTenant(tenantID) { connection in
            _ = try await Self.fetchUser(tenantID: tenantID, id: userID, on: connection, logger: logger)
            let type: PolicyType
            if BuiltinPolicy(rawValue: name) != nil {
                type = .system
            } else {
                let exists = try await connection.query("SELECT name FROM policies WHERE tenant_id = \(tenantID) AND name = \(name) FOR SHARE", logger: logger)
                    .decode(String.self).first { _ in true }
                guard exists != nil else { throw HeraldError.notFound("policy") }
                type = .custom
            }
            try await connection.query("""
                INSERT INTO user_policies (tenant_id, user_id, policy_name, policy_type) VALUES (\(tenantID), \(userID), \(name), \(type.rawValue))
                ON CONFLICT (user_id, policy_name) DO NOTHING
                """, logger: logger)
            try await AuditLog.record(on: connection, logger: logger, tenantID: tenantID, actor: actor, action: "dm:AttachPolicyToUser",
                                      resource: Self.resource(tenantID, "user", userID.lowercasedString), detail: ["policy": name])
            return AttachedPolicy(name: name, type: type)
        }
    }

    /// Detaches a policy from a user.
    public func detachPolicy(tenantID: UUID, userID: UUID, name: String, actor: AuditActor) async throws {
        try await database.withTenant(tenantID) { connection in
            let removed = try await connection.query("""
                DELETE FROM user_policies WHERE tenant_id = \(tenantID) AND user_id = \(userID) AND policy_name = \(name) RETURNING policy_name
                """, logger: logger).decode(String.self).first { _ in true }
            guard removed != nil else { throw HeraldError.notFound("policy attachment") }
            try await AuditLog.record(on: connection, logger: logger, tenantID: tenantID, actor: actor, action: "dm:DetachPolicyFromUser",
                                      resource: Self.resource(tenantID, "user", userID.lowercasedString), detail: ["policy": name])
        }
    }

    // MARK: IP protection

    /// The tenant's IP protection setting (disabled and empty until set).
    public func ipProtection(tenantID: UUID) async throws -> IPProtectionRecord {
        try await database.withTenant(tenantID) { connection in
            try await Self.fetchIPProtection(tenantID: tenantID, on: connection, logger: logger)
        }
    }

    static func fetchIPProtection(tenantID: UUID, on connection: PostgresConnection, logger: Logger) async throws -> IPProtectionRecord {
        for try await (enabled, allow, updated) in try await connection.query(
            "SELECT enabled, allow, updated_at FROM ip_protection WHERE tenant_id = \(tenantID)", logger: logger
        ).decode((Bool, [String], Date).self) {
            return IPProtectionRecord(enabled: enabled, allow: allow, updatedAt: updated)
        }
        return IPProtectionRecord(enabled: false, allow: [], updatedAt: nil)
    }

    /// Replaces the IP protection setting.
    public func setIPProtection(tenantID: UUID, allowlist: IPAllowlist, actor: AuditActor) async throws -> IPProtectionRecord {
        let entries = allowlist.networks.map(\.description)
        return try await database.withTenant(tenantID) { connection in
            try await connection.query("""
                INSERT INTO ip_protection (tenant_id, enabled, allow, updated_at) VALUES (\(tenantID), \(allowlist.enabled), \(entries), now())
                ON CONFLICT (tenant_id) DO UPDATE SET enabled = excluded.enabled, allow = excluded.allow, updated_at = now()
                """, logger: logger)
            try await AuditLog.record(on: connection, logger: logger, tenantID: tenantID, actor: actor, action: "dm:UpdateIpProtection",
                                      resource: ResourceName.tenantWildcard(tenantID: tenantID.lowercasedString),
                                      detail: ["enabled": String(allowlist.enabled), "allow": entries.joined(separator: ",")])
            return try await Self.fetchIPProtection(tenantID: tenantID, on: connection, logger: logger)
        }
    }

    /// Changes the allowlist's entries under the row's lock (Direct Mail's AddIpfilter and DeleteIpfilterByEdmId
    /// change one entry each, and two at once must not lose one): `change` gets the current entries and answers
    /// the new ones; the switch stays as it is.
    public func changeIPAllowlist(tenantID: UUID, actor: AuditActor,
                                  _ change: @escaping @Sendable ([String]) throws(HeraldError) -> [String]) async throws -> IPProtectionRecord {
        try await database.withTenant(tenantID) { connection in
            try await connection.query("""
                INSERT INTO ip_protection (tenant_id, enabled, allow, updated_at) VALUES (\(tenantID), false, '{}', now()) ON CONFLICT (tenant_id) DO NOTHING
                """, logger: logger)
            let current = try await connection.query("SELECT enabled, allow FROM ip_protection WHERE tenant_id = \(tenantID) FOR UPDATE", logger: logger)
                .decode((Bool, [String]).self).first { _ in true }
            let enabled = current?.0 ?? false
            let allowlist = try IPAllowlist.parse(enabled: enabled, entries: try change(current?.1 ?? []))
            let entries = allowlist.networks.map(\.description)
            try await connection.query("UPDATE ip_protection SET allow = \(entries), updated_at = now() WHERE tenant_id = \(tenantID)", logger: logger)
            try await AuditLog.record(on: connection, logger: logger, tenantID: tenantID, actor: actor, action: "dm:UpdateIpProtection",
                                      resource: ResourceName.tenantWildcard(tenantID: tenantID.lowercasedString),
                                      detail: ["enabled": String(enabled), "allow": entries.joined(separator: ",")])
            return try await Self.fetchIPProtection(tenantID: tenantID, on: connection, logger: logger)
        }
    }
}
