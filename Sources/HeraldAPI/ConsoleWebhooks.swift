import Foundation
import HTTPTypes
import HeraldCore
import HeraldStore
import HeraldWebhooks
import Hummingbird

/// Webhooks in the console (issue #19): the endpoints (add through the same SSRF guard as the API, enable, disable,
/// delete), one endpoint (rotate its secret, shown once; send a test event), its delivery log with each delivery's
/// request and responses, and replay. Every change is the REST route's: same store call, same RAM action.
extension Console {
    func registerWebhookPages(on router: Router<HeraldRequestContext>) {
        router.get("/console/webhooks") { request, context in await webhooksPage(request, context: context, notice: nil) }
        router.post("/console/webhooks") { request, context in await createWebhook(request, context: context) }
        router.get("/console/webhooks/{id}") { request, context in await webhookPage(request, context: context, notice: nil) }
        router.post("/console/webhooks/{id}/enable") { request, context in await toggleWebhook(request, context: context, enabled: true) }
        router.post("/console/webhooks/{id}/disable") { request, context in await toggleWebhook(request, context: context, enabled: false) }
        router.post("/console/webhooks/{id}/edit") { request, context in await editWebhook(request, context: context) }
        router.post("/console/webhooks/{id}/delete") { request, context in await deleteWebhook(request, context: context) }
        router.post("/console/webhooks/{id}/rotate") { request, context in await rotateWebhookSecret(request, context: context) }
        router.post("/console/webhooks/{id}/test") { request, context in await testWebhook(request, context: context) }
        router.get("/console/webhooks/{id}/deliveries/{did}") { request, context in await webhookDeliveryPage(request, context: context) }
        router.post("/console/webhooks/{id}/deliveries/{did}/replay") { request, context in await replayWebhookDelivery(request, context: context) }
    }

    private func whID(_ context: HeraldRequestContext, _ name: String = "id") -> UUID? {
        context.parameters.get(name).flatMap { UUID(uuidString: $0) }
    }

    private func whMissing(_ viewer: Viewer) -> Response {
        page(viewer, title: "webhooks", "message", ["title": viewer["wh_missing"], "text": viewer["wh_missingText"]], status: .notFound)
    }

    private static func whTime(_ date: Date?) -> String {
        ConsolePages.time(date, seconds: true)
    }

    /// A delivery status's class in the style sheet.
    private static func whStatusClass(_ status: String) -> String {
        switch status {
        case "succeeded": "check-ok"
        case "failed": "status-failed"
        case "pending": "reply-pending"
        default: "muted"
        }
    }

    /// Each subscribable event type with an id-safe slug.
    private static var whEventTypes: [[String: Any]] {
        WebhookEventTypes.all.map { ["type": $0, "slug": $0.replacingOccurrences(of: ".", with: "-").replacingOccurrences(of: "_", with: "-")] }
    }

    private func whState(_ hook: WebhookRecord, _ viewer: Viewer) -> (String, String) {
        if hook.enabled { return ("active", viewer["wh_enabled"]) }
        let reason = hook.disabledReason.map { viewer["wh_reason_" + $0] } ?? ""
        return ("failed", viewer["wh_disabled"] + (reason.isEmpty ? "" : " (\(reason))"))
    }

    // MARK: The endpoints

    /// The tenant's endpoints (dm:ListWebhooks); add one, enable/disable, delete where allowed. `secret` is a new
    /// endpoint's secret, shown this once.
    func webhooksPage(_ request: Request, context: HeraldRequestContext, notice: String?, secret: String? = nil) async -> Response {
        await show(request, action: "dm:ListWebhooks") { viewer in
            let hooks = try await deps.webhooks.list(tenantID: viewer.principal.tenantID)
            let rows: [[String: Any]] = hooks.map { hook in
                let resource = viewer.principal.resource("webhook", hook.id.lowercasedString)
                let (stateClass, stateText) = whState(hook, viewer)
                return ["id": hook.id.lowercasedString, "url": hook.url, "events": hook.eventTypes.joined(separator: ", "),
                        "stateClass": stateClass, "stateText": stateText, "created": Self.whTime(hook.createdAt),
                        "canUpdate": viewer.may("dm:UpdateWebhook", resource), "toggle": hook.enabled ? "disable" : "enable",
                        "toggleText": viewer[hook.enabled ? "wh_disable" : "wh_enable"], "canDelete": viewer.may("dm:DeleteWebhook", resource)]
            }
            return page(viewer, title: "webhooks", "wh-list",
                        ["hooks": rows, "canCreate": viewer.may("dm:CreateWebhook"), "eventTypes": Self.whEventTypes, "secret": secret ?? false],
                        notice: notice)
        }
    }

