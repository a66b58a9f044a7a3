import Foundation
import HeraldCore
import Logging
import PostgresNIO
import Prometheus

/// A message claimed for delivery.
public struct ClaimedMessage: Sendable {
    public var id: UUID
    public var tenantID: UUID
    public var kind: MessageKind
    public var from: String
    public var fromName: String?
    public var to: String
    public var replyTo: String?
    public var subject: String
    public var html: String?
    public var text: String?
    public var headers: [(name: String, value: String)]
    public var attempts: Int
    public var createdAt: Date
    /// Open and click tracking links go into the HTML part.
    public var tracking = false
    /// A trigger message that gets the one-click unsubscribe link (the tenant's setting when it was accepted).
    public var unsubscribeLink = false
    /// The message as submitted over SMTP, sent as it is (signed, with Herald's fields added on top).
    public var raw: [UInt8]?
}

/// The queue's worker side: claim due messages in batches (`FOR UPDATE SKIP LOCKED`, leased, so
/// several processes share the queue and a dead worker's rows come back), and record attempts in one
/// transaction per batch with their events. No connection is held while mail is being sent.
public struct DeliveryStore: Sendable {
    let database: Database
    /// Hard bounces after which an address joins the tenant's invalid-address list.
    public var invalidAfterHardBounces = InvalidAddressRule.listedAfterHardBounces
    /// The day boundary of the daily figures (the quota's).
    public var quotaTimeZone = TimeZone(identifier: "UTC")!
    /// Counters, when a registry is attached.
    public var metrics: DeliveryMetrics?

    public init(database: Database) {
        self.database = database
    }

    private var logger: Logger { database.logger }

    /// Claims up to `limit` due messages, trigger and system mail first.
    public func claim(worker: String, limit: Int, now: Date, lease: Duration) async throws -> [ClaimedMessage] {
        let until = now.addingTimeInterval(TimeInterval(lease.components.seconds))
        return try await database.withSystem { connection in
            var claimed: [ClaimedMessage] = []
            // Due rows by priority; a frozen or banned tenant's rows that are still due (in flight when it
            // was frozen) are set aside as paused instead of being sent.
            let rows = try await connection.query("""
                WITH due AS (
                    SELECT id FROM messages
                    WHERE expires_on IS NULL
                      AND ((status IN ('queued', 'deferred') AND next_attempt_at <= \(now)) OR (status = 'sending' AND locked_until < \(now)))
                    ORDER BY priority, next_attempt_at LIMIT \(limit) FOR UPDATE SKIP LOCKED
                ), held AS (
                    UPDATE messages m SET status = 'paused', locked_by = NULL, locked_until = NULL, updated_at = \(now)
                    FROM due, tenants t WHERE m.expires_on IS NULL AND m.id = due.id AND t.id = m.tenant_id AND t.status <> 'active'
                )
                UPDATE messages m SET status = 'sending', locked_by = \(worker), locked_until = \(until), attempts = m.attempts + 1, updated_at = \(now)
                FROM due, tenants t
                WHERE m.expires_on IS NULL AND m.id = due.id AND t.id = m.tenant_id AND t.status = 'active'
                RETURNING m.id, m.tenant_id, m.kind, m.from_address, m.from_name, m.to_address, m.reply_to, m.subject, m.html, m.body_text,
                          m.headers::text, m.attempts, m.created_at, m.tracking, m.unsubscribe_link,
                          CASE WHEN m.raw THEN (SELECT r.raw FROM message_raw r WHERE r.tenant_id = m.tenant_id AND r.request_id = m.request_id) END
                """, logger: logger)
            for try await row in rows {
                let (id, tenant, kind, from, fromName, to, replyTo, subject, html, text, headers, attempts, created, tracking, unsubscribeLink, raw) =
                    try row.decode((UUID, UUID, String, String, String?, String, String?, String, String?, String?, String, Int, Date, Bool, Bool,
                                    ByteBuffer?).self)
                let pairs = (try? JSONDecoder().decode([[String]].self, from: Data(headers.utf8))) ?? []
                claimed.append(ClaimedMessage(id: id, tenantID: tenant, kind: try .stored(kind), from: from, fromName: fromName, to: to, replyTo: replyTo,
                                              subject: subject, html: html, text: text,
                                              headers: pairs.compactMap { $0.count == 2 ? ($0[0], $0[1]) : nil },
                                              attempts: attempts, createdAt: created, tracking: tracking, unsubscribeLink: unsubscribeLink,
                                              raw: raw.map { Array(buffer: $0) }))
            }
            metrics?.claimed(claimed.count)
            return claimed
        }
    }

