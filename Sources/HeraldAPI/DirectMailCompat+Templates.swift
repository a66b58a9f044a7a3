import Foundation
import HeraldCore
import HeraldStore

/// Template management over the compatibility endpoint, on the template service of the REST routes: as in
/// Direct Mail, creating or modifying a template submits it for review at once (``TemplateStore/submit``),
/// and `TemplateStatus` follows the review (0 under review, 1 approved, 2 rejected; -1 a draft, which only
/// REST makes).
extension DirectMailCompat {
    /// Direct Mail's TemplateStatus numbers.
    static let templateStatus: [MailTemplate.Status: Int] = [.pending: 0, .approved: 1, .rejected: 2, .draft: -1]

    /// CreateTemplate, ModifyTemplate, DeleteTemplate and DescTemplate; `authorize` checks the RAM action on the
    /// template (or on the tenant for CreateTemplate).
    func template(_ action: String, parameters: Parameters, principal: Principal, actor: AuditActor,
                  authorize: (String, UUID?) throws(HeraldError) -> Void) async throws -> [String: any Sendable] {
        let tenant = principal.tenantID
        func templateID() throws(HeraldError) -> UUID {
            guard let id = UUID(uuidString: try parameters.require("TemplateId")) else {
                throw HeraldError(code: "InvalidTemplate.NotFound", kind: .notFound, message: "No such template.", field: "TemplateId")
            }
            return id
        }
        switch action {
        case "CreateTemplate":
            try authorize("dm:CreateTemplate", nil)
            let kind: MailKind
            switch parameters.optional("TemplateType") ?? "0" {
            case "0": kind = .trigger
            case "1": kind = .batch
            default: throw HeraldError(code: "InvalidParameter", kind: .invalid, message: "TemplateType must be 0 (trigger) or 1 (batch).", field: "TemplateType")
            }
            let content = TemplateContent(name: try parameters.require("TemplateName"), kind: kind, subject: try parameters.require("TemplateSubject"),
                                          html: try parameters.require("TemplateText"), text: nil)
            let created = try await templates.create(tenantID: tenant, content: content, actor: actor)
            _ = try await templates.submit(tenantID: tenant, id: created.id, actor: actor, now: now())
            return ["TemplateId": created.id.lowercasedString]
        case "ModifyTemplate":
            let id = try templateID()
            try authorize("dm:UpdateTemplate", id)
            let current = try await templates.get(tenantID: tenant, id: id)
            let content = TemplateContent(name: parameters.optional("TemplateName") ?? current.name, kind: current.kind,
                                          subject: parameters.optional("TemplateSubject") ?? current.subject,
                                          html: parameters.optional("TemplateText") ?? current.html, text: current.text)
            _ = try await templates.update(tenantID: tenant, id: id, content: content, actor: actor, now: now())
            _ = try await templates.submit(tenantID: tenant, id: id, actor: actor, now: now())
        case "DeleteTemplate":
            let id = try templateID()
            try authorize("dm:DeleteTemplate", id)
            try await templates.delete(tenantID: tenant, id: id, actor: actor)
        default: // DescTemplate
            let id = try templateID()
            try authorize("dm:DescTemplate", id)
            let template = try await templates.get(tenantID: tenant, id: id)
            return ["TemplateName": template.name, "TemplateSubject": template.subject, "TemplateText": template.html ?? template.text ?? "",
                    "TemplateNickName": "", "TemplateStatus": String(Self.templateStatus[template.status] ?? -1),
                    "TemplateType": template.kind == .batch ? "1" : "0", "Remark": template.reviewReasons.joined(separator: "; "),
                    "CreateTime": Self.createTime.string(from: template.createdAt), "SmsType": "", "SmsContent": ""]
        }
        return [:]
    }
}
