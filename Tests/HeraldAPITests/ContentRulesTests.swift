import Foundation
import HTTPTypes
import HeraldAPI
import HeraldAppTestSupport
import HeraldCore
import HeraldDNS
import HeraldDelivery
import HeraldSMTP
import HeraldTestSupport
import Testing

/// Content rules on every path (issue #18): the sensitive words (HERALD_SENSITIVE_WORDS is `casino,lottery` in
/// the tests) refuse single sends over REST and the compatibility endpoint and SMTP submissions — a word hidden
/// in a base64 part too — with `Content.SensitiveWord` naming it; the operator lists and replaces the words at run
/// time, and templates under review follow.
@Suite struct ContentRulesTests {
    @Test func sensitiveWordsAreCheckedOnEveryPathAndChangedAtRunTime() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await TestApp.run(dnsPort: dns.port) { app in
                let (tenant, token, keyID, secret) = try await app.sendingTenant(dns)
                let rules = try await app.admin(.get, "/admin/v1/content-rules")
                #expect(rules.status == 200 && rules.json["sensitiveWords"] as? [String] == ["casino", "lottery"]
                        && rules["source"] == "configuration", "\(rules.body)")
                // REST: the subject, the html, the text.
                let subject = try await app.request(.post, "/v1/mail/single", token: token, json: TestApp.mail(to: ["ann@example.org"], subject: "Big CASINO night"))
                expectProblem(subject, 400, "Content.SensitiveWord")
                #expect(subject["field"] == "subject" && subject.body.contains("casino"), "\(subject.body)")
                let html = try await app.request(.post, "/v1/mail/single", token: token,
                                                 json: ["from": "app@example.test", "to": ["ann@example.org"], "subject": "Hi", "html": "<p>Win the LoTtErY</p>"])
                expectProblem(html, 400, "Content.SensitiveWord")
                #expect(html["field"] == "html" && html.body.contains("lottery"), "\(html.body)")
                // The compatibility endpoint goes the same road.
                let output = try await DirectMailCompatTests.sdk(app, keyID: keyID, secret: secret, algorithm: nil, """
                    attempt(lambda: client.single_send_mail(models.SingleSendMailRequest(account_name="app@example.test", address_type=1,
                        reply_to_address=False, to_address="ann@example.org", subject="Hello", text_body="casino bonus")))
                    """)
                #expect(output.hasPrefix("error Content.SensitiveWord"), "\(output)")
                // SMTP: the word in a base64 text part.
                let senders = try await app.request(.get, "/v1/senders", token: token)
                let senderID = try #require((senders.json["items"] as? [[String: Any]])?.first?["id"] as? String)
                #expect(try await app.request(.put, "/v1/senders/\(senderID)/smtp-password", token: token, json: ["password": "Correct-Horse-42"]).status == 204)
                try await SubmissionTests.withSubmission(app) { port in
                    let (status, smtp) = try await runPythonDetached(pythonSMTPClientPrelude + """
                        from email.message import EmailMessage
                        port = int(sys.argv[1])
                        def message(body):
                            m = EmailMessage()
                            m["From"] = "app@example.test"
                            m["To"] = "ann@example.org"
                            m["Subject"] = "Weekly"
                            m.set_content(body, cte="base64")
                            return m
                        with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
                            s.starttls(context=context)
                            s.login("app@example.test", "Correct-Horse-42")
                            for name, body in [("hidden", "Try our c\\u00e9l\\u00e8bre lottery today"), ("clean", "The weekly report")]:
                                try:
                                    s.send_message(message(body))
                                    print(name, "accepted")
                                except smtplib.SMTPDataError as e:
                                    print(name, e.smtp_code, e.smtp_error.decode())
                        """, [String(port)])
                    #expect(status == 0, "\(smtp)")
                    #expect(smtp.contains("hidden 554 5.7.1 Content.SensitiveWord") && smtp.contains("clean accepted"), "\(smtp)")
                }
                #expect(try await app.count("messages", tenant: tenant) == 1, "only the clean submission was queued")

                // The operator replaces the list: casino goes, jackpot comes; bad lists are refused whole.
                expectProblem(try await app.admin(.put, "/admin/v1/content-rules", json: ["sensitiveWords": [String(repeating: "x", count: 65)]]),
                              400, "Validation.Failed")
                let set = try await app.admin(.put, "/admin/v1/content-rules", json: ["sensitiveWords": [" JackPot ", "jackpot", ""]])
                #expect(set.status == 200 && set.json["sensitiveWords"] as? [String] == ["jackpot"] && set["source"] == "operator", "\(set.body)")
                #expect(try await app.request(.post, "/v1/mail/single", token: token,
                                              json: TestApp.mail(to: ["ann@example.org"], subject: "Casino night")).status == 200)
                expectProblem(try await app.request(.post, "/v1/mail/single", token: token,
                                                    json: TestApp.mail(to: ["ann@example.org"], subject: "Jackpot!")), 400, "Content.SensitiveWord")
                // Templates under review follow the list in force.
                let template = try await app.request(.post, "/v1/templates", token: token, json: [
                    "name": "promo", "subject": "The jackpot", "type": "trigger", "html": "<p>Hello</p>",
                ])
                let submitted = try await app.request(.post, "/v1/templates/\(try #require(template["id"]))/submit", token: token)
                #expect(submitted["status"] == "rejected" && submitted.body.contains("jackpot"), "\(submitted.body)")
                // Back to HERALD_SENSITIVE_WORDS.
                let reset = try await app.admin(.put, "/admin/v1/content-rules", json: ["sensitiveWords": NSNull()])
                #expect(reset.json["sensitiveWords"] as? [String] == ["casino", "lottery"] && reset["source"] == "configuration", "\(reset.body)")
                expectProblem(try await app.request(.post, "/v1/mail/single", token: token,
                                                    json: TestApp.mail(to: ["ann@example.org"], subject: "Casino night")), 400, "Content.SensitiveWord")
                // Only the operator.
                #expect(try await app.request(.get, "/admin/v1/content-rules", token: token).status == 401)
            }
        }
    }
}
