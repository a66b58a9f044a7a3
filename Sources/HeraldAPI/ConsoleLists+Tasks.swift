import Foundation
import HeraldCore
import HeraldDelivery
import HeraldStore
import Hummingbird

/// The test send and batch tasks in the console (issue #19). A test send is one message through the accepting service
/// of `POST /v1/mail/single` (``AcceptService/accept(_:)`` with the signed-in principal on the request's client
/// address: account status, IP protection, the send's own checks and sensitive words, the sender's RAM check, rate,
/// quota, in the same order); a batch is started through the same service as `POST /v1/mail/batch`. The tasks page
/// lists tasks with their messages counted; a task's page shows its progress, refreshed by the console script while
/// it runs. RAM actions: `dm:SingleSendMail`, `dm:BatchSendMail`, `dm:QueryTaskByParam` (and the list reads of the
/// forms' choices: `dm:QueryMailAddressByParam`, `dm:QueryTemplateByParam`, `dm:QueryReceiverByParam`).
extension Console {
    func registerTaskPages(on router: Router<HeraldRequestContext>) {
        router.get("/console/send-test") { request, context in await sendTestPage(request, context: context) }
        router.post("/console/send-test") { request, context in await sendTest(request, context: context) }
        router.get("/console/tasks") { request, context in await tasksPage(request, context: context) }
        router.post("/console/tasks") { request, context in await startTask(request, context: context) }
        router.get("/console/tasks/{id}") { request, context in await taskPage(request, context: context) }
    }

    /// Tasks on a page of the task list.
    static let taskPageSize = 50

    // MARK: Test send

    /// The test-send form: a sender address (a choice of the tenant's where the user may list them), recipient,
    /// subject, text and HTML body, optionally filled from a template (`?template=<id>`); after a send, the message
    /// it made with a link to its page.
    func sendTestPage(_ request: Request, context: HeraldRequestContext, notice: String? = nil, fields: [String: String] = [:],
                      sent: SendResult? = nil) async -> Response {
        await show(request, action: nil) { viewer in
            let tenantID = viewer.principal.tenantID
            var fields = fields
            var context: [String: Any] = ["canSend": viewer.may("dm:SingleSendMail")]
            if viewer.may("dm:QueryTemplateByParam") {
                let templates = try await deps.templates.list(tenantID: tenantID, status: nil)
                let chosen = request.method == .get ? request.uri.queryParameters.get("template").flatMap { UUID(uuidString: $0) } : nil
                if let chosen, let template = templates.first(where: { $0.id == chosen }) {
                    fields["subject"] = template.subject
                    fields["text"] = template.text ?? ""
                    fields["html"] = template.html ?? ""
                }
                context["hasTemplates"] = !templates.isEmpty
                context["templates"] = templates.map { template -> [String: Any] in
                    ["id": template.id.lowercasedString, "name": template.name, "selected": template.id == chosen]
                }
            }
            if viewer.may("dm:QueryMailAddressByParam") {
                let senders = try await deps.senders.list(tenantID: tenantID)
                context["hasSenders"] = !senders.isEmpty
                context["senders"] = senders.map { sender -> [String: Any] in
                    ["address": sender.address, "type": viewer["snd_type_" + sender.type.rawValue], "selected": sender.address == fields["from"]]
                }
            }
            if viewer.may("dm:QueryTagByParam") {
                context["pickTag"] = true
                context["tags"] = try await deps.senders.listTags(tenantID: tenantID).map { tag -> [String: Any] in
                    ["name": tag.name, "selected": tag.name == fields["tag"]]
                }
            }
            for name in ["from", "to", "subject", "text", "html", "tag"] { context[name] = fields[name] ?? "" }
            if let sent {
                context["hasResult"] = !sent.messages.isEmpty
                context["result"] = sent.messages.map { message -> [String: Any] in
                    ["id": message.id.lowercasedString, "to": message.to, "queued": message.status == .queued,
                     "status": viewer["snd_status_" + message.status.rawValue], "reason": message.reason ?? false]
                }
            }
            return page(viewer, title: "snd_title", "snd-form", context, notice: notice)
        }
    }

