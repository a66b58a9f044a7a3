import Crypto
import Foundation
import HTTPTypes
import HeraldCore
import HeraldStore
import Hummingbird

/// The operator's pages (issue #19) at `/console/admin`, signed in with the operator token (`HERALD_ADMIN_TOKEN`, the
/// `/admin/v1` API's) into a cookie of their own (``ConsoleOperatorSession``, `Path=/console/admin`): tenants (search,
/// status, grade, ceiling, quota; freeze, unfreeze, ban, grade, ceiling, limits), the template review queue (the
/// sensitive words in force highlighted; approve, reject with a reason) and the processes with the queues' depth.
/// Every change calls the store the `/admin/v1` route calls, with the operator as the audit actor.
extension Console {
    static let adminCookie = "herald_console_admin", adminCSRFCookie = "herald_console_admin_csrf"

    func registerAdminPages(on router: Router<HeraldRequestContext>) {
        router.get("/console/admin") { request, _ in
            operatorSession(request) == nil ? Self.redirect("/console/admin/sign-in") : Self.redirect("/console/admin/tenants")
        }
        router.get("/console/admin/sign-in") { request, _ in
            operatorSession(request) == nil ? adminSignInPage(request) : Self.redirect("/console/admin/tenants")
        }
        router.post("/console/admin/sign-in") { request, context in await adminSignIn(request, context: context) }
        router.post("/console/admin/sign-out") { request, _ in await adminSignOut(request) }
        router.get("/console/admin/tenants") { request, context in await adminTenantsPage(request, context: context) }
        router.get("/console/admin/tenants/{id}") { request, context in await adminTenantPage(request, context: context) }
        for change in ["freeze", "unfreeze", "ban"] {
            router.post("/console/admin/tenants/{id}/\(change)") { request, context in await adminChangeStatus(request, context: context, change) }
        }
        router.post("/console/admin/tenants/{id}/grade") { request, context in await adminSetGrade(request, context: context) }
        router.post("/console/admin/tenants/{id}/ceiling") { request, context in await adminSetCeiling(request, context: context) }
        router.post("/console/admin/tenants/{id}/limits") { request, context in await adminSetLimits(request, context: context) }
        router.get("/console/admin/review") { request, context in await adminReviewPage(request, context: context) }
        router.post("/console/admin/review/{id}/approve") { request, context in await adminReview(request, context: context, approve: true) }
        router.post("/console/admin/review/{id}/reject") { request, context in await adminReview(request, context: context, approve: false) }
        router.get("/console/admin/processes") { request, context in await adminProcessesPage(request, context: context) }
    }

    // MARK: The operator's frame

    /// The key operator sessions are signed with (bound to the operator token: a new token signs everyone out).
    var operatorKey: SymmetricKey { ConsoleOperatorSession.key(console: key, adminToken: deps.adminToken) }

    /// The operator's session, when the cookie carries a live one (and an operator token is configured at all).
    func operatorSession(_ request: Request) -> ConsoleOperatorSession? {
        guard !deps.adminToken.isEmpty, let text = Self.cookies(request)[Self.adminCookie] else { return nil }
        return ConsoleOperatorSession.decode(text, key: operatorKey, now: now())
    }

    /// Who is looking at an operator page.
    struct OperatorViewer {
        let session: ConsoleOperatorSession
        let language: String
        let words: [String: String]
        let csrf: String

        subscript(_ key: String) -> String { words[key] ?? key }
    }

    /// The outcome of a change, shown at the top of the page again.
    struct OperatorNotice {
        let text: String
        let failed: Bool
    }

    /// An operator page: signed in as the operator (else to the operator's sign-in), then `body`; a thrown error
    /// shows the failure page.
    func operatorShow(_ request: Request, _ body: (OperatorViewer) async throws -> Response) async -> Response {
        guard let session = operatorSession(request) else { return Self.redirect("/console/admin/sign-in") }
        let language = Self.language(request)
        let viewer = OperatorViewer(session: session, language: language, words: ConsolePages.words(language),
                                    csrf: session.csrfToken(key: operatorKey))
        do {
            return try await body(viewer)
        } catch {
            return failure(request)
        }
    }

    /// `template` in the layout with the operator's menu (`title` a word, its entry marked current); the session
    /// cookie is issued again (the idle clock starts again).
    func operatorPage(_ viewer: OperatorViewer, title: String, _ template: String, _ context: [String: Any] = [:],
                      notice: OperatorNotice? = nil, status: HTTPResponse.Status = .ok) -> Response {
        var context = context
        context["t"] = viewer.words
        context["csrf"] = viewer.csrf
        context["notice"] = notice.map { ["text": $0.text, "failed": $0.failed] as [String: Any] } ?? false
        context["operatorMenu"] = ConsolePages.adminMenu.map { item -> [String: Any] in
            ["href": item.path, "name": viewer[item.word], "current": item.word == title, "id": "adm-menu-" + item.word.dropFirst(4)]
        }
        var response = page(viewer[title], template, context, language: viewer.language, session: nil, who: "operator", status: status)
        response.headers.append(HTTPField(name: .setCookie, value: adminCookie(Self.adminCookie, viewer.session.seen(at: now()).encode(key: operatorKey),
                                                                               maxAge: Int(ConsoleOperatorSession.lifetime))))
        return response
    }

    /// A cookie of the operator's pages (only sent to `/console/admin`).
    func adminCookie(_ name: String, _ value: String, maxAge: Int) -> String {
        "\(name)=\(value); Path=/console/admin; Max-Age=\(maxAge); HttpOnly; SameSite=Lax" + (secure ? "; Secure" : "")
    }

