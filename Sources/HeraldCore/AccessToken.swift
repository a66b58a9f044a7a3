import Crypto
import Foundation

/// The claims of a Herald bearer token: who (user, key) acts for which tenant, and until when.
public struct TokenClaims: Codable, Sendable, Equatable {
    /// Issuer, always `herald`.
    public var iss: String
    /// Subject: the user id.
    public var sub: String
    /// Tenant id.
    public var tid: String
    /// The AccessKey the token was exchanged for.
    public var akid: String
    /// Issued at (seconds since 1970).
    public var iat: Int
    /// Expires at (seconds since 1970).
    public var exp: Int
    /// Unique token id.
    public var jti: String

    /// Creates claims.
    public init(sub: String, tid: String, akid: String, iat: Int, exp: Int, jti: String = UUID().uuidString) {
        self.iss = "herald"
        self.sub = sub
        self.tid = tid
        self.akid = akid
        self.iat = iat
        self.exp = exp
        self.jti = jti
    }
}

/// One Ed25519 key that signs tokens; `kid` names it in the token header and in the JWKS.
public struct TokenSigningKey: Sendable {
    /// Key id published in the JWKS.
    public let kid: String
    /// The private half.
    public let privateKey: Curve25519.Signing.PrivateKey

    /// Wraps an existing key.
    public init(kid: String, privateKey: Curve25519.Signing.PrivateKey) {
        self.kid = kid
        self.privateKey = privateKey
    }

    /// A new random key with a random kid.
    public static func generate() -> TokenSigningKey {
        TokenSigningKey(kid: "k" + AccessKeyGenerator.randomString(count: 15).lowercased(), privateKey: .init())
    }

    /// The public half as a JWK (RFC 8037 OKP).
    public var jwk: JWK { JWK(kid: kid, x: Base64URL.encode(privateKey.publicKey.rawRepresentation)) }
}

/// A public key in JWK form, as `/.well-known/jwks.json` publishes it.
public struct JWK: Codable, Sendable, Equatable {
    /// Key type, `OKP`.
    public var kty = "OKP"
    /// Curve, `Ed25519`.
    public var crv = "Ed25519"
    /// Public key, base64url.
    public var x: String
    /// Key id.
    public var kid: String
    /// Algorithm, `EdDSA`.
    public var alg = "EdDSA"
    /// Use, `sig`.
    public var use = "sig"

    /// Creates an Ed25519 JWK.
    public init(kid: String, x: String) {
        self.kid = kid
        self.x = x
    }
}

/// Issues and verifies compact JWS tokens (EdDSA / Ed25519 only: `alg` is fixed, so `none` and algorithm confusion are impossible).
public enum AccessTokenCodec {
    private struct Header: Codable {
        var alg: String
        var typ: String?
        var kid: String?
    }

    /// Signs `claims` with `key` and returns the compact token.
    public static func issue(_ claims: TokenClaims, with key: TokenSigningKey) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let header = try! encoder.encode(Header(alg: "EdDSA", typ: "JWT", kid: key.kid))
        let payload = try! encoder.encode(claims)
        let signingInput = Base64URL.encode(header) + "." + Base64URL.encode(payload)
        let signature = try! key.privateKey.signature(for: Array(signingInput.utf8))
        return signingInput + "." + Base64URL.encode(signature)
    }

    /// Verifies signature, `kid`, issuer and lifetime; every failure is `Auth.InvalidToken`.
    /// - Parameters:
    ///   - publicKeys: the keys currently trusted, by kid.
    ///   - now: the current time in seconds since 1970 (injected for tests).
    ///   - leeway: tolerated clock skew in seconds.
    public static func verify(_ token: String, publicKeys: [String: Curve25519.Signing.PublicKey], now: Int, leeway: Int = 30) throws(HeraldError) -> TokenClaims {
        guard token.utf8.count <= 4096 else { throw .invalidToken() }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3,
              let headerBytes = Base64URL.decode(parts[0]),
              let payloadBytes = Base64URL.decode(parts[1]),
              let signature = Base64URL.decode(parts[2]),
              let header = try? JSONDecoder().decode(Header.self, from: Data(headerBytes))
        else { throw .invalidToken() }
        guard header.alg == "EdDSA" else { throw .invalidToken("The token's algorithm is not accepted.") }
        guard let kid = header.kid, let key = publicKeys[kid] else { throw .invalidToken("The token's signing key is unknown.") }
        let signingInput = Array("\(parts[0]).\(parts[1])".utf8)
        guard key.isValidSignature(signature, for: signingInput) else { throw .invalidToken() }
        guard let claims = try? JSONDecoder().decode(TokenClaims.self, from: Data(payloadBytes)), claims.iss == "herald" else {
            throw .invalidToken()
        }
        guard claims.exp + leeway > now else { throw .invalidToken("The token has expired.") }
        guard claims.iat - leeway <= now else { throw .invalidToken("The token is not valid yet.") }
        return claims
    }
}
