import Foundation
import HTTPTypes
import HeraldAPI
import HeraldAppTestSupport
import HeraldCore
import HeraldStore
import HeraldTestSupport
import Testing

/// The operator's console (issue #19) at /console/admin: sign-in with the operator token into a cookie of its own,
/// CSRF on every form, tenants (search, freeze, unfreeze, grade, limits: the /admin/v1 stores, audited as the
/// operator), the template review queue with the sensitive words highlighted, processes and queue depth.
@Suite struct ConsoleOperatorTests {
    static let form = "application/x-www-form-urlencoded"

    /// Signs in as the operator; the operator session's cookie value.
    static func signIn(_ app: TestApp) async throws -> String {
        let page = try await app.request(.get, "/console/admin/sign-in", contentType: nil)
        let csrf = try #require(ConsoleTests.setCookie(page, "herald_console_admin_csrf"))
        let reply = try await app.request(.post, "/console/admin/sign-in", raw: "csrf=\(csrf)&token=\(TestApp.adminToken)", contentType: form,
                                          headers: [.cookie: "herald_console_admin_csrf=\(csrf)"])
        #expect(reply.status == 303 && reply.headers[.location] == "/console/admin/tenants", "\(reply.status) \(reply.body)")
        return try #require(ConsoleTests.setCookie(reply, "herald_console_admin"))
    }

    @Test func signInNeedsTheOperatorTokenAndEveryFormItsCSRFToken() async throws {
        try await TestApp.run { app in
            let tenant = try await app.createTenant("Acme")
            #expect(try await app.request(.get, "/console/admin", contentType: nil).headers[.location] == "/console/admin/sign-in")
            #expect(try await app.request(.get, "/console/admin/tenants", contentType: nil).status == 303)
            let page = try await app.request(.get, "/console/admin/sign-in", contentType: nil)
            let csrf = try #require(ConsoleTests.setCookie(page, "herald_console_admin_csrf"))
            #expect(page.status == 200 && page.body.contains("<label for=\"adm-token\">") && page.body.contains("name=\"csrf\" value=\"\(csrf)\""))
            #expect(page.headers[values: .setCookie].allSatisfy { $0.contains("Path=/console/admin") && $0.contains("HttpOnly") && $0.contains("SameSite=Lax") })
            // A cross-site post (no cookie) is refused; a wrong token is a 401 page without a session.
            #expect(try await app.request(.post, "/console/admin/sign-in", raw: "csrf=\(csrf)&token=\(TestApp.adminToken)", contentType: Self.form).status == 403)
            let wrong = try await app.request(.post, "/console/admin/sign-in", raw: "csrf=\(csrf)&token=guess", contentType: Self.form,
                                              headers: [.cookie: "herald_console_admin_csrf=\(csrf)"])
            #expect(wrong.status == 401 && wrong.body.contains("The operator token is wrong.") && ConsoleTests.setCookie(wrong, "herald_console_admin") == nil)
            // A tenant's console session is not an operator's.
            let tenantSession = try await ConsoleTests.signIn(app, keyID: tenant.keyID, secret: tenant.secret)
            #expect(try await app.request(.get, "/console/admin/tenants", contentType: nil,
                                          headers: [.cookie: "herald_console_admin=\(tenantSession)"]).status == 303)

