import Foundation
import HeraldCore
import PostgresNIO

/// A tenant as the operator's console lists it: the record, its own quota table, and what it sent today.
public struct OperatorTenantRow: Sendable {
    public var tenant: TenantRecord
    /// The tenant's own grade → daily quota table, nil when it follows the installation's.
    public var quotaTable: QuotaTable?
    /// Messages counted against today's quota.
    public var usedToday: Int
}

/// One tenant as the operator's console shows it: the record, its use of the quota today and this month, its limit
/// overrides and its own quota table.
public struct OperatorTenantView: Sendable {
    public var tenant: TenantRecord
    public var usedToday: Int
    public var usedThisMonth: Int
    public var overrides: [String: Int]
    public var quotaTable: QuotaTable?
}

/// The depth of the installation's queues (the operator's console): messages not yet final and webhook deliveries
/// not yet made.
public struct QueueDepth: Sendable, Equatable {
    /// Accepted, never tried.
    public var queued = 0
    /// Tried, to be tried again (`deferred`).
    public var retrying = 0
    /// Being delivered now (leased by a worker).
    public var sending = 0
    /// Held because their tenant is frozen.
    public var paused = 0
    /// Queued or retrying and due now (what the workers would claim).
    public var due = 0
    /// Webhook deliveries still to be made, and those of them due now.
    public var webhooksPending = 0
    public var webhooksDue = 0
}

extension TenantStore {
    /// Tenants for the operator's console: those whose name contains `search` (case-insensitive) or whose id is it,
    /// optionally of one status, by id after `after`, at most `limit`; each with its quota table and today's use on
    /// `day` (the quota day). One round trip.
    public func search(_ search: String?, status: TenantStatus?, limit: Int, after: UUID?, day: String) async throws -> [OperatorTenantRow] {
        let limit = min(max(limit, 1), 100)
        let text = search.map { $0.trimmingCharacters(in: .whitespaces) }.flatMap { $0.isEmpty ? nil : String($0.prefix(128)) }
        let id = text.flatMap { UUID(uuidString: $0) }
        return try await database.withSystem { connection in
            let status = status?.rawValue
            let rows = try await connection.query("""
                SELECT \(unescaped: Self.columns), quota_table::text, herald_quota_used(id, \(day)::date, \(day)::date)
                FROM tenants
                WHERE (\(status)::text IS NULL OR status = \(status)) AND (\(after)::uuid IS NULL OR id > \(after))
                  AND (\(text)::text IS NULL OR id = \(id) OR strpos(lower(name), lower(\(text)::text)) > 0)
                ORDER BY id LIMIT \(limit)
                """, logger: database.logger)
            var result: [OperatorTenantRow] = []
            for try await (id, name, kind, status, grade, ceiling, freezes, created, updated, table, used) in rows.decode(
                (UUID, String, String, String, Int16, Int16, Int32, Date, Date, String?, Int).self
            ) {
                let tenant = Self.record(id, name, kind, status, grade, ceiling, freezes, created, updated)
                result.append(OperatorTenantRow(tenant: tenant, quotaTable: QuotaTable.stored(table), usedToday: used))
            }
            return result
        }
    }
}

extension TenantStore {
    /// One tenant for the operator's console (nil: none), its quota used on `day` and since `monthStart`. One round trip.
    public func operatorView(_ id: UUID, day: String, monthStart: String) async throws -> OperatorTenantView? {
        try await database.withSystem { connection in
            let rows = try await connection.query("""
                SELECT \(unescaped: Self.columns), herald_quota_used(id, \(day)::date, \(day)::date),
                       herald_quota_used(id, \(monthStart)::date, \(day)::date), limit_overrides::text, quota_table::text
                FROM tenants WHERE id = \(id)
                """, logger: database.logger)
            for try await (id, name, kind, status, grade, ceiling, freezes, created, updated, today, month, overrides, table) in rows.decode(
                (UUID, String, String, String, Int16, Int16, Int32, Date, Date, Int, Int, String, String?).self
            ) {
                let tenant = Self.record(id, name, kind, status, grade, ceiling, freezes, created, updated)
                return OperatorTenantView(tenant: tenant, usedToday: today, usedThisMonth: month,
                                          overrides: (try? JSONDecoder().decode([String: Int].self, from: Data(overrides.utf8))) ?? [:],
                                          quotaTable: QuotaTable.stored(table))
            }
            return nil
        }
    }
}

extension TenantStore {
    /// The names of tenants by id (those that exist). One round trip.
    public func names(_ ids: [UUID]) async throws -> [UUID: String] {
        guard !ids.isEmpty else { return [:] }
        return try await database.withSystem { connection in
            var names: [UUID: String] = [:]
            let rows = try await connection.query("SELECT id, name FROM tenants WHERE id = ANY(\(Array(Set(ids)))::uuid[])", logger: database.logger)
            for try await (id, name) in rows.decode((UUID, String).self) { names[id] = name }
            return names
        }
    }
}

extension ProcessStore {
    /// How deep the queues are at `now`: messages by state in the queue partition, and pending webhook deliveries.
    /// One round trip.
    public func queueDepth(now: Date) async throws -> QueueDepth {
        try await database.withSystem { connection in
            let rows = try await connection.query("""
                SELECT count(*) FILTER (WHERE status = 'queued')::int, count(*) FILTER (WHERE status = 'deferred')::int,
                       count(*) FILTER (WHERE status = 'sending')::int, count(*) FILTER (WHERE status = 'paused')::int,
                       count(*) FILTER (WHERE status IN ('queued', 'deferred') AND next_attempt_at <= \(now))::int,
                       (SELECT count(*)::int FROM webhook_deliveries WHERE expires_on IS NULL AND status = 'pending'),
                       (SELECT count(*)::int FROM webhook_deliveries WHERE expires_on IS NULL AND status = 'pending' AND next_attempt_at <= \(now))
                FROM messages WHERE expires_on IS NULL AND status IN ('queued', 'deferred', 'sending', 'paused')
                """, logger: database.logger)
            var depth = QueueDepth()
            for try await (queued, retrying, sending, paused, due, pending, webhooksDue) in rows.decode((Int, Int, Int, Int, Int, Int, Int).self) {
                depth = QueueDepth(queued: queued, retrying: retrying, sending: sending, paused: paused, due: due,
                                   webhooksPending: pending, webhooksDue: webhooksDue)
            }
            return depth
        }
    }
}
