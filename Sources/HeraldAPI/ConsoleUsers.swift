import Foundation
import HTTPTypes
import HeraldCore
import HeraldStore
import Hummingbird

/// Users, AccessKeys and policies, IP protection and the audit log in the console (issue #19). Every change is the
/// REST route's: the same IdentityStore call and RAM action, the root-user rule of the identity routes, the session's
/// audit actor. A change that would lock the signed-in user out (disabling or deleting themselves, deleting the key
/// they are signed in with, detaching their own policies) is allowed, as in the API, but never silently: its form
/// says so and needs a ticked confirmation.
extension Console {
    func registerUserPages(on router: Router<HeraldRequestContext>) {
        router.get("/console/users") { request, context in await usersPage(request, context: context, notice: nil) }
        router.post("/console/users") { request, context in await createUser(request, context: context) }
        router.get("/console/users/{id}") { request, context in await userPage(request, context: context, notice: nil) }
        router.post("/console/users/{id}/enable") { request, context in await setUserEnabled(request, context: context, enabled: true) }
        router.post("/console/users/{id}/disable") { request, context in await setUserEnabled(request, context: context, enabled: false) }
        router.post("/console/users/{id}/delete") { request, context in await deleteUser(request, context: context) }
        router.post("/console/users/{id}/keys") { request, context in await createAccessKey(request, context: context) }
        router.post("/console/users/{id}/keys/{key}/delete") { request, context in await deleteAccessKey(request, context: context) }
        router.post("/console/users/{id}/policies") { request, context in await attachPolicy(request, context: context) }
        router.post("/console/users/{id}/policies/{name}/detach") { request, context in await detachPolicy(request, context: context) }
        router.post("/console/policies") { request, context in await createPolicy(request, context: context) }
        router.post("/console/policies/{name}/delete") { request, context in await deletePolicy(request, context: context) }
        router.get("/console/ip-protection") { request, context in await ipProtectionPage(request, context: context, notice: nil) }
        router.post("/console/ip-protection/add") { request, context in await changeIPAllowlist(request, context: context, adding: true) }
        router.post("/console/ip-protection/remove") { request, context in await changeIPAllowlist(request, context: context, adding: false) }
        router.post("/console/ip-protection/switch") { request, context in await switchIPProtection(request, context: context) }
        router.get("/console/audit") { request, context in await auditPage(request, context: context) }
    }

    private func usrID(_ context: HeraldRequestContext) -> UUID? {
        context.parameters.get("id").flatMap { UUID(uuidString: $0) }
    }

    private func usrMissing(_ viewer: Viewer) -> Response {
        page(viewer, title: "users", "message", ["title": viewer["usr_missing"], "text": viewer["usr_missingText"]], status: .notFound)
    }

    private static func usrTime(_ date: Date?) -> String {
        ConsolePages.time(date)
    }

    /// The identity routes' rule (APIHandler.guardRootUser): a sub-user may not act on the root user, whatever its
    /// policies allow; the root caller and a user acting on itself need no read.
    private func usrGuardRoot(_ principal: Principal, _ userID: UUID) async throws {
        guard !principal.isRoot, principal.userID != userID else { return }
        let target = try await deps.identity.getUser(tenantID: principal.tenantID, id: userID)
        try RootUserRule.check(callerIsRoot: principal.isRoot, targetIsRoot: target.root)
    }

    /// A change that would sign the user out needs the ticked `confirm` box.
    private static func usrConfirmed(_ form: [String: String], selfLockout: Bool) throws {
        guard !selfLockout || form["confirm"] == "yes" else {
            throw HeraldError.validation("This would lock you out of the console and the API: tick the confirmation box to go ahead.", field: "confirm")
        }
    }

    // MARK: Users and policies

    /// The tenant's users (dm:ListUsers), 50 at a time, each with its policies; create one; the tenant's policies
    /// (dm:ListPolicies) with their documents; create a custom one from JSON, delete one. `draft` keeps a refused
    /// policy's fields in the form.
    func usersPage(_ request: Request, context: HeraldRequestContext, notice: String?, draft: [String: String] = [:]) async -> Response {
        await show(request, action: "dm:ListUsers") { viewer in
            let tenant = viewer.principal.tenantID
            let after = request.uri.queryParameters.get("after").flatMap { UUID(uuidString: $0) }
            let limit = 50
            let users = try await deps.identity.listUsers(tenantID: tenant, limit: limit, after: after)
            let attached = try await deps.identity.consolePolicyNames(tenantID: tenant, userIDs: users.map(\.id))
            let rows: [[String: Any]] = users.map { user in
                ["id": user.id.lowercasedString, "name": user.name, "root": user.root, "self": user.id == viewer.principal.userID,
                 "enabledClass": user.enabled ? "active" : "failed", "enabledText": viewer[user.enabled ? "usr_enabled" : "usr_disabled"],
                 "policies": user.root ? viewer["usr_rootAll"] : (attached[user.id] ?? []).joined(separator: ", "),
                 "created": Self.usrTime(user.createdAt)]
            }
            var values: [String: Any] = [
                "users": rows, "canCreate": viewer.may("dm:CreateUser"),
                "next": users.count == limit ? "/console/users?after=\(users.last!.id.lowercasedString)" : false,
                "first": after != nil ? "/console/users" : false,
            ]
            if viewer.may("dm:ListPolicies") {
                let policies = try await deps.identity.listPolicies(tenantID: tenant)
                values["policies"] = policies.map { policy -> [String: Any] in
                    ["name": policy.name, "type": viewer[policy.type == .system ? "usr_system" : "usr_custom"], "description": policy.description,
                     "document": Self.usrJSON(policy.document),
                     "canDelete": policy.type == .custom && viewer.may("dm:DeletePolicy", viewer.principal.resource("policy", policy.name))]
                }
                values["canCreatePolicy"] = viewer.may("dm:CreatePolicy")
                values["showPolicies"] = true
                values["draft"] = ["name": draft["name"] ?? "", "description": draft["description"] ?? "", "document": draft["document"] ?? ""]
            }
            return page(viewer, title: "users", "usr-list", values, notice: notice)
        }
    }

