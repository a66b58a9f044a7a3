// Fuzz target dm-signature: the canonicalisation behind the Direct Mail compatibility endpoint's request
// signatures (AlibabaSignature: percent-encoding, the canonical query, V2 and V3 strings to sign, the V3
// Authorization header, timestamps), from arbitrary parameters and headers. Input: NUL-separated parts:
// method, path, secret, an Authorization header, a timestamp, then name/value pairs; the first byte says how
// many pairs are query parameters (the rest are headers).
//
// Beyond "no crash": percent-encoding keeps exactly RFC 3986's unreserved characters, writes upper-case %XX,
// decodes back and agrees with Foundation's; the canonical query reads back as exactly the parameters given
// (so one signature cannot cover two different requests); neither signature depends on the order of the
// parameters or headers, or on the case of header names; a parsed Authorization header, written again,
// parses to the same.
import Foundation
@testable import HeraldCore

private let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDMSignature(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let queryCount = Int(input.byte())
    var parts = input.rest.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
    while parts.count < 5 { parts.append("") }
    let (method, path, secret, authorization, timestamp) = (parts[0], parts[1], parts[2], parts[3], parts[4])
    var pairs: [(String, String)] = []
    var index = 5
    while index < parts.count {
        pairs.append((parts[index], index + 1 < parts.count ? parts[index + 1] : ""))
        index += 2
    }
    let query = Array(pairs.prefix(queryCount)), headers = Array(pairs.dropFirst(queryCount))

    for text in parts { checkPercentEncoding(text) }
    checkCanonicalQuery(query)

    let v2 = AlibabaSignature.v2(method: method, parameters: query, secret: secret)
    fuzzCheck(v2 == AlibabaSignature.v2(method: method, parameters: query.reversed(), secret: secret), "V2 depends on the parameters' order")
    fuzzCheck(Data(base64Encoded: v2)?.count == 20, "V2 is not a base64 HMAC-SHA1: \(v2)")

    let signed = Array(Set(headers.map { $0.0.lowercased() })).sorted()
    func v3(_ query: [(String, String)], _ headers: [(String, String)]) -> String {
        AlibabaSignature.v3(method: method, path: path, query: query, headers: headers, signedHeaders: signed,
                            payloadHash: AlibabaSignature.hex(Array(repeating: 0, count: 32)), secret: secret)
    }
    let signature = v3(query, headers)
    fuzzCheck(signature.utf8.count == 64 && signature.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }, "V3 is not hex SHA-256")
    fuzzCheck(signature == v3(query.reversed(), headers.reversed()), "V3 depends on the order of parameters or headers")
    let shouted = headers.map { (String(decoding: $0.0.utf8.map { (97...122).contains($0) ? $0 - 32 : $0 }, as: UTF8.self), $0.1) }
    fuzzCheck(signature == v3(query, shouted), "V3 depends on the case of header names")

    if let parsed = AlibabaSignature.V3Authorization(authorization) {
        fuzzCheck(!parsed.accessKeyID.isEmpty, "an Authorization without a credential")
        let written = "ACS3-HMAC-SHA256 Credential=\(parsed.accessKeyID),SignedHeaders=\(parsed.signedHeaders.joined(separator: ";")),Signature=\(parsed.signature)"
        fuzzCheck(AlibabaSignature.V3Authorization(written) == parsed, "\(authorization.debugDescription) written again parses differently")
    }
    _ = AlibabaSignature.timestamp(timestamp)
    return 0
}

/// Unreserved characters as they are, every other byte as upper-case %XX; decodes back; agrees with Foundation.
private func checkPercentEncoding(_ text: String) {
    let encoded = AlibabaSignature.percentEncode(text)
    let bytes = Array(encoded.utf8)
    var index = 0
    while index < bytes.count {
        if bytes[index] == UInt8(ascii: "%") {
            fuzzCheck(index + 2 < bytes.count && bytes[(index + 1)...(index + 2)].allSatisfy { (48...57).contains($0) || (65...70).contains($0) },
                      "a bad escape in \(encoded)")
            let value = Int(String(decoding: bytes[(index + 1)...(index + 2)], as: UTF8.self), radix: 16) ?? 0
            fuzzCheck(!unreserved.contains(Unicode.Scalar(UInt8(value))), "an unreserved character escaped in \(encoded)")
            index += 3
        } else {
            fuzzCheck(unreserved.contains(Unicode.Scalar(bytes[index])), "\(Unicode.Scalar(bytes[index])) not escaped in \(encoded)")
            index += 1
        }
    }
    fuzzCheck(encoded.removingPercentEncoding == text, "\(encoded) does not decode to \(text.debugDescription)")
    fuzzCheck(text.addingPercentEncoding(withAllowedCharacters: unreserved) == encoded, "Foundation encodes \(text.debugDescription) otherwise")
}

/// The canonical query names exactly the parameters given: split at & and =, decoded, it is their sorted list.
private func checkCanonicalQuery(_ parameters: [(String, String)]) {
    let canonical = AlibabaSignature.canonicalQuery(parameters)
    fuzzCheck(canonical == AlibabaSignature.canonicalQuery(parameters.reversed()), "the canonical query depends on the order")
    guard !parameters.isEmpty else {
        fuzzCheck(canonical.isEmpty, "parameters from nothing")
        return
    }
    let read = canonical.split(separator: "&", omittingEmptySubsequences: false).map { pair -> [String] in
        pair.split(separator: "=", omittingEmptySubsequences: false).map { String($0).removingPercentEncoding ?? "\u{FFFD}" }
    }
    fuzzCheck(read.allSatisfy { $0.count == 2 }, "an ambiguous pair in \(canonical)")
    let given = parameters.map { [$0.0, $0.1] }.sorted { $0.lexicographicallyPrecedes($1) }
    fuzzCheck(read.sorted { $0.lexicographicallyPrecedes($1) } == given, "\(canonical) does not read back as the parameters")
}
