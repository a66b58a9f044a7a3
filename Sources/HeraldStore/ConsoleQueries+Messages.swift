import Foundation
import HeraldCore
import Logging
import PostgresNIO

/// The console's searches of the suppression and invalid-address lists (issue #19): the REST lists' rows, filtered
/// by a part of the address, tenant-scoped (RLS and `tenant_id`), one round trip each.
extension SendStore {
    /// The tenant's suppressions whose address contains `containing` (any case; all when nil), by address, at most `limit`.
    public func findSuppressions(tenantID: UUID, containing: String?, limit: Int) async throws -> [SuppressionRecord] {
        let part = containing?.lowercased()
        return try await database.withTenant(tenantID) { connection in
            var items: [SuppressionRecord] = []
            for try await (address, scope, source, created) in try await connection.query("""
                SELECT address, scope, source, created_at FROM suppressions
                WHERE tenant_id = \(tenantID) AND (\(part)::text IS NULL OR strpos(lower(address), \(part)::text) > 0)
                ORDER BY address, scope LIMIT \(limit)
                """, logger: logger).decode((String, String, String, Date).self) {
                items.append(SuppressionRecord(address: address, scope: scope, source: source, createdAt: created))
            }
            return items
        }
    }

    /// The tenant's invalid addresses that contain `containing` (any case; all when nil), by address, at most `limit`.
    public func findInvalidAddresses(tenantID: UUID, containing: String?, limit: Int) async throws -> [InvalidAddressRecord] {
        let part = containing?.lowercased()
        return try await database.withTenant(tenantID) { connection in
            var items: [InvalidAddressRecord] = []
            for try await (address, bounces, listed, updated) in try await connection.query("""
                SELECT address, hard_bounces, listed, updated_at FROM invalid_addresses
                WHERE tenant_id = \(tenantID) AND (\(part)::text IS NULL OR strpos(lower(address), \(part)::text) > 0)
                ORDER BY address LIMIT \(limit)
                """, logger: logger).decode((String, Int, Bool, Date).self) {
                items.append(InvalidAddressRecord(address: address, hardBounces: bounces, listed: listed, updatedAt: updated))
            }
            return items
        }
    }
}
