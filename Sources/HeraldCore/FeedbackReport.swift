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
        let (head, body) = MIMEReader.split(text)
        let fields = MIMEReader.headerFields(head)
        guard let type = fields.first(where: { $0.name == "content-type" })?.value,
              MIMEReader.mediaType(type) == "multipart/report", MIMEReader.parameter(type, "report-type")?.lowercased() == "feedback-report",
              let boundary = MIMEReader.parameter(type, "boundary"), !boundary.isEmpty else { return nil }
        var report: FeedbackReport?
        var returnPaths: [String] = [], recipients: [String] = [], originalTo: [String] = [], messageID: UUID?
        for part in MIMEReader.parts(body, boundary: boundary) {
            let (partHead, partBody) = MIMEReader.split(part)
            let partFields = MIMEReader.headerFields(partHead)
            let partType = partFields.first { $0.name == "content-type" }.map { MIMEReader.mediaType($0.value) } ?? "text/plain"
            let content = MIMEReader.decoded(partBody, encoding: partFields.first { $0.name == "content-transfer-encoding" }?.value)
            switch partType {
            case "message/feedback-report":
                let reportFields = MIMEReader.headerFields(content)
                guard let feedbackType = reportFields.first(where: { $0.name == "feedback-type" })?.value.lowercased()
                    .trimmingCharacters(in: .whitespaces), !feedbackType.isEmpty else { continue }
                report = FeedbackReport(feedbackType: feedbackType)
                for field in reportFields {
                    if field.name == "original-mail-from", let address = bare(field.value) { returnPaths.append(address) }
                    if field.name == "original-rcpt-to", let address = bare(field.value) { recipients.append(address) }
                }
            case "message/rfc822", "text/rfc822-headers", "message/rfc822-headers":
                for field in MIMEReader.headerFields(MIMEReader.split(content).head) {
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
