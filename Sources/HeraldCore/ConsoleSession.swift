import Crypto
import Foundation

/// A console sign-in (issue #19), carried in an `HttpOnly` cookie: who signed in (tenant, user, AccessKey), a
/// random nonce, when, and when last seen, signed with HMAC-SHA256 under the console's key. Nothing is stored on
/// the server: the principal is loaded again on every page (a disabled user or deleted key is out at once), the
/// cookie is re-issued with a new `seenAt` as the user moves, and it stops working after `idle` without a page
/// or `lifetime` after sign-in. The CSRF token of its forms is an HMAC of the nonce.
public struct ConsoleSession: Sendable, Equatable {
    public var tenantID: UUID
    public var userID: UUID
    public var accessKeyID: String
    /// 16 random bytes, base64url: the session's own name (the CSRF token derives from it).
    public var nonce: String
    /// Seconds since 1970.
    public var issuedAt: Int
    public var seenAt: Int

    /// Sign-outs after this long without a page.
    public static let idle: TimeInterval = 30 * 60
    /// …and this long after sign-in, whatever happened.
    public static let lifetime: TimeInterval = 12 * 3_600

    public init(tenantID: UUID, userID: UUID, accessKeyID: String, nonce: String = ConsoleSession.newNonce(), issuedAt: Int, seenAt: Int) {
        self.tenantID = tenantID
        self.userID = userID
        self.accessKeyID = accessKeyID
        self.nonce = nonce
        self.issuedAt = issuedAt
        self.seenAt = seenAt
    }

    public static func newNonce() -> String {
        var generator = SystemRandomNumberGenerator()
        return Base64URL.encode((0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }

    /// The cookie's value: `payload.tag`, both base64url (``SignedCookie``).
    public func encode(key: SymmetricKey) -> String {
        SignedCookie.seal([tenantID.lowercasedString, userID.lowercasedString, accessKeyID, nonce, String(issuedAt), String(seenAt)], key: key)
    }

    /// The session a cookie carries, when its tag checks and it has neither idled out nor lived too long at `now`.
    public static func decode(_ text: String, key: SymmetricKey, now: Date) -> ConsoleSession? {
        guard let fields = SignedCookie.open(text, key: key, limit: 1_024), fields.count == 6,
              let tenantID = UUID(uuidString: fields[0]), let userID = UUID(uuidString: fields[1]),
              let issuedAt = Int(fields[4]), let seenAt = Int(fields[5]),
              SignedCookie.isFresh(issuedAt: issuedAt, seenAt: seenAt, now: now, idle: idle, lifetime: lifetime) else { return nil }
        return ConsoleSession(tenantID: tenantID, userID: userID, accessKeyID: fields[2], nonce: fields[3], issuedAt: issuedAt, seenAt: seenAt)
    }

    /// The token every form of this session carries.
    public func csrfToken(key: SymmetricKey) -> String { SignedCookie.tag("csrf|" + nonce, key: key) }

    /// Whether a form's token is this session's.
    public func accepts(csrf token: String?, key: SymmetricKey) -> Bool { SignedCookie.matches(token, csrfToken(key: key)) }
}

/// The stateless signed cookie of both console sessions (a tenant's, ``ConsoleSession``, and the operator's,
/// ``ConsoleOperatorSession``): the fields joined by `|` and base64url-encoded, a dot, and the HMAC-SHA256 tag of
/// that payload under the session's key; good while neither its idle time nor its lifetime has passed.
public enum SignedCookie {
    /// The cookie's value for `fields` (none may contain `|`).
    public static func seal(_ fields: [String], key: SymmetricKey) -> String {
        let payload = Base64URL.encode(Array(fields.joined(separator: "|").utf8))
        return payload + "." + tag(payload, key: key)
    }

    /// The fields of a cookie whose tag checks under `key`; nil for anything else or longer than `limit` bytes.
    public static func open(_ text: String, key: SymmetricKey, limit: Int) -> [String]? {
        guard text.utf8.count <= limit else { return nil }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, constantTimeEquals(Array(tag(String(parts[0]), key: key).utf8), Array(parts[1].utf8)),
              let bytes = Base64URL.decode(String(parts[0])) else { return nil }
        return String(decoding: bytes, as: UTF8.self).split(separator: "|", omittingEmptySubsequences: false).map(String.init)
    }

    /// Whether a session issued at `issuedAt` and last seen at `seenAt` (seconds since 1970) is still good at `now`:
    /// seen within `idle`, issued within `lifetime`, and not issued in the future (a minute of clock skew allowed).
    public static func isFresh(issuedAt: Int, seenAt: Int, now: Date, idle: TimeInterval, lifetime: TimeInterval) -> Bool {
        let seconds = now.timeIntervalSince1970
        return seconds - TimeInterval(seenAt) < idle && seconds - TimeInterval(issuedAt) < lifetime
            && TimeInterval(issuedAt) <= seconds + 60 && seenAt >= issuedAt
    }

    /// HMAC-SHA256 of `text` under `key`, base64url.
    public static func tag(_ text: String, key: SymmetricKey) -> String {
        Base64URL.encode(Array(HMAC<SHA256>.authenticationCode(for: Array(text.utf8), using: key)))
    }

    /// Whether a form's `token` is `expected` (in constant time; none is never).
    public static func matches(_ token: String?, _ expected: String) -> Bool {
        guard let token else { return false }
        return constantTimeEquals(Array(expected.utf8), Array(token.utf8))
    }
}
