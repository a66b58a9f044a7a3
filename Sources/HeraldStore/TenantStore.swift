import Foundation
import HeraldCore
import Logging
import PostgresNIO

/// Operator-side tenant management (system transactions): create, list, get, freeze, unfreeze, ban.
public struct TenantStore: Sendable {
    let database: Database
    let secrets: SecretBox
    /// The grade of a new tenant when the operator names none (SPEC: 2).
    public var initialGrade = 2

    /// Creates the store.
    public init(database: Database, secrets: SecretBox) {
        self.database = database
        self.secrets = secrets
    }

    static let columns = "id, name, kind, status, grade, grade_ceiling, freeze_count, created_at, updated_at"

    static func fetch(_ id: UUID, on connection: PostgresConnection, logger: Logger) async throws -> TenantRecord? {
        try await decodeTenants(try await connection.query("SELECT \(unescaped: columns) FROM tenants WHERE id = \(id)", logger: logger)).first
    }

    static func decodeTenants(_ rows: PostgresRowSequence) async throws -> [TenantRecord] {
        var result: [TenantRecord] = []
        for try await (id, name, kind, status, grade, ceiling, freezes, created, updated) in rows.decode(
            (UUID, String, String, String, Int16, Int16, Int32, Date, Date).self
        ) {
            result.append(record(id, name, kind, status, grade, ceiling, freezes, created, updated))
        }
        return result
    }

    /// A tenant from the values of ``columns``, in their order.
    static func record(_ id: UUID, _ name: String, _ kind: String, _ status: String, _ grade: Int16, _ ceiling: Int16, _ freezes: Int32,
                       _ created: Date, _ updated: Date) -> TenantRecord {
        TenantRecord(id: id, name: name, kind: TenantKind(rawValue: kind) ?? .enterprise, status: TenantStatus(rawValue: status) ?? .active,
                     grade: Int(grade), gradeCeiling: Int(ceiling), freezeCount: Int(freezes), createdAt: created, updatedAt: updated)
    }

    /// Creates a tenant with its root user and root AccessKey, audited, in one transaction.
    /// Creates a tenant of `kind` (its limits, e.g. sender deletions a month) at the operator's starting `grade`
    /// (2 unless said; its ceiling is raised to it when above), with its root user and AccessKey.
    public func create(name: String, kind: TenantKind = .enterprise, grade: Int? = nil, actor: AuditActor) async throws -> CreatedTenant {
        let trimmed = name.trimmingCharacters(in: .whitespacesAndNewlines)
        guard (1...128).contains(trimmed.count) else { throw HeraldError.validation("name must be 1 to 128 characters.", field: "name") }
        let grade = grade ?? initialGrade
        guard (1...16).contains(grade) else { throw HeraldError.validation("grade must be from 1 to 16.", field: "grade") }
        let tenantID = UUIDv7.make()
        let rootID = UUIDv7.make()
        let keyID = AccessKeyGenerator.newID()
        let secret = AccessKeyGenerator.newSecret()
        let sealed = secrets.seal(Array(secret.utf8), context: "access_key:\(keyID)")
        let tenant = try await database.withSystem { connection in
            try await connection.query("""
                INSERT INTO tenants (id, name, kind, grade) VALUES (\(tenantID), \(trimmed), \(kind.rawValue), \(grade)::int2)
                """, logger: database.logger)
            let rows = try await connection.query("""
                UPDATE tenants SET grade_ceiling = greatest(grade_ceiling, grade) WHERE id = \(tenantID) RETURNING \(unescaped: Self.columns)
                """, logger: database.logger)
            let tenant = try await Self.decodeTenants(rows)[0]
            try await connection.query("INSERT INTO users (id, tenant_id, name, is_root) VALUES (\(rootID), \(tenantID), 'root', true)", logger: database.logger)
            try await connection.query("""
                INSERT INTO access_keys (id, tenant_id, user_id, secret_ciphertext)
                VALUES (\(keyID), \(tenantID), \(rootID), \(ByteBuffer(bytes: sealed)))
                """, logger: database.logger)
            try await AuditLog.record(on: connection, logger: database.logger, tenantID: tenantID, actor: actor,
                                      action: "admin:CreateTenant", resource: ResourceName.tenantWildcard(tenantID: tenantID.lowercasedString),
                                      detail: ["name": trimmed, "rootAccessKeyId": keyID, "kind": kind.rawValue, "grade": String(grade)])
            return tenant
        }
        return CreatedTenant(tenant: tenant, accessKeyID: keyID, accessKeySecret: secret)
    }

