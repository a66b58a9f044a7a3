import Foundation
import HTTPTypes
import HeraldAPI
import HeraldAppTestSupport
import HeraldCore
import HeraldStore
import HeraldTestSupport
import Testing

/// Users, keys and policies, IP protection and the audit log in the console (issue #19).
@Suite struct ConsoleUserTests {
    static let form = "application/x-www-form-urlencoded"

    static func encoded(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text
    }

    /// A user made, a key shown once, ReadOnlyAccess attached: that key signs in to the console and sees no create
    /// forms, and its forged posts get 403; a custom policy from JSON (bad JSON shows the API's message and keeps
    /// the text); a sub-user cannot manage the root user; locking oneself out needs a confirmation.
    @Test func usersKeysAndPolicies() async throws {
        try await TestApp.run { app in
            let root = try await app.createTenant("People")
            let token = try await app.token(root.keyID, root.secret)
            let session = try await ConsoleTests.signIn(app, keyID: root.keyID, secret: root.secret)
            let cookie: HTTPFields = [.cookie: "herald_console=\(session)"]
            let list = try await app.request(.get, "/console/users", contentType: nil, headers: cookie)
            #expect(list.status == 200 && list.body.contains("id=\"usr-add\"") && list.body.contains("(root)") && list.body.contains("id=\"pol-add\"")
                    && list.body.contains("<code>ReadOnlyAccess</code>"), "\(list.body)")
            let csrf = try ConsoleTests.csrf(list)

            let bad = try await app.request(.post, "/console/users", raw: "csrf=\(csrf)&name=bad+name%21", contentType: Self.form, headers: cookie)
            #expect(bad.status == 200 && bad.body.contains("name must be 1 to 64 characters"), "\(bad.body)")
            let made = try await app.request(.post, "/console/users", raw: "csrf=\(csrf)&name=reader", contentType: Self.form, headers: cookie)
            #expect(made.status == 200 && made.body.contains("User created.") && made.body.contains(">reader</a>"), "\(made.body)")
            let users = try await app.request(.get, "/v1/users", token: token).json["items"] as? [[String: Any]] ?? []
            let readerID = try #require(users.first { $0["name"] as? String == "reader" }?["id"] as? String)
            let rootID = try #require(users.first { $0["root"] as? Bool == true }?["id"] as? String)

            // A key, its secret shown this once.
            let keyed = try await app.request(.post, "/console/users/\(readerID)/keys", raw: "csrf=\(csrf)", contentType: Self.form, headers: cookie)
            let keyID = try #require(ConsoleWebhookTests.element(keyed, "key-new-id"), "\(keyed.body)")
            let secret = try #require(ConsoleWebhookTests.element(keyed, "key-new-secret"))
            #expect(keyed.status == 200 && keyed.body.contains("shown this once") && keyed.body.contains("id=\"key-row-\(keyID)\""))
            let again = try await app.request(.get, "/console/users/\(readerID)", contentType: nil, headers: cookie)
            #expect(!again.body.contains(secret) && again.body.contains("No policies") && again.body.contains("id=\"attach-form\""), "\(again.body)")
            let attached = try await app.request(.post, "/console/users/\(readerID)/policies", raw: "csrf=\(csrf)&policy=ReadOnlyAccess",
                                                 contentType: Self.form, headers: cookie)
            #expect(attached.status == 200 && attached.body.contains("Attached.") && attached.body.contains("id=\"attached-row-ReadOnlyAccess\""),
                    "\(attached.body)")
            let policies = try await app.request(.get, "/v1/users/\(readerID)/policies", token: token)
            #expect(policies.body.contains("ReadOnlyAccess"), "the API agrees")

