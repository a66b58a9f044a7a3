import Crypto
import Foundation

/// Base32 (RFC 4648's alphabet in lower case, no padding). Mail systems may change the case of an address,
/// so the token in the `mailto:` unsubscribe address uses an alphabet that survives it.
public enum Base32 {
    static let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567".utf8)

    public static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 8 + 4) / 5)
        var buffer: UInt32 = 0
        var bits = 0
        for byte in bytes {
            buffer = (buffer << 8) | UInt32(byte)
            bits += 8
            while bits >= 5 {
                bits -= 5
                out.append(alphabet[Int((buffer >> UInt32(bits)) & 31)])
            }
        }
        if bits > 0 { out.append(alphabet[Int((buffer << UInt32(5 - bits)) & 31)]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes either case; nil for any other character, an impossible length or stray bits at the end.
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        var out: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        for character in text.utf8 {
            let value: UInt32
            switch character {
            case UInt8(ascii: "a")...UInt8(ascii: "z"): value = UInt32(character - UInt8(ascii: "a"))
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = UInt32(character - UInt8(ascii: "A"))
            case UInt8(ascii: "2")...UInt8(ascii: "7"): value = UInt32(character - UInt8(ascii: "2")) + 26
            default: return nil
            }
            buffer = (buffer << 5) | value
            bits += 5
            if bits >= 8 {
                bits -= 8
                out.append(UInt8((buffer >> UInt32(bits)) & 255))
            }
        }
        guard bits < 5, buffer & ((1 << UInt32(bits)) - 1) == 0 else { return nil }
        return out
    }
}

/// A message id with a 128-bit HMAC-SHA256 tag, in lower-case base32 (52 characters): short enough for an
/// address's local part next to a few characters, unchanged by servers that change case, checked without
/// the database. The mailto unsubscribe addresses and the VERP return paths use it, each under its own key.
enum MessageToken {
    static let length = 52

    static func encode(_ messageID: UUID, key: SymmetricKey) -> String {
        let id = ReplyToToken.bytes(messageID)
        return Base32.encode(id + tag(id, key: key))
    }

    static func decode(_ token: some StringProtocol, key: SymmetricKey) -> UUID? {
        guard token.utf8.count == length, let bytes = Base32.decode(token), bytes.count == 32,
              constantTimeEquals(bytes[16...], tag(Array(bytes[..<16]), key: key)) else { return nil }
        return ReplyToToken.uuid(Array(bytes[..<16]))
    }

    static func tag(_ id: [UInt8], key: SymmetricKey) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: id, using: key).prefix(16))
    }
}

/// The `mailto:` form of List-Unsubscribe (RFC 2369, next to RFC 8058's https link): an address at the
/// operator's inbound host whose local part carries a token, `<local>+<token>@<domain>`. The token is the
/// message id and a 128-bit HMAC-SHA256 tag over it in lower-case base32 (52 characters), so the whole
/// local part stays within RFC 5321's 64 octets, survives case changes and is checked without the
/// database. The message names the tenant and the scope (its list for batch mail, the tenant for trigger
/// mail), exactly as its https link does.
public struct UnsubscribeMailbox: Sendable {
    public let localPart: String
    public let domain: String
    let key: SymmetricKey

    /// Characters of the token.
    public static let tokenLength = MessageToken.length
    /// RFC 5321 §4.5.3.1.1.
    static let maxLocalPart = 64

    public init(address: String, masterKey: MasterKey) throws(HeraldError) {
        (localPart, domain) = try Self.validate(address)
        key = masterKey.derive("unsubscribe-mailto")
    }

