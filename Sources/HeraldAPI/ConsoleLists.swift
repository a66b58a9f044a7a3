import Foundation
import HTTPTypes
import HeraldCore
import HeraldStore
import Hummingbird
import NIOCore

/// Recipient lists in the console (issue #19): the tenant's lists with their member counts and a new one, one list's
/// members (searched by address, a page at a time, one removed), a CSV upload into it (a `multipart/form-data` file
/// input, read with ``MultipartForm`` and imported exactly as `POST /v1/lists/{id}/recipients` imports `text/csv`:
/// ``JSONTextCheck``, ``RecipientImport/fromCSV(_:)``, ``ListStore/importMembers(tenantID:listID:candidates:rejected:actor:)``),
/// the rows it refused with their reasons, the export (the REST export's CSV), and deleting the list. The RAM actions
/// are the REST routes' (`dm:QueryReceiverByParam`, `dm:CreateReceiver`, `dm:DescReceiver`, `dm:QueryReceiverDetail`,
/// `dm:SaveReceiverDetail`, `dm:DeleteReceiverDetail`, `dm:DeleteReceiver`). The test send and batch tasks are in
/// ConsoleLists+Tasks.swift.
extension Console {
    func registerListPages(on router: Router<HeraldRequestContext>) {
        router.get("/console/lists") { request, context in await listsPage(request, context: context) }
        router.post("/console/lists") { request, context in await createList(request, context: context) }
        router.get("/console/lists/{id}") { request, context in await listPage(request, context: context) }
        router.post("/console/lists/{id}/import") { request, context in await importList(request, context: context) }
        router.get("/console/lists/{id}/export") { request, context in await exportList(request, context: context) }
        router.post("/console/lists/{id}/members/delete") { request, context in await removeListMember(request, context: context) }
        router.post("/console/lists/{id}/delete") { request, context in await deleteList(request, context: context) }
        registerTaskPages(on: router)
    }

    /// The largest upload body: the REST import's CSV limit, and room for the form around the file
    /// (``RequestBodyMiddleware`` leaves this route's body to it).
    static let listImportBody = APIHandler.maxImportBody + 64 * 1024

    /// Members on a page of a list.
    static let listPageSize = 50

    // MARK: Pages

    /// The tenant's lists with their member counts; the form for a new one where allowed.
    func listsPage(_ request: Request, context: HeraldRequestContext, notice: String? = nil) async -> Response {
        await show(request, action: "dm:QueryReceiverByParam") { viewer in
            let lists = try await deps.lists.list(tenantID: viewer.principal.tenantID)
            let rows: [[String: Any]] = lists.map { list in
                ["id": list.id.lowercasedString, "name": list.name, "alias": list.alias ?? "", "description": list.description.flatMap { $0.isEmpty ? nil : $0 } ?? false,
                 "members": list.memberCount, "updated": Self.listTime(list.updatedAt)]
            }
            return page(viewer, title: "lists", "lst-lists", ["lists": rows, "canCreate": viewer.may("dm:CreateReceiver")], notice: notice)
        }
    }