    /// Lists tenants by id (creation order), optionally by status.
    public func list(status: TenantStatus?, limit: Int, after: UUID?) async throws -> [TenantRecord] {
        let limit = min(max(limit, 1), 100)
        return try await database.withSystem { connection in
            let status = status?.rawValue
            return try await Self.decodeTenants(try await connection.query("""
                SELECT \(unescaped: Self.columns) FROM tenants
                WHERE (\(status)::text IS NULL OR status = \(status)) AND (\(after)::uuid IS NULL OR id > \(after))
                ORDER BY id LIMIT \(limit)
                """, logger: database.logger))
        }
    }

    /// One tenant, or nil.
    public func get(_ id: UUID) async throws -> TenantRecord? {
        try await database.withSystem { connection in
            try await Self.fetch(id, on: connection, logger: database.logger)
        }
    }

    /// An operator status change.
    public enum StatusChange: String, Sendable {
        /// active → frozen.
        case freeze
        /// frozen → active.
        case unfreeze
        /// any → banned (final).
        case ban
    }

    /// Applies an operator status change, audited; a banned tenant stays banned.
    /// A tenant is unfrozen once: after its second freeze only `force` (the operator restoring it by hand,
    /// `herald admin unfreeze --force`) unfreezes it (SPEC §5).
    public func change(_ id: UUID, _ change: StatusChange, reason: String?, actor: AuditActor, force: Bool = false) async throws -> TenantRecord {
        try await database.withSystem { connection in
            let rows = try await connection.query("SELECT status, grade::int, freeze_count FROM tenants WHERE id = \(id) FOR UPDATE",
                                                  logger: database.logger)
            guard let (status, grade, freezes) = try await rows.decode((String, Int, Int).self).first(where: { _ in true }),
                  let current = TenantStatus(rawValue: status) else {
                throw HeraldError.notFound("tenant")
            }
            if change == .unfreeze, current == .frozen, freezes >= 2, !force {
                throw HeraldError.conflict("Tenant.FreezeFinal",
                                           "The tenant was frozen \(freezes) times: a second freeze is final. An operator can restore it by hand (herald admin unfreeze --force).")
            }
            let target: TenantStatus
            switch (change, current) {
            case (_, .banned):
                throw HeraldError.conflict("Tenant.Banned", "The tenant is banned; a ban is final.")
            case (.freeze, .frozen), (.unfreeze, .active):
                // Idempotent: asking for the state it is already in changes nothing.
                target = current
            case (.freeze, _): target = .frozen
            case (.unfreeze, _): target = .active
            case (.ban, _): target = .banned
            }
            if target != current {
                let bump = target == .frozen ? 1 : 0
                try await connection.query("""
                    UPDATE tenants SET status = \(target.rawValue), freeze_count = freeze_count + \(bump), updated_at = now() WHERE id = \(id)
                    """, logger: database.logger)
                // The account's mail and its history follow: paused, queued again, or dropped; an event each.
                let now = Date()
                let why = reason.map { String($0.prefix(500)) } ?? "by the operator"
                switch target {
                case .frozen: try await AccountChanges.pauseMail(connection, logger: database.logger, tenantID: id, now: now)
                case .active: try await AccountChanges.resumeMail(connection, logger: database.logger, tenantID: id, now: now)
                case .banned: try await AccountChanges.dropMail(connection, logger: database.logger, tenantID: id, now: now)
                }
                try await AccountChanges.record(connection, logger: database.logger, tenantID: id,
                                                change: GradeChange(becoming: target), from: grade, to: grade, reason: why,
                                                figures: nil, actor: "operator", now: now)
                var detail = ["from": current.rawValue, "to": target.rawValue]
                if let reason { detail["reason"] = String(reason.prefix(500)) }
                try await AuditLog.record(on: connection, logger: database.logger, tenantID: id, actor: actor,
                                          action: "admin:\(change.rawValue.capitalized)Tenant",
                                          resource: ResourceName.tenantWildcard(tenantID: id.lowercasedString), detail: detail)
            }
            return try await Self.fetch(id, on: connection, logger: database.logger)!
        }
    }
}