            // A custom policy: bad JSON shows the validation message and keeps what was typed.
            let badJSON = try await app.request(.post, "/console/policies", raw: "csrf=\(csrf)&name=SendOnly&document=\(Self.encoded("{\"Statement\": [nope"))",
                                                contentType: Self.form, headers: cookie)
            #expect(badJSON.status == 200 && badJSON.body.contains("The policy document is not valid") && badJSON.body.contains("[nope</textarea>")
                    && badJSON.body.contains("value=\"SendOnly\""), "\(badJSON.body)")
            let badAction = try await app.request(.post, "/console/policies",
                                                  raw: "csrf=\(csrf)&name=SendOnly&document=\(Self.encoded("{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"send\",\"Resource\":\"*\"}]}"))",
                                                  contentType: Self.form, headers: cookie)
            #expect(badAction.body.contains("is not an action"), "\(badAction.body)")
            let document = "{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":[\"dm:SingleSendMail\"],\"Resource\":\"*\"}]}"
            let custom = try await app.request(.post, "/console/policies", raw: "csrf=\(csrf)&name=SendOnly&description=Sends&document=\(Self.encoded(document))",
                                               contentType: Self.form, headers: cookie)
            #expect(custom.status == 200 && custom.body.contains("Policy created.") && custom.body.contains("id=\"pol-delete-SendOnly\""), "\(custom.body)")
            #expect(try await app.request(.get, "/v1/policies/SendOnly", token: token).status == 200)

            // The reader signs in with the new key: it sees users and policies, no create or delete forms; its posts get 403.
            let reader = try await ConsoleTests.signIn(app, keyID: keyID, secret: secret)
            let readerCookie: HTTPFields = [.cookie: "herald_console=\(reader)"]
            let readerList = try await app.request(.get, "/console/users", contentType: nil, headers: readerCookie)
            #expect(readerList.status == 200 && readerList.body.contains(">reader</a>") && readerList.body.contains("(you)")
                    && !readerList.body.contains("id=\"usr-add\"") && !readerList.body.contains("id=\"pol-add\"")
                    && !readerList.body.contains("pol-delete-"), "\(readerList.body)")
            let readerSelf = try await app.request(.get, "/console/users/\(readerID)", contentType: nil, headers: readerCookie)
            #expect(readerSelf.status == 200 && readerSelf.body.contains("signed in with this key") && !readerSelf.body.contains("id=\"key-add\"")
                    && !readerSelf.body.contains("key-delete-") && !readerSelf.body.contains("id=\"attach-form\"") && !readerSelf.body.contains("detach-")
                    && !readerSelf.body.contains("id=\"usr-delete\"") && !readerSelf.body.contains("id=\"usr-toggle\""), "\(readerSelf.body)")
            for page in ["/console/webhooks", "/console/ip-protection", "/console/domains"] {
                let seen = try await app.request(.get, page, contentType: nil, headers: readerCookie)
                #expect(seen.status == 200 && !seen.body.contains("method=\"post\" action=\"\(page)") && !seen.body.contains("id=\"ip-add\""), "\(page)")
            }
            let readerCSRF = try ConsoleTests.csrf(readerSelf)
            for (path, body) in [("/console/users", "name=sneaky"), ("/console/users/\(readerID)/keys", ""), ("/console/users/\(readerID)/policies", "policy=FullAccess"),
                                 ("/console/users/\(readerID)/disable", "confirm=yes"), ("/console/policies/SendOnly/delete", ""),
                                 ("/console/ip-protection/add", "entry=10.0.0.1")] {
                let forged = try await app.request(.post, path, raw: "csrf=\(readerCSRF)&\(body)", contentType: Self.form, headers: readerCookie)
                #expect(forged.status == 403, "\(path)")
            }
            #expect(try await app.request(.get, "/v1/users/\(readerID)/policies", token: token).body.contains("FullAccess") == false)

            // A FullAccess sub-user may not manage the root user; deleting its own key needs the confirmation.
            let admin = try #require(try await app.request(.post, "/v1/users", token: token, json: ["name": "admin"])["id"])
            #expect(try await app.request(.post, "/v1/users/\(admin)/policies", token: token, json: ["policy": "FullAccess"]).status == 200)
            let adminKey = try await app.request(.post, "/v1/users/\(admin)/access-keys", token: token)
            let adminKeyID = try #require(adminKey["accessKeyId"])
            let adminSession = try await ConsoleTests.signIn(app, keyID: adminKeyID, secret: try #require(adminKey["accessKeySecret"]))
            let adminCookie: HTTPFields = [.cookie: "herald_console=\(adminSession)"]
            let rootPage = try await app.request(.get, "/console/users/\(rootID)", contentType: nil, headers: adminCookie)
            #expect(rootPage.status == 200 && rootPage.body.contains("Only the root user can see") && !rootPage.body.contains("key-row-")
                    && !rootPage.body.contains("id=\"usr-delete\""), "\(rootPage.body)")
            let adminCSRF = try ConsoleTests.csrf(rootPage)
            let rootKey = try await app.request(.post, "/console/users/\(rootID)/keys", raw: "csrf=\(adminCSRF)", contentType: Self.form, headers: adminCookie)
            #expect(rootKey.status == 200 && rootKey.body.contains("Only the root user can manage the root user") && !rootKey.body.contains("key-new-secret"),
                    "\(rootKey.body)")
            let adminPage = try await app.request(.get, "/console/users/\(admin)", contentType: nil, headers: adminCookie)
            #expect(adminPage.body.contains("id=\"key-confirm-\(adminKeyID)\"") && adminPage.body.contains("id=\"usr-toggle-confirm\""), "\(adminPage.body)")
            let unconfirmed = try await app.request(.post, "/console/users/\(admin)/keys/\(adminKeyID)/delete", raw: "csrf=\(adminCSRF)",
                                                    contentType: Self.form, headers: adminCookie)
            #expect(unconfirmed.status == 200 && unconfirmed.body.contains("tick the confirmation box") && unconfirmed.body.contains("key-row-\(adminKeyID)"),
                    "\(unconfirmed.body)")
            let confirmed = try await app.request(.post, "/console/users/\(admin)/keys/\(adminKeyID)/delete", raw: "csrf=\(adminCSRF)&confirm=yes",
                                                  contentType: Self.form, headers: adminCookie)
            #expect(confirmed.status == 303 && confirmed.headers[.location] == "/console/sign-in", "signed out at once: \(confirmed.status)")
            #expect(try await app.request(.get, "/console", contentType: nil, headers: adminCookie).status == 303)

            // The root user disables and deletes the admin; the root user itself has no such buttons.
            let rootSelf = try await app.request(.get, "/console/users/\(rootID)", contentType: nil, headers: cookie)
            #expect(rootSelf.status == 200 && !rootSelf.body.contains("id=\"usr-delete\"") && !rootSelf.body.contains("id=\"usr-toggle\"")
                    && rootSelf.body.contains("key-row-\(root.keyID)"), "\(rootSelf.body)")
            let disabled = try await app.request(.post, "/console/users/\(admin)/disable", raw: "csrf=\(csrf)", contentType: Self.form, headers: cookie)
            #expect(disabled.status == 200 && disabled.body.contains("id=\"usr-state\">Disabled"), "\(disabled.body)")
            let removed = try await app.request(.post, "/console/users/\(admin)/delete", raw: "csrf=\(csrf)", contentType: Self.form, headers: cookie)
            #expect(removed.status == 200 && removed.body.contains("User deleted.") && !removed.body.contains(">admin</a>"), "\(removed.body)")
            #expect(try await app.request(.get, "/v1/users/\(admin)", token: token).status == 404)

            // Another tenant sees nothing of these users.
            let other = try await app.createTenant("Other")
            let otherSession = try await ConsoleTests.signIn(app, keyID: other.keyID, secret: other.secret)
            for path in ["/console/users/\(readerID)", "/console/users/nope"] {
                let foreign = try await app.request(.get, path, contentType: nil, headers: [.cookie: "herald_console=\(otherSession)"])
                #expect(foreign.status == 404 && !foreign.body.contains("reader"), "\(path)")
            }
        }
    }

    /// The sending IP allowlist (entries added and removed, switched on and off, bad entries shown with the API's
    /// message), and the audit log listing the console's changes, filtered by action and user, paged.
    @Test func ipProtectionAndAuditLog() async throws {
        try await TestApp.run { app in
            let root = try await app.createTenant("Guarded")
            let token = try await app.token(root.keyID, root.secret)
            let session = try await ConsoleTests.signIn(app, keyID: root.keyID, secret: root.secret)
            let cookie: HTTPFields = [.cookie: "herald_console=\(session)"]
            let page = try await app.request(.get, "/console/ip-protection", contentType: nil, headers: cookie)
            #expect(page.status == 200 && page.body.contains("id=\"ip-add\"") && page.body.contains("No entries.")
                    && page.body.contains("id=\"ip-state\">Off"), "\(page.body)")
            let csrf = try ConsoleTests.csrf(page)
            let added = try await app.request(.post, "/console/ip-protection/add", raw: "csrf=\(csrf)&entry=203.0.113.0%2F24", contentType: Self.form, headers: cookie)
            #expect(added.status == 200 && added.body.contains("<code>203.0.113.0/24</code>") && added.body.contains("Added."), "\(added.body)")
            _ = try await app.request(.post, "/console/ip-protection/add", raw: "csrf=\(csrf)&entry=%3A%3A1", contentType: Self.form, headers: cookie)
            let bad = try await app.request(.post, "/console/ip-protection/add", raw: "csrf=\(csrf)&entry=nope", contentType: Self.form, headers: cookie)
            #expect(bad.status == 200 && bad.body.contains("&quot;nope&quot; is not an IPv4/IPv6 address or CIDR."), "\(bad.body)")
            let on = try await app.request(.post, "/console/ip-protection/switch", raw: "csrf=\(csrf)&enabled=on", contentType: Self.form, headers: cookie)
            #expect(on.body.contains("id=\"ip-state\">On"), "\(on.body)")
            var setting = try await app.request(.get, "/v1/ip-protection", token: token)
            #expect(setting.json["enabled"] as? Bool == true && setting.json["allow"] as? [String] == ["203.0.113.0/24", "::1/128"], "\(setting.body)")
            let removed = try await app.request(.post, "/console/ip-protection/remove", raw: "csrf=\(csrf)&entry=203.0.113.0%2F24", contentType: Self.form,
                                                headers: cookie)
            #expect(removed.body.contains("Removed.") && !removed.body.contains("<code>203.0.113.0/24</code>"), "\(removed.body)")
            let missing = try await app.request(.post, "/console/ip-protection/remove", raw: "csrf=\(csrf)&entry=198.51.100.1", contentType: Self.form,
                                                headers: cookie)
            #expect(missing.body.contains("was not found"), "\(missing.body)")
            _ = try await app.request(.post, "/console/ip-protection/switch", raw: "csrf=\(csrf)&enabled=off", contentType: Self.form, headers: cookie)
            setting = try await app.request(.get, "/v1/ip-protection", token: token)
            #expect(setting.json["enabled"] as? Bool == false && setting.json["allow"] as? [String] == ["::1/128"], "\(setting.body)")
            _ = try await app.request(.post, "/console/users", raw: "csrf=\(csrf)&name=ops", contentType: Self.form, headers: cookie)

            // The audit log: the console's changes with their actor (the session's key), newest first.
            let audit = try await app.request(.get, "/console/audit", contentType: nil, headers: cookie)
            #expect(audit.status == 200 && audit.body.contains("<code>dm:UpdateIpProtection</code>") && audit.body.contains("<code>dm:CreateUser</code>")
                    && audit.body.contains(root.keyID) && audit.body.contains("InvalidParameter") == false, "\(audit.body)")
            #expect(audit.body.range(of: "dm:CreateUser")!.lowerBound < audit.body.range(of: "dm:UpdateIpProtection")!.lowerBound, "newest first")
            #expect(audit.body.contains("Validation.Failed") && audit.body.contains("NotFound"), "refusals are listed with their codes")
            let filtered = try await app.request(.get, "/console/audit?action=dm%3ACreateUser", contentType: nil, headers: cookie)
            #expect(filtered.body.contains("<code>dm:CreateUser</code>") && !filtered.body.contains("<code>dm:UpdateIpProtection</code>")
                    && filtered.body.contains("value=\"dm:CreateUser\""), "\(filtered.body)")
            let badUser = try await app.request(.get, "/console/audit?user=someone", contentType: nil, headers: cookie)
            #expect(badUser.status == 200 && badUser.body.contains("userId must be a UUID."), "\(badUser.body)")
            let users = try await app.request(.get, "/v1/users", token: token).json["items"] as? [[String: Any]] ?? []
            let rootID = try #require(users.first { $0["root"] as? Bool == true }?["id"] as? String)
            let byUser = try await app.request(.get, "/console/audit?user=\(rootID)", contentType: nil, headers: cookie)
            #expect(byUser.body.contains("<code>dm:CreateUser</code>"))
            let nobody = try await app.request(.get, "/console/audit?user=\(UUID().uuidString)", contentType: nil, headers: cookie)
            #expect(nobody.body.contains("No entries."))
            // Paged 50 at a time: 60 more changes, then the older page.
            for index in 0..<60 {
                _ = try await app.request(.post, "/console/ip-protection/add", raw: "csrf=\(csrf)&entry=10.0.0.\(index)", contentType: Self.form, headers: cookie)
            }
            let first = try await app.request(.get, "/console/audit", contentType: nil, headers: cookie)
            let older = try #require(first.body.range(of: "id=\"audit-older\"").flatMap { _ in
                first.body.range(of: "href=\"/console/audit?before=").map { String(first.body[$0.lowerBound...].dropFirst(6).prefix { $0 != "\"" }) }
            }, "\(first.body.suffix(400))")
            let second = try await app.request(.get, older.replacingOccurrences(of: "&amp;", with: "&"), contentType: nil, headers: cookie)
            #expect(second.status == 200 && second.body.contains("<code>dm:CreateUser</code>"), "\(second.body.suffix(2000))")

            // A ReadOnly sub-user reads the log and the allowlist, and changes neither.
            let user = try #require(try await app.request(.post, "/v1/users", token: token, json: ["name": "reader"])["id"])
            #expect(try await app.request(.post, "/v1/users/\(user)/policies", token: token, json: ["policy": "ReadOnlyAccess"]).status == 200)
            let key = try await app.request(.post, "/v1/users/\(user)/access-keys", token: token)
            let reader = try await ConsoleTests.signIn(app, keyID: try #require(key["accessKeyId"]), secret: try #require(key["accessKeySecret"]))
            let readerCookie: HTTPFields = [.cookie: "herald_console=\(reader)"]
            let readerIP = try await app.request(.get, "/console/ip-protection", contentType: nil, headers: readerCookie)
            #expect(readerIP.status == 200 && readerIP.body.contains("::1/128") && !readerIP.body.contains("id=\"ip-add\"")
                    && !readerIP.body.contains("ip-remove-") && !readerIP.body.contains("id=\"ip-switch\""), "\(readerIP.body)")
            #expect(try await app.request(.get, "/console/audit", contentType: nil, headers: readerCookie).status == 200)
            let forged = try await app.request(.post, "/console/ip-protection/switch", raw: "csrf=\(try ConsoleTests.csrf(readerIP))&enabled=on",
                                               contentType: Self.form, headers: readerCookie)
            #expect(forged.status == 403)
            #expect(try await app.request(.get, "/v1/ip-protection", token: token).json["enabled"] as? Bool == false)
        }
    }
}
