import Crypto
import Foundation
import Testing
@testable import HeraldCore

@Suite struct SecretBoxTests {
    let box = SecretBox(masterKey: MasterKey(bytes: Array(repeating: 7, count: 32)))

    @Test func roundTrip() throws {
        let sealed = box.seal(Array("s3cret-value".utf8), context: "access_key:LTAI1")
        #expect(try box.open(sealed, context: "access_key:LTAI1") == Array("s3cret-value".utf8))
        // The clear text never appears in the stored form.
        #expect(!String(decoding: sealed, as: UTF8.self).contains("s3cret"))
    }

    @Test func freshDataKeyEveryTime() {
        let a = box.seal(Array("same".utf8), context: "c")
        let b = box.seal(Array("same".utf8), context: "c")
        #expect(a != b)
    }

    @Test func wrongContextFails() {
        let sealed = box.seal(Array("x".utf8), context: "access_key:A")
        #expect(throws: HeraldError.self) { try box.open(sealed, context: "access_key:B") }
    }

    @Test func wrongMasterKeyFails() {
        let sealed = box.seal(Array("x".utf8), context: "c")
        let other = SecretBox(masterKey: MasterKey(bytes: Array(repeating: 8, count: 32)))
        #expect(throws: HeraldError.self) { try other.open(sealed, context: "c") }
    }

    @Test(arguments: [0, 1, 5, 6, 20, 40, 70])
    func tamperingFails(position: Int) {
        var sealed = box.seal(Array("payload".utf8), context: "c")
        sealed[position % sealed.count] ^= 0x01
        #expect(throws: HeraldError.self) { try box.open(sealed, context: "c") }
    }

    @Test func truncatedFails() {
        let sealed = box.seal(Array("payload".utf8), context: "c")
        for length in [0, 3, 6, 30, sealed.count - 1] {
            #expect(throws: HeraldError.self) { try box.open(Array(sealed.prefix(length)), context: "c") }
        }
    }

    @Test func masterKeyParsing() throws {
        _ = try MasterKey(base64: Data(repeating: 1, count: 32).base64EncodedString())
        #expect(throws: HeraldError.self) { try MasterKey(base64: "short") }
        #expect(throws: HeraldError.self) { try MasterKey(base64: Data(repeating: 1, count: 31).base64EncodedString()) }
    }

    @Test func constantTimeCompare() {
        #expect(constantTimeEquals(Array("abc".utf8), Array("abc".utf8)))
        #expect(!constantTimeEquals(Array("abc".utf8), Array("abd".utf8)))
        #expect(!constantTimeEquals(Array("abc".utf8), Array("abcd".utf8)))
        #expect(constantTimeEquals([UInt8](), [UInt8]()))
    }
}

@Suite struct AccessTokenTests {
    let key = TokenSigningKey.generate()
    var keys: [String: Curve25519.Signing.PublicKey] { [key.kid: key.privateKey.publicKey] }
    let claims = TokenClaims(sub: "u", tid: "t", akid: "LTAIabc", iat: 1_000_000, exp: 1_000_900)

    @Test func issueAndVerify() throws {
        let token = AccessTokenCodec.issue(claims, with: key)
        #expect(try AccessTokenCodec.verify(token, publicKeys: keys, now: 1_000_100) == claims)
    }