    private static func usrJSON(_ document: PolicyDocument) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(document)).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    func createUser(_ request: Request, context: HeraldRequestContext) async -> Response {
        await change(request, context: context, action: "dm:CreateUser", resource: { $0.tenantResource },
                     then: { request, context, notice in await usersPage(request, context: context, notice: notice) }) { principal, form, actor in
            _ = try await deps.identity.createUser(tenantID: principal.tenantID, name: (form["name"] ?? "").trimmingCharacters(in: .whitespaces), actor: actor)
            return "usr_userCreated"
        }
    }

    func createPolicy(_ request: Request, context: HeraldRequestContext) async -> Response {
        var draft: [String: String] = [:]
        return await change(request, context: context, action: "dm:CreatePolicy", resource: { $0.tenantResource },
                            then: { request, context, notice in await usersPage(request, context: context, notice: notice, draft: draft) }) { principal, form, actor in
            draft = ["name": form["name"] ?? "", "description": form["description"] ?? "", "document": form["document"] ?? ""]
            let document = try PolicyDocument.parse(Array((form["document"] ?? "").utf8))
            _ = try await deps.identity.createPolicy(tenantID: principal.tenantID, name: form["name"] ?? "", description: form["description"] ?? "",
                                                     document: document, actor: actor)
            draft = [:]
            return "usr_policyCreated"
        }
    }

    func deletePolicy(_ request: Request, context: HeraldRequestContext) async -> Response {
        guard let name = context.parameters.get("name"), !name.isEmpty else { return forbidden(request) }
        return await change(request, context: context, action: "dm:DeletePolicy", resource: { $0.resource("policy", name) },
                            then: { request, context, notice in await usersPage(request, context: context, notice: notice) }) { principal, _, actor in
            try await deps.identity.deletePolicy(tenantID: principal.tenantID, name: name, actor: actor)
            return "usr_policyDeleted"
        }
    }

    // MARK: One user

    /// One user (dm:GetUser on it): enable/disable and delete (not the root user); its AccessKeys (dm:ListAccessKeys;
    /// create one, its secret shown once; delete); its policies (dm:ListPoliciesForUser; attach a system or custom
    /// policy, detach). `created` is a new key's id and secret, shown this once.
    func userPage(_ request: Request, context: HeraldRequestContext, notice: String?, created: (id: String, secret: String)? = nil) async -> Response {
        await showObject(request, id: context.parameters.get("id"), kind: "user", action: "dm:GetUser", missing: usrMissing) { viewer, id in
            let principal = viewer.principal
            let resource = principal.resource("user", id.lowercasedString)
            let user = try await deps.identity.getUser(tenantID: principal.tenantID, id: id)
            let isSelf = user.id == principal.userID
            // Only the root user manages the root user (its keys and policies are not shown to a sub-user).
            let manageable = principal.isRoot || !user.root
            var values: [String: Any] = [
                "user": ["id": id.lowercasedString, "name": user.name, "root": user.root, "self": isSelf,
                         "enabledClass": user.enabled ? "active" : "failed", "enabledText": viewer[user.enabled ? "usr_enabled" : "usr_disabled"],
                         "created": Self.usrTime(user.createdAt), "toggle": user.enabled ? "disable" : "enable",
                         "toggleText": viewer[user.enabled ? "usr_disable" : "usr_enable"], "lockout": isSelf && user.enabled] as [String: Any],
                "canUpdate": !user.root && viewer.may("dm:UpdateUser", resource), "canDelete": !user.root && viewer.may("dm:DeleteUser", resource),
                "newKey": created.map { ["keyId": $0.id, "secret": $0.secret] } ?? false,
            ]
            if !manageable {
                values["rootOnly"] = true
            } else {
                if viewer.may("dm:ListAccessKeys", resource) {
                    let keys = try await deps.identity.listAccessKeys(tenantID: principal.tenantID, userID: id)
                    let canDelete = viewer.may("dm:DeleteAccessKey", resource)
                    values["keys"] = ["rows": keys.map { key -> [String: Any] in
                        ["keyId": key.accessKeyId, "created": Self.usrTime(key.createdAt), "used": Self.usrTime(key.lastUsedAt),
                         "current": key.accessKeyId == principal.accessKeyID, "canDelete": canDelete]
                    }] as [String: Any]
                }
                values["canCreateKey"] = viewer.may("dm:CreateAccessKey", resource)
                if viewer.may("dm:ListPoliciesForUser", resource) {
                    let attached = try await deps.identity.listUserPolicies(tenantID: principal.tenantID, userID: id)
                    let canDetach = viewer.may("dm:DetachPolicyFromUser", resource)
                    values["attached"] = ["rows": attached.map { policy -> [String: Any] in
                        ["name": policy.name, "type": viewer[policy.type == .system ? "usr_system" : "usr_custom"], "canDetach": canDetach,
                         "slug": Self.usrSlug(policy.name)]
                    }] as [String: Any]
                    if viewer.may("dm:AttachPolicyToUser", resource) {
                        // The tenant's own policies too when the user may list them; the built-in ones always.
                        let all = viewer.may("dm:ListPolicies") ? try await deps.identity.listPolicies(tenantID: principal.tenantID).map(\.name)
                            : BuiltinPolicy.allCases.map(\.rawValue)
                        let have = Set(attached.map(\.name))
                        let attachable = all.filter { !have.contains($0) }
                        values["attachable"] = attachable.map { ["name": $0] }
                        values["canAttach"] = !attachable.isEmpty
                    }
                }
            }
            return page(viewer, title: "users", "usr-detail", values, notice: notice)
        }
    }

    private static func usrSlug(_ name: String) -> String {
        String(name.map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "-" })
    }

    func setUserEnabled(_ request: Request, context: HeraldRequestContext, enabled: Bool) async -> Response {
        guard let id = usrID(context) else { return forbidden(request) }
        return await change(request, context: context, action: "dm:UpdateUser", resource: { $0.resource("user", id.lowercasedString) },
                            then: { request, context, notice in await userPage(request, context: context, notice: notice) }) { principal, form, actor in
            try Self.usrConfirmed(form, selfLockout: !enabled && id == principal.userID)
            try await usrGuardRoot(principal, id)
            _ = try await deps.identity.updateUser(tenantID: principal.tenantID, id: id, name: nil, enabled: enabled, actor: actor)
            return enabled ? "usr_enabledNotice" : "usr_disabledNotice"
        }
    }

    func deleteUser(_ request: Request, context: HeraldRequestContext) async -> Response {
        guard let id = usrID(context) else { return forbidden(request) }
        var deleted = false
        return await change(request, context: context, action: "dm:DeleteUser", resource: { $0.resource("user", id.lowercasedString) },
                            then: { request, context, notice in
                                deleted ? await usersPage(request, context: context, notice: notice) : await userPage(request, context: context, notice: notice)
                            }) { principal, form, actor in
            try Self.usrConfirmed(form, selfLockout: id == principal.userID)
            try await usrGuardRoot(principal, id)
            try await deps.identity.deleteUser(tenantID: principal.tenantID, id: id, actor: actor)
            deleted = true
            return "usr_userDeleted"
        }
    }

    func createAccessKey(_ request: Request, context: HeraldRequestContext) async -> Response {
        guard let id = usrID(context) else { return forbidden(request) }
        var created: (id: String, secret: String)?
        return await change(request, context: context, action: "dm:CreateAccessKey", resource: { $0.resource("user", id.lowercasedString) },
                            then: { request, context, notice in await userPage(request, context: context, notice: notice, created: created) }) { principal, _, actor in
            try await usrGuardRoot(principal, id)
            let (key, secret) = try await deps.identity.createAccessKey(tenantID: principal.tenantID, userID: id, actor: actor)
            created = (key.accessKeyId, secret)
            return "usr_keyCreated"
        }
    }

    func deleteAccessKey(_ request: Request, context: HeraldRequestContext) async -> Response {
        guard let id = usrID(context), let key = context.parameters.get("key"), !key.isEmpty else { return forbidden(request) }
        return await change(request, context: context, action: "dm:DeleteAccessKey", resource: { $0.resource("user", id.lowercasedString) },
                            then: { request, context, notice in await userPage(request, context: context, notice: notice) }) { principal, form, actor in
            try Self.usrConfirmed(form, selfLockout: key == principal.accessKeyID)
            try await usrGuardRoot(principal, id)
            try await deps.identity.deleteAccessKey(tenantID: principal.tenantID, userID: id, keyID: key, actor: actor)
            return "usr_keyDeleted"
        }
    }

    func attachPolicy(_ request: Request, context: HeraldRequestContext) async -> Response {
        guard let id = usrID(context) else { return forbidden(request) }
        return await change(request, context: context, action: "dm:AttachPolicyToUser", resource: { $0.resource("user", id.lowercasedString) },
                            then: { request, context, notice in await userPage(request, context: context, notice: notice) }) { principal, form, actor in
            try await usrGuardRoot(principal, id)
            _ = try await deps.identity.attachPolicy(tenantID: principal.tenantID, userID: id, name: form["policy"] ?? "", actor: actor)
            return "usr_attachedNotice"
        }
    }

    func detachPolicy(_ request: Request, context: HeraldRequestContext) async -> Response {
        guard let id = usrID(context), let name = context.parameters.get("name"), !name.isEmpty else { return forbidden(request) }
        return await change(request, context: context, action: "dm:DetachPolicyFromUser", resource: { $0.resource("user", id.lowercasedString) },
                            then: { request, context, notice in await userPage(request, context: context, notice: notice) }) { principal, form, actor in
            try Self.usrConfirmed(form, selfLockout: id == principal.userID && !principal.isRoot)
            try await usrGuardRoot(principal, id)
            try await deps.identity.detachPolicy(tenantID: principal.tenantID, userID: id, name: name, actor: actor)
            return "usr_detached"
        }
    }

    // MARK: IP protection

    /// The tenant's sending IP allowlist (dm:GetIpProtection): whether it is enforced, its entries; add, remove and
    /// switch it where allowed (dm:UpdateIpProtection).
    func ipProtectionPage(_ request: Request, context: HeraldRequestContext, notice: String?) async -> Response {
        await show(request, action: "dm:GetIpProtection") { viewer in
            let setting = try await deps.identity.ipProtection(tenantID: viewer.principal.tenantID)
            let canUpdate = viewer.may("dm:UpdateIpProtection")
            return page(viewer, title: "ipProtection", "ip-page", [
                "enabled": setting.enabled, "stateClass": setting.enabled ? "active" : "frozen",
                "stateText": viewer[setting.enabled ? "ip_on" : "ip_off"], "switchTo": setting.enabled ? "off" : "on",
                "switchText": viewer[setting.enabled ? "ip_turnOff" : "ip_turnOn"],
                "entries": setting.allow.enumerated().map { index, entry in ["entry": entry, "index": index] },
                "updated": Self.usrTime(setting.updatedAt), "canUpdate": canUpdate, "emptyList": setting.allow.isEmpty, "clientIP": context.clientIP?.description ?? false,
            ], notice: notice)
        }
    }

    func changeIPAllowlist(_ request: Request, context: HeraldRequestContext, adding: Bool) async -> Response {
        await change(request, context: context, action: "dm:UpdateIpProtection", resource: { $0.tenantResource },
                     then: { request, context, notice in await ipProtectionPage(request, context: context, notice: notice) }) { principal, form, actor in
            let entry = (form["entry"] ?? "").trimmingCharacters(in: .whitespaces)
            // The one locked change of the allowlist's entries (Direct Mail's AddIpfilter and DeleteIpfilterByEdmId use it too).
            _ = try await deps.identity.changeIPAllowlist(tenantID: principal.tenantID, actor: actor) { (entries) throws(HeraldError) in
                if adding { return entries + [entry] }
                let canonical = IPNetwork(entry)?.description ?? entry
                guard entries.contains(canonical) else { throw HeraldError.notFound("allowlist entry") }
                return entries.filter { $0 != canonical }
            }
            return adding ? "ip_added" : "ip_removed"
        }
    }

    func switchIPProtection(_ request: Request, context: HeraldRequestContext) async -> Response {
        await change(request, context: context, action: "dm:UpdateIpProtection", resource: { $0.tenantResource },
                     then: { request, context, notice in await ipProtectionPage(request, context: context, notice: notice) }) { principal, form, actor in
            let enabled = form["enabled"] == "on"
            let current = try await deps.identity.ipProtection(tenantID: principal.tenantID)
            let allowlist = try IPAllowlist.parse(enabled: enabled, entries: current.allow)
            _ = try await deps.identity.setIPProtection(tenantID: principal.tenantID, allowlist: allowlist, actor: actor)
            return enabled ? "ip_switchedOn" : "ip_switchedOff"
        }
    }

    // MARK: Audit log

    /// The tenant's audit log (dm:ListAuditLog, the store of GET /v1/audit-log), newest first, 50 a page, filtered by
    /// action, user and time as the REST route is; a bad filter is shown with the API's message.
    func auditPage(_ request: Request, context: HeraldRequestContext) async -> Response {
        await show(request, action: "dm:ListAuditLog") { viewer in
            let parameters = request.uri.queryParameters
            func text(_ name: String) -> String { parameters.get(name).map { $0.trimmingCharacters(in: .whitespaces) } ?? "" }
            var query = AuditQuery()
            var problem: String?
            let action = text("action"), user = text("user"), from = text("from"), until = text("until"), before = text("before")
            if !action.isEmpty {
                if (1...128).contains(action.count) { query.action = action } else { problem = "action is invalid." }
            }
            if !user.isEmpty {
                if let id = UUID(uuidString: user) { query.userID = id } else { problem = "userId must be a UUID." }
            }
            for (name, value) in [("from", from), ("until", until)] where !value.isEmpty {
                guard let date = Self.usrDay(value) else { problem = "\(name) must be a date (YYYY-MM-DD)."; continue }
                if name == "from" { query.from = date } else { query.until = date.addingTimeInterval(86_400) }
            }
            if !before.isEmpty {
                if let cursor = Int64(before), cursor > 0 { query.before = cursor } else { problem = "cursor is invalid." }
            }
            let entries = problem == nil ? try await AuditLog.list(database: deps.database, tenantID: viewer.principal.tenantID, query: query) : []
            // The tenant's own prefix is the same on every line: the resource is shown without it (in full as its title).
            let prefix = viewer.principal.tenantResource.dropLast()
            let rows: [[String: Any]] = entries.map { entry in
                let actor = entry.actorType == "user" ? (entry.accessKeyId ?? entry.userId?.lowercasedString ?? "user") : entry.actorType
                var detail = (entry.detail ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.replacingOccurrences(of: ",", with: ", "))" }
                    .joined(separator: "; ")
                if detail.count > 160 { detail = String(detail.prefix(160)) + "…" }
                let shown = entry.resource.hasPrefix(prefix) ? String(entry.resource.dropFirst(prefix.count)) : entry.resource
                return ["id": entry.id, "time": Self.usrTime(entry.at), "actor": actor, "userId": entry.userId?.lowercasedString ?? false,
                        "ip": entry.sourceIp ?? false, "action": entry.action, "resource": entry.resource, "resourceShown": shown,
                        "result": entry.result, "resultClass": entry.result == "success" ? "check-ok" : "status-failed", "detail": detail]
            }
            var keep: [String] = []
            for (name, value) in [("action", action), ("user", user), ("from", from), ("until", until)] where !value.isEmpty {
                keep.append("\(name)=\(value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")")
            }
            let next = entries.count == query.limit ? "/console/audit?" + (keep + ["before=\(entries.last!.id)"]).joined(separator: "&") : nil
            return page(viewer, title: "auditLog", "audit-page", [
                "rows": rows, "action": action, "user": user, "from": from, "until": until, "next": next ?? false,
                "first": query.before != nil ? "/console/audit" + (keep.isEmpty ? "" : "?" + keep.joined(separator: "&")) : false,
            ], notice: problem)
        }
    }

    private static func usrDay(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd"
        return formatter.date(from: text)
    }
}