    /// One list: its facts, the upload form and the last upload's outcome, its members (`?q=` searched, `?after=` the
    /// page after an address), export, and removing a member or the list, each where allowed.
    func listPage(_ request: Request, context: HeraldRequestContext, notice: String? = nil, imported: ImportResult? = nil) async -> Response {
        await showObject(request, id: context.parameters.get("id"), kind: "list", action: "dm:DescReceiver", missing: listMissing) { viewer, id in
            let resource = viewer.principal.resource("list", id.lowercasedString)
            let tenantID = viewer.principal.tenantID
            let list = try await deps.lists.get(tenantID: tenantID, id: id)
            let canRead = viewer.may("dm:QueryReceiverDetail", resource), canRemove = viewer.may("dm:DeleteReceiverDetail", resource)
            let query = request.method == .get ? request.uri.queryParameters : [:]
            let search = query.get("q").map { String($0.prefix(254)).trimmingCharacters(in: .whitespaces) } ?? ""
            let after = query.get("after").map { String($0.prefix(254)) }
            var context: [String: Any] = [
                "id": id.lowercasedString, "name": list.name, "alias": list.alias ?? "—", "description": list.description.flatMap { $0.isEmpty ? nil : $0 } ?? false,
                "members": list.memberCount, "updated": Self.listTime(list.updatedAt), "q": search, "canRead": canRead,
                "canImport": viewer.may("dm:SaveReceiverDetail", resource), "canExport": canRead, "canDelete": viewer.may("dm:DeleteReceiver", resource),
            ]
            if canRead {
                let members = try await deps.lists.members(tenantID: tenantID, listID: id, search: search, limit: Self.listPageSize, after: after)
                context["rows"] = members.map { member -> [String: Any] in
                    ["address": member.address, "list": id.lowercasedString, "canRemove": canRemove, "added": Self.listTime(member.createdAt),
                     "variables": member.variables.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")]
                }
                let base = "/console/lists/\(id.lowercasedString)"
                if members.count == Self.listPageSize, let last = members.last?.address {
                    context["next"] = base + "?" + Self.listQuery(["q": search, "after": last])
                }
                context["first"] = after == nil ? false : base + (search.isEmpty ? "" : "?" + Self.listQuery(["q": search]))
            }
            if let imported {
                context["result"] = [
                    "summary": viewer["lst_importSummary"].replacingOccurrences(of: "{imported}", with: String(imported.imported))
                        .replacingOccurrences(of: "{rejected}", with: String(imported.rejected.count))
                        .replacingOccurrences(of: "{members}", with: String(imported.members)),
                    "hasRejected": !imported.rejected.isEmpty,
                    "rejected": imported.rejected.map { ["row": $0.row, "reason": $0.reason] as [String: Any] },
                ] as [String: Any]
                context["members"] = imported.members
            }
            return page(viewer, title: "lists", "lst-list", context, notice: notice)
        }
    }

    func listMissing(_ viewer: Viewer) -> Response {
        page(viewer, title: "lists", "message", ["title": viewer["lst_notFound"], "text": viewer["lst_notFoundText"]], status: .notFound)
    }

    // MARK: Changes

    func createList(_ request: Request, context: HeraldRequestContext) async -> Response {
        await change(request, context: context, action: "dm:CreateReceiver", resource: { $0.tenantResource },
                     then: { await listsPage($0, context: $1, notice: $2) }) { principal, form, actor in
            let optional = { (name: String) in form[name].flatMap { $0.isEmpty ? nil : $0 } }
            _ = try await deps.lists.create(tenantID: principal.tenantID, name: form["name"] ?? "", alias: optional("alias"),
                                            description: optional("description"), actor: actor)
            return "lst_created"
        }
    }

    func deleteList(_ request: Request, context: HeraldRequestContext) async -> Response {
        guard let id = context.parameters.get("id").flatMap({ UUID(uuidString: $0) }) else { return forbidden(request) }
        return await change(request, context: context, action: "dm:DeleteReceiver", resource: { $0.resource("list", id.lowercasedString) },
                            then: { await listsPage($0, context: $1, notice: $2) }) { principal, _, actor in
            try await deps.lists.delete(tenantID: principal.tenantID, id: id, actor: actor)
            return "lst_deleted"
        }
    }

    func removeListMember(_ request: Request, context: HeraldRequestContext) async -> Response {
        guard let id = context.parameters.get("id").flatMap({ UUID(uuidString: $0) }) else { return forbidden(request) }
        return await change(request, context: context, action: "dm:DeleteReceiverDetail", resource: { $0.resource("list", id.lowercasedString) },
                            then: { await listPage($0, context: $1, notice: $2) }) { principal, form, actor in
            try await deps.lists.deleteMember(tenantID: principal.tenantID, listID: id, address: form["address"] ?? "", actor: actor)
            return "lst_memberRemoved"
        }
    }

    /// The CSV upload: a `multipart/form-data` form (its `csrf` field and its `file`), through the frame's checks as
    /// ``change(_:context:action:resource:then:_:)`` makes them (session, CSRF token, the RAM action on the list,
    /// refusals audited), then the REST import's steps exactly; the list page again with the outcome row by row.
    func importList(_ request: Request, context: HeraldRequestContext) async -> Response {
        guard let id = context.parameters.get("id").flatMap({ UUID(uuidString: $0) }) else { return forbidden(request) }
        let limit = RequestBodyMiddleware.rules(for: request.uri.path, default: 0).limit
        return await change(request, context: context, read: { request -> MultipartForm? in
            guard let boundary = request.headers[.contentType].flatMap({ MultipartForm.boundary(contentType: $0) }) else { return nil }
            var body = request
            guard let buffer = try? await body.collectBody(upTo: limit) else {
                throw HeraldError(code: "PayloadTooLarge", kind: .tooLarge, message: "The upload is too large.")
            }
            // Without a readable form there is no token to check: refused like a form without one.
            return try? MultipartForm.parse(Array(buffer.readableBytesView), boundary: boundary)
        }, token: { $0.value("csrf") }, action: "dm:SaveReceiverDetail", resource: { $0.resource("list", id.lowercasedString) },
        refused: { request, context, error in
            guard error.kind == .tooLarge else { return await listPage(request, context: context, notice: error.message) }
            let language = Self.language(request), words = ConsolePages.words(language)
            return page(words["lst_tooLarge"] ?? "", "message", ["t": words, "title": words["lst_tooLarge"] ?? "", "text": words["lst_tooLargeText"] ?? ""],
                        language: language, session: nil, who: nil, status: .contentTooLarge)
        }) { principal, form, scoped in
            guard let file = form["file"] else { throw HeraldError.validation("Choose a CSV file to upload.", field: "file") }
            guard file.body.count <= APIHandler.maxImportBody else {
                throw HeraldError(code: "PayloadTooLarge", kind: .tooLarge, message: "The request body is larger than \(APIHandler.maxImportBody) bytes.")
            }
            // As the REST import: NUL or broken UTF-8 would abort the import's transaction in PostgreSQL.
            try JSONTextCheck.validate(text: file.body)
            let (candidates, rejected) = try RecipientImport.fromCSV(file.body)
            let result = try await deps.lists.importMembers(tenantID: principal.tenantID, listID: id, candidates: candidates, rejected: rejected,
                                                            actor: scoped.auditActor)
            return await listPage(request, context: scoped, imported: result)
        }
    }

    /// The members as CSV, the REST export's document (`address,var1,…`, quoted where needed), as a download.
    func exportList(_ request: Request, context: HeraldRequestContext) async -> Response {
        await showObject(request, id: context.parameters.get("id"), kind: "list", action: "dm:QueryReceiverDetail", missing: listMissing) { viewer, id in
            let csv = try await deps.lists.exportCSV(tenantID: viewer.principal.tenantID, listID: id)
            return Response(status: .ok, headers: [
                .contentType: "text/csv; charset=utf-8", .contentDisposition: "attachment; filename=\"list-\(id.lowercasedString).csv\"",
                .cacheControl: "no-store", HTTPField.Name("X-Content-Type-Options")!: "nosniff",
            ], body: .init(byteBuffer: ByteBuffer(string: csv)))
        }
    }

    // MARK: Helpers

    /// A time as the console shows it: UTC to the minute.
    static func listTime(_ date: Date) -> String {
        ConsolePages.time(date)
    }

    /// A query string of the non-empty values, percent-encoded.
    static func listQuery(_ items: KeyValuePairs<String, String>) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~@")
        return items.filter { !$0.value.isEmpty }.map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")" }
            .joined(separator: "&")
    }
}

