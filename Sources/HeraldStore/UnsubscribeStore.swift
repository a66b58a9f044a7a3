import Foundation
import HeraldCore
import Logging
import PostgresNIO

/// The public unsubscribe links' side of the database: who a link's message went to, and the
/// unsubscription itself (a suppression with the link's scope, source `unsubscribe`, and its
/// `message.unsubscribed` event in the same transaction). Each is one statement and one round trip
/// (`herald_link_recipient`, `herald_unsubscribe`, migration 0018): these routes are public and hot.
public struct UnsubscribeStore: Sendable {
    let database: Database

    public init(database: Database) {
        self.database = database
    }

    /// The recipient of the tenant's message, or nil when there is none (Herald's own mail has no link).
    public func recipient(tenantID: UUID, messageID: UUID) async throws -> String? {
        try await database.client.query("SELECT herald_link_recipient(\(tenantID), \(messageID))", logger: database.logger)
            .decode(String?.self).first { _ in true } ?? nil
    }

    /// Unsubscribes the recipient of the message from `scope` (`*`, `list:<id>` or `tag:<name>`). Answers
    /// the address and whether this call added it (a repeat changes nothing and records no event); nil when
    /// the message does not exist.
    public func unsubscribe(tenantID: UUID, messageID: UUID, scope: String, now: Date) async throws -> (address: String, added: Bool)? {
        let row = try await database.client.query("""
            SELECT o_address, o_added FROM herald_unsubscribe(\(tenantID), \(messageID), \(scope), \(now))
            """, logger: database.logger).decode((String, Bool).self).first { _ in true }
        return row.map { (address: $0.0, added: $0.1) }
    }

    /// Unsubscribes the recipient of a message named by a `mailto:` unsubscribe address, with the scope its
    /// https link has (`herald_unsubscribe_message`, migration 0019): the address and whether
    /// this call added it; nil when the message does not exist.
    public func unsubscribe(messageID: UUID, now: Date) async throws -> (address: String, added: Bool)? {
        let row = try await database.client.query("""
            SELECT o_address, o_added FROM herald_unsubscribe_message(\(messageID), \(now))
            """, logger: database.logger).decode((String, Bool).self).first { _ in true }
        return row.map { (address: $0.0, added: $0.1) }
    }
}
