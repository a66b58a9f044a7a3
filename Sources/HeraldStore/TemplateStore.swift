import Foundation
import HeraldCore
import Logging
import PostgresNIO

/// A template as the API shows it.
public struct TemplateRecord: Sendable, Equatable, Codable {
    public var id: UUID
    public var tenantID: UUID
    public var name: String
    public var kind: MailKind
    public var subject: String
    public var html: String?
    public var text: String?
    public var variables: [String]
    public var status: MailTemplate.Status
    public var reviewReasons: [String]
    public var submittedAt: Date?
    public var reviewedAt: Date?
    public var createdAt: Date
    public var updatedAt: Date
}

/// The editable content of a template.
public struct TemplateContent: Sendable {
    public var name: String
    public var kind: MailKind
    public var subject: String
    public var html: String?
    public var text: String?

    public init(name: String, kind: MailKind, subject: String, html: String?, text: String?) {
        self.name = name
        self.kind = kind
        self.subject = subject
        self.html = html
        self.text = text
    }
}

/// Templates and their review: tenants write and submit, automatic checks reject at once or queue for
/// the operator, who approves or rejects with a reason.
public struct TemplateStore: Sendable {
    let database: Database
    /// Product limits (templates) and the tenant's overrides.
    public var limits = TenantLimits()
    /// Words that get a submission rejected (case-insensitive), from `HERALD_SENSITIVE_WORDS`, when there are no
    /// ``contentRules``.
    public var sensitiveWords: [String] = []
    /// The words in force (the operator may change them at run time).
    public var contentRules: ContentRulesStore?

    func words() async -> [String] { await contentRules?.words() ?? sensitiveWords }

    public init(database: Database) {
        self.database = database
    }

    private var logger: Logger { database.logger }

    static func resource(_ tenantID: UUID, _ id: UUID) -> String {
        ResourceName.tenantResource(tenantID: tenantID.lowercasedString, kind: "template", name: id.lowercasedString)
    }

    public func create(tenantID: UUID, content: TemplateContent, actor: AuditActor) async throws -> TemplateRecord {
        try MailTemplate.validate(name: content.name, subject: content.subject, html: content.html, text: content.text, limits: .ceiling)
        let id = UUIDv7.make()
        let variables = MailTemplate.variables(subject: content.subject, html: content.html, text: content.text)
        return try await database.withTenant(tenantID) { connection in
            let effective = try await limits.effective(connection, tenantID: tenantID, logger: logger).limits
            try MailTemplate.validate(name: content.name, subject: content.subject, html: content.html, text: content.text, limits: effective)
            try await connection.query("SELECT pg_advisory_xact_lock(hashtext('templates:' || \(tenantID.uuidString)))", logger: logger)
            let count = try await connection.query("SELECT count(*) FROM templates WHERE tenant_id = \(tenantID)", logger: logger)
                .decode(Int.self).first { _ in true } ?? 0
            let maxTemplates = effective.templates
            guard count < maxTemplates else {
                throw HeraldError.limitExceeded("A tenant can have at most \(maxTemplates) templates (limit: templates).")
            }
            do {
                try await connection.query("""
                    INSERT INTO templates (id, tenant_id, name, kind, subject, html, body_text, variables)
                    VALUES (\(id), \(tenantID), \(content.name), \(content.kind.rawValue), \(content.subject), \(content.html), \(content.text), \(variables))
                    """, logger: logger)
            } catch where error.isUniqueViolation() {
                throw HeraldError.conflict("Template.AlreadyExists", "A template named \(content.name) already exists.")
            }
            try await AuditLog.record(on: connection, logger: logger, tenantID: tenantID, actor: actor, action: "dm:CreateTemplate",
                                      resource: Self.resource(tenantID, id), detail: ["name": content.name])
            return try await load(connection, tenantID: tenantID, ids: [id])[0]
        }
    }