    func createWebhook(_ request: Request, context: HeraldRequestContext) async -> Response {
        var secret: String?
        return await change(request, context: context, action: "dm:CreateWebhook", resource: { $0.tenantResource },
                            then: { request, context, notice in await webhooksPage(request, context: context, notice: notice, secret: secret) }) { principal, form, actor in
            let types = try WebhookEventTypes.validate(Self.whChosenTypes(form))
            let checked = try await deps.webhookGuard.check((form["url"] ?? "").trimmingCharacters(in: .whitespaces))
            let (_, created) = try await deps.webhooks.create(tenantID: principal.tenantID, url: checked.target.url, eventTypes: types, enabled: true,
                                                              actor: actor, now: now())
            secret = created.description
            return "wh_added"
        }
    }

    func toggleWebhook(_ request: Request, context: HeraldRequestContext, enabled: Bool) async -> Response {
        guard let id = whID(context) else { return forbidden(request) }
        var fromDetail = false
        return await change(request, context: context, action: "dm:UpdateWebhook", resource: { $0.resource("webhook", id.lowercasedString) },
                            then: { request, context, notice in
                                // From the endpoint's own page (from=detail), back to it; from the list, the list.
                                fromDetail ? await webhookPage(request, context: context, notice: notice)
                                    : await webhooksPage(request, context: context, notice: notice)
                            }) { principal, form, actor in
            fromDetail = form["from"] == "detail"
            _ = try await deps.webhooks.update(tenantID: principal.tenantID, id: id, url: nil, eventTypes: nil, enabled: enabled, actor: actor, now: now())
            return enabled ? "wh_enabledNotice" : "wh_disabledNotice"
        }
    }

    /// The URL and event types changed (PATCH /v1/webhooks/{id}: the same guard and validation).
    func editWebhook(_ request: Request, context: HeraldRequestContext) async -> Response {
        guard let id = whID(context) else { return forbidden(request) }
        return await change(request, context: context, action: "dm:UpdateWebhook", resource: { $0.resource("webhook", id.lowercasedString) },
                            then: { request, context, notice in await webhookPage(request, context: context, notice: notice) }) { principal, form, actor in
            let types = try WebhookEventTypes.validate(Self.whChosenTypes(form))
            let url = try await deps.webhookGuard.check((form["url"] ?? "").trimmingCharacters(in: .whitespaces)).target.url
            _ = try await deps.webhooks.update(tenantID: principal.tenantID, id: id, url: url, eventTypes: types, enabled: nil, actor: actor, now: now())
            return "wh_saved"
        }
    }

    /// The event types a form ticked: `ev_all` is `*`, else each `ev_<type>`.
    private static func whChosenTypes(_ form: [String: String]) -> [String] {
        form["ev_all"] != nil ? ["*"] : WebhookEventTypes.all.filter { form["ev_" + $0] != nil }
    }

    func deleteWebhook(_ request: Request, context: HeraldRequestContext) async -> Response {
        guard let id = whID(context) else { return forbidden(request) }
        return await change(request, context: context, action: "dm:DeleteWebhook", resource: { $0.resource("webhook", id.lowercasedString) },
                            then: { request, context, notice in await webhooksPage(request, context: context, notice: notice) }) { principal, _, actor in
            try await deps.webhooks.delete(tenantID: principal.tenantID, id: id, actor: actor)
            return "wh_deleted"
        }
    }

    // MARK: One endpoint

