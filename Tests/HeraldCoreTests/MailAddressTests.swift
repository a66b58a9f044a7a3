import Crypto
import Foundation
import HeraldCore
import Testing

@Suite struct MailAddressTests {
    @Test func acceptsDotAtomsAndNormalises() throws {
        let address = try MailAddress(" John.Doe+news@Example.COM ")
        #expect(address.localPart == "john.doe+news" && address.domain == "example.com")
        #expect(address.description == "john.doe+news@example.com")
        #expect(try MailAddress("o'brien_{x}@a.example").localPart == "o'brien_{x}")
    }

    @Test(arguments: ["plain", "@example.com", "a@", ".a@example.com", "a.@example.com", "a..b@example.com", "a b@example.com",
                      "\"quoted\"@example.com", "a@localhost", "a@-x.com", "ü@example.com", String(repeating: "a", count: 65) + "@example.com"])
    func refuses(_ text: String) {
        #expect(throws: HeraldError.self) { try MailAddress(text) }
    }

    @Test func passwordRule() {
        for good in ["Correct-Horse-42", "Abcdefghi1", String(repeating: "aB3", count: 21)] {
            #expect(throws: Never.self) { try SMTPPassword.validate(good) }
        }
        for bad in ["Short1A", "alllowercase123", "ALLUPPERCASE123", "NoDigitsHereAtAll", "Tab\there123A", "Ünïcode123a", String(repeating: "aB3", count: 22)] {
            #expect(throws: HeraldError.self, "\(bad)") { try SMTPPassword.validate(bad) }
        }
    }

    @Test func passwordHashesAreSaltedAndVerify() throws {
        let first = try SMTPPassword.hash("Correct-Horse-42")
        let second = try SMTPPassword.hash("Correct-Horse-42")
        #expect(first != second)
        #expect(SMTPPassword.verify("Correct-Horse-42", against: first) && SMTPPassword.verify("Correct-Horse-42", against: second))
        #expect(!SMTPPassword.verify("correct-horse-42", against: first))
        for broken in ["", "scrypt$15$8$1$$", "bcrypt$x", "scrypt$40$8$1$AAAA$AAAA", first.replacingOccurrences(of: "scrypt$15", with: "scrypt$14")] {
            #expect(!SMTPPassword.verify("Correct-Horse-42", against: broken))
        }
    }

    @Test func replyToTokensAreSignedAndExpire() {
        let key = SymmetricKey(size: .bits256)
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let token = ReplyToToken(tenantID: UUID(), senderID: UUID(), nonce: "abc", expires: now.addingTimeInterval(60))
        let text = token.encode(key: key)
        #expect(ReplyToToken.decode(text, key: key, now: now)?.expires == token.expires)
        #expect(ReplyToToken.decode(text, key: key, now: now)?.senderID == token.senderID)
        #expect(ReplyToToken.decode(text, key: key, now: now.addingTimeInterval(61)) == nil)
        #expect(ReplyToToken.decode(text, key: SymmetricKey(size: .bits256), now: now) == nil)
        // Every single-character change and every truncation is refused.
        let characters = Array(text)
        for index in characters.indices {
            var changed = characters
            changed[index] = changed[index] == "x" ? "y" : "x"
            #expect(ReplyToToken.decode(String(changed), key: key, now: now) == nil)
            #expect(ReplyToToken.decode(String(characters[..<index]), key: key, now: now) == nil)
        }
    }
}
