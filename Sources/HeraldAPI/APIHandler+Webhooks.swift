import Foundation
import HeraldCore
import HeraldStore
import HeraldWebhooks
import OpenAPIRuntime

/// Webhook endpoints (`/v1/webhooks`), their delivery log, replay and test events.
extension APIHandler {
    func createWebhook(_ input: Operations.CreateWebhook.Input) async throws -> Operations.CreateWebhook.Output {
        guard case .json(let body) = input.body else { throw HeraldError.validation("Send url and eventTypes.") }
        let (tenant, actor) = try caller()
        let types = try WebhookEventTypes.validate(body.eventTypes)
        let checked = try await webhookGuard.check(body.url)
        let (record, secret) = try await webhooks.create(tenantID: tenant, url: checked.target.url, eventTypes: types, enabled: body.enabled ?? true,
                                                         actor: actor, now: now())
        return .created(.init(body: .json(.init(record, secret: secret))))
    }

    func listWebhooks(_ input: Operations.ListWebhooks.Input) async throws -> Operations.ListWebhooks.Output {
        .ok(.init(body: .json(.init(items: try await webhooks.list(tenantID: try caller().tenant).map { .init($0) }))))
    }

    func getWebhook(_ input: Operations.GetWebhook.Input) async throws -> Operations.GetWebhook.Output {
        .ok(.init(body: .json(.init(try await webhooks.get(tenantID: try caller().tenant, id: try uuidPath(input.path.id, what: "webhook"))))))
    }

    func updateWebhook(_ input: Operations.UpdateWebhook.Input) async throws -> Operations.UpdateWebhook.Output {
        guard case .json(let body) = input.body else { throw HeraldError.validation("Send url, eventTypes or enabled.") }
        let (tenant, actor) = try caller()
        let id = try uuidPath(input.path.id, what: "webhook")
        let types = try body.eventTypes.map { types throws(HeraldError) in try WebhookEventTypes.validate(types) }
        var url: String?
        if let text = body.url { url = try await webhookGuard.check(text).target.url }
        let record = try await webhooks.update(tenantID: tenant, id: id, url: url, eventTypes: types, enabled: body.enabled, actor: actor, now: now())
        return .ok(.init(body: .json(.init(record))))
    }

    func deleteWebhook(_ input: Operations.DeleteWebhook.Input) async throws -> Operations.DeleteWebhook.Output {
        let (tenant, actor) = try caller()
        try await webhooks.delete(tenantID: tenant, id: try uuidPath(input.path.id, what: "webhook"), actor: actor)
        return .noContent(.init())
    }

    func rotateWebhookSecret(_ input: Operations.RotateWebhookSecret.Input) async throws -> Operations.RotateWebhookSecret.Output {
        let (tenant, actor) = try caller()
        let (record, secret) = try await webhooks.rotateSecret(tenantID: tenant, id: try uuidPath(input.path.id, what: "webhook"), actor: actor, now: now())
        return .ok(.init(body: .json(.init(record, secret: secret))))
    }

    func listWebhookDeliveries(_ input: Operations.ListWebhookDeliveries.Input) async throws -> Operations.ListWebhookDeliveries.Output {
        let tenant = try caller().tenant
        let id = try uuidPath(input.path.id, what: "webhook")
        let limit = input.query.limit ?? 50
        guard (1...200).contains(limit) else { throw HeraldError.validation("limit must be from 1 to 200.", field: "limit") }
        var before: UUID?
        if let text = input.query.before {
            guard let cursor = UUID(uuidString: text) else { throw HeraldError.validation("before must be a delivery id from the previous page.", field: "before") }
            before = cursor
        }
        let items = try await webhooks.deliveries(tenantID: tenant, endpointID: id, status: input.query.status?.rawValue, before: before, limit: limit)
        return .ok(.init(body: .json(.init(items: items.map(Components.Schemas.WebhookDelivery.init),
                                           nextBefore: items.count == limit ? items.last?.id.lowercasedString : nil))))
    }

    func retryWebhookDelivery(_ input: Operations.RetryWebhookDelivery.Input) async throws -> Operations.RetryWebhookDelivery.Output {
        let (tenant, actor) = try caller()
        let record = try await webhooks.retry(tenantID: tenant, endpointID: try uuidPath(input.path.id, what: "webhook"),
                                              deliveryID: try uuidPath(input.path.did, what: "webhook delivery"), actor: actor, now: now())
        return .accepted(.init(body: .json(.init(record))))
    }

    func testWebhook(_ input: Operations.TestWebhook.Input) async throws -> Operations.TestWebhook.Output {
        let tenant = try caller().tenant
        let record = try await webhooks.test(tenantID: tenant, endpointID: try uuidPath(input.path.id, what: "webhook"), now: now())
        return .accepted(.init(body: .json(.init(record))))
    }
}

extension Components.Schemas.Webhook {
    init(_ record: WebhookRecord, secret: WebhookSecret? = nil) {
        self.init(id: record.id.lowercasedString, url: record.url, eventTypes: record.eventTypes, enabled: record.enabled,
                  disabledReason: record.disabledReason.flatMap(DisabledReasonPayload.init(rawValue:)), failingSince: record.failingSince,
                  previousSecretExpiresAt: record.previousSecretExpiresAt, secret: secret?.description, createdAt: record.createdAt,
                  updatedAt: record.updatedAt)
    }
}

extension Components.Schemas.WebhookDelivery {
    init(_ record: WebhookDeliveryRecord) {
        self.init(id: record.id.lowercasedString, eventId: record.eventID, eventType: record.eventType,
                  status: StatusPayload(rawValue: record.status) ?? .pending, attempts: record.attempts, nextAttemptAt: record.nextAttemptAt,
                  lastHttpStatus: record.lastHTTPStatus, lastError: record.lastError, lastLatencyMs: record.lastLatencyMs,
                  lastResponse: record.lastResponse, createdAt: record.createdAt, updatedAt: record.updatedAt,
                  attemptLog: record.attemptLog.map {
                      Components.Schemas.WebhookAttempt(at: $0.at, httpStatus: $0.httpStatus, error: $0.error, latencyMs: $0.latencyMs, response: $0.response)
                  })
    }
}
