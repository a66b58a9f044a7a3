import Foundation

/// An email address as Herald accepts it from tenants: an RFC 5321 dot-atom local part (no quoted
/// strings, no comments) and a domain name, case-folded to lower case for storage and comparison.
public struct MailAddress: Hashable, Sendable, CustomStringConvertible {
    /// The part before `@`.
    public let localPart: String
    /// The domain, lower case.
    public let domain: String

    /// `local@domain`.
    public var description: String { "\(localPart)@\(domain)" }

    static let atext = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~".unicodeScalars)

    /// Parses and normalises an address, naming `field` when it is refused.
    public init(_ text: String, field: String = "address") throws(HeraldError) {
        let text = text.trimmingWhitespace
        guard text.utf8.count <= 254, let at = text.lastIndex(of: "@") else {
            throw .validation("\(field) is not an email address like name@example.com.", field: field)
        }
        let local = String(text[..<at])
        let domainPart = String(text[text.index(after: at)...])
        let atoms = local.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...64).contains(local.utf8.count), !atoms.contains(where: \.isEmpty),
              local.unicodeScalars.allSatisfy({ $0 == "." || Self.atext.contains($0) }) else {
            throw .validation("\(field) has an invalid local part (before @).", field: field)
        }
        localPart = local.lowercased()
        domain = try SendingDomain.normalize(domainPart, field: field)
    }
}

/// The rule and storage of SMTP submission passwords: 10–64 characters with an upper-case letter, a
/// lower-case letter and a digit; stored as scrypt (N = 2^15, r = 8, p = 1) with a 16-byte salt.
public enum SMTPPassword {
    /// Refuses a weak password, naming the field.
    public static func validate(_ password: String, field: String = "password") throws(HeraldError) {
        guard (10...64).contains(password.count), password.unicodeScalars.allSatisfy({ $0.isASCII && $0.value >= 0x20 && $0.value < 0x7F }),
              password.contains(where: \.isUppercase), password.contains(where: \.isLowercase), password.contains(where: \.isNumber) else {
            throw .validation("The SMTP password must be 10 to 64 printable ASCII characters with an upper-case letter, a lower-case letter and a digit.",
                              field: field)
        }
    }
}

/// Tag names: 1–64 characters of letters, digits, `_`, `.` and `-`, starting with a letter or digit.
public enum TagName {
    public static func validate(_ name: String, field: String = "name") throws(HeraldError) {
        guard (1...64).contains(name.count), let first = name.unicodeScalars.first,
              CharacterSet.alphanumerics.contains(first), first.isASCII,
              name.unicodeScalars.allSatisfy({ $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "_.-".unicodeScalars.contains($0)) }) else {
            throw .validation("\(field) must be 1 to 64 letters, digits, _ . or -, starting with a letter or digit.", field: field)
        }
    }
}

/// Signed, expiring links that confirm a sender's reply-to address (`GET /r/{token}`): HMAC-SHA256 under a
/// key derived from the master key, over the sender, the address and a nonce that changes with every new
/// reply-to, so a link confirms exactly one address once asked for. Validated without a database read.
public struct ReplyToToken: Sendable, Equatable {
    public var tenantID: UUID
    public var senderID: UUID
    public var nonce: String
    public var expires: Date

    public init(tenantID: UUID, senderID: UUID, nonce: String, expires: Date) {
        self.tenantID = tenantID
        self.senderID = senderID
        self.nonce = nonce
        self.expires = expires
    }
}

/// The mail that asks a reply-to address to confirm itself: Herald's own (system) mail, queued with the
/// change that made the address pending.
public struct ReplyToConfirmationMail: Sendable {
    /// Signs the links.
    public let key: SymmetricKeyBox
    /// Base of the link (`HERALD_PUBLIC_URL`).
    public let publicURL: String
    /// The sender of Herald's own mail (`HERALD_SYSTEM_FROM`).
    public let from: MailAddress
    /// How long a link works.
    public let lifetime: TimeInterval

    public init(key: SymmetricKeyBox, publicURL: String, from: MailAddress, lifetime: TimeInterval = 7 * 86_400) {
        self.key = key
        self.publicURL = publicURL
        self.from = from
        self.lifetime = lifetime
    }

    /// Subject, text and HTML of the confirmation for `replyTo` of `sender`.
    public func content(tenantID: UUID, senderID: UUID, sender: String, replyTo: String, nonce: String, now: Date) -> (subject: String, text: String, html: String) {
        let token = ReplyToToken(tenantID: tenantID, senderID: senderID, nonce: nonce, expires: now.addingTimeInterval(lifetime))
        let link = publicURL + "/r/" + token.encode(key: key.key)
        let subject = "Confirm \(replyTo) as a reply-to address"
        let text = """
            \(sender) wants replies to its mail to go to \(replyTo).
            If that is you and you agree, open this link within 7 days:

            \(link)

            If you did not expect this, ignore this mail; nothing changes.
            """
        let html = """
            <p>\(MailTemplate.escapeHTML(sender)) wants replies to its mail to go to \(MailTemplate.escapeHTML(replyTo)).</p>
            <p>If that is you and you agree, <a href="\(MailTemplate.escapeHTML(link))">confirm the address</a> within 7 days.</p>
            <p>If you did not expect this, ignore this mail; nothing changes.</p>
            """
        return (subject, text, html)
    }
}

extension String {
    /// `trimmingCharacters(in: .whitespaces)`, without its cost when there is nothing to trim (every address
    /// of every send passes here).
    var trimmingWhitespace: String {
        guard let first = unicodeScalars.first, let last = unicodeScalars.last else { return self }
        if CharacterSet.whitespaces.contains(first) || CharacterSet.whitespaces.contains(last) {
            return trimmingCharacters(in: .whitespaces)
        }
        return self
    }
}
