import Foundation
import HeraldCore
import Logging
import PostgresNIO

/// The public unsubscribe links' side of the database: who a link's message went to, and the
/// unsubscription itself (a suppression with the link's scope, source `unsubscribe`, and its
/// `message.unsubscribed` event in the same transaction).
public struct UnsubscribeStore: Sendable {
    let database: Database

    public init(database: Database) {
        self.database = database
    }

    private var logger: Logger { database.logger }

    /// The recipient of the tenant's message, or nil when there is none (Herald's own mail has no link).
    public func recipient(tenantID: UUID, messageID: UUID) async throws -> String? {
        try await database.withTenant(tenantID) { connection in
            try await connection.query("""
                SELECT to_address FROM messages WHERE tenant_id = \(tenantID) AND id = \(messageID) AND kind <> 'system'
                """, logger: logger).decode(String.self).first { _ in true }
        }
    }

    /// Unsubscribes the recipient of the message from `scope` (`*`, `list:<id>` or `tag:<name>`). Answers
    /// the address and whether this call added it (a repeat changes nothing and records no event); nil when
    /// the message does not exist.
    public func unsubscribe(tenantID: UUID, messageID: UUID, scope: String, now: Date) async throws -> (address: String, added: Bool)? {
        try await database.withTenant(tenantID) { connection in
            guard let (address, from, tag) = try await connection.query("""
                SELECT to_address, from_address, tag FROM messages WHERE tenant_id = \(tenantID) AND id = \(messageID) AND kind <> 'system'
                """, logger: logger).decode((String, String, String?).self).first(where: { _ in true }) else { return nil }
            let added = try await connection.query("""
                WITH added AS (
                    INSERT INTO suppressions (tenant_id, address, scope, source, created_at)
                    VALUES (\(tenantID), \(address.lowercased()), \(scope), 'unsubscribe', \(now))
                    ON CONFLICT DO NOTHING
                    RETURNING address
                )
                INSERT INTO events (tenant_id, message_id, type, data, created_at)
                SELECT \(tenantID), \(messageID), 'message.unsubscribed',
                       jsonb_strip_nulls(jsonb_build_object('messageId', \(messageID), 'to', \(address), 'from', \(from), 'scope', \(scope),
                                                        'tag', \(tag)::text)), \(now)
                FROM added
                RETURNING id
                """, logger: logger).decode(Int64.self).first { _ in true } != nil
            return (address, added)
        }
    }
}