extension ConsolePages {
    static let userPages: [String: String] = [
        "usr-list": """
            <h1>{{t.users}}</h1>
            {{#notice}}<p class="notice" role="status" id="usr-notice">{{notice}}</p>{{/notice}}
            {{#canCreate}}
            <form method="post" action="/console/users" class="card" id="usr-add">
              <input type="hidden" name="csrf" value="{{csrf}}">
              <label for="usr-name">{{t.usr_newUser}}</label>
              <input id="usr-name" name="name" required maxlength="64" autocomplete="off" placeholder="deploy-bot">
              <p class="muted">{{t.usr_nameRule}}</p>
              <button type="submit" id="usr-add-submit">{{t.usr_create}}</button>
            </form>
            {{/canCreate}}
            <div class="card scroll">
            <table id="usr-table">
              <thead><tr><th scope="col">{{t.usr_name}}</th><th scope="col">{{t.status}}</th><th scope="col">{{t.usr_policies}}</th><th scope="col">{{t.usr_created}}</th></tr></thead>
              <tbody>
              {{#users}}<tr id="usr-row-{{id}}"><td><a href="/console/users/{{id}}" id="usr-open-{{id}}">{{name}}</a>{{#root}} <span class="muted">({{t.usr_root}})</span>{{/root}}{{#self}} <span class="muted">({{t.usr_you}})</span>{{/self}}</td>
                <td class="status-{{enabledClass}}">{{enabledText}}</td><td>{{policies}}</td><td>{{created}}</td></tr>{{/users}}
              </tbody>
            </table>
            <p class="pager">{{#first}}<a href="{{first}}">{{t.usr_firstPage}}</a>{{/first}}{{#next}}<a href="{{next}}" id="usr-next">{{t.usr_nextPage}}</a>{{/next}}</p>
            </div>
            {{#showPolicies}}
            <section class="card" id="policies" aria-labelledby="pol-title">
              <h2 id="pol-title">{{t.usr_policies}}</h2>
              <div class="scroll"><table id="pol-table">
                <thead><tr><th scope="col">{{t.usr_name}}</th><th scope="col">{{t.type}}</th><th scope="col">{{t.usr_description}}</th><th scope="col">{{t.usr_document}}</th><th scope="col">{{t.usr_actions}}</th></tr></thead>
                <tbody>
                {{#policies}}<tr id="pol-row-{{name}}"><td><code>{{name}}</code></td><td>{{type}}</td><td>{{description}}</td>
                  <td><details><summary>{{t.usr_show}}</summary><pre>{{document}}</pre></details></td>
                  <td>{{#canDelete}}<form method="post" action="/console/policies/{{name}}/delete"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="danger" id="pol-delete-{{name}}">{{t.usr_delete}}</button></form>{{/canDelete}}</td></tr>{{/policies}}
                </tbody>
              </table></div>
              {{#canCreatePolicy}}{{#draft}}
              <form method="post" action="/console/policies" id="pol-add">
                <h3>{{t.usr_newPolicy}}</h3>
                <input type="hidden" name="csrf" value="{{csrf}}">
                <label for="pol-name">{{t.usr_name}}</label>
                <input id="pol-name" name="name" required maxlength="128" value="{{name}}" placeholder="SendOnly">
                <label for="pol-description">{{t.usr_description}}</label>
                <input id="pol-description" name="description" maxlength="1024" value="{{description}}">
                <label for="pol-document">{{t.usr_documentJSON}}</label>
                <textarea id="pol-document" name="document" required spellcheck="false" placeholder='{"Statement":[{"Effect":"Allow","Action":["dm:SingleSendMail"],"Resource":"*"}]}'>{{document}}</textarea>
                <button type="submit" id="pol-add-submit">{{t.usr_createPolicy}}</button>
              </form>
              {{/draft}}{{/canCreatePolicy}}
            </section>
            {{/showPolicies}}
            """,
        "usr-detail": """
            <p><a href="/console/users">{{t.usr_back}}</a></p>
            {{#user}}
            <h1>{{name}}{{#root}} <span class="muted">({{t.usr_root}})</span>{{/root}}</h1>
            {{#notice}}<p class="notice" role="status" id="usr-notice">{{notice}}</p>{{/notice}}
            {{#newKey}}
            <section class="card" aria-labelledby="key-new-title">
              <h2 id="key-new-title">{{t.usr_newKeyTitle}}</h2>
              <dl class="facts">
                <div><dt>{{t.accessKeyId}}</dt><dd><code class="copy" id="key-new-id">{{keyId}}</code></dd></div>
                <div><dt>{{t.accessKeySecret}}</dt><dd><code class="copy value" id="key-new-secret">{{secret}}</code></dd></div>
              </dl>
              <p class="muted">{{t.usr_secretOnce}}</p>
            </section>
            {{/newKey}}
            <section class="card" aria-labelledby="usr-facts-title">
              <h2 id="usr-facts-title">{{t.usr_user}}</h2>
              <dl class="facts">
                <div><dt>{{t.status}}</dt><dd class="status-{{enabledClass}}" id="usr-state">{{enabledText}}</dd></div>
                <div><dt>{{t.usr_created}}</dt><dd>{{created}}</dd></div>
              </dl>
              {{#self}}<p class="muted">{{t.usr_thisIsYou}}</p>{{/self}}
              <div class="actions">
              {{#canUpdate}}<form method="post" action="/console/users/{{id}}/{{toggle}}">
                <input type="hidden" name="csrf" value="{{csrf}}">
                {{#lockout}}<label for="usr-toggle-confirm"><input type="checkbox" id="usr-toggle-confirm" name="confirm" value="yes" required> {{t.usr_confirmLockout}}</label>{{/lockout}}
                <button type="submit" class="secondary" id="usr-toggle">{{toggleText}}</button></form>{{/canUpdate}}
              {{#canDelete}}<form method="post" action="/console/users/{{id}}/delete">
                <input type="hidden" name="csrf" value="{{csrf}}">
                {{#self}}<label for="usr-delete-confirm"><input type="checkbox" id="usr-delete-confirm" name="confirm" value="yes" required> {{t.usr_confirmLockout}}</label>{{/self}}
                <button type="submit" class="danger" id="usr-delete">{{t.usr_deleteUser}}</button></form>{{/canDelete}}
              </div>
            </section>
            {{#rootOnly}}<section class="card"><p class="muted">{{t.usr_rootOnly}}</p></section>{{/rootOnly}}
            {{^rootOnly}}
            <section class="card" aria-labelledby="keys-title">
              <h2 id="keys-title">{{t.usr_keys}}</h2>
              {{#keys}}
              <div class="scroll"><table id="key-table">
                <thead><tr><th scope="col">{{t.accessKeyId}}</th><th scope="col">{{t.usr_created}}</th><th scope="col">{{t.usr_lastUsed}}</th><th scope="col">{{t.usr_actions}}</th></tr></thead>
                <tbody>
                {{#rows}}<tr id="key-row-{{keyId}}"><td><code>{{keyId}}</code>{{#current}} <span class="muted">({{t.usr_currentKey}})</span>{{/current}}</td><td>{{created}}</td><td>{{used}}</td>
                  <td>{{#canDelete}}<form method="post" action="/console/users/{{user.id}}/keys/{{keyId}}/delete">
                    <input type="hidden" name="csrf" value="{{csrf}}">
                    {{#current}}<label for="key-confirm-{{keyId}}"><input type="checkbox" id="key-confirm-{{keyId}}" name="confirm" value="yes" required> {{t.usr_confirmLockout}}</label>{{/current}}
                    <button type="submit" class="danger" id="key-delete-{{keyId}}">{{t.usr_delete}}</button></form>{{/canDelete}}</td></tr>{{/rows}}
                </tbody>
              </table></div>
              {{^rows}}<p class="muted">{{t.usr_noKeys}}</p>{{/rows}}
              {{/keys}}
              {{^keys}}<p class="muted">{{t.notAllowed}}</p>{{/keys}}
              {{#canCreateKey}}<form method="post" action="/console/users/{{id}}/keys" id="key-add"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" id="key-add-submit">{{t.usr_createKey}}</button></form>{{/canCreateKey}}
            </section>
            <section class="card" aria-labelledby="attached-title">
              <h2 id="attached-title">{{t.usr_attached}}</h2>
              {{#attached}}
              <div class="scroll"><table id="attached-table">
                <thead><tr><th scope="col">{{t.usr_name}}</th><th scope="col">{{t.type}}</th><th scope="col">{{t.usr_actions}}</th></tr></thead>
                <tbody>
                {{#rows}}<tr id="attached-row-{{slug}}"><td><code>{{name}}</code></td><td>{{type}}</td>
                  <td>{{#canDetach}}<form method="post" action="/console/users/{{user.id}}/policies/{{name}}/detach">
                    <input type="hidden" name="csrf" value="{{csrf}}">
                    {{#user.lockout}}<label for="detach-confirm-{{slug}}"><input type="checkbox" id="detach-confirm-{{slug}}" name="confirm" value="yes" required> {{t.usr_confirmLockout}}</label>{{/user.lockout}}
                    <button type="submit" class="danger" id="detach-{{slug}}">{{t.usr_detach}}</button></form>{{/canDetach}}</td></tr>{{/rows}}
                </tbody>
              </table></div>
              {{^rows}}<p class="muted">{{t.usr_noPolicies}}</p>{{/rows}}
              {{/attached}}
              {{^attached}}<p class="muted">{{t.notAllowed}}</p>{{/attached}}
              {{#canAttach}}
              <form method="post" action="/console/users/{{id}}/policies" id="attach-form">
                <input type="hidden" name="csrf" value="{{csrf}}">
                <label for="attach-policy">{{t.usr_attachPolicy}}</label>
                <select id="attach-policy" name="policy">{{#attachable}}<option value="{{name}}">{{name}}</option>{{/attachable}}</select>
                <button type="submit" id="attach-submit">{{t.usr_attach}}</button>
              </form>
              {{/canAttach}}
            </section>
            {{/rootOnly}}
            {{/user}}
            """,
        "ip-page": """
            <h1>{{t.ipProtection}}</h1>
            {{#notice}}<p class="notice" role="status" id="ip-notice">{{notice}}</p>{{/notice}}
            <section class="card" aria-labelledby="ip-state-title">
              <h2 id="ip-state-title">{{t.ip_allowlist}}</h2>
              <p>{{t.ip_explain}}</p>
              <dl class="facts">
                <div><dt>{{t.status}}</dt><dd class="status-{{stateClass}}" id="ip-state">{{stateText}}</dd></div>
                <div><dt>{{t.ip_updated}}</dt><dd>{{updated}}</dd></div>
                {{#clientIP}}<div><dt>{{t.ip_yourAddress}}</dt><dd><code>{{clientIP}}</code></dd></div>{{/clientIP}}
              </dl>
              {{#canUpdate}}<form method="post" action="/console/ip-protection/switch">
                <input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="enabled" value="{{switchTo}}">
                <button type="submit" class="secondary" id="ip-switch">{{switchText}}</button></form>{{/canUpdate}}
              {{#emptyList}}<p class="{{#enabled}}error{{/enabled}}{{^enabled}}muted{{/enabled}}" id="ip-empty-note">{{t.ip_emptyNote}}</p>{{/emptyList}}
            </section>
            <section class="card" aria-labelledby="ip-entries-title">
              <h2 id="ip-entries-title">{{t.ip_entries}}</h2>
              <div class="scroll"><table id="ip-table">
                <thead><tr><th scope="col">{{t.ip_entry}}</th><th scope="col">{{t.usr_actions}}</th></tr></thead>
                <tbody>
                {{#entries}}<tr id="ip-row-{{index}}"><td><code>{{entry}}</code></td>
                  <td>{{#canUpdate}}<form method="post" action="/console/ip-protection/remove"><input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="entry" value="{{entry}}"><button type="submit" class="danger" id="ip-remove-{{index}}">{{t.usr_delete}}</button></form>{{/canUpdate}}</td></tr>{{/entries}}
                </tbody>
              </table></div>
              {{^entries}}<p class="muted">{{t.ip_none}}</p>{{/entries}}
              {{#canUpdate}}<form method="post" action="/console/ip-protection/add" id="ip-add">
                <input type="hidden" name="csrf" value="{{csrf}}">
                <label for="ip-entry">{{t.ip_add}}</label>
                <input id="ip-entry" name="entry" required maxlength="64" placeholder="203.0.113.0/24">
                <button type="submit" id="ip-add-submit">{{t.add}}</button></form>{{/canUpdate}}
            </section>
            """,
        "audit-page": """
            <h1>{{t.auditLog}}</h1>
            {{#notice}}<p class="error" role="alert" id="audit-problem">{{notice}}</p>{{/notice}}
            <form method="get" action="/console/audit" class="card filters" id="audit-filter">
              <div><label for="audit-action">{{t.audit_action}}</label><input id="audit-action" name="action" maxlength="128" value="{{action}}" placeholder="dm:CreateUser"></div>
              <div><label for="audit-user">{{t.audit_user}}</label><input id="audit-user" name="user" maxlength="36" value="{{user}}"></div>
              <div><label for="audit-from">{{t.audit_from}}</label><input id="audit-from" name="from" type="date" value="{{from}}"></div>
              <div><label for="audit-until">{{t.audit_until}}</label><input id="audit-until" name="until" type="date" value="{{until}}"></div>
              <div><button type="submit" id="audit-submit">{{t.audit_filter}}</button></div>
            </form>
            <div class="card scroll">
            <table id="audit-table">
              <thead><tr><th scope="col">{{t.audit_time}}</th><th scope="col">{{t.audit_actor}}</th><th scope="col">{{t.audit_action}}</th><th scope="col">{{t.audit_resource}}</th><th scope="col">{{t.audit_result}}</th><th scope="col">{{t.audit_detail}}</th></tr></thead>
              <tbody>
              {{#rows}}<tr id="audit-{{id}}"><td>{{time}}</td><td>{{#userId}}<a href="/console/audit?user={{userId}}">{{actor}}</a>{{/userId}}{{^userId}}{{actor}}{{/userId}}{{#ip}}<br><span class="muted">{{ip}}</span>{{/ip}}</td>
                <td><a href="/console/audit?action={{action}}"><code>{{action}}</code></a></td><td><code class="value" title="{{resource}}">{{resourceShown}}</code></td>
                <td class="{{resultClass}}">{{result}}</td><td class="muted">{{detail}}</td></tr>{{/rows}}
              </tbody>
            </table>
            {{^rows}}<p class="muted">{{t.audit_none}}</p>{{/rows}}
            <p class="pager">{{#first}}<a href="{{first}}">{{t.wh_newest}}</a>{{/first}}{{#next}}<a href="{{next}}" id="audit-older">{{t.wh_older}}</a>{{/next}}</p>
            </div>
            """,
    ]

