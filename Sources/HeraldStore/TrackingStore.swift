import Foundation
import HeraldCore
import Logging
import PostgresNIO

/// Opens and clicks: each one is a `message.opened` / `message.clicked` event (with `first` on the first of
/// its kind for the message, which the statistics count as unique), written with the message's first-open
/// or first-click time in one statement.
public struct TrackingStore: Sendable {
    let database: Database

    public init(database: Database) {
        self.database = database
    }

    /// Records an open (`url` nil) or a click; answers false when the tenant has no such message.
    public func record(tenantID: UUID, messageID: UUID, url: String?, now: Date) async throws -> Bool {
        let type = url == nil ? "message.opened" : "message.clicked"
        return try await database.withTenant(tenantID) { connection in
            try await connection.query("""
                WITH m AS (
                    SELECT id, to_address, from_address, tag, \(unescaped: url == nil ? "opened_at" : "clicked_at") IS NULL AS first
                    FROM messages WHERE tenant_id = \(tenantID) AND id = \(messageID) AND kind <> 'system'
                    FOR UPDATE
                ), marked AS (
                    UPDATE messages SET \(unescaped: url == nil ? "opened_at" : "clicked_at") = \(now)
                    FROM m WHERE messages.id = m.id AND m.first
                )
                INSERT INTO events (tenant_id, message_id, type, data, created_at)
                SELECT \(tenantID), id, \(type),
                       jsonb_strip_nulls(jsonb_build_object('messageId', id, 'to', to_address, 'from', from_address, 'tag', tag, 'first', first,
                                                            'url', \(url)::text)), \(now)
                FROM m
                RETURNING id
                """, logger: database.logger).decode(Int64.self).first { _ in true } != nil
        }
    }
}
