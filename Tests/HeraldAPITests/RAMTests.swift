import Foundation
import HTTPTypes
import HeraldAPI
import HeraldAppTestSupport
import HeraldCore
import HeraldTestSupport
import Testing

/// RAM holes a sub-user could use to get around its tenant's Deny statements (issue 14, "Trust").
@Suite struct RAMTests {
    /// A sub-user of the root token's tenant with a custom policy of `statements`, and a token and AccessKey of its own.
    static func subUser(_ app: TestApp, root: String, name: String, statements: [[String: Any]])
        async throws -> (id: String, token: String, keyID: String, secret: String) {
        let user = try #require(try await app.request(.post, "/v1/users", token: root, json: ["name": name])["id"])
        let policy = try await app.request(.post, "/v1/policies", token: root, json: ["name": "P-\(name)", "document": ["Statement": statements]])
        #expect(policy.status == 201, "\(policy.body)")
        #expect(try await app.request(.post, "/v1/users/\(user)/policies", token: root, json: ["policy": "P-\(name)"]).status == 200)
        let key = try await app.request(.post, "/v1/users/\(user)/access-keys", token: root)
        let keyID = try #require(key["accessKeyId"]), secret = try #require(key["accessKeySecret"])
        return (user, try await app.token(keyID, secret), keyID, secret)
    }

    static var allowAll: [String: Any] { ["Effect": "Allow", "Action": "*", "Resource": "*"] }

    /// A Deny on one domain holds however the request writes the domain's id: lower or upper case, or
    /// percent-encoded; the same user reaches another domain through the same spellings.
    @Test func denyOnOneDomainHoldsHoweverItsIdIsWritten() async throws {
        try await TestApp.run { app in
            let (tenant, root) = try await app.rootToken()
            let secret = try #require(try await app.request(.post, "/v1/domains", token: root, json: ["name": "secret.test", "dkimKeyBits": 1024])["id"])
            let open = try #require(try await app.request(.post, "/v1/domains", token: root, json: ["name": "open.test", "dkimKeyBits": 1024])["id"])
            // The Deny is written with the id in upper case (as Swift's UUID().uuidString prints it): it holds too.
            for (name, denied) in [("lower", secret), ("upper", secret.uppercased())] {
                let user = try await Self.subUser(app, root: root, name: name, statements: [
                    Self.allowAll, ["Effect": "Deny", "Action": "dm:*", "Resource": "acs:dm:*:\(tenant):domain/\(denied)"],
                ])
                let encoded = "%" + String(format: "%02X", Character(String(secret.prefix(1))).asciiValue ?? 0) + secret.dropFirst()
                for written in [secret, secret.uppercased(), encoded, "%" + String(format: "%02x", Character(String(secret.prefix(1))).asciiValue ?? 0)
                                + secret.uppercased().dropFirst()] {
                    expectProblem(try await app.request(.get, "/v1/domains/\(written)", token: user.token), 403, "Forbidden.RAM")
                    expectProblem(try await app.request(.post, "/v1/domains/\(written)/verify", token: user.token), 403, "Forbidden.RAM")
                    expectProblem(try await app.request(.post, "/v1/domains/\(written)/dkim/rotate", token: user.token), 403, "Forbidden.RAM")
                    expectProblem(try await app.request(.delete, "/v1/domains/\(written)", token: user.token), 403, "Forbidden.RAM")
                }
                for written in [open, open.uppercased()] {
                    let reply = try await app.request(.get, "/v1/domains/\(written)", token: user.token)
                    #expect(reply.status == 200 && reply["name"] == "open.test", "\(reply.body)")
                }
            }
            #expect(try await app.request(.get, "/v1/domains/\(secret)", token: root).status == 200, "the denied domain is still there")
        }
    }

