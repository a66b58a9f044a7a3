import Foundation
import HTTPTypes
import HeraldAPI
import HeraldAppTestSupport
import HeraldCore
import HeraldTestSupport
import Testing
@testable import HeraldDelivery
@testable import HeraldStore

/// A domain that opted in to Ed25519 DKIM: accept → queue → worker → a real SMTP server (aiosmtpd); the mail
/// carries the RSA signature alone until the Ed25519 record is found, then both, and dkimpy verifies each one
/// against the records the API listed.
@Suite struct Ed25519DeliveryTests {
    static func isEd25519(_ record: [String: Any]) -> Bool { record["algorithm"] as? String == "ed25519" }

    /// The `a=` of every DKIM-Signature field of `data`, top first, and whether dkimpy verifies each (by index)
    /// with a DNS that serves `records` (the domain's published TXT records).
    static func signatures(_ data: String, records: [[String: Any]]) throws -> (algorithms: [String], verified: String) {
        let algorithms = data.split(whereSeparator: \.isNewline).filter { $0.hasPrefix("DKIM-Signature:") }.compactMap { line in
            line.range(of: "a=").map { String(line[$0.upperBound...].prefix { $0 != ";" }) }
        }
        let zone = Dictionary(records.compactMap { record -> (String, String)? in
            guard record["purpose"] as? String == "dkim", let host = record["host"] as? String, let value = record["value"] as? String else { return nil }
            return (host + ".", value)
        }) { first, _ in first }
        let (status, output) = try runPython("""
            import json, sys, dkim
            zone = {name.encode(): value.encode() for name, value in json.loads(sys.argv[1]).items()}
            def dns(name, timeout=5):
                return zone.get(name)
            def verified(message, index):
                try:
                    return dkim.DKIM(message).verify(idx=index, dnsfunc=dns)
                except dkim.DKIMException:  # what dkim.verify() turns into False
                    return False
            message = sys.stdin.buffer.read()
            print(" ".join("ok" if verified(message, i) else "fail" for i in range(int(sys.argv[2]))))
            """, [String(decoding: try JSONSerialization.data(withJSONObject: zone), as: UTF8.self), "\(algorithms.count)"], input: Array(data.utf8))
        #expect(status == 0, "\(output)")
        return (algorithms, output.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    @Test func deliveredMailCarriesBothSignaturesOnceTheEd25519RecordIsPublished() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await SMTPTestServer.with { peer in
                try await TestApp.run(dnsPort: dns.port) { app in
                    let (_, token) = try await app.rootToken("Acme")
                    let created = try await app.request(.post, "/v1/domains", token: token,
                                                        json: ["name": "example.test", "dkimKeyBits": 1024, "dkimEd25519": true])
                    #expect(created.status == 201, "\(created.body)")
                    let id = created["id"] ?? ""
                    let records = created.json["records"] as? [[String: Any]] ?? []
                    #expect(records.filter(Self.isEd25519).count == 1)
                    try dns.setZone(DNSTestServer.zone(publishing: records, except: Self.isEd25519))
                    #expect(try await app.request(.post, "/v1/domains/\(id)/verify", token: token)["status"] == "verified")
                    let sender = try await app.request(.post, "/v1/senders", token: token, json: ["address": "app@example.test", "type": "trigger"])
                    #expect(sender.status == 201, "\(sender.body)")
                    let worker = try app.deliveryWorker(dns: dns, smtp: peer)

                    // The Ed25519 record is not published yet: RSA alone, which verifies.
                    #expect(try await app.request(.post, "/v1/mail/single", token: token, json: TestApp.mail(to: ["jane@example.org"])).status == 200)
                    #expect(try await worker.runOnce() == 1)
                    let first = try #require(peer.received.first?.data)
                    let rsaOnly = try Self.signatures(first, records: records)
                    #expect(rsaOnly.algorithms == ["rsa-sha256"] && rsaOnly.verified == "ok", "\(rsaOnly)")

                    // Published and verified: both signatures, RSA on top, each verified by dkimpy.
                    try dns.setZone(DNSTestServer.zone(publishing: records))
                    let verified = try await app.request(.post, "/v1/domains/\(id)/verify", token: token)
                    #expect(verified["status"] == "verified", "\(verified.body)")
                    #expect(try await app.request(.post, "/v1/mail/single", token: token,
                                                  json: TestApp.mail(to: ["joe@example.org"], extra: ["fromAlias": "Acme"])).status == 200)
                    #expect(try await worker.runOnce() == 1)
                    let second = try #require(peer.received.first { $0.to == ["joe@example.org"] }?.data)
                    let both = try Self.signatures(second, records: records)
                    #expect(both.algorithms == ["rsa-sha256", "ed25519-sha256"] && both.verified == "ok ok", "\(both)\n\(second)")
                    // The existing check (dkimpy's first signature, against the RSA record) still holds.
                    try expectDKIMVerifies(second, record: records.first { $0["algorithm"] as? String == "rsa" }?["value"] as? String ?? "")
                }
            }
        }
    }

    /// A message submitted over SMTP goes out as submitted with Herald's fields on top: it is signed by the same
    /// signers, so it carries both fields too, and dkimpy verifies each.
    @Test func aSubmittedMessageIsSignedWithBothKeys() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await SMTPTestServer.with { peer in
                try await TestApp.run(dnsPort: dns.port) { app in
                    let worker = try app.deliveryWorker(dns: dns, smtp: peer)
                    let rsa = try DKIMKeyPair.generate(bits: 1024), ed25519 = DKIMEd25519Key.generate()
                    let raw = Array("From: Acme <app@example.test>\r\nTo: ann@example.org\r\nSubject: Invoice\r\n\r\nYour invoice.\r\n".utf8)
                    let mail = try OutgoingMail(ClaimedMessage(id: UUID(), tenantID: UUID(), kind: .trigger, from: "app@example.test", fromName: nil,
                                                               to: "ann@example.org", replyTo: nil, subject: "Invoice", html: nil, text: nil, headers: [],
                                                               attempts: 0, createdAt: app.clock.now(), raw: raw))
                    let built = try worker.build(mail, keys: [mail.sendingDomain: [DKIM.Signer(selector: "s1", key: rsa),
                                                                                   DKIM.Signer(selector: "s1-ed25519", key: ed25519)]])
                    let records: [[String: Any]] = [
                        ["purpose": "dkim", "host": "s1._domainkey.example.test", "value": "v=DKIM1; k=rsa; p=\(rsa.publicKeyBase64)"],
                        ["purpose": "dkim", "host": "s1-ed25519._domainkey.example.test", "value": "v=DKIM1; k=ed25519; p=\(ed25519.publicKeyBase64)"],
                    ]
                    let text = String(decoding: built, as: UTF8.self)
                    #expect(text.hasSuffix("Subject: Invoice\r\n\r\nYour invoice.\r\n"))
                    let both = try Self.signatures(text, records: records)
                    #expect(both.algorithms == ["rsa-sha256", "ed25519-sha256"] && both.verified == "ok ok", "\(both)\n\(text)")
                }
            }
        }
    }
}
