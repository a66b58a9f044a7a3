import Foundation
import HeraldCore
import Logging
import PostgresNIO

/// A batch task's progress.
public struct TaskRecord: Sendable, Equatable {
    public var id: UUID
    public var status: String
    public var total: Int
    public var expanded: Int
    public var scheduledAt: Date
    public var createdAt: Date
    /// Messages of the task by status.
    public var counts: [String: Int]
}

/// A claimed task ready to expand, with the approved content it was submitted with (read once).
public struct TaskClaim: Sendable {
    public var id: UUID
    public var tenantID: UUID
    public var subject: String
    public var html: String?
    public var text: String?
}

/// Batch sends (BatchSendMail): submission checks everything, keeps the approved template's content with
/// the task and reserves the quota for the whole list; expansion writes one message per member in chunks,
/// each chunk in one transaction together with the task's resume point, so a crash resumes where it
/// stopped and never doubles a recipient. Members beyond the reservation (the list grew after the
/// submission) are reserved from the day's quota as they come; what does not fit is dropped with reason
/// `quota_exceeded`, so a day's mail never passes the day's quota.
public struct BatchStore: Sendable {
    let database: Database
    public var quotaTimeZone = TimeZone(identifier: "UTC")!
    /// The installation's grade → daily quota table (a tenant may have its own).
    public var quotaTable = QuotaTable.standard

    public init(database: Database) {
        self.database = database
    }

    private var logger: Logger { database.logger }

    /// Checks and queues a batch send; answers the task id.
    public func submit(tenantID: UUID, templateID: UUID, listID: UUID, request: BatchSendRequest, now: Date, actor: AuditActor) async throws -> UUID {
        let from = try MailAddress(request.from, field: "from"), tag = request.tag
        if let tag { try TagName.validate(tag, field: "tag") }
        let replyTo = try SendRules.replyToRequest(request.replyTo, sender: nil)
        if let name = request.replyToName { try ReplyToRule.validateName(name) }
        let id = UUIDv7.make(at: now)
        let (day, monthStart) = SendRules.quotaDay(now, timeZone: quotaTimeZone)
        return try await database.withTenant(tenantID) { connection in
            let facts = try await Self.submitFacts(connection, tenantID: tenantID, from: from, templateID: templateID, listID: listID, tag: tag,
                                                   quotaTable: quotaTable, logger: logger)
            let submission = try BatchDecision.check(from: from, tag: tag, replyTo: replyTo, replyToName: request.replyToName, facts: facts)
            let (members, senderID) = (submission.members, submission.senderID)
            let (subject, html, text) = (submission.template.subject, submission.template.html, submission.template.text)
            var quota = try await SendStore.lockQuota(connection, tenantID: tenantID, daily: facts.tenant?.dailyQuota ?? 0, day: day,
                                                      monthStart: monthStart, logger: logger)
            try BatchDecision.reserve(submission, quota: &quota)
            try await SendStore.storeQuota(connection, tenantID: tenantID, quota: quota, day: day, logger: logger)
            try await connection.query("""
                INSERT INTO tasks (id, tenant_id, template_id, list_id, sender_id, from_address, tag, status, total, reserved, scheduled_at, created_at,
                                   updated_at, subject, html, body_text, reply_to, tracking)
                VALUES (\(id), \(tenantID), \(templateID), \(listID), \(senderID), \(from.description), \(tag), 'scheduled', \(members), \(members),
                        \(request.scheduledAt ?? now), \(now), \(now), \(subject), \(html), \(text), \(submission.replyTo), \(request.tracking))
                """, logger: logger)
            try await AuditLog.record(on: connection, logger: logger, tenantID: tenantID, actor: actor, action: "dm:BatchSendMail",
                                      resource: ResourceName.tenantResource(tenantID: tenantID.lowercasedString, kind: "task",
                                                                            name: id.lowercasedString),
                                      detail: ["members": String(members)])
            return id
        }
    }