    /// A form of the operator's that changes something: the operator's session and its CSRF token (403 otherwise),
    /// then `body` with the operator as audit actor (the `/admin/v1` routes' actor); `then`, the page again with the
    /// outcome (a refusal's message shown).
    func operatorChange(_ request: Request, context: HeraldRequestContext,
                        then: (Request, HeraldRequestContext, OperatorNotice?) async -> Response,
                        _ body: ([String: String], AuditActor) async throws -> String) async -> Response {
        guard let session = operatorSession(request) else { return Self.redirect("/console/admin/sign-in") }
        guard let form = await Self.form(request), session.accepts(csrf: form["csrf"], key: operatorKey) else { return forbidden(request) }
        var scoped = context
        scoped.principal = nil
        let words = ConsolePages.words(Self.language(request))
        do {
            // A word, or `word|detail` (the word, then the detail).
            let outcome = try await body(form, scoped.auditActor).split(separator: "|", maxSplits: 1).map(String.init)
            let text = ([words[outcome.first ?? ""] ?? outcome.first ?? ""] + outcome.dropFirst()).joined(separator: " ")
            return await then(request, scoped, OperatorNotice(text: text, failed: false))
        } catch {
            let failure = HeraldError.unwrapping(error) ?? HeraldError(code: "Internal", kind: .internal, message: "Something went wrong.")
            return await then(request, scoped, OperatorNotice(text: failure.message, failed: true))
        }
    }

    // MARK: Sign-in

    func adminSignInPage(_ request: Request, error: String? = nil, status: HTTPResponse.Status = .ok) -> Response {
        let language = Self.language(request), words = ConsolePages.words(language)
        // Double-submit, as the tenant sign-in: the form carries the value of a cookie set with it.
        let token = ConsoleSession.newNonce()
        var response = page(words["adm_signInTitle"] ?? "", "adm-sign-in", ["t": words, "csrf": token, "error": error ?? false],
                            language: language, session: nil, who: nil, status: status)
        response.headers.append(HTTPField(name: .setCookie, value: adminCookie(Self.adminCSRFCookie, token, maxAge: 3_600)))
        return response
    }

    func adminSignIn(_ request: Request, context: HeraldRequestContext) async -> Response {
        let words = ConsolePages.words(Self.language(request))
        guard let form = await Self.form(request) else { return adminSignInPage(request, error: words["expired"], status: .badRequest) }
        guard let expected = Self.cookies(request)[Self.adminCSRFCookie], let given = form["csrf"],
              constantTimeEquals(Array(expected.utf8), Array(given.utf8)) else {
            return adminSignInPage(request, error: words["expired"], status: .forbidden)
        }
        if case .limited = await ipLimiter.acquire(context.clientIP?.description ?? "unknown") {
            return adminSignInPage(request, error: words["tooMany"], status: .tooManyRequests)
        }
        guard let session = ConsoleOperatorSession.signIn(token: form["token"] ?? "", adminToken: deps.adminToken, now: now()) else {
            return adminSignInPage(request, error: words["adm_badToken"], status: .unauthorized)
        }
        var response = Self.redirect("/console/admin/tenants")
        response.headers.append(HTTPField(name: .setCookie, value: adminCookie(Self.adminCookie, session.encode(key: operatorKey),
                                                                               maxAge: Int(ConsoleOperatorSession.lifetime))))
        response.headers.append(HTTPField(name: .setCookie, value: adminCookie(Self.adminCSRFCookie, "", maxAge: 0)))
        return response
    }

    func adminSignOut(_ request: Request) async -> Response {
        guard let session = operatorSession(request) else { return Self.redirect("/console/admin/sign-in") }
        guard let form = await Self.form(request), session.accepts(csrf: form["csrf"], key: operatorKey) else { return forbidden(request) }
        var response = Self.redirect("/console/admin/sign-in")
        response.headers.append(HTTPField(name: .setCookie, value: adminCookie(Self.adminCookie, "", maxAge: 0)))
        return response
    }

    // MARK: Tenants

