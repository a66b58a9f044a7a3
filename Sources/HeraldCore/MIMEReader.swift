import Foundation

/// Lenient reading of received MIME entities (RFC 2045/2046), for mail Herald is sent — feedback-loop reports
/// (``FeedbackReport``) and the text of SMTP submissions (``MIMEText``): header and body, unfolded fields,
/// Content-Type's media type and parameters, multipart bodies, transfer encodings. Lines end in `\n` here (callers
/// turn CRLF into LF first). Strict checks of what Herald accepts are elsewhere (``SubmittedHeader``).
enum MIMEReader {
    /// Header and body at the first empty line.
    static func split(_ text: String) -> (head: String, body: String) {
        if text.hasPrefix("\n") { return ("", String(text.dropFirst())) }
        guard let range = text.range(of: "\n\n") else { return (text, "") }
        return (String(text[..<range.lowerBound]), String(text[range.upperBound...]))
    }

    /// Unfolded fields, names in lower case.
    static func headerFields(_ head: String) -> [(name: String, value: String)] {
        var fields: [(name: String, value: String)] = []
        for line in head.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.first == " " || line.first == "\t", !fields.isEmpty {
                fields[fields.count - 1].value += " " + line.trimmingCharacters(in: .whitespaces)
            } else if let colon = line.firstIndex(of: ":") {
                fields.append((line[..<colon].trimmingCharacters(in: .whitespaces).lowercased(),
                               line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
            }
        }
        return fields
    }

    /// `multipart/report` of `multipart/report; boundary=…`, in lower case.
    static func mediaType(_ value: String) -> String {
        value.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
    }

    /// A parameter of a Content-Type value, unquoted.
    static func parameter(_ value: String, _ name: String) -> String? {
        for piece in value.split(separator: ";").dropFirst() {
            let pair = piece.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2, pair[0].lowercased() == name else { continue }
            let raw = pair[1]
            return raw.hasPrefix("\"") && raw.hasSuffix("\"") && raw.count >= 2 ? String(raw.dropFirst().dropLast()) : raw
        }
        return nil
    }

    /// The bodies between `--boundary` lines, up to `--boundary--`.
    static func parts(_ body: String, boundary: String) -> [String] {
        var parts: [String] = [], current: [Substring]?
        for line in body.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed == "--" + boundary + "--" {
                if let current { parts.append(current.joined(separator: "\n")) }
                return parts
            }
            if trimmed == "--" + boundary {
                if let current { parts.append(current.joined(separator: "\n")) }
                current = []
            } else {
                current?.append(line)
            }
        }
        if let current { parts.append(current.joined(separator: "\n")) }
        return parts
    }

    /// A part's content decoded by its Content-Transfer-Encoding: base64 or quoted-printable (as UTF-8); as it is
    /// otherwise, or when it does not decode.
    static func decoded(_ body: String, encoding: String?) -> String {
        switch encoding?.lowercased().trimmingCharacters(in: .whitespaces) {
        case "base64":
            guard let data = Data(base64Encoded: body.filter { !$0.isWhitespace }) else { return body }
            return String(decoding: data, as: UTF8.self).replacingOccurrences(of: "\r\n", with: "\n")
        case "quoted-printable":
            return decodeQuotedPrintable(body)
        default:
            return body
        }
    }


    /// Quoted-printable (RFC 2045 §6.7) as UTF-8: soft breaks joined, `=XX` decoded.
    static func decodeQuotedPrintable(_ text: String) -> String {
        var bytes: [UInt8] = []
        let source = Array(text.replacingOccurrences(of: "=\n", with: "").utf8)
        var index = 0
        func hex(_ byte: UInt8) -> UInt8? {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
            case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
            case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
            default: nil
            }
        }
        while index < source.count {
            if source[index] == UInt8(ascii: "="), index + 2 < source.count, let high = hex(source[index + 1]), let low = hex(source[index + 2]) {
                bytes.append(high << 4 | low)
                index += 3
            } else {
                bytes.append(source[index])
                index += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
