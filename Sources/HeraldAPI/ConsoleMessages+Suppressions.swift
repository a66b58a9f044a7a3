import Foundation
import HTTPTypes
import HeraldCore
import HeraldStore
import Hummingbird
import NIOCore

/// The console's suppressions and invalid addresses (issue #19): search, add and remove suppressions, remove invalid
/// addresses, both exported as the REST API's CSV; the same store calls and RAM actions as `/v1/suppressions` and
/// `/v1/invalid-addresses` (QuerySuppression, AddSuppression, RemoveSuppression, QueryInvalidAddress, RemoveInvalidAddress).
extension Console {
    func registerSuppressionPages(on router: Router<HeraldRequestContext>) {
        router.get("/console/suppressions") { request, context in await suppressionsPage(request, context: context) }
        router.post("/console/suppressions") { request, context in await addSuppression(request, context: context) }
        router.post("/console/suppressions/remove") { request, context in await removeSuppression(request, context: context) }
        router.get("/console/suppressions/export") { request, _ in await suppressionsExport(request) }
        router.post("/console/invalid-addresses/remove") { request, context in await removeInvalidAddress(request, context: context) }
        router.get("/console/invalid-addresses/export") { request, _ in await invalidAddressesExport(request) }
    }

    /// Rows a search shows of each list (the export has them all).
    static let suppressionRowsShown = 200

    /// `GET /console/suppressions?q=`: both lists, filtered by a part of the address, each under its own policy.
    func suppressionsPage(_ request: Request, context: HeraldRequestContext, notice: String? = nil) async -> Response {
        await show(request, action: nil) { viewer in
            let mayList = viewer.may("dm:QuerySuppression"), mayInvalid = viewer.may("dm:QueryInvalidAddress")
            guard mayList || mayInvalid else { return forbidden(request) }
            let q = String((request.uri.queryParameters.get("q") ?? "").trimmingCharacters(in: .whitespacesAndNewlines).prefix(254))
            let shown = Self.suppressionRowsShown
            var context: [String: Any] = ["q": q]
            if mayList {
                let rows = try await deps.sending.findSuppressions(tenantID: viewer.principal.tenantID, containing: q.isEmpty ? nil : q, limit: shown + 1)
                let canRemove = viewer.may("dm:RemoveSuppression")
                context["suppressed"] = [
                    "rows": rows.prefix(shown).map { row -> [String: Any] in
                        ["address": row.address, "scope": row.scope == "*" ? viewer["sup_everything"] : row.scope,
                         "source": viewer["sup_source_" + row.source], "time": Self.msgTime(row.createdAt), "at": row.createdAt.ISO8601Format(),
                         "canRemove": canRemove, "csrf": viewer.csrf]
                    },
                    "more": rows.count > shown, "canAdd": viewer.may("dm:AddSuppression"), "canRemove": canRemove,
                ] as [String: Any]
            }
            if mayInvalid {
                let rows = try await deps.sending.findInvalidAddresses(tenantID: viewer.principal.tenantID, containing: q.isEmpty ? nil : q, limit: shown + 1)
                let canRemove = viewer.may("dm:RemoveInvalidAddress")
                context["invalid"] = [
                    "rows": rows.prefix(shown).map { row -> [String: Any] in
                        ["address": row.address, "bounces": row.hardBounces, "listed": viewer[row.listed ? "msg_true" : "msg_false"],
                         "time": Self.msgTime(row.updatedAt), "at": row.updatedAt.ISO8601Format(), "canRemove": canRemove, "csrf": viewer.csrf]
                    },
                    "more": rows.count > shown, "canRemove": canRemove,
                ] as [String: Any]
            }
            return page(viewer, title: "suppressions", "sup_page", context, notice: notice)
        }
    }

    func addSuppression(_ request: Request, context: HeraldRequestContext) async -> Response {
        await change(request, context: context, action: "dm:AddSuppression", resource: { $0.tenantResource }, then: suppressionsPage) { principal, form, actor in
            _ = try await deps.sending.addSuppression(tenantID: principal.tenantID, address: (form["address"] ?? "").trimmingCharacters(in: .whitespaces),
                                                      actor: actor)
            return "sup_added"
        }
    }

    func removeSuppression(_ request: Request, context: HeraldRequestContext) async -> Response {
        await change(request, context: context, action: "dm:RemoveSuppression", resource: { $0.tenantResource }, then: suppressionsPage) { principal, form, actor in
            try await deps.sending.removeSuppression(tenantID: principal.tenantID, address: form["address"] ?? "", actor: actor)
            return "sup_removed"
        }
    }

