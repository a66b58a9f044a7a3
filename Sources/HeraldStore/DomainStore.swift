import Foundation
import HeraldCore
import Logging
import PostgresNIO

/// A DKIM key as the API shows it (never the private half).
public struct DKIMKeyInfo: Sendable, Equatable {
    public var selector: String
    /// rsa, or ed25519 for a domain's optional second key.
    public var algorithm: DKIM.Algorithm
    /// RSA modulus size; 256 for Ed25519.
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

    /// Keys whose records must be published: the signing one, one waiting for rotation, and the Ed25519
    /// key of a domain that opted in.
    public var publishedKeys: [DKIMKeyInfo] { keys.filter { $0.state != "retired" } }

    /// The key of `algorithm` in `state` (active, pending), if any.
    public func key(_ algorithm: DKIM.Algorithm, state: String) -> DKIMKeyInfo? {
        keys.first { $0.algorithm == algorithm && $0.state == state }
    }

    /// Whether the domain has opted in to a second, Ed25519 signature (RFC 8463).
    public var ed25519Enabled: Bool { key(.ed25519, state: "active") != nil }

    /// The records to publish, each with its last status.
    public func records(settings: SendingDomain.Settings) -> [(record: SendingDomain.Record, check: SendingDomain.Check?)] {
        SendingDomain.records(domain: name, token: verificationToken,
                              dkim: publishedKeys.map {
                                  SendingDomain.DKIMPublicKey(selector: $0.selector, publicKeyBase64: $0.publicKeyBase64, algorithm: $0.algorithm)
                              },
                              settings: settings)
            .map { record in (record, checks.first { $0.purpose == record.purpose && $0.host == record.host }) }
    }
}

