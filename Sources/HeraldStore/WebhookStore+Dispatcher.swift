import Foundation
import HeraldCore
import Logging
import PostgresNIO

/// The dispatcher's side: claim, renew, record and the backlog (finished deliveries go with their partition:
/// HistoryStore).
extension WebhookStore {
    /// The body a delivery POSTs, built from its event row `e`: `{"type", "timestamp", "data"}` (the console shows
    /// these same bytes as the delivery's request).
    static let eventBody = """
        json_build_object('type', e.type, 'timestamp', to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                          'data', e.data)::text
        """
}

extension WebhookStore {
    /// Claims up to `limit` due deliveries of enabled endpoints, skipping the endpoints in `excluding`
    /// (those whose share of the dispatcher is full) and rows other dispatchers hold. A claim moves
    /// `next_attempt_at` to the end of the lease.
    public func claim(worker: String, limit: Int, excluding: [UUID], now: Date, lease: Duration) async throws -> [ClaimedWebhookDelivery] {
        let until = now.addingTimeInterval(Double(lease.components.seconds) + Double(lease.components.attoseconds) / 1e18)
        let rows = try await database.withSystem { connection in
            try await Self.queuePlans(connection, logger: logger)
            var rows: [(UUID, UUID, UUID, Int, String, String, String, ByteBuffer, ByteBuffer?, Date?, Date)] = []
            for try await row in try await connection.query("""
                WITH due AS (
                    SELECT d.id FROM webhook_deliveries d
                    WHERE d.expires_on IS NULL AND d.status = 'pending' AND d.next_attempt_at <= \(now) AND NOT (d.endpoint_id = ANY(\(excluding)))
                    ORDER BY d.next_attempt_at LIMIT \(limit)
                    FOR UPDATE SKIP LOCKED
                ), claimed AS (
                    UPDATE webhook_deliveries d SET next_attempt_at = \(until), locked_by = \(worker)
                    FROM due WHERE d.expires_on IS NULL AND d.id = due.id
                    RETURNING d.id, d.tenant_id, d.endpoint_id, d.attempts, d.event_id, d.event_expires
                )
                SELECT c.id, c.tenant_id, c.endpoint_id, c.attempts, e.type,
                       \(unescaped: Self.eventBody),
                       w.url, w.secret_ciphertext, CASE WHEN w.previous_secret_until > \(now) THEN w.previous_secret END, w.previous_secret_until,
                       e.created_at
                FROM claimed c JOIN events e ON e.expires_on = c.event_expires AND e.id = c.event_id
                JOIN webhook_endpoints w ON w.id = c.endpoint_id
                """, logger: logger).decode((UUID, UUID, UUID, Int, String, String, String, ByteBuffer, ByteBuffer?, Date?, Date).self) {
                rows.append(row)
            }
            return rows
        }
        var claimed: [ClaimedWebhookDelivery] = []
        var cache: [UUID: [WebhookSecret]] = [:]
        for (id, tenant, endpoint, attempts, type, body, url, secret, previous, _, eventAt) in rows {
            let keys: [WebhookSecret]
            if let cached = cache[endpoint] {
                keys = cached
            } else {
                var opened = [WebhookSecret(key: try secrets.open(Array(buffer: secret), context: Self.context(endpoint)))]
                if let previous { opened.append(WebhookSecret(key: try secrets.open(Array(buffer: previous), context: Self.context(endpoint)))) }
                cache[endpoint] = opened
                keys = opened
            }
            claimed.append(ClaimedWebhookDelivery(id: id, tenantID: tenant, endpointID: endpoint, attempts: attempts, eventType: type,
                                                  body: Array(body.utf8), url: url, secrets: keys, eventAt: eventAt))
        }
        return claimed
    }

    /// Keeps the claim on deliveries still being worked on.
    public func renew(worker: String, ids: [UUID], now: Date, lease: Duration) async throws {
        guard !ids.isEmpty else { return }
        let until = now.addingTimeInterval(Double(lease.components.seconds))
        try await database.withSystem { connection -> Void in
            try await Self.queuePlans(connection, logger: logger)
            // Rows being recorded right now are skipped, not waited for: the record finishes them, and taking the
            // rows in another order than the record does deadlocked the two (a second lost each time).
            try await connection.query("""
                UPDATE webhook_deliveries d SET next_attempt_at = \(until)
                WHERE d.expires_on IS NULL AND d.id IN (
                    SELECT w.id FROM webhook_deliveries w
                    WHERE w.expires_on IS NULL AND w.id = ANY(\(ids)::uuid[]) AND w.locked_by = \(worker)
                    FOR UPDATE SKIP LOCKED)
                """, logger: logger)
        }
    }