    func removeInvalidAddress(_ request: Request, context: HeraldRequestContext) async -> Response {
        await change(request, context: context, action: "dm:RemoveInvalidAddress", resource: { $0.tenantResource }, then: suppressionsPage) { principal, form, actor in
            try await deps.sending.removeInvalidAddress(tenantID: principal.tenantID, address: form["address"] ?? "", actor: actor)
            return "sup_invalidRemoved"
        }
    }

    /// `GET /console/suppressions/export`: the REST API's CSV (`GET /v1/suppressions?format=csv`) as a download.
    func suppressionsExport(_ request: Request) async -> Response {
        await show(request, action: "dm:QuerySuppression") { viewer in
            let rows = try await deps.sending.listSuppressions(tenantID: viewer.principal.tenantID, limit: APIHandler.csvRows).map {
                [$0.address, $0.scope, $0.source, APIHandler.csvTime($0.createdAt)]
            }
            return Self.supCSVDownload(CSV.document(header: ["address", "scope", "source", "createdAt"], rows: rows), name: "suppressions.csv")
        }
    }

    /// `GET /console/invalid-addresses/export`: the REST API's CSV (`GET /v1/invalid-addresses?format=csv`) as a download.
    func invalidAddressesExport(_ request: Request) async -> Response {
        await show(request, action: "dm:QueryInvalidAddress") { viewer in
            let rows = try await deps.sending.invalidAddresses(tenantID: viewer.principal.tenantID, limit: APIHandler.csvRows).map {
                [$0.address, String($0.hardBounces), String($0.listed), APIHandler.csvTime($0.updatedAt)]
            }
            return Self.supCSVDownload(CSV.document(header: ["address", "hardBounces", "listed", "updatedAt"], rows: rows), name: "invalid-addresses.csv")
        }
    }

