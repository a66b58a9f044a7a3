import Foundation
import HTTPTypes
import HeraldAPI
import HeraldAppTestSupport
import HeraldCore
import HeraldDNS
import HeraldDelivery
import HeraldSMTP
import HeraldStore
import HeraldTestSupport
import NIOCore
import PostgresNIO
import Prometheus
import Synchronization
import Testing

/// Accept → queue → worker → a real SMTP server (aiosmtpd), with DKIM checked by dkimpy.
@Suite struct DeliveryEndToEndTests {
    @Test func sendDeliverRetryBounceAndInvalidList() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await SMTPTestServer.with { peer in
                try await TestApp.run(dnsPort: dns.port) { app in
                    let (tenant, token, _, _) = try await app.sendingTenant(dns)
                    let dkimValue = try await app.dkimRecord(token: token)
                    try peer.script(["busy@example.org": ["450 4.2.1 Mailbox busy"], "nobody@example.org": ["550 5.1.1 No such user"]])
                    let worker = try app.deliveryWorker(dns: dns, smtp: peer)

                    let sent = try await app.request(.post, "/v1/mail/single", token: token, json: TestApp.mail(
                        to: ["jane@example.org", "busy@example.org", "nobody@example.org"], extra: ["fromAlias": "Acme"]))
                    #expect(sent.status == 200, "\(sent.body)")
                    #expect(try await worker.runOnce() == 3)
                    #expect(try await worker.runOnce() == 0)

                    // Delivered once, with its headers, and its DKIM signature verifies with dkimpy.
                    let received = peer.received
                    #expect(received.count == 1 && received.first?.to == ["jane@example.org"])
                    let data = try #require(received.first?.data)
                    #expect(data.contains("X-Herald-Message-Id: ") && data.contains("From: \"Acme\" <app@example.test>"))
                    try expectDKIMVerifies(data, record: dkimValue)

                    // The events tell each story; the busy one is retried a bit later and delivered.
                    let tenantID = try #require(UUID(uuidString: tenant))
                    func statuses() async throws -> [String: String] {
                        try await app.dependencies.database.withSystem { connection in
                            var result: [String: String] = [:]
                            for try await (to, status) in try await connection.query(
                                "SELECT to_address, status FROM messages WHERE tenant_id = \(tenantID)", logger: app.dependencies.database.logger
                            ).decode((String, String).self) { result[to] = status }
                            return result
                        }
                    }
                    #expect(try await statuses() == ["jane@example.org": "delivered", "busy@example.org": "deferred", "nobody@example.org": "bounced"])
                    app.clock.advance(120)
                    #expect(try await worker.runOnce() == 1)
                    #expect(try await statuses()["busy@example.org"] == "delivered")
                    #expect(peer.received.count == 2)
                    let events = try await app.dependencies.database.withSystem { connection in
                        var types: [String] = []
                        for try await type in try await connection.query(
                            "SELECT type FROM events WHERE tenant_id = \(tenantID) ORDER BY id", logger: app.dependencies.database.logger
                        ).decode(String.self) { types.append(type) }
                        return types
                    }
                    #expect(events.filter { $0 == "message.accepted" }.count == 3)
                    #expect(events.filter { $0 == "message.delivered" }.count == 2)
                    #expect(events.contains("message.deferred") && events.contains("message.bounced"))

                    // A second hard bounce lists the address as invalid; the next send drops it.
                    try peer.script(["nobody@example.org": ["550 5.1.1 No such user", "550 5.1.1 No such user"]])
                    _ = try await app.request(.post, "/v1/mail/single", token: token, json: TestApp.mail(to: ["nobody@example.org"]))
                    #expect(try await worker.runOnce() == 1)
                    let third = try await app.request(.post, "/v1/mail/single", token: token, json: TestApp.mail(to: ["nobody@example.org"]))
                    #expect((third.json["messages"] as? [[String: Any]])?.first?["reason"] as? String == "invalid_address", "\(third.body)")

                    // The read side: a message with its events, search, the invalid list.
                    let busyID = try #require((sent.json["messages"] as? [[String: Any]])?.first { $0["to"] as? String == "busy@example.org" }?["id"] as? String)
                    let busy = try await app.request(.get, "/v1/messages/\(busyID)", token: token)
                    #expect((busy.json["message"] as? [String: Any])?["status"] as? String == "delivered", "\(busy.body)")
                    #expect((busy.json["message"] as? [String: Any])?["attempts"] as? Int == 2)
                    #expect((busy.json["events"] as? [[String: Any]])?.map { $0["type"] as? String } == ["message.accepted", "message.deferred", "message.delivered"])
                    #expect(((busy.json["events"] as? [[String: Any]])?[1]["data"] as? [String: Any])?["smtpResponse"] as? String == "450 4.2.1 Mailbox busy")
                    let bounced = try await app.request(.get, "/v1/messages?status=bounced", token: token)
                    #expect((bounced.json["items"] as? [[String: Any]])?.count == 2)
                    let byRecipient = try await app.request(.get, "/v1/messages?to=JANE@example.org&limit=1", token: token)
                    #expect((byRecipient.json["items"] as? [[String: Any]])?.first?["to"] as? String == "jane@example.org")
                    let (_, other) = try await app.rootToken("Other")
                    expectProblem(try await app.request(.get, "/v1/messages/\(busyID)", token: other), 404, "NotFound")
                    #expect((try await app.request(.get, "/v1/messages", token: other).json["items"] as? [Any])?.count == 0)
                    let invalid = try await app.request(.get, "/v1/invalid-addresses", token: token)
                    #expect((invalid.json["items"] as? [[String: Any]])?.first?["listed"] as? Bool == true)
                    #expect(try await app.request(.delete, "/v1/invalid-addresses/nobody@example.org", token: token).status == 204)
                    let fourth = try await app.request(.post, "/v1/mail/single", token: token, json: TestApp.mail(to: ["nobody@example.org"]))
                    #expect((fourth.json["messages"] as? [[String: Any]])?.first?["status"] as? String == "queued")
                }
            }
        }
    }
}