extension ConsolePages {
    static let listPages: [String: String] = [
        "lst-lists": """
            <h1>{{t.lists}}</h1>
            {{#notice}}<p class="notice" role="status">{{notice}}</p>{{/notice}}
            <p class="actions"><a href="/console/send-test" id="send-test-link">{{t.snd_title}}</a> <a href="/console/tasks">{{t.tasks}}</a></p>
            {{#canCreate}}
            <form method="post" action="/console/lists" class="card" id="list-create">
              <h2>{{t.lst_new}}</h2>
              <input type="hidden" name="csrf" value="{{csrf}}">
              <label for="list-name">{{t.lst_name}}</label>
              <input id="list-name" name="name" required maxlength="64">
              <label for="list-alias">{{t.lst_alias}}</label>
              <input id="list-alias" name="alias" maxlength="64">
              <label for="list-description">{{t.lst_description}}</label>
              <input id="list-description" name="description" maxlength="500">
              <button type="submit">{{t.lst_create}}</button>
            </form>
            {{/canCreate}}
            <div class="card scroll">
            <table id="lists">
              <thead><tr><th scope="col">{{t.lst_name}}</th><th scope="col">{{t.lst_alias}}</th><th scope="col">{{t.lst_members}}</th><th scope="col">{{t.lst_updated}}</th></tr></thead>
              <tbody>
              {{#lists}}<tr><td><a href="/console/lists/{{id}}">{{name}}</a>{{#description}}<br><span class="muted">{{description}}</span>{{/description}}</td><td>{{alias}}</td><td>{{members}}</td><td>{{updated}}</td></tr>{{/lists}}
              </tbody>
            </table>
            {{^lists}}<p class="muted">{{t.lst_none}}</p>{{/lists}}
            </div>
            """,
        "lst-list": """
            <p><a href="/console/lists">← {{t.lists}}</a></p>
            <h1>{{name}}</h1>
            {{#notice}}<p class="notice" role="status" id="list-notice">{{notice}}</p>{{/notice}}
            <section class="card" aria-labelledby="list-about">
              <h2 id="list-about">{{t.lst_about}}</h2>
              <dl class="facts">
                <div><dt>{{t.lst_members}}</dt><dd id="member-count">{{members}}</dd></div>
                <div><dt>{{t.lst_alias}}</dt><dd>{{alias}}</dd></div>
                <div><dt>{{t.lst_updated}}</dt><dd>{{updated}}</dd></div>
              </dl>
              {{#description}}<p>{{description}}</p>{{/description}}
              <div class="actions">
                {{#canExport}}<a id="list-export" href="/console/lists/{{id}}/export">{{t.lst_export}}</a>{{/canExport}}
                {{#canDelete}}<form method="post" action="/console/lists/{{id}}/delete" id="list-delete">
                  <input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="danger">{{t.lst_deleteList}}</button>
                </form>{{/canDelete}}
              </div>
            </section>
            {{#result}}
            <section class="card" id="import-result" role="status" aria-labelledby="import-title">
              <h2 id="import-title">{{t.lst_importDone}}</h2>
              <p id="import-summary">{{summary}}</p>
              {{#hasRejected}}
              <div class="scroll"><table id="import-errors">
                <caption>{{t.lst_rejectedRows}}</caption>
                <thead><tr><th scope="col">{{t.lst_row}}</th><th scope="col">{{t.lst_reason}}</th></tr></thead>
                <tbody>{{#rejected}}<tr><td>{{row}}</td><td class="error">{{reason}}</td></tr>{{/rejected}}</tbody>
              </table></div>
              {{/hasRejected}}
            </section>
            {{/result}}
            {{#canImport}}
            <form method="post" action="/console/lists/{{id}}/import" enctype="multipart/form-data" class="card" id="list-import">
              <h2>{{t.lst_upload}}</h2>
              <input type="hidden" name="csrf" value="{{csrf}}">
              <label for="file">{{t.lst_file}}</label>
              <input id="file" name="file" type="file" accept=".csv,text/csv" required aria-describedby="file-help">
              <p class="muted" id="file-help">{{t.lst_fileHelp}}</p>
              <button type="submit">{{t.lst_uploadButton}}</button>
            </form>
            {{/canImport}}
            <section class="card" aria-labelledby="members-title">
              <h2 id="members-title">{{t.lst_memberList}}</h2>
              {{#canRead}}
              <form method="get" action="/console/lists/{{id}}" class="filters" id="member-search" role="search">
                <div><label for="q">{{t.lst_search}}</label><input id="q" name="q" type="search" maxlength="254" value="{{q}}"></div>
                <div><button type="submit">{{t.lst_searchButton}}</button></div>
              </form>
              <div class="scroll"><table id="members">
                <thead><tr><th scope="col">{{t.lst_address}}</th><th scope="col">{{t.lst_variables}}</th><th scope="col">{{t.lst_added}}</th><th scope="col"><span class="muted">{{t.lst_actions}}</span></th></tr></thead>
                <tbody>
                {{#rows}}<tr><td><code>{{address}}</code></td><td>{{variables}}</td><td>{{added}}</td><td>{{#canRemove}}<form method="post" action="/console/lists/{{list}}/members/delete" class="inline member-remove">
                  <input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="address" value="{{address}}"><button type="submit" class="danger" aria-label="{{t.lst_remove}} {{address}}">{{t.lst_remove}}</button>
                </form>{{/canRemove}}</td></tr>{{/rows}}
                </tbody>
              </table></div>
              {{^rows}}<p class="muted" id="members-none">{{t.lst_noMembers}}</p>{{/rows}}
              <nav class="pager" aria-label="{{t.lst_pages}}">{{#first}}<a id="members-first" href="{{first}}">{{t.lst_firstPage}}</a>{{/first}}{{#next}}<a id="members-next" href="{{next}}">{{t.lst_nextPage}}</a>{{/next}}</nav>
              {{/canRead}}
              {{^canRead}}<p class="muted">{{t.notAllowed}}</p>{{/canRead}}
            </section>
            """,
    ].merging(taskPages) { first, _ in first }

