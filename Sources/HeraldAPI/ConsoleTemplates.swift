import Foundation
import HeraldCore
import HeraldStore
import Hummingbird

/// Templates in the console (issue #19): the tenant's templates with their review state and the reviewer's reason, a
/// new one, editing (which sends an approved or pending template back to review, as `PUT /v1/templates/{id}` does),
/// submitting for review, deleting, and a preview with the template's variables rendered by the sending path's
/// renderer (``MailTemplate/render(subject:html:text:variables:unsubscribeURL:)``). The RAM actions are the REST
/// routes' (`dm:QueryTemplateByParam`, `dm:CreateTemplate`, `dm:DescTemplate`, `dm:UpdateTemplate`,
/// `dm:SubmitTemplate`, `dm:DeleteTemplate`).
extension Console {
    func registerTemplatePages(on router: Router<HeraldRequestContext>) {
        router.get("/console/templates") { request, context in await templatesPage(request, context: context) }
        router.post("/console/templates") { request, context in await createTemplate(request, context: context) }
        router.get("/console/templates/{id}") { request, context in await templatePage(request, context: context) }
        router.post("/console/templates/{id}") { request, context in await updateTemplate(request, context: context) }
        router.post("/console/templates/{id}/submit") { request, context in await submitTemplate(request, context: context) }
        router.post("/console/templates/{id}/delete") { request, context in await deleteTemplate(request, context: context) }
    }

    // MARK: Pages

    /// The tenant's templates (optionally of one review state), and the form for a new one where allowed.
    func templatesPage(_ request: Request, context: HeraldRequestContext, notice: String? = nil) async -> Response {
        await show(request, action: "dm:QueryTemplateByParam") { viewer in
            let asked = request.uri.queryParameters.get("status").flatMap { MailTemplate.Status(rawValue: $0) }
            let list = try await deps.templates.list(tenantID: viewer.principal.tenantID, status: asked)
            let rows: [[String: Any]] = list.map { template in
                ["id": template.id.lowercasedString, "name": template.name, "subject": template.subject,
                 "kind": viewer["tpl_kind_" + template.kind.rawValue], "status": template.status.rawValue, "statusClass": Self.templateStatusClass(template.status),
                 "statusText": viewer["tpl_status_" + template.status.rawValue], "reasons": template.reviewReasons,
                 "updated": Self.minute(template.updatedAt)]
            }
            let filters: [[String: Any]] = MailTemplate.Status.allCases.map { status in
                ["value": status.rawValue, "name": viewer["tpl_status_" + status.rawValue], "selected": status == asked]
            }
            return page(viewer, title: "templates", "tpl-list", ["templates": rows, "filters": filters, "canCreate": viewer.may("dm:CreateTemplate")],
                        notice: notice)
        }
    }

    /// One template: its review state and reasons, the edit form, submit and delete where allowed, and the preview
    /// (`?var_<name>=value`; a read, so a plain GET form).
    func templatePage(_ request: Request, context: HeraldRequestContext, notice: String? = nil) async -> Response {
        await showObject(request, id: context.parameters.get("id"), kind: "template", action: "dm:DescTemplate", missing: templateMissing) { viewer, id in
            let resource = viewer.principal.resource("template", id.lowercasedString)
            let template = try await deps.templates.get(tenantID: viewer.principal.tenantID, id: id)
            let query = request.uri.queryParameters
            let names = template.variables.filter { $0 != MailTemplate.unsubscribe }
            var values: [String: String] = [:]
            for name in names { values[name] = query.get("var_" + name).map { String($0.prefix(2_000)) } ?? "" }
            let variables: [[String: Any]] = names.map { ["name": $0, "placeholder": "${\($0)}", "value": values[$0] ?? ""] }
            var context: [String: Any] = [
                "id": template.id.lowercasedString, "name": template.name, "subject": template.subject, "html": template.html ?? "",
                "text": template.text ?? "", "status": template.status.rawValue, "statusClass": Self.templateStatusClass(template.status),
                "statusText": viewer["tpl_status_" + template.status.rawValue], "reasons": template.reviewReasons, "hasReasons": !template.reviewReasons.isEmpty, "trigger": template.kind == .trigger, "batch": template.kind == .batch,
                "submitted": template.submittedAt.map(Self.minute) ?? false, "reviewed": template.reviewedAt.map(Self.minute) ?? false,
                "updated": Self.minute(template.updatedAt), "variables": variables,
                "canUpdate": viewer.may("dm:UpdateTemplate", resource), "canDelete": viewer.may("dm:DeleteTemplate", resource),
                // Submitting a pending or approved template changes nothing: the button only where it would.
                "canSubmit": viewer.may("dm:SubmitTemplate", resource) && (template.status == .draft || template.status == .rejected),
            ]
            if query.get("preview") != nil {
                let rendered = MailTemplate.render(subject: template.subject, html: template.html, text: template.text, variables: values,
                                                   unsubscribeURL: deps.publicURL + "/u/PREVIEW")
                context["preview"] = ["subject": rendered.subject, "html": rendered.html ?? false, "text": rendered.text ?? false] as [String: Any]
            }
            return page(viewer, title: "templates", "tpl-edit", context, notice: notice)
        }
    }

