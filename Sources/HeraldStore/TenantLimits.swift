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
        let overrides = (try? JSONDecoder().decode([String: Int].self, from: Data(overridesJSON.utf8))) ?? [:]
        // Stored overrides were validated when the operator set them; a bad one is ignored, not fatal.
        let limits = (try? defaults.applying(overrides)) ?? defaults
        return (limits, TenantKind(rawValue: kind) ?? .enterprise)
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
}
