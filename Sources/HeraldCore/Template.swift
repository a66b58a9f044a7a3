import Foundation

/// Direct Mail style templates: `${name}` placeholders in the subject, HTML and text parts.
public enum MailTemplate {
    /// The reserved placeholder for the per-recipient unsubscribe link.
    public static let unsubscribe = "unsubscribe"
    /// Longest subject (SPEC §2).
    public static let maxSubject = 100
    /// Largest body part (SPEC §2: 80 KB).
    public static let maxBody = 80 * 1024

    /// A piece of a parsed template: literal text or a placeholder.
    public enum Piece: Equatable, Sendable {
        case text(Substring)
        case variable(String)
    }

    /// Splits `text` into literal runs and `${name}` placeholders (`name`: a letter or `_`, then up to 63
    /// letters, digits or `_`). Anything else, an unclosed `${` included, is literal text.
    public static func parse(_ text: String) -> [Piece] {
        var pieces: [Piece] = []
        var literalStart = text.startIndex
        var index = text.startIndex
        while let dollar = text[index...].firstIndex(of: "$") {
            let open = text.index(after: dollar)
            guard open < text.endIndex, text[open] == "{", let close = text[open...].firstIndex(of: "}") else {
                index = open
                continue
            }
            let name = text[text.index(after: open)..<close]
            guard isVariableName(name) else {
                index = open
                continue
            }
            if literalStart < dollar { pieces.append(.text(text[literalStart..<dollar])) }
            pieces.append(.variable(String(name)))
            index = text.index(after: close)
            literalStart = index
        }
        if literalStart < text.endIndex { pieces.append(.text(text[literalStart...])) }
        return pieces
    }

    static func isVariableName(_ name: Substring) -> Bool {
        guard let first = name.unicodeScalars.first, name.count <= 64, first.isASCII,
              first == "_" || CharacterSet.letters.contains(first) else { return false }
        return name.unicodeScalars.allSatisfy { $0.isASCII && ($0 == "_" || CharacterSet.alphanumerics.contains($0)) }
    }

    /// The placeholders used in any part, in order of first appearance, without duplicates.
    public static func variables(subject: String, html: String?, text: String?) -> [String] {
        var seen: [String] = []
        for part in [subject, html ?? "", text ?? ""] {
            for case .variable(let name) in parse(part) where !seen.contains(name) { seen.append(name) }
        }
        return seen
    }

    /// Escapes text for HTML element content and attribute values.
    public static func escapeHTML(_ value: String) -> String {
        var result = ""
        result.reserveCapacity(value.utf8.count)
        for character in value {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&#39;"
            default: result.append(character)
            }
        }
        return result
    }

    /// A rendered message body.
    public struct Rendered: Equatable, Sendable {
        public var subject: String
        public var html: String?
        public var text: String?
    }

    /// Fills the placeholders: values are HTML-escaped in the HTML part, not in the text part; the
    /// subject loses line breaks (no header injection); `${unsubscribe}` is the recipient's link; a
    /// missing variable renders empty.
    public static func render(subject: String, html: String?, text: String?, variables: [String: String], unsubscribeURL: String?) -> Rendered {
        func fill(_ template: String, escape: (String) -> String) -> String {
            var output = ""
            for piece in parse(template) {
                switch piece {
                case .text(let literal): output += literal
                case .variable(let name):
                    let value = name == unsubscribe ? (unsubscribeURL ?? "") : (variables[name] ?? "")
                    output += escape(value)
                }
            }
            return output
        }
        let oneLine = fill(subject) { $0 }.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ")
        return Rendered(subject: oneLine, html: html.map { fill($0, escape: escapeHTML) }, text: text.map { fill($0) { $0 } })
    }

    /// Where a template stands in its review (SPEC §2; `templates.status`): only approved templates send.
    public enum Status: String, Sendable, Hashable, Codable, CaseIterable {
        /// Being written; not submitted.
        case draft
        /// Submitted; the automatic checks passed; waiting for the operator.
        case pending
        /// Approved by the operator: it can be sent.
        case approved
        /// Refused by the automatic checks or the operator (the reasons say why); edit and submit again.
        case rejected
    }

    /// Checks a template's shape (names the field): subject 1–100 characters, at least one body part, parts
    /// at most 80 KB.
    /// A template's name, and its subject and body parts within `limits` (the tenant's send limits: a template
    /// becomes mail).
    public static func validate(name: String, subject: String, html: String?, text: String?,
                                limits: ProductLimits = ProductLimits()) throws(HeraldError) {
        guard (1...64).contains(name.count), !name.contains(where: \.isNewline) else {
            throw .validation("name must be 1 to 64 characters on one line.", field: "name")
        }
        guard (1...limits.subjectLength).contains(subject.count) else {
            throw .validation("subject must be 1 to \(limits.subjectLength) characters.", field: "subject")
        }
        guard (html?.isEmpty == false) || (text?.isEmpty == false) else {
            throw .validation("Give html, text or both.", field: "html")
        }
        let most = SendRules.kilobytes(limits.bodyBytes)
        if let html, html.utf8.count > limits.bodyBytes { throw .validation("html is larger than \(most).", field: "html") }
        if let text, text.utf8.count > limits.bodyBytes { throw .validation("text is larger than \(most).", field: "text") }
    }

    /// The automatic checks of a submission (SPEC §2): sensitive words (case-insensitive, anywhere),
    /// and for batch templates the unsubscribe placeholder in every body part. Empty when it may go to review.
    public static func contentProblems(kind: MailKind, subject: String, html: String?, text: String?, sensitiveWords: [String]) -> [String] {
        var problems: [String] = []
        let found = SensitiveWords.found(in: [subject, html ?? "", text ?? ""], words: sensitiveWords)
        if !found.isEmpty { problems.append("contains sensitive words: \(found.joined(separator: ", "))") }
        if kind == .batch {
            for (part, body) in [("html", html), ("text", text)] {
                if let body, !body.isEmpty, !parse(body).contains(.variable(unsubscribe)) {
                    problems.append("the \(part) part of a batch template must contain ${unsubscribe}")
                }
            }
        }
        return problems
    }
}