    static let userEnglish: [String: String] = [
        "usr_missing": "Not found", "usr_missingText": "There is no such user.", "usr_newUser": "New sub-user name",
        "usr_nameRule": "1 to 64 letters, digits and . _ @ -. A new user has no policies and no AccessKey.", "usr_create": "Create user",
        "usr_name": "Name", "usr_policies": "Policies", "usr_created": "Created", "usr_root": "root", "usr_you": "you",
        "usr_enabled": "Enabled", "usr_disabled": "Disabled", "usr_rootAll": "everything (root)", "usr_firstPage": "First page",
        "usr_nextPage": "Next page", "usr_description": "Description", "usr_document": "Document", "usr_actions": "Actions",
        "usr_show": "Show", "usr_delete": "Delete", "usr_newPolicy": "New custom policy", "usr_documentJSON": "Policy document (JSON)",
        "usr_createPolicy": "Create policy", "usr_system": "System", "usr_custom": "Custom",
        "usr_userCreated": "User created. Attach a policy and create an AccessKey for it.", "usr_policyCreated": "Policy created.",
        "usr_policyDeleted": "Policy deleted.", "usr_back": "All users", "usr_newKeyTitle": "The new AccessKey",
        "usr_secretOnce": "Copy the secret now: it is shown this once and cannot be read again.", "usr_user": "User",
        "usr_thisIsYou": "This is the user you are signed in as: disabling or deleting it, the key you signed in with or its policies locks you out, so those buttons ask you to confirm.", "usr_enable": "Enable", "usr_disable": "Disable",
        "usr_confirmLockout": "Yes, lock me out", "usr_deleteUser": "Delete user",
        "usr_rootOnly": "Only the root user can see and manage the root user's AccessKeys and policies.", "usr_keys": "AccessKeys",
        "usr_lastUsed": "Last used", "usr_currentKey": "signed in with this key", "usr_noKeys": "No AccessKeys.",
        "usr_createKey": "Create AccessKey", "usr_attached": "Attached policies", "usr_detach": "Detach",
        "usr_noPolicies": "No policies: this user may do nothing.", "usr_attachPolicy": "Attach a policy", "usr_attach": "Attach",
        "usr_enabledNotice": "Enabled.", "usr_disabledNotice": "Disabled: its AccessKeys stop working at once.", "usr_userDeleted": "User deleted.",
        "usr_keyCreated": "AccessKey created.", "usr_keyDeleted": "AccessKey deleted.",
        "usr_attachedNotice": "Attached.", "usr_detached": "Detached.",
        "ip_allowlist": "Sending IP allowlist",
        "ip_explain": "When it is on, sends (REST, SMTP and the compatibility endpoint) are accepted only from these addresses and networks.",
        "ip_on": "On: enforced", "ip_off": "Off: sends from any address", "ip_turnOn": "Turn on", "ip_turnOff": "Turn off",
        "ip_updated": "Last changed", "ip_yourAddress": "Your address", "ip_entries": "Allowed addresses and networks", "ip_entry": "Address or CIDR",
        "ip_none": "No entries.", "ip_emptyNote": "The list is empty: while IP protection is on, every send is refused.", "ip_add": "Add an address or CIDR", "ip_added": "Added.", "ip_removed": "Removed.",
        "ip_switchedOn": "IP protection is on.", "ip_switchedOff": "IP protection is off.",
        "audit_action": "Action", "audit_user": "User id", "audit_from": "From", "audit_until": "Until", "audit_filter": "Filter",
        "audit_time": "Time", "audit_actor": "Actor", "audit_resource": "Resource", "audit_result": "Outcome", "audit_detail": "Detail",
        "audit_none": "No entries.",
    ]

