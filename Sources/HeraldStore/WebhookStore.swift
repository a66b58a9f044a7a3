import Foundation
import HeraldCore
import Logging
import PostgresNIO

/// Webhook endpoints, their deliveries and attempt log; the dispatcher's claim, renew, record and prune.
/// Deliveries are created by the fan-out trigger on `events` (migration 0014), never here, except the
/// `webhook.test` event that goes to one endpoint only.
///
/// This file holds the endpoints (register, list, update, delete, rotate the secret); the delivery log,
/// replay and test event are in `WebhookStore+Deliveries.swift`, the dispatcher's claim, renew, record,
/// prune and backlog in `WebhookStore+Dispatcher.swift`, the records they answer in `WebhookStore+Records.swift`.
public struct WebhookStore: Sendable {
    let database: Database
    let secrets: SecretBox
    /// How long a rotated-out secret is still signed with.
    public var rotationOverlap: TimeInterval = 86_400
    /// An endpoint failing for this long without a success is disabled.
    public var disableAfter: TimeInterval = 5 * 86_400
    /// Most endpoints one tenant may register.
    public var maxEndpoints = 20

    public init(database: Database, secrets: SecretBox) {
        self.database = database
        self.secrets = secrets
    }

    var logger: Logger { database.logger }

    static func resource(_ tenantID: UUID, _ id: UUID) -> String {
        ResourceName.tenantResource(tenantID: tenantID.lowercasedString, kind: "webhook", name: id.lowercasedString)
    }

    static func context(_ id: UUID) -> String { "webhook:\(id.lowercasedString)" }

    static let columns = "id, url, array_to_string(event_types, ','), enabled, disabled_reason, failing_since, previous_secret_until, created_at, updated_at"

    static func records(_ rows: PostgresRowSequence) async throws -> [WebhookRecord] {
        var result: [WebhookRecord] = []
        for try await (id, url, types, enabled, reason, failing, previous, created, updated)
            in rows.decode((UUID, String, String, Bool, String?, Date?, Date?, Date, Date).self) {
            result.append(WebhookRecord(id: id, url: url, eventTypes: types.split(separator: ",").map(String.init), enabled: enabled,
                                        disabledReason: reason, failingSince: failing, previousSecretExpiresAt: previous,
                                        createdAt: created, updatedAt: updated))
        }
        return result
    }

    func load(_ connection: PostgresConnection, tenantID: UUID, id: UUID) async throws -> WebhookRecord {
        guard let record = try await Self.records(try await connection.query("""
            SELECT \(unescaped: Self.columns) FROM webhook_endpoints WHERE tenant_id = \(tenantID) AND id = \(id)
            """, logger: logger)).first else { throw HeraldError.notFound("webhook") }
        return record
    }

