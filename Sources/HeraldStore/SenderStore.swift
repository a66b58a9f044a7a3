import Foundation
import HeraldCore
import Logging
import PostgresNIO

/// A sender address as the API shows it.
public struct SenderRecord: Sendable, Equatable {
    public var id: UUID
    public var address: String
    /// The kind of mail it sends.
    public var type: MailKind
    public var domainID: UUID
    public var replyTo: String?
    public var replyToStatus: ReplyToStatus
    public var smtpPasswordSet: Bool
    public var createdAt: Date
    public var updatedAt: Date
}

/// Sender addresses on verified domains, with their reply-to confirmation and SMTP password; and tags.
public struct SenderStore: Sendable {
    let database: Database
    /// Product limits (senders, monthly sender deletions, tags) and the tenant's overrides.
    public var limits = TenantLimits()
    /// Builds the confirmation mail a pending reply-to address receives; queued in the same transaction
    /// as the change. Without it no mail is queued (tests of other parts).
    public var confirmations: ReplyToConfirmationMail?
    /// How many confirmation mails a sender and a tenant may cause an hour (`HERALD_REPLY_TO_CONFIRMATIONS`).
    public var confirmationLimit = ReplyToConfirmationLimit()
    /// Where SMTP passwords are hashed and checked: a bounded thread pool, never the caller's thread.
    public var passwordHasher = PasswordHasher.shared

    public init(database: Database) {
        self.database = database
    }

    private var logger: Logger { database.logger }

    static func resource(_ tenantID: UUID, _ kind: String, _ id: UUID) -> String {
        ResourceName.tenantResource(tenantID: tenantID.lowercasedString, kind: kind, name: id.lowercasedString)
    }

    static func newNonce() -> String { SendingDomain.newToken() }