    /// A bounce that came back after the remote server had said 250 (a delivery status notification to the
    /// message's return path): the delivered message becomes `bounced` (or `spam_rejected`), with its
    /// `message.bounced` event (`late: true`), the day's grade figures move from delivered to the failure,
    /// and a hard bounce counts toward the invalid-address list — one statement. Answers whether the
    /// message changed (false when it is unknown, or was not delivered, or already recorded as bounced, or its
    /// recipient is not `recipient`, the address the report was matched against).
    public func recordLateBounce(messageID: UUID, recipient: String, result: DeliveryResult, response: String, now: Date) async throws -> Bool {
        let response = String(response.prefix(1000)), day = SendRules.quotaDay(now, timeZone: quotaTimeZone).day
        guard let event = result.event, result == .spamRejected || result.status == .bounced else { return false }
        let status = result.status.rawValue, invalid = result.isInvalidAddress ? 1 : 0, spam = result == .spamRejected ? 1 : 0
        let listed = result.status == .bounced
        return try await database.withSystem { connection in
            try await connection.query("""
                WITH updated AS (
                    UPDATE messages m SET status = \(status), last_response = \(response), updated_at = \(now)
                    WHERE m.id = \(messageID) AND m.status = 'delivered' AND m.kind <> 'system' AND m.to_address = \(recipient)
                    RETURNING m.tenant_id, m.id, m.to_address, m.from_address, m.tag, m.attempts
                ), logged AS (
                    INSERT INTO events (tenant_id, message_id, type, data, created_at, expires_on)
                    SELECT tenant_id, id, \(event.rawValue), herald_message_event(id, to_address, from_address, tag, p_status => \(status)::text,
                                                                                p_smtp_response => \(response)::text, p_attempts => attempts,
                                                                                p_late => true), \(now), herald_keep_events(tenant_id)
                    FROM updated
                ), counted AS (
                    INSERT INTO tenant_daily_stats AS d (tenant_id, day, sent, delivered, invalid, spam, updated_at)
                    SELECT tenant_id, \(day)::date, 0, 0, \(invalid)::int, \(spam)::int, \(now)
                    FROM updated
                    ON CONFLICT (tenant_id, day) DO UPDATE SET delivered = greatest(d.delivered - 1, 0), invalid = d.invalid + EXCLUDED.invalid,
                        spam = d.spam + EXCLUDED.spam, updated_at = EXCLUDED.updated_at
                ), listed AS (
                    INSERT INTO invalid_addresses AS a (tenant_id, address, hard_bounces, listed)
                    SELECT tenant_id, to_address, 1, 1 >= \(invalidAfterHardBounces) FROM updated WHERE \(listed)
                    ON CONFLICT (tenant_id, address) DO UPDATE SET hard_bounces = a.hard_bounces + 1,
                        listed = a.hard_bounces + 1 >= \(invalidAfterHardBounces), updated_at = now()
                )
                SELECT count(*)::int FROM updated
                """, logger: logger).decode(Int.self).first { _ in true } == 1
        }
    }