    /// Splits and checks a configured unsubscribe address: a plain local part (letters, digits, `.`, `-`,
    /// `_`; no `+`, which separates the token) short enough for the token, and a domain name.
    public static func validate(_ address: String) throws(HeraldError) -> (localPart: String, domain: String) {
        func invalid(_ why: String) -> HeraldError {
            HeraldError(code: "Config.UnsubscribeAddress", kind: .invalid, message: "The unsubscribe address \"\(address)\" \(why).")
        }
        let parts = address.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty else { throw invalid("must look like unsubscribe@mail.example.com") }
        let local = parts[0].lowercased()
        guard local.utf8.allSatisfy({ $0.isASCIILetterOrDigit || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") }),
              !local.hasPrefix("."), !local.hasSuffix("."), !local.contains("..") else {
            throw invalid("needs a plain local part (letters, digits, '.', '-', '_')")
        }
        guard local.utf8.count + 1 + tokenLength <= maxLocalPart else {
            throw invalid("has a local part too long for the token: at most \(maxLocalPart - 1 - tokenLength) characters")
        }
        guard let domain = try? SendingDomain.normalize(String(parts[1])) else { throw invalid("needs a domain name") }
        return (local, domain)
    }

    /// The address that unsubscribes the recipient of `messageID`.
    public func address(for messageID: UUID) -> String {
        "\(localPart)+\(MessageToken.encode(messageID, key: key))@\(domain)"
    }

    /// The `mailto:` URI of List-Unsubscribe.
    public func uri(for messageID: UUID) -> String {
        "mailto:\(address(for: messageID))?subject=unsubscribe"
    }

    /// The message a recipient address unsubscribes from, or nil when the address is not one of ours or its
    /// token is forged, altered or truncated. Case does not matter.
    public func messageID(recipient: String) -> UUID? {
        let lowered = recipient.lowercased()
        guard let at = lowered.lastIndex(of: "@"), lowered[lowered.index(after: at)...] == domain else { return nil }
        let prefix = localPart + "+"
        let local = lowered[..<at]
        guard local.hasPrefix(prefix) else { return nil }
        return MessageToken.decode(local.dropFirst(prefix.count), key: key)
    }

    /// Whether `recipient` is at this mailbox's address at all (with or without a token).
    public func isOurs(_ recipient: String) -> Bool {
        let lowered = recipient.lowercased()
        return lowered.hasSuffix("@" + domain) && (lowered.hasPrefix(localPart + "+") || lowered.hasPrefix(localPart + "@"))
    }

}

/// The VERP return path of a message (`b+<token>@<return-path label>.<sender domain>`, whose MX is Herald's
/// inbound listener): bounces that arrive after the remote server said 250 come back to it, and the token —
/// the message id and a 128-bit HMAC-SHA256 tag in lower-case base32, like ``UnsubscribeMailbox``'s — says
/// which message bounced, checked without the database.
public struct BounceAddress: Sendable {
    let key: SymmetricKey
    /// The label of the return-path host under each sending domain (`bounces`).
    public let label: String
    static let prefix = "b+"

    public init(masterKey: MasterKey, label: String = "bounces") {
        key = masterKey.derive("bounce-return-path")
        self.label = label
    }

    /// The envelope sender for a message from `domain`.
    public func address(for messageID: UUID, domain: String) -> String {
        Self.prefix + MessageToken.encode(messageID, key: key) + "@" + label + "." + domain
    }

    /// The message a bounce address names, or nil when it is not one of ours or its token is forged.
    public func messageID(recipient: String) -> UUID? {
        let lowered = recipient.lowercased()
        guard let at = lowered.lastIndex(of: "@"), lowered[lowered.index(after: at)...].hasPrefix(label + "."),
              lowered.hasPrefix(Self.prefix) else { return nil }
        return MessageToken.decode(lowered[lowered.index(lowered.startIndex, offsetBy: Self.prefix.count)..<at], key: key)
    }
}

/// A delivery status notification (RFC 3464) as far as Herald reads one: whether it reports a permanent
/// failure, for which recipient, its status code and the remote server's words.
public struct DeliveryReport: Sendable, Equatable {
    /// `5.1.1`.
    public var status: String
    /// The remote server's reply (`550 5.1.1 …`) or, without a Diagnostic-Code, the status.
    public var diagnostic: String
    /// The addresses the recipient block names: its `Final-Recipient` and, when there is one, its
    /// `Original-Recipient` (the address as the sender gave it, before any forwarding rewrote it).
    public var recipients: [String]

    public init(status: String, diagnostic: String, recipients: [String] = []) {
        self.status = status
        self.diagnostic = diagnostic
        self.recipients = recipients
    }

    /// The first recipient block with `Action: failed` and a 5.x.x `Status`; nil for delays, successes,
    /// auto-replies and anything else.
    public static func permanentFailure(in message: [UInt8]) -> DeliveryReport? {
        permanentFailures(in: message).first
    }

    /// The permanent failure the report gives for `recipient` (the message's own recipient): a report that
    /// arrives at a message's return path but names someone else (forwarded, forged, or about another
    /// message) says nothing about this message, so it is nil.
    public static func permanentFailure(in message: [UInt8], for recipient: String) -> DeliveryReport? {
        permanentFailures(in: message).first { $0.names(recipient) }
    }

    /// Whether the block is about `address`: its Final- or Original-Recipient is that address, the domain
    /// compared without regard to case (RFC 5321 §2.4; the local part is the receiving server's to interpret,
    /// so it must match as written).
    public func names(_ address: String) -> Bool {
        recipients.contains { Self.sameAddress($0, address) }
    }

    static func sameAddress(_ a: String, _ b: String) -> Bool {
        guard let atA = a.lastIndex(of: "@"), let atB = b.lastIndex(of: "@") else { return false }
        return a[..<atA] == b[..<atB] && a[a.index(after: atA)...].lowercased() == b[b.index(after: atB)...].lowercased()
    }

    /// Every recipient block with `Action: failed` and a 5.x.x `Status`, in order.
    public static func permanentFailures(in message: [UInt8]) -> [DeliveryReport] {
        let text = String(decoding: message.prefix(256 * 1024), as: UTF8.self)
        var reports: [DeliveryReport] = []
        var action: String?, status: String?, diagnostic: String?, recipients: [String] = []
        func finish() {
            defer { action = nil; status = nil; diagnostic = nil; recipients = [] }
            guard action == "failed", let status, status.hasPrefix("5.") else { return }
            reports.append(DeliveryReport(status: status, diagnostic: diagnostic ?? "550 \(status)", recipients: recipients))
        }
        // Fields of one block are consecutive lines; an empty line ends a block. Folded lines are joined.
        let unfolded = text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\n ", with: " ")
            .replacingOccurrences(of: "\n\t", with: " ")
        for line in unfolded.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.trimmingCharacters(in: .whitespaces).isEmpty {
                finish()
                continue
            }
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased(), value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            switch name {
            case "action": action = value.lowercased().split(separator: " ").first.map(String.init)
            case "status": status = value.split(separator: " ").first.map(String.init)
            case "final-recipient", "original-recipient":
                // `rfc822; ann@example.org` (some servers put the address in angle brackets).
                let address = value.split(separator: ";", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? value
                let bare = address.hasPrefix("<") && address.hasSuffix(">") ? String(address.dropFirst().dropLast()) : address
                if !bare.isEmpty { recipients.append(bare) }
            case "diagnostic-code":
                // `smtp; 550 5.1.1 <ann@example.org>: user unknown`
                let reply = value.split(separator: ";", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? value
                diagnostic = String(reply.prefix(1000))
            default: break
            }
        }
        finish()
        return reports
    }
}

/// The unsubscribe links of a message: the https link (``UnsubscribeToken`` under `/u/`) for the body's
/// `${unsubscribe}` and List-Unsubscribe, and, when the operator configured an unsubscribe address, the
/// `mailto:` next to it.
public struct UnsubscribeLinks: Sendable {
    public let publicURL: String
    /// The https tokens' key.
    public let key: SymmetricKey
    public let mailbox: UnsubscribeMailbox?

    public init(publicURL: String, masterKey: MasterKey, mailbox: UnsubscribeMailbox? = nil) {
        self.publicURL = publicURL
        self.key = masterKey.derive("unsubscribe")
        self.mailbox = mailbox
    }

    /// The https link (tenant, message, scope).
    public func url(tenant: UUID, message: UUID, scope: String) -> String {
        publicURL + "/u/" + UnsubscribeToken(tenantID: tenant, messageID: message, scope: scope).encode(key: key)
    }

    /// The header fields of RFC 8058 one-click unsubscribe: List-Unsubscribe (the https link first, then
    /// the mailto when there is one) and List-Unsubscribe-Post.
    public func headers(tenant: UUID, message: UUID, scope: String) -> [(String, String)] {
        var value = "<\(url(tenant: tenant, message: message, scope: scope))>"
        if let mailbox { value += ", <\(mailbox.uri(for: message))>" }
        return [("List-Unsubscribe", value), ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")]
    }

    /// A link's token, checked (nil when forged, altered or truncated).
    public func token(_ text: String) -> UnsubscribeToken? {
        UnsubscribeToken.decode(text, key: key)
    }
}

extension UInt8 {
    var isASCIILetterOrDigit: Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(self) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(self)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self)
    }
}