    func sendTest(_ request: Request, context: HeraldRequestContext) async -> Response {
        var fields: [String: String] = [:]
        var sent: SendResult?
        return await change(request, context: context, action: "dm:SingleSendMail", resource: { $0.tenantResource },
                            then: { await sendTestPage($0, context: $1, notice: $2, fields: fields, sent: sent) }) { principal, form, _ in
            fields = form
            fields["csrf"] = nil
            let optional = { (name: String) in form[name].flatMap { $0.isEmpty ? nil : $0 } }
            let send = SingleSendRequest(from: form["from"] ?? "", to: [form["to"] ?? ""], subject: form["subject"] ?? "", html: optional("html"),
                                         text: optional("text"), tag: optional("tag"))
            let answer = try await deps.accept.accept(SendRequest(caller: .principal(principal, client: context.clientIP), content: .message(send)))
            sent = answer.result
            return "snd_accepted"
        }
    }

    // MARK: Tasks

    /// The tenant's tasks, newest first (`?before=<id>`: the page after that task), each with its state and its
    /// messages counted; the form that starts a batch where allowed.
    func tasksPage(_ request: Request, context: HeraldRequestContext, notice: String? = nil) async -> Response {
        await show(request, action: "dm:QueryTaskByParam") { viewer in
            let tenantID = viewer.principal.tenantID
            let before = request.method == .get ? request.uri.queryParameters.get("before").flatMap { UUID(uuidString: $0) } : nil
            let tasks = try await deps.batches.progressList(tenantID: tenantID, limit: Self.taskPageSize, before: before)
            var context: [String: Any] = [
                "tasks": tasks.map { task -> [String: Any] in
                    let summary = task.summary
                    return ["id": summary.id.lowercasedString, "status": summary.status, "statusText": viewer["tsk_status_" + summary.status],
                            "template": summary.template, "list": summary.list, "from": summary.from, "tag": summary.tag.flatMap { $0.isEmpty ? nil : $0 } ?? false,
                            "total": summary.total, "expanded": summary.expanded, "queued": task.queued, "delivered": task.delivered,
                            "bounced": task.bounced, "failed": task.failed, "dropped": task.dropped, "created": Self.listTime(summary.createdAt)]
                },
                "next": tasks.count == Self.taskPageSize ? tasks.last.map { "/console/tasks?before=\($0.summary.id.lowercasedString)" } ?? false : false,
                "first": before != nil,
                "canStart": viewer.may("dm:BatchSendMail"), "canSend": viewer.may("dm:SingleSendMail"),
            ]
            context["pickTemplate"] = viewer.may("dm:QueryTemplateByParam")
            context["pickList"] = viewer.may("dm:QueryReceiverByParam")
            context["pickSender"] = viewer.may("dm:QueryMailAddressByParam")
            if viewer.may("dm:BatchSendMail") {
                // The choices where the user may list them (a plain field otherwise): approved templates, lists, batch senders.
                if viewer.may("dm:QueryTemplateByParam") {
                    let templates = try await deps.templates.list(tenantID: tenantID, status: .approved)
                    context["hasTemplates"] = !templates.isEmpty
                    context["templates"] = templates.map { template -> [String: Any] in ["id": template.id.lowercasedString, "name": template.name] }
                }
                if viewer.may("dm:QueryReceiverByParam") {
                    let lists = try await deps.lists.list(tenantID: tenantID)
                    context["hasLists"] = !lists.isEmpty
                    context["lists"] = lists.map { list -> [String: Any] in ["id": list.id.lowercasedString, "name": list.name, "members": list.memberCount] }
                }
                if viewer.may("dm:QueryTagByParam") {
                    context["pickTag"] = true
                    context["tags"] = try await deps.senders.listTags(tenantID: tenantID).map { tag -> [String: Any] in ["name": tag.name] }
                }
                if viewer.may("dm:QueryMailAddressByParam") {
                    let senders = try await deps.senders.list(tenantID: tenantID).filter { $0.type == .batch }
                    context["hasSenders"] = !senders.isEmpty
                    context["senders"] = senders.map { sender -> [String: Any] in ["address": sender.address] }
                }
            }
            return page(viewer, title: "tasks", "tsk-list", context, notice: notice)
        }
    }

