import Foundation
import HeraldCore
import Logging
import PostgresNIO

/// The tenant's view of an endpoint's deliveries: the delivery log with each attempt, replay and the
/// test event.
extension WebhookStore {
    static let deliveryColumns = """
        d.id, d.event_id, e.type, d.status, d.attempts, CASE WHEN d.status = 'pending' THEN d.next_attempt_at END, d.last_http_status,
        d.last_error, d.last_latency_ms, d.last_response, d.last_attempt_at, d.created_at, d.updated_at
        """

    func deliveries(_ connection: PostgresConnection, tenantID: UUID, rows: PostgresRowSequence) async throws -> [WebhookDeliveryRecord] {
        var result: [WebhookDeliveryRecord] = []
        var lastAttempts: [WebhookAttemptRecord?] = []
        for try await (id, event, type, status, attempts, next, http, error, latency, response, lastAt, created, updated)
            in rows.decode((UUID, Int64, String, String, Int, Date?, Int?, String?, Int?, String?, Date?, Date, Date).self) {
            result.append(WebhookDeliveryRecord(id: id, eventID: event, eventType: type, status: status, attempts: attempts, nextAttemptAt: next,
                                                lastHTTPStatus: http, lastError: error, lastLatencyMs: latency, lastResponse: response,
                                                createdAt: created, updatedAt: updated, attemptLog: []))
            lastAttempts.append(lastAt.map { WebhookAttemptRecord(at: $0, httpStatus: http, error: error, latencyMs: latency ?? 0, response: response) })
        }
        guard !result.isEmpty else { return result }
        let index = Dictionary(uniqueKeysWithValues: result.enumerated().map { ($1.id, $0) })
        for try await (delivery, at, http, error, latency, response) in try await connection.query("""
            SELECT delivery_id, attempted_at, http_status, error, latency_ms, response FROM webhook_attempts
            WHERE tenant_id = \(tenantID) AND delivery_id = ANY(\(result.map(\.id))) ORDER BY delivery_id, attempted_at
            """, logger: logger).decode((UUID, Date, Int?, String?, Int, String?).self) {
            if let position = index[delivery] {
                result[position].attemptLog.append(WebhookAttemptRecord(at: at, httpStatus: http, error: error, latencyMs: latency, response: response))
            }
        }
        // A first attempt that succeeded has no row of its own: it is the delivery's last_* columns.
        for position in result.indices where result[position].attemptLog.count < result[position].attempts {
            if let last = lastAttempts[position] { result[position].attemptLog.append(last) }
        }
        return result
    }

    /// The endpoint's deliveries, newest event first, `limit` at a time: `before` is the last id of the
    /// previous page. `status` filters.
    public func deliveries(tenantID: UUID, endpointID: UUID, status: String?, before: UUID?, limit: Int) async throws -> [WebhookDeliveryRecord] {
        try await database.withTenant(tenantID) { connection in
            _ = try await load(connection, tenantID: tenantID, id: endpointID)
            let rows = try await connection.query("""
                SELECT \(unescaped: Self.deliveryColumns)
                FROM webhook_deliveries d JOIN events e ON e.expires_on = d.event_expires AND e.id = d.event_id
                WHERE d.tenant_id = \(tenantID) AND d.endpoint_id = \(endpointID) AND (\(status)::text IS NULL OR d.status = \(status))
                  AND (\(before)::uuid IS NULL OR d.event_id < (SELECT event_id FROM webhook_deliveries WHERE tenant_id = \(tenantID) AND id = \(before)))
                ORDER BY d.event_id DESC LIMIT \(limit)
                """, logger: logger)
            return try await deliveries(connection, tenantID: tenantID, rows: rows)
        }
    }