    static func supCSVDownload(_ text: String, name: String) -> Response {
        Response(status: .ok, headers: [.contentType: "text/csv; charset=utf-8", .contentDisposition: "attachment; filename=\"\(name)\"",
                                        .cacheControl: "no-store", HTTPField.Name("X-Content-Type-Options")!: "nosniff"],
                 body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}

extension ConsolePages {
    static let suppressionPages: [String: String] = [
        "sup_page": """
            <h1>{{t.suppressions}}</h1>
            {{#notice}}<p class="notice" role="status">{{notice}}</p>{{/notice}}
            <form method="get" action="/console/suppressions" class="card filters" id="sup-search" role="search">
              <div><label for="sup-q">{{t.sup_find}}</label><input id="sup-q" name="q" type="search" maxlength="254" value="{{q}}"></div>
              <div><button type="submit" id="sup-search-button">{{t.msg_search}}</button></div>
            </form>
            <section class="card" aria-labelledby="sup-title">
              <h2 id="sup-title">{{t.sup_suppressed}}</h2>
              {{#suppressed}}
              <p class="muted">{{t.sup_explain}}</p>
              {{#canAdd}}
              <form method="post" action="/console/suppressions" id="sup-add">
                <input type="hidden" name="csrf" value="{{csrf}}">
                <label for="sup-address">{{t.sup_newAddress}}</label>
                <input id="sup-address" name="address" type="email" required maxlength="254" placeholder="someone@example.com">
                <button type="submit" id="sup-add-button">{{t.sup_add}}</button>
              </form>
              {{/canAdd}}
              <p class="actions"><a id="sup-export" href="/console/suppressions/export" download>{{t.sup_export}}</a></p>
              <div class="scroll"><table id="sup-table">
                <thead><tr><th scope="col">{{t.senderAddress}}</th><th scope="col">{{t.sup_scope}}</th><th scope="col">{{t.sup_source}}</th><th scope="col">{{t.sup_since}}</th>{{#canRemove}}<th scope="col"><span class="muted">{{t.sup_actions}}</span></th>{{/canRemove}}</tr></thead>
                <tbody>
                {{#rows}}<tr class="sup-row"><td><code>{{address}}</code></td><td>{{scope}}</td><td>{{source}}</td><td><time datetime="{{at}}">{{time}}</time></td>{{#canRemove}}<td><form method="post" action="/console/suppressions/remove" class="inline"><input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="address" value="{{address}}"><button type="submit" class="danger sup-remove" aria-label="{{t.sup_remove}} {{address}}">{{t.sup_remove}}</button></form></td>{{/canRemove}}</tr>{{/rows}}
                </tbody>
              </table></div>
              {{^rows}}<p class="muted" id="sup-none">{{t.sup_none}}</p>{{/rows}}
              {{#more}}<p class="muted">{{t.sup_more}}</p>{{/more}}
              {{/suppressed}}
              {{^suppressed}}<p class="muted">{{t.notAllowed}}</p>{{/suppressed}}
            </section>
            <section class="card" aria-labelledby="inv-title">
              <h2 id="inv-title">{{t.sup_invalid}}</h2>
              {{#invalid}}
              <p class="muted">{{t.sup_invalidExplain}}</p>
              <p class="actions"><a id="inv-export" href="/console/invalid-addresses/export" download>{{t.sup_export}}</a></p>
              <div class="scroll"><table id="inv-table">
                <thead><tr><th scope="col">{{t.senderAddress}}</th><th scope="col">{{t.sup_hardBounces}}</th><th scope="col">{{t.sup_listed}}</th><th scope="col">{{t.sup_updated}}</th>{{#canRemove}}<th scope="col"><span class="muted">{{t.sup_actions}}</span></th>{{/canRemove}}</tr></thead>
                <tbody>
                {{#rows}}<tr class="inv-row"><td><code>{{address}}</code></td><td>{{bounces}}</td><td>{{listed}}</td><td><time datetime="{{at}}">{{time}}</time></td>{{#canRemove}}<td><form method="post" action="/console/invalid-addresses/remove" class="inline"><input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="address" value="{{address}}"><button type="submit" class="danger inv-remove" aria-label="{{t.sup_remove}} {{address}}">{{t.sup_remove}}</button></form></td>{{/canRemove}}</tr>{{/rows}}
                </tbody>
              </table></div>
              {{^rows}}<p class="muted" id="inv-none">{{t.sup_none}}</p>{{/rows}}
              {{#more}}<p class="muted">{{t.sup_more}}</p>{{/more}}
              {{/invalid}}
              {{^invalid}}<p class="muted">{{t.notAllowed}}</p>{{/invalid}}
            </section>
            """,
    ]

    static let suppressionEnglish: [String: String] = [
        "sup_find": "Find an address (or a part of it)", "sup_suppressed": "Suppressed addresses",
        "sup_explain": "Mail is not sent to these addresses (those added here, complaints, unsubscribes; an unsubscribe stops batch mail only).",
        "sup_newAddress": "Suppress an address", "sup_add": "Suppress", "sup_export": "Export as CSV", "sup_scope": "Scope",
        "sup_source": "Source", "sup_since": "Since", "sup_actions": "Actions", "sup_remove": "Remove", "sup_none": "No addresses.",
        "sup_more": "Only the first 200 are shown: narrow the search, or export them all.", "sup_everything": "all mail",
        "sup_source_api": "added by you", "sup_source_unsubscribe": "unsubscribed", "sup_source_complaint": "complaint",
        "sup_invalid": "Invalid addresses", "sup_invalidExplain": "Addresses that bounced for good; once listed, mail to them is dropped.",
        "sup_hardBounces": "Hard bounces", "sup_listed": "Listed", "sup_updated": "Last bounce",
        "sup_added": "The address is suppressed.", "sup_removed": "The suppression was removed.", "sup_invalidRemoved": "The invalid address was removed.",
    ]

    static let suppressionChinese: [String: String] = [
        "sup_find": "查找地址（或地址的一部分）", "sup_suppressed": "抑制的地址",
        "sup_explain": "邮件不会发送到这些地址（在此添加的、投诉的、退订的；退订只停止批量邮件）。",
        "sup_newAddress": "抑制一个地址", "sup_add": "抑制", "sup_export": "导出 CSV", "sup_scope": "范围",
        "sup_source": "来源", "sup_since": "开始时间", "sup_actions": "操作", "sup_remove": "移除", "sup_none": "没有地址。",
        "sup_more": "只显示前 200 个：请缩小搜索范围，或全部导出。", "sup_everything": "所有邮件",
        "sup_source_api": "手动添加", "sup_source_unsubscribe": "退订", "sup_source_complaint": "投诉",
        "sup_invalid": "无效地址", "sup_invalidExplain": "硬退信的地址；列入后，发往这些地址的邮件会被丢弃。",
        "sup_hardBounces": "硬退信次数", "sup_listed": "已列入", "sup_updated": "最近退信",
        "sup_added": "已抑制该地址。", "sup_removed": "已移除该抑制。", "sup_invalidRemoved": "已移除该无效地址。",
    ]
}
