import CHeraldCrypto
import Crypto
import Foundation
import HeraldCore
import Synchronization

/// A DKIM key on the system's OpenSSL libcrypto, which signs RSA-2048 about twice as fast as swift-crypto's
/// BoringSSL here (issue #16: signing was 65 % of the delivery worker's CPU). RSASSA-PKCS1-v1_5 is
/// deterministic, so its signatures are byte for byte those of ``DKIMKeyPair`` (a test holds them equal).
final class SystemRSAKey: DKIMSigningKey, @unchecked Sendable {
    // The key is immutable once loaded and OpenSSL 3 signs with it from several threads at once.
    private let key: OpaquePointer
    private let size: Int

    struct Unusable: Error, CustomStringConvertible {
        var description: String
    }

    init(der: [UInt8]) throws {
        guard let key = der.withUnsafeBufferPointer({ herald_rsa_key_from_der($0.baseAddress, $0.count) }) else {
            throw Unusable(description: "libcrypto did not take the DKIM key")
        }
        self.key = key
        size = herald_rsa_key_size(key)
    }

    deinit { herald_rsa_key_free(key) }

    var algorithm: DKIM.Algorithm { .rsa }

    func sign(_ data: [UInt8]) throws -> [UInt8] {
        let digest = Array(SHA256.hash(data: data))
        var signature = [UInt8](repeating: 0, count: size)
        var length = size
        let signed = digest.withUnsafeBufferPointer { digest in
            signature.withUnsafeMutableBufferPointer { herald_rsa_sign_sha256_digest(key, digest.baseAddress, $0.baseAddress, &length) }
        }
        guard signed == 1, length == size else { throw Unusable(description: "libcrypto could not sign with the DKIM key") }
        return signature
    }
}

/// The delivery worker's DKIM keys, loaded once per key (by its stored form) rather than once per batch.
final class SigningKeyCache: Sendable {
    private struct Entry: Hashable {
        var algorithm: DKIM.Algorithm
        var stored: [UInt8]
    }
    private let keys = Mutex<[Entry: any DKIMSigningKey]>([:])
    /// The most keys kept (one per tenant domain); past that the cache starts again empty.
    let capacity: Int

    init(capacity: Int = 10_000) {
        self.capacity = capacity
    }

    /// The RSA key of `der`: on libcrypto, or on swift-crypto if libcrypto cannot read it.
    func key(der: [UInt8]) throws -> any DKIMSigningKey {
        try key(algorithm: .rsa, stored: der)
    }

    /// The key of its stored form (`algorithm` says which: RSA private key DER, or Ed25519's raw 32 bytes).
    func key(algorithm: DKIM.Algorithm, stored: [UInt8]) throws -> any DKIMSigningKey {
        let entry = Entry(algorithm: algorithm, stored: stored)
        if let known = keys.withLock({ $0[entry] }) { return known }
        let key: any DKIMSigningKey
        switch algorithm {
        case .rsa:
            do { key = try SystemRSAKey(der: stored) } catch { key = try DKIMKeyPair(der: stored) }
        case .ed25519:
            key = try DKIMEd25519Key(rawRepresentation: stored)
        }
        keys.withLock { keys in
            if keys.count >= capacity { keys.removeAll() }
            keys[entry] = key
        }
        return key
    }
}
