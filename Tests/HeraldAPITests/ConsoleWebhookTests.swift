import Foundation
import HTTPTypes
import HeraldAPI
import HeraldAppTestSupport
import HeraldCore
import HeraldStore
import HeraldTestSupport
import HeraldWebhooks
import Testing

/// Webhooks in the console (issue #19): add an endpoint (its secret shown once), rotate the secret (shown once), send a
/// test event, see the delivery with its request and response, replay it; a ReadOnly sub-user sees no buttons and a
/// forged post gets 403; another tenant's endpoint shows nothing.
@Suite struct ConsoleWebhookTests {
    static let form = "application/x-www-form-urlencoded"

    static func encoded(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text
    }

    /// The text of the element with `id` up to the next `<` (an escaped value).
    static func element(_ page: Reply, _ id: String) -> String? {
        page.body.range(of: "id=\"\(id)\">").map { String(page.body[$0.upperBound...].prefix { $0 != "<" }) }
    }

    @Test func endpointsSecretsTestEventsDeliveriesAndReplay() async throws {
        try await WebhookTestServer.with { receiver in
            try await TestApp.run { app in
                let root = try await app.createTenant("Hooks")
                let token = try await app.token(root.keyID, root.secret)
                let session = try await ConsoleTests.signIn(app, keyID: root.keyID, secret: root.secret)
                let cookie: HTTPFields = [.cookie: "herald_console=\(session)"]
                let empty = try await app.request(.get, "/console/webhooks", contentType: nil, headers: cookie)
                #expect(empty.status == 200 && empty.body.contains("id=\"wh-add\"") && empty.body.contains("No webhook endpoints yet.")
                        && empty.body.contains("name=\"ev_message.delivered\""), "\(empty.body)")
                let csrf = try ConsoleTests.csrf(empty)
                let url = receiver.url("/hook")

                // Refusals show the API's messages and add nothing.
                let noTypes = try await app.request(.post, "/console/webhooks", raw: "csrf=\(csrf)&url=\(Self.encoded(url))", contentType: Self.form, headers: cookie)
                #expect(noTypes.status == 200 && noTypes.body.contains("eventTypes must list at least one event type"), "\(noTypes.body)")
                let badURL = try await app.request(.post, "/console/webhooks", raw: "csrf=\(csrf)&url=ftp%3A%2F%2Fexample.org%2F&ev_all=on",
                                                   contentType: Self.form, headers: cookie)
                #expect(badURL.status == 200 && badURL.body.contains("role=\"status\"") && !badURL.body.contains("id=\"wh-secret\""), "\(badURL.body)")
                #expect(try await app.count("webhook_endpoints", tenant: root.tenant) == 0)

                // Added: the secret is shown this once.
                let added = try await app.request(.post, "/console/webhooks",
                                                  raw: "csrf=\(csrf)&url=\(Self.encoded(url))&ev_message.delivered=on&ev_message.bounced=on",
                                                  contentType: Self.form, headers: cookie)
                let firstSecret = try #require(Self.element(added, "wh-secret"), "\(added.body)")
                #expect(added.status == 200 && firstSecret.hasPrefix("whsec_") && added.body.contains("shown this once")
                        && added.body.contains("message.delivered, message.bounced"), "\(added.body)")
                let hooks = try await app.request(.get, "/v1/webhooks", token: token).json["items"] as? [[String: Any]] ?? []
                let id = try #require(hooks.first?["id"] as? String)
                #expect(hooks.first?["url"] as? String == url && hooks.first?["eventTypes"] as? [String] == ["message.delivered", "message.bounced"])
                let list = try await app.request(.get, "/console/webhooks", contentType: nil, headers: cookie)
                #expect(list.body.contains("id=\"wh-row-\(id)\"") && list.body.contains("id=\"wh-delete-\(id)\"") && !list.body.contains("whsec_"),
                        "the secret is not shown again")

