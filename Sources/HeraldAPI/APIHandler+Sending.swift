import Foundation
import HeraldCore
import HeraldDelivery
import HeraldStore
import OpenAPIRuntime

/// The accept path of sends, and the suppression list.
extension APIHandler {

    /// The caller of a send: the signed-in principal on the request's client address.
    func sendCaller() throws -> (HeraldRequestContext, SendRequest.Caller) {
        let context = try RequestScope.current()
        return (context, .principal(try context.requirePrincipal(), client: context.clientIP))
    }

    func sendSingleMail(_ input: Operations.SendSingleMail.Input) async throws -> Operations.SendSingleMail.Output {
        guard case .json(let body) = input.body else { throw HeraldError.validation("Send from, to, subject and html and/or text.") }
        var idempotency: SendStore.Idempotency?
        if let key = input.headers.idempotencyKey {
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            idempotency = .init(key: key, bodyHash: SendStore.bodyHash(Array(try encoder.encode(body))))
        }
        let result = try await acceptSingle(SingleSendRequest(
            from: body.from, fromAlias: body.fromAlias, to: body.to, subject: body.subject, html: body.html, text: body.text,
            replyTo: body.replyTo, replyToName: body.replyToName, tag: body.tag, headers: body.headers?.additionalProperties ?? [:], tracking: body.clickTracking),
            idempotency: idempotency)
        return .ok(.init(body: .json(.init(result))))
    }

    /// A single send of the REST API, however its body was read (the generated route, or ``SingleSendRoute``):
    /// the signed-in caller's send on the one accept road.
    func acceptSingle(_ send: SingleSendRequest, idempotency: SendStore.Idempotency?) async throws -> SendResult {
        let (_, caller) = try sendCaller()
        let answer = try await accept.accept(SendRequest(caller: caller, content: .message(send), idempotency: idempotency))
        guard let result = answer.result else { throw HeraldError(code: "Internal", kind: .internal, message: "A send was not answered.") }
        return result
    }

    func addSuppression(_ input: Operations.AddSuppression.Input) async throws -> Operations.AddSuppression.Output {
        guard case .json(let body) = input.body else { throw HeraldError.validation("Send address.") }
        let (tenant, actor) = try caller()
        let record = try await sending.addSuppression(tenantID: tenant, address: body.address, actor: actor)
        return .created(.init(body: .json(.init(record))))
    }

    func listSuppressions(_ input: Operations.ListSuppressions.Input) async throws -> Operations.ListSuppressions.Output {
        let tenant = try caller().tenant
        if input.query.format == .csv {
            let rows = try await sending.listSuppressions(tenantID: tenant, limit: Self.csvRows).map {
                [$0.address, $0.scope, $0.source, Self.csvTime($0.createdAt)]
            }
            return .ok(.init(body: .csv(HTTPBody(CSV.document(header: ["address", "scope", "source", "createdAt"], rows: rows)))))
        }
        return .ok(.init(body: .json(.init(items: try await sending.listSuppressions(tenantID: tenant).map(Components.Schemas.Suppression.init)))))
    }

    /// Most rows of a CSV export.
    static let csvRows = 1_000_000

    /// A time in a CSV export: ISO 8601 in UTC.
    static func csvTime(_ date: Date) -> String { date.ISO8601Format() }

    func removeSuppression(_ input: Operations.RemoveSuppression.Input) async throws -> Operations.RemoveSuppression.Output {
        let (tenant, actor) = try caller()
        try await sending.removeSuppression(tenantID: tenant, address: input.path.address, actor: actor)
        return .noContent(.init())
    }
}

extension Components.Schemas.SendResult {
    init(_ result: SendResult) {
        self.init(requestId: result.requestId.lowercased, messages: result.messages.map { message in
            .init(id: message.id.lowercased, to: message.to, status: message.status == .queued ? .queued : .dropped,
                  reason: message.reason.flatMap { .init(rawValue: $0) })
        })
    }
}

extension Components.Schemas.Suppression {
    init(_ record: SuppressionRecord) {
        self.init(address: record.address, scope: record.scope, source: .init(rawValue: record.source) ?? .api, createdAt: record.createdAt)
    }
}

/// The read side: messages and their events, search, invalid addresses.
extension APIHandler {
    func getMessage(_ input: Operations.GetMessage.Input) async throws -> Operations.GetMessage.Output {
        let (message, events) = try await sending.message(tenantID: try caller().tenant, id: try uuidPath(input.path.id, what: "message"))
        let decoder = JSONDecoder()
        return .ok(.init(body: .json(.init(message: .init(message), events: try events.map { event in
            .init(_type: event.type.rawValue, at: event.at,
                  data: .init(additionalProperties: try decoder.decode(OpenAPIObjectContainer.self, from: Data(event.dataJSON.utf8))))
        }))))
    }