/// A DKIM private key the delivery worker signs with, opened from its sealed form.
public struct StoredDKIMKey: Sendable, Equatable {
    /// The selector its public half is published under.
    public var selector: String
    /// Which signature it makes.
    public var algorithm: DKIM.Algorithm
    /// RSA: the private key's DER; Ed25519: its raw 32 bytes.
    public var privateKey: [UInt8]
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
        ResourceName.tenantResource(tenantID: tenantID.lowercasedString, kind: "domain", name: id.lowercasedString)
    }

    private func sealKey(_ key: DKIMKeyPair, id: UUID) -> [UInt8] {
        secrets.seal(key.privateKeyDER, context: "dkim_key:\(id.lowercasedString)")
    }

    /// Stores a fresh Ed25519 key as the domain's active one, sealed like the RSA keys.
    private func insertEd25519Key(_ connection: PostgresConnection, tenantID: UUID, domainID: UUID, now: Date) async throws -> String {
        let key = DKIMEd25519Key.generate()
        let keyID = UUIDv7.make()
        let selector = SendingDomain.newSelector(now: now, algorithm: .ed25519)
        let sealed = ByteBuffer(bytes: secrets.seal(key.rawRepresentation, context: "dkim_key:\(keyID.lowercasedString)"))
        try await connection.query("""
            INSERT INTO dkim_keys (id, tenant_id, domain_id, selector, algorithm, bits, private_key, public_key, state, activated_at)
            VALUES (\(keyID), \(tenantID), \(domainID), \(selector), 'ed25519', \(DKIMEd25519Key.bits), \(sealed), \(key.publicKeyBase64), 'active', \(now))
            """, logger: logger)
        return selector
    }

    /// Creates a domain with a fresh DKIM key (generated before the transaction: RSA generation is slow), and
    /// an Ed25519 key beside it when `ed25519` (signing once its record is found).
    public func create(tenantID: UUID, name: String, keyBits: Int, ed25519: Bool = false, actor: AuditActor, now: Date) async throws -> DomainRecord {
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
            var detail = ["name": name, "selector": selector]
            if ed25519 { detail["ed25519Selector"] = try await insertEd25519Key(connection, tenantID: tenantID, domainID: id, now: now) }
            try await AuditLog.record(on: connection, logger: logger, tenantID: tenantID, actor: actor, action: "dm:CreateDomain",
                                      resource: Self.resource(tenantID, id), detail: detail)
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

    /// Opts a domain in to the Ed25519 signature (a fresh key under its own selector; nothing changes if it
    /// has one) or out (its key retires and its record leaves the list). Audited when something changed.
    public func setEd25519(tenantID: UUID, id: UUID, enabled: Bool, actor: AuditActor, now: Date) async throws -> DomainRecord {
        try await database.withTenant(tenantID) { connection in
            guard let domain = try await load(connection, tenantID: tenantID, ids: [id], lock: true).first else { throw HeraldError.notFound("domain") }
            let current = domain.key(.ed25519, state: "active")
            var detail: [String: String]?
            if enabled, current == nil {
                detail = ["dkimEd25519": "enabled", "selector": try await insertEd25519Key(connection, tenantID: tenantID, domainID: id, now: now)]
            } else if !enabled, let current {
                try await connection.query("""
                    UPDATE dkim_keys SET state = 'retired', retired_at = \(now)
                    WHERE tenant_id = \(tenantID) AND domain_id = \(id) AND algorithm = 'ed25519' AND state = 'active'
                    """, logger: logger)
                detail = ["dkimEd25519": "disabled", "selector": current.selector]
            }
            guard let detail else { return domain }
            try await AuditLog.record(on: connection, logger: logger, tenantID: tenantID, actor: actor, action: "dm:UpdateDomain",
                                      resource: Self.resource(tenantID, id), detail: detail)
            return try await load(connection, tenantID: tenantID, ids: [id])[0]
        }
    }

    /// Stores the result of checking every record and moves the domain's state: verified when
    /// ownership, SPF and the signing key's DKIM record are ok; failing when a verified domain no longer
    /// is; a waiting DKIM key whose record is ok becomes the signing key and the old one retires. The RSA
    /// keys decide; an Ed25519 key's record is checked and stored but moves nothing.
    public func saveChecks(tenantID: UUID, id: UUID, checks: [SendingDomain.Check], actor: AuditActor, now: Date) async throws -> DomainRecord {
        try await database.withTenant(tenantID) { connection in
            guard let domain = try await load(connection, tenantID: tenantID, ids: [id], lock: true).first else { throw HeraldError.notFound("domain") }
            let verdict = SendingDomain.verdict(checks, current: domain.status, activeSelector: domain.key(.rsa, state: "active")?.selector,
                                                pendingSelector: domain.key(.rsa, state: "pending")?.selector)
            let status = verdict.status
            let dated = SendingDomain.carryingSince(checks, previous: domain.checks, now: now)
            let checksJSON = String(decoding: try JSONEncoder().encode(dated), as: UTF8.self)
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
                    UPDATE dkim_keys SET state = 'retired', retired_at = \(now)
                    WHERE tenant_id = \(tenantID) AND domain_id = \(id) AND algorithm = 'rsa' AND state = 'active'
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

    /// The RSA signing key of a verified domain, for DKIM (nil when the domain is not usable).
    public func signingKey(tenantID: UUID, domain: String) async throws -> (selector: String, key: DKIMKeyPair)? {
        guard let key = try await sending(tenantID: tenantID, domain: domain).keys.first(where: { $0.algorithm == .rsa }) else { return nil }
        return (key.selector, try DKIMKeyPair(der: key.privateKey))
    }

    /// What the delivery worker needs of a sending domain, in one read: the DKIM keys that sign the verified
    /// domain's mail, RSA first (none when the domain is not usable; the Ed25519 key only when its record
    /// checked out, ``SendingDomain/signingSelectors(activeRSA:activeEd25519:checks:)``), and whether its
    /// return-path MX and SPF records were both found at the last check, so that its mail may carry the VERP
    /// return path under it.
    public func sending(tenantID: UUID, domain: String) async throws -> (keys: [StoredDKIMKey], returnPath: Bool) {
        let rows = try await database.withTenant(tenantID) { connection in
            var rows: [(String, UUID?, String?, String?, ByteBuffer?)] = []
            for try await row in try await connection.query("""
                SELECT d.checks::text, k.id, k.selector, k.algorithm, k.private_key FROM domains d
                LEFT JOIN dkim_keys k ON k.domain_id = d.id AND k.state = 'active'
                WHERE d.tenant_id = \(tenantID) AND d.name = \(domain) AND d.status = 'verified'
                """, logger: logger).decode((String, UUID?, String?, String?, ByteBuffer?).self) {
                rows.append(row)
            }
            return rows
        }
        guard let checksJSON = rows.first?.0 else { return ([], false) }
        let checks = (try? JSONDecoder().decode([SendingDomain.Check].self, from: Data(checksJSON.utf8))) ?? []
        let returnPath = [SendingDomain.Purpose.returnPath, .returnPathSPF].allSatisfy { purpose in
            checks.contains { $0.purpose == purpose && $0.status == .ok }
        }
        var active: [String: (id: UUID, algorithm: DKIM.Algorithm, sealed: ByteBuffer)] = [:]
        for (_, id, selector, algorithm, sealed) in rows {
            guard let id, let selector, let sealed, let algorithm else { continue }
            active[selector] = (id, try .stored(algorithm), sealed)
        }
        let signing = SendingDomain.signingSelectors(activeRSA: active.first { $0.value.algorithm == .rsa }?.key,
                                                     activeEd25519: active.first { $0.value.algorithm == .ed25519 }?.key, checks: checks)
        let keys = try signing.compactMap { selector -> StoredDKIMKey? in
            guard let key = active[selector] else { return nil }
            let opened = try secrets.open(Array(buffer: key.sealed), context: "dkim_key:\(key.id.lowercasedString)")
            return StoredDKIMKey(selector: selector, algorithm: key.algorithm, privateKey: opened)
        }
        return (keys, returnPath)
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
            SELECT domain_id, selector, algorithm, bits, state, public_key, created_at FROM dkim_keys
            WHERE tenant_id = \(tenantID) AND domain_id = ANY(\(domains.map(\.id))::uuid[]) ORDER BY created_at, algorithm DESC
            """, logger: logger)
        for try await (domainID, selector, algorithm, bits, state, publicKey, created)
            in keyRows.decode((UUID, String, String, Int, String, String, Date).self) {
            guard let index = domains.firstIndex(where: { $0.id == domainID }) else { continue }
            domains[index].keys.append(DKIMKeyInfo(selector: selector, algorithm: try .stored(algorithm), bits: bits, state: state,
                                                   publicKeyBase64: publicKey, createdAt: created))
        }
        return domains
    }
}