    /// A complaint (a feedback-loop report) about a delivered message, recorded once per message: the
    /// `message.complained` event (with the report's Feedback-Type), the recipient suppressed tenant-wide with
    /// source `complaint`, and the day's spam figure (which the grades read) one higher. Answers whether it was
    /// recorded (false: unknown, not delivered, or already complained of).
    public func recordComplaint(messageID: UUID, feedbackType: String, now: Date) async throws -> Bool {
        let day = SendRules.quotaDay(now, timeZone: quotaTimeZone).day, feedbackType = String(feedbackType.prefix(32))
        return try await database.withSystem { connection in
            try await connection.query("""
                WITH fresh AS (
                    SELECT m.tenant_id, m.id, m.to_address, m.from_address, m.tag FROM messages m
                    WHERE m.id = \(messageID) AND m.status = 'delivered' AND m.kind <> 'system'
                      AND NOT EXISTS (SELECT 1 FROM events e WHERE e.tenant_id = m.tenant_id AND e.message_id = m.id
                                                               AND e.type = \(EventType.messageComplained.rawValue))
                ), logged AS (
                    INSERT INTO events (tenant_id, message_id, type, data, created_at, expires_on)
                    SELECT tenant_id, id, \(EventType.messageComplained.rawValue),
                           herald_message_event(id, to_address, from_address, tag, p_status => 'delivered')
                               || jsonb_build_object('feedbackType', \(feedbackType)::text),
                           \(now), herald_keep_events(tenant_id)
                    FROM fresh
                ), counted AS (
                    INSERT INTO tenant_daily_stats AS d (tenant_id, day, sent, delivered, invalid, spam, updated_at)
                    SELECT tenant_id, \(day)::date, 0, 0, 0, 1, \(now) FROM fresh
                    ON CONFLICT (tenant_id, day) DO UPDATE SET spam = d.spam + 1, updated_at = EXCLUDED.updated_at
                ), suppressed AS (
                    INSERT INTO suppressions (tenant_id, address, scope, source, created_at)
                    SELECT tenant_id, to_address, '*', 'complaint', \(now) FROM fresh
                    ON CONFLICT (tenant_id, address, scope) DO NOTHING
                )
                SELECT count(*)::int FROM fresh
                """, logger: logger).decode(Int.self).first { _ in true } == 1
        }
    }

    /// The recipient of a delivered message (nil when the message is unknown or not delivered), for
    /// checking that a late bounce to its return path is about it.
    public func deliveredRecipient(messageID: UUID) async throws -> String? {
        try await database.withSystem { connection in
            try await connection.query("""
                SELECT to_address FROM messages WHERE id = \(messageID) AND status = 'delivered' AND kind <> 'system'
                """, logger: logger).decode(String.self).first { _ in true }
        }
    }

    /// Deletes the submitted text (``ClaimedMessage/raw``) of requests none of whose messages can still be
    /// sent (none queued, deferred, sending or paused); answers how many went. Run now and then.
    @discardableResult
    public func pruneSubmitted(now: Date, minimumAge: TimeInterval = 600) async throws -> Int {
        try await database.withSystem { connection in
            try await connection.query("""
                WITH gone AS (
                    DELETE FROM message_raw r
                    WHERE r.created_at < \(now.addingTimeInterval(-minimumAge))
                      AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.expires_on IS NULL AND m.request_id = r.request_id
                                                                  AND m.tenant_id = r.tenant_id
                                                                  AND m.status IN ('queued', 'deferred', 'sending', 'paused'))
                    RETURNING 1
                )
                SELECT count(*)::int FROM gone
                """, logger: logger).decode(Int.self).first { _ in true } ?? 0
        }
    }

    /// Extends the lease of messages `worker` still holds (a long delivery must not let another worker
    /// take them over). Rows whose outcome is being recorded right now are skipped, not waited for (the
    /// record finishes them; waiting, in another row order than the record's, could deadlock).
    public func renew(worker: String, ids: [UUID], now: Date, lease: Duration) async throws {
        guard !ids.isEmpty else { return }
        let until = now.addingTimeInterval(TimeInterval(lease.components.seconds))
        try await database.withSystem { connection in
            _ = try await connection.query("""
                UPDATE messages SET locked_until = \(until)
                WHERE expires_on IS NULL AND id IN (
                    SELECT id FROM messages
                    WHERE expires_on IS NULL AND id = ANY(\(ids)::uuid[]) AND status = 'sending' AND locked_by = \(worker)
                    FOR UPDATE SKIP LOCKED)
                """, logger: logger)
        }
    }

