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
import HeraldWebhooks
import NIOCore
import PostgresNIO
import Synchronization
import Testing

/// What reaches a receiver: signed events, retries with the same webhook-id, an endpoint disabled (410 or five
/// days of failure) and what follows from it, secret rotation, redirects, pruning and metrics.
extension WebhookTests {
    /// A send to three recipients: each gets message.accepted and message.delivered, every request signed so
    /// that the reference library verifies it; a receiver answering 500 twice gets the event on the third
    /// attempt with the same webhook-id.
    @Test func deliveryResultsArriveSignedAndRetried() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await SMTPTestServer.with { smtp in
                try await WebhookTestServer.with { receiver in
                    try await TestApp.run(dnsPort: dns.port) { app in
                        let (tenant, token, _, _) = try await app.sendingTenant(dns)
                        let hook = try await app.request(.post, "/v1/webhooks", token: token, json: ["url": receiver.url("/all"), "eventTypes": ["*"]])
                        #expect(hook.status == 201, "\(hook.body)")
                        let flaky = try await app.request(.post, "/v1/webhooks", token: token,
                                                          json: ["url": receiver.url("/flaky"), "eventTypes": ["message.delivered"]])
                        try receiver.script(["/flaky": ["500", "500"]])
                        let secret = try #require(hook["secret"])
                        let sent = try await app.request(.post, "/v1/mail/single", token: token,
                                                         json: TestApp.mail(to: ["a@example.org", "b@example.org", "c@example.org"]))
                        #expect(sent.status == 200, "\(sent.body)")
                        #expect(try await app.deliveryWorker(dns: dns, smtp: smtp).runOnce() == 3)
                        try await app.withDispatcher {
                            try await waitUntil("six events at /all and three at /flaky, recorded") {
                                guard receiver.received(path: "/all").count >= 6, receiver.received(path: "/flaky").filter({ $0.status == 200 }).count >= 3
                                else { return false }
                                return try await app.count("SELECT count(*)::int FROM webhook_deliveries WHERE status = 'succeeded'") == 9
                            }
                        }
                        let all = receiver.received(path: "/all")
                        let bodies = all.compactMap { try? JSONSerialization.jsonObject(with: Data($0.body.utf8)) as? [String: Any] }
                        #expect(bodies.filter { $0["type"] as? String == "message.accepted" }.count == 3)
                        #expect(bodies.filter { $0["type"] as? String == "message.delivered" }.count == 3)
                        let delivered = bodies.filter { $0["type"] as? String == "message.delivered" }.compactMap { $0["data"] as? [String: Any] }
                        #expect(Set(delivered.compactMap { $0["to"] as? String }) == ["a@example.org", "b@example.org", "c@example.org"])
                        #expect(delivered.allSatisfy { $0["messageId"] is String && $0["status"] as? String == "delivered" })
                        #expect(bodies.allSatisfy { ($0["timestamp"] as? String)?.hasSuffix("Z") == true })
                        #expect(all.allSatisfy { $0.headers["webhook-id"]?.hasPrefix("msg_") == true && $0.headers["content-type"] == "application/json" })
                        #expect(try Self.verifyWithReferenceLibrary(all, secret: secret) == 6)

                        // The first two requests got 500: the events they carried came again with the same webhook-id
                        // until a 200.
                        let flakyRequests = receiver.received(path: "/flaky")
                        let byID = Dictionary(grouping: flakyRequests) { $0.headers["webhook-id"] ?? "" }
                        #expect(byID.count == 3 && flakyRequests.count == 5, "\(flakyRequests.map { ($0.headers["webhook-id"] ?? "", $0.status ?? 0) })")
                        #expect(byID.values.allSatisfy { $0.map(\.status) == Array(repeating: 500, count: $0.count - 1) + [200] })
                        #expect(try Self.verifyWithReferenceLibrary(flakyRequests, secret: try #require(flaky["secret"])) == 5)
                        let log = try await app.request(.get, "/v1/webhooks/\(try #require(flaky["id"]))/deliveries", token: token)
                        let items = log.json["items"] as? [[String: Any]] ?? []
                        #expect(items.count == 3 && items.allSatisfy { $0["status"] as? String == "succeeded" }, "\(log.body)")
                        #expect(items.map { $0["attempts"] as? Int ?? 0 }.reduce(0, +) == 5)
                        let logged = items.flatMap { $0["attemptLog"] as? [[String: Any]] ?? [] }
                        #expect(logged.count == 5 && logged.filter { $0["httpStatus"] as? Int == 500 }.count == 2, "\(logged)")
                        #expect(logged.contains { $0["response"] as? String == "status 500" && $0["latencyMs"] is Int })
                        _ = tenant
                    }
                }
            }
        }
    }

    /// 410 disables the endpoint at once and records webhook.disabled (which another endpoint receives);
    /// waiting deliveries are cancelled; replay and the test event work; retries run out to `failed`.
    @Test func goneDisablesReplayTestAndGivingUp() async throws {
        try await WebhookTestServer.with { receiver in
            try await TestApp.run { app in
                let root = try await app.createTenant("Gone")
                let token = try await app.token(root.keyID, root.secret)
                let gone = try await app.request(.post, "/v1/webhooks", token: token, json: ["url": receiver.url("/gone"), "eventTypes": ["message.delivered"]])
                let watcher = try await app.request(.post, "/v1/webhooks", token: token, json: ["url": receiver.url("/watch"), "eventTypes": ["webhook.disabled"]])
                let failing = try await app.request(.post, "/v1/webhooks", token: token, json: ["url": receiver.url("/fail"), "eventTypes": ["message.bounced"]])
                try receiver.script(["/gone": ["410"]])
                try receiver.scriptAlways("/fail", "503 1")
                let goneID = try #require(gone["id"]), failingID = try #require(failing["id"])
                try await Self.insertEvents(app, tenant: root.tenant, count: 1)
                try await Self.insertEvents(app, tenant: root.tenant, count: 1, type: "message.bounced")
                try await app.withDispatcher {
                    try await waitUntil("webhook.disabled at /watch") { receiver.received(path: "/watch").count == 1 }
                    try await waitUntil("the failing delivery to give up") {
                        let log = try await app.request(.get, "/v1/webhooks/\(failingID)/deliveries", token: token)
                        return (log.json["items"] as? [[String: Any]])?.first?["status"] as? String == "failed"
                    }
                }
                let disabled = try await app.request(.get, "/v1/webhooks/\(goneID)", token: token)
                #expect(disabled.json["enabled"] as? Bool == false && disabled["disabledReason"] == "gone", "\(disabled.body)")
                let notice = try JSONSerialization.jsonObject(with: Data(receiver.received(path: "/watch")[0].body.utf8)) as? [String: Any]
                #expect(notice?["type"] as? String == "webhook.disabled")
                #expect((notice?["data"] as? [String: Any])?["reason"] as? String == "gone")
                // Events after the 410 create no deliveries for it.
                try await Self.insertEvents(app, tenant: root.tenant, count: 2)
                let goneLog = try await app.request(.get, "/v1/webhooks/\(goneID)/deliveries", token: token)
                #expect((goneLog.json["items"] as? [Any])?.count == 1)
                // Retry-After 1 s kept the retries at least a second apart: 4 attempts (3 retries), then failed.
                let failed = receiver.received(path: "/fail")
                #expect(failed.count == 4, "\(failed.count)")
                #expect(zip(failed, failed.dropFirst()).allSatisfy { $1.at - $0.at >= 0.95 })
                #expect(Set(failed.compactMap { $0.headers["webhook-id"] }).count == 1)

                // Replay of the failed delivery, once the receiver works again.
                try receiver.scriptAlways("/fail", "200 fine")
                let log = try await app.request(.get, "/v1/webhooks/\(failingID)/deliveries", token: token)
                let deliveryID = try #require((log.json["items"] as? [[String: Any]])?.first?["id"] as? String)
                let replay = try await app.request(.post, "/v1/webhooks/\(failingID)/deliveries/\(deliveryID)/retry", token: token)
                #expect(replay.status == 202 && replay["status"] == "pending", "\(replay.body)")
                let test = try await app.request(.post, "/v1/webhooks/\(failingID)/test", token: token)
                #expect(test.status == 202 && test["eventType"] == "webhook.test", "\(test.body)")
                // Replay and test on a disabled endpoint are refused.
                #expect(try await app.request(.post, "/v1/webhooks/\(goneID)/test", token: token).code == "Webhook.Disabled")
                try await app.withDispatcher {
                    try await waitUntil("the replay and the test event") { receiver.received(path: "/fail").filter { $0.status == 200 }.count == 2 }
                }
                let ok = receiver.received(path: "/fail").filter { $0.status == 200 }
                #expect(ok.contains { $0.headers["webhook-id"] == failed[0].headers["webhook-id"] })
                #expect(ok.contains { $0.body.contains("\"webhook.test\"") })
                _ = watcher
            }
        }
    }

    /// After a rotation both secrets sign for 24 hours: a receiver still on the old secret and one already on
    /// the new one both verify (reference library); an endpoint failing for 5 days is disabled with a
    /// webhook.disabled event; a redirect is a failure that is retried; finished deliveries past the
    /// retention are pruned; the dispatcher's metrics reach /metrics.
    @Test func rotationFiveDaysOfFailureRedirectsPruningAndMetrics() async throws {
        try await WebhookTestServer.with { receiver in
            try await TestApp.run { app in
                let root = try await app.createTenant("Rotate")
                let token = try await app.token(root.keyID, root.secret)
                let hook = try await app.request(.post, "/v1/webhooks", token: token, json: ["url": receiver.url("/r"), "eventTypes": ["*"]])
                let id = try #require(hook["id"]), oldSecret = try #require(hook["secret"])
                let rotated = try await app.request(.post, "/v1/webhooks/\(id)/rotate-secret", token: token)
                let newSecret = try #require(rotated["secret"])
                let failing = try await app.request(.post, "/v1/webhooks", token: token, json: ["url": receiver.url("/down"), "eventTypes": ["message.bounced"]])
                let failingID = try #require(failing["id"])
                try receiver.scriptAlways("/down", "301 https://elsewhere.example/")
                // Failing for 5 days already.
                try await app.dependencies.database.withSystem { connection -> Void in
                    try await connection.query("UPDATE webhook_endpoints SET failing_since = now() - interval '5 days 1 minute' WHERE id = \(UUID(uuidString: failingID)!)",
                                               logger: app.dependencies.database.logger)
                }
                try await Self.insertEvents(app, tenant: root.tenant, count: 1, type: "message.bounced")
                let registry = app.dependencies.registry
                var settings = Self.fast
                settings.lease = .seconds(3)
                let dispatcher = WebhookDispatcher(store: app.dependencies.webhooks, guardian: app.dependencies.webhookGuard, settings: settings,
                                                   worker: "metered", metrics: WebhookMetrics(registry: registry), logger: TestDatabases.logger,
                                                   now: app.clock.now)
                let task = Task { try await dispatcher.run() }
                try await waitUntil("the bounced event at /r and the endpoint disabled") {
                    let down = try await app.request(.get, "/v1/webhooks/\(failingID)", token: token)
                    return receiver.received(path: "/r").count >= 2 && down.json["enabled"] as? Bool == false
                }
                let metrics = try await app.request(.get, "/metrics")
                task.cancel()
                try? await task.value
                let signed = receiver.received(path: "/r")
                #expect(signed.allSatisfy { $0.headers["webhook-signature"]?.split(separator: " ").count == 2 })
                #expect(try Self.verifyWithReferenceLibrary(signed, secret: oldSecret) == signed.count)
                #expect(try Self.verifyWithReferenceLibrary(signed, secret: newSecret) == signed.count)
                #expect(signed.contains { $0.body.contains("\"webhook.disabled\"") && $0.body.contains("\"failing\"") })
                let down = receiver.received(path: "/down")
                #expect(down.count == 1 && down[0].status == 301)
                let log = try await app.request(.get, "/v1/webhooks/\(failingID)/deliveries", token: token)
                let item = (log.json["items"] as? [[String: Any]])?.first
                #expect(item?["status"] as? String == "cancelled" && item?["lastHttpStatus"] as? Int == 301, "\(log.body)")
                #expect((item?["lastError"] as? String)?.contains("redirect") == true)
                #expect(metrics.body.contains("herald_webhook_attempts_total{outcome=\"succeeded\"}"), "\(metrics.body.prefix(300))")
                #expect(metrics.body.contains("herald_webhook_attempt_duration_seconds_bucket"))
                #expect(metrics.body.contains("herald_webhook_backlog{state=\"due\"}"))

                // Retention: finished deliveries (and their attempt log) left the queue partition for the week
                // of today + 30 days (HERALD_WEBHOOK_RETENTION_DAYS) and go with it once that is past; pending
                // ones stay. The receiver may have a request whose outcome is not committed yet: wait for every
                // outcome first.
                try await waitUntil("every outcome recorded") {
                    try await app.count("SELECT count(*)::int FROM webhook_deliveries WHERE status = 'pending'") == 0
                }
                #expect(try await app.count("SELECT count(*)::int FROM webhook_deliveries WHERE expires_on = herald_today() + 30") == signed.count + 1)
                #expect(try await app.count("SELECT count(*)::int FROM ONLY webhook_deliveries_queue") == 0)
                #expect(try await app.count("SELECT count(*)::int FROM webhook_attempts WHERE expires_on = herald_today() + 30") > 0)
                try await Self.insertEvents(app, tenant: root.tenant, count: 1)
                let later = try await app.dependencies.database.withSystem { connection in
                    try await connection.query("SELECT (herald_today() + 38)::text", logger: app.dependencies.database.logger)
                        .decode(String.self).first { _ in true } ?? ""
                }
                let steps = try await HistoryStore(database: app.dependencies.database).maintain(today: later)
                #expect(steps.contains { $0.hasPrefix("dropped webhook_deliveries_p") } && steps.contains { $0.hasPrefix("dropped webhook_attempts_p") },
                        "\(steps)")
                #expect(try await app.count("webhook_deliveries", tenant: root.tenant) == 1)
                #expect(try await app.count("webhook_attempts", tenant: root.tenant) == 0)
            }
        }
    }
}
