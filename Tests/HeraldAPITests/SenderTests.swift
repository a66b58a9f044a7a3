import Foundation
import Crypto
import HTTPTypes
import HeraldAPI
import HeraldAppTestSupport
import HeraldCore
import HeraldStore
import HeraldTestSupport
import PostgresNIO
import Testing

@Suite struct SenderTests {
    @Test func sendersOnVerifiedDomainsReplyToAndPasswords() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await TestApp.run(dnsPort: dns.port) { app in
                let root = try await app.createTenant("Acme")
                let token = try await app.token(root.keyID, root.secret)
                let tenantID = try #require(UUID(uuidString: root.tenant))

                // Unregistered and unverified domains are refused.
                let unregistered = try await app.request(.post, "/v1/senders", token: token, json: ["address": "news@nowhere.test", "type": "batch"])
                expectProblem(unregistered, 409, "Domain.NotVerified")
                #expect(unregistered["field"] == "address")
                let pending = try await app.request(.post, "/v1/domains", token: token, json: ["name": "pending.test", "dkimKeyBits": 1024])
                expectProblem(try await app.request(.post, "/v1/senders", token: token, json: ["address": "a@pending.test", "type": "trigger"]),
                              409, "Domain.NotVerified")

                let domainID = try await app.verifiedDomain(dns, token: token, name: "mail.example.test")
                let created = try await app.request(.post, "/v1/senders", token: token,
                                                    json: ["address": "News@Mail.Example.test", "type": "batch", "replyTo": "support@example.org"])
                #expect(created.status == 201, "\(created.body)")
                #expect(created["address"] == "news@mail.example.test" && created["type"] == "batch" && created["domainId"] == domainID)
                #expect(created["replyToStatus"] == "pending" && created.json["smtpPasswordSet"] as? Bool == false)
                let senderID = try #require(UUID(uuidString: created["id"] ?? ""))
                expectProblem(try await app.request(.post, "/v1/senders", token: token, json: ["address": "news@mail.example.test", "type": "trigger"]),
                              409, "Sender.AlreadyExists")
                expectProblem(try await app.request(.delete, "/v1/domains/\(domainID)", token: token), 409, "Domain.InUse")

                // The confirmation link: forged, altered or stale links are 404 pages and change nothing.
                let key = app.dependencies.replyToKey
                let stored = try await app.dependencies.senders.get(tenantID: tenantID, id: senderID)
                #expect(stored.replyToStatus == .pending)
                expectHTML(try await app.request(.get, "/r/not-a-token"), 404)
                let forged = ReplyToToken(tenantID: tenantID, senderID: senderID, nonce: "guess", expires: Date().addingTimeInterval(3600))
                expectHTML(try await app.request(.get, "/r/\(forged.encode(key: key))"), 404)
                expectHTML(try await app.request(.get, "/r/\(forged.encode(key: .init(size: .bits256)))"), 404)
                #expect(try await app.dependencies.senders.get(tenantID: tenantID, id: senderID).replyToStatus == .pending)

                // The confirmation mail was queued with the sender, to the reply-to address; its link confirms, once or twice.
                let queued = try await app.dependencies.database.withSystem { connection in
                    let rows = try await connection.query("""
                        SELECT to_address, body_text, kind, status FROM messages WHERE tenant_id = \(tenantID) AND kind = 'system' ORDER BY created_at
                        """, logger: app.dependencies.database.logger)
                    var found: [(String, String, String, String)] = []
                    for try await row in rows.decode((String, String, String, String).self) { found.append(row) }
                    return found
                }
                #expect(queued.count == 1 && queued.first?.0 == "support@example.org" && queued.first?.3 == "queued")
                let mailText = try #require(queued.first?.1)
                let linkStart = try #require(mailText.range(of: "https://herald.test/r/"))
                let link = String(mailText[linkStart.upperBound...].prefix { !$0.isWhitespace })
                var altered = Array(link)
                altered[altered.count - 3] = altered[altered.count - 3] == "A" ? "B" : "A"
                expectHTML(try await app.request(.get, "/r/\(String(altered))"), 404)
                let confirmed = try await app.request(.get, "/r/\(link)")
                expectHTML(confirmed, 200)
                #expect(confirmed.body.contains("support@example.org"))
                expectHTML(try await app.request(.get, "/r/\(link)"), 200)
                #expect(try await app.request(.get, "/v1/senders/\(senderID)", token: token)["replyToStatus"] == "verified")

                // A new reply-to must be confirmed again; the old link no longer works for it.
                let changed = try await app.request(.patch, "/v1/senders/\(senderID)", token: token, json: ["replyTo": "help@example.org"])
                #expect(changed["replyToStatus"] == "pending" && changed["replyTo"] == "help@example.org", "\(changed.body)")
                expectHTML(try await app.request(.get, "/r/\(link)"), 404)
                let cleared = try await app.request(.patch, "/v1/senders/\(senderID)", token: token, json: ["replyTo": NSNull()])
                #expect(cleared["replyToStatus"] == "none" && cleared["replyTo"] == nil, "\(cleared.body)")
                expectProblem(try await app.request(.post, "/v1/senders/\(senderID)/reply-to/confirm", token: token), 409, "Sender.NoPendingReplyTo")

                // SMTP password: the strength rule, then a slow salted hash that verifies.
                let weak = try await app.request(.put, "/v1/senders/\(senderID)/smtp-password", token: token, json: ["password": "short"])
                expectProblem(weak, 400, "Validation.Failed")
                #expect(weak["field"] == "password")
                expectProblem(try await app.request(.put, "/v1/senders/\(senderID)/smtp-password", token: token, json: ["password": "alllowercase123"]),
                              400, "Validation.Failed")
                #expect(try await app.request(.put, "/v1/senders/\(senderID)/smtp-password", token: token, json: ["password": "Correct-Horse-42"]).status == 204)
                #expect(try await app.request(.get, "/v1/senders/\(senderID)", token: token).json["smtpPasswordSet"] as? Bool == true)
                let hash = try #require(try await app.dependencies.senders.smtpLoginCandidates(address: "NEWS@mail.example.test").first)
                #expect(hash.hash.hasPrefix("scrypt$15$8$1$") && !hash.hash.contains("Correct-Horse-42"))
                #expect(SMTPPassword.verify("Correct-Horse-42", against: hash.hash))
                #expect(!SMTPPassword.verify("Correct-Horse-43", against: hash.hash))

                // Bad input.
                for (body, field) in [(["address": "no-at-sign", "type": "batch"], "address"), (["address": "a..b@mail.example.test", "type": "batch"], "address"),
                                      (["address": "x@mail.example.test", "type": "bulk"], "type"),
                                      (["address": "x@mail.example.test", "type": "batch", "replyTo": "nope"], "replyTo")] as [([String: String], String)] {
                    let reply = try await app.request(.post, "/v1/senders", token: token, json: body)
                    expectProblem(reply, 400, "Validation.Failed")
                    #expect(reply["field"] == field, "\(body): \(reply.body)")
                }

                // Deleting: the domain is free again once its senders are gone.
                #expect(try await app.request(.delete, "/v1/senders/\(senderID)", token: token).status == 204)
                #expect(try await app.request(.delete, "/v1/domains/\(domainID)", token: token).status == 204)
                _ = pending
            }
        }
    }

    /// Reply-to confirmations are Herald's own mail to an address the tenant names, outside its quota: at most 5 an
    /// hour per sender and per tenant (HERALD_REPLY_TO_CONFIRMATIONS), counted in the database; beyond that the
    /// change is refused whole with 429 Throttling.ReplyToConfirmation and Retry-After.
    @Test func replyToConfirmationsAreLimitedPerSenderAndTenant() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await TestApp.run(dnsPort: dns.port) { app in
                let root = try await app.createTenant("Acme")
                let token = try await app.token(root.keyID, root.secret)
                let tenantID = try #require(UUID(uuidString: root.tenant))
                _ = try await app.verifiedDomain(dns, token: token, name: "mail.example.test")
                func confirmations() async throws -> Int { try await app.count("messages", tenant: root.tenant) }

                // Sender a: created with a reply-to (1), changed twice (3); sender b: created with one (4), resent once (5).
                let a = try await app.request(.post, "/v1/senders", token: token,
                                              json: ["address": "a@mail.example.test", "type": "trigger", "replyTo": "r0@example.org"])
                #expect(a.status == 201, "\(a.body)")
                let aID = try #require(a["id"])
                for index in 1...2 {
                    #expect(try await app.request(.patch, "/v1/senders/\(aID)", token: token, json: ["replyTo": "r\(index)@example.org"]).status == 200)
                }
                let b = try await app.request(.post, "/v1/senders", token: token,
                                              json: ["address": "b@mail.example.test", "type": "batch", "replyTo": "rb@example.org"])
                #expect(b.status == 201, "\(b.body)")
                let bID = try #require(b["id"])
                #expect(try await app.request(.post, "/v1/senders/\(bID)/reply-to/confirm", token: token).status == 200)
                #expect(try await confirmations() == 5)

                // The tenant's allowance is used up: b's next one (only its third) is refused, as are a's and a new sender's.
                let refused = try await app.request(.patch, "/v1/senders/\(bID)", token: token, json: ["replyTo": "other@example.org"])
                expectProblem(refused, 429, "Throttling.ReplyToConfirmation")
                let retryAfter = try #require(refused.headers[.retryAfter].flatMap { Int($0) })
                #expect((3590...3600).contains(retryAfter), "the oldest confirmation leaves the hour in about an hour: \(retryAfter)")
                expectProblem(try await app.request(.post, "/v1/senders/\(aID)/reply-to/confirm", token: token), 429, "Throttling.ReplyToConfirmation")
                expectProblem(try await app.request(.post, "/v1/senders", token: token,
                                                    json: ["address": "c@mail.example.test", "type": "trigger", "replyTo": "rc@example.org"]),
                              429, "Throttling.ReplyToConfirmation")
                // Nothing of a refused change is kept: b still waits for rb@, c does not exist, no sixth mail was queued.
                #expect(try await app.request(.get, "/v1/senders/\(bID)", token: token)["replyTo"] == "rb@example.org")
                #expect((try await app.request(.get, "/v1/senders", token: token).json["items"] as? [[String: Any]])?.count == 2)
                #expect(try await confirmations() == 5)
                // Changes that send no confirmation still work.
                #expect(try await app.request(.patch, "/v1/senders/\(aID)", token: token, json: ["replyTo": NSNull()]).status == 200)
                let c = try await app.request(.post, "/v1/senders", token: token, json: ["address": "c@mail.example.test", "type": "trigger"])
                #expect(c.status == 201, "\(c.body)")
                let cID = try #require(UUID(uuidString: c["id"] ?? ""))

                // The count is in the database: another store (as in another process, or after a restart) sees it. With a
                // larger tenant allowance, the per-sender one holds: two for c, and none for a, which had three this hour.
                var store = app.dependencies.senders
                store.confirmationLimit = ReplyToConfirmationLimit(perSender: 2, perTenant: 100)
                for index in 1...2 { _ = try await store.setReplyTo(tenantID: tenantID, id: cID, replyTo: "c\(index)@example.org", actor: .cli) }
                await #expect(throws: HeraldError.self) {
                    _ = try await store.setReplyTo(tenantID: tenantID, id: cID, replyTo: "c3@example.org", actor: .cli)
                }
                do {
                    _ = try await store.setReplyTo(tenantID: tenantID, id: try #require(UUID(uuidString: aID)), replyTo: "r3@example.org", actor: .cli)
                    Issue.record("a's fourth confirmation this hour went out")
                } catch let error as HeraldError {
                    #expect(error.code == "Throttling.ReplyToConfirmation" && error.kind == .throttled && (error.retryAfter ?? 0) > 0)
                }
                #expect(try await confirmations() == 7)
            }
        }
    }

    @Test func senderLimitsMonthlyDeletionsAndTags() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await TestApp.run(dnsPort: dns.port) { app in
                let root = try await app.createTenant("Acme")
                var token = try await app.token(root.keyID, root.secret)
                let (_, other) = try await app.rootToken("Other")
                _ = try await app.verifiedDomain(dns, token: token, name: "example.test")
                var ids: [String] = []
                for index in 1...10 {
                    let reply = try await app.request(.post, "/v1/senders", token: token, json: ["address": "s\(index)@example.test", "type": "trigger"])
                    #expect(reply.status == 201, "\(reply.body)")
                    ids.append(reply["id"] ?? "")
                }
                expectProblem(try await app.request(.post, "/v1/senders", token: token, json: ["address": "s11@example.test", "type": "trigger"]),
                              409, "Limit.Exceeded")
                expectProblem(try await app.request(.get, "/v1/senders/\(ids[0])", token: other), 404, "NotFound")
                expectProblem(try await app.request(.delete, "/v1/senders/\(ids[0])", token: other), 404, "NotFound")
                #expect((try await app.request(.get, "/v1/senders", token: other).json["items"] as? [Any])?.count == 0)

                // Enterprise tenants may delete 10 a month; the 11th is refused and the sender stays.
                for id in ids { #expect(try await app.request(.delete, "/v1/senders/\(id)", token: token).status == 204) }
                for index in 1...2 {
                    _ = try await app.request(.post, "/v1/senders", token: token, json: ["address": "again\(index)@example.test", "type": "batch"])
                }
                let remaining = (try await app.request(.get, "/v1/senders", token: token).json["items"] as? [[String: Any]] ?? [])
                #expect(remaining.count == 2)
                let refused = try await app.request(.delete, "/v1/senders/\(remaining[0]["id"] as? String ?? "")", token: token)
                expectProblem(refused, 409, "Limit.Exceeded")
                #expect((try await app.request(.get, "/v1/senders", token: token).json["items"] as? [Any])?.count == 2)
                // Next month the allowance is back.
                app.clock.advance(32 * 86_400)
                token = try await app.token(root.keyID, root.secret)
                #expect(try await app.request(.delete, "/v1/senders/\(remaining[0]["id"] as? String ?? "")", token: token).status == 204)
                let third = try await app.rootToken("Third").token

                // Tags.
                for index in 1...10 {
                    #expect(try await app.request(.post, "/v1/tags", token: token, json: ["name": "tag-\(index)"]).status == 201)
                }
                expectProblem(try await app.request(.post, "/v1/tags", token: token, json: ["name": "tag-11"]), 409, "Limit.Exceeded")
                expectProblem(try await app.request(.post, "/v1/tags", token: third, json: ["name": "bad name"]), 400, "Validation.Failed")
                expectProblem(try await app.request(.post, "/v1/tags", token: third, json: ["name": "-lead"]), 400, "Validation.Failed")
                #expect(try await app.request(.post, "/v1/tags", token: third, json: ["name": "tag-1"]).status == 201)
                expectProblem(try await app.request(.post, "/v1/tags", token: third, json: ["name": "tag-1"]), 409, "Tag.AlreadyExists")
                let tags = try await app.request(.get, "/v1/tags", token: token).json["items"] as? [[String: Any]] ?? []
                #expect(tags.count == 10)
                let first = tags[0]["id"] as? String ?? ""
                expectProblem(try await app.request(.delete, "/v1/tags/\(first)", token: third), 404, "NotFound")
                #expect(try await app.request(.delete, "/v1/tags/\(first)", token: token).status == 204)
            }
        }
    }
}

/// A public HTML page with the given status.
func expectHTML(_ reply: Reply, _ status: Int, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(reply.status == status, "\(reply.body)", sourceLocation: sourceLocation)
    #expect(reply.headers[.contentType]?.hasPrefix("text/html") == true, sourceLocation: sourceLocation)
    #expect(!reply.body.contains("<script"), sourceLocation: sourceLocation)
}