    func templateMissing(_ viewer: Viewer) -> Response {
        page(viewer, title: "templates", "message", ["title": viewer["tpl_missing"], "text": viewer["tpl_missingText"]], status: .notFound)
    }

    // MARK: Changes

    /// The form's content as the REST body gives it (an empty part is no part).
    static func templateContent(_ form: [String: String]) throws -> TemplateContent {
        let kind: MailKind
        switch form["type"] ?? "" {
        case "trigger": kind = .trigger
        case "batch": kind = .batch
        default: throw HeraldError.validation("Choose trigger or batch.", field: "type")
        }
        func part(_ name: String) -> String? {
            guard let value = form[name]?.replacingOccurrences(of: "\r\n", with: "\n"), !value.isEmpty else { return nil }
            return value
        }
        return TemplateContent(name: form["name"] ?? "", kind: kind, subject: form["subject"] ?? "", html: part("html"), text: part("text"))
    }

    func createTemplate(_ request: Request, context: HeraldRequestContext) async -> Response {
        await change(request, context: context, action: "dm:CreateTemplate", resource: { $0.tenantResource }, then: templatesPage) { principal, form, actor in
            _ = try await deps.templates.create(tenantID: principal.tenantID, content: try Self.templateContent(form), actor: actor)
            return "tpl_created"
        }
    }

    func updateTemplate(_ request: Request, context: HeraldRequestContext) async -> Response {
        guard let id = context.parameters.get("id").flatMap({ UUID(uuidString: $0) }) else { return forbidden(request) }
        return await change(request, context: context, action: "dm:UpdateTemplate", resource: { $0.resource("template", id.lowercasedString) },
                            then: templatePage) { principal, form, actor in
            let template = try await deps.templates.update(tenantID: principal.tenantID, id: id, content: try Self.templateContent(form),
                                                           actor: actor, now: now())
            return template.status == .pending ? "tpl_savedPending" : "tpl_saved"
        }
    }

    func submitTemplate(_ request: Request, context: HeraldRequestContext) async -> Response {
        guard let id = context.parameters.get("id").flatMap({ UUID(uuidString: $0) }) else { return forbidden(request) }
        return await change(request, context: context, action: "dm:SubmitTemplate", resource: { $0.resource("template", id.lowercasedString) },
                            then: templatePage) { principal, _, actor in
            let template = try await deps.templates.submit(tenantID: principal.tenantID, id: id, actor: actor, now: now())
            return template.status == .rejected ? "tpl_submitRejected" : "tpl_submitted"
        }
    }

