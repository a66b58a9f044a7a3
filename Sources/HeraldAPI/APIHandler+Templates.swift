import Foundation
import HeraldCore
import HeraldStore

/// Templates: tenants write and submit; the operator reviews.
extension APIHandler {
    static func content(_ body: Components.Schemas.TemplateContent) -> TemplateContent {
        TemplateContent(name: body.name, kind: body._type == .trigger ? .trigger : .batch, subject: body.subject, html: body.html, text: body.text)
    }

    func createTemplate(_ input: Operations.CreateTemplate.Input) async throws -> Operations.CreateTemplate.Output {
        guard case .json(let body) = input.body else { throw HeraldError.validation("Send name, subject and html and/or text.") }
        let (tenant, actor) = try caller()
        return .created(.init(body: .json(.init(try await templates.create(tenantID: tenant, content: Self.content(body), actor: actor)))))
    }

    func listTemplates(_ input: Operations.ListTemplates.Input) async throws -> Operations.ListTemplates.Output {
        let items = try await templates.list(tenantID: try caller().tenant, status: input.query.status.flatMap { MailTemplate.Status(rawValue: $0.rawValue) })
        return .ok(.init(body: .json(.init(items: items.map(Components.Schemas.Template.init)))))
    }

    func getTemplate(_ input: Operations.GetTemplate.Input) async throws -> Operations.GetTemplate.Output {
        .ok(.init(body: .json(.init(try await templates.get(tenantID: try caller().tenant, id: try uuidPath(input.path.id, what: "template"))))))
    }

    func updateTemplate(_ input: Operations.UpdateTemplate.Input) async throws -> Operations.UpdateTemplate.Output {
        guard case .json(let body) = input.body else { throw HeraldError.validation("Send name, subject and html and/or text.") }
        let (tenant, actor) = try caller()
        let template = try await templates.update(tenantID: tenant, id: try uuidPath(input.path.id, what: "template"), content: Self.content(body),
                                                  actor: actor, now: now())
        return .ok(.init(body: .json(.init(template))))
    }

    func deleteTemplate(_ input: Operations.DeleteTemplate.Input) async throws -> Operations.DeleteTemplate.Output {
        let (tenant, actor) = try caller()
        try await templates.delete(tenantID: tenant, id: try uuidPath(input.path.id, what: "template"), actor: actor)
        return .noContent(.init())
    }

    func submitTemplate(_ input: Operations.SubmitTemplate.Input) async throws -> Operations.SubmitTemplate.Output {
        let (tenant, actor) = try caller()
        return .ok(.init(body: .json(.init(try await templates.submit(tenantID: tenant, id: try uuidPath(input.path.id, what: "template"),
                                                                      actor: actor, now: now())))))
    }

    func previewTemplate(_ input: Operations.PreviewTemplate.Input) async throws -> Operations.PreviewTemplate.Output {
        let template = try await templates.get(tenantID: try caller().tenant, id: try uuidPath(input.path.id, what: "template"))
        let variables: [String: String] = if case .json(let body) = input.body { body.variables?.additionalProperties ?? [:] } else { [:] }
        let rendered = MailTemplate.render(subject: template.subject, html: template.html, text: template.text, variables: variables,
                                           unsubscribeURL: publicURL + "/u/PREVIEW")
        return .ok(.init(body: .json(.init(subject: rendered.subject, html: rendered.html, text: rendered.text))))
    }

    // MARK: Operator

    func adminListTemplates(_ input: Operations.AdminListTemplates.Input) async throws -> Operations.AdminListTemplates.Output {
        let items = try await templates.pending(limit: try QueryParameters.limit(input.query.limit))
        return .ok(.init(body: .json(.init(items: items.map(Components.Schemas.Template.init)))))
    }

    func adminApproveTemplate(_ input: Operations.AdminApproveTemplate.Input) async throws -> Operations.AdminApproveTemplate.Output {
        let template = try await templates.review(id: try uuidPath(input.path.id, what: "template"), approve: true, reason: nil,
                                                  actor: try RequestScope.current().auditActor, now: now())
        return .ok(.init(body: .json(.init(template))))
    }

    func adminRejectTemplate(_ input: Operations.AdminRejectTemplate.Input) async throws -> Operations.AdminRejectTemplate.Output {
        guard case .json(let body) = input.body else { throw HeraldError.validation("Give the reason for rejecting.", field: "reason") }
        let template = try await templates.review(id: try uuidPath(input.path.id, what: "template"), approve: false, reason: body.reason,
                                                  actor: try RequestScope.current().auditActor, now: now())
        return .ok(.init(body: .json(.init(template))))
    }
}

extension Components.Schemas.Template {
    init(_ template: TemplateRecord) {
        self.init(id: template.id.lowercased, tenantId: template.tenantID.lowercased, name: template.name,
                  _type: template.kind == .batch ? .batch : .trigger, subject: template.subject, html: template.html, text: template.text,
                  variables: template.variables, status: .init(rawValue: template.status.rawValue) ?? .draft, reviewReasons: template.reviewReasons,
                  submittedAt: template.submittedAt, reviewedAt: template.reviewedAt, createdAt: template.createdAt, updatedAt: template.updatedAt)
    }
}