    /// Records attempts as the worker decided them (``DeliveryAttempt``): status, next attempt time, an
    /// event each, the day's grade figures and hard bounces counted toward the invalid-address list — one
    /// transaction; it decides nothing. Only rows `worker` still holds change: a result that comes after its
    /// lease was lost (and the message was claimed again) writes nothing.
    public func record(_ attempts: [DeliveryAttempt], worker: String, now: Date) async throws {
        guard !attempts.isEmpty else { return }
        var ids: [UUID] = [], statuses: [String] = [], responses: [String] = [], next: [Date] = [], events: [String] = [], invalid: [Bool] = []
        var final: [Bool] = []
        for attempt in attempts {
            ids.append(attempt.messageID)
            statuses.append(attempt.result.status.rawValue)
            responses.append(String(attempt.response.prefix(1000)))
            next.append(attempt.result.nextAttemptAt ?? now)
            events.append(attempt.result.event?.rawValue ?? "")
            invalid.append(attempt.result.isInvalidAddress)
            final.append(attempt.result.status.isFinal)
        }
        let day = SendRules.quotaDay(now, timeZone: quotaTimeZone).day
        try await database.withSystem { connection in
            _ = try await connection.query("""
                WITH updated AS (
                    UPDATE messages m SET status = u.s, locked_by = NULL, locked_until = NULL, updated_at = \(now),
                           last_response = CASE WHEN u.e = '' THEN m.last_response ELSE u.r END,
                           attempts = CASE WHEN u.e = '' THEN m.attempts - 1 ELSE m.attempts END,
                           next_attempt_at = CASE WHEN u.s IN ('deferred', 'queued') THEN u.n END,
                           -- A final message leaves the queue partition for the day its retention ends.
                           expires_on = CASE WHEN u.f THEN herald_keep_messages(m.tenant_id) END
                    FROM unnest(\(ids)::uuid[], \(statuses)::text[], \(responses)::text[], \(next)::timestamptz[], \(events)::text[], \(invalid)::bool[],
                                \(final)::bool[])
                         AS u(i, s, r, n, e, v, f)
                    WHERE m.expires_on IS NULL AND m.id = u.i AND m.status = 'sending' AND m.locked_by = \(worker)
                    RETURNING m.tenant_id, m.id, m.kind, m.to_address, m.from_address, m.tag, m.attempts, u.s, u.r, u.e, u.v
                ), logged AS (
                    INSERT INTO events (tenant_id, message_id, type, data, created_at, expires_on)
                    SELECT tenant_id, id, e, herald_message_event(id, to_address, from_address, tag, p_status => s, p_smtp_response => r,
                                                                  p_attempts => attempts), \(now), herald_keep_events(tenant_id)
                    FROM updated WHERE kind <> 'system' AND e <> ''
                ), counted AS (
                    -- The day's figures of each tenant for its credit grade (final outcomes only), in tenant
                    -- order so that concurrent recorders lock the rows in one order.
                    INSERT INTO tenant_daily_stats AS d (tenant_id, day, sent, delivered, invalid, spam, updated_at)
                    SELECT tenant_id, \(day)::date, count(*), count(*) FILTER (WHERE s = 'delivered'), count(*) FILTER (WHERE v),
                           count(*) FILTER (WHERE s = 'spam_rejected'), \(now)
                    FROM updated WHERE kind <> 'system' AND s IN ('delivered', 'bounced', 'spam_rejected', 'failed')
                    GROUP BY tenant_id ORDER BY tenant_id
                    ON CONFLICT (tenant_id, day) DO UPDATE SET sent = d.sent + EXCLUDED.sent, delivered = d.delivered + EXCLUDED.delivered,
                        invalid = d.invalid + EXCLUDED.invalid, spam = d.spam + EXCLUDED.spam, updated_at = EXCLUDED.updated_at
                )
                INSERT INTO invalid_addresses AS a (tenant_id, address, hard_bounces, listed)
                SELECT tenant_id, to_address, count(*), count(*) >= \(invalidAfterHardBounces)
                FROM updated
                WHERE s = 'bounced' AND kind <> 'system'
                GROUP BY tenant_id, to_address ORDER BY tenant_id, to_address
                ON CONFLICT (tenant_id, address) DO UPDATE SET hard_bounces = a.hard_bounces + EXCLUDED.hard_bounces,
                    listed = a.hard_bounces + EXCLUDED.hard_bounces >= \(invalidAfterHardBounces), updated_at = now()
                """, logger: logger)
        }
        metrics?.recorded(attempts.map(\.result.name))
    }
}

