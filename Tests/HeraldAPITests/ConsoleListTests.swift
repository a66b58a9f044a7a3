import Foundation
import HTTPTypes
import HeraldAPI
import HeraldAppTestSupport
import HeraldCore
import HeraldTestSupport
import Testing

/// Recipient lists in the console (issue #19): create, a CSV upload with per-row errors (the REST import's rules),
/// members searched and removed, export, delete; a ReadOnly user and another tenant.
@Suite struct ConsoleListTests {
    static let form = "application/x-www-form-urlencoded"
    static let boundary = "----HeraldConsoleTestBoundary42"

    /// A browser's upload of `csv` as the form's `file`, with the `csrf` field first.
    static func upload(csrf: String?, csv: String, filename: String = "readers.csv") -> String {
        var body = ""
        if let csrf { body += "--\(boundary)\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n\(csrf)\r\n" }
        body += "--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\(filename)\"\r\nContent-Type: text/csv\r\n\r\n\(csv)\r\n"
        return body + "--\(boundary)--\r\n"
    }

    static let multipart = "multipart/form-data; boundary=\(boundary)"

    @Test func uploadShowsRowErrorsAndAddsTheGoodRows() async throws {
        try await TestApp.run { app in
            let root = try await app.createTenant("Lists")
            let token = try await app.token(root.keyID, root.secret)
            let session = try await ConsoleTests.signIn(app, keyID: root.keyID, secret: root.secret)
            let cookie: HTTPFields = [.cookie: "herald_console=\(session)"]

            let empty = try await app.request(.get, "/console/lists", contentType: nil, headers: cookie)
            #expect(empty.status == 200 && empty.body.contains("No recipient lists yet.") && empty.body.contains("id=\"list-create\""), "\(empty.body)")
            let csrf = try ConsoleTests.csrf(empty)
            #expect(try await app.request(.post, "/console/lists", raw: "name=x", contentType: Self.form, headers: cookie).status == 403)
            let created = try await app.request(.post, "/console/lists", raw: "csrf=\(csrf)&name=readers&alias=Readers&description=Weekly", contentType: Self.form,
                                                headers: cookie)
            #expect(created.status == 200 && created.body.contains("List created.") && created.body.contains(">readers</a>"), "\(created.body)")
            let duplicate = try await app.request(.post, "/console/lists", raw: "csrf=\(csrf)&name=readers", contentType: Self.form, headers: cookie)
            #expect(duplicate.status == 200 && duplicate.body.contains("A recipient list named readers already exists."), "the API's message")
            let id = try #require((try await app.request(.get, "/v1/lists", token: token).json["items"] as? [[String: Any]])?.first?["id"] as? String)

            let page = try await app.request(.get, "/console/lists/\(id)", contentType: nil, headers: cookie)
            #expect(page.status == 200 && page.body.contains("enctype=\"multipart/form-data\"") && page.body.contains("name=\"file\" type=\"file\" accept=\".csv,text/csv\"")
                    && page.body.contains("id=\"list-delete\"") && page.body.contains("id=\"list-export\""), "\(page.body)")

            // One bad row (line 3): refused with its reason; the good rows are added.
            let csv = "address,name\r\nann@example.org,Ann\r\nnot-an-address,Bad\r\nben@example.org,\"Ben, B.\"\r\n"
            #expect(try await app.request(.post, "/console/lists/\(id)/import", raw: Self.upload(csrf: nil, csv: csv), contentType: Self.multipart,
                                          headers: cookie).status == 403, "no CSRF token")
            #expect(try await app.request(.post, "/console/lists/\(id)/import", raw: Self.upload(csrf: "forged", csv: csv), contentType: Self.multipart,
                                          headers: cookie).status == 403)
            let imported = try await app.request(.post, "/console/lists/\(id)/import", raw: Self.upload(csrf: csrf, csv: csv), contentType: Self.multipart,
                                                 headers: cookie)
            #expect(imported.status == 200 && imported.body.contains("id=\"import-result\"")
                    && imported.body.contains("2 rows added or updated, 1 rows refused; the list has 2 members.")
                    && imported.body.contains("<tr><td>3</td><td class=\"error\">invalid address</td></tr>")
                    && imported.body.contains("<dd id=\"member-count\">2</dd>") && imported.body.contains("<code>ben@example.org</code>"), "\(imported.body)")
            let members = try await app.request(.get, "/v1/lists/\(id)/recipients", token: token)
            let items = try #require(members.json["items"] as? [[String: Any]], "\(members.body)")
            #expect(items.map { $0["address"] as? String } == ["ann@example.org", "ben@example.org"])
            #expect((items.last?["variables"] as? [String: Any])?["name"] as? String == "Ben, B.")
            #expect(try await app.request(.get, "/v1/lists/\(id)", token: token).json["memberCount"] as? Int == 2)
            let audit = try await app.request(.get, "/v1/audit-log", token: token)
            #expect(audit.body.contains("dm:SaveReceiverDetail") && audit.body.contains("dm:CreateReceiver"), "audited like the API's")

            // The REST import's rules: a file without an address column is refused with its message; so is broken UTF-8.
            let noAddress = try await app.request(.post, "/console/lists/\(id)/import", raw: Self.upload(csrf: csrf, csv: "email\nx@example.org\n"),
                                                  contentType: Self.multipart, headers: cookie)
            #expect(noAddress.status == 200 && noAddress.body.contains("The CSV header must name an address column"), "\(noAddress.body)")
            let restNoAddress = try await app.request(.post, "/v1/lists/\(id)/recipients", token: token, raw: "email\nx@example.org\n", contentType: "text/csv")
            #expect(restNoAddress.code == "Validation.Failed")
            let nul = try await app.request(.post, "/console/lists/\(id)/import", raw: Self.upload(csrf: csrf, csv: "address\nx\u{0}@example.org\n"),
                                            contentType: Self.multipart, headers: cookie)
            #expect(nul.status == 200 && nul.body.contains("class=\"notice\"") && !nul.body.contains("id=\"import-result\""), "\(nul.body)")
            let noFile = try await app.request(.post, "/console/lists/\(id)/import",
                                               raw: "--\(Self.boundary)\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n\(csrf)\r\n--\(Self.boundary)--\r\n",
                                               contentType: Self.multipart, headers: cookie)
            #expect(noFile.status == 200 && noFile.body.contains("Choose a CSV file to upload."), "\(noFile.body)")

            // Search and paging links; the export is the REST export's document.
            let search = try await app.request(.get, "/console/lists/\(id)?q=BEN", contentType: nil, headers: cookie)
            #expect(search.body.contains("<code>ben@example.org</code>") && !search.body.contains("<code>ann@example.org</code>")
                    && search.body.contains("value=\"BEN\""), "\(search.body)")
            let export = try await app.request(.get, "/console/lists/\(id)/export", contentType: nil, headers: cookie)
            let restExport = try await app.request(.get, "/v1/lists/\(id)/recipients/export", token: token)
            #expect(export.status == 200 && export.headers[.contentType]?.hasPrefix("text/csv") == true
                    && export.headers[.contentDisposition] == "attachment; filename=\"list-\(id).csv\"", "\(export.headers)")
            #expect(export.body == restExport.body && export.body.contains("ben@example.org,\"Ben, B.\""), "\(export.body)")

            // A file larger than the console's 16 KB form limit (the REST import's limit applies), members a page at a time.
            let many = "address,code\r\n" + (0..<700).map { String(format: "member%04d@example.org,%d", $0, $0) }.joined(separator: "\r\n") + "\r\n"
            #expect(many.utf8.count > 16 * 1024)
            let big = try await app.request(.post, "/console/lists/\(id)/import", raw: Self.upload(csrf: csrf, csv: many), contentType: Self.multipart,
                                            headers: cookie)
            #expect(big.status == 200 && big.body.contains("700 rows added or updated, 0 rows refused; the list has 702 members."), "\(big.status)")
            let first = try await app.request(.get, "/console/lists/\(id)?q=member", contentType: nil, headers: cookie)
            #expect(first.body.contains("<code>member0049@example.org</code>") && !first.body.contains("<code>member0050@example.org</code>"))
            let next = try #require(first.body.range(of: "id=\"members-next\" href=\"").map { String(first.body[$0.upperBound...].prefix { $0 != "\"" }) })
            #expect(next == "/console/lists/\(id)?q=member&amp;after=member0049@example.org", "\(next)")
            let second = try await app.request(.get, next.replacingOccurrences(of: "&amp;", with: "&"), contentType: nil, headers: cookie)
            #expect(second.body.contains("<code>member0050@example.org</code>") && !second.body.contains("<code>member0049@example.org</code>")
                    && second.body.contains("id=\"members-first\""), "\(second.body.prefix(300))")
            let chinese = try await app.request(.get, "/console/lists/\(id)?lang=zh", contentType: nil, headers: cookie)
            #expect(chinese.body.contains("上传收信人（CSV）") && chinese.body.contains("导出为 CSV"))

            // Past the REST import's limit: refused before anything is read into the list.
            let huge = "address\n" + String(repeating: "x", count: 8 * 1024 * 1024 + 70 * 1024)
            let tooLarge = try await app.request(.post, "/console/lists/\(id)/import", raw: Self.upload(csrf: csrf, csv: huge), contentType: Self.multipart,
                                                 headers: cookie)
            #expect(tooLarge.status == 413 && tooLarge.body.contains("Upload too large"), "\(tooLarge.status)")

            // Remove a member, then the list.
            let removed = try await app.request(.post, "/console/lists/\(id)/members/delete", raw: "csrf=\(csrf)&address=ann%40example.org",
                                                contentType: Self.form, headers: cookie)
            #expect(removed.status == 200 && removed.body.contains("Member removed.") && !removed.body.contains("<code>ann@example.org</code>"),
                    "\(removed.body)")
            let again = try await app.request(.post, "/console/lists/\(id)/members/delete", raw: "csrf=\(csrf)&address=ann%40example.org",
                                              contentType: Self.form, headers: cookie)
            #expect(again.status == 200 && again.body.contains("class=\"notice\""), "not found is the API's message")
            #expect(try await app.request(.get, "/v1/lists/\(id)", token: token).json["memberCount"] as? Int == 701)
            let deleted = try await app.request(.post, "/console/lists/\(id)/delete", raw: "csrf=\(csrf)", contentType: Self.form, headers: cookie)
            #expect(deleted.status == 200 && deleted.body.contains("List deleted.") && deleted.body.contains("No recipient lists yet."), "\(deleted.body)")
            #expect(try await app.request(.get, "/v1/lists/\(id)", token: token).status == 404)
            #expect(try await app.request(.get, "/console/lists/\(id)", contentType: nil, headers: cookie).status == 404)
        }
    }

    /// A ReadOnly sub-user sees the list and its members but no upload, remove or delete form, and a forged post is
    /// refused; another tenant's list id shows nothing of it; a malformed id is not found.
    @Test func policiesAndTenantsApply() async throws {
        try await TestApp.run { app in
            let root = try await app.createTenant("Lists")
            let token = try await app.token(root.keyID, root.secret)
            let id = try #require(try await app.request(.post, "/v1/lists", token: token, json: ["name": "secret-list"])["id"])
            _ = try await app.request(.post, "/v1/lists/\(id)/recipients", token: token, json: [["address": "vip@example.org"]])

            let user = try #require(try await app.request(.post, "/v1/users", token: token, json: ["name": "reader"])["id"])
            #expect(try await app.request(.post, "/v1/users/\(user)/policies", token: token, json: ["policy": "ReadOnlyAccess"]).status == 200)
            let key = try await app.request(.post, "/v1/users/\(user)/access-keys", token: token)
            let reader = try await ConsoleTests.signIn(app, keyID: try #require(key["accessKeyId"]), secret: try #require(key["accessKeySecret"]))
            let readerCookie: HTTPFields = [.cookie: "herald_console=\(reader)"]
            let lists = try await app.request(.get, "/console/lists", contentType: nil, headers: readerCookie)
            #expect(lists.status == 200 && lists.body.contains("secret-list") && !lists.body.contains("id=\"list-create\""), "\(lists.body)")
            let view = try await app.request(.get, "/console/lists/\(id)", contentType: nil, headers: readerCookie)
            #expect(view.status == 200 && view.body.contains("<code>vip@example.org</code>") && view.body.contains("id=\"list-export\"")
                    && !view.body.contains("id=\"list-import\"") && !view.body.contains("id=\"list-delete\"") && !view.body.contains("member-remove"),
                    "\(view.body)")
            let csrf = try ConsoleTests.csrf(view)
            #expect(try await app.request(.post, "/console/lists/\(id)/import", raw: Self.upload(csrf: csrf, csv: "address\nnew@example.org\n"),
                                          contentType: Self.multipart, headers: readerCookie).status == 403)
            #expect(try await app.request(.post, "/console/lists/\(id)/delete", raw: "csrf=\(csrf)", contentType: Self.form, headers: readerCookie).status == 403)
            #expect(try await app.request(.post, "/console/lists/\(id)/members/delete", raw: "csrf=\(csrf)&address=vip%40example.org", contentType: Self.form,
                                          headers: readerCookie).status == 403)
            #expect(try await app.request(.post, "/console/lists", raw: "csrf=\(csrf)&name=mine", contentType: Self.form, headers: readerCookie).status == 403)
            #expect(try await app.request(.get, "/v1/lists/\(id)", token: token).json["memberCount"] as? Int == 1, "nothing changed")
            let refusals = try await app.request(.get, "/v1/audit-log", token: token)
            #expect(refusals.body.contains("Forbidden.RAM") && refusals.body.contains("dm:SaveReceiverDetail"), "\(refusals.body.prefix(600))")

            // Another tenant: the id shows nothing, exports nothing, imports nothing.
            let other = try await app.createTenant("Other")
            let otherSession = try await ConsoleTests.signIn(app, keyID: other.keyID, secret: other.secret)
            let otherCookie: HTTPFields = [.cookie: "herald_console=\(otherSession)"]
            let foreign = try await app.request(.get, "/console/lists/\(id)", contentType: nil, headers: otherCookie)
            #expect(foreign.status == 404 && !foreign.body.contains("secret-list") && !foreign.body.contains("vip@example.org"), "\(foreign.body)")
            let foreignExport = try await app.request(.get, "/console/lists/\(id)/export", contentType: nil, headers: otherCookie)
            #expect(foreignExport.status == 404 && !foreignExport.body.contains("vip@example.org"))
            let otherCSRF = try ConsoleTests.csrf(try await app.request(.get, "/console/lists", contentType: nil, headers: otherCookie))
            let foreignImport = try await app.request(.post, "/console/lists/\(id)/import", raw: Self.upload(csrf: otherCSRF, csv: "address\nx@example.org\n"),
                                                      contentType: Self.multipart, headers: otherCookie)
            #expect(foreignImport.status == 404 && !foreignImport.body.contains("secret-list"), "\(foreignImport.status)")
            #expect(try await app.request(.get, "/v1/lists/\(id)", token: token).json["memberCount"] as? Int == 1)
            #expect(try await app.request(.get, "/console/lists/not-a-uuid", contentType: nil, headers: otherCookie).status == 404)
            // Not signed in: to the sign-in page.
            #expect(try await app.request(.get, "/console/lists/\(id)/export", contentType: nil).status == 303)
        }
    }
}
