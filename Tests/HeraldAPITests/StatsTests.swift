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

@Suite struct StatsTests {
    /// A scripted mix — delivered, soft then delivered, hard (5.1.1), spam (5.7.1), dropped — gives exactly the
    /// expected counters, by day, sender and tag, and they agree with the events table.
    @Test func scriptedMixGivesExactNumbers() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await SMTPTestServer.with { peer in
                try await TestApp.run(dnsPort: dns.port) { app in
                    let (tenant, token, _, _) = try await app.sendingTenant(dns)
                    #expect(try await app.request(.post, "/v1/tags", token: token, json: ["name": "otp"]).status == 201)
                    #expect(try await app.request(.post, "/v1/suppressions", token: token, json: ["address": "gone@example.org"]).status == 201)
                    try peer.script(["busy@example.org": ["450 4.2.1 Mailbox busy"], "bad@example.org": ["550 5.1.1 No such user"],
                                     "spam@example.org": ["550 5.7.1 Message rejected as spam"]])
                    let sent = try await app.request(.post, "/v1/mail/single", token: token, json: TestApp.mail(
                        to: ["ok@example.org", "busy@example.org", "bad@example.org", "spam@example.org", "gone@example.org"], extra: ["tag": "otp"]))
                    #expect(sent.status == 200, "\(sent.body)")
                    let worker = try app.deliveryWorker(dns: dns, smtp: peer)
                    #expect(try await worker.runOnce() == 4)
                    app.clock.advance(900)
                    #expect(try await worker.runOnce() == 1)

                    let now = app.clock.now()
                    let yesterday = StatsDay.format(now.addingTimeInterval(-86_400)), tomorrow = StatsDay.format(now.addingTimeInterval(86_400))
                    let byDay = try await app.request(.get, "/v1/stats?from=\(yesterday)&until=\(tomorrow)", token: token)
                    #expect(byDay.status == 200, "\(byDay.body)")
                    let total = try #require(byDay.json["total"] as? [String: Any])
                    let expected: [String: Int] = ["requests": 5, "accepted": 4, "delivered": 2, "softBounces": 1, "hardBounces": 1, "invalid": 1,
                                                   "spamRejections": 1, "failed": 0, "dropped": 1, "opens": 0, "uniqueOpens": 0, "clicks": 0,
                                                   "uniqueClicks": 0, "unsubscribes": 0]
                    for (name, value) in expected { #expect(total[name] as? Int == value, "\(name): \(total[name] ?? "nil")") }
                    #expect(total["successRate"] as? Double == 0.5)
                    #expect((byDay.json["items"] as? [[String: Any]])?.count == 3, "every day of the range")

                    for (grouping, key) in [("sender", "app@example.test"), ("tag", "otp")] {
                        let grouped = try await app.request(.get, "/v1/stats?from=\(yesterday)&until=\(tomorrow)&groupBy=\(grouping)", token: token)
                        let items = grouped.json["items"] as? [[String: Any]] ?? []
                        #expect(items.count == 1 && items.first?["key"] as? String == key && items.first?["delivered"] as? Int == 2, "\(grouped.body)")
                    }
                    let filtered = try await app.request(.get, "/v1/stats?from=\(yesterday)&until=\(tomorrow)&tag=nope", token: token)
                    #expect((filtered.json["total"] as? [String: Any])?["requests"] as? Int == 0)

                    // The same numbers from the events themselves.
                    let tenantID = try #require(UUID(uuidString: tenant))
                    let counted = try await app.dependencies.database.withTenant(tenantID) { connection in
                        var counts: [String: Int] = [:]
                        for try await (type, count) in try await connection.query(
                            "SELECT type, count(*)::int FROM events WHERE tenant_id = \(tenantID) GROUP BY type", logger: app.dependencies.database.logger
                        ).decode((String, Int).self) { counts[type] = count }
                        return counts
                    }
                    #expect(counted["message.delivered"] == 2 && counted["message.deferred"] == 1 && counted["message.bounced"] == 1
                            && counted["message.spam_rejected"] == 1 && counted["message.dropped"] == 1 && counted["message.accepted"] == 4, "\(counted)")

                    // Refusals.
                    for query in ["from=2026-13-01&until=2026-12-01", "from=\(tomorrow)&until=\(yesterday)", "from=2024-01-01&until=2026-01-01",
                                  "from=yesterday&until=\(tomorrow)"] {
                        let refused = try await app.request(.get, "/v1/stats?" + query, token: token)
                        #expect(refused.status == 400 && refused.code == "Validation.Failed", "\(query): \(refused.body)")
                    }
                    #expect(try await app.request(.get, "/v1/stats?from=\(yesterday)", token: token).status == 400)
                    // Another tenant sees only its own (nothing).
                    let other = try await app.createTenant("Other")
                    let otherToken = try await app.token(other.keyID, other.secret)
                    let theirs = try await app.request(.get, "/v1/stats?from=\(yesterday)&until=\(tomorrow)", token: otherToken)
                    #expect((theirs.json["total"] as? [String: Any])?["requests"] as? Int == 0)
                }
            }
        }
    }
}
