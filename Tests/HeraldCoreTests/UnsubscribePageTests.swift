import Crypto
import Foundation
import HeraldCore
import Testing

@Suite struct UnsubscribePageTests {
    @Test func languageFromAcceptLanguage() {
        #expect(UnsubscribePage.language(nil) == .english)
        #expect(UnsubscribePage.language("zh-CN,zh;q=0.9,en;q=0.8") == .chinese)
        #expect(UnsubscribePage.language("en-US,en;q=0.9,zh;q=0.8") == .english)
        #expect(UnsubscribePage.language("fr-FR, zh-TW;q=0.5") == .chinese)
        #expect(UnsubscribePage.language("de, fr") == .english)
        #expect(UnsubscribePage.language("en;q=0.2, zh;q=0.7") == .chinese)
        #expect(UnsubscribePage.language("zh;q=0, en") == .english)
        #expect(UnsubscribePage.language(";;,,q=") == .english)
    }

    @Test func masking() {
        #expect(UnsubscribePage.mask("ann@example.org") == "a**@example.org")
        #expect(UnsubscribePage.mask("a@example.org") == "a@example.org")
        #expect(UnsubscribePage.mask("jonathan.smith@example.org") == "j******h@example.org")
        #expect(UnsubscribePage.mask("bob.x@example.org") == "b***x@example.org")
        #expect(UnsubscribePage.mask("no-at-sign") == "********")
    }

    @Test func pagesEscapeAndNeedNoScript() {
        let page = UnsubscribePage.confirm(address: "<x>@example.org", scope: "tag:<b>news</b>", language: .english)
        #expect(!page.contains("<b>news") && page.contains("&lt;b&gt;news") && !page.contains("<script"))
        #expect(page.contains("<form method=\"post\">") && page.contains("name=\"List-Unsubscribe\" value=\"One-Click\""))
        #expect(page.contains("<html lang=\"en\">"))
        let chinese = UnsubscribePage.done(address: "ann@example.org", scope: "*", language: .chinese)
        #expect(chinese.contains("lang=\"zh-CN\"") && chinese.contains("a**@example.org") && !chinese.contains("ann@"))
        #expect(UnsubscribePage.notFound(language: .english).contains("not valid"))
    }
}

/// The console's session cookie (issue #19).
@Suite struct ConsoleSessionTests {
    @Test func signedExpiringAndBoundToItsCSRFToken() throws {
        let key = SymmetricKey(size: .bits256), other = SymmetricKey(size: .bits256)
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        let session = ConsoleSession(tenantID: UUID(), userID: UUID(), accessKeyID: "LTAIkey", issuedAt: Int(start.timeIntervalSince1970),
                                     seenAt: Int(start.timeIntervalSince1970))
        let cookie = session.encode(key: key)
        #expect(ConsoleSession.decode(cookie, key: key, now: start.addingTimeInterval(60)) == session)
        #expect(ConsoleSession.decode(cookie, key: other, now: start) == nil, "another key")
        #expect(ConsoleSession.decode("x" + cookie, key: key, now: start) == nil && ConsoleSession.decode(cookie + "x", key: key, now: start) == nil)
        #expect(ConsoleSession.decode(cookie, key: key, now: start.addingTimeInterval(ConsoleSession.idle)) == nil, "idle")
        var busy = session
        busy.seenAt += 11 * 3_600 + 50 * 60
        #expect(ConsoleSession.decode(busy.encode(key: key), key: key, now: start.addingTimeInterval(11 * 3_600 + 55 * 60)) != nil, "kept busy")
        #expect(ConsoleSession.decode(busy.encode(key: key), key: key, now: start.addingTimeInterval(12 * 3_600)) == nil, "lifetime")
        #expect(session.accepts(csrf: session.csrfToken(key: key), key: key))
        #expect(!session.accepts(csrf: session.csrfToken(key: other), key: key) && !session.accepts(csrf: nil, key: key))
        let another = ConsoleSession(tenantID: session.tenantID, userID: session.userID, accessKeyID: "LTAIkey", issuedAt: 0, seenAt: 0)
        #expect(!session.accepts(csrf: another.csrfToken(key: key), key: key), "a token is its session's")
    }
}
