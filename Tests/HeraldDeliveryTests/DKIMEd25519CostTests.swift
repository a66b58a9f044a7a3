import Foundation
import HeraldCore
import Testing
@testable import HeraldDelivery

/// The worker's keys by algorithm, and what the second (Ed25519) signature costs per message.
@Suite struct DKIMEd25519CostTests {
    @Test func theCacheLoadsEachAlgorithmsKeys() throws {
        let cache = SigningKeyCache(capacity: 4)
        let ed25519 = DKIMEd25519Key.generate()
        let loaded = try cache.key(algorithm: .ed25519, stored: ed25519.rawRepresentation)
        #expect(loaded is DKIMEd25519Key && loaded.algorithm == .ed25519)
        #expect(try loaded.sign([1, 2, 3]) == ed25519.sign([1, 2, 3]))
        let rsa = try cache.key(algorithm: .rsa, stored: DKIMKeyPair.generate(bits: 1024).privateKeyDER)
        #expect(rsa is SystemRSAKey && rsa.algorithm == .rsa)
        #expect(throws: (any Error).self) { try cache.key(algorithm: .ed25519, stored: [1, 2, 3]) }
    }

    /// Signing a typical message with RSA-2048 alone (as every domain does) and with RSA-2048 and Ed25519 (a
    /// domain that opted in), on the worker's keys. Printed for the note; no timing is asserted.
    @Test func costOfTheSecondSignature() throws {
        let rsa = try SystemRSAKey(der: DKIMKeyPair.generate(bits: 2048).privateKeyDER)
        let ed25519 = DKIMEd25519Key.generate()
        let message = OutgoingMessage(from: try MailAddress("app@example.test"), fromName: "Acme", to: try MailAddress("jane@example.org"),
                                      replyTo: nil, subject: "Your code", html: "<p>Code: <b>123456</b></p>" + String(repeating: "<p>Lorem ipsum dolor sit amet.</p>", count: 40),
                                      text: "Code: 123456\n" + String(repeating: "Lorem ipsum dolor sit amet.\n", count: 40),
                                      messageID: "0193.abc@example.test", heraldMessageID: "0193abcd", date: Date(timeIntervalSince1970: 1_800_000_000),
                                      extraHeaders: []).render()
        let time = Date(timeIntervalSince1970: 1_800_000_000)
        let rsaOnly = [DKIM.Signer(selector: "s1", key: rsa)]
        let both = rsaOnly + [DKIM.Signer(selector: "s1-ed25519", key: ed25519)]
        let rounds = 400
        func perMessage(_ signers: [DKIM.Signer]) throws -> Double {
            _ = try DKIM.sign(message, domain: "example.test", signers: signers, at: time)
            let clock = ContinuousClock()
            let elapsed = try clock.measure {
                for _ in 0..<rounds { _ = try DKIM.sign(message, domain: "example.test", signers: signers, at: time) }
            }
            return (Double(elapsed.components.seconds) * 1e6 + Double(elapsed.components.attoseconds) / 1e12) / Double(rounds)
        }
        // The signing primitives alone (C code, as fast in a debug build as in a release one) over header data of
        // a typical size: what the second signature adds to a message, less the canonicalization of its own field.
        let headerData = Array(String(repeating: "x", count: 700).utf8)
        func perSignature(_ key: any DKIMSigningKey) throws -> Double {
            _ = try key.sign(headerData)
            let elapsed = try ContinuousClock().measure { for _ in 0..<rounds { _ = try key.sign(headerData) } }
            return (Double(elapsed.components.seconds) * 1e6 + Double(elapsed.components.attoseconds) / 1e12) / Double(rounds)
        }
        print(String(format: "DKIM key.sign over 700 bytes: RSA-2048 (libcrypto) %.1f µs, Ed25519 %.1f µs",
                     try perSignature(rsa), try perSignature(ed25519)))
        let single = try perMessage(rsaOnly)
        let double = try perMessage(both)
        let edAlone = try perMessage([DKIM.Signer(selector: "s1-ed25519", key: ed25519)])
        print(String(format: "DKIM cost per %d-byte message: rsa-sha256 %.1f µs; rsa-sha256 + ed25519-sha256 %.1f µs (+%.1f µs, +%.0f %%); ed25519-sha256 alone %.1f µs",
                     message.count, single, double, double - single, (double - single) / single * 100, edAlone))
        #expect(single > 0 && double > 0)
    }
}
