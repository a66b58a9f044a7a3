import Foundation
import HeraldCore
import Logging
import PostgresNIO

/// A DKIM key as the API shows it (never the private half).
public struct DKIMKeyInfo: Sendable, Equatable {
    public var selector: String
    public var bits: Int
    /// active, pending or retired.
    public var state: String
    public var publicKeyBase64: String
    public var createdAt: Date
}

/// A sending domain with its keys and last check.
public struct DomainRecord: Sendable, Equatable {
    public var id: UUID
    public var name: String
    public var status: SendingDomain.Status
    public var verificationToken: String
    public var checks: [SendingDomain.Check]
    public var keys: [DKIMKeyInfo]
    public var createdAt: Date
    public var verifiedAt: Date?
    public var lastCheckedAt: Date?

    /// Keys whose records must be published: the signing one and one waiting for rotation.
    public var publishedKeys: [DKIMKeyInfo] { keys.filter { $0.state != "retired" } }

    /// The records to publish, each with its last status.
    public func records(settings: SendingDomain.Settings) -> [(record: SendingDomain.Record, check: SendingDomain.Check?)] {
        SendingDomain.records(domain: name, token: verificationToken,
                              dkim: publishedKeys.map { SendingDomain.DKIMPublicKey(selector: $0.selector, publicKeyBase64: $0.publicKeyBase64) },
                              settings: settings)
            .map { record in (record, checks.first { $0.purpose == record.purpose && $0.host == record.host }) }
    }
}

/// Sending domains and their DKIM keys, in tenant transactions; every change is audited with it.
public struct DomainStore: Sendable {
    let database: Database
    let secrets: SecretBox
    /// Product limits (domains) and the tenant's overrides.
    public var limits = TenantLimits()
    /// How long a verified domain goes before it is checked again.
    public var recheckInterval: Duration = .seconds(86_400)

    public init(database: Database, secrets: SecretBox) {
        self.database = database
        self.secrets = secrets
    }

    private var logger: Logger { database.logger }

    static func resource(_ tenantID: UUID, _ id: UUID) -> String {
        ResourceName.tenantResource(tenantID: tenantID.uuidString.lowercased(), kind: "domain", name: id.uuidString.lowercased())
    }

    private func sealKey(_ key: DKIMKeyPair, id: UUID) -> [UInt8] {
        secrets.seal(key.privateKeyDER, context: "dkim_key:\(id.uuidString.lowercased())")
    }

    /// Creates a domain with a fresh DKIM key (generated before the transaction: RSA generation is slow).
    public func create(tenantID: UUID, name: String, keyBits: Int, actor: AuditActor, now: Date) async throws -> DomainRecord {
        let name = try SendingDomain.normalize(name)
        let key = try DKIMKeyPair.generate(bits: keyBits)
        let id = UUIDv7.make(), keyID = UUIDv7.make()
        let selector = SendingDomain.newSelector(now: now)
        let token = SendingDomain.newToken()
        let sealed = ByteBuffer(bytes: sealKey(key, id: keyID))
        let publicKey = key.publicKeyBase64
        return try await database.withTenant(tenantID) { connection in
            // Serialises creates of one tenant, so two at once cannot both pass the limit.
            try await connection.query("SELECT pg_advisory_xact_lock(hashtext('domains:' || \(tenantID.uuidString)))", logger: logger)
            let count = try await connection.query("SELECT count(*) FROM domains WHERE tenant_id = \(tenantID)", logger: logger)
                .decode(Int.self).first { _ in true } ?? 0
            let maxDomains = try await limits.effective(connection, tenantID: tenantID, logger: logger).limits.domains
            guard count < maxDomains else {
                throw HeraldError.limitExceeded("A tenant can have at most \(maxDomains) sending domains (limit: domains).")
            }
            do {
                try await connection.query("""
                    INSERT INTO domains (id, tenant_id, name, verification_token) VALUES (\(id), \(tenantID), \(name), \(token))
                    """, logger: logger)
            } catch where error.isUniqueViolation() {
                throw HeraldError.conflict("Domain.AlreadyExists", "The domain \(name) is already registered.")
            }
            try await connection.query("""
                INSERT INTO dkim_keys (id, tenant_id, domain_id, selector, bits, private_key, public_key, state, activated_at)
                VALUES (\(keyID), \(tenantID), \(id), \(selector), \(key.bits), \(sealed), \(publicKey), 'active', now())
                """, logger: logger)
            try await AuditLog.record(on: connection, logger: logger, tenantID: tenantID, actor: actor, action: "dm:CreateDomain",
                                      resource: Self.resource(tenantID, id), detail: ["name": name, "selector": selector])
            return try await load(connection, tenantID: tenantID, ids: [id])[0]
        }
    }

    /// The tenant's domains, by name.
    public func list(tenantID: UUID) async throws -> [DomainRecord] {
        try await database.withTenant(tenantID) { connection in try await load(connection, tenantID: tenantID, ids: nil) }
    }

