import Foundation

/// The checks of SPEC §3 on a single send that need no database: recipients, subject, body, alias,
/// headers. Each refusal names its field; nothing is queued when one fails.
public struct SingleSendRequest: Sendable, Equatable {
    public var from: String
    public var fromAlias: String?
    public var to: [String]
    public var subject: String
    public var html: String?
    public var text: String?
    /// The Reply-To asked for: it must be the sender's confirmed reply-to address.
    public var replyTo: String?
    /// The Reply-To's display name.
    public var replyToName: String?
    /// With no `replyTo`: whether the sender's confirmed reply-to is used — nil: when it has one (REST); true:
    /// it must have one (SingleSendMail's `ReplyToAddress=true`); false: no Reply-To.
    public var senderReplyTo: Bool?
    public var tag: String?
    public var headers: [String: String]
    /// Open and click tracking for this send; nil: the tenant's setting.
    public var tracking: Bool?

    public init(from: String, fromAlias: String? = nil, to: [String], subject: String, html: String? = nil, text: String? = nil,
                replyTo: String? = nil, replyToName: String? = nil, senderReplyTo: Bool? = nil, tag: String? = nil, headers: [String: String] = [:],
                tracking: Bool? = nil) {
        self.tracking = tracking
        self.replyToName = replyToName
        self.senderReplyTo = senderReplyTo
        self.from = from
        self.fromAlias = fromAlias
        self.to = to
        self.subject = subject
        self.html = html
        self.text = text
        self.replyTo = replyTo
        self.tag = tag
        self.headers = headers
    }
}

/// A single send that passed the checks.
public struct ValidatedSend: Sendable, Equatable {
    public var from: MailAddress
    public var fromAlias: String?
    /// Distinct recipients in the order given.
    public var recipients: [MailAddress]
    public var subject: String
    public var html: String?
    public var text: String?
    public var replyTo: ReplyToRequest = .senderDefault
    /// The Reply-To's display name.
    public var replyToName: String? = nil
    public var tag: String?
    /// Extra header fields, by name.
    public var headers: [(name: String, value: String)]
    /// Open and click tracking links in the HTML part; nil: as the tenant's setting says.
    public var tracking: Bool? = nil
    /// The message as submitted over SMTP (CRLF lines), delivered as it is instead of being built from parts.
    public var raw: [UInt8]? = nil

    public static func == (lhs: ValidatedSend, rhs: ValidatedSend) -> Bool {
        lhs.from == rhs.from && lhs.recipients == rhs.recipients && lhs.subject == rhs.subject && lhs.html == rhs.html && lhs.text == rhs.text
    }
}

public enum SendRules {
    /// The bounds every send is checked against before the database: the most any tenant's limits may be set to.
    /// A tenant's own limits (``ProductLimits``: 100 recipients, 100 characters of subject, 80 KB of body unless
    /// the installation or the operator says otherwise) are checked in the accepting transaction, which knows the
    /// tenant (``checkLimits(_:limits:)``).
    public static let ceiling = (recipientsPerSend: 1_000, subjectLength: 998, bodyBytes: 1 << 20)
    /// Longest from-alias.
    public static let maxAlias = 15

