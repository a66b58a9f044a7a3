import Foundation
import HeraldCore
import PostgresNIO

/// Reads of the console's list and task pages (issue #19) that the REST API has no query for: a list's members
/// searched by address, and the task list with each task's messages counted. Tenant-scoped like every store read
/// (`tenant_id` in every query, inside a tenant transaction for row-level security), one query each.
extension ListStore {
    /// Members of a list in address order after `after`, only those whose address contains `search` (any case)
    /// when one is given. The list itself is not checked (the page reads it first).
    public func members(tenantID: UUID, listID: UUID, search: String?, limit: Int, after: String?) async throws -> [ListMemberRecord] {
        let search = search.flatMap { $0.isEmpty ? nil : $0.lowercased() }
        return try await database.withTenant(tenantID) { connection in
            var members: [ListMemberRecord] = []
            for try await (address, variables, created) in try await connection.query("""
                SELECT address, variables::text, created_at FROM list_members
                WHERE tenant_id = \(tenantID) AND list_id = \(listID) AND (\(after)::text IS NULL OR address > \(after))
                  AND (\(search)::text IS NULL OR strpos(lower(address), \(search)::text) > 0)
                ORDER BY address LIMIT \(limit)
                """, logger: database.logger).decode((String, String, Date).self) {
                let decoded = (try? JSONDecoder().decode([String: String].self, from: Data(variables.utf8))) ?? [:]
                members.append(ListMemberRecord(address: address, variables: decoded, createdAt: created))
            }
            return members
        }
    }
}

/// A task in the console's task list: the REST list's summary and its messages counted by state.
public struct TaskProgressRecord: Sendable, Equatable {
    public var summary: TaskSummaryRecord
    /// Messages waiting (queued, deferred or being sent).
    public var queued: Int
    public var delivered: Int
    /// Bounced or rejected as spam.
    public var bounced: Int
    public var failed: Int
    public var dropped: Int
}

extension BatchStore {
    /// The tenant's tasks, newest first, a page at a time (`before`: the last id of the previous page), each with
    /// its template and list names and its messages counted by state, in one query.
    public func progressList(tenantID: UUID, limit: Int, before: UUID?) async throws -> [TaskProgressRecord] {
        try await database.withTenant(tenantID) { connection in
            var items: [TaskProgressRecord] = []
            for try await (id, status, template, list, from, tag, total, expanded, scheduled, created, queued, delivered, bounced, failed, dropped)
                in try await connection.query("""
                SELECT t.id, t.status, coalesce(tp.name, ''), coalesce(l.name, ''), t.from_address, t.tag, t.total, t.expanded,
                       t.scheduled_at, t.created_at, c.queued, c.delivered, c.bounced, c.failed, c.dropped
                FROM tasks t
                LEFT JOIN templates tp ON tp.tenant_id = t.tenant_id AND tp.id = t.template_id
                LEFT JOIN recipient_lists l ON l.tenant_id = t.tenant_id AND l.id = t.list_id
                CROSS JOIN LATERAL (
                    SELECT count(*) FILTER (WHERE m.status IN ('queued', 'deferred', 'sending'))::int AS queued,
                           count(*) FILTER (WHERE m.status = 'delivered')::int AS delivered,
                           count(*) FILTER (WHERE m.status IN ('bounced', 'spam_rejected'))::int AS bounced,
                           count(*) FILTER (WHERE m.status = 'failed')::int AS failed,
                           count(*) FILTER (WHERE m.status = 'dropped')::int AS dropped
                    FROM messages m WHERE m.tenant_id = t.tenant_id AND m.task_id = t.id
                ) c
                WHERE t.tenant_id = \(tenantID)
                  AND (\(before)::uuid IS NULL OR (t.created_at, t.id) < (SELECT created_at, id FROM tasks WHERE tenant_id = \(tenantID) AND id = \(before)))
                ORDER BY t.created_at DESC, t.id DESC LIMIT \(limit)
                """, logger: database.logger).decode((UUID, String, String, String, String, String?, Int, Int, Date, Date, Int, Int, Int, Int, Int).self) {
                items.append(TaskProgressRecord(
                    summary: TaskSummaryRecord(id: id, status: status, template: template, list: list, from: from, tag: tag, total: total,
                                               expanded: expanded, scheduledAt: scheduled, createdAt: created),
                    queued: queued, delivered: delivered, bounced: bounced, failed: failed, dropped: dropped))
            }
            return items
        }
    }
}
