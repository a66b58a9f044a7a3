import Foundation
import HeraldCore
import Testing
@testable import HeraldDelivery

/// DKIM signatures on the system's libcrypto are those of swift-crypto, byte for byte (RSASSA-PKCS1-v1_5 is
/// deterministic), so a message signs the same whichever library the worker uses.
@Suite struct SystemRSAKeyTests {
    @Test(arguments: [1024, 2048]) func libcryptoSignsAsSwiftCryptoDoes(bits: Int) throws {
        let pair = try DKIMKeyPair.generate(bits: bits)
        let system = try SystemRSAKey(der: pair.privateKeyDER)
        for text in ["", "dkim-signature:v=1; a=rsa-sha256; d=example.com", String(repeating: "x", count: 10_000)] {
            #expect(try system.sign(Array(text.utf8)) == pair.sign(Array(text.utf8)))
        }
        let message = Array("From: a@example.com\r\nTo: b@example.net\r\nSubject: Hi\r\n\r\nHello\r\n".utf8)
        let date = Date(timeIntervalSince1970: 1_800_000_000)
        #expect(try DKIM.sign(message, domain: "example.com", selector: "s1", key: system, at: date)
            == DKIM.sign(message, domain: "example.com", selector: "s1", key: pair, at: date))
    }

    @Test func whatIsNotAnRSAKeyIsRefusedAndTheCacheFallsBack() throws {
        #expect(throws: SystemRSAKey.Unusable.self) { try SystemRSAKey(der: [0x30, 0x03, 0x02, 0x01, 0x00]) }
        let cache = SigningKeyCache(capacity: 2)
        let der = try DKIMKeyPair.generate(bits: 1024).privateKeyDER
        #expect(try cache.key(der: der) is SystemRSAKey)
        #expect(throws: (any Error).self) { try cache.key(der: [1, 2, 3]) }
    }
}