    /// Starts a batch: the template, the list, the sender and a tag through the REST batch route's service; then
    /// the new task's page (a redirect, so that its refresh fetches the task).
    func startTask(_ request: Request, context: HeraldRequestContext) async -> Response {
        var started: UUID?
        return await change(request, context: context, action: "dm:BatchSendMail", resource: { $0.tenantResource },
                            then: { request, context, notice in
                                if let started { return Self.redirect("/console/tasks/\(started.lowercasedString)?started=1") }
                                return await tasksPage(request, context: context, notice: notice)
                            }) { principal, form, actor in
            let tag = form["tag"].flatMap { $0.isEmpty ? nil : $0 }
            let answer = try await deps.accept.accept(SendRequest(
                caller: .principal(principal, client: context.clientIP),
                content: .template(.ids(template: form["templateId"] ?? "", list: form["listId"] ?? ""), BatchSendRequest(from: form["from"] ?? "", tag: tag)),
                actor: actor))
            guard case .task(let id) = answer else { throw HeraldError(code: "Internal", kind: .internal, message: "A batch send was not answered.") }
            started = id
            return "tsk_started"
        }
    }

    /// One task's progress: its state, the counts of its messages and a bar, in a region the console script fetches
    /// again every 3 seconds until the task is finished (expanded, and no message waiting).
    func taskPage(_ request: Request, context: HeraldRequestContext) async -> Response {
        await showObject(request, id: context.parameters.get("id"), kind: "task", action: "dm:QueryTaskByParam", missing: taskMissing) { viewer, id in
            let task = try await deps.batches.get(tenantID: viewer.principal.tenantID, id: id)
            let count = { (statuses: [String]) in statuses.reduce(0) { $0 + (task.counts[$1] ?? 0) } }
            let queued = count(["queued", "deferred", "sending"]), delivered = count(["delivered"]), bounced = count(["bounced", "spam_rejected"])
            let failed = count(["failed"]), dropped = count(["dropped"])
            let done = delivered + bounced + failed + dropped
            let finished = task.status == "done" && queued == 0
            let started = request.uri.queryParameters.get("started") != nil
            return page(viewer, title: "tasks", "tsk-task", [
                "id": id.lowercasedString, "status": task.status, "statusText": viewer["tsk_status_" + task.status], "finished": finished,
                "total": task.total, "expanded": task.expanded, "queued": queued, "delivered": delivered, "bounced": bounced, "failed": failed,
                "dropped": dropped, "done": done, "max": max(task.total, done, 1), "created": Self.listTime(task.createdAt),
                "scheduled": Self.listTime(task.scheduledAt),
            ], notice: started ? viewer["tsk_started"] : nil)
        }
    }

    func taskMissing(_ viewer: Viewer) -> Response {
        page(viewer, title: "tasks", "message", ["title": viewer["tsk_notFound"], "text": viewer["tsk_notFoundText"]], status: .notFound)
    }
}