    /// One endpoint (dm:GetWebhook on it): its facts, rotate and test where allowed, and its delivery log
    /// (dm:ListWebhookDeliveries), 20 at a time, newest first, filtered by status.
    func webhookPage(_ request: Request, context: HeraldRequestContext, notice: String?, secret: String? = nil) async -> Response {
        await showObject(request, id: context.parameters.get("id"), kind: "webhook", action: "dm:GetWebhook", missing: whMissing) { viewer, id in
            let resource = viewer.principal.resource("webhook", id.lowercasedString)
            let hook = try await deps.webhooks.get(tenantID: viewer.principal.tenantID, id: id)
            let (stateClass, stateText) = whState(hook, viewer)
            let query = request.uri.queryParameters
            let status = query.get("status").flatMap { ["pending", "succeeded", "failed", "cancelled"].contains($0) ? $0 : nil }
            let before = query.get("before").flatMap { UUID(uuidString: $0) }
            var values: [String: Any] = [
                "hook": ["id": id.lowercasedString, "url": hook.url, "events": hook.eventTypes.joined(separator: ", "), "stateClass": stateClass,
                         "stateText": stateText, "created": Self.whTime(hook.createdAt), "updated": Self.whTime(hook.updatedAt),
                         "failingSince": hook.failingSince.map(Self.whTime) ?? false,
                         "previousUntil": hook.previousSecretExpiresAt.map(Self.whTime) ?? false,
                         "toggle": hook.enabled ? "disable" : "enable", "toggleText": viewer[hook.enabled ? "wh_disable" : "wh_enable"]] as [String: Any],
                "canRotate": viewer.may("dm:RotateWebhookSecret", resource), "canTest": viewer.may("dm:TestWebhook", resource) && hook.enabled,
                "canUpdate": viewer.may("dm:UpdateWebhook", resource), "canDelete": viewer.may("dm:DeleteWebhook", resource),
                "secret": secret ?? false,
                "editTypes": Self.whEventTypes.map { type -> [String: Any] in
                    var type = type
                    type["checked"] = hook.eventTypes.contains(type["type"] as? String ?? "")
                    return type
                },
                "allChecked": hook.eventTypes == ["*"],
                "statuses": ["pending", "succeeded", "failed", "cancelled"].map { ["value": $0, "name": viewer["wh_status_" + $0], "selected": $0 == status] },
            ]
            if viewer.may("dm:ListWebhookDeliveries", resource) {
                let limit = 20
                let items = try await deps.webhooks.deliveries(tenantID: viewer.principal.tenantID, endpointID: id, status: status, before: before, limit: limit)
                let canReplay = viewer.may("dm:RetryWebhookDelivery", resource)
                values["log"] = [
                    "rows": items.map { item -> [String: Any] in
                        ["id": item.id.lowercasedString, "time": Self.whTime(item.attemptLog.last?.at ?? item.createdAt), "event": item.eventType,
                         "attempts": item.attempts, "status": Self.whStatusClass(item.status), "statusText": viewer["wh_status_" + item.status],
                         "code": item.lastHTTPStatus.map(String.init) ?? (item.lastError == nil ? "—" : viewer["wh_noAnswer"]),
                         "canReplay": canReplay && item.status != "pending"]
                    },
                    "hasRows": !items.isEmpty, "pending": items.contains { $0.status == "pending" },
                    // The live refresh fetches this same view (its filter and page), whatever URL the page was posted to.
                    "src": "/console/webhooks/\(id.lowercasedString)?" + [status.map { "status=\($0)" }, before.map { "before=\($0.lowercasedString)" }]
                        .compactMap { $0 }.joined(separator: "&"),
                    "next": items.count == limit ? "/console/webhooks/\(id.lowercasedString)?before=\(items.last!.id.lowercasedString)"
                        + (status.map { "&status=\($0)" } ?? "") : false,
                    "first": before != nil ? "/console/webhooks/\(id.lowercasedString)" + (status.map { "?status=\($0)" } ?? "") : false,
                ] as [String: Any]
            }
            return page(viewer, title: "webhooks", "wh-detail", values, notice: notice)
        }
    }