    public static func validate(_ request: SingleSendRequest) throws(HeraldError) -> ValidatedSend {
        let from = try MailAddress(request.from, field: "from")
        if let alias = request.fromAlias {
            guard alias.count <= maxAlias, !alias.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw .validation("fromAlias must be at most \(maxAlias) characters without control characters.", field: "fromAlias")
            }
        }
        let recipients = try self.recipients(request.to)
        guard (1...ceiling.subjectLength).contains(request.subject.count) else {
            throw .validation("subject must be 1 to \(ceiling.subjectLength) characters.", field: "subject")
        }
        try TextRules.checkLine(request.subject, field: "subject")
        if let html = request.html { try TextRules.checkBody(html, field: "html") }
        if let text = request.text { try TextRules.checkBody(text, field: "text") }
        guard (request.html?.isEmpty == false) || (request.text?.isEmpty == false) else {
            throw .validation("Give html, text or both.", field: "html")
        }
        guard (request.html?.utf8.count ?? 0) + (request.text?.utf8.count ?? 0) <= ceiling.bodyBytes else {
            throw .validation("The body (html and text together) is larger than \(ceiling.bodyBytes / 1024) KB.", field: "html")
        }
        let replyTo = try replyToRequest(request.replyTo, sender: request.senderReplyTo)
        if let name = request.replyToName { try ReplyToRule.validateName(name) }
        if let tag = request.tag { try TagName.validate(tag, field: "tag") }
        var headers: [(name: String, value: String)] = []
        for (name, value) in request.headers.sorted(by: { $0.key < $1.key }) {
            try OutgoingMessage.validateExtraHeader(name: name, value: value, field: "headers.\(name)")
            try TextRules.checkLine(value, field: "headers.\(name)")
            headers.append((name, value))
        }
        guard headers.count <= 20 else { throw .validation("At most 20 extra headers.", field: "headers") }
        return ValidatedSend(from: from, fromAlias: request.fromAlias, recipients: recipients, subject: request.subject, html: request.html,
                             text: request.text, replyTo: replyTo, replyToName: request.replyToName, tag: request.tag, headers: headers,
                             tracking: request.tracking)
    }

    /// What a send's `replyTo` (an address) and its choice of the sender's own reply-to ask for.
    public static func replyToRequest(_ address: String?, sender: Bool?, field: String = "replyTo") throws(HeraldError) -> ReplyToRequest {
        if let address { return .address(try MailAddress(address, field: field)) }
        switch sender {
        case nil: return .senderDefault
        case true?: return .sender
        case false?: return .none
        }
    }

    /// A send within the tenant's limits (SPEC §2, configurable, overridable per tenant): recipients, and for a
    /// send built from parts the subject's characters and the body's bytes (a submission is bounded by the SMTP
    /// message size instead).
    public static func checkLimits(_ send: ValidatedSend, limits: ProductLimits) throws(HeraldError) {
        guard send.recipients.count <= limits.recipientsPerSend else {
            throw .validation("At most \(limits.recipientsPerSend) recipients per request.", field: "to")
        }
        guard send.raw == nil else { return }
        guard send.subject.count <= limits.subjectLength else {
            throw .validation("subject must be 1 to \(limits.subjectLength) characters.", field: "subject")
        }
        guard (send.html?.utf8.count ?? 0) + (send.text?.utf8.count ?? 0) <= limits.bodyBytes else {
            throw .validation("The body (html and text together) is larger than \(Self.kilobytes(limits.bodyBytes)).", field: "html")
        }
    }

    /// `80 KB`, or the bytes when not whole kilobytes.
    public static func kilobytes(_ bytes: Int) -> String { bytes % 1024 == 0 ? "\(bytes / 1024) KB" : "\(bytes) bytes" }

    /// Distinct recipients in the order given: at least one, at most the ``ceiling``, each a valid address.
    static func recipients(_ to: [String]) throws(HeraldError) -> [MailAddress] {
        guard !to.isEmpty else { throw .validation("Give at least one recipient.", field: "to") }
        guard to.count <= ceiling.recipientsPerSend else {
            throw .validation("At most \(ceiling.recipientsPerSend) recipients per request.", field: "to")
        }
        var recipients: [MailAddress] = []
        for (index, text) in to.enumerated() {
            let address: MailAddress
            do {
                address = try MailAddress(text, field: "to[\(index)]")
            } catch {
                throw HeraldError(code: "InvalidToAddress", kind: .invalid, message: "to[\(index)] is not a valid email address.", field: "to[\(index)]")
            }
            if !recipients.contains(address) { recipients.append(address) }
        }
        return recipients
    }

    /// A message submitted over SMTP by `from` (the authenticated sender address): the same recipient rules
    /// as the API; a header section without control characters, in UTF-8, each single field (From, Subject,
    /// …) at most once; exactly one From field naming exactly one mailbox, the authenticated address, with no
    /// other domain's address in its display name or comments (no sending as somebody else, and DKIM
    /// aligns); a Sender field, if any, the same; Reply-To a valid address list. The Subject field, as
    /// written, is what the message's record shows; `X-Herald-Tag` tags it. Bcc and X-Herald-Message-Id
    /// fields are removed from what is stored and delivered.
    public static func validateSubmission(from: String, to: [String], raw: [UInt8]) throws(HeraldError) -> ValidatedSend {
        let sender = try MailAddress(from, field: "from")
        let recipients = try self.recipients(to)
        let header = try SubmittedHeader(raw)
        for name in SubmittedHeader.singleFields where header.values(name).count > 1 {
            throw HeraldError(code: "InvalidHeader.Duplicate", kind: .invalid, message: "The message has more than one \(name) field.", field: name)
        }
        guard let from = header.values("from").first else {
            throw HeraldError(code: "InvalidHeader.Missing", kind: .invalid, message: "The message has no From field.", field: "From")
        }
        try checkOwnMailbox(from, field: "From", sender: sender)
        if let field = header.values("sender").first { try checkOwnMailbox(field, field: "Sender", sender: sender) }
        var replyTo = ReplyToRequest.senderDefault
        if let field = header.values("reply-to").first { replyTo = try submittedReplyTo(field) }
        let subject = String((header.values("subject").first ?? "").prefix(MailTemplate.maxSubject * 4))
        let tag = header.values("x-herald-tag").first
        if let tag { try TagName.validate(tag, field: "X-Herald-Tag") }
        var send = ValidatedSend(from: sender, fromAlias: nil, recipients: recipients, subject: subject.isEmpty ? "(no subject)" : subject, html: nil,
                                 text: nil, replyTo: replyTo, tag: tag, headers: [], tracking: false)
        send.raw = header.removingForbiddenFields(from: raw)
        return send
    }

    /// A submission's Reply-To field: one mailbox, whose address the accepting transaction checks is the sender's
    /// confirmed reply-to (the field is then delivered as written, display name and all).
    static func submittedReplyTo(_ value: String) throws(HeraldError) -> ReplyToRequest {
        let addresses: [HeaderAddress]
        do { addresses = try HeaderAddressParser.parse(value) } catch {
            throw HeraldError(code: "InvalidHeader.Malformed", kind: .invalid, message: "The Reply-To field is not an address list: \(error.reason).",
                              field: "Reply-To")
        }
        guard addresses.count == 1, case .mailbox(let mailbox) = addresses[0], let address = try? MailAddress(mailbox.address) else {
            throw HeraldError(code: "InvalidReplyAddress.NotVerified", kind: .invalid,
                              message: "The Reply-To field must name one mailbox: the sender's confirmed reply-to address.", field: "Reply-To")
        }
        return .address(address)
    }

    /// A From or Sender field of a submission: one mailbox, `sender` itself, and no address of another domain
    /// in what a reader is shown beside it.
    static func checkOwnMailbox(_ value: String, field: String, sender: MailAddress) throws(HeraldError) {
        func mismatch(_ detail: String) -> HeraldError {
            HeraldError(code: "InvalidMailAddress.Mismatch", kind: .invalid, message: "The \(field) field must be \(sender), the authenticated address, \(detail).",
                        field: field)
        }
        let addresses: [HeaderAddress]
        do { addresses = try HeaderAddressParser.parse(value) } catch {
            throw HeraldError(code: "InvalidHeader.Malformed", kind: .invalid, message: "The \(field) field is not a valid address: \(error.reason).", field: field)
        }
        guard addresses.count == 1, case .mailbox(let mailbox) = addresses[0] else { throw mismatch("alone (one mailbox, no group)") }
        guard (try? MailAddress(mailbox.address)) == sender else { throw mismatch("not \(mailbox.address)") }
        for text in [mailbox.displayName].compactMap({ $0 }) + mailbox.comments {
            guard let domains = HeaderAddressParser.addressDomains(in: text) else { throw mismatch("with a display name that can be checked (not UTF-16)") }
            if domains.contains(where: { $0 != sender.domain }) { throw mismatch("without another domain's address in its display name") }
        }
    }

    /// The quota day of `date` in `timeZone` (the day boundary is configurable; UTC by default).
    public static func quotaDay(_ date: Date, timeZone: TimeZone) -> (day: String, monthStart: String) {
        // The local date from the zone's offset at that moment (every send asks, so no Calendar here).
        let seconds = Int64((date.timeIntervalSince1970).rounded(.down)) + Int64(timeZone.secondsFromGMT(for: date))
        let (year, month, day) = CivilDate.of(daysSinceEpoch: Int(seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400))
        func pad(_ value: Int, _ width: Int) -> String {
            let digits = String(value)
            return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
        }
        let monthText = pad(year, 4) + "-" + pad(month, 2)
        return (monthText + "-" + pad(day, 2), monthText + "-01")
    }
}
