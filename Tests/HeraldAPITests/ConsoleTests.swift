import Foundation
import HTTPTypes
import HeraldAPI
import HeraldAppTestSupport
import HeraldCore
import HeraldDNS
import HeraldTestSupport
import Testing

/// The console's first part (issue #19): sign-in with an AccessKey, the session cookie, CSRF, the overview, sign-out.
@Suite struct ConsoleTests {
    /// The value of the cookie `name` that a reply sets (nil when it sets none).
    static func setCookie(_ reply: Reply, _ name: String) -> String? {
        reply.headers[values: .setCookie].first { $0.hasPrefix(name + "=") }.map { String($0.dropFirst(name.count + 1).prefix { $0 != ";" }) }
    }

    static func signIn(_ app: TestApp, keyID: String, secret: String) async throws -> String {
        let page = try await app.request(.get, "/console/sign-in", contentType: nil)
        let csrf = try #require(setCookie(page, "herald_console_csrf"))
        let reply = try await app.request(.post, "/console/sign-in", raw: "csrf=\(csrf)&accessKeyId=\(keyID)&accessKeySecret=\(secret)",
                                          contentType: "application/x-www-form-urlencoded", headers: [.cookie: "herald_console_csrf=\(csrf)"])
        #expect(reply.status == 303 && reply.headers[.location] == "/console", "\(reply.status) \(reply.body)")
        return try #require(setCookie(reply, "herald_console"))
    }

    @Test func signInOverviewAndSignOut() async throws {
        try await TestApp.run { app in
            let root = try await app.createTenant("Console")
            // Not signed in: to the sign-in page, which sets the double-submit cookie its form carries.
            let anonymous = try await app.request(.get, "/console", contentType: nil)
            #expect(anonymous.status == 303 && anonymous.headers[.location] == "/console/sign-in")
            let page = try await app.request(.get, "/console/sign-in", contentType: nil)
            let csrf = try #require(Self.setCookie(page, "herald_console_csrf"))
            #expect(page.status == 200 && page.body.contains("name=\"csrf\" value=\"\(csrf)\"") && page.body.contains("<label for=\"accessKeyId\">"))
            #expect(page.headers[.contentSecurityPolicy]?.contains("default-src 'none'") == true)
            #expect(page.headers[values: .setCookie].allSatisfy { $0.contains("HttpOnly") && $0.contains("SameSite=Lax") && $0.contains("Path=/console") })
            // A cross-site post (no cookie, or another token) is refused; a wrong secret is a plain 401 page.
            let form = "application/x-www-form-urlencoded"
            #expect(try await app.request(.post, "/console/sign-in", raw: "csrf=\(csrf)&accessKeyId=\(root.keyID)&accessKeySecret=\(root.secret)",
                                          contentType: form).status == 403)
            let wrong = try await app.request(.post, "/console/sign-in", raw: "csrf=\(csrf)&accessKeyId=\(root.keyID)&accessKeySecret=nope",
                                              contentType: form, headers: [.cookie: "herald_console_csrf=\(csrf)"])
            #expect(wrong.status == 401 && wrong.body.contains("role=\"alert\"") && Self.setCookie(wrong, "herald_console") == nil)