    func rotateWebhookSecret(_ request: Request, context: HeraldRequestContext) async -> Response {
        guard let id = whID(context) else { return forbidden(request) }
        var secret: String?
        return await change(request, context: context, action: "dm:RotateWebhookSecret", resource: { $0.resource("webhook", id.lowercasedString) },
                            then: { request, context, notice in await webhookPage(request, context: context, notice: notice, secret: secret) }) { principal, _, actor in
            let (_, rotated) = try await deps.webhooks.rotateSecret(tenantID: principal.tenantID, id: id, actor: actor, now: now())
            secret = rotated.description
            return "wh_rotated"
        }
    }

    func testWebhook(_ request: Request, context: HeraldRequestContext) async -> Response {
        guard let id = whID(context) else { return forbidden(request) }
        return await change(request, context: context, action: "dm:TestWebhook", resource: { $0.resource("webhook", id.lowercasedString) },
                            then: { request, context, notice in await webhookPage(request, context: context, notice: notice) }) { principal, _, _ in
            _ = try await deps.webhooks.test(tenantID: principal.tenantID, endpointID: id, now: now())
            return "wh_tested"
        }
    }

    // MARK: One delivery

    /// One delivery (dm:ListWebhookDeliveries on its endpoint): the request Herald POSTs (headers and body) and every
    /// attempt's answer (status, latency, the first kilobyte of the body, or the error); replay where allowed.
    func webhookDeliveryPage(_ request: Request, context: HeraldRequestContext) async -> Response {
        await showObject(request, id: context.parameters.get("id"), kind: "webhook", action: "dm:ListWebhookDeliveries", missing: whMissing) { viewer, id in
            guard let deliveryID = whID(context, "did") else { return whMissing(viewer) }
            let resource = viewer.principal.resource("webhook", id.lowercasedString)
            let hook = try await deps.webhooks.get(tenantID: viewer.principal.tenantID, id: id)
            let (record, body) = try await deps.webhooks.consoleDelivery(tenantID: viewer.principal.tenantID, endpointID: id, deliveryID: deliveryID)
            let webhookID = "msg_" + record.id.lowercasedString.replacingOccurrences(of: "-", with: "")
            var headers = ["content-type: application/json", "user-agent: Herald-Webhooks/1.0", "webhook-id: \(webhookID)"]
            if let last = record.attemptLog.last { headers.append("webhook-timestamp: \(Int(last.at.timeIntervalSince1970))") }
            headers.append("webhook-signature: v1,… (\(viewer["wh_signedWith"]))")
            let attempts: [[String: Any]] = record.attemptLog.enumerated().map { index, attempt in
                ["number": index + 1, "time": Self.whTime(attempt.at), "code": attempt.httpStatus.map(String.init) ?? viewer["wh_noAnswer"],
                 "latency": attempt.latencyMs, "error": attempt.error ?? false, "response": attempt.response ?? false]
            }
            return page(viewer, title: "webhooks", "wh-delivery", [
                "hookId": id.lowercasedString, "url": hook.url, "id": record.id.lowercasedString, "event": record.eventType,
                "status": Self.whStatusClass(record.status), "statusText": viewer["wh_status_" + record.status], "attempts": record.attempts,
                "created": Self.whTime(record.createdAt), "next": record.nextAttemptAt.map(Self.whTime) ?? false,
                "headers": headers.joined(separator: "\n"), "body": body, "tries": attempts, "pending": record.status == "pending",
                "canReplay": viewer.may("dm:RetryWebhookDelivery", resource) && record.status != "pending",
            ])
        }
    }

    func replayWebhookDelivery(_ request: Request, context: HeraldRequestContext) async -> Response {
        guard let id = whID(context), let deliveryID = whID(context, "did") else { return forbidden(request) }
        return await change(request, context: context, action: "dm:RetryWebhookDelivery", resource: { $0.resource("webhook", id.lowercasedString) },
                            then: { request, context, notice in await webhookPage(request, context: context, notice: notice) }) { principal, _, actor in
            _ = try await deps.webhooks.retry(tenantID: principal.tenantID, endpointID: id, deliveryID: deliveryID, actor: actor, now: now())
            return "wh_replayed"
        }
    }
}