    /// Tenants by id, filtered by a search (a name's part or an id) and a status, 50 a page.
    func adminTenantsPage(_ request: Request, context: HeraldRequestContext) async -> Response {
        await operatorShow(request) { viewer in
            let query = request.uri.queryParameters
            let search = query.get("q").map { String($0.prefix(128)) } ?? ""
            let status = query.get("status").flatMap { TenantStatus(rawValue: $0) }
            let after = query.get("after").flatMap { UUID(uuidString: $0) }
            let limit = 50
            let day = SendRules.quotaDay(now(), timeZone: deps.grades.quotaTimeZone).day
            let rows = try await deps.tenants.search(search, status: status, limit: limit, after: after, day: day)
            let installation = deps.grades.thresholds.quotas
            let tenants: [[String: Any]] = rows.map { row in
                let tenant = row.tenant
                return ["id": tenant.id.lowercasedString, "name": tenant.name, "kind": viewer["adm_kind_" + tenant.kind.rawValue],
                        "status": tenant.status.rawValue, "statusText": viewer[tenant.status.rawValue], "grade": tenant.grade,
                        "ceiling": tenant.gradeCeiling, "used": row.usedToday,
                        "quota": GradeQuota.daily(grade: tenant.grade, table: row.quotaTable?.daily ?? installation),
                        "ownTable": row.quotaTable != nil]
            }
            var next: Any = false
            if rows.count == limit, let last = rows.last {
                var items = ["after=" + last.tenant.id.lowercasedString]
                if !search.isEmpty { items.append("q=" + (search.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")) }
                if let status { items.append("status=" + status.rawValue) }
                next = "/console/admin/tenants?" + items.joined(separator: "&")
            }
            let statuses: [[String: Any]] = [TenantStatus.active, .frozen, .banned].map {
                ["value": $0.rawValue, "name": viewer[$0.rawValue], "selected": $0 == status]
            }
            return operatorPage(viewer, title: "adm_tenants", "adm-tenants",
                                ["tenants": tenants, "q": search, "statuses": statuses, "next": next, "paged": after != nil])
        }
    }

    /// One tenant: its account now, its status actions, grade, ceiling and limits forms (one round trip).
    func adminTenantPage(_ request: Request, context: HeraldRequestContext, notice: OperatorNotice? = nil) async -> Response {
        await operatorShow(request) { viewer in
            let (day, monthStart) = SendRules.quotaDay(now(), timeZone: deps.grades.quotaTimeZone)
            guard let id = context.parameters.get("id").flatMap({ UUID(uuidString: $0) }),
                  let view = try await deps.tenants.operatorView(id, day: day, monthStart: monthStart) else {
                return operatorPage(viewer, title: "adm_tenants", "adm-message", ["title": viewer["adm_noTenant"], "text": viewer["adm_noTenantText"]],
                                    notice: notice, status: .notFound)
            }
            let tenant = view.tenant, overrides = view.overrides, table = view.quotaTable
            let dailyQuota = GradeQuota.daily(grade: tenant.grade, table: table?.daily ?? deps.grades.thresholds.quotas)
            let limits = (try? deps.productLimits.applying(overrides)) ?? deps.productLimits
            let defaults = deps.productLimits
            let limitRows: [[String: Any]] = ProductLimits.names.map { name in
                let effective = name == "senderDeletionsPerMonth" ? limits.senderDeletions(kind: tenant.kind) : Self.limit(limits, name)
                let standard = name == "senderDeletionsPerMonth" ? defaults.senderDeletions(kind: tenant.kind) : Self.limit(defaults, name)
                return ["name": name, "label": viewer["adm_limit_" + name], "value": overrides[name].map(String.init) ?? "",
                        "effective": effective, "standard": standard]
            }
            let installation = deps.grades.thresholds.quotas
            let context: [String: Any] = [
                "id": tenant.id.lowercasedString, "name": tenant.name, "kind": viewer["adm_kind_" + tenant.kind.rawValue],
                "status": tenant.status.rawValue, "statusText": viewer[tenant.status.rawValue], "grade": tenant.grade,
                "ceiling": tenant.gradeCeiling, "dailyQuota": dailyQuota, "dailyUsed": view.usedToday,
                "monthlyUsed": view.usedThisMonth, "monthlyQuota": dailyQuota * 30, "freezes": tenant.freezeCount,
                "created": Self.minute(tenant.createdAt),
                "canFreeze": tenant.status == .active, "canUnfreeze": tenant.status == .frozen, "canBan": tenant.status != .banned,
                "grades": (1...16).map { ["value": $0, "selected": $0 == tenant.grade] as [String: Any] },
                "ceilings": (9...16).map { ["value": $0, "selected": $0 == tenant.gradeCeiling] as [String: Any] },
                "limits": limitRows, "dailyQuotas": table.map { $0.daily.map(String.init).joined(separator: ",") } ?? "",
                "installationQuotas": installation.map(String.init).joined(separator: ","),
            ]
            return operatorPage(viewer, title: "adm_tenants", "adm-tenant", context, notice: notice)
        }
    }

    static func limit(_ limits: ProductLimits, _ name: String) -> Int {
        switch name {
        case "users": limits.users
        case "accessKeysPerUser": limits.accessKeysPerUser
        case "policies": limits.policies
        case "domains": limits.domains
        case "senders": limits.senders
        case "tags": limits.tags
        case "templates": limits.templates
        case "lists": limits.lists
        case "listMembers": limits.listMembers
        case "invalidAddressRemovalsPerMonth": limits.invalidAddressRemovalsPerMonth
        case "recipientsPerSend": limits.recipientsPerSend
        case "subjectLength": limits.subjectLength
        case "bodyBytes": limits.bodyBytes
        default: limits.senderDeletionsPerMonth ?? 0
        }
    }

    /// The reason of a form, as the `/admin/v1` routes take it (empty: none).
    static func reason(_ form: [String: String]) throws -> String? {
        try OperatorReason.validate(form["reason"].flatMap { $0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? nil : $0 })
    }

    func adminChangeStatus(_ request: Request, context: HeraldRequestContext, _ change: String) async -> Response {
        guard operatorSession(request) != nil else { return Self.redirect("/console/admin/sign-in") }
        guard let id = context.parameters.get("id").flatMap({ UUID(uuidString: $0) }), let change = TenantStore.StatusChange(rawValue: change) else {
            return forbidden(request)
        }
        return await operatorChange(request, context: context, then: adminTenantPage) { form, actor in
            _ = try await deps.tenants.change(id, change, reason: try Self.reason(form), actor: actor)
            return "adm_done_" + change.rawValue
        }
    }

    func adminSetGrade(_ request: Request, context: HeraldRequestContext) async -> Response {
        guard let id = context.parameters.get("id").flatMap({ UUID(uuidString: $0) }) else { return forbidden(request) }
        return await operatorChange(request, context: context, then: adminTenantPage) { form, actor in
            guard let grade = form["grade"].flatMap({ Int($0) }) else { throw HeraldError.validation("grade must be from 1 to 16.", field: "grade") }
            try await deps.grades.setGrade(tenantID: id, grade: grade, reason: try Self.reason(form), actor: actor, now: now())
            return "adm_gradeSet"
        }
    }

    func adminSetCeiling(_ request: Request, context: HeraldRequestContext) async -> Response {
        guard let id = context.parameters.get("id").flatMap({ UUID(uuidString: $0) }) else { return forbidden(request) }
        return await operatorChange(request, context: context, then: adminTenantPage) { form, actor in
            guard let ceiling = form["ceiling"].flatMap({ Int($0) }) else {
                throw HeraldError.validation("gradeCeiling must be from 9 to 16.", field: "gradeCeiling")
            }
            guard try await deps.tenants.get(id) != nil else { throw HeraldError.notFound("tenant") }
            _ = try await deps.grades.setCeiling(tenantID: id, ceiling: ceiling, actor: actor, now: now())
            return "adm_ceilingSet"
        }
    }

    /// The limits form as `PUT /admin/v1/tenants/{id}/limits` takes it: each limit given overrides the installation's
    /// (an empty one does not), the daily quotas (16, comma-separated) give the tenant its own table (empty: the
    /// installation's); both checked before either is written.
    func adminSetLimits(_ request: Request, context: HeraldRequestContext) async -> Response {
        guard let id = context.parameters.get("id").flatMap({ UUID(uuidString: $0) }) else { return forbidden(request) }
        return await operatorChange(request, context: context, then: adminTenantPage) { form, actor in
            var given: [String: Int] = [:]
            for name in ProductLimits.names {
                guard let text = form["limit_" + name]?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { continue }
                guard let value = Int(text.replacingOccurrences(of: "_", with: "").replacingOccurrences(of: ",", with: "")) else {
                    throw HeraldError.validation("\(name) must be a whole number.", field: name)
                }
                given[name] = value
            }
            let quotaText = (form["dailyQuotas"] ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            let quotas = quotaText.isEmpty ? nil : try QuotaTable.parse(quotaText, field: "dailyQuotas")
            _ = try ProductLimits().applying(given)
            _ = try await deps.tenants.setLimitOverrides(id, given, actor: actor)
            try await deps.tenants.setQuotaTable(id, quotas, actor: actor)
            return "adm_limitsSet"
        }
    }

    // MARK: Template review

    /// The templates waiting for review across tenants (what `GET /admin/v1/templates` lists), oldest submission
    /// first, each with the sensitive words in force highlighted.
    func adminReviewPage(_ request: Request, context: HeraldRequestContext, notice: OperatorNotice? = nil) async -> Response {
        await operatorShow(request) { viewer in
            let pending = try await deps.templates.pending(limit: 100)
            let words = await deps.contentRules?.words() ?? deps.templates.sensitiveWords
            let tenants = try await deps.tenants.names(pending.map(\.tenantID))
            let items: [[String: Any]] = pending.map { template in
                let found = SensitiveWords.found(in: [template.subject, template.html ?? "", template.text ?? ""], words: words)
                var item: [String: Any] = [
                    "id": template.id.lowercasedString, "tenantId": template.tenantID.lowercasedString, "name": template.name,
                    "tenantName": tenants[template.tenantID] ?? template.tenantID.lowercasedString,
                    "kind": viewer["adm_kind_" + template.kind.rawValue], "submitted": template.submittedAt.map(Self.minute) ?? "",
                    "subject": Self.highlighted(template.subject, words: found), "found": found, "clean": found.isEmpty,
                    "hasText": template.text != nil, "hasHtml": template.html != nil,
                ]
                item["textPieces"] = Self.highlighted(template.text ?? "", words: found)
                item["htmlPieces"] = Self.highlighted(template.html ?? "", words: found)
                return item
            }
            return operatorPage(viewer, title: "adm_review", "adm-review", ["templates": items, "words": words.joined(separator: ", ")],
                                notice: notice)
        }
    }

    func adminReview(_ request: Request, context: HeraldRequestContext, approve: Bool) async -> Response {
        guard let id = context.parameters.get("id").flatMap({ UUID(uuidString: $0) }) else { return forbidden(request) }
        return await operatorChange(request, context: context, then: adminReviewPage) { form, actor in
            let reason = approve ? nil : (form["reason"] ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            let template = try await deps.templates.review(id: id, approve: approve, reason: reason, actor: actor, now: now())
            return approve ? "adm_approved|" + template.name : "adm_rejected|" + template.name
        }
    }

    /// `text` in pieces, those that are one of `words` (case-insensitive) marked: the template renders each piece
    /// escaped, the marked ones in `<mark>`.
    static func highlighted(_ text: String, words: [String]) -> [[String: Any]] {
        var ranges: [Range<String.Index>] = []
        for word in words where !word.isEmpty {
            var start = text.startIndex
            while start < text.endIndex, let found = text.range(of: word, options: [.caseInsensitive], range: start..<text.endIndex) {
                ranges.append(found)
                start = found.upperBound
            }
        }
        ranges.sort { $0.lowerBound < $1.lowerBound }
        var pieces: [[String: Any]] = []
        var cursor = text.startIndex
        for range in ranges {
            let lower = max(range.lowerBound, cursor)
            guard lower < range.upperBound else { continue }
            if cursor < lower { pieces.append(["piece": String(text[cursor..<lower]), "mark": false]) }
            pieces.append(["piece": String(text[lower..<range.upperBound]), "mark": true])
            cursor = range.upperBound
        }
        if cursor < text.endIndex { pieces.append(["piece": String(text[cursor...]), "mark": false]) }
        return pieces
    }

    // MARK: Processes

    /// The installation's processes (what `GET /admin/v1/processes` lists) and the queues' depth now.
    func adminProcessesPage(_ request: Request, context: HeraldRequestContext) async -> Response {
        await operatorShow(request) { viewer in
            let store = ProcessStore(database: deps.database)
            let processes = try await store.list()
            let depth = try await store.queueDepth(now: now())
            let rows: [[String: Any]] = processes.map { process in
                ["id": process.id.lowercasedString, "roles": process.roles.joined(separator: ", "), "host": process.host, "pid": process.pid,
                 "port": process.httpPort.map(String.init) ?? "—", "started": Self.minute(process.startedAt),
                 "seen": ConsolePages.time(process.lastSeen, seconds: true), "alive": process.alive, "shares": process.shares]
            }
            let queue: [String: Any] = ["queued": depth.queued, "retrying": depth.retrying, "sending": depth.sending, "paused": depth.paused,
                                        "due": depth.due, "webhooksPending": depth.webhooksPending, "webhooksDue": depth.webhooksDue]
            return operatorPage(viewer, title: "adm_processes", "adm-processes",
                                ["processes": rows, "queue": queue, "at": ConsolePages.time(now(), seconds: true)])
        }
    }
}

extension ConsolePages {
    /// The operator's menu (word keys start with `adm_`).
    static let adminMenu: [(path: String, word: String)] = [
        ("/console/admin/tenants", "adm_tenants"), ("/console/admin/review", "adm_review"), ("/console/admin/processes", "adm_processes"),
    ]

    static let adminPages: [String: String] = [
        "adm-menu": """
            <nav aria-label="{{t.adm_menu}}" class="menu card" id="adm-menu">{{#operatorMenu}}<a href="{{href}}" id="{{id}}"{{#current}} aria-current="page"{{/current}}>{{name}}</a> {{/operatorMenu}}
              <form method="post" action="/console/admin/sign-out" class="inline" id="adm-sign-out">
                <input type="hidden" name="csrf" value="{{csrf}}"><span class="who">{{t.adm_operator}}</span> <button type="submit" id="adm-sign-out-button">{{t.signOut}}</button>
              </form>
            </nav>
            {{#notice}}{{#failed}}<p class="error" role="alert" id="adm-notice">{{text}}</p>{{/failed}}{{^failed}}<p class="notice" role="status" id="adm-notice">{{text}}</p>{{/failed}}{{/notice}}
            """,
        "adm-sign-in": """
            <h1>{{t.adm_signInTitle}}</h1>
            {{#error}}<p class="error" role="alert" id="adm-sign-in-error">{{error}}</p>{{/error}}
            <form method="post" action="/console/admin/sign-in" class="card narrow" id="adm-sign-in">
              <input type="hidden" name="csrf" value="{{csrf}}">
              <label for="adm-token">{{t.adm_token}}</label>
              <input id="adm-token" name="token" type="password" autocomplete="current-password" required maxlength="512">
              <button type="submit" id="adm-sign-in-button">{{t.signIn}}</button>
            </form>
            <p class="muted">{{t.adm_signInHelp}}</p>
            """,
        "adm-message": """
            {{> adm-menu}}
            <h1>{{title}}</h1>
            <p>{{text}}</p>
            <p><a href="/console/admin/tenants">{{t.adm_allTenants}}</a></p>
            """,
        "adm-tenants": """
            {{> adm-menu}}
            <h1>{{t.adm_tenants}}</h1>
            <form method="get" action="/console/admin/tenants" class="card filters" id="adm-search" role="search">
              <div><label for="adm-q">{{t.adm_search}}</label>
              <input id="adm-q" name="q" value="{{q}}" maxlength="128"></div>
              <div><label for="adm-status-filter">{{t.status}}</label>
              <select id="adm-status-filter" name="status"><option value="">{{t.adm_any}}</option>{{#statuses}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{name}}</option>{{/statuses}}</select></div>
              <div><button type="submit" id="adm-search-button">{{t.adm_find}}</button></div>
            </form>
            <div class="card scroll"><table id="adm-tenant-table">
              <thead><tr><th scope="col">{{t.adm_tenant}}</th><th scope="col">{{t.status}}</th><th scope="col">{{t.grade}}</th><th scope="col">{{t.ceiling}}</th><th scope="col">{{t.adm_quota}}</th></tr></thead>
              <tbody>
              {{#tenants}}<tr id="adm-tenant-{{id}}"><td><a href="/console/admin/tenants/{{id}}">{{name}}</a><br><code class="muted">{{id}}</code> <span class="muted">{{kind}}</span></td>
                <td class="status-{{status}}">{{statusText}}</td><td>{{grade}}</td><td>{{ceiling}}</td><td>{{used}} / {{quota}}{{#ownTable}} <span class="muted">({{t.adm_ownTable}})</span>{{/ownTable}}</td></tr>{{/tenants}}
              </tbody>
            </table>
            {{^tenants}}<p class="muted">{{t.adm_noTenants}}</p>{{/tenants}}
            </div>
            <p class="pager">{{#paged}}<a href="/console/admin/tenants">{{t.adm_first}}</a>{{/paged}}{{#next}}<a href="{{next}}" id="adm-next">{{t.adm_next}}</a>{{/next}}</p>
            """,
        "adm-tenant": """
            {{> adm-menu}}
            <p><a href="/console/admin/tenants">{{t.adm_allTenants}}</a></p>
            <h1>{{name}}</h1>
            <section class="card" aria-labelledby="adm-account-title" id="adm-account">
              <h2 id="adm-account-title">{{t.account}}</h2>
              <dl class="facts">
                <div><dt>{{t.status}}</dt><dd class="status-{{status}}" id="adm-tenant-status" data-status="{{status}}">{{statusText}}</dd></div>
                <div><dt>{{t.grade}}</dt><dd id="adm-tenant-grade">{{grade}}</dd></div>
                <div><dt>{{t.ceiling}}</dt><dd id="adm-tenant-ceiling">{{ceiling}}</dd></div>
                <div><dt>{{t.today}}</dt><dd>{{dailyUsed}} / {{dailyQuota}}</dd></div>
                <div><dt>{{t.month}}</dt><dd>{{monthlyUsed}} / {{monthlyQuota}}</dd></div>
                <div><dt>{{t.adm_freezes}}</dt><dd>{{freezes}}</dd></div>
              </dl>
              <p class="muted"><code>{{id}}</code> · {{kind}} · {{t.adm_created}} {{created}}</p>
            </section>
            <section class="card" aria-labelledby="adm-status-title">
              <h2 id="adm-status-title">{{t.adm_statusActions}}</h2>
              {{#canFreeze}}
              <form method="post" action="/console/admin/tenants/{{id}}/freeze" id="adm-freeze">
                <input type="hidden" name="csrf" value="{{csrf}}">
                <label for="adm-freeze-reason">{{t.adm_reason}}</label>
                <input id="adm-freeze-reason" name="reason" maxlength="500">
                <button type="submit" id="adm-freeze-button">{{t.adm_freeze}}</button>
              </form>
              {{/canFreeze}}
              {{#canUnfreeze}}
              <form method="post" action="/console/admin/tenants/{{id}}/unfreeze" id="adm-unfreeze">
                <input type="hidden" name="csrf" value="{{csrf}}">
                <label for="adm-unfreeze-reason">{{t.adm_reason}}</label>
                <input id="adm-unfreeze-reason" name="reason" maxlength="500">
                <button type="submit" id="adm-unfreeze-button">{{t.adm_unfreeze}}</button>
              </form>
              {{/canUnfreeze}}
              {{#canBan}}
              <form method="post" action="/console/admin/tenants/{{id}}/ban" id="adm-ban">
                <input type="hidden" name="csrf" value="{{csrf}}">
                <label for="adm-ban-reason">{{t.adm_reason}}</label>
                <input id="adm-ban-reason" name="reason" maxlength="500">
                <button type="submit" class="danger" id="adm-ban-button">{{t.adm_ban}}</button>
                <p class="muted">{{t.adm_banNote}}</p>
              </form>
              {{/canBan}}
              {{^canBan}}<p class="muted">{{t.adm_bannedNote}}</p>{{/canBan}}
            </section>
            <section class="card" aria-labelledby="adm-grade-title">
              <h2 id="adm-grade-title">{{t.adm_gradeTitle}}</h2>
              <form method="post" action="/console/admin/tenants/{{id}}/grade" id="adm-grade-form">
                <input type="hidden" name="csrf" value="{{csrf}}">
                <label for="adm-grade">{{t.grade}}</label>
                <select id="adm-grade" name="grade">{{#grades}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{value}}</option>{{/grades}}</select>
                <label for="adm-grade-reason">{{t.adm_reason}}</label>
                <input id="adm-grade-reason" name="reason" maxlength="500">
                <button type="submit" id="adm-grade-button">{{t.adm_setGrade}}</button>
                <p class="muted">{{t.adm_gradeNote}}</p>
              </form>
              <form method="post" action="/console/admin/tenants/{{id}}/ceiling" id="adm-ceiling-form">
                <input type="hidden" name="csrf" value="{{csrf}}">
                <label for="adm-ceiling">{{t.adm_ceiling}}</label>
                <select id="adm-ceiling" name="ceiling">{{#ceilings}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{value}}</option>{{/ceilings}}</select>
                <button type="submit" id="adm-ceiling-button">{{t.adm_setCeiling}}</button>
              </form>
            </section>
            <section class="card" aria-labelledby="adm-limits-title">
              <h2 id="adm-limits-title">{{t.adm_limits}}</h2>
              <p class="muted">{{t.adm_limitsNote}}</p>
              <form method="post" action="/console/admin/tenants/{{id}}/limits" id="adm-limits">
                <input type="hidden" name="csrf" value="{{csrf}}">
                <div class="filters">
                {{#limits}}
                <div><label for="adm-limit-{{name}}">{{label}}</label>
                <input id="adm-limit-{{name}}" name="limit_{{name}}" inputmode="numeric" value="{{value}}" placeholder="{{standard}}" aria-describedby="adm-limit-{{name}}-now">
                <span class="muted" id="adm-limit-{{name}}-now">{{t.adm_inForce}} {{effective}}</span></div>
                {{/limits}}
                </div>
                <label for="adm-daily-quotas">{{t.adm_dailyQuotas}}</label>
                <input id="adm-daily-quotas" name="dailyQuotas" value="{{dailyQuotas}}" placeholder="{{installationQuotas}}" aria-describedby="adm-daily-quotas-help">
                <p class="muted" id="adm-daily-quotas-help">{{t.adm_dailyQuotasHelp}}</p>
                <button type="submit" id="adm-limits-button">{{t.adm_saveLimits}}</button>
              </form>
            </section>
            """,
        "adm-review": """
            {{> adm-menu}}
            <h1>{{t.adm_review}}</h1>
            <p class="muted">{{t.adm_wordsInForce}}: {{words}}{{^words}}—{{/words}}</p>
            {{#templates}}
            <section class="card" aria-labelledby="adm-review-title-{{id}}" id="adm-review-{{id}}">
              <h2 id="adm-review-title-{{id}}">{{name}} <span class="muted">({{kind}})</span></h2>
              <p class="muted">{{t.adm_tenant}} <a href="/console/admin/tenants/{{tenantId}}" id="adm-review-tenant-{{id}}">{{tenantName}}</a> · {{t.adm_submitted}} {{submitted}}</p>
              {{#clean}}<p class="notice">{{t.adm_noWords}}</p>{{/clean}}
              {{^clean}}<p class="error" id="adm-found-{{id}}">{{t.adm_wordsFound}}: {{#found}}<mark>{{.}}</mark> {{/found}}</p>{{/clean}}
              <h3>{{t.tpl_subject}}</h3>
              <p id="adm-subject-{{id}}">{{#subject}}{{#mark}}<mark>{{piece}}</mark>{{/mark}}{{^mark}}{{piece}}{{/mark}}{{/subject}}</p>
              {{#hasText}}<h3>{{t.tpl_text}}</h3><pre id="adm-text-{{id}}">{{#textPieces}}{{#mark}}<mark>{{piece}}</mark>{{/mark}}{{^mark}}{{piece}}{{/mark}}{{/textPieces}}</pre>{{/hasText}}
              {{#hasHtml}}<h3>{{t.tpl_htmlSource}}</h3><pre id="adm-html-{{id}}">{{#htmlPieces}}{{#mark}}<mark>{{piece}}</mark>{{/mark}}{{^mark}}{{piece}}{{/mark}}{{/htmlPieces}}</pre>{{/hasHtml}}
              <div class="actions">
                <form method="post" action="/console/admin/review/{{id}}/approve" id="adm-approve-{{id}}">
                  <input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" id="adm-approve-button-{{id}}">{{t.adm_approve}}</button>
                </form>
              </div>
              <form method="post" action="/console/admin/review/{{id}}/reject" id="adm-reject-{{id}}">
                <input type="hidden" name="csrf" value="{{csrf}}">
                <label for="adm-reason-{{id}}">{{t.adm_rejectReason}}</label>
                <input id="adm-reason-{{id}}" name="reason" required maxlength="500">
                <button type="submit" class="danger" id="adm-reject-button-{{id}}">{{t.adm_reject}}</button>
              </form>
            </section>
            {{/templates}}
            {{^templates}}<p class="card muted" id="adm-review-empty">{{t.adm_reviewEmpty}}</p>{{/templates}}
            """,
        "adm-processes": """
            {{> adm-menu}}
            <h1>{{t.adm_processes}}</h1>
            {{#queue}}
            <section class="card" aria-labelledby="adm-queue-title" id="adm-queue">
              <h2 id="adm-queue-title">{{t.adm_queue}}</h2>
              <dl class="facts">
                <div><dt>{{t.adm_queued}}</dt><dd id="adm-queue-queued">{{queued}}</dd></div>
                <div><dt>{{t.adm_retrying}}</dt><dd id="adm-queue-retrying">{{retrying}}</dd></div>
                <div><dt>{{t.adm_due}}</dt><dd id="adm-queue-due">{{due}}</dd></div>
                <div><dt>{{t.adm_sending}}</dt><dd id="adm-queue-sending">{{sending}}</dd></div>
                <div><dt>{{t.adm_paused}}</dt><dd id="adm-queue-paused">{{paused}}</dd></div>
                <div><dt>{{t.adm_webhooksPending}}</dt><dd id="adm-queue-webhooks">{{webhooksPending}} <span class="muted">({{webhooksDue}} {{t.adm_dueNow}})</span></dd></div>
              </dl>
              <p class="muted">{{t.adm_at}} {{at}} · <a href="/console/admin/processes">{{t.adm_refresh}}</a></p>
            </section>
            {{/queue}}
            <div class="card scroll"><table id="adm-process-table">
              <thead><tr><th scope="col">{{t.adm_roles}}</th><th scope="col">{{t.host}}</th><th scope="col">PID</th><th scope="col">{{t.adm_port}}</th><th scope="col">{{t.adm_started}}</th><th scope="col">{{t.adm_heartbeat}}</th><th scope="col">{{t.adm_shares}}</th></tr></thead>
              <tbody>
              {{#processes}}<tr id="adm-process-{{id}}"><td>{{roles}}</td><td>{{host}}</td><td>{{pid}}</td><td>{{port}}</td><td>{{started}}</td>
                <td>{{seen}} {{#alive}}<span class="status-active">{{t.adm_alive}}</span>{{/alive}}{{^alive}}<span class="status-frozen">{{t.adm_silent}}</span>{{/alive}}</td><td>{{shares}}</td></tr>{{/processes}}
              </tbody>
            </table>
            {{^processes}}<p class="muted">{{t.adm_noProcesses}}</p>{{/processes}}
            </div>
            """,
    ]

    static let adminEnglish: [String: String] = [
        "adm_menu": "Operator menu", "adm_tenants": "Tenants", "adm_review": "Template review", "adm_processes": "Processes",
        "adm_operator": "operator", "adm_signInTitle": "Operator sign-in", "adm_token": "Operator token",
        "adm_signInHelp": "The token of the operator API (HERALD_ADMIN_TOKEN).", "adm_badToken": "The operator token is wrong.",
        "adm_search": "Name or id", "adm_any": "Any", "adm_find": "Find", "adm_tenant": "Tenant", "adm_quota": "Sent today / daily quota",
        "adm_ownTable": "own table", "adm_noTenants": "No tenants found.", "adm_first": "First page", "adm_next": "Next page",
        "adm_allTenants": "All tenants", "adm_noTenant": "No such tenant", "adm_noTenantText": "There is no tenant with this id.",
        "adm_freezes": "Times frozen", "adm_created": "created", "adm_statusActions": "Status", "adm_reason": "Reason (optional)",
        "adm_freeze": "Freeze", "adm_unfreeze": "Unfreeze", "adm_ban": "Ban", "adm_banNote": "A ban is final: the tenant's queued mail is dropped.",
        "adm_bannedNote": "The tenant is banned; a ban is final.", "adm_gradeTitle": "Credit grade", "adm_setGrade": "Set grade",
        "adm_gradeNote": "Once a day at most per tenant; recorded in the grade history.", "adm_ceiling": "Grade ceiling (9–16)",
        "adm_setCeiling": "Set ceiling", "adm_limits": "Limits",
        "adm_limitsNote": "An empty field follows the installation's limit (shown greyed); a number overrides it for this tenant.",
        "adm_inForce": "in force:", "adm_dailyQuotas": "Daily quotas of grades 1–16",
        "adm_dailyQuotasHelp": "16 numbers separated by commas, none below the one before; empty: the installation's table.",
        "adm_saveLimits": "Save limits",
        "adm_limit_users": "Users", "adm_limit_accessKeysPerUser": "AccessKeys per user", "adm_limit_policies": "Policies",
        "adm_limit_domains": "Domains", "adm_limit_senders": "Sender addresses", "adm_limit_senderDeletionsPerMonth": "Sender deletions a month",
        "adm_limit_tags": "Tags", "adm_limit_templates": "Templates", "adm_limit_lists": "Lists", "adm_limit_listMembers": "Members per list",
        "adm_limit_invalidAddressRemovalsPerMonth": "Invalid-address removals a month", "adm_limit_recipientsPerSend": "Recipients per send",
        "adm_limit_subjectLength": "Subject length", "adm_limit_bodyBytes": "Body bytes",
        "adm_kind_enterprise": "enterprise", "adm_kind_personal": "personal", "adm_kind_trigger": "trigger", "adm_kind_batch": "batch",
        "adm_done_freeze": "Frozen.", "adm_done_unfreeze": "Unfrozen.", "adm_done_ban": "Banned.", "adm_gradeSet": "Grade set.",
        "adm_ceilingSet": "Ceiling set.", "adm_limitsSet": "Limits saved.",
        "adm_wordsInForce": "Sensitive words in force", "adm_submitted": "submitted", "adm_noWords": "No sensitive words found.",
        "adm_wordsFound": "Sensitive words found", "adm_approve": "Approve", "adm_rejectReason": "Reason for rejecting",
        "adm_reject": "Reject", "adm_reviewEmpty": "No templates are waiting for review.",
        "adm_approved": "Approved:", "adm_rejected": "Rejected:",
        "adm_queue": "Queues", "adm_queued": "Queued", "adm_retrying": "Retrying", "adm_due": "Due now", "adm_sending": "Being delivered",
        "adm_paused": "Paused (frozen tenants)", "adm_webhooksPending": "Webhook deliveries pending", "adm_dueNow": "due now",
        "adm_at": "As of", "adm_refresh": "Refresh", "adm_roles": "Roles", "adm_port": "HTTP port", "adm_started": "Started",
        "adm_heartbeat": "Last heartbeat", "adm_shares": "Limit shares", "adm_alive": "alive", "adm_silent": "silent",
        "adm_noProcesses": "No processes have registered.",
    ]

    static let adminChinese: [String: String] = [
        "adm_menu": "运营菜单", "adm_tenants": "租户", "adm_review": "模板审核", "adm_processes": "进程",
        "adm_operator": "运营者", "adm_signInTitle": "运营者登录", "adm_token": "运营令牌",
        "adm_signInHelp": "运营 API 的令牌（HERALD_ADMIN_TOKEN）。", "adm_badToken": "运营令牌错误。",
        "adm_search": "名称或 ID", "adm_any": "全部", "adm_find": "查找", "adm_tenant": "租户", "adm_quota": "今日已发送 / 日配额",
        "adm_ownTable": "专属配额表", "adm_noTenants": "没有找到租户。", "adm_first": "第一页", "adm_next": "下一页",
        "adm_allTenants": "全部租户", "adm_noTenant": "租户不存在", "adm_noTenantText": "没有此 ID 的租户。",
        "adm_freezes": "冻结次数", "adm_created": "创建于", "adm_statusActions": "状态", "adm_reason": "原因（可选）",
        "adm_freeze": "冻结", "adm_unfreeze": "解冻", "adm_ban": "封禁", "adm_banNote": "封禁不可撤销：租户排队中的邮件将被丢弃。",
        "adm_bannedNote": "该租户已被封禁；封禁不可撤销。", "adm_gradeTitle": "信用等级", "adm_setGrade": "设置等级",
        "adm_gradeNote": "每个租户每天最多一次；记入等级历史。", "adm_ceiling": "等级上限（9–16）",
        "adm_setCeiling": "设置上限", "adm_limits": "限额",
        "adm_limitsNote": "留空则使用安装的默认限额（灰色显示）；填写数字则为该租户单独设置。",
        "adm_inForce": "当前生效：", "adm_dailyQuotas": "等级 1–16 的日配额",
        "adm_dailyQuotasHelp": "16 个以逗号分隔的数字，不得低于前一个；留空则使用安装的配额表。",
        "adm_saveLimits": "保存限额",
        "adm_limit_users": "用户数", "adm_limit_accessKeysPerUser": "每个用户的 AccessKey 数", "adm_limit_policies": "策略数",
        "adm_limit_domains": "域名数", "adm_limit_senders": "发信地址数", "adm_limit_senderDeletionsPerMonth": "每月删除发信地址次数",
        "adm_limit_tags": "标签数", "adm_limit_templates": "模板数", "adm_limit_lists": "收信人列表数", "adm_limit_listMembers": "每个列表的成员数",
        "adm_limit_invalidAddressRemovalsPerMonth": "每月移除无效地址次数", "adm_limit_recipientsPerSend": "每次发送的收件人数",
        "adm_limit_subjectLength": "主题长度", "adm_limit_bodyBytes": "正文字节数",
        "adm_kind_enterprise": "企业", "adm_kind_personal": "个人", "adm_kind_trigger": "触发", "adm_kind_batch": "批量",
        "adm_done_freeze": "已冻结。", "adm_done_unfreeze": "已解冻。", "adm_done_ban": "已封禁。", "adm_gradeSet": "等级已设置。",
        "adm_ceilingSet": "上限已设置。", "adm_limitsSet": "限额已保存。",
        "adm_wordsInForce": "当前敏感词", "adm_submitted": "提交于", "adm_noWords": "未发现敏感词。",
        "adm_wordsFound": "发现的敏感词", "adm_approve": "通过", "adm_rejectReason": "驳回原因",
        "adm_reject": "驳回", "adm_reviewEmpty": "没有等待审核的模板。",
        "adm_approved": "已通过：", "adm_rejected": "已驳回：",
        "adm_queue": "队列", "adm_queued": "排队中", "adm_retrying": "重试中", "adm_due": "到期待发", "adm_sending": "投递中",
        "adm_paused": "已暂停（冻结租户）", "adm_webhooksPending": "待投递的 Webhook", "adm_dueNow": "已到期",
        "adm_at": "截至", "adm_refresh": "刷新", "adm_roles": "角色", "adm_port": "HTTP 端口", "adm_started": "启动时间",
        "adm_heartbeat": "最近心跳", "adm_shares": "限额份额", "adm_alive": "在线", "adm_silent": "无响应",
        "adm_noProcesses": "没有已注册的进程。",
    ]
}
