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

/// The Reply-To of a sender's mail: only an address the sender proved it reads (the reply-to confirmation
/// link) — anything else would let a tenant route replies to an address nobody confirmed.
public enum ReplyToRule {
    /// The Reply-To for a send that asked for `requested` from a sender whose reply-to is `senderReplyTo`
    /// with confirmation status `status`: the asked-for address must be the sender's verified one; with none
    /// asked for, the verified one is used (or none).
    public static func resolve(requested: MailAddress?, senderReplyTo: String?, status: ReplyToStatus) throws(HeraldError) -> String? {
        let verified = status == .verified ? senderReplyTo.flatMap { try? MailAddress($0) } : nil
        guard let requested else { return verified?.description }
        guard requested == verified else {
            throw HeraldError(code: "InvalidReplyAddress.NotVerified", kind: .invalid,
                              message: "replyTo must be the sender's confirmed reply-to address; confirm \(requested) on the sender first.",
                              field: "replyTo")
        }
        return requested.description
    }
}
