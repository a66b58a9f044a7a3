import Crypto
import Foundation
import HTTPTypes
import HeraldCore
import HeraldStore
import Hummingbird

/// The signature of a compatibility request: Alibaba Cloud's V2 (HMAC-SHA1 over the parameters) or V3
/// (`ACS3-HMAC-SHA256` over the canonical request), its timestamp window and its one-time nonce.
extension DirectMailCompat {
    /// Checks the signature, the timestamp and the nonce; answers the action and the signer.
    func authenticate(_ request: Request, parameters: Parameters, body: [UInt8]) async throws -> (String, Principal) {
        let keyID: String, nonce: String, timestamp: String, action: String, version: String
        let check: @Sendable (String) -> Bool
        if let header = request.headers[.authorization], header.hasPrefix("ACS3-") {
            guard let authorization = AlibabaSignature.V3Authorization(header) else {
                throw HeraldError(code: "IncompleteSignature", kind: .invalid, message: "The Authorization header is malformed.")
            }
            func acs(_ name: String) throws(HeraldError) -> String {
                guard let field = HTTPField.Name(name), let value = request.headers[field], !value.isEmpty else {
                    throw HeraldError(code: "MissingParameter", kind: .invalid, message: "The header \(name) is required.", field: name)
                }
                return value
            }
            keyID = authorization.accessKeyID
            nonce = try acs("x-acs-signature-nonce")
            timestamp = try acs("x-acs-date")
            action = try acs("x-acs-action")
            version = try acs("x-acs-version")
            let payloadHash = try acs("x-acs-content-sha256")
            guard payloadHash == AlibabaSignature.hex(Array(SHA256.hash(data: body))),
                  ["host", "x-acs-action", "x-acs-version", "x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256"]
                    .allSatisfy(authorization.signedHeaders.contains) else {
                throw Self.signatureMismatch
            }
            var signed: [(String, String)] = []
            for name in authorization.signedHeaders {
                if name == "host" {
                    signed.append(("host", request.head.authority ?? ""))
                } else if let field = HTTPField.Name(name) {
                    signed += request.headers[values: field].map { (name, $0) }
                }
            }
            let method = request.method.rawValue, path = request.uri.path, query = Self.form(request.uri.query ?? ""), headers = signed
            check = { secret in
                constantTimeEquals(Array(AlibabaSignature.v3(method: method, path: path, query: query, headers: headers,
                                                             signedHeaders: authorization.signedHeaders, payloadHash: payloadHash, secret: secret).utf8),
                                   Array(authorization.signature.lowercased().utf8))
            }
        } else {
            guard let signature = parameters["Signature"] else {
                throw HeraldError(code: "MissingParameter", kind: .invalid, message: "The request is not signed (Signature or Authorization).",
                                  field: "Signature")
            }
            keyID = try parameters.require("AccessKeyId")
            nonce = try parameters.require("SignatureNonce")
            timestamp = try parameters.require("Timestamp")
            action = try parameters.require("Action")
            version = try parameters.require("Version")
            guard (parameters["SignatureMethod"] ?? "HMAC-SHA1") == "HMAC-SHA1" else {
                throw HeraldError(code: "InvalidParameter", kind: .invalid, message: "SignatureMethod must be HMAC-SHA1.", field: "SignatureMethod")
            }
            let unsigned = parameters.all.filter { $0.0 != "Signature" }, method = request.method.rawValue
            check = { secret in
                constantTimeEquals(Array(AlibabaSignature.v2(method: method, parameters: unsigned, secret: secret).utf8), Array(signature.utf8))
            }
        }
        guard version == Self.version else {
            throw HeraldError(code: "InvalidVersion", kind: .invalid, message: "Specified parameter Version is not valid: use 2015-11-23.", field: "Version")
        }
        guard let date = AlibabaSignature.timestamp(timestamp) else {
            throw HeraldError(code: "InvalidTimeStamp.Format", kind: .invalid, message: "Specified time stamp is not in ISO 8601 UTC form.")
        }
        guard abs(date.timeIntervalSince(now())) <= Self.window else {
            throw HeraldError(code: "InvalidTimeStamp.Expired", kind: .invalid, message: "Specified time stamp or date value is expired (15 minutes).")
        }
        guard nonce.utf8.count <= 128 else {
            throw HeraldError(code: "InvalidParameter", kind: .invalid, message: "The signature nonce is too long.", field: "SignatureNonce")
        }
        guard let (owner, secret) = try await auth.signingSecret(accessKeyID: keyID) else {
            throw HeraldError(code: "InvalidAccessKeyId.NotFound", kind: .notFound, message: "Specified access key is not found.")
        }
        guard check(secret) else { throw Self.signatureMismatch }
        guard try await auth.useNonce(nonce, owner: owner, accessKeyID: keyID, now: now()) else {
            throw HeraldError(code: "SignatureNonceUsed", kind: .invalid, message: "Specified signature nonce was used already.")
        }
        guard let principal = try await auth.principal(tenantID: owner.tenantID, userID: owner.userID, accessKeyID: keyID) else {
            throw HeraldError(code: "InvalidAccessKeyId.NotFound", kind: .notFound, message: "Specified access key is not found.")
        }
        if principal.tenantStatus == .banned { throw HeraldError.accountBanned }
        if case .limited(let retryAfter) = await tenantLimiter.acquire(principal.tenantID.lowercasedString) { throw HeraldError.rateLimited(retryAfter: retryAfter) }
        return (action, principal)
    }

    static let signatureMismatch = HeraldError(code: "SignatureDoesNotMatch", kind: .invalid,
                                               message: "Specified signature is not matched with our calculation.")
}
