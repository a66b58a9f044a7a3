import Crypto
import Foundation
import Testing
@testable import HeraldCore

/// The operator's console session (issue #19): the token check, the signed cookie, idle expiry and lifetime on an
/// injected clock, the key bound to the operator token, CSRF tokens.
@Suite struct ConsoleOperatorSessionTests {
    let console = SymmetricKey(data: Array(repeating: UInt8(9), count: 32))
    let token = "operator-token-0123456789"
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    var key: SymmetricKey { ConsoleOperatorSession.key(console: console, adminToken: token) }

    @Test func signInNeedsTheOperatorToken() throws {
        #expect(ConsoleOperatorSession.signIn(token: "wrong", adminToken: token, now: start) == nil)
        #expect(ConsoleOperatorSession.signIn(token: token + "x", adminToken: token, now: start) == nil)
        #expect(ConsoleOperatorSession.signIn(token: "", adminToken: token, now: start) == nil)
        #expect(ConsoleOperatorSession.signIn(token: "", adminToken: "", now: start) == nil, "no operator token configured: no one signs in")
        let session = try #require(ConsoleOperatorSession.signIn(token: token, adminToken: token, now: start))
        #expect(session.issuedAt == 1_800_000_000 && session.seenAt == session.issuedAt && session.nonce.count == 22)
    }

    @Test func cookieRoundTripsAndExpires() throws {
        let session = try #require(ConsoleOperatorSession.signIn(token: token, adminToken: token, now: start))
        let cookie = session.encode(key: key)
        #expect(ConsoleOperatorSession.decode(cookie, key: key, now: start.addingTimeInterval(60)) == session)
        // Idle: 30 minutes without a page.
        #expect(ConsoleOperatorSession.decode(cookie, key: key, now: start.addingTimeInterval(ConsoleOperatorSession.idle - 1)) != nil)
        #expect(ConsoleOperatorSession.decode(cookie, key: key, now: start.addingTimeInterval(ConsoleOperatorSession.idle)) == nil)
        // Seen again, it lives on, but never past its lifetime.
        var moving = session
        var now = start
        while now.timeIntervalSince(start) < ConsoleOperatorSession.lifetime - 600 {
            now = now.addingTimeInterval(600)
            let seen = try #require(ConsoleOperatorSession.decode(moving.encode(key: key), key: key, now: now), "\(now)")
            moving = seen.seen(at: now)
        }
        #expect(ConsoleOperatorSession.decode(moving.encode(key: key), key: key, now: start.addingTimeInterval(ConsoleOperatorSession.lifetime)) == nil)
        // Issued in the future (a forged clock) is refused.
        let future = ConsoleOperatorSession(issuedAt: Int(start.timeIntervalSince1970) + 3_600, seenAt: Int(start.timeIntervalSince1970) + 3_600)
        #expect(ConsoleOperatorSession.decode(future.encode(key: key), key: key, now: start) == nil)
    }

    @Test func tamperedOrForeignCookiesAreRefused() throws {
        let session = try #require(ConsoleOperatorSession.signIn(token: token, adminToken: token, now: start))
        let cookie = session.encode(key: key)
        let parts = cookie.split(separator: ".").map(String.init)
        // Another payload under the same tag.
        let forged = ConsoleOperatorSession(nonce: session.nonce, issuedAt: session.issuedAt + 3_000, seenAt: session.seenAt + 3_000)
        let forgedPayload = String(forged.encode(key: key).split(separator: ".")[0])
        #expect(ConsoleOperatorSession.decode(forgedPayload + "." + parts[1], key: key, now: start) == nil)
        #expect(ConsoleOperatorSession.decode(parts[0], key: key, now: start) == nil)
        #expect(ConsoleOperatorSession.decode(cookie + ".x", key: key, now: start) == nil)
        #expect(ConsoleOperatorSession.decode("", key: key, now: start) == nil)
        // Signed under the console key itself, or after the operator token changed: refused.
        #expect(ConsoleOperatorSession.decode(session.encode(key: console), key: key, now: start) == nil)
        let rotated = ConsoleOperatorSession.key(console: console, adminToken: "another-token")
        #expect(ConsoleOperatorSession.decode(cookie, key: rotated, now: start) == nil)
        // A tenant's session cookie (signed with the console key) is not an operator's, whatever the key.
        let tenant = ConsoleSession(tenantID: UUID(), userID: UUID(), accessKeyID: "LTAIkey", issuedAt: session.issuedAt, seenAt: session.seenAt)
        #expect(ConsoleOperatorSession.decode(tenant.encode(key: key), key: key, now: start) == nil)
        #expect(ConsoleOperatorSession.decode(tenant.encode(key: console), key: console, now: start) == nil)
    }

    @Test func csrfTokensBelongToTheSession() throws {
        let one = try #require(ConsoleOperatorSession.signIn(token: token, adminToken: token, now: start))
        let two = try #require(ConsoleOperatorSession.signIn(token: token, adminToken: token, now: start))
        #expect(one.nonce != two.nonce)
        #expect(one.accepts(csrf: one.csrfToken(key: key), key: key))
        #expect(!one.accepts(csrf: two.csrfToken(key: key), key: key))
        #expect(!one.accepts(csrf: nil, key: key) && !one.accepts(csrf: "", key: key))
        // Not the tenant session's token for the same nonce either.
        let tenant = ConsoleSession(tenantID: UUID(), userID: UUID(), accessKeyID: "k", nonce: one.nonce, issuedAt: one.issuedAt, seenAt: one.seenAt)
        #expect(!one.accepts(csrf: tenant.csrfToken(key: key), key: key))
        #expect(one.seen(at: start.addingTimeInterval(-100)).seenAt == one.seenAt, "the clock going back does not move seenAt back")
    }
}