    /// What ``BatchDecision/check(from:tag:facts:)`` needs, in one statement: the tenant, the sender and its
    /// domain, the template with its content (read with its status, in one row: the task keeps exactly the
    /// approved version), the list's size and whether the tag exists.
    static func submitFacts(_ connection: PostgresConnection, tenantID: UUID, from: MailAddress, templateID: UUID, listID: UUID, tag: String?,
                            quotaTable: QuotaTable, logger: Logger) async throws -> BatchSubmitFacts {
        let row = try await connection.query("""
            SELECT t.status, t.grade, t.track_opens_clicks, t.trigger_unsubscribe_link, s.id, s.type, d.status, s.reply_to, s.reply_to_status,
                   tp.status, tp.kind, tp.subject, tp.html, tp.body_text, l.member_count,
                   (\(tag)::text IS NULL OR EXISTS (SELECT 1 FROM tags WHERE tenant_id = t.id AND name = \(tag))), t.quota_table::text
            FROM tenants t
            LEFT JOIN senders s ON s.tenant_id = t.id AND s.address = \(from.description)
            LEFT JOIN domains d ON d.id = s.domain_id
            LEFT JOIN templates tp ON tp.tenant_id = t.id AND tp.id = \(templateID)
            LEFT JOIN recipient_lists l ON l.tenant_id = t.id AND l.id = \(listID)
            WHERE t.id = \(tenantID)
            """, logger: logger).decode((String, Int, Bool, Bool, UUID?, String?, String?, String?, String?, String?, String?, String?, String?, String?, Int?, Bool, String?).self)
            .first { _ in true }
        guard let row else { return BatchSubmitFacts(tenant: nil, sender: nil, template: nil, listMembers: nil, tagKnown: false) }
        let (status, grade, track, unsubscribe, senderID, senderType, domainStatus, replyTo, replyToStatus, templateStatus, kind, subject, html, text,
             members, tagKnown, table) = row
        let sender = try senderID.map { id in
            AcceptSenderFacts(id: id, kind: try .stored(senderType ?? ""), replyTo: replyTo, replyToStatus: try .stored(replyToStatus ?? "none"),
                              domainStatus: try .stored(domainStatus ?? ""))
        }
        var template: BatchSubmitFacts.Template?
        if let templateStatus, let kind, let subject {
            template = .init(status: try .stored(templateStatus), kind: try .stored(kind), subject: subject, html: html, text: text)
        }
        return BatchSubmitFacts(tenant: AcceptTenantFacts(status: try .stored(status), grade: grade, trackByDefault: track, triggerUnsubscribeLink: unsubscribe,
                                                          quotas: QuotaTable.stored(table) ?? quotaTable),
                                sender: sender, template: template, listMembers: members, tagKnown: tagKnown)
    }

    /// Claims one due task (any tenant), leased. The due row is picked once (a materialized CTE): a
    /// `LIMIT 1 … SKIP LOCKED` subquery joined to the table may be rescanned by the planner and lock a
    /// further row each time, claiming several tasks of which only the first would be expanded.
    public func claim(now: Date, lease: Duration) async throws -> TaskClaim? {
        let until = now.addingTimeInterval(TimeInterval(lease.components.seconds))
        return try await database.withSystem { connection in
            try await connection.query("""
                WITH due AS MATERIALIZED (
                    SELECT id FROM tasks WHERE status <> 'done' AND scheduled_at <= \(now) AND (locked_until IS NULL OR locked_until < \(now))
                    ORDER BY scheduled_at LIMIT 1 FOR UPDATE SKIP LOCKED
                )
                UPDATE tasks t SET status = 'expanding', locked_until = \(until), updated_at = \(now)
                FROM due WHERE t.id = due.id RETURNING t.id, t.tenant_id, t.subject, t.html, t.body_text
                """, logger: logger).decode((UUID, UUID, String, String?, String?).self).first { _ in true }
                .map { TaskClaim(id: $0.0, tenantID: $0.1, subject: $0.2, html: $0.3, text: $0.4) }
        }
    }

    /// The ids of the tenant's template and recipient list with these names (the Direct Mail API names them).
    public func resolve(tenantID: UUID, template: String, list: String) async throws -> (template: UUID?, list: UUID?) {
        try await database.withTenant(tenantID) { connection in
            let row = try await connection.query("""
                SELECT (SELECT id FROM templates WHERE tenant_id = \(tenantID) AND name = \(template) ORDER BY created_at DESC LIMIT 1),
                       (SELECT id FROM recipient_lists WHERE tenant_id = \(tenantID) AND name = \(list) ORDER BY created_at DESC LIMIT 1)
                """, logger: logger).decode((UUID?, UUID?).self).first { _ in true }
            return (row?.0, row?.1)
        }
    }