@Suite struct DeliveryRateTests {
    /// A recipient domain's rate: what is over it goes back to the queue unattempted, then out when the
    /// domain has room again.
    @Test func overTheDomainRateWaitsInTheQueue() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await SMTPTestServer.with { peer in
                try await TestApp.run(dnsPort: dns.port) { app in
                    let (tenant, token, _, _) = try await app.sendingTenant(dns)
                    let sent = try await app.request(.post, "/v1/mail/single", token: token, json: TestApp.mail(
                        to: ["a@example.org", "b@example.org", "c@example.org", "d@other.example"]))
                    #expect(sent.status == 200, "\(sent.body)")
                    let seconds = Mutex<Double>(0)
                    var worker = try app.deliveryWorker(dns: dns, smtp: peer)
                    worker.domainRates = DomainRateLimits(rates: ["example.org": 1], now: { seconds.withLock { $0 } })
                    // The worker's clock stands still between steps, however slow the machine (release times are
                    // a second apart).
                    let frozen = Mutex<Date>(app.clock.now())
                    worker.now = { frozen.withLock { $0 } }
                    #expect(try await worker.runOnce() == 4)
                    #expect(Set(peer.received.flatMap(\.to)).count == 2, "one of example.org, and other.example (no rate)")
                    let waiting = try await app.dependencies.database.withSystem { connection in
                        try await connection.query("""
                            SELECT count(*)::int, max(attempts), bool_and(next_attempt_at > created_at) FROM messages WHERE status = 'queued'
                            """, logger: app.dependencies.database.logger).decode((Int, Int, Bool).self).first { _ in true }
                    }
                    #expect(waiting?.0 == 2 && waiting?.1 == 0 && waiting?.2 == true, "back in the queue, no attempt counted: \(String(describing: waiting))")
                    // Nothing is due until the release time; then one more a second.
                    #expect(try await worker.runOnce() == 0)
                    frozen.withLock { $0 += 5 }
                    seconds.withLock { $0 += 1 }
                    _ = try await worker.runOnce()
                    #expect(peer.received.count == 3)
                    frozen.withLock { $0 += 5 }
                    seconds.withLock { $0 += 1 }
                    _ = try await worker.runOnce()
                    #expect(peer.received.count == 4)
                    // Being put back wrote no event: accepted and delivered, four each.
                    #expect(try await app.count("events", tenant: tenant) == 8)
                }
            }
        }
    }
}

