import Foundation
import HTTPTypes
import HeraldAPI
import HeraldAppTestSupport
import HeraldCore
import HeraldStore
import HeraldTestSupport
import NIOCore
import PostgresNIO
import Testing

/// The opt-in Ed25519 DKIM key (RFC 8463) of a sending domain, through the API, against the real database and a
/// real DNS server on 127.0.0.1 (dnslib).
@Suite struct DomainEd25519Tests {
    static func records(_ reply: Reply) -> [[String: Any]] { reply.json["records"] as? [[String: Any]] ?? [] }
    static func keys(_ reply: Reply) -> [[String: Any]] { reply.json["dkimKeys"] as? [[String: Any]] ?? [] }
    static func isEd25519(_ record: [String: Any]) -> Bool { record["algorithm"] as? String == "ed25519" }
    static func status(_ reply: Reply, selector: String) -> String? {
        records(reply).first { $0["selector"] as? String == selector }?["status"] as? String
    }

    @Test func optInVerifySignRotateAndOptOut() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await TestApp.run(dnsPort: dns.port) { app in
                let (tenant, token) = try await app.rootToken("Acme")
                let tenantID = try #require(UUID(uuidString: tenant))
                func signing() async throws -> [String] {
                    try await app.dependencies.domains.sending(tenantID: tenantID, domain: "mail.example.test").keys.map { "\($0.algorithm.rawValue):\($0.selector)" }
                }
                let created = try await app.request(.post, "/v1/domains", token: token,
                                                    json: ["name": "mail.example.test", "dkimKeyBits": 1024, "dkimEd25519": true])
                #expect(created.status == 201, "\(created.body)")
                #expect(created.json["dkimEd25519"] as? Bool == true)
                let id = created["id"] ?? ""
                let records = Self.records(created)
                #expect(records.map { $0["purpose"] as? String ?? "" } == ["ownership", "spf", "dkim", "dkim", "dmarc", "return_path", "return_path_spf"])
                let rsaRecord = try #require(records.first { $0["algorithm"] as? String == "rsa" })
                let edRecord = try #require(records.first(where: Self.isEd25519))
                #expect(rsaRecord["required"] as? Bool == true && edRecord["required"] as? Bool == false)
                let edSelector = try #require(edRecord["selector"] as? String)
                let rsaSelector = try #require(rsaRecord["selector"] as? String)
                #expect(edSelector.hasSuffix("-ed25519") && edSelector != rsaSelector)
                #expect(edRecord["host"] as? String == "\(edSelector)._domainkey.mail.example.test")
                // p= is the raw 32-byte public key, as an independent library (PyNaCl, dkimpy's) reads it.
                let edValue = try #require(edRecord["value"] as? String)
                #expect(edValue.hasPrefix("v=DKIM1; k=ed25519; p="))
                let (status, length) = try runPython("""
                    import base64, sys
                    from nacl.signing import VerifyKey
                    print(len(VerifyKey(base64.b64decode(sys.argv[1])).encode()))
                    """, [String(edValue.dropFirst("v=DKIM1; k=ed25519; p=".count))])
                #expect(status == 0 && length == "32\n", "\(length)")
                let keys = Self.keys(created)
                #expect(keys.map { $0["algorithm"] as? String ?? "" } == ["rsa", "ed25519"])
                #expect(keys.map { $0["bits"] as? Int ?? 0 } == [1024, 256])
                #expect(keys.map { $0["state"] as? String ?? "" } == ["active", "active"])

                // Only the RSA records published: verified all the same, and RSA alone signs.
                try dns.setZone(DNSTestServer.zone(publishing: records, except: Self.isEd25519))
                let rsaOnly = try await app.request(.post, "/v1/domains/\(id)/verify", token: token)
                #expect(rsaOnly["status"] == "verified", "\(rsaOnly.body)")
                #expect(Self.status(rsaOnly, selector: edSelector) == "missing")
                #expect(try await signing() == ["rsa:\(rsaSelector)"])

                // The Ed25519 record published: both sign, RSA first.
                try dns.setZone(DNSTestServer.zone(publishing: records))
                let both = try await app.request(.post, "/v1/domains/\(id)/verify", token: token)
                #expect(both["status"] == "verified" && Self.status(both, selector: edSelector) == "ok", "\(both.body)")
                #expect(try await signing() == ["rsa:\(rsaSelector)", "ed25519:\(edSelector)"])

                // Published without k=ed25519 (so verifiers would read it as RSA): a mismatch, RSA alone signs, still verified.
                try dns.setZone(DNSTestServer.zone(publishing: records.map { record in
                    var record = record
                    if Self.isEd25519(record) { record["value"] = edValue.replacingOccurrences(of: "k=ed25519; ", with: "") }
                    return record
                }))
                let mismatched = try await app.request(.post, "/v1/domains/\(id)/verify", token: token)
                #expect(mismatched["status"] == "verified" && Self.status(mismatched, selector: edSelector) == "mismatch", "\(mismatched.body)")
                #expect(try await signing() == ["rsa:\(rsaSelector)"])

                // RSA rotation leaves the Ed25519 key as it is.
                try dns.setZone(DNSTestServer.zone(publishing: records))
                _ = try await app.request(.post, "/v1/domains/\(id)/verify", token: token)
                let rotating = try await app.request(.post, "/v1/domains/\(id)/dkim/rotate", token: token, json: ["dkimKeyBits": 1024])
                #expect(rotating.status == 200, "\(rotating.body)")
                #expect(Self.keys(rotating).map { "\($0["algorithm"] as? String ?? ""):\($0["state"] as? String ?? "")" }
                    == ["rsa:active", "ed25519:active", "rsa:pending"])
                try dns.setZone(DNSTestServer.zone(publishing: Self.records(rotating)))
                let rotated = try await app.request(.post, "/v1/domains/\(id)/verify", token: token)
                let newRSA = try #require(Self.keys(rotated).last?["selector"] as? String)
                #expect(Self.keys(rotated).map { "\($0["algorithm"] as? String ?? ""):\($0["state"] as? String ?? "")" }
                    == ["rsa:retired", "ed25519:active", "rsa:active"], "\(rotated.body)")
                #expect(try await signing() == ["rsa:\(newRSA)", "ed25519:\(edSelector)"])

                // Opting in again changes nothing; opting out retires the key and its record leaves the list.
                let again = try await app.request(.patch, "/v1/domains/\(id)", token: token, json: ["dkimEd25519": true])
                #expect(again.status == 200 && Self.keys(again).count == 3, "\(again.body)")
                let off = try await app.request(.patch, "/v1/domains/\(id)", token: token, json: ["dkimEd25519": false])
                #expect(off.status == 200 && off.json["dkimEd25519"] as? Bool == false, "\(off.body)")
                #expect(Self.keys(off).first { $0["selector"] as? String == edSelector }?["state"] as? String == "retired")
                #expect(!Self.records(off).contains(where: Self.isEd25519))
                #expect(try await signing() == ["rsa:\(newRSA)"])
                #expect(try await app.request(.patch, "/v1/domains/\(id)", token: token, json: ["dkimEd25519": false]).status == 200)
                #expect(try await app.request(.post, "/v1/domains/\(id)/verify", token: token)["status"] == "verified")

                // Opting in later: a new key under a new selector, signing once its record is found.
                let on = try await app.request(.patch, "/v1/domains/\(id)", token: token, json: ["dkimEd25519": true])
                let newEd = try #require(Self.records(on).first(where: Self.isEd25519)?["selector"] as? String)
                #expect(newEd != edSelector && on.json["dkimEd25519"] as? Bool == true)
                #expect(try await signing() == ["rsa:\(newRSA)"])
                try dns.setZone(DNSTestServer.zone(publishing: Self.records(on)))
                #expect(Self.status(try await app.request(.post, "/v1/domains/\(id)/verify", token: token), selector: newEd) == "ok")
                #expect(try await signing() == ["rsa:\(newRSA)", "ed25519:\(newEd)"])

                // The private key is stored sealed, never in clear.
                let stored = try await app.dependencies.database.withSystem { connection in
                    try await connection.query("SELECT private_key FROM dkim_keys WHERE selector = \(newEd)", logger: app.dependencies.database.logger)
                        .decode(ByteBuffer.self).first { _ in true }
                }
                let sealed = try #require(stored)
                #expect(sealed.readableBytes > 32)

                let audit = try await app.request(.get, "/v1/audit-log?limit=100", token: token)
                let actions = (audit.json["items"] as? [[String: Any]] ?? []).compactMap { $0["action"] as? String }
                #expect(actions.filter { $0 == "dm:UpdateDomain" }.count == 2, "\(actions)")
            }
        }
    }

    @Test func badInputAndIsolation() async throws {
        try await TestApp.run { app in
            let (_, token) = try await app.rootToken("A")
            let (_, other) = try await app.rootToken("B")
            let plain = try await app.request(.post, "/v1/domains", token: token, json: ["name": "plain.example.test", "dkimKeyBits": 1024])
            #expect(plain.status == 201 && plain.json["dkimEd25519"] as? Bool == false, "\(plain.body)")
            #expect(Self.keys(plain).map { $0["algorithm"] as? String ?? "" } == ["rsa"])
            #expect(Self.records(plain).filter { $0["purpose"] as? String == "dkim" }.map { $0["algorithm"] as? String } == ["rsa"])
            let id = plain["id"] ?? ""
            for body: [String: Any] in [["dkimEd25519": "yes"], ["dkimEd25519": 1], ["dkimEd25519": NSNull()], [:], ["dkimEd25519": true, "extra": 1]] {
                let reply = try await app.request(.patch, "/v1/domains/\(id)", token: token, json: body)
                expectProblem(reply, 400, "Validation.Failed")
            }
            expectProblem(try await app.request(.patch, "/v1/domains/\(id)", token: token, raw: "{", contentType: "application/json"), 400, "Validation.Failed")
            expectProblem(try await app.request(.patch, "/v1/domains/not-a-uuid", token: token, json: ["dkimEd25519": true]), 404, "NotFound")
            expectProblem(try await app.request(.patch, "/v1/domains/\(UUID().uuidString)", token: token, json: ["dkimEd25519": true]), 404, "NotFound")
            // Another tenant's domain is not found, and stays as it was.
            expectProblem(try await app.request(.patch, "/v1/domains/\(id)", token: other, json: ["dkimEd25519": true]), 404, "NotFound")
            #expect(try await app.request(.get, "/v1/domains/\(id)", token: token).json["dkimEd25519"] as? Bool == false)
            let badCreate = try await app.request(.post, "/v1/domains", token: token, json: ["name": "ed.example.test", "dkimEd25519": "yes"])
            expectProblem(badCreate, 400, "Validation.Failed")
            #expect((try await app.request(.get, "/v1/domains", token: token).json["items"] as? [Any])?.count == 1)
        }
    }
}
