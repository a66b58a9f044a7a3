import Crypto
import Foundation

/// Open and click tracking links. The tokens have the unsubscribe token's form (tenant, message, a scope
/// string, a full HMAC-SHA256 tag) under their own key, so one kind of link never passes for the other: an
/// open's scope is `open`, a click's is `click:` and the target URL itself, so a click token redirects only to
/// the URL it was made for and cannot be replayed with another target.
public struct TrackingLinks: Sendable {
    /// Base of the links (`HERALD_PUBLIC_URL`).
    public var publicURL: String
    let key: SymmetricKey

    public init(publicURL: String, key: SymmetricKey) {
        self.publicURL = publicURL
        self.key = key
    }

    public init(publicURL: String, masterKey: MasterKey) {
        self.init(publicURL: publicURL, key: masterKey.derive("tracking"))
    }

    /// The two kinds of tracking link.
    public enum Kind: Sendable {
        case open, click
    }

    public enum Link: Sendable, Equatable {
        case open
        case click(String)
    }

    public func openURL(tenantID: UUID, messageID: UUID) -> String {
        publicURL + "/t/o/" + UnsubscribeToken(tenantID: tenantID, messageID: messageID, scope: "open").encode(key: key)
    }

    public func clickURL(tenantID: UUID, messageID: UUID, target: String) -> String {
        publicURL + "/t/c/" + UnsubscribeToken(tenantID: tenantID, messageID: messageID, scope: "click:" + target).encode(key: key)
    }

    /// The tenant, message and link a token names; nil when it is forged, altered or of the other kind.
    public func decode(_ token: String, expecting kind: Kind) -> (tenantID: UUID, messageID: UUID, link: Link)? {
        guard let decoded = UnsubscribeToken.decode(token, key: key, maxLength: 4_096) else { return nil }
        switch kind {
        case .open where decoded.scope == "open":
            return (decoded.tenantID, decoded.messageID, .open)
        case .click where decoded.scope.hasPrefix("click:"):
            return (decoded.tenantID, decoded.messageID, .click(String(decoded.scope.dropFirst(6))))
        default:
            return nil
        }
    }

    /// The HTML part with every http(s) link in an `href` sent through a click link (except Herald's own
    /// links, such as the unsubscribe link) and a 1×1 image before `</body>` (or at the end).
    public func rewrite(html: String, tenantID: UUID, messageID: UUID) -> String {
        var output = ""
        output.reserveCapacity(html.utf8.count + 512)
        var rest = Substring(html)
        while let range = rest.range(of: "href=", options: .caseInsensitive) {
            output += rest[..<range.upperBound]
            rest = rest[range.upperBound...]
            guard let quote = rest.first, quote == "\"" || quote == "'", let end = rest.dropFirst().firstIndex(of: quote) else { continue }
            let written = rest[rest.index(after: rest.startIndex)..<end]
            let target = Self.unescapeAttribute(String(written))
            let lowered = target.lowercased()
            if (lowered.hasPrefix("http://") || lowered.hasPrefix("https://")) && !target.hasPrefix(publicURL + "/") {
                output += String(quote) + MailTemplate.escapeHTML(clickURL(tenantID: tenantID, messageID: messageID, target: target)) + String(quote)
            } else {
                output += rest[...end]
            }
            rest = rest[rest.index(after: end)...]
        }
        output += rest
        let pixel = "<img src=\"\(MailTemplate.escapeHTML(openURL(tenantID: tenantID, messageID: messageID)))\" width=\"1\" height=\"1\" alt=\"\" style=\"display:block;border:0\">"
        if let body = output.range(of: "</body>", options: [.caseInsensitive, .backwards]) {
            output.insert(contentsOf: pixel, at: body.lowerBound)
        } else {
            output += pixel
        }
        return output
    }

    /// `&amp;` and the other entities an attribute value may hold, for the URL a browser would follow.
    static func unescapeAttribute(_ value: String) -> String {
        guard value.contains("&") else { return value }
        return value.replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&#39;", with: "'")
            .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&amp;", with: "&")
    }

    /// The 1×1 transparent GIF of the open link.
    public static let pixel: [UInt8] = [
        0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00,
        0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
    ]
}