extension ConsolePages {
    static let webhookPages: [String: String] = [
        "wh-list": """
            <h1>{{t.webhooks}}</h1>
            {{#notice}}<p class="notice" role="status" id="wh-notice">{{notice}}</p>{{/notice}}
            {{#secret}}
            <section class="card" aria-labelledby="wh-secret-title">
              <h2 id="wh-secret-title">{{t.wh_secretTitle}}</h2>
              <p><code class="copy value" id="wh-secret">{{secret}}</code></p>
              <p class="muted">{{t.wh_secretOnce}}</p>
            </section>
            {{/secret}}
            {{#canCreate}}
            <form method="post" action="/console/webhooks" class="card" id="wh-add">
              <h2>{{t.wh_add}}</h2>
              <input type="hidden" name="csrf" value="{{csrf}}">
              <label for="wh-url">{{t.wh_url}}</label>
              <input id="wh-url" name="url" type="url" required maxlength="2048" placeholder="https://example.com/herald-events">
              <fieldset>
                <legend>{{t.wh_events}}</legend>
                <label for="wh-ev-all"><input type="checkbox" id="wh-ev-all" name="ev_all"> {{t.wh_allEvents}}</label>
                {{#eventTypes}}<label for="wh-ev-{{slug}}"><input type="checkbox" id="wh-ev-{{slug}}" name="ev_{{type}}"> <code>{{type}}</code></label>
                {{/eventTypes}}
              </fieldset>
              <button type="submit" id="wh-add-submit">{{t.add}}</button>
            </form>
            {{/canCreate}}
            <div class="card scroll">
            <table id="wh-table">
              <thead><tr><th scope="col">{{t.wh_url}}</th><th scope="col">{{t.wh_events}}</th><th scope="col">{{t.status}}</th><th scope="col">{{t.wh_created}}</th><th scope="col">{{t.wh_actions}}</th></tr></thead>
              <tbody>
              {{#hooks}}<tr id="wh-row-{{id}}">
                <td><a href="/console/webhooks/{{id}}" id="wh-open-{{id}}"><code class="value">{{url}}</code></a></td><td>{{events}}</td>
                <td class="status-{{stateClass}}">{{stateText}}</td><td>{{created}}</td>
                <td><div class="actions">
                {{#canUpdate}}<form method="post" action="/console/webhooks/{{id}}/{{toggle}}"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="secondary" id="wh-toggle-{{id}}">{{toggleText}}</button></form>{{/canUpdate}}
                {{#canDelete}}<form method="post" action="/console/webhooks/{{id}}/delete"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="danger" id="wh-delete-{{id}}">{{t.wh_delete}}</button></form>{{/canDelete}}
                </div></td>
              </tr>{{/hooks}}
              </tbody>
            </table>
            {{^hooks}}<p class="muted">{{t.wh_none}}</p>{{/hooks}}
            </div>
            """,
        "wh-detail": """
            <p><a href="/console/webhooks">{{t.wh_back}}</a></p>
            {{#hook}}
            <h1>{{t.wh_endpoint}}</h1>
            {{#notice}}<p class="notice" role="status" id="wh-notice">{{notice}}</p>{{/notice}}
            {{#secret}}
            <section class="card" aria-labelledby="wh-secret-title">
              <h2 id="wh-secret-title">{{t.wh_newSecretTitle}}</h2>
              <p><code class="copy value" id="wh-secret">{{secret}}</code></p>
              <p class="muted">{{t.wh_secretOnce}} {{t.wh_overlap}}</p>
            </section>
            {{/secret}}
            <section class="card" aria-labelledby="wh-endpoint-title">
              <h2 id="wh-endpoint-title"><code class="value" id="wh-url-shown">{{url}}</code></h2>
              <dl class="facts">
                <div><dt>{{t.status}}</dt><dd class="status-{{stateClass}}" id="wh-state">{{stateText}}</dd></div>
                <div><dt>{{t.wh_events}}</dt><dd>{{events}}</dd></div>
                <div><dt>{{t.wh_created}}</dt><dd>{{created}}</dd></div>
                {{#failingSince}}<div><dt>{{t.wh_failingSince}}</dt><dd>{{failingSince}}</dd></div>{{/failingSince}}
                {{#previousUntil}}<div><dt>{{t.wh_previousUntil}}</dt><dd>{{previousUntil}}</dd></div>{{/previousUntil}}
              </dl>
              <div class="actions">
              {{#canRotate}}<form method="post" action="/console/webhooks/{{id}}/rotate"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" id="wh-rotate">{{t.wh_rotate}}</button></form>{{/canRotate}}
              {{#canTest}}<form method="post" action="/console/webhooks/{{id}}/test"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="secondary" id="wh-test">{{t.wh_test}}</button></form>{{/canTest}}
              {{#canUpdate}}<form method="post" action="/console/webhooks/{{id}}/{{toggle}}"><input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="from" value="detail"><button type="submit" class="secondary" id="wh-toggle">{{toggleText}}</button></form>{{/canUpdate}}
              {{#canDelete}}<form method="post" action="/console/webhooks/{{id}}/delete"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="danger" id="wh-delete">{{t.wh_delete}}</button></form>{{/canDelete}}
              </div>
              {{#canUpdate}}
              <details id="wh-edit-details">
                <summary>{{t.wh_edit}}</summary>
                <form method="post" action="/console/webhooks/{{id}}/edit" id="wh-edit">
                  <input type="hidden" name="csrf" value="{{csrf}}">
                  <label for="wh-edit-url">{{t.wh_url}}</label>
                  <input id="wh-edit-url" name="url" type="url" required maxlength="2048" value="{{url}}">
                  <fieldset>
                    <legend>{{t.wh_events}}</legend>
                    <label for="wh-edit-ev-all"><input type="checkbox" id="wh-edit-ev-all" name="ev_all"{{#allChecked}} checked{{/allChecked}}> {{t.wh_allEvents}}</label>
                    {{#editTypes}}<label for="wh-edit-ev-{{slug}}"><input type="checkbox" id="wh-edit-ev-{{slug}}" name="ev_{{type}}"{{#checked}} checked{{/checked}}> <code>{{type}}</code></label>
                    {{/editTypes}}
                  </fieldset>
                  <button type="submit" id="wh-edit-submit">{{t.wh_save}}</button>
                </form>
              </details>
              {{/canUpdate}}
            </section>
            <section class="card" aria-labelledby="wh-log-title">
              <h2 id="wh-log-title">{{t.wh_log}}</h2>
              {{#log}}
              <form method="get" action="/console/webhooks/{{id}}" class="filters">
                <div><label for="wh-status">{{t.status}}</label>
                <select id="wh-status" name="status"><option value="">{{t.wh_status_any}}</option>{{#statuses}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{name}}</option>{{/statuses}}</select></div>
                <div><button type="submit" class="secondary" id="wh-filter">{{t.wh_filter}}</button></div>
              </form>
              <div id="wh-log" data-src="{{src}}"{{#pending}} data-refresh="3"{{/pending}}>
              {{#hasRows}}<div class="scroll"><table id="wh-deliveries">
                <thead><tr><th scope="col">{{t.wh_time}}</th><th scope="col">{{t.wh_event}}</th><th scope="col">{{t.wh_attempts}}</th><th scope="col">{{t.status}}</th><th scope="col">{{t.wh_code}}</th><th scope="col">{{t.wh_actions}}</th></tr></thead>
                <tbody>
                {{#rows}}<tr id="wh-delivery-{{id}}"><td>{{time}}</td><td><code>{{event}}</code></td><td>{{attempts}}</td><td class="{{status}}">{{statusText}}</td><td>{{code}}</td>
                  <td><div class="actions"><a href="/console/webhooks/{{hook.id}}/deliveries/{{id}}" id="wh-view-{{id}}">{{t.wh_view}}</a>
                  {{#canReplay}}<form method="post" action="/console/webhooks/{{hook.id}}/deliveries/{{id}}/replay"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="secondary" id="wh-replay-{{id}}">{{t.wh_replay}}</button></form>{{/canReplay}}
                  </div></td></tr>{{/rows}}
                </tbody>
              </table></div>{{/hasRows}}
              {{^hasRows}}<p class="muted">{{t.wh_noDeliveries}}</p>{{/hasRows}}
              </div>
              <p class="pager">{{#first}}<a href="{{first}}">{{t.wh_newest}}</a>{{/first}}{{#next}}<a href="{{next}}" id="wh-older">{{t.wh_older}}</a>{{/next}}</p>
              {{/log}}
              {{^log}}<p class="muted">{{t.notAllowed}}</p>{{/log}}
            </section>
            {{/hook}}
            """,
        "wh-delivery": """
            <p><a href="/console/webhooks/{{hookId}}">{{t.wh_backEndpoint}}</a></p>
            <h1>{{t.wh_delivery}}</h1>
            <section class="card" aria-labelledby="wh-d-title" id="wh-d" data-src="/console/webhooks/{{hookId}}/deliveries/{{id}}"{{#pending}} data-refresh="3"{{/pending}}>
              <h2 id="wh-d-title"><code>{{event}}</code> <span class="muted">{{id}}</span></h2>
              <dl class="facts">
                <div><dt>{{t.status}}</dt><dd id="wh-d-status" class="{{status}}">{{statusText}}</dd></div>
                <div><dt>{{t.wh_attempts}}</dt><dd>{{attempts}}</dd></div>
                <div><dt>{{t.wh_created}}</dt><dd>{{created}}</dd></div>
                {{#next}}<div><dt>{{t.wh_nextAttempt}}</dt><dd>{{next}}</dd></div>{{/next}}
              </dl>
              {{#canReplay}}<form method="post" action="/console/webhooks/{{hookId}}/deliveries/{{id}}/replay"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" id="wh-replay">{{t.wh_replay}}</button></form>{{/canReplay}}
            </section>
            <section class="card" aria-labelledby="wh-request-title">
              <h2 id="wh-request-title">{{t.wh_request}}</h2>
              <p>POST <code class="value">{{url}}</code></p>
              <h3>{{t.wh_headers}}</h3>
              <pre id="wh-request-headers">{{headers}}</pre>
              <h3>{{t.wh_body}}</h3>
              <pre id="wh-request-body">{{body}}</pre>
            </section>
            <section class="card" aria-labelledby="wh-response-title">
              <h2 id="wh-response-title">{{t.wh_responses}}</h2>
              {{#tries}}
              <div class="wh-attempt" id="wh-attempt-{{number}}">
                <h3>{{t.wh_attempt}} {{number}} · {{time}}</h3>
                <p>{{t.wh_code}}: <strong>{{code}}</strong> · {{latency}} ms</p>
                {{#error}}<p class="error">{{error}}</p>{{/error}}
                {{#response}}<pre>{{response}}</pre>{{/response}}
              </div>
              {{/tries}}
              {{^tries}}<p class="muted">{{t.wh_notYet}}</p>{{/tries}}
            </section>
            """,
    ]

