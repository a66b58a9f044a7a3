import Crypto
import Foundation

/// An operator's console sign-in (issue #19, `/console/admin`), carried in its own `HttpOnly` cookie: a random
/// nonce, when it was issued and when last seen, signed with HMAC-SHA256 under a key of its own (``key(console:adminToken:)``:
/// derived from the console's key for the purpose "operator" and from the operator token, so that changing
/// `HERALD_ADMIN_TOKEN` signs every operator out, and a tenant's session cookie is never an operator's). Nothing is
/// stored on the server; the cookie is re-issued with a new `seenAt` as the operator moves and stops working after
/// ``idle`` without a page or ``lifetime`` after sign-in. The CSRF token of its forms is an HMAC of the nonce.
public struct ConsoleOperatorSession: Sendable, Equatable {
    /// 16 random bytes, base64url.
    public var nonce: String
    /// Seconds since 1970.
    public var issuedAt: Int
    public var seenAt: Int

    /// Signed out after this long without a page…
    public static let idle: TimeInterval = 30 * 60
    /// …and this long after sign-in, whatever happened (shorter than a tenant's: the operator may do everything).
    public static let lifetime: TimeInterval = 8 * 3_600
    /// What the payload starts with (a tenant session's payload never does).
    static let marker = "operator"

    public init(nonce: String = ConsoleSession.newNonce(), issuedAt: Int, seenAt: Int) {
        self.nonce = nonce
        self.issuedAt = issuedAt
        self.seenAt = seenAt
    }

    /// The key operator sessions are signed with: HMAC of the purpose and the operator token under the console key.
    public static func key(console: SymmetricKey, adminToken: String) -> SymmetricKey {
        let digest = SHA256.hash(data: Array(adminToken.utf8))
        let purpose = Array("herald console operator\u{0}".utf8) + Array(digest)
        return SymmetricKey(data: Array(HMAC<SHA256>.authenticationCode(for: purpose, using: console)))
    }

    /// Whether `given` is the operator token (compared in constant time; an empty token configured admits no one).
    public static func tokenMatches(_ given: String, adminToken: String) -> Bool {
        guard !adminToken.isEmpty else { return false }
        return constantTimeEquals(Array(given.utf8), Array(adminToken.utf8))
    }

    /// A new session at `now` when `given` is the operator token; nil otherwise.
    public static func signIn(token given: String, adminToken: String, now: Date) -> ConsoleOperatorSession? {
        guard tokenMatches(given, adminToken: adminToken) else { return nil }
        let seconds = Int(now.timeIntervalSince1970)
        return ConsoleOperatorSession(issuedAt: seconds, seenAt: seconds)
    }

    /// The same session seen again at `now` (its idle clock starts again; its lifetime does not).
    public func seen(at now: Date) -> ConsoleOperatorSession {
        var session = self
        session.seenAt = max(seenAt, Int(now.timeIntervalSince1970))
        return session
    }

    /// The cookie's value: `payload.tag`, both base64url (``SignedCookie``).
    public func encode(key: SymmetricKey) -> String {
        SignedCookie.seal([Self.marker, nonce, String(issuedAt), String(seenAt)], key: key)
    }

    /// The session a cookie carries, when its tag checks and it has neither idled out nor lived too long at `now`.
    public static func decode(_ text: String, key: SymmetricKey, now: Date) -> ConsoleOperatorSession? {
        guard let fields = SignedCookie.open(text, key: key, limit: 512), fields.count == 4, fields[0] == marker, !fields[1].isEmpty,
              let issuedAt = Int(fields[2]), let seenAt = Int(fields[3]),
              SignedCookie.isFresh(issuedAt: issuedAt, seenAt: seenAt, now: now, idle: idle, lifetime: lifetime) else { return nil }
        return ConsoleOperatorSession(nonce: fields[1], issuedAt: issuedAt, seenAt: seenAt)
    }

    /// The token every form of this session carries.
    public func csrfToken(key: SymmetricKey) -> String { SignedCookie.tag("operator-csrf|" + nonce, key: key) }

    /// Whether a form's token is this session's.
    public func accepts(csrf token: String?, key: SymmetricKey) -> Bool { SignedCookie.matches(token, csrfToken(key: key)) }
}
