import Foundation
import HeraldCore
import HeraldStore

/// The accept path of sends, and the suppression list.
extension APIHandler {
    func sendSingleMail(_ input: Operations.SendSingleMail.Input) async throws -> Operations.SendSingleMail.Output {
        guard case .json(let body) = input.body else { throw HeraldError.validation("Send from, to, subject and html and/or text.") }
        let context = try RequestScope.current()
        let principal = try context.requirePrincipal()
        // SPEC §3 order: account status (frozen is checked again in the transaction), IP protection, then the request.
        if principal.tenantStatus == .frozen { throw HeraldError.accountFrozen }
        let protection = try await identity.ipProtection(tenantID: principal.tenantID)
        try IPProtectionGuard.check(client: context.clientIP, allowlist: try IPAllowlist.parse(enabled: protection.enabled, entries: protection.allow))
        let send = try SendRules.validate(SingleSendRequest(
            from: body.from, fromAlias: body.fromAlias, to: body.to, subject: body.subject, html: body.html, text: body.text,
            replyTo: body.replyTo, tag: body.tag, headers: body.headers?.additionalProperties ?? [:]))
        var idempotency: SendStore.Idempotency?
        if let key = input.headers.idempotencyKey {
            guard (1...128).contains(key.utf8.count), key.utf8.allSatisfy({ $0 > 32 && $0 < 127 }) else {
                throw HeraldError.validation("Idempotency-Key must be 1 to 128 printable ASCII characters.", field: "Idempotency-Key")
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            idempotency = .init(key: key, bodyHash: SendStore.bodyHash(Array(try encoder.encode(body))))
        }
        let (result, _) = try await sending.acceptSingle(tenantID: principal.tenantID, send: send, idempotency: idempotency, now: now())
        return .ok(.init(body: .json(.init(requestId: result.requestId.lowercased, messages: result.messages.map { message in
            .init(id: message.id.lowercased, to: message.to, status: message.status == "queued" ? .queued : .dropped,
                  reason: message.reason.flatMap { .init(rawValue: $0) })
        }))))
    }

    func addSuppression(_ input: Operations.AddSuppression.Input) async throws -> Operations.AddSuppression.Output {
        guard case .json(let body) = input.body else { throw HeraldError.validation("Send address.") }
        let (tenant, actor) = try caller()
        let record = try await sending.addSuppression(tenantID: tenant, address: body.address, actor: actor)
        return .created(.init(body: .json(.init(record))))
    }

    func listSuppressions(_ input: Operations.ListSuppressions.Input) async throws -> Operations.ListSuppressions.Output {
        .ok(.init(body: .json(.init(items: try await sending.listSuppressions(tenantID: try caller().tenant).map(Components.Schemas.Suppression.init)))))
    }

    func removeSuppression(_ input: Operations.RemoveSuppression.Input) async throws -> Operations.RemoveSuppression.Output {
        let (tenant, actor) = try caller()
        try await sending.removeSuppression(tenantID: tenant, address: input.path.address, actor: actor)
        return .noContent(.init())
    }
}

extension Components.Schemas.Suppression {
    init(_ record: SuppressionRecord) {
        self.init(address: record.address, scope: record.scope, source: .init(rawValue: record.source) ?? .api, createdAt: record.createdAt)
    }
}
