import Crypto
import Foundation
import HeraldCore
import Logging
import PostgresNIO

/// Authentication reads: AccessKey verification for the token exchange, and the per-request principal.
public struct AuthStore: Sendable {
    let database: Database
    let secrets: SecretBox
    /// Principals kept in the process while their changes are heard (the `api` role runs its listener);
    /// nil: every lookup reads the database.
    public var principals: PrincipalCache?

    /// Creates the store.
    public init(database: Database, secrets: SecretBox) {
        self.database = database
        self.secrets = secrets
    }

    /// The owner of a valid AccessKey.
    public struct KeyOwner: Sendable {
        /// Tenant.
        public var tenantID: UUID
        /// User.
        public var userID: UUID
    }

    /// Checks an AccessKey id and secret. Unknown ids, wrong secrets and disabled users all answer
    /// `Auth.InvalidCredentials` after the same work (a decryption and a constant-time comparison), so the
    /// answer does not reveal which ids exist. A banned tenant gets `Account.Banned`.
    public func verify(accessKeyID: String, secret: String) async throws -> KeyOwner {
        guard let (owner, stored, enabled, status) = try await lookup(accessKeyID: accessKeyID),
              constantTimeEquals(stored, Array(secret.utf8)), enabled else {
            _ = constantTimeEquals(Array(secret.utf8), Array(repeating: 0, count: 30))
            throw HeraldError.invalidCredentials
        }
        if status == TenantStatus.banned.rawValue { throw HeraldError.accountBanned }
        try await touch(owner, accessKeyID: accessKeyID)
        return owner
    }

    /// The owner and secret of an AccessKey, for checking a request signed with it (the Direct Mail
    /// compatibility endpoint); nil for an unknown id or a disabled user, after the same work as a real one.
    /// A banned tenant gets `Account.Banned`.
    public func signingSecret(accessKeyID: String) async throws -> (owner: KeyOwner, secret: String)? {
        guard let (owner, stored, enabled, status) = try await lookup(accessKeyID: accessKeyID), enabled else { return nil }
        if status == TenantStatus.banned.rawValue { throw HeraldError.accountBanned }
        try await touch(owner, accessKeyID: accessKeyID)
        return (owner, String(decoding: stored, as: UTF8.self))
    }

    /// Records that a signed request used this nonce; false when it was used before (a replay).
    public func useNonce(_ nonce: String, owner: KeyOwner, accessKeyID: String, now: Date) async throws -> Bool {
        try await database.client.query("SELECT herald_use_nonce(\(owner.tenantID), \(accessKeyID), \(nonce), \(now))", logger: database.logger)
            .decode(Bool.self).first { _ in true } ?? false
    }

    /// The key's owner, its opened secret, whether the user is enabled and the tenant's status. An unknown id
    /// opens a decoy box, so that the answer takes as long.
    private func lookup(accessKeyID: String) async throws -> (KeyOwner, [UInt8], Bool, String)? {
        let row: (UUID, UUID, ByteBuffer, Bool, String)? = try await database.withSystem { connection in
            guard AccessKeyGenerator.isWellFormedID(accessKeyID) else { return nil }
            return try await connection.query("""
                SELECT k.tenant_id, k.user_id, k.secret_ciphertext, u.enabled, t.status
                FROM access_keys k JOIN users u ON u.id = k.user_id AND u.tenant_id = k.tenant_id JOIN tenants t ON t.id = k.tenant_id
                WHERE k.id = \(accessKeyID)
                """, logger: database.logger).decode((UUID, UUID, ByteBuffer, Bool, String).self).first { _ in true }
        }
        guard let (tenantID, userID, sealed, enabled, status) = row else {
            _ = try? secrets.open(Self.decoy, context: "access_key:decoy")
            return nil
        }
        let stored = try secrets.open(Array(buffer: sealed), context: "access_key:\(accessKeyID)")
        return (KeyOwner(tenantID: tenantID, userID: userID), stored, enabled, status)
    }

    private func touch(_ owner: KeyOwner, accessKeyID: String) async throws {
        _ = try await database.withTenant(owner.tenantID) { connection in
            try await connection.query("""
                UPDATE access_keys SET last_used_at = now()
                WHERE tenant_id = \(owner.tenantID) AND id = \(accessKeyID) AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
                """, logger: database.logger)
        }
    }

    private static let decoy = SecretBox(masterKey: .random()).seal(Array(repeating: 0, count: 30), context: "access_key:decoy")

    /// Resolves a verified token's claims to the current principal, or nil when the user, key or tenant is gone
    /// or the user is disabled: this is why disabling a user or deleting a key takes effect at once. With a
    /// live ``principals`` cache, from memory (every change to a principal drops it there at once).
    public func principal(tenantID: UUID, userID: UUID, accessKeyID: String) async throws -> Principal? {
        guard let principals else { return try await loadPrincipal(tenantID: tenantID, userID: userID, accessKeyID: accessKeyID) }
        return try await principals.value(PrincipalKey(tenantID: tenantID, userID: userID, accessKeyID: accessKeyID)) {
            try await loadPrincipal(tenantID: tenantID, userID: userID, accessKeyID: accessKeyID)
        }
    }

    func loadPrincipal(tenantID: UUID, userID: UUID, accessKeyID: String) async throws -> Principal? {
        // One statement outside an explicit transaction: herald_principal sets the RLS tenant itself
        // (transaction-local, so it ends with the statement). This runs on every request.
        let row = try await database.client.query(
            """
            SELECT o_status, o_enabled, o_is_root, o_policies, o_ip_enabled, o_ip_allow FROM herald_principal(\(tenantID), \(userID), \(accessKeyID))
            """,
            logger: database.logger
        ).decode((String, Bool, Bool, [String], Bool, [String]).self).first { _ in true }
        guard let (status, enabled, isRoot, attached, ipEnabled, ipAllow) = row, enabled, let tenantStatus = TenantStatus(rawValue: status) else { return nil }
        var policies: [PolicyDocument] = []
        for entry in attached {
            let parts = entry.split(separator: "\t", maxSplits: 1, omittingEmptySubsequences: false)
            if let builtin = BuiltinPolicy(rawValue: String(parts[0])) {
                policies.append(builtin.document)
            } else if parts.count == 2, let document = try? JSONDecoder().decode(PolicyDocument.self, from: Data(parts[1].utf8)) {
                policies.append(document)
            }
        }
        // Stored entries were checked when they were set; one that no longer parses permits nobody.
        let allowlist = (try? IPAllowlist.parse(enabled: ipEnabled, entries: ipAllow)) ?? IPAllowlist(enabled: true, networks: [])
        return Principal(tenantID: tenantID, tenantStatus: tenantStatus, userID: userID, isRoot: isRoot, accessKeyID: accessKeyID, policies: policies,
                         ipAllowlist: allowlist)
    }
}
