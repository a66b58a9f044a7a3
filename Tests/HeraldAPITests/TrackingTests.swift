import Foundation
import HTTPTypes
import HeraldAPI
import HeraldAppTestSupport
import HeraldCore
import HeraldDNS
import HeraldDelivery
import HeraldStore
import HeraldTestSupport
import PostgresNIO
import Testing

@Suite struct TrackingAPITests {
    /// Quoted-printable soft breaks and `=3D` undone, enough to read the links of an HTML part.
    static func unQP(_ data: String) -> String {
        data.replacingOccurrences(of: "=\r\n", with: "").replacingOccurrences(of: "=3D", with: "=")
    }

    static func links(_ html: String, _ prefix: String) -> [String] {
        html.components(separatedBy: "https://herald.test" + prefix).dropFirst().map { prefix + String($0.prefix { $0 != "\"" }) }
    }

    /// A tracked send: its HTML links go through click links and it carries the open image (the rewrite
    /// happens before DKIM signing); opens and clicks become events with `first` once, the click redirects
    /// to the original link only, and the statistics count them with unique counts right.
    @Test func opensAndClicksAreRecordedAndCounted() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await SMTPTestServer.with { peer in
                try await TestApp.run(dnsPort: dns.port) { app in
                    let (_, token, _, _) = try await app.sendingTenant(dns)
                    let html = "<html><body><p>Hi</p><a href=\"https://example.org/offer?a=1&amp;b=2\">Offer</a> <a href=\"https://example.org/help\">Help</a></body></html>"
                    let sent = try await app.request(.post, "/v1/mail/single", token: token, json: TestApp.mail(
                        to: ["ann@example.org"], extra: ["html": html, "clickTracking": true]))
                    #expect(sent.status == 200, "\(sent.body)")
                    let untracked = try await app.request(.post, "/v1/mail/single", token: token, json: TestApp.mail(
                        to: ["ben@example.org"], extra: ["html": html]))
                    #expect(untracked.status == 200)
                    #expect(try await app.deliveryWorker(dns: dns, smtp: peer).runOnce() == 2)

                    let ann = Self.unQP(try #require(peer.received.first { $0.to == ["ann@example.org"] }).data)
                    let ben = Self.unQP(try #require(peer.received.first { $0.to == ["ben@example.org"] }).data)
                    #expect(ben.contains("https://example.org/offer") && !ben.contains("/t/o/"), "no tracking unless asked")
                    #expect(!ann.contains("href=\"https://example.org/"))
                    let clicks = Self.links(ann, "/t/c/"), opens = Self.links(ann, "/t/o/")
                    #expect(clicks.count == 2 && opens.count == 1, "\(ann)")

                    for _ in 0..<2 {
                        let image = try await app.request(.get, opens[0], contentType: nil)
                        #expect(image.status == 200 && image.headers[.contentType] == "image/gif" && image.headers[.cacheControl] == "no-store, private")
                        let click = try await app.request(.get, clicks[0], contentType: nil)
                        #expect(click.status == 302 && click.headers[.location] == "https://example.org/offer?a=1&b=2", "\(click.headers)")
                    }
                    #expect(try await app.request(.get, clicks[1], contentType: nil).headers[.location] == "https://example.org/help")

                    // Another target with the same tag: not valid, nothing recorded.
                    var parts = String(clicks[0].dropFirst("/t/c/".count)).split(separator: ".").map(String.init)
                    parts[2] = Base64URL.encode(Array("click:https://evil.example/".utf8))
                    #expect(try await app.request(.get, "/t/c/" + parts.joined(separator: "."), contentType: nil).status == 404)
                    #expect(try await app.request(.get, "/t/c/" + String(opens[0].dropFirst(5)), contentType: nil).status == 404, "an open token is no click token")

                    let day = StatsDay.format(app.clock.now())
                    let stats = try await app.request(.get, "/v1/stats?from=\(day)&until=\(day)", token: token)
                    let total = try #require(stats.json["total"] as? [String: Any])
                    #expect(total["opens"] as? Int == 2 && total["uniqueOpens"] as? Int == 1, "\(total)")
                    #expect(total["clicks"] as? Int == 3 && total["uniqueClicks"] as? Int == 1, "\(total)")
                    // The rates customers read, of the delivered (issue #18).
                    let delivered = try #require(total["delivered"] as? Int)
                    #expect(delivered > 0, "\(total)")
                    for (rate, count) in [("openRate", 2), ("uniqueOpenRate", 1), ("clickRate", 3), ("uniqueClickRate", 1)] {
                        #expect(total[rate] as? Double == (Double(count) / Double(delivered) * 10_000).rounded() / 10_000, "\(rate): \(total)")
                    }
                    let messageID = try #require((sent.json["messages"] as? [[String: Any]])?.first?["id"] as? String)
                    let events = try await app.request(.get, "/v1/messages/\(messageID)", token: token)
                    #expect(events.body.components(separatedBy: "message.opened").count - 1 == 2, "\(events.body)")
                    #expect(events.body.components(separatedBy: "message.clicked").count - 1 == 3)
                }
            }
        }
    }

