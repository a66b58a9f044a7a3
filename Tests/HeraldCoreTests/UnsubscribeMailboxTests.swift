import Foundation
import HeraldCore
import Testing

@Suite struct UnsubscribeMailboxTests {
    @Test func base32RoundTripsAndRefusesJunk() {
        for length in 0..<40 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255) }
            let text = Base32.encode(bytes)
            #expect(Base32.decode(text) == bytes)
            #expect(Base32.decode(text.uppercased()) == bytes, "either case")
        }
        #expect(Base32.encode(Array("foobar".utf8)) == "mzxw6ytboi", "RFC 4648 §10 in lower case, no padding")
        #expect(Base32.decode("mzxw6ytboi") == Array("foobar".utf8))
        #expect(Base32.decode("mzxw6ytbo1") == nil, "1 is not in the alphabet")
        #expect(Base32.decode("mzxw6ytboj") == nil, "stray bits in the last character")
        #expect(Base32.decode("mzx") == nil, "an impossible length")
    }

    @Test func theAddressCarriesAForgeProofTokenWithinSixtyFourOctets() throws {
        let key = MasterKey.random()
        let mailbox = try UnsubscribeMailbox(address: "Unsubscribe@Mail.Example.COM", masterKey: key)
        let message = UUID()
        let address = mailbox.address(for: message)
        let local = try #require(address.split(separator: "@").first)
        #expect(local.utf8.count <= 64, "RFC 5321 §4.5.3.1.1")
        #expect(address.hasPrefix("unsubscribe+") && address.hasSuffix("@mail.example.com"))
        #expect(mailbox.uri(for: message) == "mailto:\(address)?subject=unsubscribe")
        #expect(mailbox.messageID(recipient: address) == message)
        #expect(mailbox.messageID(recipient: address.uppercased()) == message, "mail systems may change case")
        #expect(mailbox.isOurs(address) && mailbox.isOurs("unsubscribe@mail.example.com") && !mailbox.isOurs("ann@mail.example.com"))

        // Every single-character change, truncation, another key or another domain is refused.
        let token = Array(local.dropFirst("unsubscribe+".count))
        for index in token.indices {
            var altered = token
            altered[index] = altered[index] == "a" ? "b" : "a"
            #expect(mailbox.messageID(recipient: "unsubscribe+\(String(altered))@mail.example.com") == nil)
        }
        #expect(mailbox.messageID(recipient: "unsubscribe+\(String(token.dropLast()))@mail.example.com") == nil)
        #expect(mailbox.messageID(recipient: "unsubscribe+\(String(token))a@mail.example.com") == nil)
        #expect(mailbox.messageID(recipient: "unsubscribe+\(String(token))@other.example.com") == nil)
        #expect(mailbox.messageID(recipient: "other+\(String(token))@mail.example.com") == nil)
        #expect(mailbox.messageID(recipient: "unsubscribe@mail.example.com") == nil)
        let stranger = try UnsubscribeMailbox(address: "unsubscribe@mail.example.com", masterKey: .random())
        #expect(stranger.messageID(recipient: address) == nil)
    }

    @Test func configuredAddressesAreChecked() throws {
        #expect(throws: HeraldError.self) { try UnsubscribeMailbox.validate("no-at-sign") }
        #expect(throws: HeraldError.self) { try UnsubscribeMailbox.validate("un+sub@example.com") }
        #expect(throws: HeraldError.self) { try UnsubscribeMailbox.validate("a-local-part-too-long@example.com") }
        #expect(throws: HeraldError.self) { try UnsubscribeMailbox.validate("unsub@not a domain") }
        #expect(try UnsubscribeMailbox.validate("u.nsub_1@Example.com") == ("u.nsub_1", "example.com"))
        #expect(try UnsubscribeMailbox.validate("unsubscribe@example.com").localPart.count == 64 - 1 - UnsubscribeMailbox.tokenLength)
    }

    @Test func listUnsubscribeHasTheHTTPSLinkFirstAndTheMailtoWhenConfigured() throws {
        let key = MasterKey.random()
        let tenant = UUID(), message = UUID()
        let plain = UnsubscribeLinks(publicURL: "https://h.test", masterKey: key)
        let fields = plain.headers(tenant: tenant, message: message, scope: "*")
        #expect(fields.map(\.0) == ["List-Unsubscribe", "List-Unsubscribe-Post"])
        #expect(fields[0].1 == "<\(plain.url(tenant: tenant, message: message, scope: "*"))>")
        #expect(fields[1].1 == "List-Unsubscribe=One-Click")

        let mailbox = try UnsubscribeMailbox(address: "unsubscribe@mx.h.test", masterKey: key)
        let both = UnsubscribeLinks(publicURL: "https://h.test", masterKey: key, mailbox: mailbox)
        #expect(both.headers(tenant: tenant, message: message, scope: "*")[0].1
            == "<\(plain.url(tenant: tenant, message: message, scope: "*"))>, <\(mailbox.uri(for: message))>")
        let link = both.url(tenant: tenant, message: message, scope: "list:x")
        #expect(both.token(String(link.dropFirst("https://h.test/u/".count))) == UnsubscribeToken(tenantID: tenant, messageID: message, scope: "list:x"))
    }
}

