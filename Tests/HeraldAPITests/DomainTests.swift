import Foundation
import HTTPTypes
import HeraldAPI
import HeraldAppTestSupport
import HeraldCore
import HeraldStore
import HeraldTestSupport
import Testing

/// Sending domains end to end, against a real DNS server on 127.0.0.1 (dnslib) with real packets.
@Suite struct DomainTests {
    static func records(_ reply: Reply) -> [[String: Any]] { reply.json["records"] as? [[String: Any]] ?? [] }

    static func statuses(_ reply: Reply) -> [String: String] {
        Dictionary(records(reply).map { ("\($0["purpose"] as? String ?? "")\(($0["selector"] as? String).map { ":" + $0 } ?? "")", $0["status"] as? String ?? "") },
                   uniquingKeysWith: { a, _ in a })
    }

    @Test func publishVerifyBreakRotateAndRecheck() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await TestApp.run(dnsPort: dns.port) { app in
                let root = try await app.createTenant("Acme")
                var token = try await app.token(root.keyID, root.secret)
                let tenantID = try #require(UUID(uuidString: root.tenant))
                let created = try await app.request(.post, "/v1/domains", token: token, json: ["name": "Mail.Example.TEST"])
                #expect(created.status == 201, "\(created.body)")
                #expect(created["name"] == "mail.example.test" && created["status"] == "pending")
                let id = created["id"] ?? ""
                let records = Self.records(created)
                #expect(records.map { $0["purpose"] as? String ?? "" } == ["ownership", "spf", "dkim", "dmarc", "return_path", "return_path_spf"])
                #expect(records.allSatisfy { $0["status"] as? String == "pending" })
                #expect(records[1]["value"] as? String == "v=spf1 include:_spf.herald.test -all")
                #expect(records[4]["host"] as? String == "bounces.mail.example.test" && records[4]["value"] as? String == "10 bounces.herald.test")

                // The DKIM record's key is a 2048-bit RSA public key, as an independent library reads it.
                let dkim = records[2]["value"] as? String ?? ""
                #expect(dkim.hasPrefix("v=DKIM1; k=rsa; p="))
                let (status, bits) = try runPython("""
                    import base64, sys
                    from cryptography.hazmat.primitives.serialization import load_der_public_key
                    print(load_der_public_key(base64.b64decode(sys.argv[1])).key_size)
                    """, [String(dkim.dropFirst("v=DKIM1; k=rsa; p=".count))])
                #expect(status == 0 && bits.trimmingCharacters(in: .whitespacesAndNewlines) == "2048", "\(bits)")

                // Nothing published yet: every record missing, still pending.
                let unpublished = try await app.request(.post, "/v1/domains/\(id)/verify", token: token)
                #expect(unpublished["status"] == "pending")
                #expect(Set(Self.statuses(unpublished).values) == ["missing"], "\(unpublished.body)")

                // Publish exactly what was returned: verified.
                try dns.setZone(DNSTestServer.zone(publishing: records))
                let verified = try await app.request(.post, "/v1/domains/\(id)/verify", token: token)
                #expect(verified["status"] == "verified", "\(verified.body)")
                #expect(Set(Self.statuses(verified).values) == ["ok"], "\(verified.body)")
                #expect(verified["verifiedAt"] != nil)
                // Delivery can now sign with the domain's key.
                let signing = try await app.dependencies.domains.signingKey(tenantID: tenantID, domain: "mail.example.test")
                #expect(signing?.selector == records[2]["selector"] as? String)
                #expect(signing?.key.bits == 2048)

                // The DKIM record disappears: mismatch/missing reported, the domain is no longer usable.
                try dns.setZone(DNSTestServer.zone(publishing: records, except: { $0["purpose"] as? String == "dkim" }))
                let broken = try await app.request(.post, "/v1/domains/\(id)/verify", token: token)
                #expect(broken["status"] == "failing", "\(broken.body)")
                #expect(Self.statuses(broken).first { $0.key.hasPrefix("dkim") }?.value == "missing")
                #expect(try await app.dependencies.domains.signingKey(tenantID: tenantID, domain: "mail.example.test") == nil)
                // A wrong key at the selector is a mismatch, and says what was found.
                try dns.setZone(DNSTestServer.zone(publishing: records.map { record in
                    var record = record
                    if record["purpose"] as? String == "dkim" { record["value"] = "v=DKIM1; k=rsa; p=AAAA" }
                    return record
                }))
                let mismatched = try await app.request(.post, "/v1/domains/\(id)/verify", token: token)
                let dkimCheck = Self.records(mismatched).first { $0["purpose"] as? String == "dkim" }
                #expect(dkimCheck?["status"] as? String == "mismatch")
                #expect((dkimCheck?["found"] as? [String]) == ["v=DKIM1; k=rsa; p=AAAA"])

                // Rotation: the old key signs until the new record verifies, then retires.
                try dns.setZone(DNSTestServer.zone(publishing: records))
                #expect(try await app.request(.post, "/v1/domains/\(id)/verify", token: token)["status"] == "verified")
                let rotating = try await app.request(.post, "/v1/domains/\(id)/dkim/rotate", token: token, json: ["dkimKeyBits": 1024])
                #expect(rotating.status == 200, "\(rotating.body)")
                let keys = rotating.json["dkimKeys"] as? [[String: Any]] ?? []
                #expect(keys.map { $0["state"] as? String ?? "" } == ["active", "pending"])
                let newSelector = keys[1]["selector"] as? String ?? ""
                expectProblem(try await app.request(.post, "/v1/domains/\(id)/dkim/rotate", token: token), 409, "Domain.RotationPending")
                let stillOld = try await app.request(.post, "/v1/domains/\(id)/verify", token: token)
                #expect(stillOld["status"] == "verified")
                #expect(Self.statuses(stillOld)["dkim:\(newSelector)"] == "missing")
                try dns.setZone(DNSTestServer.zone(publishing: Self.records(stillOld)))
                let rotated = try await app.request(.post, "/v1/domains/\(id)/verify", token: token)
                let rotatedKeys = rotated.json["dkimKeys"] as? [[String: Any]] ?? []
                #expect(rotatedKeys.map { $0["state"] as? String ?? "" } == ["retired", "active"], "\(rotated.body)")
                #expect(Self.records(rotated).filter { $0["purpose"] as? String == "dkim" }.map { $0["selector"] as? String } == [newSelector])
                #expect(rotated["status"] == "verified")

                // Periodic re-verification: a day later the records are gone and the domain is failing.
                try dns.setZone([:])
                #expect(try await app.dependencies.verifier.recheckDue() == 0)
                app.clock.advance(86_401)
                token = try await app.token(root.keyID, root.secret)
                #expect(try await app.dependencies.verifier.recheckDue() == 1)
                #expect(try await app.request(.get, "/v1/domains/\(id)", token: token)["status"] == "failing")
                #expect(try await app.dependencies.verifier.recheckDue() == 0)

                // The audit log has the story.
                let audit = try await app.request(.get, "/v1/audit-log?limit=100", token: token)
                let actions = (audit.json["items"] as? [[String: Any]] ?? []).compactMap { $0["action"] as? String }
                #expect(actions.contains("dm:CreateDomain") && actions.contains("dm:CheckDomain") && actions.contains("dm:RotateDomainDkim"))

                #expect(try await app.request(.delete, "/v1/domains/\(id)", token: token).status == 204)
                expectProblem(try await app.request(.get, "/v1/domains/\(id)", token: token), 404, "NotFound")
                #expect(dns.log.contains("udp _herald.mail.example.test TXT"))
            }
        }
    }

    @Test func limitsBadInputAndIsolation() async throws {
        try await TestApp.run { app in
            let (_, token) = try await app.rootToken("A")
            let (_, other) = try await app.rootToken("B")
            var ids: [String] = []
            for index in 1...5 {
                let reply = try await app.request(.post, "/v1/domains", token: token, json: ["name": "d\(index).example.test", "dkimKeyBits": 1024])
                #expect(reply.status == 201, "\(reply.body)")
                ids.append(reply["id"] ?? "")
            }
            expectProblem(try await app.request(.post, "/v1/domains", token: token, json: ["name": "d6.example.test", "dkimKeyBits": 1024]),
                          409, "Limit.Exceeded")
            expectProblem(try await app.request(.delete, "/v1/domains/\(ids[0])", token: other), 404, "NotFound")
            expectProblem(try await app.request(.get, "/v1/domains/\(ids[0])", token: other), 404, "NotFound")
            #expect(try await app.request(.delete, "/v1/domains/\(ids[0])", token: token).status == 204)
            expectProblem(try await app.request(.post, "/v1/domains", token: token, json: ["name": "d2.example.test", "dkimKeyBits": 1024]),
                          409, "Domain.AlreadyExists")
            for bad in ["localhost", "-bad.example.com", "ex ample.com", "例子.中国", "1.2.3.4", String(repeating: "a", count: 64) + ".com"] {
                let reply = try await app.request(.post, "/v1/domains", token: token, json: ["name": bad])
                expectProblem(reply, 400, "Validation.Failed")
                #expect(reply["field"] == "name", "\(bad): \(reply.body)")
            }
            let weakKey = try await app.request(.post, "/v1/domains", token: token, json: ["name": "weak.example.test", "dkimKeyBits": 512])
            expectProblem(weakKey, 400, "Validation.Failed")
            #expect(weakKey["field"] == "dkimKeyBits", "\(weakKey.body)")
            let listed = try await app.request(.get, "/v1/domains", token: token)
            #expect((listed.json["items"] as? [Any])?.count == 4)
            #expect((try await app.request(.get, "/v1/domains", token: other).json["items"] as? [Any])?.count == 0)
            // A DNS server that does not answer is an error for each record, not "missing".
            let unreachable = try await app.request(.post, "/v1/domains/\(ids[1])/verify", token: token)
            #expect(Set(Self.statuses(unreachable).values) == ["error"], "\(unreachable.body)")
            #expect(unreachable["status"] == "pending")
        }
    }
}
