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
