import Crypto
import Foundation

/// An Ed25519 key for DKIM signing (RFC 8463, `ed25519-sha256`): a domain's optional second signature
/// beside its RSA one. Its DNS record's `p=` is the raw 32-byte public key, base64 (not a
/// SubjectPublicKeyInfo as for RSA), and it is stored, sealed, as the raw 32-byte private key.
public struct DKIMEd25519Key: DKIMSigningKey {
    /// The private key.
    public let privateKey: Curve25519.Signing.PrivateKey

    /// The size shown for Ed25519 keys where RSA keys show their modulus size.
    public static let bits = 256

    /// A fresh key.
    public static func generate() -> DKIMEd25519Key { DKIMEd25519Key(privateKey: Curve25519.Signing.PrivateKey()) }

    /// Loads a key from its raw 32-byte form (as stored, sealed, in the database).
    public init(rawRepresentation: [UInt8]) throws {
        privateKey = try Curve25519.Signing.PrivateKey(rawRepresentation: rawRepresentation)
    }

    init(privateKey: Curve25519.Signing.PrivateKey) { self.privateKey = privateKey }

    /// The private key's raw 32 bytes, to seal and store.
    public var rawRepresentation: [UInt8] { Array(privateKey.rawRepresentation) }

    /// The public key as published in `p=`: the raw 32 bytes, base64 (RFC 8463 §4).
    public var publicKeyBase64: String { privateKey.publicKey.rawRepresentation.base64EncodedString() }

    /// Always Ed25519.
    public var algorithm: DKIM.Algorithm { .ed25519 }

    /// RFC 8463 §3: PureEdDSA (RFC 8032) over the SHA-256 hash of `data`, not over `data` itself.
    public func sign(_ data: [UInt8]) throws -> [UInt8] {
        Array(try privateKey.signature(for: Array(SHA256.hash(data: data))))
    }
}

extension SendingDomain {
    /// The selectors whose keys sign a verified domain's mail, in the order of their fields (top first):
    /// the active RSA key always; the active Ed25519 key beside it only when the last check found its record
    /// published and matching (`ok`). An Ed25519 key whose record is missing, wrong or not checked yet does
    /// not sign (a signature no receiver can check is noise) and does not make the domain fail; and it never
    /// signs alone, since many receivers do not check Ed25519 yet.
    public static func signingSelectors(activeRSA: String?, activeEd25519: String?, checks: [Check]) -> [String] {
        guard let activeRSA else { return [] }
        guard let activeEd25519,
              checks.contains(where: { $0.purpose == .dkim && $0.selector == activeEd25519 && $0.status == .ok }) else { return [activeRSA] }
        return [activeRSA, activeEd25519]
    }
}