    /// One domain (404 for another tenant's id, like a missing one).
    public func get(tenantID: UUID, id: UUID) async throws -> DomainRecord {
        try await database.withTenant(tenantID) { connection in
            guard let domain = try await load(connection, tenantID: tenantID, ids: [id]).first else { throw HeraldError.notFound("domain") }
            return domain
        }
    }

    /// Deletes a domain and its keys; refused while sender addresses use it.
    public func delete(tenantID: UUID, id: UUID, actor: AuditActor) async throws {
        try await database.withTenant(tenantID) { connection in
            let deleted: String?
            do {
                deleted = try await connection.query("DELETE FROM domains WHERE tenant_id = \(tenantID) AND id = \(id) RETURNING name", logger: logger)
                    .decode(String.self).first { _ in true }
            } catch where error.isForeignKeyViolation() {
                throw HeraldError.conflict("Domain.InUse", "Sender addresses still use this domain; delete them first.")
            }
            guard let name = deleted else { throw HeraldError.notFound("domain") }
            try await AuditLog.record(on: connection, logger: logger, tenantID: tenantID, actor: actor, action: "dm:DeleteDomain",
                                      resource: Self.resource(tenantID, id), detail: ["name": name])
        }
    }

    /// Adds a new DKIM key waiting for its record; the current key keeps signing until `verify` finds the
    /// new record, then retires.
    public func rotateDKIM(tenantID: UUID, id: UUID, keyBits: Int, actor: AuditActor, now: Date) async throws -> DomainRecord {
        let key = try DKIMKeyPair.generate(bits: keyBits)
        let keyID = UUIDv7.make()
        let selector = SendingDomain.newSelector(now: now)
        let sealed = ByteBuffer(bytes: sealKey(key, id: keyID))
        let publicKey = key.publicKeyBase64
        return try await database.withTenant(tenantID) { connection in
            let exists = try await connection.query("SELECT 1 FROM domains WHERE tenant_id = \(tenantID) AND id = \(id) FOR UPDATE", logger: logger)
                .decode(Int.self).first { _ in true }
            guard exists != nil else { throw HeraldError.notFound("domain") }
            do {
                try await connection.query("""
                    INSERT INTO dkim_keys (id, tenant_id, domain_id, selector, bits, private_key, public_key, state)
                    VALUES (\(keyID), \(tenantID), \(id), \(selector), \(key.bits), \(sealed), \(publicKey), 'pending')
                    """, logger: logger)
            } catch where error.isUniqueViolation() {
                throw HeraldError.conflict("Domain.RotationPending",
                                           "A new DKIM key is already waiting for its DNS record; publish it and verify the domain first.")
            }
            try await AuditLog.record(on: connection, logger: logger, tenantID: tenantID, actor: actor, action: "dm:RotateDomainDkim",
                                      resource: Self.resource(tenantID, id), detail: ["selector": selector])
            return try await load(connection, tenantID: tenantID, ids: [id])[0]
        }
    }

    /// Stores the result of checking every record and moves the domain's state: verified when
    /// ownership, SPF and the signing key's DKIM record are ok; failing when a verified domain no longer
    /// is; a waiting DKIM key whose record is ok becomes the signing key and the old one retires.
    public func saveChecks(tenantID: UUID, id: UUID, checks: [SendingDomain.Check], actor: AuditActor, now: Date) async throws -> DomainRecord {
        try await database.withTenant(tenantID) { connection in
            guard let domain = try await load(connection, tenantID: tenantID, ids: [id], lock: true).first else { throw HeraldError.notFound("domain") }
            let verdict = SendingDomain.verdict(checks, current: domain.status, activeSelector: domain.keys.first { $0.state == "active" }?.selector,
                                                pendingSelector: domain.keys.first { $0.state == "pending" }?.selector)
            let status = verdict.status
            let checksJSON = String(decoding: try JSONEncoder().encode(checks), as: UTF8.self)
            let next = status == .pending ? nil : now.addingTimeInterval(TimeInterval(recheckInterval.components.seconds))
            try await connection.query("""
                UPDATE domains SET status = \(status.rawValue), checks = \(checksJSON)::jsonb, last_checked_at = \(now), updated_at = \(now),
                       verified_at = CASE WHEN \(status == .verified) THEN coalesce(verified_at, \(now)) ELSE verified_at END,
                       next_check_at = \(next)
                WHERE tenant_id = \(tenantID) AND id = \(id)
                """, logger: logger)
            var detail = ["status": status.rawValue]
            if let selector = verdict.activate {
                try await connection.query("""
                    UPDATE dkim_keys SET state = 'retired', retired_at = \(now) WHERE tenant_id = \(tenantID) AND domain_id = \(id) AND state = 'active'
                    """, logger: logger)
                try await connection.query("""
                    UPDATE dkim_keys SET state = 'active', activated_at = \(now)
                    WHERE tenant_id = \(tenantID) AND domain_id = \(id) AND selector = \(selector)
                    """, logger: logger)
                detail["dkimActivated"] = selector
            }
            if status != domain.status || detail["dkimActivated"] != nil || actor.type != .system {
                try await AuditLog.record(on: connection, logger: logger, tenantID: tenantID, actor: actor, action: "dm:CheckDomain",
                                          resource: Self.resource(tenantID, id), detail: detail)
            }
            return try await load(connection, tenantID: tenantID, ids: [id])[0]
        }
    }

