import Foundation
import HTTPTypes
import HeraldAPI
import HeraldAppTestSupport
import HeraldCore
import HeraldTestSupport
import Testing

/// Templates in the console (issue #19): the list with review states, create, edit (back to review), submit,
/// preview with variables (rendered by the sending path's renderer, never injected unescaped), delete; RAM per
/// button, 403 on forged posts, another tenant's template invisible.
@Suite struct ConsoleTemplateTests {
    static let form = "application/x-www-form-urlencoded"

    static func encoded(_ fields: [(String, String)]) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return fields.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")" }.joined(separator: "&")
    }

    @Test func templatesAreWrittenPreviewedSubmittedAndDeleted() async throws {
        try await TestApp.run { app in
            let root = try await app.createTenant("Console")
            let token = try await app.token(root.keyID, root.secret)
            let session = try await ConsoleTests.signIn(app, keyID: root.keyID, secret: root.secret)
            let cookie: HTTPFields = [.cookie: "herald_console=\(session)"]
            let empty = try await app.request(.get, "/console/templates", contentType: nil, headers: cookie)
            #expect(empty.status == 200 && empty.body.contains("No templates yet.") && empty.body.contains("action=\"/console/templates\"")
                    && empty.body.contains("<label for=\"tpl-new-name\">"), "\(empty.body)")
            let csrf = try ConsoleTests.csrf(empty)
            let fields: [(String, String)] = [
                ("name", "welcome"), ("type", "batch"), ("subject", "Hello ${name}"),
                ("html", "<p>Hi ${name}, code ${code}.</p><a href=\"${unsubscribe}\">Leave</a>"), ("text", "Hi ${name}, code ${code}. Leave: ${unsubscribe}"),
            ]
            #expect(try await app.request(.post, "/console/templates", raw: Self.encoded(fields), contentType: Self.form, headers: cookie).status == 403,
                    "no CSRF token")
            let created = try await app.request(.post, "/console/templates", raw: Self.encoded([("csrf", csrf)] + fields), contentType: Self.form,
                                                headers: cookie)
            #expect(created.status == 200 && created.body.contains("Template created.") && created.body.contains(">welcome</a>")
                    && created.body.contains("data-status=\"draft\""), "\(created.body)")
            // Bad input shows the API's message.
            let bad = try await app.request(.post, "/console/templates", raw: Self.encoded([("csrf", csrf), ("name", "x"), ("type", "trigger"),
                                                                                            ("subject", ""), ("text", "t")]),
                                            contentType: Self.form, headers: cookie)
            #expect(bad.status == 200 && bad.body.contains("subject must be 1 to"), "\(bad.body)")
            let items = try #require(try await app.request(.get, "/v1/templates", token: token).json["items"] as? [[String: Any]])
            #expect(items.count == 1)
            let id = try #require(items.first?["id"] as? String)

            // The template page: the edit form filled in, one input per variable, the submit button (a draft).
            let page = try await app.request(.get, "/console/templates/\(id)", contentType: nil, headers: cookie)
            #expect(page.status == 200 && page.body.contains("id=\"tpl-var-name\" name=\"var_name\"") && page.body.contains("name=\"var_code\"")
                    && !page.body.contains("name=\"var_unsubscribe\"") && page.body.contains("id=\"tpl-submit\"")
                    && page.body.contains("id=\"tpl-delete\"") && page.body.contains("value=\"Hello ${name}\""), "\(page.body)")
            // The preview renders with the sending path's renderer; values never reach the page unescaped.
            let preview = try await app.request(.get, "/console/templates/\(id)?preview=1&var_name=%3Cscript%3Ex%3C%2Fscript%3E&var_code=42",
                                                contentType: nil, headers: cookie)
            #expect(preview.status == 200 && preview.body.contains("id=\"tpl-preview-subject\">Hello &lt;script&gt;x&lt;/script&gt;</p>")
                    && preview.body.contains("Hi &lt;script&gt;x&lt;/script&gt;, code 42. Leave: https://herald.test/u/PREVIEW")
                    && preview.body.contains("&lt;p&gt;Hi &amp;lt;script&amp;gt;x&amp;lt;/script&amp;gt;, code 42.&lt;/p&gt;")
                    && !preview.body.contains("<script>x"), "\(preview.body)")

            // Submit: waits for review; the button goes.
            let submitted = try await app.request(.post, "/console/templates/\(id)/submit", raw: "csrf=\(csrf)", contentType: Self.form, headers: cookie)
            #expect(submitted.status == 200 && submitted.body.contains("Submitted") && submitted.body.contains("data-status=\"pending\"")
                    && !submitted.body.contains("id=\"tpl-submit\""), "\(submitted.body)")
            #expect(try await app.request(.get, "/v1/templates/\(id)", token: token)["status"] == "pending")
            // The operator approves; saving sends it back to review, as the REST update does.
            #expect(try await app.admin(.post, "/admin/v1/templates/\(id)/approve")["status"] == "approved")
            let saved = try await app.request(.post, "/console/templates/\(id)",
                                              raw: Self.encoded([("csrf", csrf), ("name", "welcome"), ("type", "batch"), ("subject", "Hi ${name}"),
                                                                 ("html", ""), ("text", "Hi ${name}. Leave: ${unsubscribe}")]),
                                              contentType: Self.form, headers: cookie)
            #expect(saved.status == 200 && saved.body.contains("waiting for review again") && saved.body.contains("value=\"Hi ${name}\""), "\(saved.body)")
            let rest = try await app.request(.get, "/v1/templates/\(id)", token: token)
            #expect(rest["status"] == "pending" && rest["html"] == nil, "\(rest.body)")
            // Rejected: the reason shows on the page.
            #expect(try await app.admin(.post, "/admin/v1/templates/\(id)/reject", json: ["reason": "misleading subject"]).status == 200)
            let rejected = try await app.request(.get, "/console/templates/\(id)", contentType: nil, headers: cookie)
            #expect(rejected.body.contains("data-status=\"rejected\"") && rejected.body.contains("<li>misleading subject</li>"), "\(rejected.body)")
            let list = try await app.request(.get, "/console/templates?status=rejected", contentType: nil, headers: cookie)
            #expect(list.body.contains(">welcome</a>") && list.body.contains("misleading subject"))
            #expect(!(try await app.request(.get, "/console/templates?status=approved", contentType: nil, headers: cookie)).body.contains(">welcome</a>"))
            let audit = try await app.request(.get, "/v1/audit-log", token: token)
            #expect(audit.body.contains("dm:CreateTemplate") && audit.body.contains("dm:SubmitTemplate") && audit.body.contains("dm:UpdateTemplate"))

            // Another tenant's template, or no id at all: a 404 page that shows nothing of it.
            let other = try await app.createTenant("Other")
            let otherToken = try await app.token(other.keyID, other.secret)
            let secret = try await app.request(.post, "/v1/templates", token: otherToken, json: ["name": "secret-plan", "subject": "S", "text": "x"])
            let otherID = try #require(secret["id"])
            let foreign = try await app.request(.get, "/console/templates/\(otherID)", contentType: nil, headers: cookie)
            #expect(foreign.status == 404 && !foreign.body.contains("secret-plan"), "\(foreign.body)")
            #expect(try await app.request(.get, "/console/templates/not-a-uuid", contentType: nil, headers: cookie).status == 404)
            let foreignDelete = try await app.request(.post, "/console/templates/\(otherID)/delete", raw: "csrf=\(csrf)", contentType: Self.form,
                                                      headers: cookie)
            #expect(foreignDelete.status == 200 && foreignDelete.body.contains("was not found"), "\(foreignDelete.body)")
            #expect(try await app.request(.get, "/v1/templates/\(otherID)", token: otherToken).status == 200)

            // Delete.
            let deleted = try await app.request(.post, "/console/templates/\(id)/delete", raw: "csrf=\(csrf)", contentType: Self.form, headers: cookie)
            #expect(deleted.status == 200 && deleted.body.contains("Template deleted.") && deleted.body.contains("No templates yet."), "\(deleted.body)")
            #expect(try await app.request(.get, "/v1/templates/\(id)", token: token).status == 404)
            let chinese = try await app.request(.get, "/console/templates?lang=zh", contentType: nil, headers: cookie)
            #expect(chinese.body.contains("新建模板"))
        }
    }

    /// A ReadOnly sub-user sees the templates and the preview, no create, save, submit or delete; forged posts get 403.
    @Test func readOnlyUsersSeeNoButtons() async throws {
        try await TestApp.run { app in
            let root = try await app.createTenant("Console")
            let token = try await app.token(root.keyID, root.secret)
            let created = try await app.request(.post, "/v1/templates", token: token, json: ["name": "code", "type": "trigger", "subject": "Code",
                                                                                          "text": "Code ${code}"])
            let id = try #require(created["id"])
            let user = try #require(try await app.request(.post, "/v1/users", token: token, json: ["name": "reader"])["id"])
            #expect(try await app.request(.post, "/v1/users/\(user)/policies", token: token, json: ["policy": "ReadOnlyAccess"]).status == 200)
            let key = try await app.request(.post, "/v1/users/\(user)/access-keys", token: token)
            let reader = try await ConsoleTests.signIn(app, keyID: try #require(key["accessKeyId"]), secret: try #require(key["accessKeySecret"]))
            let cookie: HTTPFields = [.cookie: "herald_console=\(reader)"]
            let list = try await app.request(.get, "/console/templates", contentType: nil, headers: cookie)
            #expect(list.status == 200 && list.body.contains(">code</a>") && !list.body.contains("id=\"tpl-new\""), "\(list.body)")
            let page = try await app.request(.get, "/console/templates/\(id)?preview=1&var_code=77", contentType: nil, headers: cookie)
            #expect(page.status == 200 && !page.body.contains("id=\"tpl-save\"") && !page.body.contains("id=\"tpl-submit\"")
                    && !page.body.contains("id=\"tpl-delete\"") && page.body.contains("Code 77"), "\(page.body)")
            let csrf = try ConsoleTests.csrf(list)
            #expect(try await app.request(.post, "/console/templates/\(id)/delete", raw: "csrf=\(csrf)", contentType: Self.form, headers: cookie).status == 403)
            #expect(try await app.request(.post, "/console/templates/\(id)/submit", raw: "csrf=\(csrf)", contentType: Self.form, headers: cookie).status == 403)
            #expect(try await app.request(.post, "/console/templates", raw: "csrf=\(csrf)&name=x&type=trigger&subject=s&text=t", contentType: Self.form,
                                          headers: cookie).status == 403)
            #expect(try await app.request(.get, "/v1/templates/\(id)", token: token)["status"] == "draft")
            let refusals = try await app.request(.get, "/v1/audit-log", token: token)
            #expect(refusals.body.contains("Forbidden.RAM"))
        }
    }
}