    static let listEnglish: [String: String] = [
        "lst_new": "New list", "lst_name": "Name", "lst_alias": "Alias", "lst_description": "Description", "lst_create": "Create list",
        "lst_members": "Members", "lst_updated": "Last changed", "lst_none": "No recipient lists yet.", "lst_created": "List created.",
        "lst_deleted": "List deleted.", "lst_memberRemoved": "Member removed.", "lst_about": "About this list", "lst_export": "Export as CSV",
        "lst_deleteList": "Delete this list", "lst_importDone": "Upload finished", "lst_rejectedRows": "Rows not imported",
        "lst_importSummary": "{imported} rows added or updated, {rejected} rows refused; the list has {members} members.",
        "lst_row": "Row", "lst_reason": "Reason", "lst_upload": "Upload recipients (CSV)", "lst_file": "CSV file",
        "lst_fileHelp": "A header line naming an address column and any variables (address,name,…); at most 8 MB. Existing members are updated.",
        "lst_uploadButton": "Upload", "lst_memberList": "Members", "lst_search": "Address contains", "lst_searchButton": "Search",
        "lst_address": "Address", "lst_variables": "Variables", "lst_added": "Added", "lst_actions": "Actions", "lst_remove": "Remove",
        "lst_noMembers": "No members found.", "lst_pages": "Pages", "lst_firstPage": "First page", "lst_nextPage": "Next page",
        "lst_notFound": "List not found", "lst_notFoundText": "There is no such recipient list in this account.",
        "lst_tooLarge": "Upload too large", "lst_tooLargeText": "The file is larger than 8 MB; split it into smaller files.",
    ].merging(taskEnglish) { first, _ in first }

