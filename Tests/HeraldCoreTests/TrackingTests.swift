import Foundation
import HeraldCore
import Testing

@Suite struct TrackingTests {
    let links = TrackingLinks(publicURL: "https://herald.test", masterKey: MasterKey.random())
    let tenant = UUID(), message = UUID()

    @Test func rewriteSendsLinksThroughClickTokensAndAddsThePixel() throws {
        let html = """
            <html><body><a href="https://example.org/a?x=1&amp;y=2">A</a> <A HREF='http://example.org/b'>B</A>
            <a href="mailto:someone@example.org">mail</a> <a href="https://herald.test/u/TOKEN">leave</a> <a href=noquote>n</a></body></html>
            """
        let rewritten = links.rewrite(html: html, tenantID: tenant, messageID: message)
        #expect(!rewritten.contains("https://example.org/a") && !rewritten.contains("http://example.org/b"))
        #expect(rewritten.contains("mailto:someone@example.org") && rewritten.contains("https://herald.test/u/TOKEN") && rewritten.contains("href=noquote"))
        let clicks = rewritten.components(separatedBy: "https://herald.test/t/c/").dropFirst().map { String($0.prefix { $0 != "\"" && $0 != "'" }) }
        #expect(clicks.count == 2)
        #expect(links.decode(clicks[0], expecting: .click)?.link == .click("https://example.org/a?x=1&y=2"))
        #expect(links.decode(clicks[1], expecting: .click)?.link == .click("http://example.org/b"))
        let pixel = try #require(rewritten.range(of: "<img src=\"https://herald.test/t/o/"))
        #expect(pixel.lowerBound < rewritten.range(of: "</body>")!.lowerBound)
        #expect(links.rewrite(html: "<p>no body tag</p>", tenantID: tenant, messageID: message).hasSuffix("\">"))
    }

    @Test func tokensOfOneKindOrKeyDoNotPassForAnother() throws {
        let click = String(links.clickURL(tenantID: tenant, messageID: message, target: "https://example.org/").dropFirst("https://herald.test/t/c/".count))
        let open = String(links.openURL(tenantID: tenant, messageID: message).dropFirst("https://herald.test/t/o/".count))
        #expect(links.decode(open, expecting: .open)?.messageID == message)
        #expect(links.decode(open, expecting: .click) == nil && links.decode(click, expecting: .open) == nil)
        // Another target in the scope part, the tag kept: not valid.
        var parts = click.split(separator: ".").map(String.init)
        parts[2] = Base64URL.encode(Array("click:https://evil.example/".utf8))
        #expect(links.decode(parts.joined(separator: "."), expecting: .click) == nil)
        // An unsubscribe token, or a token under another master key.
        let unsubscribe = UnsubscribeToken(tenantID: tenant, messageID: message, scope: "open").encode(key: MasterKey.random().derive("unsubscribe"))
        #expect(links.decode(unsubscribe, expecting: .open) == nil)
        #expect(TrackingLinks(publicURL: "https://herald.test", masterKey: .random()).decode(open, expecting: .open) == nil)
    }
}