extension ConsolePages {
    static let taskPages: [String: String] = [
        "snd-form": """
            <h1>{{t.snd_title}}</h1>
            {{#notice}}<p class="notice" role="status" id="send-test-notice">{{notice}}</p>{{/notice}}
            {{#hasResult}}
            <section class="card" id="send-test-result" aria-labelledby="send-result-title">
              <h2 id="send-result-title">{{t.snd_result}}</h2>
              <ul>{{#result}}<li><code>{{to}}</code>: {{status}}{{#reason}} ({{reason}}){{/reason}} —
                {{t.snd_message}} <a id="sent-message" href="/console/messages/{{id}}">{{id}}</a></li>{{/result}}</ul>
            </section>
            {{/hasResult}}
            {{#canSend}}
            {{#hasTemplates}}
            <form method="get" action="/console/send-test" class="card filters" id="send-test-template">
              <div><label for="template">{{t.snd_template}}</label>
              <select id="template" name="template">{{#templates}}<option value="{{id}}"{{#selected}} selected{{/selected}}>{{name}}</option>{{/templates}}</select></div>
              <div><button type="submit" class="secondary">{{t.snd_useTemplate}}</button></div>
            </form>
            {{/hasTemplates}}
            <form method="post" action="/console/send-test" class="card" id="send-test">
              <input type="hidden" name="csrf" value="{{csrf}}">
              <label for="from">{{t.snd_from}}</label>
              {{#hasSenders}}<select id="from" name="from" required>{{#senders}}<option value="{{address}}"{{#selected}} selected{{/selected}}>{{address}} ({{type}})</option>{{/senders}}</select>{{/hasSenders}}
              {{^hasSenders}}<input id="from" name="from" type="email" required maxlength="254" value="{{from}}">{{/hasSenders}}
              <label for="to">{{t.snd_to}}</label>
              <input id="to" name="to" type="email" required maxlength="254" value="{{to}}">
              <label for="subject">{{t.snd_subject}}</label>
              <input id="subject" name="subject" required maxlength="998" value="{{subject}}">
              <label for="text">{{t.snd_text}}</label>
              <textarea id="text" name="text">{{text}}</textarea>
              <label for="html">{{t.snd_html}}</label>
              <textarea id="html" name="html">{{html}}</textarea>
              <label for="tag">{{t.snd_tag}}</label>
              {{#pickTag}}<select id="tag" name="tag"><option value="">{{t.snd_noTag}}</option>{{#tags}}<option value="{{name}}"{{#selected}} selected{{/selected}}>{{name}}</option>{{/tags}}</select>{{/pickTag}}
              {{^pickTag}}<input id="tag" name="tag" maxlength="128" value="{{tag}}">{{/pickTag}}
              <button type="submit">{{t.snd_send}}</button>
            </form>
            {{/canSend}}
            {{^canSend}}<p class="muted">{{t.notAllowed}}</p>{{/canSend}}
            """,
        "tsk-list": """
            <h1>{{t.tasks}}</h1>
            {{#notice}}<p class="notice" role="status" id="task-notice">{{notice}}</p>{{/notice}}
            {{#canSend}}<p><a href="/console/send-test" id="send-test-link">{{t.snd_title}}</a></p>{{/canSend}}
            {{#canStart}}
            <form method="post" action="/console/tasks" class="card" id="task-start">
              <h2>{{t.tsk_start}}</h2>
              <input type="hidden" name="csrf" value="{{csrf}}">
              <label for="templateId">{{t.tsk_template}}</label>
              {{#pickTemplate}}<select id="templateId" name="templateId" required>{{#templates}}<option value="{{id}}">{{name}}</option>{{/templates}}</select>
              {{^hasTemplates}}<p class="muted" id="no-approved">{{t.tsk_noTemplates}}</p>{{/hasTemplates}}{{/pickTemplate}}
              {{^pickTemplate}}<input id="templateId" name="templateId" required maxlength="36">{{/pickTemplate}}
              <label for="listId">{{t.tsk_list}}</label>
              {{#pickList}}<select id="listId" name="listId" required>{{#lists}}<option value="{{id}}">{{name}} ({{members}})</option>{{/lists}}</select>
              {{^hasLists}}<p class="muted" id="no-lists">{{t.tsk_noLists}}</p>{{/hasLists}}{{/pickList}}
              {{^pickList}}<input id="listId" name="listId" required maxlength="36">{{/pickList}}
              <label for="task-from">{{t.tsk_from}}</label>
              {{#pickSender}}<select id="task-from" name="from" required>{{#senders}}<option value="{{address}}">{{address}}</option>{{/senders}}</select>
              {{^hasSenders}}<p class="muted" id="no-senders">{{t.tsk_noSenders}}</p>{{/hasSenders}}{{/pickSender}}
              {{^pickSender}}<input id="task-from" name="from" type="email" required maxlength="254">{{/pickSender}}
              <label for="task-tag">{{t.tsk_tag}}</label>
              {{#pickTag}}<select id="task-tag" name="tag"><option value="">{{t.snd_noTag}}</option>{{#tags}}<option value="{{name}}">{{name}}</option>{{/tags}}</select>{{/pickTag}}
              {{^pickTag}}<input id="task-tag" name="tag" maxlength="128">{{/pickTag}}
              <button type="submit">{{t.tsk_startButton}}</button>
            </form>
            {{/canStart}}
            <div class="card scroll">
            <table id="tasks">
              <thead><tr><th scope="col">{{t.tsk_created}}</th><th scope="col">{{t.tsk_state}}</th><th scope="col">{{t.tsk_templateCol}}</th><th scope="col">{{t.tsk_list}}</th>
                <th scope="col">{{t.tsk_total}}</th><th scope="col">{{t.tsk_expanded}}</th><th scope="col">{{t.tsk_queued}}</th><th scope="col">{{t.delivered}}</th>
                <th scope="col">{{t.tsk_failed}}</th></tr></thead>
              <tbody>
              {{#tasks}}<tr id="task-{{id}}"><td><a href="/console/tasks/{{id}}">{{created}}</a><br><span class="muted">{{from}}{{#tag}} · {{tag}}{{/tag}}</span></td>
                <td class="task-{{status}}">{{statusText}}</td><td>{{template}}</td><td>{{list}}</td><td>{{total}}</td><td>{{expanded}}</td><td>{{queued}}</td>
                <td>{{delivered}}</td><td>{{failed}} <span class="muted">({{t.tsk_bouncedShort}} {{bounced}}, {{t.tsk_droppedShort}} {{dropped}})</span></td></tr>{{/tasks}}
              </tbody>
            </table>
            {{^tasks}}<p class="muted">{{t.tsk_none}}</p>{{/tasks}}
            <nav class="pager" aria-label="{{t.lst_pages}}">{{#first}}<a href="/console/tasks">{{t.lst_firstPage}}</a>{{/first}}{{#next}}<a id="tasks-next" href="{{next}}">{{t.lst_nextPage}}</a>{{/next}}</nav>
            </div>
            """,
        "tsk-task": """
            <p><a href="/console/tasks">← {{t.tasks}}</a></p>
            <h1>{{t.tsk_task}} <code>{{id}}</code></h1>
            {{#notice}}<p class="notice" role="status">{{notice}}</p>{{/notice}}
            <section class="card" id="task-progress" aria-live="polite"{{^finished}} data-refresh="3"{{/finished}}>
              <h2>{{t.tsk_progress}}: <span id="task-status" class="task-{{status}}">{{statusText}}</span></h2>
              <label for="task-bar">{{t.tsk_doneCount}}: {{done}} / {{total}}</label>
              <progress id="task-bar" max="{{max}}" value="{{done}}">{{done}} / {{total}}</progress>
              <dl class="facts">
                <div><dt>{{t.tsk_total}}</dt><dd id="task-total">{{total}}</dd></div>
                <div><dt>{{t.tsk_expanded}}</dt><dd id="task-expanded">{{expanded}}</dd></div>
                <div><dt>{{t.tsk_queued}}</dt><dd id="task-queued">{{queued}}</dd></div>
                <div><dt>{{t.delivered}}</dt><dd id="task-delivered">{{delivered}}</dd></div>
                <div><dt>{{t.tsk_bounced}}</dt><dd id="task-bounced">{{bounced}}</dd></div>
                <div><dt>{{t.tsk_failed}}</dt><dd id="task-failed">{{failed}}</dd></div>
                <div><dt>{{t.tsk_dropped}}</dt><dd id="task-dropped">{{dropped}}</dd></div>
              </dl>
              {{#finished}}<p class="notice" id="task-finished">{{t.tsk_finished}}</p>{{/finished}}
              {{^finished}}<p class="muted">{{t.tsk_live}}</p>{{/finished}}
              <p><a id="task-refresh" href="/console/tasks/{{id}}">{{t.tsk_refresh}}</a></p>
            </section>
            <p class="muted">{{t.tsk_created}}: {{created}} · {{t.tsk_scheduled}}: {{scheduled}} · <a href="/console/messages">{{t.messages}}</a></p>
            """,
    ]