    /// Expands the next `chunk` members of a task; answers whether the task is done.
    public func expandChunk(_ task: TaskClaim, chunk: Int, now: Date,
                            unsubscribeLinks: UnsubscribeLinks) async throws -> Bool {
        try await database.withTenant(task.tenantID) { connection in
            let row = try await connection.query("""
                SELECT t.list_id, t.from_address, t.tag, t.last_address, t.status, t.reserved, t.queued, t.created_at, t.reply_to, t.tracking
                FROM tasks t WHERE t.tenant_id = \(task.tenantID) AND t.id = \(task.id) FOR UPDATE OF t
                """, logger: logger).decode((UUID, String, String?, String?, String, Int, Int, Date, String?, Bool?).self).first { _ in true }
            guard let (listID, from, tag, lastAddress, status, reservedBefore, queuedBefore, createdAt, replyTo, tracking) = row, status != "done" else {
                return true
            }
            var members: [(String, String)] = []
            for try await member in try await connection.query("""
                SELECT address, variables::text FROM list_members
                WHERE tenant_id = \(task.tenantID) AND list_id = \(listID) AND (\(lastAddress)::text IS NULL OR address > \(lastAddress))
                ORDER BY address LIMIT \(chunk)
                """, logger: logger).decode((String, String).self) {
                members.append(member)
            }
            let addresses = members.map(\.0)
            let (suppressions, invalid) = try await SendStore.dropFacts(connection, tenantID: task.tenantID, addresses: addresses, logger: logger)
            var dropped = BatchDecision.drops(addresses, listID: listID, tag: tag, suppressions: suppressions, invalid: invalid)
            // Quota: the members to send take the task's reservation first; beyond it (the list grew since the
            // submission) they take what the day has left, and the rest are dropped.
            let sendable = addresses.filter { dropped[$0] == nil }
            var reserved = reservedBefore
            let beyond = BatchDecision.beyondReservation(sendable: sendable.count, queuedBefore: queuedBefore, reserved: reserved)
            if beyond > 0 {
                let (grade, table) = try await connection.query("SELECT grade::int, quota_table::text FROM tenants WHERE id = \(task.tenantID)",
                                                                logger: logger).decode((Int, String?).self).first { _ in true } ?? (1, nil)
                let (day, monthStart) = SendRules.quotaDay(now, timeZone: quotaTimeZone)
                let daily = (QuotaTable.stored(table) ?? quotaTable).daily(grade: grade)
                var quota = try await SendStore.lockQuota(connection, tenantID: task.tenantID, daily: daily, day: day,
                                                          monthStart: monthStart, logger: logger)
                let granted = BatchDecision.admitBeyond(sendable, beyond: beyond, quota: &quota, dropped: &dropped)
                if granted > 0 { try await SendStore.storeQuota(connection, tenantID: task.tenantID, quota: quota, day: day, logger: logger) }
                reserved += granted
            }
            var ids: [UUID] = [], tos: [String] = [], subjects: [String] = [], htmls: [String] = [], texts: [String] = [], headers: [String] = []
            var statuses: [String] = [], reasons: [String] = []
            let scope = "list:" + listID.lowercasedString
            for (address, variablesJSON) in members {
                let id = UUIDv7.make(at: now)
                let variables = (try? JSONDecoder().decode([String: String].self, from: Data(variablesJSON.utf8))) ?? [:]
                let link = unsubscribeLinks.url(tenant: task.tenantID, message: id, scope: scope)
                let rendered = MailTemplate.render(subject: task.subject, html: task.html, text: task.text, variables: variables, unsubscribeURL: link)
                ids.append(id)
                tos.append(address)
                subjects.append(String(rendered.subject.prefix(MailTemplate.maxSubject * 4)))
                htmls.append(rendered.html ?? "")
                texts.append(rendered.text ?? "")
                // RFC 8058 one-click unsubscribe (and the mailto when configured); both fields are DKIM-signed.
                let fields = unsubscribeLinks.headers(tenant: task.tenantID, message: id, scope: scope).map { [$0.0, $0.1] }
                headers.append(String(decoding: try JSONSerialization.data(withJSONObject: fields), as: UTF8.self))
                statuses.append(dropped[address] == nil ? "queued" : "dropped")
                reasons.append(dropped[address] ?? "")
            }
            if !ids.isEmpty {
                try await connection.query("""
                    INSERT INTO messages (id, tenant_id, request_id, task_id, kind, priority, from_address, to_address, reply_to, subject, html, body_text,
                                          headers, tag, status, reason, next_attempt_at, created_at, updated_at, tracking, expires_on)
                    SELECT i, \(task.tenantID), \(task.id), \(task.id), 'batch', \(MailKind.batch.priority), \(from), a, \(replyTo), su, nullif(h, ''),
                           nullif(b, ''), hd::jsonb, \(tag), s, nullif(r, ''), CASE WHEN s = 'queued' THEN \(now) END, \(now), \(now),
                           coalesce(\(tracking)::boolean, (SELECT track_opens_clicks FROM tenants WHERE id = \(task.tenantID))),
                           CASE WHEN s <> 'queued' THEN herald_keep_messages(\(task.tenantID)) END
                    FROM unnest(\(ids)::uuid[], \(tos)::text[], \(subjects)::text[], \(htmls)::text[], \(texts)::text[], \(headers)::text[],
                                \(statuses)::text[], \(reasons)::text[]) AS u(i, a, su, h, b, hd, s, r)
                    """, logger: logger)
                try await connection.query("""
                    INSERT INTO events (tenant_id, message_id, type, data, created_at, expires_on)
                    SELECT \(task.tenantID), i, CASE WHEN s = 'queued' THEN \(EventType.messageAccepted.rawValue) ELSE \(EventType.messageDropped.rawValue) END,
                           herald_message_event(i, a, \(from), \(tag)::text, p_status => s, p_reason => nullif(r, ''), p_task => \(task.id)), \(now),
                           herald_keep_events(\(task.tenantID))
                    FROM unnest(\(ids)::uuid[], \(tos)::text[], \(statuses)::text[], \(reasons)::text[]) AS u(i, a, s, r)
                    """, logger: logger)
            }
            let queued = queuedBefore + statuses.count(where: { $0 == "queued" })
            let done = members.count < chunk
            // The list shrank: the part of the reservation no message took goes back to the day it was taken from.
            let (today, _) = SendRules.quotaDay(now, timeZone: quotaTimeZone)
            let unused = BatchDecision.unusedReservation(done: done, reserved: reserved, queued: queued,
                                                         submittedDay: SendRules.quotaDay(createdAt, timeZone: quotaTimeZone).day, today: today)
            if unused > 0 {
                try await connection.query("""
                    UPDATE quota_usage SET used = greatest(used - \(unused), 0) WHERE tenant_id = \(task.tenantID) AND day = \(today)::date
                    """, logger: logger)
                reserved -= unused
            }
            try await connection.query("""
                UPDATE tasks SET expanded = expanded + \(members.count), last_address = coalesce(\(addresses.last), last_address),
                       status = \(done ? "done" : "expanding"), reserved = \(reserved), queued = \(queued), updated_at = \(now)
                WHERE tenant_id = \(task.tenantID) AND id = \(task.id)
                """, logger: logger)
            return done
        }
    }