    static let listChinese: [String: String] = [
        "lst_new": "新建列表", "lst_name": "名称", "lst_alias": "别名", "lst_description": "描述", "lst_create": "创建列表",
        "lst_members": "成员数", "lst_updated": "最后修改", "lst_none": "还没有收信人列表。", "lst_created": "列表已创建。",
        "lst_deleted": "列表已删除。", "lst_memberRemoved": "成员已移除。", "lst_about": "列表信息", "lst_export": "导出为 CSV",
        "lst_deleteList": "删除此列表", "lst_importDone": "上传完成", "lst_rejectedRows": "未导入的行",
        "lst_importSummary": "已添加或更新 {imported} 行，拒绝 {rejected} 行；列表现有 {members} 个成员。",
        "lst_row": "行号", "lst_reason": "原因", "lst_upload": "上传收信人（CSV）", "lst_file": "CSV 文件",
        "lst_fileHelp": "首行为表头，须含 address 列及变量列（address,name,…）；最大 8 MB。已有成员将被更新。",
        "lst_uploadButton": "上传", "lst_memberList": "成员", "lst_search": "地址包含", "lst_searchButton": "搜索",
        "lst_address": "地址", "lst_variables": "变量", "lst_added": "添加时间", "lst_actions": "操作", "lst_remove": "移除",
        "lst_noMembers": "没有找到成员。", "lst_pages": "分页", "lst_firstPage": "第一页", "lst_nextPage": "下一页",
        "lst_notFound": "未找到列表", "lst_notFoundText": "此账户中没有这个收信人列表。",
        "lst_tooLarge": "上传文件过大", "lst_tooLargeText": "文件超过 8 MB，请拆分成较小的文件。",
    ].merging(taskChinese) { first, _ in first }
}