    func deleteTemplate(_ request: Request, context: HeraldRequestContext) async -> Response {
        guard let id = context.parameters.get("id").flatMap({ UUID(uuidString: $0) }) else { return forbidden(request) }
        return await change(request, context: context, action: "dm:DeleteTemplate", resource: { $0.resource("template", id.lowercasedString) },
                            then: templatesPage) { principal, _, actor in
            try await deps.templates.delete(tenantID: principal.tenantID, id: id, actor: actor)
            return "tpl_deleted"
        }
    }

    /// The style sheet's class for a review state (green approved, red rejected).
    static func templateStatusClass(_ status: MailTemplate.Status) -> String {
        switch status {
        case .approved: "status-verified"
        case .rejected: "status-failed"
        case .pending: "reply-pending"
        case .draft: "muted"
        }
    }

    /// A time to the minute, UTC (`2026-12-07 13:54 UTC`).
    static func minute(_ date: Date) -> String {
        ConsolePages.time(date)
    }
}

extension ConsolePages {
    static let templatePages: [String: String] = [
        "tpl-list": """
            <h1>{{t.templates}}</h1>
            {{#notice}}<p class="notice" role="status" id="tpl-notice">{{notice}}</p>{{/notice}}
            <form method="get" action="/console/templates" class="card filters" id="tpl-filter">
              <div><label for="tpl-status">{{t.status}}</label>
              <select id="tpl-status" name="status"><option value="">{{t.tpl_all}}</option>{{#filters}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{name}}</option>{{/filters}}</select></div>
              <div><button type="submit" class="secondary">{{t.tpl_filter}}</button></div>
            </form>
            <div class="card scroll"><table id="tpl-table">
              <thead><tr><th scope="col">{{t.tpl_name}}</th><th scope="col">{{t.tpl_subject}}</th><th scope="col">{{t.senderType}}</th><th scope="col">{{t.tpl_review}}</th><th scope="col">{{t.tpl_updated}}</th></tr></thead>
              <tbody>
              {{#templates}}<tr id="tpl-row-{{id}}"><td><a href="/console/templates/{{id}}">{{name}}</a></td><td>{{subject}}</td><td>{{kind}}</td>
                <td><span class="{{statusClass}}" data-status="{{status}}">{{statusText}}</span>{{#reasons}}<br><span class="muted">{{.}}</span>{{/reasons}}</td><td>{{updated}}</td></tr>{{/templates}}
              </tbody>
            </table>
            {{^templates}}<p class="muted">{{t.tpl_none}}</p>{{/templates}}
            </div>
            {{#canCreate}}
            <section class="card" aria-labelledby="tpl-new-title">
            <h2 id="tpl-new-title">{{t.tpl_new}}</h2>
            <form method="post" action="/console/templates" id="tpl-new">
              <input type="hidden" name="csrf" value="{{csrf}}">
              <label for="tpl-new-name">{{t.tpl_name}}</label>
              <input id="tpl-new-name" name="name" required maxlength="64">
              <label for="tpl-new-type">{{t.senderType}}</label>
              <select id="tpl-new-type" name="type"><option value="trigger">{{t.trigger}}</option><option value="batch">{{t.batch}}</option></select>
              <label for="tpl-new-subject">{{t.tpl_subject}}</label>
              <input id="tpl-new-subject" name="subject" required maxlength="200">
              <label for="tpl-new-html">{{t.tpl_html}}</label>
              <textarea id="tpl-new-html" name="html" aria-describedby="tpl-new-help"></textarea>
              <label for="tpl-new-text">{{t.tpl_text}}</label>
              <textarea id="tpl-new-text" name="text" aria-describedby="tpl-new-help"></textarea>
              <p class="muted" id="tpl-new-help">{{t.tpl_help}}</p>
              <button type="submit" id="tpl-new-submit">{{t.tpl_create}}</button>
            </form>
            </section>
            {{/canCreate}}
            """,
        "tpl-edit": """
            <p><a href="/console/templates">{{t.tpl_back}}</a></p>
            <h1>{{name}}</h1>
            {{#notice}}<p class="notice" role="status" id="tpl-notice">{{notice}}</p>{{/notice}}
            <section class="card" aria-labelledby="tpl-state-title" id="tpl-state">
              <h2 id="tpl-state-title">{{t.tpl_review}}</h2>
              <p><span class="{{statusClass}}" id="tpl-status" data-status="{{status}}">{{statusText}}</span></p>
              {{#hasReasons}}<p>{{t.tpl_reasons}}</p>{{/hasReasons}}
              <ul id="tpl-reasons">{{#reasons}}<li>{{.}}</li>{{/reasons}}</ul>
              <p class="muted">{{#submitted}}{{t.tpl_submittedAt}}: {{submitted}} · {{/submitted}}{{#reviewed}}{{t.tpl_reviewedAt}}: {{reviewed}} · {{/reviewed}}{{t.tpl_updated}}: {{updated}}</p>
              <div class="actions">
              {{#canSubmit}}
              <form method="post" action="/console/templates/{{id}}/submit" id="tpl-submit-form">
                <input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" id="tpl-submit">{{t.tpl_submit}}</button>
              </form>
              {{/canSubmit}}
              {{#canDelete}}
              <form method="post" action="/console/templates/{{id}}/delete" id="tpl-delete-form">
                <input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="danger" id="tpl-delete">{{t.tpl_delete}}</button>
              </form>
              {{/canDelete}}
              </div>
            </section>
            <section class="card" aria-labelledby="tpl-content-title">
            <h2 id="tpl-content-title">{{t.tpl_content}}</h2>
            {{#canUpdate}}
            <form method="post" action="/console/templates/{{id}}" id="tpl-edit">
              <input type="hidden" name="csrf" value="{{csrf}}">
            {{/canUpdate}}
              <label for="tpl-name">{{t.tpl_name}}</label>
              <input id="tpl-name" name="name" required maxlength="64" value="{{name}}"{{^canUpdate}} readonly{{/canUpdate}}>
              <label for="tpl-type">{{t.senderType}}</label>
              <select id="tpl-type" name="type"{{^canUpdate}} disabled{{/canUpdate}}><option value="trigger"{{#trigger}} selected{{/trigger}}>{{t.trigger}}</option><option value="batch"{{#batch}} selected{{/batch}}>{{t.batch}}</option></select>
              <label for="tpl-subject">{{t.tpl_subject}}</label>
              <input id="tpl-subject" name="subject" required maxlength="200" value="{{subject}}"{{^canUpdate}} readonly{{/canUpdate}}>
              <label for="tpl-html">{{t.tpl_html}}</label>
              <textarea id="tpl-html" name="html" aria-describedby="tpl-help"{{^canUpdate}} readonly{{/canUpdate}}>{{html}}</textarea>
              <label for="tpl-text">{{t.tpl_text}}</label>
              <textarea id="tpl-text" name="text" aria-describedby="tpl-help"{{^canUpdate}} readonly{{/canUpdate}}>{{text}}</textarea>
              <p class="muted" id="tpl-help">{{t.tpl_help}}</p>
            {{#canUpdate}}
              <button type="submit" id="tpl-save">{{t.tpl_save}}</button>
              <p class="muted">{{t.tpl_saveNote}}</p>
            </form>
            {{/canUpdate}}
            </section>
            <section class="card" aria-labelledby="tpl-preview-title">
            <h2 id="tpl-preview-title">{{t.tpl_preview}}</h2>
            <form method="get" action="/console/templates/{{id}}#tpl-preview" id="tpl-preview-form">
              <input type="hidden" name="preview" value="1">
              {{#variables}}
              <label for="tpl-var-{{name}}"><code>{{placeholder}}</code></label>
              <input id="tpl-var-{{name}}" name="var_{{name}}" value="{{value}}" maxlength="2000">
              {{/variables}}
              {{^variables}}<p class="muted">{{t.tpl_noVariables}}</p>{{/variables}}
              <button type="submit" class="secondary" id="tpl-preview-button">{{t.tpl_render}}</button>
            </form>
            {{#preview}}
            <div id="tpl-preview">
              <h3>{{t.tpl_subject}}</h3>
              <p id="tpl-preview-subject">{{subject}}</p>
              {{#text}}<h3>{{t.tpl_text}}</h3><pre id="tpl-preview-text">{{text}}</pre>{{/text}}
              {{#html}}<h3>{{t.tpl_htmlSource}}</h3><pre id="tpl-preview-html">{{html}}</pre>{{/html}}
            </div>
            {{/preview}}
            </section>
            """,
    ]