    func delivery(_ connection: PostgresConnection, tenantID: UUID, id: UUID) async throws -> WebhookDeliveryRecord {
        let rows = try await connection.query("""
            SELECT \(unescaped: Self.deliveryColumns) FROM webhook_deliveries d JOIN events e ON e.expires_on = d.event_expires AND e.id = d.event_id
            WHERE d.tenant_id = \(tenantID) AND d.id = \(id)
            """, logger: logger)
        guard let record = try await deliveries(connection, tenantID: tenantID, rows: rows).first else { throw HeraldError.notFound("webhook delivery") }
        return record
    }

    /// Sends a delivery again now (replay), whatever became of it, keeping its `webhook-id`. One that is
    /// on the wire right now cannot be replayed until its attempt ends.
    public func retry(tenantID: UUID, endpointID: UUID, deliveryID: UUID, actor: AuditActor, now: Date) async throws -> WebhookDeliveryRecord {
        try await database.withTenant(tenantID) { connection in
            let endpoint = try await load(connection, tenantID: tenantID, id: endpointID)
            guard endpoint.enabled else {
                throw HeraldError.conflict("Webhook.Disabled", "The webhook endpoint is disabled; enable it before replaying deliveries.")
            }
            let state = try await connection.query("""
                SELECT locked_by IS NOT NULL FROM webhook_deliveries WHERE tenant_id = \(tenantID) AND endpoint_id = \(endpointID) AND id = \(deliveryID)
                FOR UPDATE
                """, logger: logger).decode(Bool.self).first { _ in true }
            guard let inFlight = state else { throw HeraldError.notFound("webhook delivery") }
            guard !inFlight else { throw HeraldError.conflict("Webhook.DeliveryInFlight", "The delivery is being sent right now; try again in a moment.") }
            // A first attempt that succeeded lives only in the last_* columns, which the replay will overwrite:
            // keep it in the log first.
            try await connection.query("""
                INSERT INTO webhook_attempts (tenant_id, delivery_id, attempted_at, http_status, error, latency_ms, response)
                SELECT tenant_id, id, last_attempt_at, last_http_status, last_error, coalesce(last_latency_ms, 0), last_response
                FROM webhook_deliveries d
                WHERE d.tenant_id = \(tenantID) AND d.id = \(deliveryID) AND d.last_attempt_at IS NOT NULL
                  AND d.attempts > (SELECT count(*) FROM webhook_attempts a WHERE a.tenant_id = \(tenantID) AND a.delivery_id = d.id)
                """, logger: logger)
            try await connection.query("""
                UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = \(now), updated_at = \(now), expires_on = NULL
                WHERE tenant_id = \(tenantID) AND id = \(deliveryID)
                """, logger: logger)
            try await AuditLog.record(on: connection, logger: logger, tenantID: tenantID, actor: actor, action: "dm:RetryWebhookDelivery",
                                      resource: Self.resource(tenantID, endpointID), detail: ["delivery": deliveryID.lowercasedString])
            return try await delivery(connection, tenantID: tenantID, id: deliveryID)
        }
    }

    /// Queues a `webhook.test` event for this endpoint only.
    public func test(tenantID: UUID, endpointID: UUID, now: Date) async throws -> WebhookDeliveryRecord {
        try await database.withTenant(tenantID) { connection in
            let endpoint = try await load(connection, tenantID: tenantID, id: endpointID)
            guard endpoint.enabled else { throw HeraldError.conflict("Webhook.Disabled", "The webhook endpoint is disabled; enable it first.") }
            let id = UUIDv7.make()
            try await connection.query("""
                WITH event AS (
                    INSERT INTO events (tenant_id, type, data, created_at)
                    VALUES (\(tenantID), 'webhook.test', jsonb_build_object('webhookId', \(endpointID), 'message', 'This is a test event from Herald.'), \(now))
                    RETURNING id, expires_on
                )
                INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, event_id, event_expires, next_attempt_at, created_at, updated_at)
                SELECT \(id), \(tenantID), \(endpointID), id, expires_on, \(now), \(now), \(now) FROM event
                """, logger: logger)
            return try await delivery(connection, tenantID: tenantID, id: id)
        }
    }
}
