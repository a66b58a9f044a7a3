import Foundation
import HTTPTypes
@testable import HeraldAPI
import HeraldAppTestSupport
import HeraldCore
import HeraldStore
import HeraldTestSupport
import Testing

/// The hand-written JSON of `POST /v1/mail/single` (``SingleSendJSON``, ``SingleSendRoute``) against the
/// generated coders it stands in for: what it takes, it reads and writes exactly as they do; what it does
/// not take, it leaves to them.
@Suite struct SingleSendJSONTests {
    /// The generated decoder's reading of a body, as the handler turns it into a send.
    static func generated(_ json: String) -> SingleSendRequest? {
        guard let body = try? JSONDecoder().decode(Components.Schemas.SingleSend.self, from: Data(json.utf8)) else { return nil }
        return SingleSendRequest(from: body.from, fromAlias: body.fromAlias, to: body.to, subject: body.subject, html: body.html, text: body.text,
                                 replyTo: body.replyTo, tag: body.tag, headers: body.headers?.additionalProperties ?? [:], tracking: body.clickTracking)
    }

    @Test(arguments: [
        #"{"from":"app@example.test","to":["user@example.org"],"subject":"Your code","text":"Code: 123456","html":"<p>Code: <b>123456</b></p>"}"#,
        #"  { "subject" : "Hi" , "to" : [ "a@example.org" , "b@example.org" ] , "from" : "app@example.test" }  "#,
        #"{"from":"app@example.test","to":[],"subject":""}"#,
        "{\"from\":\"app@example.test\",\n\t\"to\":[\"a@example.org\"],\r\n\"subject\":\"x\"}",
        #"{"from":"app@example.test","to":["a@example.org"],"subject":"Caf\u00e9 \"quoted\" a\\b \/ tab\there\nline","html":"<p>\ud83d\ude00</p>"}"#,
        #"{"from":"app@example.test","to":["a@example.org"],"subject":"Grüße 😀 日本","text":"ünïcödé"}"#,
        #"{"from":"app@example.test","fromAlias":"Acme","to":["a@example.org"],"subject":"s","replyTo":"r@example.test","tag":"otp","clickTracking":true}"#,
        #"{"from":"app@example.test","to":["a@example.org"],"subject":"s","clickTracking":false,"headers":{"X-Campaign":"q4","X-Other":"v"}}"#,
        #"{"from":"app@example.test","to":["a@example.org"],"subject":"s","headers":{}}"#,
    ])
    func readsWhatTheGeneratedDecoderReads(_ json: String) throws {
        let fast = try #require(SingleSendJSON.parse(Array(json.utf8)), "the hand-written reader takes a plain body")
        #expect(fast == Self.generated(json))
    }

    /// Whatever is not plain is left to the generated decoder (which then accepts or refuses it as it always did).
    @Test(arguments: [
        #"{"from":"app@example.test","to":["a@example.org"]}"#,                                   // subject missing
        #"{"from":"app@example.test","to":["a@example.org"],"subject":"s","extra":1}"#,            // unknown field
        #"{"from":"app@example.test","to":["a@example.org"],"subject":"s","tag":null}"#,           // null
        #"{"from":"app@example.test","to":"a@example.org","subject":"s"}"#,                        // wrong type
        #"{"from":"app@example.test","to":["a@example.org"],"subject":"s","clickTracking":"yes"}"#,
        #"{"from":"app@example.test","to":["a@example.org"],"subject":"s","headers":{"X":1}}"#,
        #"{"from":"app@example.test","to":["a@example.org"],"subject":"s","subject":"t"}"#,        // repeated key
        #"{"from":"app@example.test","to":["a@example.org"],"subject":"s"} x"#,                    // trailing text
        #"{"from":"app@example.test","to":["a@example.org"],"subject":"s""#,                       // cut short
        #"{"from":"app@example.test","to":["a@example.org"],"subject":"\ud83d"}"#,                 // lone surrogate
        #"{"from":"app@example.test","to":["a@example.org"],"subject":"\x"}"#,                     // bad escape
        "{\"from\":\"app@example.test\",\"to\":[\"a@example.org\"],\"subject\":\"a\tb\"}",         // raw control character
        #"[]"#, "", "null",
    ])
    func leavesTheRestToTheGeneratedDecoder(_ json: String) {
        #expect(SingleSendJSON.parse(Array(json.utf8)) == nil)
    }