    static let templateEnglish: [String: String] = [
        "tpl_all": "All", "tpl_filter": "Show", "tpl_name": "Name", "tpl_subject": "Subject", "tpl_review": "Review",
        "tpl_updated": "Updated", "tpl_none": "No templates yet.", "tpl_new": "New template", "tpl_html": "HTML body",
        "tpl_text": "Text body", "tpl_help": "Give an HTML body, a text body or both. Placeholders are written ${name}; a batch template needs ${unsubscribe} in each body.",
        "tpl_create": "Create", "tpl_back": "All templates", "tpl_reasons": "Why:", "tpl_submittedAt": "Submitted", "tpl_reviewedAt": "Reviewed",
        "tpl_submit": "Submit for review", "tpl_delete": "Delete", "tpl_content": "Content", "tpl_save": "Save",
        "tpl_saveNote": "Saving an approved or pending template sends it back to review.", "tpl_preview": "Preview",
        "tpl_noVariables": "This template has no variables.", "tpl_render": "Render", "tpl_htmlSource": "HTML body (source)",
        "tpl_missing": "No such template", "tpl_missingText": "There is no such template in this account.",
        "tpl_created": "Template created. Submit it for review when it is ready.", "tpl_saved": "Saved.",
        "tpl_savedPending": "Saved. The template is waiting for review again.", "tpl_submitted": "Submitted: the template waits for review.",
        "tpl_submitRejected": "The automatic checks rejected the template; see why below.", "tpl_deleted": "Template deleted.",
        "tpl_kind_trigger": "Trigger", "tpl_kind_batch": "Batch",
        "tpl_status_draft": "Draft", "tpl_status_pending": "Waiting for review", "tpl_status_approved": "Approved", "tpl_status_rejected": "Rejected",
    ]

