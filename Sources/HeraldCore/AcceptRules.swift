import Foundation

/// The two kinds of mail (SPEC §2): trigger (transactional) and batch (marketing). A batch-type sender
/// sends batch mail whatever path it uses, so the unsubscribe rules and priority of batch mail apply.
public enum MailKind: String, Sendable, Hashable, Codable, CaseIterable {
    case trigger
    case batch

    /// The queue priority of the kind: trigger mail goes first.
    public var priority: Int { self == .trigger ? 0 : 1 }
}

/// Why a recipient is dropped instead of sent (SPEC §3, §7), decided in one place for every path that
/// accepts mail (single sends over REST, SMTP and the compatibility endpoint, batch expansion).
public enum DropRules {
    /// A suppression of the recipient: its scope (`*`, `list:<id>`, `tag:<name>`) and where it came from
    /// (`api`, `unsubscribe`, `complaint`).
    public struct Suppression: Sendable, Equatable {
        public var scope: String
        public var source: String

        public init(scope: String, source: String) {
            self.scope = scope
            self.source = source
        }
    }

    /// The reason a message of `kind` (tagged `tag`, of the list `listID` for a batch task) to a recipient
    /// with these suppressions is dropped, or nil when it goes. Trigger mail is stopped only by
    /// tenant-wide suppressions that are not unsubscribes; batch mail by any suppression in its scopes
    /// (`unsubscribed` when the recipient unsubscribed). An invalid address is never sent to.
    public static func reason(kind: MailKind, listID: UUID?, tag: String?, suppressions: [Suppression], invalid: Bool) -> String? {
        switch kind {
        case .trigger:
            if suppressions.contains(where: { $0.scope == "*" && $0.source != "unsubscribe" }) { return "suppressed" }
        case .batch:
            let scopes: Set<String> = ["*", listID.map { "list:" + $0.lowercasedString }, tag.map { "tag:" + $0 }].reduce(into: []) {
                if let scope = $1 { $0.insert(scope) }
            }
            let matching = suppressions.filter { scopes.contains($0.scope) }
            if matching.contains(where: { $0.source == "unsubscribe" }) { return "unsubscribed" }
            if !matching.isEmpty { return "suppressed" }
        }
        return invalid ? "invalid_address" : nil
    }
}

/// Where a sender's reply-to address stands (`senders.reply_to_status`).
public enum ReplyToStatus: String, Sendable, Hashable, Codable, CaseIterable {
    /// The sender has no reply-to address.
    case none
    /// The confirmation mail went out; the link was not followed yet.
    case pending
    /// The link was followed: the address is the sender's.
    case verified
}

/// What a send asks for as its Reply-To.
public enum ReplyToRequest: Sendable, Equatable {
    /// The sender's confirmed reply-to address when it has one, else none (a REST send without `replyTo`, an
    /// SMTP submission without a Reply-To field, a batch send without one).
    case senderDefault
    /// No Reply-To (SingleSendMail with `ReplyToAddress=false` and no `ReplyAddress`).
    case none
    /// The sender's confirmed reply-to address, which it must have (SingleSendMail with `ReplyToAddress=true`).
    case sender
    /// This address, which must be the sender's confirmed reply-to address.
    case address(MailAddress)
}

/// The Reply-To of a sender's mail: only an address the sender proved it reads (the reply-to confirmation
/// link) — anything else would let a tenant route replies to an address nobody confirmed.
public enum ReplyToRule {
    /// Longest display name of a Reply-To (`replyToName`, Direct Mail's `ReplyAddressAlias`).
    public static let maxName = 64

    /// The Reply-To for a send that asked for `requested` (with display name `name`) from a sender whose
    /// reply-to is `senderReplyTo` with confirmation status `status`, as a message stores it: the bare
    /// address, or with a name the mailbox as the field carries it (``MIME/mailbox(_:name:)``); nil for none.
    public static func resolve(_ requested: ReplyToRequest, name: String? = nil, senderReplyTo: String?,
                               status: ReplyToStatus) throws(HeraldError) -> String? {
        let verified = status == .verified ? senderReplyTo.flatMap { try? MailAddress($0) } : nil
        let address: MailAddress?
        switch requested {
        case .none: address = nil
        case .senderDefault: address = verified
        case .sender:
            guard let verified else {
                throw HeraldError(code: "InvalidReplyAddress.NotVerified", kind: .invalid,
                                  message: "The sender has no confirmed reply-to address; set one on the sender and confirm it first.",
                                  field: "replyTo")
            }
            address = verified
        case .address(let requested):
            guard requested == verified else {
                throw HeraldError(code: "InvalidReplyAddress.NotVerified", kind: .invalid,
                                  message: "replyTo must be the sender's confirmed reply-to address; confirm \(requested) on the sender first.",
                                  field: "replyTo")
            }
            address = requested
        }
        guard let address else {
            if name != nil { throw .validation("replyToName needs a Reply-To address (the sender's confirmed reply-to).", field: "replyToName") }
            return nil
        }
        guard let name else { return address.description }
        return MIME.mailbox(address, name: name)
    }

    /// A Reply-To display name: at most ``maxName`` characters on one line.
    public static func validateName(_ name: String, field: String = "replyToName") throws(HeraldError) {
        guard (1...maxName).contains(name.count), !name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw .validation("\(field) must be 1 to \(maxName) characters without control characters.", field: field)
        }
    }

    /// The value of the Reply-To field for what a message stores: the mailbox as stored, or `<address>`.
    public static func field(_ stored: String) -> String {
        stored.contains("<") ? stored : "<\(stored)>"
    }
}