    @Test func refusesBrokenUTF8() {
        let bytes = Array(#"{"from":"app@example.test","to":["a@example.org"],"subject":""#.utf8) + [0xC3, 0x28] + Array(#""}"#.utf8)
        #expect(SingleSendJSON.parse(bytes) == nil)
    }

    @Test func writesWhatTheGeneratedEncoderWrites() throws {
        let request = UUID(uuidString: "0190C0DE-0000-7000-8000-000000000001")!
        let results = [
            SendResult(requestId: request, messages: [.init(id: UUID(), to: "user@example.org", status: .queued, reason: nil)]),
            SendResult(requestId: request, messages: [
                .init(id: UUID(), to: "a@example.org", status: .queued, reason: nil),
                .init(id: UUID(), to: "gone@example.org", status: .dropped, reason: "suppressed"),
                .init(id: UUID(), to: "b/c@example.org", status: .dropped, reason: "invalid_address"),
                .init(id: UUID(), to: "d@example.org", status: .dropped, reason: "not_a_contract_reason"),
            ]),
            SendResult(requestId: request, messages: []),
        ]
        for result in results {
            let fast = try #require(SingleSendJSON.encode(result))
            #expect(fast == Array(try JSONBody.encoder.encode(Components.Schemas.SendResult(result))), "\(String(decoding: fast, as: UTF8.self))")
        }
        // Text beyond plain ASCII is left to the generated encoder.
        #expect(SingleSendJSON.encode(SendResult(requestId: request, messages: [.init(id: UUID(), to: "ü@example.org", status: .queued, reason: nil)])) == nil)
    }

    /// The same send through the hand-written route and through the generated one (an Accept with a
    /// parameter sends it there): the same answer, fields and headers; an Idempotency-Key goes the generated
    /// way and still replays.
    @Test func bothRoutesAnswerAlike() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await TestApp.run(dnsPort: dns.port) { app in
                let (_, token, _, _) = try await app.sendingTenant(dns)
                let body = TestApp.mail(to: ["a@example.org", "b@example.org"], extra: ["headers": ["X-Campaign": "q4"], "clickTracking": false])
                let fast = try await app.request(.post, "/v1/mail/single", token: token, json: body)
                let generated = try await app.request(.post, "/v1/mail/single", token: token, json: body,
                                                      headers: [.accept: "application/json; q=1"])
                for reply in [fast, generated] {
                    #expect(reply.status == 200, "\(reply.body)")
                    #expect(reply.headers[.contentType] == "application/json; charset=utf-8")
                    #expect(reply.headers[HTTPField.Name("RateLimit-Limit")!] != nil)
                    #expect(reply.headers[HTTPField.Name("RateLimit-Remaining")!] != nil)
                    #expect(reply.headers[HTTPField.Name("X-Request-Id")!] != nil)
                    #expect(Set(reply.json.keys) == ["requestId", "messages"])
                    let messages = reply.json["messages"] as? [[String: Any]] ?? []
                    #expect(messages.map { $0["to"] as? String } == ["a@example.org", "b@example.org"])
                    #expect(messages.allSatisfy { Set($0.keys) == ["id", "to", "status"] && $0["status"] as? String == "queued" })
                }
                let remaining = [fast, generated].compactMap { Int($0.headers[HTTPField.Name("RateLimit-Remaining")!] ?? "") }
                #expect(remaining.count == 2 && remaining[0] > remaining[1], "both count against the tenant's rate: \(remaining)")

                let keyed = ["Idempotency-Key": "order-1"].reduce(into: HTTPFields()) { $0[HTTPField.Name($1.key)!] = $1.value }
                let first = try await app.request(.post, "/v1/mail/single", token: token, json: body, headers: keyed)
                let again = try await app.request(.post, "/v1/mail/single", token: token, json: body, headers: keyed)
                #expect(first.status == 200 && again.status == 200)
                #expect(first["requestId"] != nil && first["requestId"] == again["requestId"])

                // A body the hand-written reader does not take is refused by the generated route, as before.
                let unknown = try await app.request(.post, "/v1/mail/single", token: token, json: body.merging(["bcc": "x"]) { $1 })
                expectProblem(unknown, 400, "Validation.Failed")
                #expect(unknown["field"] == "bcc")
                let unauthenticated = try await app.request(.post, "/v1/mail/single", json: body)
                expectProblem(unauthenticated, 401, "Auth.InvalidToken")
            }
        }
    }
}
