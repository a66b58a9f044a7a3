import Foundation
import HeraldCore
import Logging
import PostgresNIO

/// A message as the read side shows it.
public struct MessageSummaryRecord: Sendable, Equatable {
    public var id: UUID
    public var from: String
    public var to: String
    public var subject: String
    public var tag: String?
    public var status: MessageStatus
    public var reason: String?
    public var attempts: Int
    public var lastResponse: String?
    public var createdAt: Date
    public var updatedAt: Date
}

/// An event of a message.
public struct MessageEventRecord: Sendable, Equatable {
    public var type: EventType
    public var at: Date
    /// The event's data as JSON text.
    public var dataJSON: String
}

/// An address with hard bounces.
public struct InvalidAddressRecord: Sendable, Equatable {
    public var address: String
    public var hardBounces: Int
    public var listed: Bool
    public var updatedAt: Date
}

/// The read side of sending: messages with their events, search, the invalid-address list.
extension SendStore {
    static let summaryColumns = "id, from_address, to_address, subject, tag, status, reason, attempts, last_response, created_at, updated_at"

    static func summaries(_ rows: PostgresRowSequence) async throws -> [MessageSummaryRecord] {
        var result: [MessageSummaryRecord] = []
        for try await row in rows {
            let (id, from, to, subject, tag, status, reason, attempts, response, created, updated) =
                try row.decode((UUID, String, String, String, String?, String, String?, Int, String?, Date, Date).self)
            result.append(MessageSummaryRecord(id: id, from: from, to: to, subject: subject, tag: tag, status: try .stored(status), reason: reason,
                                               attempts: attempts, lastResponse: response, createdAt: created, updatedAt: updated))
        }
        return result
    }

    /// One message of the tenant (not Herald's own mail) with its events in order.
    public func message(tenantID: UUID, id: UUID) async throws -> (MessageSummaryRecord, [MessageEventRecord]) {
        try await database.withTenant(tenantID) { connection in
            guard let message = try await Self.summaries(try await connection.query("""
                SELECT \(unescaped: Self.summaryColumns) FROM messages WHERE tenant_id = \(tenantID) AND id = \(id) AND kind <> 'system'
                """, logger: database.logger)).first else { throw HeraldError.notFound("message") }
            var events: [MessageEventRecord] = []
            for try await (type, at, data) in try await connection.query("""
                SELECT type, created_at, data::text FROM events WHERE tenant_id = \(tenantID) AND message_id = \(id) ORDER BY id
                """, logger: database.logger).decode((String, Date, String).self) {
                events.append(MessageEventRecord(type: try .stored(type), at: at, dataJSON: data))
            }
            return (message, events)
        }
    }

    /// Messages newest first (ids are time-ordered), filtered; `before` is the previous page's last id.
    public func searchMessages(tenantID: UUID, to: String?, status: MessageStatus?, from: Date?, until: Date?, limit: Int, before: UUID?) async throws -> [MessageSummaryRecord] {
        try await database.withTenant(tenantID) { connection in
            try await Self.summaries(try await connection.query("""
                SELECT \(unescaped: Self.summaryColumns) FROM messages
                WHERE tenant_id = \(tenantID) AND kind <> 'system'
                  AND (\(to?.lowercased())::text IS NULL OR to_address = \(to?.lowercased()))
                  AND (\(status?.rawValue)::text IS NULL OR status = \(status?.rawValue))
                  AND (\(from)::timestamptz IS NULL OR created_at >= \(from))
                  AND (\(until)::timestamptz IS NULL OR created_at < \(until))
                  AND (\(before)::uuid IS NULL OR id < \(before))
                ORDER BY id DESC LIMIT \(limit)
                """, logger: database.logger))
        }
    }

    /// The tenant's invalid addresses by address, at most `limit` (1,000 for the list, all for the CSV export).
    public func invalidAddresses(tenantID: UUID, limit: Int = 1_000) async throws -> [InvalidAddressRecord] {
        try await database.withTenant(tenantID) { connection in
            var items: [InvalidAddressRecord] = []
            for try await (address, bounces, listed, updated) in try await connection.query("""
                SELECT address, hard_bounces, listed, updated_at FROM invalid_addresses WHERE tenant_id = \(tenantID) ORDER BY address LIMIT \(limit)
                """, logger: database.logger).decode((String, Int, Bool, Date).self) {
                items.append(InvalidAddressRecord(address: address, hardBounces: bounces, listed: listed, updatedAt: updated))
            }
            return items
        }
    }

    public func removeInvalidAddress(tenantID: UUID, address: String, actor: AuditActor) async throws {
        try await database.withTenant(tenantID) { connection in
            let removed = try await connection.query("""
                DELETE FROM invalid_addresses WHERE tenant_id = \(tenantID) AND address = \(address.lowercased()) RETURNING address
                """, logger: database.logger).decode(String.self).first { _ in true }
            guard removed != nil else { throw HeraldError.notFound("invalid address") }
            // The operator may forbid removals (0) or cap them a month; the audit log counts them.
            let allowed = try await limits.effective(connection, tenantID: tenantID, logger: database.logger).limits.invalidAddressRemovalsPerMonth
            guard allowed > 0 else {
                throw HeraldError(code: "InvalidAddress.RemovalForbidden", kind: .forbidden,
                                  message: "Invalid addresses of this account are removed by the operator only; ask them to remove \(address.lowercased()).")
            }
            let done = try await connection.query("""
                SELECT count(*)::int FROM audit_log WHERE tenant_id = \(tenantID) AND action = 'dm:RemoveInvalidAddress' AND result = 'success'
                  AND at >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                """, logger: database.logger).decode(Int.self).first { _ in true } ?? 0
            guard done < allowed else {
                throw HeraldError.limitExceeded("At most \(allowed) invalid addresses can be removed per calendar month (limit: invalidAddressRemovalsPerMonth).")
            }
            try await AuditLog.record(on: connection, logger: database.logger, tenantID: tenantID, actor: actor, action: "dm:RemoveInvalidAddress",
                                      resource: ResourceName.tenantWildcard(tenantID: tenantID.lowercasedString),
                                      detail: ["address": address.lowercased()])
        }
    }
}
