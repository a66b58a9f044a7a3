import Crypto
import Foundation
import HTTPTypes
import HeraldCore
import HeraldStore
import Hummingbird
import NIOCore

/// The console (issue #19): server-rendered pages at `/console/…` from the `api` role, on the services and RAM
/// policies of the API. This first part: sign-in with an AccessKey (a signed `HttpOnly` session cookie with idle
/// expiry, ``ConsoleSession``), CSRF tokens on every form, sign-out, and the overview (status, grade, ceiling,
/// today's and this month's quota, the last 30 days drawn as SVG), in English and Chinese.
struct Console: Sendable {
    /// Every store and service of the API: pages call the same ones as the REST routes.
    let deps: APIDependencies
    let database: Database
    let auth: AuthStore
    let domains: DomainStore
    let senders: SenderStore
    let verifier: DomainVerifier
    let domainSettings: SendingDomain.Settings
    let grades: GradeStore
    let stats: StatsStore
    let key: SymmetricKey
    /// Whether cookies are `Secure` (the public URL is https).
    let secure: Bool
    let keyLimiter: any RateLimiting
    let ipLimiter: any RateLimiting
    let now: @Sendable () -> Date

    static let cookie = "herald_console", csrfCookie = "herald_console_csrf", languageCookie = "herald_console_lang"