    static let webhookEnglish: [String: String] = [
        "wh_add": "Add an endpoint", "wh_url": "URL", "wh_events": "Event types", "wh_allEvents": "All events (*)", "wh_created": "Created",
        "wh_actions": "Actions", "wh_enable": "Enable", "wh_disable": "Disable", "wh_delete": "Delete", "wh_none": "No webhook endpoints yet.",
        "wh_enabled": "Enabled", "wh_disabled": "Disabled", "wh_reason_tenant": "by you", "wh_reason_gone": "the receiver answered 410 Gone",
        "wh_reason_failing": "failing for 5 days",
        "wh_secretTitle": "The endpoint's signing secret", "wh_newSecretTitle": "The new signing secret",
        "wh_secretOnce": "Copy it now: it is shown this once and cannot be read again.",
        "wh_overlap": "The previous secret still signs for 24 hours, so receivers can switch over.",
        "wh_added": "Added. Copy the secret below to check the signatures.", "wh_enabledNotice": "Enabled.", "wh_disabledNotice": "Disabled.",
        "wh_deleted": "Deleted.", "wh_rotated": "The secret was rotated.", "wh_tested": "A webhook.test event is on its way.",
        "wh_replayed": "The delivery will be sent again now.", "wh_edit": "Change the URL or event types", "wh_save": "Save",
        "wh_saved": "Saved.",
        "wh_missing": "Not found", "wh_missingText": "There is no such webhook endpoint or delivery.", "wh_back": "All endpoints",
        "wh_endpoint": "Webhook endpoint", "wh_failingSince": "Failing since", "wh_previousUntil": "Previous secret signs until",
        "wh_rotate": "Rotate secret", "wh_test": "Send test event", "wh_log": "Delivery log", "wh_status_any": "Any",
        "wh_status_pending": "Pending", "wh_status_succeeded": "Succeeded", "wh_status_failed": "Failed", "wh_status_cancelled": "Cancelled",
        "wh_filter": "Filter", "wh_time": "Time", "wh_event": "Event", "wh_attempts": "Attempts", "wh_code": "Response code",
        "wh_view": "Request and response", "wh_replay": "Replay", "wh_noDeliveries": "No deliveries.", "wh_newest": "Newest",
        "wh_older": "Older", "wh_noAnswer": "no answer", "wh_backEndpoint": "Back to the endpoint", "wh_delivery": "Webhook delivery",
        "wh_nextAttempt": "Next attempt", "wh_request": "Request", "wh_headers": "Headers", "wh_body": "Body", "wh_responses": "Responses",
        "wh_attempt": "Attempt", "wh_notYet": "Not attempted yet.",
        "wh_signedWith": "HMAC-SHA256 of id.timestamp.body with the endpoint's secret",
    ]

