import Foundation
import HeraldCore
import Logging
import PostgresNIO

/// Writes and reads the tenant audit log. Writes take the caller's connection so that an entry commits
/// (or rolls back) together with the change it describes.
public enum AuditLog {
    /// Appends one entry inside the caller's transaction.
    public static func record(
        on connection: PostgresConnection, logger: Logger, tenantID: UUID, actor: AuditActor,
        action: String, resource: String, result: String = "success", detail: [String: String]? = nil
    ) async throws {
        let detailJSON = detail.flatMap { try? String(decoding: JSONEncoder().encode($0), as: UTF8.self) }
        try await connection.query("""
            INSERT INTO audit_log (tenant_id, actor_type, user_id, access_key_id, source_ip, action, resource, result, request_id, detail)
            VALUES (\(tenantID), \(actor.type.rawValue), \(actor.userID), \(actor.accessKeyID), \(actor.sourceIP),
                    \(action), \(resource), \(result), \(actor.requestID), \(detailJSON)::jsonb)
            """, logger: logger)
    }

    /// Records a refused mutating request in its own transaction (there was no change to share one with).
    public static func recordRefusal(
        database: Database, tenantID: UUID, actor: AuditActor, action: String, resource: String, code: String
    ) async {
        do {
            try await database.withTenant(tenantID) { connection in
                try await record(on: connection, logger: database.logger, tenantID: tenantID, actor: actor,
                                 action: action, resource: resource, result: code)
            }
        } catch {
            database.logger.warning("could not record refusal in audit log", metadata: ["error": "\(String(reflecting: error))"])
        }
    }

    /// Lists entries newest first.
    public static func list(database: Database, tenantID: UUID, query: AuditQuery) async throws -> [AuditEntry] {
        let limit = min(max(query.limit, 1), 100)
        let before = query.before ?? Int64.max
        return try await database.withTenant(tenantID) { connection in
            let rows = try await connection.query("""
                SELECT id, at, actor_type, user_id, access_key_id, source_ip, action, resource, result, request_id, detail::text
                FROM audit_log
                WHERE tenant_id = \(tenantID) AND id < \(before)
                  AND (\(query.action)::text IS NULL OR action = \(query.action))
                  AND (\(query.userID)::uuid IS NULL OR user_id = \(query.userID))
                  AND (\(query.from)::timestamptz IS NULL OR at >= \(query.from))
                  AND (\(query.until)::timestamptz IS NULL OR at < \(query.until))
                ORDER BY id DESC
                LIMIT \(limit)
                """, logger: database.logger)
            var entries: [AuditEntry] = []
            for try await (id, at, actorType, userID, keyID, ip, action, resource, result, requestID, detail) in rows.decode(
                (Int64, Date, String, UUID?, String?, String?, String, String, String, String?, String?).self
            ) {
                let parsed = detail.flatMap { try? JSONDecoder().decode([String: String].self, from: Data($0.utf8)) }
                entries.append(AuditEntry(id: String(id), at: at, actorType: actorType, userId: userID, accessKeyId: keyID,
                                          sourceIp: ip, action: action, resource: resource, result: result,
                                          requestId: requestID, detail: parsed))
            }
            return entries
        }
    }
}