    /// Creates a sender on one of the tenant's verified domains. A reply-to address starts `pending`;
    /// the returned nonce goes into its confirmation link.
    public func create(tenantID: UUID, address: String, type: MailKind, replyTo: String?, actor: AuditActor) async throws -> (SenderRecord, nonce: String?) {
        let address = try MailAddress(address)
        let reply = try replyTo.map { try MailAddress($0, field: "replyTo") }
        let id = UUIDv7.make()
        let nonce = reply == nil ? nil : Self.newNonce()
        let sender = try await database.withTenant(tenantID) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(hashtext('senders:' || \(tenantID.uuidString)))", logger: logger)
            let count = try await connection.query("SELECT count(*) FROM senders WHERE tenant_id = \(tenantID)", logger: logger)
                .decode(Int.self).first { _ in true } ?? 0
            let maxSenders = try await limits.effective(connection, tenantID: tenantID, logger: logger).limits.senders
            guard count < maxSenders else {
                throw HeraldError.limitExceeded("A tenant can have at most \(maxSenders) sender addresses (limit: senders).")
            }
            let domain = try await connection.query("""
                SELECT id, status FROM domains WHERE tenant_id = \(tenantID) AND name = \(address.domain)
                """, logger: logger).decode((UUID, String).self).first { _ in true }
            guard let (domainID, status) = domain, status == SendingDomain.Status.verified.rawValue else {
                throw HeraldError(code: "Domain.NotVerified", kind: .conflict,
                                  message: "\(address.domain) is not a verified sending domain of this account; register and verify it first.",
                                  field: "address")
            }
            do {
                try await connection.query("""
                    INSERT INTO senders (id, tenant_id, domain_id, address, type, reply_to, reply_to_status, reply_to_nonce)
                    VALUES (\(id), \(tenantID), \(domainID), \(address.description), \(type.rawValue), \(reply?.description),
                            \((reply == nil ? ReplyToStatus.none : .pending).rawValue), \(nonce))
                    """, logger: logger)
            } catch where error.isUniqueViolation() {
                throw HeraldError.conflict("Sender.AlreadyExists", "The sender address \(address) already exists.")
            }
            try await AuditLog.record(on: connection, logger: logger, tenantID: tenantID, actor: actor, action: "dm:CreateMailAddress",
                                      resource: Self.resource(tenantID, "sender", id), detail: ["address": address.description, "type": type.rawValue])
            try await queueConfirmation(connection, tenantID: tenantID, senderID: id, nonce: nonce)
            return try await load(connection, tenantID: tenantID, id: id)!
        }
        return (sender, nonce)
    }

    public func list(tenantID: UUID) async throws -> [SenderRecord] {
        try await database.withTenant(tenantID) { connection in try await loadAll(connection, tenantID: tenantID, id: nil) }
    }

    public func get(tenantID: UUID, id: UUID) async throws -> SenderRecord {
        try await database.withTenant(tenantID) { connection in
            guard let sender = try await load(connection, tenantID: tenantID, id: id) else { throw HeraldError.notFound("sender") }
            return sender
        }
    }

    /// The ids that name a sender address and its domain in RAM resources (`sender/<id>`, `domain/<id>`), or
    /// nil when the address is not one of the tenant's senders.
    public func resourceIDs(tenantID: UUID, address: String) async throws -> (id: UUID, domainID: UUID)? {
        try await database.withTenant(tenantID) { connection in
            try await connection.query("""
                SELECT id, domain_id FROM senders WHERE tenant_id = \(tenantID) AND address = \(address.lowercased())
                """, logger: logger).decode((UUID, UUID).self).first { _ in true }.map { (id: $0.0, domainID: $0.1) }
        }
    }

    /// Sets or clears the reply-to address; a new address needs a new confirmation (the returned nonce).
    public func setReplyTo(tenantID: UUID, id: UUID, replyTo: String?, actor: AuditActor) async throws -> (SenderRecord, nonce: String?) {
        let reply = try replyTo.map { try MailAddress($0, field: "replyTo") }
        let nonce = reply == nil ? nil : Self.newNonce()
        let sender = try await database.withTenant(tenantID) { connection in
            let updated = try await connection.query("""
                UPDATE senders SET reply_to = \(reply?.description), reply_to_status = \((reply == nil ? ReplyToStatus.none : .pending).rawValue),
                       reply_to_nonce = \(nonce), updated_at = now()
                WHERE tenant_id = \(tenantID) AND id = \(id) RETURNING id
                """, logger: logger).decode(UUID.self).first { _ in true }
            guard updated != nil else { throw HeraldError.notFound("sender") }
            try await AuditLog.record(on: connection, logger: logger, tenantID: tenantID, actor: actor, action: "dm:ModifyMailAddress",
                                      resource: Self.resource(tenantID, "sender", id), detail: ["replyTo": reply?.description ?? ""])
            try await queueConfirmation(connection, tenantID: tenantID, senderID: id, nonce: nonce)
            return try await load(connection, tenantID: tenantID, id: id)!
        }
        return (sender, nonce)
    }

    /// A fresh confirmation for a pending reply-to (the earlier link stops working).
    public func renewReplyToNonce(tenantID: UUID, id: UUID, actor: AuditActor) async throws -> (SenderRecord, nonce: String) {
        let nonce = Self.newNonce()
        let sender = try await database.withTenant(tenantID) { connection in
            let status = try await connection.query("SELECT reply_to_status FROM senders WHERE tenant_id = \(tenantID) AND id = \(id) FOR UPDATE",
                                                    logger: logger).decode(String.self).first { _ in true }
            guard let status else { throw HeraldError.notFound("sender") }
            guard try ReplyToStatus.stored(status) == .pending else {
                throw HeraldError.conflict("Sender.NoPendingReplyTo", "This sender has no reply-to address waiting for confirmation.")
            }
            try await connection.query("UPDATE senders SET reply_to_nonce = \(nonce), updated_at = now() WHERE tenant_id = \(tenantID) AND id = \(id)",
                                       logger: logger)
            try await AuditLog.record(on: connection, logger: logger, tenantID: tenantID, actor: actor, action: "dm:CheckReplyToMailAddress",
                                      resource: Self.resource(tenantID, "sender", id))
            try await queueConfirmation(connection, tenantID: tenantID, senderID: id, nonce: nonce)
            return try await load(connection, tenantID: tenantID, id: id)!
        }
        return (sender, nonce)
    }

    /// Confirms the reply-to a link was made for; answers the confirmed address, or nil when the link is
    /// stale (another reply-to was set since). Confirming twice is fine.
    public func confirmReplyTo(_ token: ReplyToToken) async throws -> String? {
        try await database.withTenant(token.tenantID) { connection in
            let confirmed = try await connection.query("""
                UPDATE senders SET reply_to_status = 'verified', updated_at = now()
                WHERE tenant_id = \(token.tenantID) AND id = \(token.senderID) AND reply_to_nonce = \(token.nonce) AND reply_to IS NOT NULL
                RETURNING reply_to
                """, logger: logger).decode(String.self).first { _ in true }
            guard let address = confirmed else { return nil }
            try await AuditLog.record(on: connection, logger: logger, tenantID: token.tenantID, actor: AuditActor(type: .system),
                                      action: "dm:ConfirmReplyToMailAddress", resource: Self.resource(token.tenantID, "sender", token.senderID),
                                      detail: ["replyTo": address])
            return address
        }
    }

    /// Hashes an SMTP password on ``passwordHasher`` (outside the transaction: it is slow on purpose) and stores it.
    /// The new hash also ends the SMTP sessions that logged in with the old one (their next MAIL is refused).
    public func setSMTPPassword(tenantID: UUID, id: UUID, password: String, actor: AuditActor) async throws {
        let hash = try await passwordHasher.hash(password)
        try await setSMTPPasswordHash(tenantID: tenantID, id: id, hash: hash, actor: actor)
    }

    /// Stores an SMTP password hash (computed by the caller, outside the transaction: it is slow on purpose).
    public func setSMTPPasswordHash(tenantID: UUID, id: UUID, hash: String, actor: AuditActor) async throws {
        try await database.withTenant(tenantID) { connection in
            let updated = try await connection.query("""
                UPDATE senders SET smtp_password_hash = \(hash), updated_at = now() WHERE tenant_id = \(tenantID) AND id = \(id) RETURNING id
                """, logger: logger).decode(UUID.self).first { _ in true }
            guard updated != nil else { throw HeraldError.notFound("sender") }
            try await AuditLog.record(on: connection, logger: logger, tenantID: tenantID, actor: actor, action: "dm:ModifyMailAddress",
                                      resource: Self.resource(tenantID, "sender", id), detail: ["smtpPassword": "set"])
        }
    }

    /// The senders an SMTP login as `address` may be (for SMTP AUTH), across tenants: those with a password
    /// whose domain is verified, oldest first, at most `limit`. The address is unique only within a tenant,
    /// and a tenant may register a sender on a domain it does not own: such an unverified claim must not
    /// stand in the way of the domain's owner logging in (the login tries each candidate's password).
    public func smtpLoginCandidates(address: String, limit: Int = 3) async throws -> [(tenantID: UUID, senderID: UUID, hash: String)] {
        try await database.withSystem { connection in
            var candidates: [(tenantID: UUID, senderID: UUID, hash: String)] = []
            let rows = try await connection.query("""
                SELECT s.tenant_id, s.id, s.smtp_password_hash FROM senders s JOIN domains d ON d.id = s.domain_id AND d.tenant_id = s.tenant_id
                WHERE s.address = \(address.lowercased()) AND s.smtp_password_hash IS NOT NULL AND d.status IN ('verified', 'failing')
                ORDER BY s.created_at, s.id LIMIT \(limit)
                """, logger: logger)
            for try await (tenant, sender, hash) in rows.decode((UUID, UUID, String).self) { candidates.append((tenant, sender, hash)) }
            return candidates
        }
    }

    /// The stored SMTP password hash of a sender now (by primary key: one cheap read per MAIL of an SMTP
    /// session, to notice a changed or cleared password or a deleted sender).
    public func smtpPasswordHash(tenantID: UUID, senderID: UUID) async throws -> String? {
        try await database.withTenant(tenantID) { connection in
            try await connection.query("SELECT smtp_password_hash FROM senders WHERE tenant_id = \(tenantID) AND id = \(senderID)", logger: logger)
                .decode(String?.self).first { _ in true } ?? nil
        }
    }

    /// Deletes a sender, within the tenant's monthly deletion allowance.
    public func delete(tenantID: UUID, id: UUID, actor: AuditActor, now: Date) async throws {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let month = calendar.date(from: calendar.dateComponents([.year, .month], from: now))!
        try await database.withTenant(tenantID) { connection in
            let deleted = try await connection.query("DELETE FROM senders WHERE tenant_id = \(tenantID) AND id = \(id) RETURNING address",
                                                     logger: logger).decode(String.self).first { _ in true }
            guard let address = deleted else { throw HeraldError.notFound("sender") }
            let (limits, kind) = try await limits.effective(connection, tenantID: tenantID, logger: logger)
            let limit = limits.senderDeletions(kind: kind)
            let used = try await connection.query("""
                INSERT INTO sender_deletions (tenant_id, month, count) VALUES (\(tenantID), \(month)::date, 1)
                ON CONFLICT (tenant_id, month) DO UPDATE SET count = sender_deletions.count + 1 RETURNING count
                """, logger: logger).decode(Int.self).first { _ in true } ?? 1
            guard used <= limit else {
                throw HeraldError.limitExceeded("At most \(limit) sender addresses can be deleted per calendar month (limit: senderDeletionsPerMonth).")
            }
            try await AuditLog.record(on: connection, logger: logger, tenantID: tenantID, actor: actor, action: "dm:DeleteMailAddress",
                                      resource: Self.resource(tenantID, "sender", id), detail: ["address": address])
        }
    }

    /// Queues the confirmation mail for a pending reply-to (Herald's own mail: no quota, no tenant event),
    /// within ``confirmationLimit``: beyond it the whole change is refused (429, nothing stored or queued).
    /// The count is of the confirmation mails themselves (system messages carrying the sender's id), so it
    /// holds across processes and restarts; a per-tenant lock makes concurrent requests count one by one.
    private func queueConfirmation(_ connection: PostgresConnection, tenantID: UUID, senderID: UUID, nonce: String?) async throws {
        guard let confirmations, let nonce else { return }
        let row = try await connection.query("SELECT address, reply_to FROM senders WHERE tenant_id = \(tenantID) AND id = \(senderID)", logger: logger)
            .decode((String, String?).self).first { _ in true }
        guard let (sender, replyToAddress) = row, let replyTo = replyToAddress else { return }
        let now = Date()
        try await connection.query("SELECT pg_advisory_xact_lock(hashtext('reply-to-confirmations:' || \(tenantID.uuidString)))", logger: logger)
        let since = now.addingTimeInterval(-confirmationLimit.window)
        func recent(sender: UUID?, limit: Int) async throws -> [Date] {
            var times: [Date] = []
            for try await time in try await connection.query("""
                SELECT created_at FROM messages
                WHERE tenant_id = \(tenantID) AND kind = 'system' AND sender_id IS NOT NULL AND (\(sender)::uuid IS NULL OR sender_id = \(sender))
                      AND created_at > \(since)
                ORDER BY created_at DESC LIMIT \(max(limit, 0))
                """, logger: logger).decode(Date.self) { times.append(time) }
            return times
        }
        try confirmationLimit.check(senderRecent: try await recent(sender: senderID, limit: confirmationLimit.perSender),
                                    tenantRecent: try await recent(sender: nil, limit: confirmationLimit.perTenant), now: now)
        let mail = confirmations.content(tenantID: tenantID, senderID: senderID, sender: sender, replyTo: replyTo, nonce: nonce, now: now)
        try await connection.query("""
            INSERT INTO messages (id, tenant_id, request_id, kind, priority, sender_id, from_address, from_name, to_address, subject, html, body_text,
                                  status, next_attempt_at, created_at, updated_at)
            VALUES (\(UUIDv7.make(at: now)), \(tenantID), \(UUIDv7.make(at: now)), 'system', 0, \(senderID), \(confirmations.from.description), 'Herald',
                    \(replyTo), \(mail.subject), \(mail.html), \(mail.text), 'queued', \(now), \(now), \(now))
            """, logger: logger)
    }

    // MARK: Tags

    /// Creates a tag.
    public func createTag(tenantID: UUID, name: String, actor: AuditActor) async throws -> TagRecord {
        try TagName.validate(name)
        let id = UUIDv7.make()
        return try await database.withTenant(tenantID) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(hashtext('tags:' || \(tenantID.uuidString)))", logger: logger)
            let count = try await connection.query("SELECT count(*) FROM tags WHERE tenant_id = \(tenantID)", logger: logger)
                .decode(Int.self).first { _ in true } ?? 0
            let maxTags = try await limits.effective(connection, tenantID: tenantID, logger: logger).limits.tags
            guard count < maxTags else { throw HeraldError.limitExceeded("A tenant can have at most \(maxTags) tags (limit: tags).") }
            do {
                let tag = try await connection.query("""
                    INSERT INTO tags (id, tenant_id, name) VALUES (\(id), \(tenantID), \(name)) RETURNING id, name, created_at
                    """, logger: logger).decode((UUID, String, Date).self).first { _ in true }!
                try await AuditLog.record(on: connection, logger: logger, tenantID: tenantID, actor: actor, action: "dm:CreateTag",
                                          resource: Self.resource(tenantID, "tag", id), detail: ["name": name])
                return TagRecord(id: tag.0, name: tag.1, createdAt: tag.2)
            } catch where error.isUniqueViolation() {
                throw HeraldError.conflict("Tag.AlreadyExists", "A tag named \(name) already exists.")
            }
        }
    }

    public func listTags(tenantID: UUID) async throws -> [TagRecord] {
        try await database.withTenant(tenantID) { connection in
            var tags: [TagRecord] = []
            for try await (id, name, created) in try await connection.query(
                "SELECT id, name, created_at FROM tags WHERE tenant_id = \(tenantID) ORDER BY name", logger: logger).decode((UUID, String, Date).self) {
                tags.append(TagRecord(id: id, name: name, createdAt: created))
            }
            return tags
        }
    }

    public func deleteTag(tenantID: UUID, id: UUID, actor: AuditActor) async throws {
        try await database.withTenant(tenantID) { connection in
            let deleted = try await connection.query("DELETE FROM tags WHERE tenant_id = \(tenantID) AND id = \(id) RETURNING name", logger: logger)
                .decode(String.self).first { _ in true }
            guard let name = deleted else { throw HeraldError.notFound("tag") }
            try await AuditLog.record(on: connection, logger: logger, tenantID: tenantID, actor: actor, action: "dm:DeleteTag",
                                      resource: Self.resource(tenantID, "tag", id), detail: ["name": name])
        }
    }

    // MARK: Loading

    private func load(_ connection: PostgresConnection, tenantID: UUID, id: UUID) async throws -> SenderRecord? {
        try await loadAll(connection, tenantID: tenantID, id: id).first
    }

    private func loadAll(_ connection: PostgresConnection, tenantID: UUID, id: UUID?) async throws -> [SenderRecord] {
        var senders: [SenderRecord] = []
        let rows = try await connection.query("""
            SELECT id, address, type, domain_id, reply_to, reply_to_status, smtp_password_hash IS NOT NULL, created_at, updated_at
            FROM senders WHERE tenant_id = \(tenantID) AND (\(id)::uuid IS NULL OR id = \(id)) ORDER BY address
            """, logger: logger)
        for try await (id, address, type, domain, replyTo, status, password, created, updated)
            in rows.decode((UUID, String, String, UUID, String?, String, Bool, Date, Date).self) {
            senders.append(SenderRecord(id: id, address: address, type: try .stored(type), domainID: domain, replyTo: replyTo, replyToStatus: try .stored(status),
                                        smtpPasswordSet: password, createdAt: created, updatedAt: updated))
        }
        return senders
    }
}

/// A tag.
public struct TagRecord: Sendable, Equatable {
    public var id: UUID
    public var name: String
    public var createdAt: Date
}
