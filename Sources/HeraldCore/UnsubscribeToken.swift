import Crypto
import Foundation

/// The per-recipient unsubscribe link's token: `tenant.message.scope.tag`, the tag a full HMAC-SHA256
/// under a key derived from the master key, so it is checked without a database read and cannot be
/// forged or altered. The scope says what the recipient leaves: `*` (the tenant's mail), `list:<id>` or
/// `tag:<name>`.
public struct UnsubscribeToken: Sendable, Equatable {
    public var tenantID: UUID
    public var messageID: UUID
    public var scope: String

    public init(tenantID: UUID, messageID: UUID, scope: String) {
        self.tenantID = tenantID
        self.messageID = messageID
        self.scope = scope
    }

    public func encode(key: SymmetricKey) -> String {
        let body = [Base64URL.encode(ReplyToToken.bytes(tenantID)), Base64URL.encode(ReplyToToken.bytes(messageID)),
                    Base64URL.encode(Array(scope.utf8))].joined(separator: ".")
        return body + "." + Base64URL.encode(Array(HMAC<SHA256>.authenticationCode(for: Array(body.utf8), using: key)))
    }

    public static func decode(_ token: String, key: SymmetricKey, maxLength: Int = 512) -> UnsubscribeToken? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard token.utf8.count <= maxLength, parts.count == 4, let tag = Base64URL.decode(String(parts[3])), tag.count == 32,
              Base64URL.encode(tag) == parts[3] else { return nil }
        let body = parts[0..<3].joined(separator: ".")
        guard HMAC<SHA256>.isValidAuthenticationCode(tag, authenticating: Array(body.utf8), using: key),
              let tenant = Base64URL.decode(String(parts[0])).flatMap(ReplyToToken.uuid),
              let message = Base64URL.decode(String(parts[1])).flatMap(ReplyToToken.uuid),
              let scope = Base64URL.decode(String(parts[2])).map({ String(decoding: $0, as: UTF8.self) }) else { return nil }
        return UnsubscribeToken(tenantID: tenant, messageID: message, scope: scope)
    }
}