    @Test func expiredWithinAndBeyondLeeway() throws {
        let token = AccessTokenCodec.issue(claims, with: key)
        #expect(try AccessTokenCodec.verify(token, publicKeys: keys, now: 1_000_929, leeway: 30) == claims)
        #expect(throws: HeraldError.invalidToken("The token has expired.")) {
            try AccessTokenCodec.verify(token, publicKeys: keys, now: 1_000_930, leeway: 30)
        }
    }

    @Test func notYetValid() {
        let token = AccessTokenCodec.issue(claims, with: key)
        #expect(throws: HeraldError.self) { try AccessTokenCodec.verify(token, publicKeys: keys, now: 999_000) }
    }

    @Test func unknownKidIsRefused() {
        let token = AccessTokenCodec.issue(claims, with: key)
        let other = TokenSigningKey.generate()
        #expect(throws: HeraldError.self) {
            try AccessTokenCodec.verify(token, publicKeys: [other.kid: other.privateKey.publicKey], now: 1_000_100)
        }
    }

    @Test func rotationKeepsOldTokensValidWhileOldKeyIsPublished() throws {
        let old = AccessTokenCodec.issue(claims, with: key)
        let newKey = TokenSigningKey.generate()
        let fresh = AccessTokenCodec.issue(claims, with: newKey)
        let both = [key.kid: key.privateKey.publicKey, newKey.kid: newKey.privateKey.publicKey]
        #expect(try AccessTokenCodec.verify(old, publicKeys: both, now: 1_000_100) == claims)
        #expect(try AccessTokenCodec.verify(fresh, publicKeys: both, now: 1_000_100) == claims)
        // Once the old key is withdrawn, its tokens stop verifying.
        #expect(throws: HeraldError.self) {
            try AccessTokenCodec.verify(old, publicKeys: [newKey.kid: newKey.privateKey.publicKey], now: 1_000_100)
        }
    }

    @Test func forgedSignatureKidSwapAndTamperedPayload() throws {
        let token = AccessTokenCodec.issue(claims, with: key)
        let parts = token.split(separator: ".").map(String.init)
        // Same header, payload changed to another tenant.
        var forged = claims
        forged.tid = "other"
        let forgedPayload = Base64URL.encode(try JSONEncoder().encode(forged))
        #expect(throws: HeraldError.self) {
            try AccessTokenCodec.verify("\(parts[0]).\(forgedPayload).\(parts[2])", publicKeys: keys, now: 1_000_100)
        }
        // Signed by an attacker's key but claiming our kid.
        let attacker = TokenSigningKey(kid: key.kid, privateKey: .init())
        #expect(throws: HeraldError.self) {
            try AccessTokenCodec.verify(AccessTokenCodec.issue(claims, with: attacker), publicKeys: keys, now: 1_000_100)
        }
    }

    @Test(arguments: ["none", "HS256", "ES256", "RS256"])
    func otherAlgorithmsAreRefused(alg: String) throws {
        let header = Base64URL.encode(Array("{\"alg\":\"\(alg)\",\"kid\":\"\(key.kid)\",\"typ\":\"JWT\"}".utf8))
        let payload = Base64URL.encode(try JSONEncoder().encode(claims))
        for signature in ["", "AAAA", Base64URL.encode(Array(repeating: 0, count: 64))] {
            #expect(throws: HeraldError.self) {
                try AccessTokenCodec.verify("\(header).\(payload).\(signature)", publicKeys: keys, now: 1_000_100)
            }
        }
    }

    @Test(arguments: ["", ".", "..", "a.b.c", "a.b", "x.y.z.w", String(repeating: "a", count: 5000)])
    func garbageIsRefused(token: String) {
        #expect(throws: HeraldError.self) { try AccessTokenCodec.verify(token, publicKeys: keys, now: 1_000_100) }
    }

    @Test func base64URL() {
        let bytes: [UInt8] = [0xfb, 0xff, 0xfe, 0x00, 0x01]
        let text = Base64URL.encode(bytes)
        #expect(!text.contains("+") && !text.contains("/") && !text.contains("="))
        #expect(Base64URL.decode(text) == bytes)
        #expect(Base64URL.decode("a") == nil)
        #expect(Base64URL.decode("ab+c") == nil)
    }

    @Test func accessKeyShapes() {
        let id = AccessKeyGenerator.newID()
        #expect(AccessKeyGenerator.isWellFormedID(id))
        #expect(AccessKeyGenerator.newSecret().count == 30)
        #expect(!AccessKeyGenerator.isWellFormedID("LTAI"))
        #expect(!AccessKeyGenerator.isWellFormedID("XXXX" + String(repeating: "a", count: 20)))
        #expect(AccessKeyGenerator.newID() != AccessKeyGenerator.newID())
    }

    @Test func uuidV7IsTimeOrdered() {
        let a = UUIDv7.make(at: Date(timeIntervalSince1970: 1000))
        let b = UUIDv7.make(at: Date(timeIntervalSince1970: 1001))
        #expect(a.uuidString < b.uuidString)
        #expect(a.uuidString.dropFirst(14).first == "7")
    }
}