    /// Replaces the content; an approved or pending template goes back to review (pending), a rejected
    /// one back to draft.
    public func update(tenantID: UUID, id: UUID, content: TemplateContent, actor: AuditActor, now: Date) async throws -> TemplateRecord {
        try MailTemplate.validate(name: content.name, subject: content.subject, html: content.html, text: content.text, limits: .ceiling)
        let variables = MailTemplate.variables(subject: content.subject, html: content.html, text: content.text)
        let problems = MailTemplate.contentProblems(kind: content.kind, subject: content.subject, html: content.html, text: content.text,
                                                    sensitiveWords: await words())
        return try await database.withTenant(tenantID) { connection in
            let effective = try await limits.effective(connection, tenantID: tenantID, logger: logger).limits
            try MailTemplate.validate(name: content.name, subject: content.subject, html: content.html, text: content.text, limits: effective)
            let current = try await connection.query("SELECT status FROM templates WHERE tenant_id = \(tenantID) AND id = \(id) FOR UPDATE",
                                                      logger: logger).decode(String.self).first { _ in true }
            guard let current else { throw HeraldError.notFound("template") }
            let status = MailTemplate.statusAfterEdit(try .stored(current), problems: problems)
            do {
                try await connection.query("""
                    UPDATE templates SET name = \(content.name), kind = \(content.kind.rawValue), subject = \(content.subject), html = \(content.html),
                           body_text = \(content.text), variables = \(variables), status = \(status.rawValue),
                           review_reasons = \(status == .rejected ? problems : []),
                           submitted_at = CASE WHEN \(status == .pending) THEN \(now) ELSE submitted_at END,
                           reviewed_at = CASE WHEN \(status == .rejected) THEN \(now) ELSE NULL END, updated_at = \(now)
                    WHERE tenant_id = \(tenantID) AND id = \(id)
                    """, logger: logger)
            } catch where error.isUniqueViolation() {
                throw HeraldError.conflict("Template.AlreadyExists", "A template named \(content.name) already exists.")
            }
            try await AuditLog.record(on: connection, logger: logger, tenantID: tenantID, actor: actor, action: "dm:UpdateTemplate",
                                      resource: Self.resource(tenantID, id), detail: ["status": status.rawValue])
            return try await load(connection, tenantID: tenantID, ids: [id])[0]
        }
    }

    /// Runs the automatic checks: failures reject at once (with the reasons), otherwise the template waits
    /// for the operator. Submitting a pending or approved template changes nothing.
    public func submit(tenantID: UUID, id: UUID, actor: AuditActor, now: Date) async throws -> TemplateRecord {
        let words = await words()
        return try await database.withTenant(tenantID) { connection in
            guard let template = try await load(connection, tenantID: tenantID, ids: [id], lock: true).first else { throw HeraldError.notFound("template") }
            let problems = MailTemplate.contentProblems(kind: template.kind, subject: template.subject, html: template.html, text: template.text,
                                                        sensitiveWords: words)
            guard let status = MailTemplate.statusAfterSubmit(template.status, problems: problems) else { return template }
            try await connection.query("""
                UPDATE templates SET status = \(status.rawValue), review_reasons = \(problems), submitted_at = \(now),
                       reviewed_at = CASE WHEN \(status == .rejected) THEN \(now) ELSE NULL END, updated_at = \(now)
                WHERE tenant_id = \(tenantID) AND id = \(id)
                """, logger: logger)
            try await AuditLog.record(on: connection, logger: logger, tenantID: tenantID, actor: actor, action: "dm:SubmitTemplate",
                                      resource: Self.resource(tenantID, id), detail: ["status": status.rawValue])
            return try await load(connection, tenantID: tenantID, ids: [id])[0]
        }
    }

    public func list(tenantID: UUID, status: MailTemplate.Status?) async throws -> [TemplateRecord] {
        try await database.withTenant(tenantID) { connection in
            try await load(connection, tenantID: tenantID, ids: nil, status: status)
        }
    }

    public func get(tenantID: UUID, id: UUID) async throws -> TemplateRecord {
        try await database.withTenant(tenantID) { connection in
            guard let template = try await load(connection, tenantID: tenantID, ids: [id]).first else { throw HeraldError.notFound("template") }
            return template
        }
    }