    func searchMessages(_ input: Operations.SearchMessages.Input) async throws -> Operations.SearchMessages.Output {
        let limit = try QueryParameters.limit(input.query.limit)
        let before = try input.query.cursor.map { text throws(HeraldError) -> UUID in
            guard let id = UUID(uuidString: text) else { throw HeraldError.validation("cursor is invalid.", field: "cursor") }
            return id
        }
        let items = try await sending.searchMessages(tenantID: try caller().tenant, to: input.query.to, status: input.query.status.flatMap { MessageStatus(rawValue: $0.rawValue) },
                                                     from: input.query.from, until: input.query.until, limit: limit, before: before)
        return .ok(.init(body: .json(.init(items: items.map(Components.Schemas.MessageSummary.init),
                                           nextCursor: items.count == limit ? items.last?.id.lowercased : nil))))
    }

    func listInvalidAddresses(_ input: Operations.ListInvalidAddresses.Input) async throws -> Operations.ListInvalidAddresses.Output {
        let tenant = try caller().tenant
        if input.query.format == .csv {
            let rows = try await sending.invalidAddresses(tenantID: tenant, limit: Self.csvRows).map {
                [$0.address, String($0.hardBounces), String($0.listed), Self.csvTime($0.updatedAt)]
            }
            return .ok(.init(body: .csv(HTTPBody(CSV.document(header: ["address", "hardBounces", "listed", "updatedAt"], rows: rows)))))
        }
        let items = try await sending.invalidAddresses(tenantID: tenant)
        return .ok(.init(body: .json(.init(items: items.map {
            .init(address: $0.address, hardBounces: $0.hardBounces, listed: $0.listed, updatedAt: $0.updatedAt)
        }))))
    }

    func removeInvalidAddress(_ input: Operations.RemoveInvalidAddress.Input) async throws -> Operations.RemoveInvalidAddress.Output {
        let (tenant, actor) = try caller()
        try await sending.removeInvalidAddress(tenantID: tenant, address: input.path.address, actor: actor)
        return .noContent(.init())
    }
}

extension Components.Schemas.MessageSummary {
    init(_ message: MessageSummaryRecord) {
        self.init(id: message.id.lowercased, from: message.from, to: message.to, subject: message.subject, tag: message.tag,
                  status: .init(rawValue: message.status.rawValue) ?? .queued, reason: message.reason, attempts: message.attempts,
                  lastResponse: message.lastResponse, createdAt: message.createdAt, updatedAt: message.updatedAt)
    }
}

/// Batch sends.
extension APIHandler {
    func sendBatchMail(_ input: Operations.SendBatchMail.Input) async throws -> Operations.SendBatchMail.Output {
        guard case .json(let body) = input.body else { throw HeraldError.validation("Send templateId, listId and from.") }
        let (context, caller) = try sendCaller()
        let answer = try await accept.accept(SendRequest(
            caller: caller, content: .template(.ids(template: body.templateId, list: body.listId),
                                               BatchSendRequest(from: body.from, tag: body.tag, scheduledAt: body.scheduledAt, replyTo: body.replyTo,
                                                                replyToName: body.replyToName, tracking: body.clickTracking)),
            actor: context.auditActor))
        guard case .task(let id) = answer else { throw HeraldError(code: "Internal", kind: .internal, message: "A batch send was not answered.") }
        return .accepted(.init(body: .json(.init(taskId: id.lowercased))))
    }

    func listTasks(_ input: Operations.ListTasks.Input) async throws -> Operations.ListTasks.Output {
        let limit = try QueryParameters.limit(input.query.limit)
        let before = try QueryParameters.uuid(input.query.cursor, "cursor")
        let items = try await batches.list(tenantID: try caller().tenant, status: input.query.status?.rawValue, limit: limit, before: before)
        return .ok(.init(body: .json(.init(items: items.map { task in
            .init(id: task.id.lowercased, status: .init(rawValue: task.status) ?? .scheduled, template: task.template, list: task.list, from: task.from,
                  tag: task.tag, total: task.total, expanded: task.expanded, scheduledAt: task.scheduledAt, createdAt: task.createdAt)
        }, nextCursor: items.count == limit ? items.last?.id.lowercased : nil))))
    }

    func getTask(_ input: Operations.GetTask.Input) async throws -> Operations.GetTask.Output {
        let task = try await batches.get(tenantID: try caller().tenant, id: try uuidPath(input.path.id, what: "task"))
        let count = { (statuses: [String]) in statuses.reduce(0) { $0 + (task.counts[$1] ?? 0) } }
        return .ok(.init(body: .json(.init(id: task.id.lowercased, status: .init(rawValue: task.status) ?? .scheduled, total: task.total,
                                           expanded: task.expanded, queued: count(["queued", "deferred", "sending"]),
                                           delivered: count(["delivered"]), bounced: count(["bounced", "spam_rejected"]),
                                           failed: count(["failed"]), dropped: count(["dropped"]), scheduledAt: task.scheduledAt,
                                           createdAt: task.createdAt))))
    }
}