    /// Records attempts in one transaction: each delivery's new state and its attempt log row (only if the
    /// worker still holds it), the endpoints' failure record, and endpoints disabled (answered 410, or
    /// failing for ``disableAfter``) with their `webhook.disabled` event and waiting deliveries cancelled.
    public func record(_ outcomes: [WebhookAttemptOutcome], worker: String, now: Date) async throws {
        guard !outcomes.isEmpty else { return }
        var ids: [UUID] = [], states: [String] = [], next: [Date] = [], statuses: [Int] = [], errors: [String] = []
        var latencies: [Int] = [], responses: [String] = [], times: [Date] = []
        var gone: [UUID] = [], failing = Set<UUID>()
        for outcome in outcomes {
            ids.append(outcome.id)
            switch outcome.decision {
            case .succeeded: states.append("succeeded"); next.append(now)
            case .retry(let at): states.append("pending"); next.append(at); failing.insert(outcome.endpointID)
            case .failed: states.append("failed"); next.append(now); failing.insert(outcome.endpointID)
            case .gone: states.append("failed"); next.append(now); gone.append(outcome.endpointID)
            }
            statuses.append(outcome.httpStatus ?? -1)
            errors.append(outcome.error ?? "")
            latencies.append(outcome.latencyMs)
            responses.append(outcome.response ?? "")
            times.append(outcome.attemptedAt)
        }
        let cutoff = now.addingTimeInterval(-disableAfter)
        let failingEndpoints = Array(failing)
        try await database.withSystem { connection in
            try await Self.queuePlans(connection, logger: logger)
            try await connection.query("""
                WITH u AS (
                    SELECT * FROM unnest(\(ids)::uuid[], \(states)::text[], \(next)::timestamptz[], \(statuses)::int[], \(errors)::text[],
                                         \(latencies)::int[], \(responses)::text[], \(times)::timestamptz[]) AS u(i, s, n, h, e, l, r, t)
                ), updated AS (
                    UPDATE webhook_deliveries d
                    SET status = u.s, attempts = d.attempts + 1, next_attempt_at = u.n, locked_by = NULL, last_attempt_at = u.t,
                        -- A finished delivery leaves the queue partition for the day its retention ends.
                        expires_on = CASE WHEN u.s <> 'pending' THEN herald_keep_webhooks() END,
                        last_http_status = nullif(u.h, -1),
                        last_error = nullif(u.e, ''), last_latency_ms = u.l, last_response = nullif(u.r, ''), updated_at = \(now)
                    -- (locked_by is set on pending rows only; no status test here, which would lead the planner to
                    -- walk the due index instead of the primary key.)
                    FROM u WHERE d.expires_on IS NULL AND d.id = u.i AND d.locked_by = \(worker)
                    RETURNING d.id, d.tenant_id, d.endpoint_id, d.attempts, u.s, u.h, u.e, u.l, u.r, u.t
                ), logged AS (
                    -- Not the common case, a first attempt that succeeded: that one is the last_* columns.
                    INSERT INTO webhook_attempts (tenant_id, delivery_id, attempted_at, http_status, error, latency_ms, response)
                    SELECT tenant_id, id, t, nullif(h, -1), nullif(e, ''), l, nullif(r, '') FROM updated WHERE NOT (s = 'succeeded' AND attempts = 1)
                ), endpoints AS (
                    SELECT endpoint_id, bool_or(s = 'succeeded') AS ok FROM updated GROUP BY endpoint_id
                )
                UPDATE webhook_endpoints w SET failing_since = CASE WHEN x.ok THEN NULL ELSE \(now) END
                FROM endpoints x
                WHERE w.id = x.endpoint_id AND ((x.ok AND w.failing_since IS NOT NULL) OR (NOT x.ok AND w.failing_since IS NULL))
                """, logger: logger)
            guard !gone.isEmpty || !failingEndpoints.isEmpty else { return }
            var disabled: [UUID] = []
            for try await id in try await connection.query("""
                WITH off AS (
                    UPDATE webhook_endpoints w
                    SET enabled = false, disabled_reason = CASE WHEN w.id = ANY(\(gone)) THEN 'gone' ELSE 'failing' END, updated_at = \(now)
                    WHERE w.enabled AND (w.id = ANY(\(gone)) OR (w.id = ANY(\(failingEndpoints)) AND w.failing_since <= \(cutoff)))
                    RETURNING w.id, w.tenant_id, w.url, w.disabled_reason, w.failing_since
                ), notified AS (
                    INSERT INTO events (tenant_id, type, data, created_at, expires_on)
                    SELECT tenant_id, 'webhook.disabled',
                           jsonb_strip_nulls(jsonb_build_object('webhookId', id, 'url', url, 'reason', disabled_reason, 'failingSince', failing_since)), \(now),
                           herald_keep_events(tenant_id)
                    FROM off
                )
                SELECT id FROM off
                """, logger: logger).decode(UUID.self) { disabled.append(id) }
            if !disabled.isEmpty { try await Self.cancelPending(connection, logger: logger, endpoints: disabled, now: now) }
        }
    }

    /// The claim, the outcome update and the renewal touch a few hundred rows of a table whose due rows
    /// may be many: with the row-level-security filter the planner misjudges that and sorts, bitmap-scans
    /// or hash-joins every due row (35 ms instead of 9 for a 500-row claim from 50,000). For these
    /// transactions: index order and nested loops over the primary key.
    static func queuePlans(_ connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query("""
            SELECT set_config('enable_sort', 'off', true), set_config('enable_bitmapscan', 'off', true), set_config('enable_seqscan', 'off', true),
                   set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)
            """, logger: logger)
    }

    static func cancelPending(_ connection: PostgresConnection, logger: Logger, endpoints: [UUID], now: Date) async throws {
        try await connection.query("""
            UPDATE webhook_deliveries SET status = 'cancelled', locked_by = NULL, updated_at = \(now), expires_on = herald_keep_webhooks()
            WHERE expires_on IS NULL AND endpoint_id = ANY(\(endpoints)) AND status = 'pending'
            """, logger: logger)
    }

    /// Deliveries waiting by state, for the backlog gauge: due now, being sent, waiting for a retry.
    public func backlog(now: Date) async throws -> (due: Int, inFlight: Int, retrying: Int) {
        try await database.withSystem { connection in
            let row = try await connection.query("""
                SELECT count(*) FILTER (WHERE locked_by IS NULL AND next_attempt_at <= \(now)),
                       count(*) FILTER (WHERE locked_by IS NOT NULL),
                       count(*) FILTER (WHERE locked_by IS NULL AND next_attempt_at > \(now))
                FROM webhook_deliveries WHERE expires_on IS NULL AND status = 'pending'
                """, logger: logger).decode((Int, Int, Int).self).first { _ in true }
            return row ?? (0, 0, 0)
        }
    }
}