/// The delivery side as Prometheus sees it: messages claimed, outcomes recorded by status, SMTP
/// connections opened and reused.
public struct DeliveryMetrics: Sendable {
    let claimed: Counter
    let outcomes: [String: Counter]
    let opened: Counter
    let reused: Counter

    public init(registry: PrometheusCollectorRegistry) {
        claimed = registry.makeCounter(descriptor: .init(metricName: "herald_delivery_claimed", unitName: "total",
                                                         helpText: "Messages claimed for delivery"))
        let outcome = MetricNameDescriptor(metricName: "herald_delivery_outcomes", unitName: "total", helpText: "Delivery attempts by outcome")
        var outcomes: [String: Counter] = [:]
        let results: [DeliveryResult] = [.delivered, .deferred(until: .distantFuture), .bounced(invalid: false), .spamRejected, .failed,
                                         .released(until: .distantFuture)]
        for status in results.map(\.name) {
            outcomes[status] = registry.makeCounter(descriptor: outcome, labels: [("status", status)])
        }
        self.outcomes = outcomes
        let connections = MetricNameDescriptor(metricName: "herald_smtp_connections", unitName: "total", helpText: "SMTP connections by how they were got")
        opened = registry.makeCounter(descriptor: connections, labels: [("how", "opened")])
        reused = registry.makeCounter(descriptor: connections, labels: [("how", "reused")])
    }

    func recorded(_ statuses: [String]) {
        for (status, count) in Dictionary(grouping: statuses, by: { $0 }).mapValues(\.count) {
            outcomes[status]?.increment(by: Int64(count))
        }
    }

    func claimed(_ count: Int) { claimed.increment(by: Int64(count)) }

    /// A connection got for a delivery: new, or from the idle pool.
    public func connection(reused: Bool) { (reused ? self.reused : opened).increment() }
}

/// Counters of the `smtp` role's listeners: logins, submitted messages and unsubscribe mail, by result.
public struct SMTPListenerMetrics: Sendable {
    let logins: [String: Counter]
    let submissions: [String: Counter]
    let unsubscribes: [String: Counter]

    public init(registry: PrometheusCollectorRegistry) {
        func counters(_ name: String, _ help: String, _ results: [String]) -> [String: Counter] {
            let descriptor = MetricNameDescriptor(metricName: name, unitName: "total", helpText: help)
            return Dictionary(uniqueKeysWithValues: results.map { ($0, registry.makeCounter(descriptor: descriptor, labels: [("result", $0)])) })
        }
        logins = counters("herald_smtp_logins", "SMTP AUTH attempts by result", ["ok", "failed", "limited"])
        submissions = counters("herald_smtp_submissions", "Messages submitted over SMTP by result", ["accepted", "refused", "failed"])
        unsubscribes = counters("herald_inbound_unsubscribes", "Unsubscribe mail received by result", ["unsubscribed", "refused", "failed"])
    }

    public func login(_ result: String) { logins[result]?.increment() }
    public func submission(_ result: String) { submissions[result]?.increment() }
    public func unsubscribe(_ result: String, count: Int = 1) { unsubscribes[result]?.increment(by: Int64(count)) }
}
