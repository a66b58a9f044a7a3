import Foundation
import HeraldCore
import Logging
import PostgresNIO

/// The installation's product limits and a tenant's overrides, read inside the transaction that checks
/// them (so an operator change applies to the next create at once).
public struct TenantLimits: Sendable {
    /// The installation's limits (`HERALD_LIMITS` over SPEC's defaults).
    public var defaults: ProductLimits

    public init(defaults: ProductLimits = ProductLimits()) {
        self.defaults = defaults
    }

    /// The effective limits and the kind of `tenantID`.
    func effective(_ connection: PostgresConnection, tenantID: UUID, logger: Logger) async throws -> (limits: ProductLimits, kind: TenantKind) {
        let row = try await connection.query("SELECT kind, limit_overrides::text FROM tenants WHERE id = \(tenantID)", logger: logger)
            .decode((String, String).self).first { _ in true }
        guard let (kind, overridesJSON) = row else { throw HeraldError.notFound("tenant") }
        return (Self.applying(overridesJSON: overridesJSON, to: defaults), TenantKind(rawValue: kind) ?? .enterprise)
    }

    /// `limits` with a tenant's stored overrides (`tenants.limit_overrides` as text) applied. Stored overrides were
    /// validated when the operator set them; a bad one is ignored, not fatal.
    static func applying(overridesJSON: String?, to limits: ProductLimits) -> ProductLimits {
        // Most tenants have none: no decoder on the accepting path for them.
        guard let overridesJSON, overridesJSON != "{}",
              let overrides = try? JSONDecoder().decode([String: Int].self, from: Data(overridesJSON.utf8)) else { return limits }
        return (try? limits.applying(overrides)) ?? limits
    }
}

extension TenantStore {
    /// Replaces a tenant's limit overrides (a limit not named goes back to the installation default), audited.
    public func setLimitOverrides(_ id: UUID, _ overrides: [String: Int], actor: AuditActor) async throws -> [String: Int] {
        _ = try ProductLimits().applying(overrides)
        return try await database.withSystem { connection in
            let current = try await connection.query("SELECT 1 FROM tenants WHERE id = \(id) FOR UPDATE", logger: database.logger)
                .decode(Int.self).first { _ in true }
            guard current != nil else { throw HeraldError.notFound("tenant") }
            let json = String(decoding: try JSONEncoder().encode(overrides), as: UTF8.self)
            try await connection.query("UPDATE tenants SET limit_overrides = \(json)::jsonb, updated_at = now() WHERE id = \(id)", logger: database.logger)
            try await AuditLog.record(on: connection, logger: database.logger, tenantID: id, actor: actor, action: "admin:SetTenantLimits",
                                      resource: ResourceName.tenantWildcard(tenantID: id.lowercasedString),
                                      detail: overrides.mapValues(String.init))
            return overrides
        }
    }

    /// A tenant's overrides.
    public func limitOverrides(_ id: UUID) async throws -> [String: Int] {
        try await database.withSystem { connection in
            let current = try await connection.query("SELECT limit_overrides::text FROM tenants WHERE id = \(id)", logger: database.logger)
                .decode(String.self).first { _ in true }
            guard let current else { throw HeraldError.notFound("tenant") }
            return (try? JSONDecoder().decode([String: Int].self, from: Data(current.utf8))) ?? [:]
        }
    }

    /// A tenant's own grade → daily quota table, or nil when it follows the installation's.
    public func quotaTable(_ id: UUID) async throws -> QuotaTable? {
        try await database.withSystem { connection in
            let row = try await connection.query("SELECT quota_table::text FROM tenants WHERE id = \(id)", logger: database.logger)
                .decode(String?.self).first { _ in true }
            guard let row else { throw HeraldError.notFound("tenant") }
            return QuotaTable.stored(row)
        }
    }

    /// Sets (or, nil, clears) a tenant's own quota table, audited; the next send reads it.
    public func setQuotaTable(_ id: UUID, _ table: QuotaTable?, actor: AuditActor) async throws {
        try await database.withSystem { connection in
            let updated = try await connection.query("""
                UPDATE tenants SET quota_table = \(table?.daily)::integer[], updated_at = now() WHERE id = \(id) RETURNING 1
                """, logger: database.logger).decode(Int.self).first { _ in true }
            guard updated != nil else { throw HeraldError.notFound("tenant") }
            try await AuditLog.record(on: connection, logger: database.logger, tenantID: id, actor: actor, action: "admin:SetTenantQuotas",
                                      resource: ResourceName.tenantWildcard(tenantID: id.lowercasedString),
                                      detail: ["dailyQuotas": table.map { $0.daily.map(String.init).joined(separator: ",") } ?? "(installation)"])
        }
    }
}
