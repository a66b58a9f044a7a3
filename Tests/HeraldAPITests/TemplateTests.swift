import Foundation
import HTTPTypes
import HeraldAppTestSupport
import HeraldCore
import Testing

@Suite struct TemplateReviewTests {
    @Test func lifecycleThroughTheOperator() async throws {
        try await TestApp.run { app in
            let (_, token) = try await app.rootToken()
            let (_, other) = try await app.rootToken("Other")
            let created = try await app.request(.post, "/v1/templates", token: token, json: [
                "name": "welcome", "subject": "Hello ${name}", "type": "batch",
                "html": "<p>Hi ${name}, your code is ${code}.</p><a href=\"${unsubscribe}\">Unsubscribe</a>",
                "text": "Hi ${name}, code ${code}. Leave: ${unsubscribe}",
            ])
            #expect(created.status == 201, "\(created.body)")
            #expect(created["status"] == "draft" && created["type"] == "batch")
            #expect(created.json["variables"] as? [String] == ["name", "code", "unsubscribe"])
            let id = created["id"] ?? ""

            // The preview escapes HTML in values, not in the text part.
            let preview = try await app.request(.post, "/v1/templates/\(id)/preview", token: token,
                                                json: ["variables": ["name": "<script>alert(1)</script>", "code": "42"]])
            #expect(preview["html"] == "<p>Hi &lt;script&gt;alert(1)&lt;/script&gt;, your code is 42.</p><a href=\"https://herald.test/u/PREVIEW\">Unsubscribe</a>",
                    "\(preview.body)")
            #expect(preview["text"] == "Hi <script>alert(1)</script>, code 42. Leave: https://herald.test/u/PREVIEW")

            // Submit → pending; the operator sees it and approves.
            let submitted = try await app.request(.post, "/v1/templates/\(id)/submit", token: token)
            #expect(submitted["status"] == "pending", "\(submitted.body)")
            let queue = try await app.admin(.get, "/admin/v1/templates")
            #expect((queue.json["items"] as? [[String: Any]])?.map { $0["id"] as? String } == [id])
            expectProblem(try await app.request(.post, "/admin/v1/templates/\(id)/approve", token: token), 401, "Auth.InvalidToken")
            let approved = try await app.admin(.post, "/admin/v1/templates/\(id)/approve")
            #expect(approved["status"] == "approved", "\(approved.body)")
            expectProblem(try await app.admin(.post, "/admin/v1/templates/\(id)/approve"), 409, "Template.NotPending")

            // Editing an approved template sends it back to review.
            let edited = try await app.request(.put, "/v1/templates/\(id)", token: token, json: [
                "name": "welcome", "subject": "Hello again ${name}", "html": "<p>${name}</p>${unsubscribe}",
            ])
            #expect(edited["status"] == "pending", "\(edited.body)")
            let rejectWithoutReason = try await app.admin(.post, "/admin/v1/templates/\(id)/reject", json: [String: String]())
            expectProblem(rejectWithoutReason, 400, "Validation.Failed")
            #expect(rejectWithoutReason["field"] == "reason")
            let rejected = try await app.admin(.post, "/admin/v1/templates/\(id)/reject", json: ["reason": "misleading subject"])
            #expect(rejected["status"] == "rejected" && rejected.json["reviewReasons"] as? [String] == ["misleading subject"])
            // A rejected template edited goes back to draft, and can be submitted again.
            let redrafted = try await app.request(.put, "/v1/templates/\(id)", token: token, json: [
                "name": "welcome", "subject": "Welcome ${name}", "html": "<p>${name}</p>${unsubscribe}",
            ])
            #expect(redrafted["status"] == "draft")
            #expect(try await app.request(.post, "/v1/templates/\(id)/submit", token: token)["status"] == "pending")

            // Automatic checks reject at once, with the reasons.
            let noUnsubscribe = try await app.request(.post, "/v1/templates", token: token, json: [
                "name": "promo", "subject": "Big news", "type": "batch", "html": "<p>No way out</p>",
            ])
            let autoRejected = try await app.request(.post, "/v1/templates/\(noUnsubscribe["id"] ?? "")/submit", token: token)
            #expect(autoRejected["status"] == "rejected")
            #expect(autoRejected.json["reviewReasons"] as? [String] == ["the html part of a batch template must contain ${unsubscribe}"])
            let sensitive = try await app.request(.post, "/v1/templates", token: token, json: [
                "name": "reset", "subject": "Your CASINO password", "type": "trigger", "text": "Reset: ${link}",
            ])
            let sensitiveRejected = try await app.request(.post, "/v1/templates/\(sensitive["id"] ?? "")/submit", token: token)
            #expect(sensitiveRejected.json["reviewReasons"] as? [String] == ["contains sensitive words: casino"])
            // A trigger template needs no unsubscribe link.
            let trigger = try await app.request(.post, "/v1/templates", token: token, json: [
                "name": "code", "subject": "Your code", "type": "trigger", "text": "Code: ${code}",
            ])
            #expect(try await app.request(.post, "/v1/templates/\(trigger["id"] ?? "")/submit", token: token)["status"] == "pending")

            // Listing by status; isolation.
            let pendingList = try await app.request(.get, "/v1/templates?status=pending", token: token)
            #expect((pendingList.json["items"] as? [Any])?.count == 2)
            expectProblem(try await app.request(.get, "/v1/templates?status=bogus", token: token), 400, "Validation.Failed")
            expectProblem(try await app.request(.get, "/v1/templates/\(id)", token: other), 404, "NotFound")
            expectProblem(try await app.request(.put, "/v1/templates/\(id)", token: other, json: ["name": "x", "subject": "y", "text": "z"]), 404, "NotFound")
            #expect((try await app.request(.get, "/v1/templates", token: other).json["items"] as? [Any])?.count == 0)

            // The audit log records the review.
            let audit = try await app.request(.get, "/v1/audit-log?limit=100", token: token)
            let actions = (audit.json["items"] as? [[String: Any]] ?? []).compactMap { $0["action"] as? String }
            #expect(actions.contains("admin:ApproveTemplate") && actions.contains("admin:RejectTemplate") && actions.contains("dm:SubmitTemplate"))
        }
    }

    @Test func limitsAndBadInput() async throws {
        try await TestApp.run { app in
            let (_, token) = try await app.rootToken()
            for index in 1...10 {
                let reply = try await app.request(.post, "/v1/templates", token: token, json: ["name": "t\(index)", "subject": "S", "text": "x", "type": "trigger"])
                #expect(reply.status == 201, "\(reply.body)")
            }
            expectProblem(try await app.request(.post, "/v1/templates", token: token, json: ["name": "t11", "subject": "S", "text": "x"]), 409, "Limit.Exceeded")
            expectProblem(try await app.request(.post, "/v1/templates", token: token, json: ["name": "t1", "subject": "S", "text": "x"]), 409, "Limit.Exceeded")
            let (_, fresh) = try await app.rootToken("Fresh")
            #expect(try await app.request(.post, "/v1/templates", token: fresh, json: ["name": "a", "subject": "S", "text": "x"]).status == 201)
            for (body, field) in [
                (["name": "b", "subject": String(repeating: "s", count: 101), "text": "x"], "subject"),
                (["name": "b", "subject": "S"], "html"),
                (["name": "b", "subject": "S", "text": String(repeating: "x", count: 80 * 1024 + 1)], "text"),
                (["name": "", "subject": "S", "text": "x"], "name"),
                (["name": "b", "subject": "S", "text": "x", "type": "bulk"], "type"),
                (["name": "b", "subject": "S", "text": "x", "extra": "y"], "extra"),
            ] as [([String: String], String)] {
                let reply = try await app.request(.post, "/v1/templates", token: fresh, json: body)
                expectProblem(reply, 400, "Validation.Failed")
                #expect(reply["field"] == field, "\(field): \(reply.body)")
            }
            expectProblem(try await app.request(.post, "/v1/templates", token: fresh, json: ["name": "a", "subject": "S", "text": "x"]), 409, "Template.AlreadyExists")
        }
    }
}
