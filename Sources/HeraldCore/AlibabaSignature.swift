import Crypto
import Foundation

/// The two request signatures of Alibaba Cloud's RPC APIs, as the official SDKs compute them (SPEC §9), so
/// that Herald can check requests to its Direct Mail compatibility endpoint.
///
/// - V2 (`SignatureMethod=HMAC-SHA1`): every parameter but `Signature`, sorted by name, each name and value
///   percent-encoded (RFC 3986, `~` kept), joined with `&`; the string to sign is
///   `METHOD&%2F&` + that, percent-encoded again; the signature is base64(HMAC-SHA1(secret + "&", it)).
/// - V3 (`ACS3-HMAC-SHA256`): a canonical request (method, path, sorted encoded query, the signed headers
///   lower-cased and sorted, their names, the body's SHA-256 in hex), and the signature is
///   hex(HMAC-SHA256(secret, "ACS3-HMAC-SHA256\n" + hex(SHA-256(canonical request)))).
public enum AlibabaSignature {
    static let upperHex = Array("0123456789ABCDEF".utf8)

    /// RFC 3986 percent-encoding: unreserved characters stay, every other UTF-8 byte becomes `%XX`.
    public static func percentEncode(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out.unicodeScalars.append("%")
                out.unicodeScalars.append(Unicode.Scalar(upperHex[Int(byte >> 4)]))
                out.unicodeScalars.append(Unicode.Scalar(upperHex[Int(byte & 15)]))
            }
        }
        return out
    }

    /// `name=value` pairs sorted by name (then value), encoded and joined with `&`.
    static func canonicalQuery(_ parameters: [(String, String)]) -> String {
        let encoded: [(name: String, value: String)] = parameters.map { (percentEncode($0.0), percentEncode($0.1)) }
        let sorted = encoded.sorted { (a: (name: String, value: String), b: (name: String, value: String)) -> Bool in
            a.name == b.name ? a.value < b.value : a.name < b.name
        }
        return sorted.map { $0.name + "=" + $0.value }.joined(separator: "&")
    }

    /// The V2 signature of `parameters` (all of them except `Signature`).
    public static func v2(method: String, parameters: [(String, String)], secret: String) -> String {
        let stringToSign = method.uppercased() + "&%2F&" + percentEncode(canonicalQuery(parameters))
        let mac = HMAC<Insecure.SHA1>.authenticationCode(for: Array(stringToSign.utf8), using: SymmetricKey(data: Array((secret + "&").utf8)))
        return Data(mac).base64EncodedString()
    }

    /// The parts of a V3 `Authorization` header.
    public struct V3Authorization: Sendable, Equatable {
        public var accessKeyID: String
        public var signedHeaders: [String]
        public var signature: String

        /// Parses `ACS3-HMAC-SHA256 Credential=ID,SignedHeaders=a;b,Signature=hex`.
        public init?(_ header: String) {
            let prefix = "ACS3-HMAC-SHA256 "
            guard header.hasPrefix(prefix) else { return nil }
            var fields: [String: String] = [:]
            for part in header.dropFirst(prefix.count).split(separator: ",") {
                let pair = part.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
                guard pair.count == 2 else { return nil }
                fields[String(pair[0])] = String(pair[1])
            }
            guard let credential = fields["Credential"], !credential.isEmpty, let signed = fields["SignedHeaders"],
                  let signature = fields["Signature"] else { return nil }
            accessKeyID = credential
            signedHeaders = signed.split(separator: ";").map { $0.lowercased() }
            self.signature = signature
        }
    }

    /// The V3 signature. `headers` are the signed headers' (lower-case name, value) pairs as received;
    /// `payloadHash` is the hex SHA-256 of the body.
    public static func v3(method: String, path: String, query: [(String, String)], headers: [(String, String)], signedHeaders: [String],
                          payloadHash: String, secret: String) -> String {
        var grouped: [String: [String]] = [:]
        for (name, value) in headers { grouped[name.lowercased(), default: []].append(value.trimmingCharacters(in: .whitespaces)) }
        let names = signedHeaders.sorted()
        let canonicalHeaders = names.map { "\($0):\((grouped[$0] ?? []).sorted().joined(separator: ","))\n" }.joined()
        let canonicalRequest = [method.uppercased(), path.isEmpty ? "/" : path, canonicalQuery(query), canonicalHeaders,
                                names.joined(separator: ";"), payloadHash].joined(separator: "\n")
        let stringToSign = "ACS3-HMAC-SHA256\n" + hex(Array(SHA256.hash(data: Array(canonicalRequest.utf8))))
        return hex(Array(HMAC<SHA256>.authenticationCode(for: Array(stringToSign.utf8), using: SymmetricKey(data: Array(secret.utf8)))))
    }

    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `2026-11-26T06:30:00Z` (the SDKs' timestamps; fractional seconds tolerated).
    public static func timestamp(_ text: String) -> Date? {
        (try? Date(text, strategy: .iso8601)) ?? (try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)))
    }
}