            let session = try await Self.signIn(app)
            let cookie: HTTPFields = [.cookie: "herald_console_admin=\(session)"]
            let tenants = try await app.request(.get, "/console/admin/tenants", contentType: nil, headers: cookie)
            #expect(tenants.status == 200 && tenants.body.contains("id=\"adm-tenant-\(tenant.tenant)\"") && tenants.body.contains("id=\"adm-menu\"")
                    && ConsoleTests.setCookie(tenants, "herald_console_admin") != nil, "\(tenants.body)")
            // The operator's cookie does not sign in to the tenant pages.
            #expect(try await app.request(.get, "/console", contentType: nil, headers: [.cookie: "herald_console=\(session)"]).status == 303)
            // Posts without the session's token are refused and change nothing.
            #expect(try await app.request(.post, "/console/admin/tenants/\(tenant.tenant)/freeze", raw: "reason=x", contentType: Self.form,
                                          headers: cookie).status == 403)
            #expect(try await app.request(.post, "/console/admin/tenants/\(tenant.tenant)/freeze", raw: "csrf=forged", contentType: Self.form,
                                          headers: cookie).status == 403)
            #expect(try await app.admin(.get, "/admin/v1/tenants/\(tenant.tenant)")["status"] == "active")
            // Idle for 31 minutes: signed out.
            app.clock.advance(31 * 60)
            #expect(try await app.request(.get, "/console/admin/tenants", contentType: nil, headers: cookie).status == 303)
            // Sign-out needs the token and clears the cookie.
            let fresh = try await Self.signIn(app)
            let freshCookie: HTTPFields = [.cookie: "herald_console_admin=\(fresh)"]
            let token = try ConsoleTests.csrf(try await app.request(.get, "/console/admin/tenants", contentType: nil, headers: freshCookie))
            #expect(try await app.request(.post, "/console/admin/sign-out", raw: "csrf=forged", contentType: Self.form, headers: freshCookie).status == 403)
            let out = try await app.request(.post, "/console/admin/sign-out", raw: "csrf=\(token)", contentType: Self.form, headers: freshCookie)
            #expect(out.status == 303 && ConsoleTests.setCookie(out, "herald_console_admin") == "")
        }
    }

    @Test func tenantsAreFoundFrozenUnfrozenGradedAndLimited() async throws {
        try await TestApp.run { app in
            let acme = try await app.createTenant("Acme Mail")
            let other = try await app.createTenant("Globex")
            let session = try await Self.signIn(app)
            let cookie: HTTPFields = [.cookie: "herald_console_admin=\(session)"]
            let found = try await app.request(.get, "/console/admin/tenants?q=acme", contentType: nil, headers: cookie)
            #expect(found.status == 200 && found.body.contains("Acme Mail") && !found.body.contains("Globex") && found.body.contains("0 / 2000"),
                    "\(found.body)")
            let byID = try await app.request(.get, "/console/admin/tenants?q=\(other.tenant)", contentType: nil, headers: cookie)
            #expect(byID.body.contains("Globex") && !byID.body.contains("Acme Mail"))
            #expect(try await app.request(.get, "/console/admin/tenants?q=%25", contentType: nil, headers: cookie).body.contains("No tenants found."))
            #expect(try await app.request(.get, "/console/admin/tenants/\(UUID())", contentType: nil, headers: cookie).status == 404)
            #expect(try await app.request(.get, "/console/admin/tenants/nope", contentType: nil, headers: cookie).status == 404)

            let page = try await app.request(.get, "/console/admin/tenants/\(acme.tenant)", contentType: nil, headers: cookie)
            #expect(page.status == 200 && page.body.contains("id=\"adm-freeze\"") && !page.body.contains("id=\"adm-unfreeze\"")
                    && page.body.contains("id=\"adm-limit-templates\" name=\"limit_templates\"") && page.body.contains("<dd>0 / 2000</dd>"),
                    "\(page.body)")
            let csrf = try ConsoleTests.csrf(page)
            let path = "/console/admin/tenants/\(acme.tenant)"
            let frozen = try await app.request(.post, path + "/freeze", raw: "csrf=\(csrf)&reason=abuse+report", contentType: Self.form, headers: cookie)
            #expect(frozen.status == 200 && frozen.body.contains("Frozen.") && frozen.body.contains("data-status=\"frozen\"")
                    && frozen.body.contains("id=\"adm-unfreeze\""), "\(frozen.body)")
            #expect(try await app.admin(.get, "/admin/v1/tenants/\(acme.tenant)")["status"] == "frozen")
            let frozenList = try await app.admin(.get, "/admin/v1/tenants?status=frozen")
            #expect((frozenList.json["items"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == [acme.tenant])
            let unfrozen = try await app.request(.post, path + "/unfreeze", raw: "csrf=\(csrf)", contentType: Self.form, headers: cookie)
            #expect(unfrozen.body.contains("Unfrozen.") && unfrozen.body.contains("data-status=\"active\""), "\(unfrozen.body)")
            #expect(try await app.admin(.get, "/admin/v1/tenants/\(acme.tenant)")["status"] == "active")

            // Grade (once a day, as the API says), ceiling, limits.
            let graded = try await app.request(.post, path + "/grade", raw: "csrf=\(csrf)&grade=5&reason=trusted", contentType: Self.form, headers: cookie)
            #expect(graded.body.contains("Grade set.") && graded.body.contains("id=\"adm-tenant-grade\">5<"), "\(graded.body)")
            #expect(try await app.admin(.get, "/admin/v1/tenants/\(acme.tenant)").json["grade"] as? Int == 5)
            let again = try await app.request(.post, path + "/grade", raw: "csrf=\(csrf)&grade=6", contentType: Self.form, headers: cookie)
            #expect(again.status == 200 && again.body.contains("role=\"alert\"") && again.body.contains("once a day"), "\(again.body)")
            let ceiling = try await app.request(.post, path + "/ceiling", raw: "csrf=\(csrf)&ceiling=12", contentType: Self.form, headers: cookie)
            #expect(ceiling.body.contains("Ceiling set.") && ceiling.body.contains("id=\"adm-tenant-ceiling\">12<"), "\(ceiling.body)")
            let quotas = "100,200,300,400,500,600,700,800,900,1000,1100,1200,1300,1400,1500,1600"
            let limited = try await app.request(.post, path + "/limits", raw: "csrf=\(csrf)&limit_templates=3&limit_users=&dailyQuotas=\(quotas)",
                                                contentType: Self.form, headers: cookie)
            #expect(limited.body.contains("Limits saved.") && limited.body.contains("name=\"limit_templates\" inputmode=\"numeric\" value=\"3\""),
                    "\(limited.body)")
            let limits = try await app.admin(.get, "/admin/v1/tenants/\(acme.tenant)/limits")
            #expect((limits.json["overrides"] as? [String: Int]) == ["templates": 3] && (limits.json["limits"] as? [String: Any])?["dailyQuotas"] as? [Int]
                    == quotas.split(separator: ",").map { Int($0)! }, "\(limits.body)")
            let badLimits = try await app.request(.post, path + "/limits", raw: "csrf=\(csrf)&limit_templates=lots", contentType: Self.form, headers: cookie)
            #expect(badLimits.status == 200 && badLimits.body.contains("templates must be a whole number."), "\(badLimits.body)")
            #expect((try await app.admin(.get, "/admin/v1/tenants/\(acme.tenant)/limits").json["overrides"] as? [String: Int]) == ["templates": 3],
                    "nothing written")
            // Audited in the tenant's log as the operator's.
            let token = try await app.token(acme.keyID, acme.secret)
            let audit = try await app.request(.get, "/v1/audit-log", token: token)
            #expect(audit.body.contains("admin:SetTenantGrade") && audit.body.contains("admin:SetTenantLimits") && audit.body.contains("\"operator\""),
                    "\(audit.body.prefix(800))")
            // Ban is final: the status buttons go.
            let banned = try await app.request(.post, path + "/ban", raw: "csrf=\(csrf)&reason=spam", contentType: Self.form, headers: cookie)
            #expect(banned.body.contains("Banned.") && !banned.body.contains("id=\"adm-ban\"") && !banned.body.contains("id=\"adm-freeze\""))
            #expect(try await app.admin(.get, "/admin/v1/tenants/\(acme.tenant)")["status"] == "banned")
        }
    }

    @Test func templatesAreReviewedWithSensitiveWordsHighlighted() async throws {
        try await TestApp.run { app in
            let tenant = try await app.createTenant("Acme Review")
            let token = try await app.token(tenant.keyID, tenant.secret)
            var ids: [String] = []
            for (name, text) in [("welcome", "Welcome aboard, ${name}."), ("promo", "Win the JackPot <b>today</b>, ${name}!")] {
                let created = try await app.request(.post, "/v1/templates", token: token, json: ["name": name, "type": "trigger", "subject": "Hi ${name}",
                                                                                               "text": text])
                let id = try #require(created["id"])
                #expect(try await app.request(.post, "/v1/templates/\(id)/submit", token: token)["status"] == "pending")
                ids.append(id)
            }
            // The word is added after submission: the queue shows it found.
            #expect(try await app.admin(.put, "/admin/v1/content-rules", json: ["sensitiveWords": ["casino", "jackpot"]]).status == 200)
            let session = try await Self.signIn(app)
            let cookie: HTTPFields = [.cookie: "herald_console_admin=\(session)"]
            let queue = try await app.request(.get, "/console/admin/review", contentType: nil, headers: cookie)
            #expect(queue.status == 200 && queue.body.contains("id=\"adm-review-\(ids[0])\"") && queue.body.contains("id=\"adm-review-\(ids[1])\""),
                    "\(queue.body)")
            #expect(queue.body.contains("Win the <mark>JackPot</mark> &lt;b&gt;today&lt;/b&gt;, ${name}!") && queue.body.contains("<mark>jackpot</mark>")
                    && !queue.body.contains("<b>today") && queue.body.contains("id=\"adm-review-tenant-\(ids[0])\">Acme Review</a>"), "\(queue.body)")
            let csrf = try ConsoleTests.csrf(queue)
            // Reject needs a reason; then approve one and reject the other.
            let noReason = try await app.request(.post, "/console/admin/review/\(ids[1])/reject", raw: "csrf=\(csrf)&reason=", contentType: Self.form,
                                                 headers: cookie)
            #expect(noReason.status == 200 && noReason.body.contains("Give the reason for rejecting"), "\(noReason.body)")
            #expect(try await app.request(.post, "/console/admin/review/\(ids[0])/approve", raw: "reason=", contentType: Self.form,
                                          headers: cookie).status == 403, "no CSRF token")
            let approved = try await app.request(.post, "/console/admin/review/\(ids[0])/approve", raw: "csrf=\(csrf)", contentType: Self.form,
                                                 headers: cookie)
            #expect(approved.status == 200 && approved.body.contains("Approved: welcome") && !approved.body.contains("id=\"adm-review-\(ids[0])\""),
                    "\(approved.body)")
            let rejected = try await app.request(.post, "/console/admin/review/\(ids[1])/reject", raw: "csrf=\(csrf)&reason=Gambling+promotion",
                                                 contentType: Self.form, headers: cookie)
            #expect(rejected.status == 200 && rejected.body.contains("Rejected: promo") && rejected.body.contains("No templates are waiting for review."),
                    "\(rejected.body)")
            #expect(try await app.request(.get, "/v1/templates/\(ids[0])", token: token)["status"] == "approved")
            // The tenant's template page shows the reason.
            let tenantSession = try await ConsoleTests.signIn(app, keyID: tenant.keyID, secret: tenant.secret)
            let page = try await app.request(.get, "/console/templates/\(ids[1])", contentType: nil, headers: [.cookie: "herald_console=\(tenantSession)"])
            #expect(page.body.contains("data-status=\"rejected\"") && page.body.contains("<li>Gambling promotion</li>"), "\(page.body)")
            let audit = try await app.request(.get, "/v1/audit-log", token: token)
            #expect(audit.body.contains("admin:ApproveTemplate") && audit.body.contains("admin:RejectTemplate"))
            // Chinese.
            let chinese = try await app.request(.get, "/console/admin/review", contentType: nil, headers: [.cookie: "herald_console_admin=\(session)", .acceptLanguage: "zh-CN"])
            #expect(chinese.body.contains("没有等待审核的模板。"))
        }
    }

    /// The operator's sign-in is rate-limited by client address, as the tenant sign-in.
    @Test func signInIsRateLimited() async throws {
        try await TestApp.run(authRate: 2) { app in
            let page = try await app.request(.get, "/console/admin/sign-in", contentType: nil)
            let csrf = try #require(ConsoleTests.setCookie(page, "herald_console_admin_csrf"))
            var statuses: [Int] = []
            for _ in 0..<12 {
                let reply = try await app.request(.post, "/console/admin/sign-in", raw: "csrf=\(csrf)&token=guess", contentType: Self.form,
                                                  headers: [.cookie: "herald_console_admin_csrf=\(csrf)"])
                statuses.append(reply.status)
                if reply.status == 429 { #expect(reply.body.contains("Too many attempts")) }
            }
            #expect(statuses.first == 401 && statuses.last == 429, "\(statuses)")
            let right = try await app.request(.post, "/console/admin/sign-in", raw: "csrf=\(csrf)&token=\(TestApp.adminToken)", contentType: Self.form,
                                              headers: [.cookie: "herald_console_admin_csrf=\(csrf)"])
            #expect(right.status == 429 && ConsoleTests.setCookie(right, "herald_console_admin") == nil, "even the right token waits")
        }
    }

    @Test func processesAndQueueDepth() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await TestApp.run(dnsPort: dns.port) { app in
                let process = ProcessRecord(id: UUID(), roles: ["api", "delivery"], host: "console-test-host", pid: 4242, httpPort: 8080)
                try await ProcessStore(database: app.dependencies.database).heartbeat(process)
                let session = try await Self.signIn(app)
                let cookie: HTTPFields = [.cookie: "herald_console_admin=\(session)"]
                let page = try await app.request(.get, "/console/admin/processes", contentType: nil, headers: cookie)
                #expect(page.status == 200 && page.body.contains("id=\"adm-queue-queued\">0<") && page.body.contains("id=\"adm-queue-webhooks\">0")
                        && page.body.contains("id=\"adm-process-\(process.id.uuidString.lowercased())\"><td>api, delivery</td><td>console-test-host</td><td>4242</td><td>8080</td>")
                        && page.body.contains("status-active"), "\(page.body)")
                // Two messages accepted (no delivery worker here): queued and due; the tenant's use shows in the list.
                let (tenant, token, _, _) = try await app.sendingTenant(dns)
                for index in 0..<2 {
                    #expect(try await app.request(.post, "/v1/mail/single", token: token, json: TestApp.mail(to: ["r\(index)@example.org"])).status == 200)
                }
                let queued = try await app.request(.get, "/console/admin/processes", contentType: nil, headers: cookie)
                #expect(queued.body.contains("id=\"adm-queue-queued\">2<") && queued.body.contains("id=\"adm-queue-due\">2<"), "\(queued.body)")
                let list = try await app.request(.get, "/console/admin/tenants", contentType: nil, headers: cookie)
                #expect(list.body.contains("2 / 2000"), "\(list.body)")
                // Frozen from the console, its mail is paused.
                let csrf = try ConsoleTests.csrf(list)
                #expect(try await app.request(.post, "/console/admin/tenants/\(tenant)/freeze", raw: "csrf=\(csrf)", contentType: Self.form,
                                              headers: cookie).body.contains("Frozen."))
                let paused = try await app.request(.get, "/console/admin/processes", contentType: nil, headers: cookie)
                #expect(paused.body.contains("id=\"adm-queue-queued\">0<") && paused.body.contains("id=\"adm-queue-paused\">2<"), "\(paused.body)")
            }
        }
    }
}
