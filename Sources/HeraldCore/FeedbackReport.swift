import Foundation

/// A feedback-loop report (ARF, RFC 5965): a mailbox provider's word that a recipient marked a message as
/// spam, as far as Herald reads one — the feedback type, and what names the original message: its
/// `X-Herald-Message-Id`, its return paths (`Original-Mail-From`, the original's `Return-Path`, which hold the
/// VERP token) and its recipients (`Original-Rcpt-To`, the original's `To`). Lenient in what it reads (providers
/// differ: `text/rfc822-headers` or `message/rfc822`, base64 or not), strict in what it takes: only a
/// `multipart/report` with `report-type=feedback-report` and a `message/feedback-report` part is a report.
public struct FeedbackReport: Sendable, Equatable {
    /// `abuse`, `fraud`, `virus`, `other`, `not-spam`, `auth-failure` (lower case).
    public var feedbackType: String
    /// The original's `X-Herald-Message-Id`, when the report kept it.
    public var heraldMessageID: UUID?
    /// `Original-Mail-From` and the original's `Return-Path`, without angle brackets.
    public var returnPaths: [String]
    /// The recipients the report names, without angle brackets: its `Original-Rcpt-To` fields, else the original's
    /// `To` addresses (providers often redact both).
    public var recipients: [String]

    public init(feedbackType: String, heraldMessageID: UUID? = nil, returnPaths: [String] = [], recipients: [String] = []) {
        self.feedbackType = feedbackType
        self.heraldMessageID = heraldMessageID
        self.returnPaths = returnPaths
        self.recipients = recipients
    }

    /// Whether the report is a complaint: the recipient called the message spam (`abuse`) or a fraud (`fraud`).
    /// Virus reports, authentication-failure reports and `not-spam` are not.
    public var isComplaint: Bool { feedbackType == "abuse" || feedbackType == "fraud" }

    /// Whether the report lets `address` (the message's recipient) stand: it names no recipient (redacted), or
    /// names this one (the domain without regard to case).
    public func allows(recipient address: String) -> Bool {
        recipients.isEmpty || recipients.contains { DeliveryReport.sameAddress($0, address) }
    }

    /// The report in a message, or nil when the message is not an ARF report.
    public static func parse(_ message: [UInt8]) -> FeedbackReport? {
        let text = String(decoding: message.prefix(512 * 1024), as: UTF8.self).replacingOccurrences(of: "\r\n", with: "\n")
        let (head, body) = split(text)
        let fields = headerFields(head)
        guard let type = fields.first(where: { $0.name == "content-type" })?.value,
              mediaType(type) == "multipart/report", parameter(type, "report-type")?.lowercased() == "feedback-report",
              let boundary = parameter(type, "boundary"), !boundary.isEmpty else { return nil }
        var report: FeedbackReport?
        var returnPaths: [String] = [], recipients: [String] = [], originalTo: [String] = [], messageID: UUID?
        for part in parts(body, boundary: boundary) {
            let (partHead, partBody) = split(part)
            let partFields = headerFields(partHead)
            let partType = partFields.first { $0.name == "content-type" }.map { mediaType($0.value) } ?? "text/plain"
            let content = decoded(partBody, encoding: partFields.first { $0.name == "content-transfer-encoding" }?.value)
            switch partType {
            case "message/feedback-report":
                let reportFields = headerFields(content)
                guard let feedbackType = reportFields.first(where: { $0.name == "feedback-type" })?.value.lowercased()
                    .trimmingCharacters(in: .whitespaces), !feedbackType.isEmpty else { continue }
                report = FeedbackReport(feedbackType: feedbackType)
                for field in reportFields {
                    if field.name == "original-mail-from", let address = bare(field.value) { returnPaths.append(address) }
                    if field.name == "original-rcpt-to", let address = bare(field.value) { recipients.append(address) }
                }
            case "message/rfc822", "text/rfc822-headers", "message/rfc822-headers":
                for field in headerFields(split(content).head) {
                    switch field.name {
                    case "x-herald-message-id":
                        messageID = messageID ?? UUID(uuidString: field.value.trimmingCharacters(in: CharacterSet(charactersIn: "<> \t")))
                    case "return-path":
                        if let address = bare(field.value) { returnPaths.append(address) }
                    case "to":
                        originalTo += field.value.split(separator: ",").compactMap { bare(String($0)) }
                    default: break
                    }
                }
            default: continue
            }
        }
        guard var report else { return nil }
        report.heraldMessageID = messageID
        report.returnPaths = returnPaths
        report.recipients = recipients.isEmpty ? originalTo : recipients
        return report
    }

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

    /// A part's content, base64-decoded when it says so (quoted-printable headers read well enough as they are).
    static func decoded(_ body: String, encoding: String?) -> String {
        guard encoding?.lowercased().trimmingCharacters(in: .whitespaces) == "base64",
              let data = Data(base64Encoded: body.filter { !$0.isWhitespace }) else { return body }
        return String(decoding: data, as: UTF8.self).replacingOccurrences(of: "\r\n", with: "\n")
    }

    /// The address of `<a@b>`, `a@b` or `Name <a@b>`; nil when there is none.
    static func bare(_ value: String) -> String? {
        var text = value.trimmingCharacters(in: .whitespaces)
        if let open = text.lastIndex(of: "<"), let close = text.lastIndex(of: ">"), open < close {
            text = String(text[text.index(after: open)..<close])
        }
        text = text.trimmingCharacters(in: .whitespaces)
        return text.contains("@") && !text.contains(" ") ? text : nil
    }
}