    static let userChinese: [String: String] = [
        "usr_missing": "未找到", "usr_missingText": "没有这个用户。", "usr_newUser": "新子用户名称",
        "usr_nameRule": "1 到 64 个字母、数字或 . _ @ -。新用户没有权限策略，也没有 AccessKey。", "usr_create": "创建用户",
        "usr_name": "名称", "usr_policies": "权限策略", "usr_created": "创建时间", "usr_root": "主账号", "usr_you": "您",
        "usr_enabled": "已启用", "usr_disabled": "已停用", "usr_rootAll": "全部权限（主账号）", "usr_firstPage": "第一页",
        "usr_nextPage": "下一页", "usr_description": "描述", "usr_document": "策略内容", "usr_actions": "操作",
        "usr_show": "查看", "usr_delete": "删除", "usr_newPolicy": "新建自定义策略", "usr_documentJSON": "策略文档（JSON）",
        "usr_createPolicy": "创建策略", "usr_system": "系统", "usr_custom": "自定义",
        "usr_userCreated": "用户已创建。请为其添加权限策略并创建 AccessKey。", "usr_policyCreated": "策略已创建。",
        "usr_policyDeleted": "策略已删除。", "usr_back": "全部用户", "usr_newKeyTitle": "新的 AccessKey",
        "usr_secretOnce": "请立即复制 Secret：它只显示这一次，之后无法再读取。", "usr_user": "用户",
        "usr_thisIsYou": "这是您当前登录的用户：停用或删除它、删除当前登录所用的 AccessKey 或移除它的权限策略都会让您失去访问，因此这些按钮需要您确认。", "usr_enable": "启用", "usr_disable": "停用",
        "usr_confirmLockout": "确认，我会因此失去访问", "usr_deleteUser": "删除用户",
        "usr_rootOnly": "只有主账号可以查看和管理主账号的 AccessKey 与权限策略。", "usr_keys": "AccessKey",
        "usr_lastUsed": "最近使用", "usr_currentKey": "当前登录所用", "usr_noKeys": "没有 AccessKey。",
        "usr_createKey": "创建 AccessKey", "usr_attached": "已添加的权限策略", "usr_detach": "移除",
        "usr_noPolicies": "没有权限策略：该用户不能执行任何操作。", "usr_attachPolicy": "添加权限策略", "usr_attach": "添加",
        "usr_enabledNotice": "已启用。", "usr_disabledNotice": "已停用：其 AccessKey 立即失效。", "usr_userDeleted": "用户已删除。",
        "usr_keyCreated": "AccessKey 已创建。", "usr_keyDeleted": "AccessKey 已删除。",
        "usr_attachedNotice": "已添加。", "usr_detached": "已移除。",
        "ip_allowlist": "发信 IP 白名单",
        "ip_explain": "开启后，只接受来自这些地址和网段的发信请求（REST、SMTP 与兼容接口）。",
        "ip_on": "已开启：强制校验", "ip_off": "已关闭：任何地址均可发信", "ip_turnOn": "开启", "ip_turnOff": "关闭",
        "ip_updated": "最近修改", "ip_yourAddress": "您的地址", "ip_entries": "允许的地址与网段", "ip_entry": "地址或 CIDR",
        "ip_none": "没有条目。", "ip_emptyNote": "列表为空：IP 防护开启时，所有发信都会被拒绝。", "ip_add": "添加地址或 CIDR", "ip_added": "已添加。", "ip_removed": "已删除。",
        "ip_switchedOn": "IP 防护已开启。", "ip_switchedOff": "IP 防护已关闭。",
        "audit_action": "操作", "audit_user": "用户 ID", "audit_from": "开始日期", "audit_until": "结束日期", "audit_filter": "筛选",
        "audit_time": "时间", "audit_actor": "操作者", "audit_resource": "资源", "audit_result": "结果", "audit_detail": "详情",
        "audit_none": "没有记录。",
    ]
}