    public func delete(tenantID: UUID, id: UUID, actor: AuditActor) async throws {
        try await database.withTenant(tenantID) { connection in
            let deleted = try await connection.query("DELETE FROM templates WHERE tenant_id = \(tenantID) AND id = \(id) RETURNING name", logger: logger)
                .decode(String.self).first { _ in true }
            guard let name = deleted else { throw HeraldError.notFound("template") }
            try await AuditLog.record(on: connection, logger: logger, tenantID: tenantID, actor: actor, action: "dm:DeleteTemplate",
                                      resource: Self.resource(tenantID, id), detail: ["name": name])
        }
    }

    // MARK: Operator

    /// Templates waiting for review, oldest submission first, across tenants.
    public func pending(limit: Int) async throws -> [TemplateRecord] {
        try await database.withSystem { connection in
            try await load(connection, tenantID: nil, ids: nil, status: .pending, limit: limit)
        }
    }

    /// Approves or rejects a pending template (the decision is audited in the tenant's log).
    public func review(id: UUID, approve: Bool, reason: String?, actor: AuditActor, now: Date) async throws -> TemplateRecord {
        if !approve {
            guard let reason, (1...500).contains(reason.count) else {
                throw HeraldError.validation("Give the reason for rejecting (1 to 500 characters).", field: "reason")
            }
        }
        let tenantID = try await database.withSystem { connection in
            try await connection.query("SELECT tenant_id FROM templates WHERE id = \(id)", logger: logger).decode(UUID.self).first { _ in true }
        }
        guard let tenantID else { throw HeraldError.notFound("template") }
        return try await database.withTenant(tenantID) { connection in
            guard let template = try await load(connection, tenantID: tenantID, ids: [id], lock: true).first else { throw HeraldError.notFound("template") }
            let status = try MailTemplate.statusAfterReview(template.status, approve: approve)
            try await connection.query("""
                UPDATE templates SET status = \(status.rawValue), review_reasons = \(approve ? [] : [reason ?? ""]), reviewed_at = \(now), updated_at = \(now)
                WHERE tenant_id = \(tenantID) AND id = \(id)
                """, logger: logger)
            try await AuditLog.record(on: connection, logger: logger, tenantID: tenantID, actor: actor,
                                      action: approve ? "admin:ApproveTemplate" : "admin:RejectTemplate",
                                      resource: Self.resource(tenantID, id), detail: approve ? nil : ["reason": reason ?? ""])
            return try await load(connection, tenantID: tenantID, ids: [id])[0]
        }
    }

    // MARK: Loading

    private func load(_ connection: PostgresConnection, tenantID: UUID?, ids: [UUID]?, status: MailTemplate.Status? = nil, limit: Int = 1000,
                      lock: Bool = false) async throws -> [TemplateRecord] {
        var templates: [TemplateRecord] = []
        let rows = try await connection.query("""
            SELECT id, tenant_id, name, kind, subject, html, body_text, variables, status, review_reasons, submitted_at, reviewed_at, created_at, updated_at
            FROM templates
            WHERE (\(tenantID)::uuid IS NULL OR tenant_id = \(tenantID)) AND (\(ids)::uuid[] IS NULL OR id = ANY(\(ids)::uuid[]))
              AND (\(status?.rawValue)::text IS NULL OR status = \(status?.rawValue))
            ORDER BY \(unescaped: status == .pending && tenantID == nil ? "submitted_at" : "name") LIMIT \(limit) \(unescaped: lock ? "FOR UPDATE" : "")
            """, logger: logger)
        for try await row in rows {
            let (id, tenant, name, kind, subject, html, text, variables, status, reasons, submitted, reviewed, created, updated) =
                try row.decode((UUID, UUID, String, String, String, String?, String?, [String], String, [String], Date?, Date?, Date, Date).self)
            templates.append(TemplateRecord(id: id, tenantID: tenant, name: name, kind: try .stored(kind), subject: subject,
                                            html: html, text: text, variables: variables, status: try .stored(status), reviewReasons: reasons,
                                            submittedAt: submitted, reviewedAt: reviewed, createdAt: created, updatedAt: updated))
        }
        return templates
    }
}