@Suite struct BounceAddressTests {
    @Test func returnPathsNameTheirMessageAndResistForgery() throws {
        let key = MasterKey.random()
        let bounces = BounceAddress(masterKey: key)
        let message = UUID()
        let address = bounces.address(for: message, domain: "mail.example.com")
        #expect(address.hasPrefix("b+") && address.hasSuffix("@bounces.mail.example.com"))
        #expect(try #require(address.split(separator: "@").first).utf8.count <= 64)
        #expect(bounces.messageID(recipient: address) == message)
        #expect(bounces.messageID(recipient: address.uppercased()) == message)
        var altered = Array(address)
        altered[4] = altered[4] == "a" ? "b" : "a"
        #expect(bounces.messageID(recipient: String(altered)) == nil)
        #expect(bounces.messageID(recipient: address.replacingOccurrences(of: "@bounces.", with: "@other.")) == nil)
        #expect(BounceAddress(masterKey: .random()).messageID(recipient: address) == nil)
    }

    @Test func onlyPermanentFailuresAreReported() {
        func report(_ action: String, _ status: String, diagnostic: String? = "smtp; 550 5.1.1 <a@b.example>: user unknown") -> [UInt8] {
            Array(("Content-Type: multipart/report; report-type=delivery-status; boundary=\"x\"\r\n\r\n--x\r\nContent-Type: message/delivery-status\r\n\r\n"
                + "Reporting-MTA: dns; mx.b.example\r\n\r\nFinal-Recipient: rfc822; a@b.example\r\nAction: \(action)\r\nStatus: \(status)\r\n"
                + (diagnostic.map { "Diagnostic-Code: \($0)\r\n" } ?? "") + "--x--\r\n").utf8)
        }
        #expect(DeliveryReport.permanentFailure(in: report("failed", "5.1.1"))
            == DeliveryReport(status: "5.1.1", diagnostic: "550 5.1.1 <a@b.example>: user unknown", recipients: ["a@b.example"]))
        #expect(DeliveryReport.permanentFailure(in: report("failed", "5.7.1", diagnostic: nil))?.diagnostic == "550 5.7.1")
        #expect(DeliveryReport.permanentFailure(in: report("delayed", "4.4.1")) == nil)
        #expect(DeliveryReport.permanentFailure(in: report("delivered", "2.0.0")) == nil)
        #expect(DeliveryReport.permanentFailure(in: Array("Subject: Out of office\r\n\r\nI am away.\r\n".utf8)) == nil)
        // A report is about the recipient it names (Final- or Original-Recipient), the domain in any case.
        #expect(DeliveryReport.permanentFailure(in: report("failed", "5.1.1"), for: "a@B.Example")?.status == "5.1.1")
        #expect(DeliveryReport.permanentFailure(in: report("failed", "5.1.1"), for: "c@b.example") == nil)
        #expect(DeliveryReport.permanentFailure(in: report("failed", "5.1.1"), for: "a@c.example") == nil)
        let forwarded = Array(String(decoding: report("failed", "5.1.1"), as: UTF8.self)
            .replacingOccurrences(of: "Final-Recipient: rfc822; a@b.example", with: "Final-Recipient: rfc822; <z@elsewhere.example>\r\nOriginal-Recipient: rfc822;a@b.example").utf8)
        #expect(DeliveryReport.permanentFailure(in: forwarded, for: "a@b.example")?.recipients == ["z@elsewhere.example", "a@b.example"])
    }
}