    static let webhookChinese: [String: String] = [
        "wh_add": "添加端点", "wh_url": "URL", "wh_events": "事件类型", "wh_allEvents": "全部事件 (*)", "wh_created": "创建时间",
        "wh_actions": "操作", "wh_enable": "启用", "wh_disable": "停用", "wh_delete": "删除", "wh_none": "还没有 Webhook 端点。",
        "wh_enabled": "已启用", "wh_disabled": "已停用", "wh_reason_tenant": "由您停用", "wh_reason_gone": "接收方返回 410 Gone",
        "wh_reason_failing": "连续失败 5 天",
        "wh_secretTitle": "端点的签名密钥", "wh_newSecretTitle": "新的签名密钥",
        "wh_secretOnce": "请立即复制：密钥只显示这一次，之后无法再读取。",
        "wh_overlap": "旧密钥在 24 小时内仍会签名，以便接收方切换。",
        "wh_added": "已添加。请复制下面的密钥用于校验签名。", "wh_enabledNotice": "已启用。", "wh_disabledNotice": "已停用。",
        "wh_deleted": "已删除。", "wh_rotated": "密钥已轮换。", "wh_tested": "webhook.test 事件正在发送。",
        "wh_replayed": "该投递将立即重新发送。", "wh_edit": "修改 URL 或事件类型", "wh_save": "保存", "wh_saved": "已保存。",
        "wh_missing": "未找到", "wh_missingText": "没有这个 Webhook 端点或投递。", "wh_back": "全部端点",
        "wh_endpoint": "Webhook 端点", "wh_failingSince": "失败开始于", "wh_previousUntil": "旧密钥签名截止",
        "wh_rotate": "轮换密钥", "wh_test": "发送测试事件", "wh_log": "投递记录", "wh_status_any": "全部",
        "wh_status_pending": "等待中", "wh_status_succeeded": "成功", "wh_status_failed": "失败", "wh_status_cancelled": "已取消",
        "wh_filter": "筛选", "wh_time": "时间", "wh_event": "事件", "wh_attempts": "尝试次数", "wh_code": "响应码",
        "wh_view": "请求与响应", "wh_replay": "重放", "wh_noDeliveries": "没有投递。", "wh_newest": "最新",
        "wh_older": "更早", "wh_noAnswer": "无应答", "wh_backEndpoint": "返回端点", "wh_delivery": "Webhook 投递",
        "wh_nextAttempt": "下次尝试", "wh_request": "请求", "wh_headers": "请求头", "wh_body": "正文", "wh_responses": "响应",
        "wh_attempt": "尝试", "wh_notYet": "尚未尝试。",
        "wh_signedWith": "用端点密钥对 id.timestamp.body 做 HMAC-SHA256",
    ]
}
