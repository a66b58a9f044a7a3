import Crypto
import Foundation
import HeraldCore
import Testing
import _CryptoExtras

@Suite struct SendingDomainTests {
    static let settings = SendingDomain.Settings(spfInclude: "_spf.herald.test", returnPathMX: "mx.herald.test")

    @Test func namesAreNormalisedOrRefused() throws {
        #expect(try SendingDomain.normalize(" Mail.Example.COM. ") == "mail.example.com")
        #expect(try SendingDomain.normalize("xn--fiqs8s.example") == "xn--fiqs8s.example")
        #expect(try SendingDomain.normalize("_spf.example.com", allowUnderscore: true) == "_spf.example.com")
        for bad in ["example", "-a.com", "a-.com", "a..com", "ex ample.com", "例子.中国", "10.0.0.1", "_spf.example.com",
                    String(repeating: "a", count: 64) + ".com", Array(repeating: "abcdefghi", count: 26).joined(separator: ".") + ".com"] {
            #expect(throws: HeraldError.self, "\(bad)") { try SendingDomain.normalize(bad) }
        }
    }

    @Test func recordsToPublish() {
        let records = SendingDomain.records(domain: "example.com", token: "tok",
                                            dkim: [.init(selector: "s1", publicKeyBase64: "KEY1"), .init(selector: "s2", publicKeyBase64: "KEY2")],
                                            settings: Self.settings)
        #expect(records.map(\.host) == ["_herald.example.com", "example.com", "s1._domainkey.example.com", "s2._domainkey.example.com",
                                        "_dmarc.example.com", "bounces.example.com", "bounces.example.com"])
        #expect(records.map(\.isRequired) == [true, true, true, true, false, false, false])
        #expect(records.last?.value == "v=spf1 include:_spf.herald.test -all", "the return path's own SPF")
        #expect(records[0].value == "herald-verification=tok")
        #expect(records[2].value == "v=DKIM1; k=rsa; p=KEY1")
        #expect(records[5].type == "MX" && records[5].value == "10 mx.herald.test")
        let withoutReturnPath = SendingDomain.records(domain: "example.com", token: "t", dkim: [], settings: .init(spfInclude: "_spf.h.test"))
        #expect(!withoutReturnPath.contains { $0.purpose == .returnPath })
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var purpose: SendingDomain.Purpose
        var found: [String]
        var expected: SendingDomain.RecordStatus
        var testDescription: String { "\(purpose) \(found) → \(expected)" }
    }

    static let cases: [Case] = [
        Case(purpose: .ownership, found: [], expected: .missing),
        Case(purpose: .ownership, found: ["google-site-verification=x", "herald-verification=tok"], expected: .ok),
        Case(purpose: .ownership, found: ["herald-verification=other"], expected: .mismatch),
        Case(purpose: .spf, found: [], expected: .missing),
        Case(purpose: .spf, found: ["some other text"], expected: .missing),
        Case(purpose: .spf, found: ["v=spf1 include:_spf.herald.test -all"], expected: .ok),
        Case(purpose: .spf, found: ["v=spf1 ip4:192.0.2.0/24 include:_SPF.herald.test include:_spf.google.com ~all"], expected: .ok),
        Case(purpose: .spf, found: ["v=spf1 +include:_spf.herald.test -all"], expected: .ok),
        Case(purpose: .spf, found: ["v=spf1 include:_spf.other.test -all"], expected: .mismatch),
        Case(purpose: .spf, found: ["v=spf1 include:_spf.herald.test.evil -all"], expected: .mismatch),
        // Two SPF records are a permanent error for receivers (RFC 7208 §4.5).
        Case(purpose: .spf, found: ["v=spf1 include:_spf.herald.test -all", "v=spf1 -all"], expected: .mismatch),
        Case(purpose: .dkim, found: [], expected: .missing),
        Case(purpose: .dkim, found: ["v=DKIM1;k=rsa; p=KEY1"], expected: .ok),
        Case(purpose: .dkim, found: ["v=DKIM1; k=rsa; p=KE Y1 "], expected: .ok),
        Case(purpose: .dkim, found: ["v=DKIM1; k=rsa; p=KEY2"], expected: .mismatch),
        Case(purpose: .dkim, found: ["v=DKIM1; k=rsa; p="], expected: .mismatch),
        Case(purpose: .dmarc, found: [], expected: .missing),
        Case(purpose: .dmarc, found: ["v=DMARC1; p=reject"], expected: .ok),
        Case(purpose: .dmarc, found: ["v=DMARC1; p=reject", "v=DMARC1; p=none"], expected: .mismatch),
        Case(purpose: .returnPath, found: [], expected: .missing),
        Case(purpose: .returnPath, found: ["5 MX.herald.test"], expected: .ok),
        Case(purpose: .returnPath, found: ["10 mx.elsewhere.test"], expected: .mismatch),
        Case(purpose: .returnPathSPF, found: [], expected: .missing),
        Case(purpose: .returnPathSPF, found: ["v=spf1 include:_spf.herald.test -all"], expected: .ok),
        Case(purpose: .returnPathSPF, found: ["v=spf1 -all"], expected: .mismatch),
    ]

    @Test(arguments: cases)
    func checks(_ testCase: Case) throws {
        let records = SendingDomain.records(domain: "example.com", token: "tok", dkim: [.init(selector: "s1", publicKeyBase64: "KEY1")],
                                            settings: Self.settings)
        let record = try #require(records.first { $0.purpose == testCase.purpose })
        #expect(SendingDomain.check(record, found: testCase.found, settings: Self.settings) == testCase.expected)
    }

    @Test func selectorsAndTokensAreFreshAndWellFormed() {
        let now = Date(timeIntervalSince1970: 1_795_600_000)
        let selector = SendingDomain.newSelector(now: now)
        #expect(selector.hasPrefix("herald2026") && selector.count == 18)
        #expect(selector.allSatisfy { $0.isLetter || $0.isNumber })
        #expect(SendingDomain.newSelector(now: now) != selector || SendingDomain.newSelector(now: now) != selector)
        #expect(SendingDomain.newToken().count == 26)
        #expect(SendingDomain.newToken() != SendingDomain.newToken())
    }

    @Test func dkimKeysSignVerifiablyAndSurviveStorage() throws {
        let key = try DKIMKeyPair.generate(bits: 1024)
        #expect(key.bits == 1024)
        let restored = try DKIMKeyPair(der: key.privateKeyDER)
        #expect(restored.publicKeyBase64 == key.publicKeyBase64)
        let message = Array("dkim-signature:v=1; a=rsa-sha256".utf8)
        let signature = try restored.sign(message)
        let publicKey = try _RSA.Signing.PublicKey(unsafeDERRepresentation: Data(base64Encoded: key.publicKeyBase64)!)
        #expect(publicKey.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: SHA256.hash(data: message),
                                           padding: .insecurePKCS1v1_5))
        #expect(!publicKey.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: SHA256.hash(data: Array("other".utf8)),
                                            padding: .insecurePKCS1v1_5))
        #expect(throws: HeraldError.self) { try DKIMKeyPair.generate(bits: 512) }
    }

    /// Each check carries since when its record has had its status: kept while the status stays, the check's
    /// time when it changes or the record is new (the console's "DKIM missing since …").
    @Test func checksCarrySinceWhenTheirStatusHolds() {
        let t0 = Date(timeIntervalSince1970: 1_000_000), t1 = t0.addingTimeInterval(3_600), t2 = t1.addingTimeInterval(3_600)
        func dkim(_ status: SendingDomain.RecordStatus, since: Date? = nil) -> SendingDomain.Check {
            SendingDomain.Check(purpose: .dkim, host: "s1._domainkey.example.com", selector: "s1", status: status, found: [], since: since)
        }
        let spf = SendingDomain.Check(purpose: .spf, host: "example.com", status: .ok, found: [])
        let first = SendingDomain.carryingSince([dkim(.ok), spf], previous: [], now: t0)
        #expect(first.map(\.since) == [t0, t0])
        let second = SendingDomain.carryingSince([dkim(.missing), spf], previous: first, now: t1)
        #expect(second.map(\.since) == [t1, t0], "the DKIM record changed at t1; SPF has been ok since t0")
        let third = SendingDomain.carryingSince([dkim(.missing), spf], previous: second, now: t2)
        #expect(third.map(\.since) == [t1, t0], "still missing since t1")
        let older = SendingDomain.carryingSince([dkim(.missing)], previous: [dkim(.missing)], now: t2)
        #expect(older.first?.since == t2, "a check stored before since was kept starts now")
        let otherSelector = SendingDomain.Check(purpose: .dkim, host: "s2._domainkey.example.com", selector: "s2", status: .missing, found: [])
        #expect(SendingDomain.carryingSince([otherSelector], previous: second, now: t2).first?.since == t2, "a new key's record is new")
    }
}