    /// Sends are checked against the sender address and its domain (`sender/<id>`, `domain/<id>`), on REST and on the
    /// Direct Mail compatibility endpoint: a Deny on either refuses the send with Forbidden.RAM and queues nothing.
    @Test func sendsAreCheckedAgainstTheSenderAndItsDomain() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await TestApp.run(dnsPort: dns.port) { app in
                let (tenant, root, _, _) = try await app.sendingTenant(dns)
                try await app.setGrade(tenant: tenant, 3)
                let (batch, _) = try await UnsubscribeTests.batchSetup(app, token: root)
                let senders = try #require(try await app.request(.get, "/v1/senders", token: root).json["items"] as? [[String: Any]])
                let app_ = try #require(senders.first { $0["address"] as? String == "app@example.test" })
                let senderID = try #require(app_["id"] as? String), domainID = try #require(app_["domainId"] as? String)
                let send = TestApp.mail(to: ["ann@example.org"])

                let senderDenied = try await Self.subUser(app, root: root, name: "no-app-sender", statements: [
                    Self.allowAll, ["Effect": "Deny", "Action": "dm:SingleSendMail", "Resource": "acs:dm:*:\(tenant):sender/\(senderID)"],
                ])
                let domainDenied = try await Self.subUser(app, root: root, name: "no-domain", statements: [
                    Self.allowAll, ["Effect": "Deny", "Action": "dm:*SendMail", "Resource": "acs:dm:*:\(tenant):domain/\(domainID.uppercased())"],
                ])
                let allowed = try await Self.subUser(app, root: root, name: "sender", statements: [
                    Self.allowAll, ["Effect": "Deny", "Action": "dm:*", "Resource": "acs:dm:*:\(tenant):sender/00000000-0000-7000-8000-000000000000"],
                ])
                expectProblem(try await app.request(.post, "/v1/mail/single", token: senderDenied.token, json: send), 403, "Forbidden.RAM")
                expectProblem(try await app.request(.post, "/v1/mail/single", token: domainDenied.token, json: send), 403, "Forbidden.RAM")
                expectProblem(try await app.request(.post, "/v1/mail/batch", token: domainDenied.token, json: batch), 403, "Forbidden.RAM")
                #expect(try await app.count("messages", tenant: tenant) == 0)
                #expect(try await app.count("tasks", tenant: tenant) == 0)
                // The sender Deny is on app@ only: the same user's batch from news@ goes.
                #expect(try await app.request(.post, "/v1/mail/batch", token: senderDenied.token, json: batch).status == 202)
                let sent = try await app.request(.post, "/v1/mail/single", token: allowed.token, json: send)
                #expect(sent.status == 200, "a Deny on another sender does not apply: \(sent.body)")
                #expect(try await app.count("messages", tenant: tenant) == 1)

                // The compatibility endpoint's SingleSendMail and BatchSendMail, signed with the sub-users' keys.
                let output = try await DirectMailCompatTests.sdk(app, keyID: senderDenied.keyID, secret: senderDenied.secret, algorithm: nil, """
                    single = models.SingleSendMailRequest(account_name="app@example.test", address_type=1, reply_to_address=False,
                                                          to_address="ben@example.org", subject="Hello", text_body="Hi")
                    batch = models.BatchSendMailRequest(account_name="news@example.test", address_type=1, template_name="newsletter",
                                                        receivers_name="readers")
                    attempt(lambda: client.single_send_mail(single))
                    other = make("\(domainDenied.keyID)", "\(domainDenied.secret)")
                    attempt(lambda: other.single_send_mail(single))
                    attempt(lambda: other.batch_send_mail(batch))
                    fine = make("\(allowed.keyID)", "\(allowed.secret)")
                    attempt(lambda: fine.single_send_mail(single))
                    """)
                let lines = output.split(separator: "\n").map(String.init)
                #expect(lines.count == 4, "\(output)")
                for line in lines.prefix(3) { #expect(line.hasPrefix("error Forbidden.RAM"), "\(output)") }
                #expect(lines.last?.hasPrefix("ok ") == true, "\(output)")
                #expect(try await app.count("messages", tenant: tenant) == 2, "only the allowed user's sends were queued")
                #expect(try await app.count("tasks", tenant: tenant) == 1)
            }
        }
    }

    /// Only the root user manages the root user: a sub-user allowed everything still cannot create, list or
    /// delete root's AccessKeys, attach or detach root's policies, or disable or delete root.
    @Test func onlyTheRootUserManagesTheRootUser() async throws {
        try await TestApp.run { app in
            let created = try await app.createTenant("Acme")
            let root = try await app.token(created.keyID, created.secret)
            let users = try #require(try await app.request(.get, "/v1/users", token: root).json["items"] as? [[String: Any]])
            let rootID = try #require(users.first { $0["root"] as? Bool == true }?["id"] as? String)
            let admin = try await Self.subUser(app, root: root, name: "admin", statements: [Self.allowAll])
            let policy = ["policy": "FullAccess"]

            for id in [rootID, rootID.uppercased()] {
                expectProblem(try await app.request(.post, "/v1/users/\(id)/access-keys", token: admin.token), 403, "Forbidden.RootUser")
                expectProblem(try await app.request(.get, "/v1/users/\(id)/access-keys", token: admin.token), 403, "Forbidden.RootUser")
                expectProblem(try await app.request(.delete, "/v1/users/\(id)/access-keys/\(created.keyID)", token: admin.token), 403, "Forbidden.RootUser")
                expectProblem(try await app.request(.post, "/v1/users/\(id)/policies", token: admin.token, json: policy), 403, "Forbidden.RootUser")
                expectProblem(try await app.request(.delete, "/v1/users/\(id)/policies/FullAccess", token: admin.token), 403, "Forbidden.RootUser")
                expectProblem(try await app.request(.patch, "/v1/users/\(id)", token: admin.token, json: ["enabled": false]), 403, "Forbidden.RootUser")
                expectProblem(try await app.request(.delete, "/v1/users/\(id)", token: admin.token), 403, "Forbidden.RootUser")
            }
            // Nothing changed: root's only key still works and root has no new key.
            let keys = try await app.request(.get, "/v1/users/\(rootID)/access-keys", token: root)
            #expect((keys.json["items"] as? [[String: Any]])?.count == 1, "\(keys.body)")
            #expect(try await app.token(created.keyID, created.secret).isEmpty == false)
            // Reading the root user is fine, and the sub-user still manages itself and other sub-users.
            #expect(try await app.request(.get, "/v1/users/\(rootID)", token: admin.token).status == 200)
            #expect(try await app.request(.post, "/v1/users/\(admin.id)/access-keys", token: admin.token).status == 201)
            let other = try #require(try await app.request(.post, "/v1/users", token: admin.token, json: ["name": "other"])["id"])
            #expect(try await app.request(.post, "/v1/users/\(other)/access-keys", token: admin.token).status == 201)
            #expect(try await app.request(.post, "/v1/users/\(other)/policies", token: admin.token, json: policy).status == 200)
            // The root user manages itself.
            #expect(try await app.request(.post, "/v1/users/\(rootID)/access-keys", token: root).status == 201)
            // The refusals are in the audit log with their code.
            let audit = try await app.request(.get, "/v1/audit-log?action=dm:CreateAccessKey", token: root)
            let refused = (audit.json["items"] as? [[String: Any]] ?? []).filter { $0["result"] as? String == "Forbidden.RootUser" }
            #expect(refused.count == 2, "\(audit.body)")
        }
    }
}