    static let taskEnglish: [String: String] = [
        "snd_title": "Send a test message", "snd_result": "Sent", "snd_message": "message", "snd_template": "Fill in from a template",
        "snd_useTemplate": "Use this template", "snd_from": "From (sender address)", "snd_to": "To", "snd_subject": "Subject",
        "snd_text": "Text body", "snd_html": "HTML body (optional)", "snd_tag": "Tag (optional)", "snd_send": "Send", "snd_noTag": "(none)",
        "snd_accepted": "Accepted.", "snd_type_trigger": "trigger", "snd_type_batch": "batch", "snd_status_queued": "queued",
        "snd_status_dropped": "dropped",
        "tsk_start": "Start a batch send", "tsk_template": "Template (approved)", "tsk_templateCol": "Template", "tsk_list": "Recipient list", "tsk_from": "From (batch sender address)",
        "tsk_tag": "Tag (optional)", "tsk_startButton": "Start", "tsk_noTemplates": "No approved template yet: submit one for review first.",
        "tsk_noLists": "No recipient list yet.", "tsk_noSenders": "No batch sender address yet.", "tsk_task": "Task", "tsk_state": "State",
        "tsk_total": "Recipients", "tsk_expanded": "Messages created", "tsk_queued": "Waiting", "tsk_failed": "Failed", "tsk_bounced": "Bounced or spam",
        "tsk_dropped": "Dropped", "tsk_bouncedShort": "bounced", "tsk_droppedShort": "dropped", "tsk_created": "Started",
        "tsk_scheduled": "Scheduled", "tsk_none": "No batch sends yet.", "tsk_started": "The batch send was accepted.",
        "tsk_progress": "Progress", "tsk_doneCount": "Finished messages", "tsk_finished": "Finished: every message was delivered, bounced, failed or dropped.",
        "tsk_live": "This part updates itself while the task runs.", "tsk_refresh": "Refresh", "tsk_status_scheduled": "Scheduled",
        "tsk_status_expanding": "Creating messages", "tsk_status_done": "Messages created", "tsk_notFound": "Task not found",
        "tsk_notFoundText": "There is no such task in this account.",
    ]

