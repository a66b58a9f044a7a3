import Crypto
import Foundation
import HeraldCore
import HeraldTestSupport
import Testing

/// Ed25519 DKIM (RFC 8463): the signature against the RFC's own example, two signatures on one message
/// verified by dkimpy, the records and checks of an Ed25519 key, and which keys sign.
@Suite struct DKIMEd25519Tests {
    /// RFC 8463 Appendix A: the example key (A.1), and the header fields and body of the signed message (A.3).
    static let rfcKey = Data(base64Encoded: "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=")!
    static let rfcPublicKey = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
    static let rfcFields = ["From: Joe SixPack <joe@football.example.com>", "To: Suzie Q <suzie@shopping.example.net>",
                            "Subject: Is dinner ready?", "Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)",
                            "Message-ID: <20030712040037.46341.5F8J@football.example.com>"]
    static let rfcBody = "Hi.\r\n\r\nWe lost the game.  Are you hungry yet?\r\n\r\nJoe.\r\n"
    static let rfcUnsigned = "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n d=football.example.com; i=@football.example.com;\r\n"
        + " q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r\n subject : date : message-id : from : subject : date;\r\n"
        + " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n b="
    static let rfcSignature = "/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11BusFa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw=="

    /// Our canonicalization and our key's signing (Ed25519 over the SHA-256 of the header data) give the RFC's
    /// body hash and, Ed25519 being deterministic, its very `b=`; dkimpy verifies the message we rebuild with it.
    @Test func reproducesRFC8463AppendixA() throws {
        let key = try DKIMEd25519Key(rawRepresentation: Array(Self.rfcKey))
        #expect(key.publicKeyBase64 == Self.rfcPublicKey)
        #expect(key.algorithm == .ed25519 && key.algorithm.signatureTag == "ed25519-sha256")
        #expect(Data(SHA256.hash(data: DKIM.relaxedBody(ArraySlice(Array(Self.rfcBody.utf8))))).base64EncodedString()
            == "2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=")
        // h=from:to:subject:date:message-id, then from, subject and date again: absent, so they add nothing.
        var data: [UInt8] = []
        for field in Self.rfcFields { data += DKIM.relaxedHeader(Array(field.utf8)) + [13, 10] }
        data += DKIM.relaxedHeader(Array(Self.rfcUnsigned.utf8))
        let signature = try key.sign(data)
        #expect(key.privateKey.publicKey.isValidSignature(signature, for: Array(SHA256.hash(data: data))))
        #if !canImport(Darwin)
        // BoringSSL's Ed25519 is RFC 8032's deterministic one (CryptoKit on Apple systems adds randomness).
        #expect(Data(signature).base64EncodedString() == Self.rfcSignature)
        #endif
        let message = Self.rfcUnsigned + Data(signature).base64EncodedString() + "\r\n" + Self.rfcFields.joined(separator: "\r\n") + "\r\n\r\n" + Self.rfcBody
        let (status, output) = try runPython("""
            import sys, dkim
            record = ("v=DKIM1; k=ed25519; p=" + sys.argv[1]).encode()
            def dns(name, timeout=5):
                return record if name == b"brisbane._domainkey.football.example.com." else None
            print("ok" if dkim.verify(sys.stdin.buffer.read(), dnsfunc=dns) else "fail")
            """, [Self.rfcPublicKey], input: Array(message.utf8))
        #expect(status == 0 && output == "ok\n", "\(output)")
    }

    /// One `DKIM.sign` with an RSA and an Ed25519 key: two fields, RSA on top, the same `h=`, `bh=` and `t=`;
    /// the Ed25519 field is the same whenever the same message is signed at the same time; dkimpy verifies
    /// both (each by its index) and refuses both once the body is altered.
    @Test func signsWithBothKeysAndDkimpyVerifiesBoth() throws {
        let rsa = try DKIMKeyPair.generate(bits: 1024)
        let ed25519 = try DKIMEd25519Key(rawRepresentation: Array(Self.rfcKey))
        // A fixed time in the past (dkimpy refuses a t= in the future).
        let time = Date(timeIntervalSince1970: 1_790_000_000)
        let signers = [DKIM.Signer(selector: "herald2026", key: rsa), DKIM.Signer(selector: "herald2026-ed25519", key: ed25519)]
        let rendered = try MIMETests.message().render(boundary: "B0UND")
        let signed = try DKIM.sign(rendered, domain: "mail.example.test", signers: signers, at: time)
        let text = String(decoding: signed, as: UTF8.self)
        let fields = text.components(separatedBy: "\r\nDKIM-Signature: ").count
        #expect(text.hasPrefix("DKIM-Signature: v=1; a=rsa-sha256; ") && fields == 2, "\(text)")
        let unfolded = text.replacingOccurrences(of: "\r\n\t", with: " ")
        let tagLines = unfolded.components(separatedBy: "\r\n").filter { $0.hasPrefix("DKIM-Signature:") }
        func tag(_ name: String, _ line: String) -> String? {
            line.dropFirst("DKIM-Signature:".count).split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
                .first { $0.hasPrefix(name + "=") }.map { String($0.dropFirst(name.count + 1)) }
        }
        #expect(tagLines.count == 2)
        #expect(tagLines[1].hasPrefix("DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; d=mail.example.test; s=herald2026-ed25519;"))
        for name in ["h", "bh", "t", "d", "c"] { #expect(tag(name, tagLines[0]) == tag(name, tagLines[1]), "\(name)") }
        #expect(tag("t", tagLines[1]) == "1790000000")
        // Deterministic Ed25519 on a fixed key, message and clock: the second field is always the same.
        let again = String(decoding: try DKIM.sign(rendered, domain: "mail.example.test", signers: Array(signers.suffix(1)), at: time), as: UTF8.self)
        #expect(text.hasSuffix(again) && again.hasPrefix("DKIM-Signature: v=1; a=ed25519-sha256; "))
        let (status, output) = try runPython("""
            import sys, dkim
            records = {b"herald2026._domainkey.mail.example.test.": ("v=DKIM1; k=rsa; p=" + sys.argv[1]).encode(),
                       b"herald2026-ed25519._domainkey.mail.example.test.": ("v=DKIM1; k=ed25519; p=" + sys.argv[2]).encode()}
            def dns(name, timeout=5):
                return records.get(name)
            def verified(message, index):
                try:
                    return dkim.DKIM(message).verify(idx=index, dnsfunc=dns)
                except dkim.DKIMException:  # what dkim.verify() turns into False
                    return False
            message = sys.stdin.buffer.read()
            for candidate in (message, message.replace(b"Hello", b"Hellx")):
                print(" ".join("ok" if verified(candidate, i) else "fail" for i in range(2)))
            """, [rsa.publicKeyBase64, ed25519.publicKeyBase64], input: signed)
        #expect(status == 0 && output == "ok ok\nfail fail\n", "\(output)")
    }

    @Test func recordsAndChecksOfAnEd25519Key() {
        let settings = SendingDomain.Settings(spfInclude: "_spf.herald.test")
        let records = SendingDomain.records(domain: "example.com", token: "t", dkim: [
            .init(selector: "s1", publicKeyBase64: "RSAKEY"), .init(selector: "s1-ed25519", publicKeyBase64: Self.rfcPublicKey, algorithm: .ed25519),
        ], settings: settings)
        let dkim = records.filter { $0.purpose == .dkim }
        #expect(dkim.map(\.value) == ["v=DKIM1; k=rsa; p=RSAKEY", "v=DKIM1; k=ed25519; p=\(Self.rfcPublicKey)"])
        #expect(dkim.map(\.host) == ["s1._domainkey.example.com", "s1-ed25519._domainkey.example.com"])
        #expect(dkim.map(\.algorithm) == [.rsa, .ed25519])
        // The RSA record is required for the domain to be usable; the Ed25519 one is not.
        #expect(dkim.map(\.isRequired) == [true, false])
        let ed = dkim[1]
        #expect(SendingDomain.check(ed, found: [], settings: settings) == .missing)
        #expect(SendingDomain.check(ed, found: ["v=DKIM1; k=ed25519; p=\(Self.rfcPublicKey)"], settings: settings) == .ok)
        #expect(SendingDomain.check(ed, found: ["v=DKIM1;k=ED25519;p=11qYAYKxCrfVS/7TyWQHOg7hcv PapiMlrwIaaPcHURo="], settings: settings) == .ok)
        // Without k= a verifier takes the key for RSA: the record does not work, so it is a mismatch.
        #expect(SendingDomain.check(ed, found: ["v=DKIM1; p=\(Self.rfcPublicKey)"], settings: settings) == .mismatch)
        #expect(SendingDomain.check(ed, found: ["v=DKIM1; k=ed25519; p=AAAA"], settings: settings) == .mismatch)
        // RSA records are checked as before (p= alone).
        #expect(SendingDomain.check(dkim[0], found: ["v=DKIM1; p=RSAKEY"], settings: settings) == .ok)
        #expect(SendingDomain.newSelector(now: Date(timeIntervalSince1970: 1_800_000_000), algorithm: .ed25519).hasSuffix("-ed25519"))
        #expect(!SendingDomain.newSelector(now: Date(timeIntervalSince1970: 1_800_000_000)).contains("-"))
    }

    /// The Ed25519 key signs only beside the RSA key and only while its record checks out; it never changes
    /// what the verification concludes.
    @Test func whichKeysSign() {
        func check(_ selector: String, _ status: SendingDomain.RecordStatus) -> SendingDomain.Check {
            SendingDomain.Check(purpose: .dkim, host: "\(selector)._domainkey.example.com", selector: selector, status: status, found: [])
        }
        let base = [SendingDomain.Check(purpose: .ownership, host: "_herald.example.com", status: .ok, found: []),
                    SendingDomain.Check(purpose: .spf, host: "example.com", status: .ok, found: []), check("rsa1", .ok)]
        #expect(SendingDomain.signingSelectors(activeRSA: "rsa1", activeEd25519: "ed1", checks: base + [check("ed1", .ok)]) == ["rsa1", "ed1"])
        for status in [SendingDomain.RecordStatus.missing, .mismatch, .error, .pending] {
            #expect(SendingDomain.signingSelectors(activeRSA: "rsa1", activeEd25519: "ed1", checks: base + [check("ed1", status)]) == ["rsa1"])
            // A verified domain stays verified whatever its Ed25519 record says.
            #expect(SendingDomain.verdict(base + [check("ed1", status)], current: .verified, activeSelector: "rsa1", pendingSelector: nil)
                == .init(status: .verified, activate: nil))
        }
        #expect(SendingDomain.signingSelectors(activeRSA: "rsa1", activeEd25519: "ed1", checks: base) == ["rsa1"])
        #expect(SendingDomain.signingSelectors(activeRSA: "rsa1", activeEd25519: "ed1", checks: base + [check("ed0", .ok)]) == ["rsa1"])
        #expect(SendingDomain.signingSelectors(activeRSA: "rsa1", activeEd25519: nil, checks: base) == ["rsa1"])
        #expect(SendingDomain.signingSelectors(activeRSA: nil, activeEd25519: "ed1", checks: [check("ed1", .ok)]).isEmpty)
    }
}