@Suite struct DeliveryMetricsTests {
    @Test func outcomesClaimsAndConnectionsAreCounted() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await SMTPTestServer.with { peer in
                try await TestApp.run(dnsPort: dns.port) { app in
                    let (_, token, _, _) = try await app.sendingTenant(dns)
                    try peer.script(["nobody@example.org": ["550 5.1.1 No such user"]])
                    _ = try await app.request(.post, "/v1/mail/single", token: token, json: TestApp.mail(
                        to: ["a@example.org", "b@example.org", "nobody@example.org"]))
                    let registry = PrometheusCollectorRegistry()
                    let metrics = DeliveryMetrics(registry: registry)
                    var worker = try app.deliveryWorker(dns: dns, smtp: peer)
                    worker.store.metrics = metrics
                    worker.smtp.pool = SMTPConnectionPool { metrics.connection(reused: $0) }
                    #expect(try await worker.runOnce() == 3)
                    var buffer: [UInt8] = []
                    registry.emit(into: &buffer)
                    let text = String(decoding: buffer, as: UTF8.self)
                    #expect(text.contains("herald_delivery_claimed_total 3"), "\(text)")
                    #expect(text.contains(#"herald_delivery_outcomes_total{status="delivered"} 2"#))
                    #expect(text.contains(#"herald_delivery_outcomes_total{status="bounced"} 1"#))
                    #expect(text.contains(#"herald_smtp_connections_total{how="opened"} 1"#))
                }
            }
        }
    }
}

@Suite struct FairnessTests {
    /// Tenant A's 20,000 queued batch messages do not delay tenant B's trigger mail past one claim cycle.
    @Test func triggerMailOvertakesAnotherTenantsBatchBacklog() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await SMTPTestServer.with { peer in
                try await TestApp.run(dnsPort: dns.port) { app in
                    let a = try await app.sendingTenant(dns, name: "A")
                    let aID = try #require(UUID(uuidString: a.tenant))
                    // A's backlog, queued earlier than B's mail (straight into the queue, as an expanded batch would be).
                    let earlier = app.clock.now().addingTimeInterval(-60)
                    _ = try await app.dependencies.database.withSystem { connection in
                        try await connection.query("""
                            INSERT INTO messages (id, tenant_id, request_id, kind, priority, from_address, to_address, subject, body_text, status,
                                                  next_attempt_at, created_at, updated_at)
                            SELECT gen_random_uuid(), \(aID), gen_random_uuid(), 'batch', 1, 'app@example.test', 'bulk' || g || '@example.org',
                                   'Bulk', 'x', 'queued', \(earlier), \(earlier), \(earlier)
                            FROM generate_series(1, 20000) AS g
                            """, logger: app.dependencies.database.logger)
                    }
                    let b = try await app.rootToken("B")
                    _ = try await app.verifiedDomain(dns, token: b.token, name: "b.example.test")
                    _ = try await app.request(.post, "/v1/senders", token: b.token, json: ["address": "otp@b.example.test", "type": "trigger"])
                    let reset = try await app.request(.post, "/v1/mail/single", token: b.token, json: [
                        "from": "otp@b.example.test", "to": ["user@example.org"], "subject": "Password reset", "text": "code 1234",
                    ])
                    #expect(reset.status == 200, "\(reset.body)")
                    var worker = try app.deliveryWorker(dns: dns, smtp: peer)
                    worker.batchSize = 100
                    _ = try await worker.runOnce()
                    let received = peer.received
                    // The first claim cycle (100 messages, sent over parallel connections) carries B's reset: it
                    // reaches the peer before A's 100th message, let alone its 1,000th.
                    #expect(received.count <= 100)
                    #expect(received.contains { $0.to == ["user@example.org"] }, "B's reset goes out in the first cycle, before A's backlog")
                }
            }
        }
    }
}