    static let taskChinese: [String: String] = [
        "snd_title": "发送测试邮件", "snd_result": "已发送", "snd_message": "邮件", "snd_template": "用模板填写",
        "snd_useTemplate": "使用此模板", "snd_from": "发信地址", "snd_to": "收信人", "snd_subject": "主题",
        "snd_text": "纯文本正文", "snd_html": "HTML 正文（可选）", "snd_tag": "标签（可选）", "snd_send": "发送", "snd_noTag": "（无）",
        "snd_accepted": "已受理。", "snd_type_trigger": "触发", "snd_type_batch": "批量", "snd_status_queued": "已排队",
        "snd_status_dropped": "已丢弃",
        "tsk_start": "发起批量发送", "tsk_template": "模板（已审核）", "tsk_templateCol": "模板", "tsk_list": "收信人列表", "tsk_from": "发信地址（批量）",
        "tsk_tag": "标签（可选）", "tsk_startButton": "开始", "tsk_noTemplates": "还没有已审核的模板：请先提交审核。",
        "tsk_noLists": "还没有收信人列表。", "tsk_noSenders": "还没有批量发信地址。", "tsk_task": "任务", "tsk_state": "状态",
        "tsk_total": "收信人数", "tsk_expanded": "已生成邮件", "tsk_queued": "等待中", "tsk_failed": "失败", "tsk_bounced": "退信或垃圾拒收",
        "tsk_dropped": "已丢弃", "tsk_bouncedShort": "退信", "tsk_droppedShort": "丢弃", "tsk_created": "开始时间",
        "tsk_scheduled": "计划时间", "tsk_none": "还没有批量发送。", "tsk_started": "批量发送已受理。",
        "tsk_progress": "进度", "tsk_doneCount": "已完成邮件", "tsk_finished": "已完成：所有邮件均已送达、退信、失败或丢弃。",
        "tsk_live": "任务运行期间此区域会自动更新。", "tsk_refresh": "刷新", "tsk_status_scheduled": "已计划",
        "tsk_status_expanding": "正在生成邮件", "tsk_status_done": "邮件已生成", "tsk_notFound": "未找到任务",
        "tsk_notFoundText": "此账户中没有这个任务。",
    ]
}