    static let templateChinese: [String: String] = [
        "tpl_all": "全部", "tpl_filter": "筛选", "tpl_name": "名称", "tpl_subject": "主题", "tpl_review": "审核",
        "tpl_updated": "更新时间", "tpl_none": "还没有模板。", "tpl_new": "新建模板", "tpl_html": "HTML 正文",
        "tpl_text": "纯文本正文", "tpl_help": "可填写 HTML 正文、纯文本正文或两者。变量写作 ${name}；批量模板的每个正文都须包含 ${unsubscribe}。",
        "tpl_create": "创建", "tpl_back": "全部模板", "tpl_reasons": "原因：", "tpl_submittedAt": "提交时间", "tpl_reviewedAt": "审核时间",
        "tpl_submit": "提交审核", "tpl_delete": "删除", "tpl_content": "内容", "tpl_save": "保存",
        "tpl_saveNote": "保存已通过或待审核的模板会使其重新进入审核。", "tpl_preview": "预览",
        "tpl_noVariables": "此模板没有变量。", "tpl_render": "渲染", "tpl_htmlSource": "HTML 正文（源码）",
        "tpl_missing": "模板不存在", "tpl_missingText": "此账户中没有该模板。",
        "tpl_created": "模板已创建。准备好后请提交审核。", "tpl_saved": "已保存。",
        "tpl_savedPending": "已保存。模板重新等待审核。", "tpl_submitted": "已提交：模板等待审核。",
        "tpl_submitRejected": "自动检查未通过，原因见下方。", "tpl_deleted": "模板已删除。",
        "tpl_kind_trigger": "触发", "tpl_kind_batch": "批量",
        "tpl_status_draft": "草稿", "tpl_status_pending": "等待审核", "tpl_status_approved": "已通过", "tpl_status_rejected": "已驳回",
    ]
}
