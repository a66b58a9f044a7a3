import Foundation
import HeraldCore
import Logging
import PostgresNIO

/// Reads the console needs beside the REST API's (issue #19): the policies of a page of users in one query.
extension IdentityStore {
    /// The names of the policies attached to each of `userIDs` (the tenant's only), in the order they were attached.
    public func consolePolicyNames(tenantID: UUID, userIDs: [UUID]) async throws -> [UUID: [String]] {
        guard !userIDs.isEmpty else { return [:] }
        return try await database.withTenant(tenantID) { connection in
            var names: [UUID: [String]] = [:]
            for try await (user, name) in try await connection.query("""
                SELECT user_id, policy_name FROM user_policies WHERE tenant_id = \(tenantID) AND user_id = ANY(\(userIDs))
                ORDER BY attached_at, policy_name
                """, logger: database.logger).decode((UUID, String).self) {
                names[user, default: []].append(name)
            }
            return names
        }
    }
}