    /// Registers an endpoint (its URL already checked by the caller's guard); answers it with its secret,
    /// shown this once.
    public func create(tenantID: UUID, url: String, eventTypes: [String], enabled: Bool, actor: AuditActor, now: Date) async throws -> (WebhookRecord, WebhookSecret) {
        let id = UUIDv7.make()
        let secret = WebhookSecret.generate()
        let sealed = ByteBuffer(bytes: secrets.seal(secret.key, context: Self.context(id)))
        let record = try await database.withTenant(tenantID) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(hashtext('webhooks:' || \(tenantID.uuidString)))", logger: logger)
            let count = try await connection.query("SELECT count(*) FROM webhook_endpoints WHERE tenant_id = \(tenantID)", logger: logger)
                .decode(Int.self).first { _ in true } ?? 0
            guard count < maxEndpoints else {
                throw HeraldError.limitExceeded("A tenant can have at most \(maxEndpoints) webhook endpoints (limit: webhooks).")
            }
            try await connection.query("""
                INSERT INTO webhook_endpoints (id, tenant_id, url, event_types, enabled, disabled_reason, secret_ciphertext, created_at, updated_at)
                VALUES (\(id), \(tenantID), \(url), \(eventTypes), \(enabled), \(enabled ? nil : "tenant"), \(sealed), \(now), \(now))
                """, logger: logger)
            try await AuditLog.record(on: connection, logger: logger, tenantID: tenantID, actor: actor, action: "dm:CreateWebhook",
                                      resource: Self.resource(tenantID, id), detail: ["url": url, "eventTypes": eventTypes.joined(separator: ",")])
            return try await load(connection, tenantID: tenantID, id: id)
        }
        return (record, secret)
    }

    public func list(tenantID: UUID) async throws -> [WebhookRecord] {
        try await database.withTenant(tenantID) { connection in
            try await Self.records(try await connection.query("""
                SELECT \(unescaped: Self.columns) FROM webhook_endpoints WHERE tenant_id = \(tenantID) ORDER BY created_at, id
                """, logger: logger))
        }
    }

    public func get(tenantID: UUID, id: UUID) async throws -> WebhookRecord {
        try await database.withTenant(tenantID) { try await load($0, tenantID: tenantID, id: id) }
    }

    /// Changes the URL, the event types or the enabled flag. Disabling cancels what is still waiting;
    /// enabling again starts with a clean failure record.
    public func update(tenantID: UUID, id: UUID, url: String?, eventTypes: [String]?, enabled: Bool?, actor: AuditActor, now: Date) async throws -> WebhookRecord {
        try await database.withTenant(tenantID) { connection in
            let current = try await load(connection, tenantID: tenantID, id: id)
            let newURL = url ?? current.url
            let newTypes = eventTypes ?? current.eventTypes
            let newEnabled = enabled ?? current.enabled
            try await connection.query("""
                UPDATE webhook_endpoints
                SET url = \(newURL), event_types = \(newTypes), enabled = \(newEnabled),
                    disabled_reason = CASE WHEN \(newEnabled) THEN NULL WHEN enabled THEN 'tenant' ELSE disabled_reason END,
                    failing_since = CASE WHEN \(newEnabled) AND NOT enabled THEN NULL ELSE failing_since END, updated_at = \(now)
                WHERE tenant_id = \(tenantID) AND id = \(id)
                """, logger: logger)
            if current.enabled && !newEnabled {
                try await Self.cancelPending(connection, logger: logger, endpoints: [id], now: now)
            }
            var detail: [String: String] = [:]
            if let url { detail["url"] = url }
            if let eventTypes { detail["eventTypes"] = eventTypes.joined(separator: ",") }
            if let enabled { detail["enabled"] = "\(enabled)" }
            try await AuditLog.record(on: connection, logger: logger, tenantID: tenantID, actor: actor, action: "dm:UpdateWebhook",
                                      resource: Self.resource(tenantID, id), detail: detail)
            return try await load(connection, tenantID: tenantID, id: id)
        }
    }

    public func delete(tenantID: UUID, id: UUID, actor: AuditActor) async throws {
        try await database.withTenant(tenantID) { connection in
            // The attempt log first (it has no foreign key to its deliveries, which are partitioned); the
            // deliveries go with the endpoint (ON DELETE CASCADE).
            try await connection.query("""
                DELETE FROM webhook_attempts a USING webhook_deliveries d
                WHERE a.tenant_id = \(tenantID) AND d.tenant_id = \(tenantID) AND d.endpoint_id = \(id) AND a.delivery_id = d.id
                """, logger: logger)
            let deleted = try await connection.query("DELETE FROM webhook_endpoints WHERE tenant_id = \(tenantID) AND id = \(id) RETURNING id",
                                                     logger: logger).decode(UUID.self).first { _ in true }
            guard deleted != nil else { throw HeraldError.notFound("webhook") }
            try await AuditLog.record(on: connection, logger: logger, tenantID: tenantID, actor: actor, action: "dm:DeleteWebhook",
                                      resource: Self.resource(tenantID, id))
        }
    }

    /// A new secret; the old one is still signed with (a second signature) for ``rotationOverlap``.
    public func rotateSecret(tenantID: UUID, id: UUID, actor: AuditActor, now: Date) async throws -> (WebhookRecord, WebhookSecret) {
        let secret = WebhookSecret.generate()
        let sealed = ByteBuffer(bytes: secrets.seal(secret.key, context: Self.context(id)))
        let until = now.addingTimeInterval(rotationOverlap)
        let record = try await database.withTenant(tenantID) { connection in
            let updated = try await connection.query("""
                UPDATE webhook_endpoints SET previous_secret = secret_ciphertext, previous_secret_until = \(until), secret_ciphertext = \(sealed),
                                             updated_at = \(now)
                WHERE tenant_id = \(tenantID) AND id = \(id) RETURNING id
                """, logger: logger).decode(UUID.self).first { _ in true }
            guard updated != nil else { throw HeraldError.notFound("webhook") }
            try await AuditLog.record(on: connection, logger: logger, tenantID: tenantID, actor: actor, action: "dm:RotateWebhookSecret",
                                      resource: Self.resource(tenantID, id))
            return try await load(connection, tenantID: tenantID, id: id)
        }
        return (record, secret)
    }
}