                // Disable and enable from the endpoint's page, as PATCH enabled does.
                let disabled = try await app.request(.post, "/console/webhooks/\(id)/disable", raw: "csrf=\(csrf)&from=detail", contentType: Self.form, headers: cookie)
                #expect(disabled.status == 200 && disabled.body.contains("id=\"wh-state\">Disabled (by you)") && !disabled.body.contains("id=\"wh-test\""),
                        "\(disabled.body)")
                #expect(try await app.request(.get, "/v1/webhooks/\(id)", token: token).json["enabled"] as? Bool == false)
                let enabled = try await app.request(.post, "/console/webhooks/\(id)/enable", raw: "csrf=\(csrf)", contentType: Self.form, headers: cookie)
                #expect(enabled.body.contains("id=\"wh-table\"") && enabled.body.contains("Enabled."), "back to the list")

                // The URL and event types change through the same guard and validation as PATCH.
                let form = try await app.request(.get, "/console/webhooks/\(id)", contentType: nil, headers: cookie)
                #expect(form.body.contains("id=\"wh-edit-ev-message-delivered\" name=\"ev_message.delivered\" checked")
                        && form.body.contains("id=\"wh-edit-ev-message-opened\" name=\"ev_message.opened\">"), "\(form.body)")
                let badEdit = try await app.request(.post, "/console/webhooks/\(id)/edit", raw: "csrf=\(csrf)&url=ftp%3A%2F%2Fx.example%2F&ev_all=on",
                                                    contentType: Self.form, headers: cookie)
                #expect(badEdit.status == 200 && badEdit.body.contains("id=\"wh-notice\"") && !badEdit.body.contains("Saved."), "\(badEdit.body)")
                let edited = try await app.request(.post, "/console/webhooks/\(id)/edit", raw: "csrf=\(csrf)&url=\(Self.encoded(url))&ev_all=on",
                                                   contentType: Self.form, headers: cookie)
                #expect(edited.status == 200 && edited.body.contains("Saved.") && edited.body.contains("id=\"wh-edit-ev-all\" name=\"ev_all\" checked"),
                        "\(edited.body)")
                #expect(try await app.request(.get, "/v1/webhooks/\(id)", token: token).json["eventTypes"] as? [String] == ["*"])

                // Rotate: the new secret once, different from the first.
                let rotated = try await app.request(.post, "/console/webhooks/\(id)/rotate", raw: "csrf=\(csrf)", contentType: Self.form, headers: cookie)
                let newSecret = try #require(Self.element(rotated, "wh-secret"), "\(rotated.body)")
                #expect(rotated.status == 200 && newSecret.hasPrefix("whsec_") && newSecret != firstSecret && rotated.body.contains("code class=\"copy value\""))
                let detail = try await app.request(.get, "/console/webhooks/\(id)", contentType: nil, headers: cookie)
                #expect(detail.status == 200 && !detail.body.contains("whsec_") && detail.body.contains("Previous secret signs until")
                        && detail.body.contains("No deliveries."), "\(detail.body)")

                // A test event reaches the receiver; the log shows it, its request and the response.
                let tested = try await app.request(.post, "/console/webhooks/\(id)/test", raw: "csrf=\(csrf)", contentType: Self.form, headers: cookie)
                #expect(tested.status == 200 && tested.body.contains("webhook.test event is on its way") && tested.body.contains("data-refresh=\"3\""),
                        "\(tested.body)")
                try await app.withDispatcher {
                    try await waitUntil("the test event") {
                        try await app.count("SELECT count(*)::int FROM webhook_deliveries WHERE status = 'succeeded'") == 1
                    }
                }
                #expect(receiver.received(path: "/hook").count == 1)
                #expect(try WebhookTests.verifyWithReferenceLibrary(receiver.received(path: "/hook"), secret: newSecret) == 1, "signed with the new secret")
                let log = try await app.request(.get, "/console/webhooks/\(id)", contentType: nil, headers: cookie)
                let deliveries = try await app.request(.get, "/v1/webhooks/\(id)/deliveries", token: token).json["items"] as? [[String: Any]] ?? []
                let deliveryID = try #require(deliveries.first?["id"] as? String)
                #expect(log.body.contains("id=\"wh-delivery-\(deliveryID)\"") && log.body.contains("<code>webhook.test</code>")
                        && log.body.contains("<td>200</td>") && log.body.contains("id=\"wh-replay-\(deliveryID)\"") && !log.body.contains("data-refresh"),
                        "\(log.body)")
                let one = try await app.request(.get, "/console/webhooks/\(id)/deliveries/\(deliveryID)", contentType: nil, headers: cookie)
                let webhookID = "msg_" + deliveryID.replacingOccurrences(of: "-", with: "")
                #expect(one.status == 200 && one.body.contains("webhook-id: \(webhookID)") && one.body.contains("content-type: application/json")
                        && one.body.contains("&quot;type&quot; : &quot;webhook.test&quot;") && one.body.contains("This is a test event from Herald.")
                        && one.body.contains("<strong>200</strong>") && one.body.contains("id=\"wh-replay\""), "\(one.body)")
                #expect(receiver.received(path: "/hook")[0].headers["webhook-id"] == webhookID)

                // Replay: sent again with the same webhook-id.
                let replayed = try await app.request(.post, "/console/webhooks/\(id)/deliveries/\(deliveryID)/replay", raw: "csrf=\(csrf)",
                                                     contentType: Self.form, headers: cookie)
                #expect(replayed.status == 200 && replayed.body.contains("will be sent again"), "\(replayed.body)")
                try await app.withDispatcher {
                    try await waitUntil("the replay") { receiver.received(path: "/hook").count == 2 }
                }
                #expect(receiver.received(path: "/hook").allSatisfy { $0.headers["webhook-id"] == webhookID })
                let audit = try await app.request(.get, "/v1/audit-log", token: token).body
                #expect(audit.contains("dm:CreateWebhook") && audit.contains("dm:UpdateWebhook") && audit.contains("dm:RotateWebhookSecret")
                        && audit.contains("dm:RetryWebhookDelivery"), "changes are audited like the API's")

                // A ReadOnly sub-user sees the endpoint and its log, no buttons; forged posts are refused.
                let user = try #require(try await app.request(.post, "/v1/users", token: token, json: ["name": "reader"])["id"])
                #expect(try await app.request(.post, "/v1/users/\(user)/policies", token: token, json: ["policy": "ReadOnlyAccess"]).status == 200)
                let key = try await app.request(.post, "/v1/users/\(user)/access-keys", token: token)
                let reader = try await ConsoleTests.signIn(app, keyID: try #require(key["accessKeyId"]), secret: try #require(key["accessKeySecret"]))
                let readerCookie: HTTPFields = [.cookie: "herald_console=\(reader)"]
                let readerList = try await app.request(.get, "/console/webhooks", contentType: nil, headers: readerCookie)
                #expect(readerList.status == 200 && readerList.body.contains("id=\"wh-row-\(id)\"") && !readerList.body.contains("id=\"wh-add\"")
                        && !readerList.body.contains("wh-delete-") && !readerList.body.contains("wh-toggle-"), "\(readerList.body)")
                let readerDetail = try await app.request(.get, "/console/webhooks/\(id)", contentType: nil, headers: readerCookie)
                #expect(readerDetail.status == 200 && readerDetail.body.contains("id=\"wh-delivery-\(deliveryID)\"") && !readerDetail.body.contains("wh-rotate")
                        && !readerDetail.body.contains("wh-replay-") && !readerDetail.body.contains("id=\"wh-test\"")
                        && !readerDetail.body.contains("id=\"wh-delete\"") && !readerDetail.body.contains("id=\"wh-edit\""), "\(readerDetail.body)")
                let readerDelivery = try await app.request(.get, "/console/webhooks/\(id)/deliveries/\(deliveryID)", contentType: nil, headers: readerCookie)
                #expect(readerDelivery.status == 200 && readerDelivery.body.contains("webhook-id:") && !readerDelivery.body.contains("id=\"wh-replay\""))
                let readerCSRF = try ConsoleTests.csrf(readerDetail)
                for path in ["/console/webhooks/\(id)/rotate", "/console/webhooks/\(id)/delete", "/console/webhooks/\(id)/edit", "/console/webhooks/\(id)/test",
                             "/console/webhooks/\(id)/disable", "/console/webhooks/\(id)/deliveries/\(deliveryID)/replay"] {
                    let forged = try await app.request(.post, path, raw: "csrf=\(readerCSRF)", contentType: Self.form, headers: readerCookie)
                    #expect(forged.status == 403 && !forged.body.contains("whsec_"), "\(path)")
                }
                let forgedAdd = try await app.request(.post, "/console/webhooks", raw: "csrf=\(readerCSRF)&url=\(Self.encoded(url))&ev_all=on",
                                                      contentType: Self.form, headers: readerCookie)
                #expect(forgedAdd.status == 403)
                #expect(try await app.count("webhook_endpoints", tenant: root.tenant) == 1)
                #expect(try await app.request(.get, "/v1/audit-log", token: token).body.contains("Forbidden.RAM"), "refusals are audited")
                // Without the form's token, even the root user is refused.
                #expect(try await app.request(.post, "/console/webhooks/\(id)/delete", raw: "csrf=forged", contentType: Self.form, headers: cookie).status == 403)

                // Another tenant's console shows nothing of the endpoint; a bad id is not found.
                let other = try await app.createTenant("Other")
                let otherSession = try await ConsoleTests.signIn(app, keyID: other.keyID, secret: other.secret)
                let otherCookie: HTTPFields = [.cookie: "herald_console=\(otherSession)"]
                for path in ["/console/webhooks/\(id)", "/console/webhooks/\(id)/deliveries/\(deliveryID)", "/console/webhooks/not-a-uuid"] {
                    let foreign = try await app.request(.get, path, contentType: nil, headers: otherCookie)
                    #expect(foreign.status == 404 && !foreign.body.contains(url) && !foreign.body.contains("webhook.test"), "\(path): \(foreign.body)")
                }
                let otherCSRF = try ConsoleTests.csrf(try await app.request(.get, "/console/webhooks", contentType: nil, headers: otherCookie))
                let foreignDelete = try await app.request(.post, "/console/webhooks/\(id)/delete", raw: "csrf=\(otherCSRF)", contentType: Self.form,
                                                          headers: otherCookie)
                #expect(foreignDelete.status == 200 && foreignDelete.body.contains("was not found"), "\(foreignDelete.body)")

                // Deleted from the list.
                let deleted = try await app.request(.post, "/console/webhooks/\(id)/delete", raw: "csrf=\(csrf)", contentType: Self.form, headers: cookie)
                #expect(deleted.status == 200 && deleted.body.contains("Deleted.") && !deleted.body.contains("wh-row-\(id)"))
                #expect(try await app.request(.get, "/v1/webhooks/\(id)", token: token).status == 404)
                let chinese = try await app.request(.get, "/console/webhooks", contentType: nil, headers: [.cookie: "herald_console=\(session)", .acceptLanguage: "zh-CN"])
                #expect(chinese.body.contains("添加端点") && chinese.body.contains("还没有 Webhook 端点。"))
            }
        }
    }
}
