import Foundation
import HeraldCore
import HeraldStore

/// A claimed message with its addresses parsed once (``MailAddress``), as the worker carries it from the
/// claim to the wire.
struct OutgoingMail: Sendable {
    var message: ClaimedMessage
    var from: MailAddress
    var to: MailAddress

    init(_ message: ClaimedMessage) throws {
        self.message = message
        from = try MailAddress(message.from)
        to = try MailAddress(message.to)
    }

    var id: UUID { message.id }

    /// The tenant and sending domain, which name its signing key and its return path.
    var sendingDomain: String { "\(message.tenantID)|\(from.domain)" }
}

/// The DKIM signers of each sending domain of a batch, by ``OutgoingMail/sendingDomain``: the RSA key, then
/// the Ed25519 key when the domain has one whose record checked out.
typealias SigningKeys = [String: [DKIM.Signer]]

extension DeliveryWorker {
    /// The message's extra header fields, with RFC 8058 one-click unsubscribe (tenant-wide scope) on mail
    /// accepted with `unsubscribeLink` (trigger mail whose tenant asked for it, single sends from a batch-type
    /// sender); batch tasks' messages have theirs, with the list's scope, from the expansion.
    func headers(_ message: ClaimedMessage) -> [(name: String, value: String)] {
        guard message.unsubscribeLink, message.kind != .system, let unsubscribeLinks,
              !message.headers.contains(where: { $0.name.lowercased() == "list-unsubscribe" }) else { return message.headers }
        return message.headers + unsubscribeLinks.headers(tenant: message.tenantID, message: message.id, scope: "*").map { (name: $0.0, value: $0.1) }
    }

    /// The envelope sender (MAIL FROM) of a message: its VERP return path when its domain has one in place.
    func envelopeSender(_ mail: OutgoingMail, returnPaths: Set<String>) -> String {
        guard let returnPath, returnPaths.contains(mail.sendingDomain) else { return mail.message.from }
        return returnPath.address(for: mail.id, domain: mail.from.domain)
    }

    /// The message as it goes on the wire, DKIM-signed with its domain's signing keys (one field each).
    func build(_ mail: OutgoingMail, keys: SigningKeys) throws -> [UInt8] {
        let message = mail.message, from = mail.from
        if let raw = message.raw {
            // Submitted over SMTP: sent as submitted, with Herald's fields on top where the message has none.
            let fields = [("X-Herald-Message-Id", message.id.lowercasedString),
                          ("Message-ID", "<\(message.id.lowercasedString)@\(from.domain)>"),
                          ("Date", MIME.rfc5322Date(message.createdAt))] + (message.replyTo.map { [("Reply-To", ReplyToRule.field($0))] } ?? [])
                + headers(message).map { ($0.name, $0.value) }
            let prepared = MIME.prepending(fields, to: raw)
            guard let signers = keys[mail.sendingDomain] else { return prepared }
            return try DKIM.sign(prepared, domain: from.domain, signers: signers, at: now())
        }
        let outgoing = OutgoingMessage(from: from, fromName: message.fromName, to: mail.to,
                                       replyTo: message.replyTo, subject: message.subject,
                                       html: message.html.map { html in
                                           guard message.tracking, let tracking else { return html }
                                           return tracking.rewrite(html: html, tenantID: message.tenantID, messageID: message.id)
                                       },
                                       text: message.text, messageID: "\(message.id.lowercasedString)@\(from.domain)",
                                       heraldMessageID: message.id.lowercasedString, date: message.createdAt, extraHeaders: headers(message))
        let rendered = outgoing.render()
        guard let signers = keys[mail.sendingDomain] else { return rendered }
        return try DKIM.sign(rendered, domain: from.domain, signers: signers, at: now())
    }
}