    /// A task with its messages counted by status.
    public func get(tenantID: UUID, id: UUID) async throws -> TaskRecord {
        try await database.withTenant(tenantID) { connection in
            let row = try await connection.query("""
                SELECT status, total, expanded, scheduled_at, created_at FROM tasks WHERE tenant_id = \(tenantID) AND id = \(id)
                """, logger: logger).decode((String, Int, Int, Date, Date).self).first { _ in true }
            guard let (status, total, expanded, scheduled, created) = row else { throw HeraldError.notFound("task") }
            var counts: [String: Int] = [:]
            for try await (messageStatus, count) in try await connection.query("""
                SELECT status, count(*)::int FROM messages WHERE tenant_id = \(tenantID) AND task_id = \(id) GROUP BY status
                """, logger: logger).decode((String, Int).self) {
                counts[messageStatus] = count
            }
            return TaskRecord(id: id, status: status, total: total, expanded: expanded, scheduledAt: scheduled, createdAt: created, counts: counts)
        }
    }

    /// The tenant's tasks, newest first, a page at a time (`before`: the last id of the previous page),
    /// optionally of one status, with their template and list names.
    public func list(tenantID: UUID, status: String?, limit: Int, before: UUID?) async throws -> [TaskSummaryRecord] {
        try await database.withTenant(tenantID) { connection in
            var items: [TaskSummaryRecord] = []
            for try await (id, status, template, list, from, tag, total, expanded, scheduled, created) in try await connection.query("""
                SELECT t.id, t.status, coalesce(tp.name, ''), coalesce(l.name, ''), t.from_address, t.tag, t.total, t.expanded,
                       t.scheduled_at, t.created_at
                FROM tasks t
                LEFT JOIN templates tp ON tp.tenant_id = t.tenant_id AND tp.id = t.template_id
                LEFT JOIN recipient_lists l ON l.tenant_id = t.tenant_id AND l.id = t.list_id
                WHERE t.tenant_id = \(tenantID) AND (\(status)::text IS NULL OR t.status = \(status))
                  AND (\(before)::uuid IS NULL OR (t.created_at, t.id) < (SELECT created_at, id FROM tasks WHERE tenant_id = \(tenantID) AND id = \(before)))
                ORDER BY t.created_at DESC, t.id DESC LIMIT \(limit)
                """, logger: logger).decode((UUID, String, String, String, String, String?, Int, Int, Date, Date).self) {
                items.append(TaskSummaryRecord(id: id, status: status, template: template, list: list, from: from, tag: tag, total: total,
                                               expanded: expanded, scheduledAt: scheduled, createdAt: created))
            }
            return items
        }
    }
}

/// A task in a list of tasks.
public struct TaskSummaryRecord: Sendable, Equatable {
    public var id: UUID
    public var status: String
    public var template: String
    public var list: String
    public var from: String
    public var tag: String?
    public var total: Int
    public var expanded: Int
    public var scheduledAt: Date
    public var createdAt: Date
}