    /// The account's settings: tracking by default (a send's clickTracking: false still wins), and the
    /// one-click unsubscribe link on trigger mail, tenant-wide: after using it the recipient still gets
    /// trigger mail, while batch mail to them is dropped.
    @Test func accountSettingsTrackingAndTriggerUnsubscribe() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await SMTPTestServer.with { peer in
                try await TestApp.run(dnsPort: dns.port) { app in
                    let (tenant, token, _, _) = try await app.sendingTenant(dns)
                    let initial = try await app.request(.get, "/v1/account/settings", token: token)
                    #expect(initial.json["trackOpensAndClicks"] as? Bool == false && initial.json["unsubscribeLinkInTriggerMail"] as? Bool == false)
                    let set = try await app.request(.put, "/v1/account/settings", token: token,
                                                    json: ["trackOpensAndClicks": true, "unsubscribeLinkInTriggerMail": true])
                    #expect(set.status == 200 && set.json["trackOpensAndClicks"] as? Bool == true, "\(set.body)")
                    let refused = try await app.request(.put, "/v1/account/settings", token: token, json: ["trackOpensAndClicks": true])
                    #expect(refused.status == 400 && refused.code == "Validation.Failed")

                    let html = "<html><body><a href=\"https://example.org/x\">x</a></body></html>"
                    #expect(try await app.request(.post, "/v1/mail/single", token: token,
                                                  json: TestApp.mail(to: ["ann@example.org"], extra: ["html": html])).status == 200)
                    #expect(try await app.request(.post, "/v1/mail/single", token: token,
                                                  json: TestApp.mail(to: ["ben@example.org"], extra: ["html": html, "clickTracking": false])).status == 200)
                    let worker = try app.deliveryWorker(dns: dns, smtp: peer)
                    #expect(try await worker.runOnce() == 2)
                    let ann = try #require(peer.received.first { $0.to == ["ann@example.org"] }).data
                    let ben = try #require(peer.received.first { $0.to == ["ben@example.org"] }).data
                    #expect(Self.unQP(ann).contains("/t/o/") && !Self.unQP(ben).contains("/t/o/"))
                    #expect(ann.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"))
                    let path = try UnsubscribeTests.linkPath(ann)
                    #expect(try await app.request(.post, path, raw: UnsubscribeTests.oneClick, contentType: "application/x-www-form-urlencoded").status == 200)
                    #expect(try await app.count("""
                        SELECT count(*)::int FROM suppressions WHERE address = 'ann@example.org' AND scope = '*' AND source = 'unsubscribe'
                        """) == 1)

                    // Trigger mail still goes to Ann; batch mail does not.
                    let again = try await app.request(.post, "/v1/mail/single", token: token, json: TestApp.mail(to: ["ann@example.org"]))
                    #expect(again.body.contains("\"queued\""), "\(again.body)")
                    try await app.setGrade(tenant: tenant, 3)
                    let (batch, _) = try await UnsubscribeTests.batchSetup(app, token: token)
                    let taskID = try await UnsubscribeTests.runBatch(app, token: token, batch: batch)
                    #expect(try await app.count("""
                        SELECT count(*)::int FROM messages WHERE task_id = '\(taskID)' AND to_address = 'ann@example.org' AND reason = 'unsubscribed'
                        """) == 1)
                }
            }
        }
    }
}
