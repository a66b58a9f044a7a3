import HeraldCore
import Testing

@Suite struct TemplateTests {
    @Test func parsesPlaceholdersAndLeavesTheRestAlone() {
        #expect(MailTemplate.parse("Hi ${name}, ${ bad} ${9x} ${} $name ${open") == [
            .text("Hi "), .variable("name"), .text(", ${ bad} ${9x} ${} $name ${open"),
        ])
        #expect(MailTemplate.parse("${a}${b_2}") == [.variable("a"), .variable("b_2")])
        #expect(MailTemplate.parse("$${x}$") == [.text("$"), .variable("x"), .text("$")])
        #expect(MailTemplate.variables(subject: "${name} ${code}", html: "<p>${name}</p>${unsubscribe}", text: "${code} ${extra}")
                == ["name", "code", "unsubscribe", "extra"])
    }

    @Test func rendersEscapingHTMLValuesOnly() {
        let rendered = MailTemplate.render(
            subject: "Hello ${name}\r\nBcc: victim@example.com", html: "<p>${name}</p><a href=\"${unsubscribe}\">Leave</a> ${missing}",
            text: "Dear ${name}, leave at ${unsubscribe}", variables: ["name": "<script>alert('x')</script> & \"co\""],
            unsubscribeURL: "https://h.test/u/TOKEN")
        #expect(rendered.html == "<p>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;co&quot;</p><a href=\"https://h.test/u/TOKEN\">Leave</a> ")
        #expect(rendered.text == "Dear <script>alert('x')</script> & \"co\", leave at https://h.test/u/TOKEN")
        #expect(!rendered.subject.contains("\n") && !rendered.subject.contains("\r"))
        #expect(rendered.subject.hasPrefix("Hello <script>"))
    }

    @Test func shapeRules() {
        #expect(throws: Never.self) { try MailTemplate.validate(name: "welcome", subject: "Hi", html: "<p>x</p>", text: nil) }
        #expect(throws: HeraldError.self) { try MailTemplate.validate(name: "", subject: "Hi", html: "x", text: nil) }
        #expect(throws: HeraldError.self) { try MailTemplate.validate(name: "w", subject: String(repeating: "s", count: 101), html: "x", text: nil) }
        #expect(throws: HeraldError.self) { try MailTemplate.validate(name: "w", subject: "Hi", html: nil, text: "") }
        #expect(throws: HeraldError.self) { try MailTemplate.validate(name: "w", subject: "Hi", html: String(repeating: "x", count: 80 * 1024 + 1), text: nil) }
        #expect(throws: Never.self) { try MailTemplate.validate(name: "w", subject: String(repeating: "s", count: 100), html: String(repeating: "x", count: 80 * 1024), text: nil) }
    }

    @Test func contentChecks() {
        #expect(MailTemplate.contentProblems(kind: .batch, subject: "News", html: "<p>x</p>${unsubscribe}", text: "x ${unsubscribe}", sensitiveWords: ["casino"]).isEmpty)
        let missing = MailTemplate.contentProblems(kind: .batch, subject: "News", html: "<p>x</p>", text: "x ${unsubscribe}", sensitiveWords: [])
        #expect(missing == ["the html part of a batch template must contain ${unsubscribe}"])
        #expect(MailTemplate.contentProblems(kind: .trigger, subject: "Reset", html: "<p>x</p>", text: nil, sensitiveWords: []).isEmpty)
        let words = MailTemplate.contentProblems(kind: .trigger, subject: "Win at the CASINO", html: nil, text: "free viagra", sensitiveWords: ["casino", "viagra", "lottery"])
        #expect(words == ["contains sensitive words: casino, viagra"])
    }
}
