import Foundation

/// The sensitive words of the installation (SPEC §2: `HERALD_SENSITIVE_WORDS`, changed at run time by the
/// operator): a template that contains one is rejected at review, and a send that contains one — single sends
/// over REST and the compatibility endpoint, SMTP submissions — is refused with `Content.SensitiveWord` naming
/// the word. Matching is case-insensitive, anywhere in the text.
public enum SensitiveWords {
    /// Most words in the list.
    public static let maxWords = 1_000
    /// Longest word.
    public static let maxLength = 64

    /// The words of `words` that occur in `texts`, in the list's order.
    public static func found(in texts: [String], words: [String]) -> [String] {
        guard !words.isEmpty else { return [] }
        let haystack = texts.joined(separator: "\n").lowercased()
        return words.filter { !$0.isEmpty && haystack.contains($0.lowercased()) }
    }

    /// Refuses a send whose fields (name, text) contain a sensitive word, naming the first word and its field.
    public static func check(_ fields: [(field: String, text: String?)], words: [String]) throws(HeraldError) {
        guard !words.isEmpty else { return }
        for (field, text) in fields {
            guard let text, let word = found(in: [text], words: words).first else { continue }
            throw HeraldError(code: "Content.SensitiveWord", kind: .invalid,
                              message: "The \(field) contains the sensitive word \"\(word)\"; such mail is not sent.", field: field)
        }
    }

    /// An operator's list made canonical: trimmed, lower case, without empty entries and repeats, in order; each
    /// word one line of at most ``maxLength`` characters, at most ``maxWords`` of them.
    public static func normalize(_ words: [String], field: String = "sensitiveWords") throws(HeraldError) -> [String] {
        guard words.count <= maxWords else { throw .validation("At most \(maxWords) sensitive words.", field: field) }
        var result: [String] = []
        for (index, word) in words.enumerated() {
            let trimmed = word.trimmingCharacters(in: .whitespaces).lowercased()
            guard trimmed.count <= maxLength, !trimmed.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw .validation("A sensitive word is one line of at most \(maxLength) characters.", field: "\(field)[\(index)]")
            }
            if !trimmed.isEmpty, !result.contains(trimmed) { result.append(trimmed) }
        }
        return result
    }
}

/// What a reader sees of a submitted message (RFC 5322 with MIME): the Subject with its encoded words decoded,
/// and every `text/*` part (multipart nested up to a depth), base64 and quoted-printable decoded. For content
/// rules: a word hidden in base64 is still found.
public enum MIMEText {
    /// Deepest multipart nesting read.
    static let maxDepth = 8

    public static func texts(_ raw: [UInt8]) -> [String] {
        let text = String(decoding: raw.prefix(4 << 20), as: UTF8.self).replacingOccurrences(of: "\r\n", with: "\n")
        let (head, _) = MIMEReader.split(text)
        let fields = MIMEReader.headerFields(head)
        var texts: [String] = fields.filter { $0.name == "subject" }.map { HeaderAddressParser.decodeEncodedWords($0.value) ?? $0.value }
        collect(text, depth: 0, into: &texts)
        return texts
    }

    static func collect(_ entity: String, depth: Int, into texts: inout [String]) {
        let (head, body) = MIMEReader.split(entity)
        let fields = MIMEReader.headerFields(head)
        let type = fields.first { $0.name == "content-type" }?.value ?? "text/plain"
        let media = MIMEReader.mediaType(type)
        if media.hasPrefix("multipart/") {
            guard depth < maxDepth, let boundary = MIMEReader.parameter(type, "boundary"), !boundary.isEmpty else { return }
            for part in MIMEReader.parts(body, boundary: boundary) { collect(part, depth: depth + 1, into: &texts) }
        } else if media.hasPrefix("text/") || media.isEmpty {
            texts.append(MIMEReader.decoded(body, encoding: fields.first { $0.name == "content-transfer-encoding" }?.value))
        }
    }
}