    /// Claims up to `limit` domains due for re-verification, across tenants, leasing them for `lease`
    /// (another process skips them; a crash lets the lease run out and the domain come back).
    public func claimDueForRecheck(limit: Int, now: Date, lease: Duration) async throws -> [(tenantID: UUID, id: UUID)] {
        try await database.withSystem { connection in
            let until = now.addingTimeInterval(TimeInterval(lease.components.seconds))
            var claimed: [(UUID, UUID)] = []
            for try await (tenant, id) in try await connection.query("""
                UPDATE domains SET next_check_at = \(until)
                WHERE id IN (SELECT id FROM domains WHERE next_check_at <= \(now) ORDER BY next_check_at LIMIT \(limit) FOR UPDATE SKIP LOCKED)
                RETURNING tenant_id, id
                """, logger: logger).decode((UUID, UUID).self) {
                claimed.append((tenant, id))
            }
            return claimed
        }
    }

    /// The signing key of a verified domain, for DKIM (nil when the domain is not usable).
    public func signingKey(tenantID: UUID, domain: String) async throws -> (selector: String, key: DKIMKeyPair)? {
        guard let key = try await sending(tenantID: tenantID, domain: domain).key else { return nil }
        return (key.selector, try DKIMKeyPair(der: key.der))
    }

    /// What the delivery worker needs of a sending domain, in one read: the active DKIM key of the verified
    /// domain (nil when the domain is not usable), and whether its return-path MX and SPF records were both
    /// found at the last check, so that its mail may carry the VERP return path under it.
    public func sending(tenantID: UUID, domain: String) async throws -> (key: (selector: String, der: [UInt8])?, returnPath: Bool) {
        let row = try await database.withTenant(tenantID) { connection in
            try await connection.query("""
                SELECT k.id, k.selector, k.private_key, d.checks::text FROM domains d
                LEFT JOIN dkim_keys k ON k.domain_id = d.id AND k.state = 'active'
                WHERE d.tenant_id = \(tenantID) AND d.name = \(domain) AND d.status = 'verified'
                """, logger: logger).decode((UUID?, String?, ByteBuffer?, String).self).first { _ in true }
        }
        guard let (id, selector, sealed, checksJSON) = row else { return (nil, false) }
        let checks = (try? JSONDecoder().decode([SendingDomain.Check].self, from: Data(checksJSON.utf8))) ?? []
        let returnPath = [SendingDomain.Purpose.returnPath, .returnPathSPF].allSatisfy { purpose in
            checks.contains { $0.purpose == purpose && $0.status == .ok }
        }
        guard let id, let selector, let sealed else { return (nil, returnPath) }
        let der = try secrets.open(Array(buffer: sealed), context: "dkim_key:\(id.uuidString.lowercased())")
        return ((selector, der), returnPath)
    }

    // MARK: Loading

    private func load(_ connection: PostgresConnection, tenantID: UUID, ids: [UUID]?, lock: Bool = false) async throws -> [DomainRecord] {
        var domains: [DomainRecord] = []
        let rows = try await connection.query("""
            SELECT id, name, status, verification_token, checks::text, created_at, verified_at, last_checked_at FROM domains
            WHERE tenant_id = \(tenantID) AND (\(ids)::uuid[] IS NULL OR id = ANY(\(ids)::uuid[])) ORDER BY name \(unescaped: lock ? "FOR UPDATE" : "")
            """, logger: logger)
        for try await (id, name, status, token, checks, created, verified, checked) in rows.decode((UUID, String, String, String, String, Date, Date?, Date?).self) {
            let decoded = (try? JSONDecoder().decode([SendingDomain.Check].self, from: Data(checks.utf8))) ?? []
            domains.append(DomainRecord(id: id, name: name, status: try .stored(status), verificationToken: token, checks: decoded, keys: [],
                                        createdAt: created, verifiedAt: verified, lastCheckedAt: checked))
        }
        guard !domains.isEmpty else { return [] }
        let keyRows = try await connection.query("""
            SELECT domain_id, selector, bits, state, public_key, created_at FROM dkim_keys
            WHERE tenant_id = \(tenantID) AND domain_id = ANY(\(domains.map(\.id))::uuid[]) ORDER BY created_at
            """, logger: logger)
        for try await (domainID, selector, bits, state, publicKey, created) in keyRows.decode((UUID, String, Int, String, String, Date).self) {
            guard let index = domains.firstIndex(where: { $0.id == domainID }) else { continue }
            domains[index].keys.append(DKIMKeyInfo(selector: selector, bits: bits, state: state, publicKeyBase64: publicKey, createdAt: created))
        }
        return domains
    }
}