            let session = try await Self.signIn(app, keyID: root.keyID, secret: root.secret)
            let overview = try await app.request(.get, "/console", contentType: nil, headers: [.cookie: "herald_console=\(session)"])
            #expect(overview.status == 200, "\(overview.body)")
            #expect(overview.body.contains("<meter id=\"daily\" min=\"0\" max=\"2000\"") && overview.body.contains("<svg class=\"chart\""),
                    "\(overview.body)")
            #expect(overview.headers[.cacheControl] == "no-store" && Self.setCookie(overview, "herald_console") != nil, "the idle clock starts again")
            let chinese = try await app.request(.get, "/console", contentType: nil,
                                                headers: [.cookie: "herald_console=\(session)", .acceptLanguage: "zh-CN,zh;q=0.9,en;q=0.5"])
            #expect(chinese.body.contains("<html lang=\"zh\"") && chinese.body.contains("信用等级"), "\(chinese.body.prefix(400))")

            // The language links remember the choice and go back to the page they were on (a page drawn after a post
            // goes back to its section's page, which can be fetched).
            let id = UUID().uuidString.lowercased()
            for (from, back) in [("/console/templates/\(id)", "/console/templates/\(id)"), ("/console/domains/\(id)/verify", "/console/domains"),
                                 ("/console/suppressions/remove", "/console/suppressions"), ("/console/admin/review/\(id)/approve", "/console/admin/review"),
                                 ("/elsewhere", "/console"), ("/console/language", "/console")] {
                let chosen = try await app.request(.get, "/console/language?lang=zh", contentType: nil, headers: [.referer: "https://herald.test" + from])
                #expect(chosen.status == 303 && chosen.headers[.location] == back, "\(from): \(chosen.headers[.location] ?? "")")
                #expect(Self.setCookie(chosen, "herald_console_lang") == "zh")
            }
            let remembered = try await app.request(.get, "/console", contentType: nil, headers: [.cookie: "herald_console=\(session); herald_console_lang=zh"])
            #expect(remembered.body.contains("<html lang=\"zh\""))

            // A tampered cookie, or one idle past 30 minutes, signs out.
            let tampered = String(session.dropLast()) + (session.hasSuffix("A") ? "B" : "A")
            #expect(try await app.request(.get, "/console", contentType: nil, headers: [.cookie: "herald_console=\(tampered)"]).status == 303)
            app.clock.advance(31 * 60)
            #expect(try await app.request(.get, "/console", contentType: nil, headers: [.cookie: "herald_console=\(session)"]).status == 303)

            // Sign-out needs the session's CSRF token.
            let fresh = try await Self.signIn(app, keyID: root.keyID, secret: root.secret)
            let signedIn = try await app.request(.get, "/console", contentType: nil, headers: [.cookie: "herald_console=\(fresh)"])
            let token = try #require(signedIn.body.range(of: "name=\"csrf\" value=\"").map { signedIn.body[$0.upperBound...].prefix { $0 != "\"" } })
            #expect(try await app.request(.post, "/console/sign-out", raw: "csrf=forged", contentType: form,
                                          headers: [.cookie: "herald_console=\(fresh)"]).status == 403)
            let out = try await app.request(.post, "/console/sign-out", raw: "csrf=\(token)", contentType: form, headers: [.cookie: "herald_console=\(fresh)"])
            #expect(out.status == 303 && Self.setCookie(out, "herald_console") == "", "\(out.status)")
        }
    }

    /// A sub-user whose policies allow nothing sees no figures; a deleted AccessKey is signed out at once.
    @Test func policiesApplyPageByPage() async throws {
        try await TestApp.run { app in
            let root = try await app.createTenant("Console")
            let token = try await app.token(root.keyID, root.secret)
            let user = try #require(try await app.request(.post, "/v1/users", token: token, json: ["name": "nobody"])["id"])
            let key = try await app.request(.post, "/v1/users/\(user)/access-keys", token: token)
            let (keyID, secret) = (try #require(key["accessKeyId"]), try #require(key["accessKeySecret"]))
            let session = try await Self.signIn(app, keyID: keyID, secret: secret)
            let overview = try await app.request(.get, "/console", contentType: nil, headers: [.cookie: "herald_console=\(session)"])
            #expect(overview.status == 200 && !overview.body.contains("<meter") && !overview.body.contains("<svg")
                    && overview.body.contains("Your policies do not allow this."), "\(overview.body)")
            #expect(try await app.request(.delete, "/v1/users/\(user)/access-keys/\(keyID)", token: token).status == 204)
            #expect(try await app.request(.get, "/console", contentType: nil, headers: [.cookie: "herald_console=\(session)"]).status == 303)
        }
    }

    /// The console's pages count against the tenant's request rate (3 a second, a burst of 6) like the REST API's: past it, a 429
    /// page with Retry-After, and the REST API is limited too (one budget for every path).
    @Test func pagesShareTheTenantRequestRate() async throws {
        try await TestApp.run(tenantRate: 3) { app in
            let root = try await app.createTenant("Console")
            let session = try await Self.signIn(app, keyID: root.keyID, secret: root.secret)
            let cookie: HTTPFields = [.cookie: "herald_console=\(session)"]
            var statuses: [Int] = []
            for _ in 0..<8 { statuses.append(try await app.request(.get, "/console/domains", contentType: nil, headers: cookie).status) }
            #expect(statuses.prefix(3).allSatisfy { $0 == 200 } && statuses.last == 429, "\(statuses)")
            let limited = try await app.request(.get, "/console", contentType: nil, headers: cookie)
            #expect(limited.status == 429 && limited.headers[.retryAfter] != nil && limited.body.contains("Too many attempts"))
            let token = try await app.token(root.keyID, root.secret)
            #expect(try await app.request(.get, "/v1/domains", token: token).status == 429, "the same budget as the API's")
        }
    }

    /// The csrf token a signed-in page carries.
    static func csrf(_ page: Reply) throws -> String {
        String(try #require(page.body.range(of: "name=\"csrf\" value=\"").map { page.body[$0.upperBound...].prefix { $0 != "\"" } }))
    }

    /// Domains in the console: add one, see its records with their checks, verify it against the test DNS server; a
    /// ReadOnly sub-user sees no buttons and a forged post gets 403 (audited); a post without the token is refused.
    @Test func domainsAreAddedAndVerifiedAsPoliciesAllow() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await TestApp.run(dnsPort: dns.port) { app in
                let root = try await app.createTenant("Console")
                let token = try await app.token(root.keyID, root.secret)
                let session = try await Self.signIn(app, keyID: root.keyID, secret: root.secret)
                let cookie: HTTPFields = [.cookie: "herald_console=\(session)"]
                let form = "application/x-www-form-urlencoded"
                let empty = try await app.request(.get, "/console/domains", contentType: nil, headers: cookie)
                #expect(empty.status == 200 && empty.body.contains("No domains yet.") && empty.body.contains("action=\"/console/domains\""))
                let csrf = try Self.csrf(empty)
                #expect(try await app.request(.post, "/console/domains", raw: "name=evil.example", contentType: form, headers: cookie).status == 403,
                        "no CSRF token")
                let added = try await app.request(.post, "/console/domains", raw: "csrf=\(csrf)&name=example.test", contentType: form, headers: cookie)
                #expect(added.status == 200 && added.body.contains("Added.") && added.body.contains("<code class=\"copy\">example.test</code>")
                        && added.body.contains("v=spf1"), "\(added.body)")
                #expect(added.body.contains("class=\"check-pending\""), "not checked yet")
                let id = try #require((try await app.request(.get, "/v1/domains", token: token).json["items"] as? [[String: Any]])?.first?["id"] as? String)
                let records = try await app.request(.get, "/v1/domains/\(id)", token: token).json["records"] as? [[String: Any]] ?? []
                try dns.setZone(DNSTestServer.zone(publishing: records))
                let verified = try await app.request(.post, "/console/domains/\(id)/verify", raw: "csrf=\(csrf)", contentType: form, headers: cookie)
                #expect(verified.status == 200 && verified.body.contains("Checked.") && verified.body.contains("class=\"status-verified\"")
                        && verified.body.contains("class=\"check-ok\""), "\(verified.body)")
                let audit = try await app.request(.get, "/v1/audit-log", token: token)
                #expect(audit.body.contains("dm:CreateDomain") && audit.body.contains("dm:CheckDomain"), "changes are audited like the API's")

                // A ReadOnly sub-user: sees the domains, no buttons; a forged post is refused and audited.
                let user = try #require(try await app.request(.post, "/v1/users", token: token, json: ["name": "reader"])["id"])
                #expect(try await app.request(.post, "/v1/users/\(user)/policies", token: token, json: ["policy": "ReadOnlyAccess"]).status == 200)
                let key = try await app.request(.post, "/v1/users/\(user)/access-keys", token: token)
                let reader = try await Self.signIn(app, keyID: try #require(key["accessKeyId"]), secret: try #require(key["accessKeySecret"]))
                let readerCookie: HTTPFields = [.cookie: "herald_console=\(reader)"]
                let view = try await app.request(.get, "/console/domains", contentType: nil, headers: readerCookie)
                #expect(view.status == 200 && view.body.contains("example.test") && !view.body.contains("Verify now")
                        && !view.body.contains("action=\"/console/domains\""), "\(view.body)")
                let forged = try await app.request(.post, "/console/domains/\(id)/verify", raw: "csrf=\(try Self.csrf(view))", contentType: form,
                                                   headers: readerCookie)
                #expect(forged.status == 403)
                let refusals = try await app.request(.get, "/v1/audit-log", token: token)
                #expect(refusals.body.contains("Forbidden.RAM"), "\(refusals.body.prefix(600))")
            }
        }
    }

    /// Sender addresses in the console: the list with type, reply-to state and SMTP password; a new one with a
    /// reply-to (which is mailed a confirmation link, and audited); a bad address is shown as the API's message.
    @Test func sendersAreListedAndAdded() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await TestApp.run(dnsPort: dns.port) { app in
                let (_, token, keyID, secret) = try await app.sendingTenant(dns)
                let session = try await Self.signIn(app, keyID: keyID, secret: secret)
                let cookie: HTTPFields = [.cookie: "herald_console=\(session)"]
                let list = try await app.request(.get, "/console/senders", contentType: nil, headers: cookie)
                #expect(list.status == 200 && list.body.contains("<code>app@example.test</code>") && list.body.contains("not set"), "\(list.body)")
                let form = "application/x-www-form-urlencoded", csrf = try Self.csrf(list)
                let added = try await app.request(.post, "/console/senders", raw: "csrf=\(csrf)&address=news%40example.test&type=batch&replyTo=help%40example.test",
                                                  contentType: form, headers: cookie)
                #expect(added.status == 200 && added.body.contains("confirmation link") && added.body.contains("<code>news@example.test</code>")
                        && added.body.contains("class=\"reply-pending\""), "\(added.body)")
                let bad = try await app.request(.post, "/console/senders", raw: "csrf=\(csrf)&address=not-an-address&type=trigger", contentType: form,
                                                headers: cookie)
                #expect(bad.status == 200 && bad.body.contains("role=\"status\"") && !bad.body.contains("not-an-address</code>"), "\(bad.body)")
                let senders = try await app.request(.get, "/v1/senders", token: token)
                #expect(senders.body.contains("news@example.test") && senders.body.contains("\"type\":\"batch\""), "the API agrees: \(senders.body)")
                #expect(try await app.request(.get, "/v1/audit-log", token: token).body.contains("dm:CreateMailAddress"))
            }
        }
    }
}