    func register(on router: Router<HeraldRequestContext>) {
        router.get("/console") { request, context in await overview(request, context: context) }
        router.get("/console/sign-in") { request, _ in signInPage(request) }
        router.get("/console/language") { request, _ in chooseLanguage(request) }
        router.post("/console/sign-in") { request, context in await signIn(request, context: context) }
        router.post("/console/sign-out") { request, context in await signOut(request, context: context) }
        router.get("/console/domains") { request, context in await domainsPage(request, context: context) }
        router.post("/console/domains") { request, context in await createDomain(request, context: context) }
        router.post("/console/domains/{id}/verify") { request, context in await verifyDomain(request, context: context) }
        router.post("/console/domains/{id}/dkim/rotate") { request, context in await rotateDomain(request, context: context) }
        router.post("/console/domains/{id}/delete") { request, context in await deleteDomain(request, context: context) }
        router.get("/console/senders") { request, context in await sendersPage(request, context: context) }
        registerSenderChanges(on: router)
        router.post("/console/senders") { request, context in await createSender(request, context: context) }
        router.get("/console/static/console.css") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/css; charset=utf-8", .cacheControl: "public, max-age=3600"],
                     body: .init(byteBuffer: ByteBuffer(string: ConsolePages.css)))
        }
        router.get("/console/static/console.js") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/javascript; charset=utf-8", .cacheControl: "public, max-age=3600"],
                     body: .init(byteBuffer: ByteBuffer(string: ConsolePages.script)))
        }
        // Each part of the console registers its own pages (one file each).
        registerTemplatePages(on: router)
        registerAdminPages(on: router)
        registerListPages(on: router)
        registerMessagePages(on: router)
        registerWebhookPages(on: router)
        registerUserPages(on: router)
    }

    // MARK: The frame every page uses

    /// Who is looking at a page: the session, the principal as it is now, the language and its words, the forms' token.
    struct Viewer {
        let session: ConsoleSession
        let principal: Principal
        let language: String
        let words: [String: String]
        let csrf: String

        /// Whether the user's policies allow `action` on `resource` (the tenant when nil): buttons only where they do.
        func may(_ action: String, _ resource: String? = nil) -> Bool {
            (try? principal.authorize(action: action, resource: resource ?? principal.tenantResource)) != nil
        }

        /// A word in the viewer's language (the key itself when there is none).
        subscript(_ key: String) -> String { words[key] ?? key }
    }

    /// A page: signed in (else to the sign-in page), allowed `action` on the tenant when one is named (else 403),
    /// then `body`; a thrown error shows the failure page (a store error is never a 500 with details).
    func show(_ request: Request, action: String?, _ body: (Viewer) async throws -> Response) async -> Response {
        let (session, principal): (ConsoleSession, Principal)
        do { (session, principal) = try await admit(request) } catch { return error.response }
        let language = Self.language(request)
        let viewer = Viewer(session: session, principal: principal, language: language, words: ConsolePages.words(language),
                            csrf: session.csrfToken(key: key))
        if let action, !viewer.may(action) { return forbidden(request) }
        do {
            return try await body(viewer)
        } catch let error as HeraldError where error.kind == .notFound {
            return page(viewer, title: "notFound", "message", ["title": viewer["notFound"], "text": viewer["notFoundText"]], status: .notFound)
        } catch {
            return failure(request)
        }
    }

    /// One object's page: its id (`text`, from the path; a malformed one is not found), the RAM `action` on
    /// `kind/id` (else 403), then `body`; what the store does not find there, another tenant's object included, is the
    /// `missing` page, a 404 that shows nothing of it.
    func showObject(_ request: Request, id text: String?, kind: String, action: String, missing: @escaping (Viewer) -> Response,
                    _ body: (Viewer, UUID) async throws -> Response) async -> Response {
        await show(request, action: nil) { viewer in
            guard let id = text.flatMap({ UUID(uuidString: $0) }) else { return missing(viewer) }
            guard viewer.may(action, viewer.principal.resource(kind, id.lowercasedString)) else { return forbidden(request) }
            do {
                return try await body(viewer, id)
            } catch let error as HeraldError where error.kind == .notFound {
                return missing(viewer)
            }
        }
    }

    /// `template` in the layout for `viewer`, titled with the word `title`; the context gets `t` (the words), `csrf`
    /// and `notice` (nil: none) added.
    func page(_ viewer: Viewer, title: String, _ template: String, _ context: [String: Any] = [:], notice: String? = nil,
              status: HTTPResponse.Status = .ok) -> Response {
        var context = context
        context["t"] = viewer.words
        context["csrf"] = viewer.csrf
        if context["notice"] == nil { context["notice"] = notice ?? false }
        return page(viewer[title], template, context, language: viewer.language, session: viewer.session, who: viewer.principal.accessKeyID,
                    status: status)
    }

    // MARK: Pages

    func overview(_ request: Request, context: HeraldRequestContext) async -> Response {
        let (session, principal): (ConsoleSession, Principal)
        do { (session, principal) = try await admit(request) } catch { return error.response }
        let language = Self.language(request), words = ConsolePages.words(language)
        var context: [String: Any] = ["t": words]
        // One round trip per widget; a widget the user's policies deny says so instead.
        if (try? principal.authorize(action: "dm:GetAccount", resource: principal.tenantResource)) != nil,
           let account = try? await grades.account(tenantID: principal.tenantID, now: now()) {
            context["account"] = [
                "status": account.status.rawValue, "statusText": words[account.status.rawValue] ?? account.status.rawValue,
                "grade": account.grade, "ceiling": account.gradeCeiling, "dailyUsed": account.dailyUsed, "dailyQuota": account.dailyQuota,
                "dailyHigh": account.dailyQuota * 9 / 10, "monthlyUsed": account.monthlyUsed, "monthlyQuota": account.monthlyQuota,
                "monthlyHigh": account.monthlyQuota * 9 / 10, "freeRemaining": account.freeRemaining,
            ] as [String: Any]
        }
        if (try? principal.authorize(action: "dm:QueryStatistics", resource: principal.tenantResource)) != nil {
            let until = now(), from = until.addingTimeInterval(-29 * 86_400)
            if let (days, _) = try? await stats.stats(tenantID: principal.tenantID, from: StatsDay.format(from), until: StatsDay.format(until),
                                                      groupBy: .day, sender: nil, tag: nil) {
                context["chart"] = ConsolePages.chart(days, words: words)
            }
        }
        var history: [GradeChangeRecord] = []
        if (try? principal.authorize(action: "dm:GetAccount", resource: principal.tenantResource)) != nil,
           let changes = try? await grades.history(tenantID: principal.tenantID) {
            history = changes
            context["gradeChart"] = ConsolePages.gradeChart(changes, current: (context["account"] as? [String: Any])?["grade"] as? Int,
                                                            now: now(), words: words)
            context["gradeChanges"] = changes.prefix(10).map { change -> [String: Any] in
                ["at": ConsolePages.time(change.at), "from": change.fromGrade, "to": change.toGrade, "change": change.change, "reason": change.reason]
            }
        }
        var domainList: [DomainRecord]?
        if (try? principal.authorize(action: "dm:QueryDomainByParam", resource: principal.tenantResource)) != nil {
            domainList = try? await domains.list(tenantID: principal.tenantID)
        }
        context["warnings"] = ConsolePages.warnings(account: context["account"] as? [String: Any], freeze: history.first { $0.change == "freeze" },
                                                    domains: domainList, settings: domainSettings, words: words)
        return page(words["overview"] ?? "", "overview", context, language: language, session: session, who: principal.isRoot ? "root · \(principal.accessKeyID)" : principal.accessKeyID)
    }

    func signInPage(_ request: Request, error: String? = nil, accessKeyID: String = "", status: HTTPResponse.Status = .ok) -> Response {
        let language = Self.language(request), words = ConsolePages.words(language)
        // Double-submit: the form carries the value of a cookie set with it, which another site can neither read nor set.
        let token = ConsoleSession.newNonce()
        var response = page(words["signInTitle"] ?? "", "sign-in", ["t": words, "csrf": token, "error": error ?? false, "accessKeyId": accessKeyID],
                            language: language, session: nil, who: nil, status: status)
        response.headers.append(HTTPField(name: .setCookie, value: cookie(Self.csrfCookie, token, maxAge: 3_600)))
        return response
    }

    func signIn(_ request: Request, context: HeraldRequestContext) async -> Response {
        let words = ConsolePages.words(Self.language(request))
        guard let form = await Self.form(request) else { return signInPage(request, error: words["expired"], status: .badRequest) }
        let expected = Self.cookies(request)[Self.csrfCookie]
        guard let expected, let given = form["csrf"], constantTimeEquals(Array(expected.utf8), Array(given.utf8)) else {
            return signInPage(request, error: words["expired"], status: .forbidden)
        }
        let keyID = String((form["accessKeyId"] ?? "").prefix(64)), secret = form["accessKeySecret"] ?? ""
        if case .limited = await ipLimiter.acquire(context.clientIP?.description ?? "unknown") {
            return signInPage(request, error: words["tooMany"], accessKeyID: keyID, status: .tooManyRequests)
        }
        if case .limited = await keyLimiter.acquire(keyID) {
            return signInPage(request, error: words["tooMany"], accessKeyID: keyID, status: .tooManyRequests)
        }
        guard let owner = try? await auth.verify(accessKeyID: keyID, secret: secret) else {
            return signInPage(request, error: words["badCredentials"], accessKeyID: keyID, status: .unauthorized)
        }
        let seconds = Int(now().timeIntervalSince1970)
        let session = ConsoleSession(tenantID: owner.tenantID, userID: owner.userID, accessKeyID: keyID, issuedAt: seconds, seenAt: seconds)
        var response = Self.redirect("/console")
        response.headers.append(HTTPField(name: .setCookie, value: cookie(Self.cookie, session.encode(key: key), maxAge: Int(ConsoleSession.lifetime))))
        response.headers.append(HTTPField(name: .setCookie, value: cookie(Self.csrfCookie, "", maxAge: 0)))
        return response
    }

    func signOut(_ request: Request, context: HeraldRequestContext) async -> Response {
        guard let session = Self.cookies(request)[Self.cookie].flatMap({ ConsoleSession.decode($0, key: key, now: now()) }) else {
            return Self.redirect("/console/sign-in")
        }
        guard let form = await Self.form(request), session.accepts(csrf: form["csrf"], key: key) else { return forbidden(request) }
        var response = Self.redirect("/console/sign-in")
        response.headers.append(HTTPField(name: .setCookie, value: cookie(Self.cookie, "", maxAge: 0)))
        return response
    }

    /// The language links: remembers `?lang=` for a year (not a secret, so readable by nothing but the console's
    /// pages all the same) and goes back to the console page the link was on.
    func chooseLanguage(_ request: Request) -> Response {
        let language = request.uri.queryParameters.get("lang") == "zh" ? "zh" : "en"
        let back = request.headers[.referer].flatMap { URL(string: $0)?.path }.map(Self.pageToReturnTo) ?? "/console"
        var response = Self.redirect(back)
        response.headers.append(HTTPField(name: .setCookie, value: cookie(Self.languageCookie, language, maxAge: 365 * 86_400)))
        return response
    }

    /// The page a language link on `path` goes back to: the page itself when it is one (a menu page, or one
    /// object's page), else the menu page it belongs to (a page drawn after a form was posted to an action).
    static func pageToReturnTo(_ path: String) -> String {
        let pages = ConsolePages.menu.map(\.path) + ["/console/admin/tenants", "/console/admin/review", "/console/admin/processes"]
        let objects: Set = ["/console/templates", "/console/lists", "/console/tasks", "/console/messages", "/console/webhooks", "/console/users",
                            "/console/admin/tenants"]
        guard let section = pages.filter({ path == $0 || path.hasPrefix($0 + "/") }).max(by: { $0.count < $1.count }) else {
            return path.hasPrefix("/console/admin") ? "/console/admin" : "/console"
        }
        let rest = path.dropFirst(section.count).split(separator: "/")
        if rest.count == 1, objects.contains(section), UUID(uuidString: String(rest[0])) != nil { return path }
        return section
    }

    func forbidden(_ request: Request) -> Response {
        let language = Self.language(request), words = ConsolePages.words(language)
        return page(words["forbidden"] ?? "", "message", ["t": words, "title": words["forbidden"] ?? "", "text": words["notAllowed"] ?? ""],
                    language: language, session: nil, who: nil, status: .forbidden)
    }

    // MARK: Domains

    /// The tenant's domains, each with the records to publish and its last check; add and verify where allowed.
    func domainsPage(_ request: Request, context: HeraldRequestContext, notice: String? = nil) async -> Response {
        let (session, principal): (ConsoleSession, Principal)
        do { (session, principal) = try await admit(request) } catch { return error.response }
        let language = Self.language(request), words = ConsolePages.words(language)
        guard (try? principal.authorize(action: "dm:QueryDomainByParam", resource: principal.tenantResource)) != nil else { return forbidden(request) }
        guard let list = try? await domains.list(tenantID: principal.tenantID) else { return failure(request) }
        let csrf = session.csrfToken(key: key)
        let rows: [[String: Any]] = list.map { domain in
            let records: [[String: Any]] = domain.records(settings: domainSettings).map { record, check in
                let status = check?.status.rawValue ?? "pending"
                return ["purpose": record.purpose.rawValue, "type": record.type, "host": record.host, "value": record.value,
                        "check": status, "checkText": words[status] ?? status, "purposeText": words["purpose_" + record.purpose.rawValue] ?? record.purpose.rawValue,
                        // Since when only for what needs fixing ("missing since …").
                        "since": check.flatMap { $0.status == .ok ? nil : $0.since.map { ConsolePages.time($0) } } ?? false]
            }
            let resource = principal.resource("domain", domain.id.lowercasedString)
            let allowed = (try? principal.authorize(action: "dm:CheckDomain", resource: resource)) != nil
            return ["id": domain.id.lowercasedString, "name": domain.name, "statusClass": domain.status.rawValue,
                    "canRotate": (try? principal.authorize(action: "dm:RotateDomainDkim", resource: resource)) != nil,
                    "canDelete": (try? principal.authorize(action: "dm:DeleteDomain", resource: resource)) != nil,
                    "statusText": words[domain.status.rawValue] ?? domain.status.rawValue,
                    "checkedAt": domain.lastCheckedAt.map { ConsolePages.time($0) } ?? (words["never"] ?? ""), "records": records,
                    "canVerify": allowed, "csrf": csrf]
        }
        let canCreate = (try? principal.authorize(action: "dm:CreateDomain", resource: principal.tenantResource)) != nil
        return page(words["domains"] ?? "", "domains", ["t": words, "domains": rows, "canCreate": canCreate, "csrf": csrf, "notice": notice ?? false],
                    language: language, session: session, who: principal.accessKeyID)
    }

    func createDomain(_ request: Request, context: HeraldRequestContext) async -> Response {
        await change(request, context: context, action: "dm:CreateDomain", resource: { $0.tenantResource }, then: domainsPage) { principal, form, actor in
            _ = try await domains.create(tenantID: principal.tenantID, name: form["name"] ?? "", keyBits: 2048, actor: actor, now: now())
            return "domainCreated"
        }
    }

    func verifyDomain(_ request: Request, context: HeraldRequestContext) async -> Response {
        guard let id = context.parameters.get("id").flatMap({ UUID(uuidString: $0) }) else {
            return forbidden(request)
        }
        return await change(request, context: context, action: "dm:CheckDomain", resource: { $0.resource("domain", id.lowercasedString) },
                            then: domainsPage) { principal, _, actor in
            _ = try await verifier.verify(tenantID: principal.tenantID, id: id, actor: actor)
            return "checked"
        }
    }

    func rotateDomain(_ request: Request, context: HeraldRequestContext) async -> Response {
        guard let id = context.parameters.get("id").flatMap({ UUID(uuidString: $0) }) else { return forbidden(request) }
        return await change(request, context: context, action: "dm:RotateDomainDkim", resource: { $0.resource("domain", id.lowercasedString) },
                            then: domainsPage) { principal, _, actor in
            _ = try await domains.rotateDKIM(tenantID: principal.tenantID, id: id, keyBits: 2048, actor: actor, now: now())
            return "rotated"
        }
    }

    func deleteDomain(_ request: Request, context: HeraldRequestContext) async -> Response {
        guard let id = context.parameters.get("id").flatMap({ UUID(uuidString: $0) }) else { return forbidden(request) }
        return await change(request, context: context, action: "dm:DeleteDomain", resource: { $0.resource("domain", id.lowercasedString) },
                            then: domainsPage) { principal, _, actor in
            try await domains.delete(tenantID: principal.tenantID, id: id, actor: actor)
            return "deleted"
        }
    }

    // MARK: Senders

    /// The tenant's sender addresses: type, reply-to and its confirmation, SMTP password; add one where allowed.
    func sendersPage(_ request: Request, context: HeraldRequestContext, notice: String? = nil) async -> Response {
        let (session, principal): (ConsoleSession, Principal)
        do { (session, principal) = try await admit(request) } catch { return error.response }
        let language = Self.language(request), words = ConsolePages.words(language)
        guard (try? principal.authorize(action: "dm:QueryMailAddressByParam", resource: principal.tenantResource)) != nil else { return forbidden(request) }
        guard let list = try? await senders.list(tenantID: principal.tenantID) else { return failure(request) }
        let csrf = session.csrfToken(key: key)
        let rows: [[String: Any]] = list.map { sender in
            let resource = principal.resource("sender", sender.id.lowercasedString)
            return ["id": sender.id.lowercasedString, "csrf": csrf, "replyToValue": sender.replyTo ?? "",
             "pending": sender.replyToStatus.rawValue == "pending",
             "canModify": (try? principal.authorize(action: "dm:ModifyMailAddress", resource: resource)) != nil,
             "canDelete": (try? principal.authorize(action: "dm:DeleteMailAddress", resource: resource)) != nil,
             "address": sender.address, "type": words[sender.type.rawValue] ?? sender.type.rawValue, "replyTo": sender.replyTo ?? "—",
             "replyToStatus": sender.replyToStatus.rawValue, "replyToText": words["reply_" + sender.replyToStatus.rawValue] ?? sender.replyToStatus.rawValue,
             "smtp": words[sender.smtpPasswordSet ? "yes" : "no"] ?? ""]
        }
        let canCreate = (try? principal.authorize(action: "dm:CreateMailAddress", resource: principal.tenantResource)) != nil
        return page(words["senders"] ?? "", "senders", ["t": words, "senders": rows, "canCreate": canCreate, "csrf": session.csrfToken(key: key),
                                                        "notice": notice ?? false],
                    language: language, session: session, who: principal.accessKeyID)
    }

    func createSender(_ request: Request, context: HeraldRequestContext) async -> Response {
        await change(request, context: context, action: "dm:CreateMailAddress", resource: { $0.tenantResource }, then: sendersPage) { principal, form, actor in
            guard let type = MailKind(rawValue: form["type"] ?? "") else { throw HeraldError.validation("Choose trigger or batch.", field: "type") }
            let reply = form["replyTo"].flatMap { $0.isEmpty ? nil : $0 }
            _ = try await senders.create(tenantID: principal.tenantID, address: form["address"] ?? "", type: type, replyTo: reply, actor: actor)
            return reply == nil ? "created" : "createdWithReplyTo"
        }
    }

    /// A change to one sender address, `id` from the path: `action` on it, then `body`, then the senders page.
    func changeSender(_ request: Request, context: HeraldRequestContext, action: String,
                      _ body: @escaping (Principal, UUID, [String: String], AuditActor) async throws -> String) async -> Response {
        guard let id = context.parameters.get("id").flatMap({ UUID(uuidString: $0) }) else { return forbidden(request) }
        return await change(request, context: context, action: action, resource: { $0.resource("sender", id.lowercasedString) },
                            then: sendersPage) { principal, form, actor in try await body(principal, id, form, actor) }
    }

    func registerSenderChanges(on router: Router<HeraldRequestContext>) {
        router.post("/console/senders/{id}/reply-to") { request, context in
            await changeSender(request, context: context, action: "dm:ModifyMailAddress") { principal, id, form, actor in
                let reply = form["replyTo"].flatMap { $0.isEmpty ? nil : $0 }
                _ = try await senders.setReplyTo(tenantID: principal.tenantID, id: id, replyTo: reply, actor: actor)
                return reply == nil ? "saved" : "confirmationSent"
            }
        }
        router.post("/console/senders/{id}/confirm") { request, context in
            await changeSender(request, context: context, action: "dm:CheckReplyToMailAddress") { principal, id, _, actor in
                _ = try await senders.renewReplyToNonce(tenantID: principal.tenantID, id: id, actor: actor)
                return "confirmationSent"
            }
        }
        router.post("/console/senders/{id}/smtp-password") { request, context in
            await changeSender(request, context: context, action: "dm:ModifyMailAddress") { principal, id, form, actor in
                let password = form["password"] ?? ""
                try SMTPPassword.validate(password)
                try await senders.setSMTPPassword(tenantID: principal.tenantID, id: id, password: password, actor: actor)
                return "passwordSet"
            }
        }
        router.post("/console/senders/{id}/delete") { request, context in
            await changeSender(request, context: context, action: "dm:DeleteMailAddress") { principal, id, _, actor in
                try await senders.delete(tenantID: principal.tenantID, id: id, actor: actor, now: now())
                return "deleted"
            }
        }
    }

    /// A form that changes something: signed in, its CSRF token, the RAM action on the resource (403 otherwise,
    /// audited as a refusal), then `body` with the session's audit actor; `then`, the page again with the outcome.
    func change(_ request: Request, context: HeraldRequestContext, action: String, resource: (Principal) -> String,
                then: (Request, HeraldRequestContext, String?) async -> Response,
                _ body: (Principal, [String: String], AuditActor) async throws -> String) async -> Response {
        let words = ConsolePages.words(Self.language(request))
        return await change(request, context: context, read: { await Self.form($0) }, token: { $0["csrf"] }, action: action, resource: resource,
                            refused: { await then($0, $1, $2.message) }) { principal, form, scoped in
            let outcome = try await body(principal, form, scoped.auditActor)
            return await then(request, scoped, words[outcome])
        }
    }

    /// The one path of every change, whatever its body's encoding: signed in, `read` the form (nil: not one, refused
    /// like a form without its token; a thrown HeraldError: shown by `refused`), its CSRF `token`, the RAM `action`
    /// on `resource` (403 page, audited as a refusal), then `body` with the principal, the form and the request
    /// context carrying the session's audit actor; a refusal thrown on the way is audited and shown by `refused`.
    func change<Form>(_ request: Request, context: HeraldRequestContext, read: (Request) async throws -> Form?, token: (Form) -> String?,
                      action: String, resource: (Principal) -> String, refused: (Request, HeraldRequestContext, HeraldError) async -> Response,
                      _ body: (Principal, Form, HeraldRequestContext) async throws -> Response) async -> Response {
        let (session, principal): (ConsoleSession, Principal)
        do { (session, principal) = try await admit(request) } catch { return error.response }
        var scoped = context
        scoped.principal = principal
        let form: Form
        do {
            guard let read = try await read(request), session.accepts(csrf: token(read), key: key) else { return forbidden(request) }
            form = read
        } catch {
            return await refused(request, scoped, HeraldError.unwrapping(error) ?? HeraldError.validation("The form could not be read."))
        }
        do {
            try principal.authorize(action: action, resource: resource(principal))
            return try await body(principal, form, scoped)
        } catch {
            let failure = HeraldError.unwrapping(error) ?? HeraldError(code: "Internal", kind: .internal, message: "Something went wrong.")
            if !failure.kind.isServerFault {
                await AuditLog.recordRefusal(database: database, tenantID: principal.tenantID, actor: scoped.auditActor, action: action,
                                             resource: resource(principal), code: failure.code)
            }
            if failure.code == "Forbidden.RAM" { return forbidden(request) }
            return await refused(request, scoped, failure)
        }
    }

    func failure(_ request: Request) -> Response {
        let language = Self.language(request), words = ConsolePages.words(language)
        return page("Herald", "message", ["t": words, "title": "Herald", "text": "The page could not be shown; try again."],
                    language: language, session: nil, who: nil, status: .serviceUnavailable)
    }

    // MARK: Sessions

    /// Why a request does not get its page: the response to give instead.
    struct Stop: Error {
        let response: Response
    }

    /// The session and principal of a request that may have its page: signed in (else to the sign-in page) and
    /// within its tenant's request rate, which the console's pages and forms share with the REST API and the
    /// compatibility endpoint (else a 429 page).
    func admit(_ request: Request) async throws(Stop) -> (ConsoleSession, Principal) {
        guard let (session, principal) = await signedIn(request) else { throw Stop(response: Self.redirect("/console/sign-in")) }
        if case .limited(let retryAfter) = await deps.rateLimits.tenant.acquire(principal.tenantID.lowercasedString) {
            let language = Self.language(request), words = ConsolePages.words(language)
            var response = page(words["tooMany"] ?? "", "message", ["t": words, "title": words["tooMany"] ?? "", "text": words["tooMany"] ?? ""],
                                language: language, session: nil, who: nil, status: .tooManyRequests)
            response.headers[.retryAfter] = String(retryAfter)
            throw Stop(response: response)
        }
        return (session, principal)
    }

    /// The signed-in session and its principal as they are now (a disabled user or deleted key is signed out).
    func signedIn(_ request: Request) async -> (ConsoleSession, Principal)? {
        guard let text = Self.cookies(request)[Self.cookie], let session = ConsoleSession.decode(text, key: key, now: now()),
              let principal = try? await auth.principal(tenantID: session.tenantID, userID: session.userID, accessKeyID: session.accessKeyID),
              principal.tenantStatus != .banned else { return nil }
        return (session, principal)
    }

    /// A page in the layout; a signed-in one re-issues the session cookie (the idle clock starts again).
    func page(_ title: String, _ template: String, _ context: [String: Any], language: String, session: ConsoleSession?, who: String?,
              status: HTTPResponse.Status = .ok) -> Response {
        let body = ConsolePages.render(template, context)
        let words = ConsolePages.words(language)
        var layout: [String: Any] = ["lang": language, "title": title, "body": body, "t": words,
                                     "languages": [["code": "en", "name": "English"], ["code": "zh", "name": "中文"]]]
        if let session {
            layout["menu"] = ConsolePages.menu.map { item -> [String: Any] in
                ["href": item.path, "name": words[item.word] ?? item.word, "current": words[item.word] == title]
            }
            layout["signedIn"] = true
            layout["csrf"] = session.csrfToken(key: key)
            layout["who"] = who ?? ""
        }
        var headers: HTTPFields = [
            .contentType: "text/html; charset=utf-8", .cacheControl: "no-store",
            .contentSecurityPolicy: "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            HTTPField.Name("X-Content-Type-Options")!: "nosniff", HTTPField.Name("Referrer-Policy")!: "same-origin",
        ]
        if var session {
            session.seenAt = Int(now().timeIntervalSince1970)
            headers.append(HTTPField(name: .setCookie, value: cookie(Self.cookie, session.encode(key: key), maxAge: Int(ConsoleSession.lifetime))))
        }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: ConsolePages.render("layout", layout))))
    }

    func cookie(_ name: String, _ value: String, maxAge: Int) -> String {
        "\(name)=\(value); Path=/console; Max-Age=\(maxAge); HttpOnly; SameSite=Lax" + (secure ? "; Secure" : "")
    }

    static func redirect(_ location: String) -> Response {
        Response(status: .seeOther, headers: [.location: location, .cacheControl: "no-store"])
    }

    /// `en` or `zh`: `?lang=` when given, else the one chosen with the language links (a cookie), else the first of
    /// Accept-Language Herald speaks.
    static func language(_ request: Request) -> String {
        if let asked = request.uri.queryParameters.get("lang"), asked == "en" || asked == "zh" { return asked }
        if let chosen = cookies(request)[languageCookie], chosen == "en" || chosen == "zh" { return chosen }
        let accepted = (request.headers[.acceptLanguage] ?? "").lowercased().split(separator: ",")
        for entry in accepted {
            let tag = entry.split(separator: ";").first?.trimmingCharacters(in: .whitespaces) ?? ""
            if tag.hasPrefix("zh") { return "zh" }
            if tag.hasPrefix("en") { return "en" }
        }
        return "en"
    }

    static func cookies(_ request: Request) -> [String: String] {
        var cookies: [String: String] = [:]
        for header in request.headers[values: .cookie] {
            for pair in header.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                if parts.count == 2, cookies[parts[0]] == nil { cookies[parts[0]] = parts[1] }
            }
        }
        return cookies
    }

    /// A form body (at most 16 KB), its fields by name (the last of a name wins); nil when it is not a form.
    static func form(_ request: Request) async -> [String: String]? {
        guard request.headers[.contentType]?.lowercased().hasPrefix("application/x-www-form-urlencoded") == true else { return nil }
        var request = request
        guard let body = try? await request.collectBody(upTo: 16 * 1024) else { return nil }
        var fields: [String: String] = [:]
        for (name, value) in DirectMailCompat.form(String(buffer: body)) { fields[name] = value }
        return fields
    }
}
