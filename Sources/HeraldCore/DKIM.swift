import Crypto
import Foundation

/// DKIM signing (RFC 6376): rsa-sha256 and ed25519-sha256 (RFC 8463), relaxed/relaxed canonicalization.
public enum DKIM {
    /// A key's algorithm: the `k=` of its DNS record, and with `-sha256` the `a=` of its signatures.
    public enum Algorithm: String, Sendable, Hashable, Codable, CaseIterable {
        /// RSASSA-PKCS1-v1_5 (RFC 6376): every receiver checks it.
        case rsa
        /// Ed25519 (RFC 8463): small and cheap, checked by fewer receivers, so always signed beside an RSA signature.
        case ed25519

        /// The `a=` tag of a signature made with such a key.
        public var signatureTag: String { rawValue + "-sha256" }
    }

    /// One signature to add: the key and the selector its public half is published under.
    public struct Signer: Sendable {
        /// The `s=` tag: where the key's record is (`<selector>._domainkey.<domain>`).
        public var selector: String
        /// The private key; its algorithm names the `a=` tag.
        public var key: any DKIMSigningKey

        /// A signer of `key` published under `selector`.
        public init(selector: String, key: any DKIMSigningKey) {
            self.selector = selector
            self.key = key
        }
    }

    /// Header fields signed when present (From twice: a second From added in transit breaks the signature).
    public static let signedHeaders = ["from", "to", "subject", "date", "message-id", "reply-to", "mime-version", "content-type",
                                       "content-transfer-encoding", "list-unsubscribe", "list-unsubscribe-post", "x-herald-message-id"]

    /// Splits a message into its header fields (each with its folded lines, without the final CRLF) and body.
    static func split(_ message: [UInt8]) -> (fields: [[UInt8]], body: ArraySlice<UInt8>) {
        var fields: [[UInt8]] = []
        var index = 0
        var current: [UInt8] = []
        while index < message.count {
            guard let end = message[index...].firstIndex(of: 10) else { break }
            var line = Array(message[index..<end])
            if line.last == 13 { line.removeLast() }
            index = end + 1
            if line.isEmpty {
                if !current.isEmpty { fields.append(current) }
                return (fields, message[index...])
            }
            if line.first == 32 || line.first == 9 {
                current += [13, 10] + line
            } else {
                if !current.isEmpty { fields.append(current) }
                current = line
            }
        }
        if !current.isEmpty { fields.append(current) }
        return (fields, [])
    }

    /// Relaxed header canonicalization (§3.4.2): lower-case name, unfolded, white space runs as one space,
    /// none around the colon or at the end.
    public static func relaxedHeader(_ field: [UInt8]) -> [UInt8] {
        guard let colon = field.firstIndex(of: UInt8(ascii: ":")) else { return field }
        let name = String(decoding: field[..<colon], as: UTF8.self).trimmingCharacters(in: .whitespaces).lowercased()
        var value: [UInt8] = []
        var pendingSpace = false
        for byte in field[(colon + 1)...] where byte != 13 && byte != 10 {
            if byte == 32 || byte == 9 {
                pendingSpace = true
            } else {
                if pendingSpace && !value.isEmpty { value.append(32) }
                pendingSpace = false
                value.append(byte)
            }
        }
        return Array(name.utf8) + [UInt8(ascii: ":")] + value
    }

    /// Relaxed body canonicalization (§3.4.4): white space runs as one space, none at line ends, no empty
    /// lines at the end, every line ending CRLF (an empty body stays empty).
    public static func relaxedBody(_ body: ArraySlice<UInt8>) -> [UInt8] {
        var lines: [[UInt8]] = []
        var line: [UInt8] = []
        var pendingSpace = false
        var index = body.startIndex
        func endLine() {
            lines.append(line)
            line.removeAll(keepingCapacity: true)
            pendingSpace = false
        }
        while index < body.endIndex {
            let byte = body[index]
            if byte == 13 && index + 1 < body.endIndex && body[index + 1] == 10 {
                endLine()
                index += 2
                continue
            }
            if byte == 32 || byte == 9 {
                pendingSpace = true
            } else {
                if pendingSpace { line.append(32) }
                pendingSpace = false
                line.append(byte)
            }
            index += 1
        }
        if !line.isEmpty { endLine() }
        while lines.last?.isEmpty == true { lines.removeLast() }
        var output: [UInt8] = []
        for line in lines { output += line + [13, 10] }
        return output
    }

    /// The message with a `DKIM-Signature` field prepended.
    public static func sign(_ message: [UInt8], domain: String, selector: String, key: some DKIMSigningKey, at time: Date) throws -> [UInt8] {
        try sign(message, domain: domain, signers: [Signer(selector: selector, key: key)], at: time)
    }

    /// The message with one `DKIM-Signature` field per signer prepended, the first signer's on top (where
    /// a receiver that checks only one signature looks); the body hash and the signed header fields are
    /// computed once and shared, and each key signs with its own algorithm (``DKIMSigningKey/algorithm``).
    public static func sign(_ message: [UInt8], domain: String, signers: [Signer], at time: Date) throws -> [UInt8] {
        guard !signers.isEmpty else { return message }
        let (fields, body) = split(message)
        let bodyHash = Data(SHA256.hash(data: relaxedBody(body))).base64EncodedString()
        // The bottom-most instance of each signed name, as §5.4.2 pairs them.
        var byName: [String: [[UInt8]]] = [:]
        for field in fields {
            guard let colon = field.firstIndex(of: UInt8(ascii: ":")) else { continue }
            byName[String(decoding: field[..<colon], as: UTF8.self).trimmingCharacters(in: .whitespaces).lowercased(), default: []].append(field)
        }
        var names = signedHeaders.filter { byName[$0] != nil }
        names.append("from")
        var headerData: [UInt8] = []
        var used: [String: Int] = [:]
        for name in names {
            let instances = byName[name] ?? []
            let taken = used[name, default: 0]
            used[name] = taken + 1
            // Oversigning: a name listed more often than present signs as an empty (absent) field.
            guard taken < instances.count else { continue }
            headerData += relaxedHeader(instances[instances.count - 1 - taken]) + [13, 10]
        }
        var signatures: [UInt8] = []
        for signer in signers {
            let tags = "v=1; a=\(signer.key.algorithm.signatureTag); c=relaxed/relaxed; d=\(domain); s=\(signer.selector); "
                + "t=\(Int(time.timeIntervalSince1970)); h=\(names.joined(separator: ":")); bh=\(bodyHash); b="
            let unsigned = foldTags("DKIM-Signature: " + tags)
            let signature = Data(try signer.key.sign(headerData + relaxedHeader(Array(unsigned.utf8)))).base64EncodedString()
            var folded = unsigned
            var rest = Substring(signature)
            while !rest.isEmpty {
                folded += (folded.hasSuffix("b=") ? "" : "\r\n\t") + rest.prefix(72)
                rest = rest.dropFirst(72)
            }
            signatures += Array((folded + "\r\n").utf8)
        }
        return signatures + message
    }

    /// Folds the tag list after `;` so no line passes 78 characters where it can be helped.
    static func foldTags(_ text: String) -> String {
        var lines: [String] = []
        var line = ""
        for part in text.split(separator: " ", omittingEmptySubsequences: false) {
            if !line.isEmpty && line.utf8.count + 1 + part.utf8.count > 78 {
                lines.append(line)
                line = "\t" + part
            } else {
                line += line.isEmpty ? String(part) : " " + part
            }
        }
        lines.append(line)
        return lines.joined(separator: "\r\n")
    }
}
