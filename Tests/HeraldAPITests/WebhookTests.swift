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

extension TestApp {
    /// Runs a webhook dispatcher beside the app while `body` runs (fast retries unless told otherwise).
    func withDispatcher<R: Sendable>(_ settings: WebhookDispatcher.Settings = WebhookTests.fast, worker: String = "test-dispatcher",
                                     _ body: () async throws -> R) async throws -> R {
        let dispatcher = WebhookDispatcher(store: dependencies.webhooks, guardian: dependencies.webhookGuard, settings: settings,
                                           worker: worker, metrics: nil, logger: TestDatabases.logger, now: clock.now)
        let task = Task { try await dispatcher.run() }
        do {
            let result = try await body()
            task.cancel()
            try? await task.value
            return result
        } catch {
            task.cancel()
            try? await task.value
            throw error
        }
    }
}

@Suite struct WebhookTests {
    static var fast: WebhookDispatcher.Settings {
        var settings = WebhookDispatcher.Settings()
        settings.retry = WebhookRetryPolicy(delays: [0.2, 0.2, 0.2])
        settings.pollInterval = .milliseconds(20)
        settings.timeout = .seconds(3)
        return settings
    }

    /// Checks every request's signature with the Standard Webhooks reference library (Python), an
    /// implementation independent of Herald's; answers how many verified.
    static func verifyWithReferenceLibrary(_ requests: [WebhookTestServer.Received], secret: String) throws -> Int {
        let payload = try JSONSerialization.data(withJSONObject: requests.map { ["headers": $0.headers, "body": $0.body] })
        let (status, output) = try runPython("""
            import json, sys
            from standardwebhooks.webhooks import Webhook
            hook = Webhook(sys.argv[1])
            ok = 0
            for request in json.load(sys.stdin):
                hook.verify(request["body"], request["headers"])
                ok += 1
            print(ok)
            """, [secret], input: Array(payload))
        #expect(status == 0, "\(output)")
        return Int(output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    @Test func registerListUpdateRotateDeleteAndRefusals() async throws {
        try await TestApp.run { app in
            let root = try await app.createTenant("Hooks")
            let token = try await app.token(root.keyID, root.secret)
            let created = try await app.request(.post, "/v1/webhooks", token: token,
                                                json: ["url": "http://127.0.0.1:9/hook", "eventTypes": ["message.delivered", "message.bounced"]])
            #expect(created.status == 201, "\(created.body)")
            let id = try #require(created["id"])
            let secret = try #require(created["secret"])
            #expect(secret.hasPrefix("whsec_") && WebhookSecret(secret) != nil)
            #expect(created.json["enabled"] as? Bool == true)

            // The secret is shown once, and is not stored in clear.
            let fetched = try await app.request(.get, "/v1/webhooks/\(id)", token: token)
            #expect(fetched.status == 200 && fetched["secret"] == nil)
            let key = try #require(WebhookSecret(secret)).key
            let stored = try await app.dependencies.database.withSystem { connection in
                try await connection.query("SELECT secret_ciphertext FROM webhook_endpoints", logger: app.dependencies.database.logger)
                    .decode(ByteBuffer.self).first { _ in true }
            }
            let ciphertext = Array(buffer: try #require(stored))
            #expect(!ciphertext.isEmpty && Data(ciphertext).range(of: Data(key)) == nil)

            // Refusals, each with a field and nothing written.
            for (body, field) in [(["url": "ftp://example.org/", "eventTypes": ["*"]], "url"),
                                  (["url": "https://user:pw@example.org/", "eventTypes": ["*"]], "url"),
                                  (["url": "http://127.0.0.1:9/x", "eventTypes": ["message.nope"]], "eventTypes"),
                                  (["url": "http://127.0.0.1:9/x", "eventTypes": [String]()], "eventTypes"),
                                  (["url": "http://127.0.0.1:9/x", "eventTypes": ["message.delivered", "message.delivered"]], "eventTypes")] as [([String: Any], String)] {
                let refused = try await app.request(.post, "/v1/webhooks", token: token, json: body)
                #expect(refused.status == 400 && refused.code == "Validation.Failed" && refused["field"] == field, "\(refused.body)")
            }
            #expect(try await app.count("webhook_endpoints", tenant: root.tenant) == 1)

            let updated = try await app.request(.patch, "/v1/webhooks/\(id)", token: token, json: ["eventTypes": ["*"], "enabled": false])
            #expect(updated.status == 200 && updated.json["enabled"] as? Bool == false && updated["disabledReason"] == "tenant", "\(updated.body)")
            let enabled = try await app.request(.patch, "/v1/webhooks/\(id)", token: token, json: ["enabled": true])
            #expect(enabled.json["enabled"] as? Bool == true && enabled["disabledReason"] == nil)

            let rotated = try await app.request(.post, "/v1/webhooks/\(id)/rotate-secret", token: token)
            #expect(rotated.status == 200 && rotated["secret"] != secret && rotated["previousSecretExpiresAt"] != nil, "\(rotated.body)")

            // Another tenant sees none of it.
            let other = try await app.createTenant("Other")
            let otherToken = try await app.token(other.keyID, other.secret)
            #expect(try await app.request(.get, "/v1/webhooks/\(id)", token: otherToken).status == 404)
            #expect(try await app.request(.delete, "/v1/webhooks/\(id)", token: otherToken).status == 404)
            #expect((try await app.request(.get, "/v1/webhooks", token: otherToken).json["items"] as? [Any])?.isEmpty == true)

            #expect(try await app.request(.delete, "/v1/webhooks/\(id)", token: token).status == 204)
            #expect(try await app.request(.get, "/v1/webhooks/\(id)", token: token).status == 404)
        }
    }

    /// The SSRF guard at registration: loopback, metadata, IPv6 loopback and a name that resolves to a
    /// private address are all refused.
    @Test func privateTargetsAreRefusedWhenTheGuardIsOn() async throws {
        try await DNSTestServer.with(zone: ["internal.example": [["A", "10.0.0.1", 60]], "mapped.example": [["AAAA", "::ffff:127.0.0.1", 60]],
                                            "public.example": [["A", "93.184.216.34", 60]]]) { dns in
            try await TestApp.run(dnsPort: dns.port, allowPrivateWebhooks: false) { app in
                let root = try await app.createTenant("Guarded")
                let token = try await app.token(root.keyID, root.secret)
                for url in ["http://127.0.0.1/hook", "https://127.0.0.1/hook", "http://169.254.169.254/latest/meta-data", "https://169.254.169.254/",
                            "https://[::1]/hook", "http://[::1]/hook", "https://internal.example/hook", "https://mapped.example/hook",
                            "https://100.100.100.200/", "https://[fd00:ec2::254]/", "https://[::ffff:10.0.0.1]/", "https://no-such.example/"] {
                    let refused = try await app.request(.post, "/v1/webhooks", token: token, json: ["url": url, "eventTypes": ["*"]])
                    #expect(refused.status == 400 && refused.code == "Validation.Failed" && refused["field"] == "url", "\(url): \(refused.body)")
                }
                #expect(try await app.count("webhook_endpoints", tenant: root.tenant) == 0)
                let allowed = try await app.request(.post, "/v1/webhooks", token: token, json: ["url": "https://public.example/hook", "eventTypes": ["*"]])
                #expect(allowed.status == 201, "\(allowed.body)")
                // The same guard runs when the URL changes.
                let id = try #require(allowed["id"])
                let changed = try await app.request(.patch, "/v1/webhooks/\(id)", token: token, json: ["url": "https://internal.example/"])
                #expect(changed.status == 400 && changed["field"] == "url", "\(changed.body)")
            }
        }
    }

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

    /// A receiver that never answers holds only its own deliveries: a second tenant's endpoint gets all its
    /// events while the first still has requests in flight.
    @Test func aDeadEndpointDoesNotSlowAnotherTenant() async throws {
        try await WebhookTestServer.with { receiver in
            try await TestApp.run { app in
                try receiver.scriptAlways("/dead", "hang")
                let slow = try await app.createTenant("Slow")
                let slowToken = try await app.token(slow.keyID, slow.secret)
                let fast = try await app.createTenant("Fast")
                let fastToken = try await app.token(fast.keyID, fast.secret)
                #expect(try await app.request(.post, "/v1/webhooks", token: slowToken, json: ["url": receiver.url("/dead"), "eventTypes": ["*"]]).status == 201)
                #expect(try await app.request(.post, "/v1/webhooks", token: fastToken, json: ["url": receiver.url("/live"), "eventTypes": ["*"]]).status == 201)
                // 300 events for the dead endpoint first, then 100 for the live one.
                try await Self.insertEvents(app, tenant: slow.tenant, count: 300)
                try await Self.insertEvents(app, tenant: fast.tenant, count: 100)
                var settings = Self.fast
                settings.timeout = .seconds(30)
                settings.perEndpoint = 4
                settings.bufferPerEndpoint = 8
                let started = Date()
                try await app.withDispatcher(settings) {
                    try await waitUntil("100 events at the live endpoint", seconds: 20) { receiver.received(path: "/live").count >= 100 }
                    #expect(Date().timeIntervalSince(started) < 10)
                    let dead = receiver.received(path: "/dead")
                    // The dead endpoint has its cap in flight and nothing answered.
                    #expect(dead.count == 4 && dead.allSatisfy { $0.status == nil }, "\(dead.count)")
                }
            }
        }
    }

    /// Events written straight into the outbox (the fan-out trigger does the rest).
    static func insertEvents(_ app: TestApp, tenant: String, count: Int, type: String = "message.delivered") async throws {
        let id = try #require(UUID(uuidString: tenant))
        try await app.dependencies.database.withTenant(id) { connection -> Void in
            try await connection.query("""
                INSERT INTO events (tenant_id, message_id, type, data, created_at)
                SELECT \(id), gen_random_uuid(), \(type), jsonb_build_object('n', g), now() FROM generate_series(1, \(count)) g
                """, logger: app.dependencies.database.logger)
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

    /// Fan-out is exactly once with several dispatchers: 500 events, two endpoints, three dispatchers →
    /// 1,000 requests, no webhook-id twice.
    @Test func severalDispatchersSendEachDeliveryOnce() async throws {
        try await WebhookTestServer.with { receiver in
            try await TestApp.run { app in
                let root = try await app.createTenant("Many")
                let token = try await app.token(root.keyID, root.secret)
                for path in ["/one", "/two"] {
                    #expect(try await app.request(.post, "/v1/webhooks", token: token, json: ["url": receiver.url(path), "eventTypes": ["*"]]).status == 201)
                }
                try await Self.insertEvents(app, tenant: root.tenant, count: 500)
                try await app.withDispatcher(worker: "d1") {
                    try await app.withDispatcher(worker: "d2") {
                        try await app.withDispatcher(worker: "d3") {
                            try await waitUntil("1,000 requests") { receiver.receivedCount >= 1_000 }
                            try await Task.sleep(for: .milliseconds(300))
                        }
                    }
                }
                let ids = receiver.received.compactMap { $0.headers["webhook-id"] }
                #expect(ids.count == 1_000 && Set(ids).count == 1_000)
            }
        }
    }

    /// Killing `herald` while webhook requests are in flight loses none: a real `herald serve` (dispatcher
    /// role) is SIGKILLed after 400 of 2,000 events reached the receiver and started again; every event
    /// arrives, each under one webhook-id, and every delivery ends `succeeded`.
    @Test func sigkillMidDispatchLosesNoEvent() async throws {
        let keyBytes = (0..<32).map { _ in UInt8.random(in: 0...255) }
        try await WebhookTestServer.with { receiver in
            try await TestApp.run(masterKey: MasterKey(bytes: keyBytes)) { app in
                let root = try await app.createTenant("Crash")
                let token = try await app.token(root.keyID, root.secret)
                #expect(try await app.request(.post, "/v1/webhooks", token: token, json: ["url": receiver.url("/crash"), "eventTypes": ["*"]]).status == 201)
                try receiver.scriptAlways("/crash", "slow 0.01 200")
                try await Self.insertEvents(app, tenant: root.tenant, count: 2_000)
                let environment = app.serveEnvironment(masterKey: keyBytes, [
                    "HERALD_ROLES": "dispatcher", "HERALD_WEBHOOK_ALLOW_PRIVATE": "1", "HERALD_DELIVERY_LEASE": "3",
                ])
                func succeeded() async throws -> Int {
                    try await app.dependencies.database.withSystem { connection in
                        try await connection.query("SELECT count(*)::int FROM webhook_deliveries WHERE status = 'succeeded'",
                                                   logger: app.dependencies.database.logger).decode(Int.self).first { _ in true } ?? 0
                    }
                }
                let first = try HeraldProcess(["serve"], environment: environment)
                try await waitUntil("the first 400 events", seconds: 120) { receiver.receivedCount >= 400 || !first.isRunning }
                #expect(first.isRunning, "\(first.output)")
                first.kill()
                let atKill = receiver.receivedCount
                #expect(atKill < 2_000, "killed mid-dispatch")
                let second = try HeraldProcess(["serve"], environment: environment)
                defer { second.stop() }
                try await waitUntil("every delivery succeeded", seconds: 120) { try await succeeded() == 2_000 || !second.isRunning }
                #expect(second.isRunning, "\(second.output)")
                second.stop()
                let ids = receiver.received.compactMap { $0.headers["webhook-id"] }
                let distinct = Set(ids)
                #expect(distinct.count == 2_000, "every event arrived")
                print("webhook crash test: killed after \(atKill) received; \(ids.count - distinct.count) sent twice (same webhook-id)")
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

                // Retention: finished deliveries older than the cut-off go, pending ones stay. The receiver may
                // have a request whose outcome is not committed yet: wait for every outcome first.
                try await waitUntil("every outcome recorded") {
                    try await app.count("SELECT count(*)::int FROM webhook_deliveries WHERE status = 'pending'") == 0
                }
                try await app.dependencies.database.withSystem { connection -> Void in
                    try await connection.query("UPDATE webhook_deliveries SET created_at = now() - interval '31 days'", logger: app.dependencies.database.logger)
                }
                try await Self.insertEvents(app, tenant: root.tenant, count: 1)
                let pruned = try await app.dependencies.webhooks.prune(before: Date().addingTimeInterval(-30 * 86_400))
                #expect(pruned == signed.count + 1)
                #expect(try await app.count("webhook_deliveries", tenant: root.tenant) == 1)
            }
        }
    }

    /// The guard runs again when the dispatcher connects: a name that resolved to a public address at
    /// registration and now resolves to loopback is not contacted.
    @Test func theGuardRunsAgainAtConnectTime() async throws {
        try await DNSTestServer.with(zone: ["hooks.example": [["A", "93.184.216.34", 1]]]) { dns in
            try await TestApp.run(dnsPort: dns.port, allowPrivateWebhooks: false) { app in
                let root = try await app.createTenant("Rebind")
                let token = try await app.token(root.keyID, root.secret)
                let hook = try await app.request(.post, "/v1/webhooks", token: token, json: ["url": "https://hooks.example/in", "eventTypes": ["*"]])
                #expect(hook.status == 201, "\(hook.body)")
                try dns.setZone(["hooks.example": [["A", "127.0.0.1", 1]]])
                try await Task.sleep(for: .seconds(1.2))
                try await Self.insertEvents(app, tenant: root.tenant, count: 1)
                try await app.withDispatcher {
                    try await waitUntil("the refused attempt") {
                        let log = try await app.request(.get, "/v1/webhooks/\(try #require(hook["id"]))/deliveries", token: token)
                        return ((log.json["items"] as? [[String: Any]])?.first?["attempts"] as? Int ?? 0) >= 1
                    }
                }
                let log = try await app.request(.get, "/v1/webhooks/\(try #require(hook["id"]))/deliveries", token: token)
                let item = try #require((log.json["items"] as? [[String: Any]])?.first)
                let attempts = item["attemptLog"] as? [[String: Any]] ?? []
                #expect(!attempts.isEmpty && attempts.allSatisfy { ($0["error"] as? String)?.contains("127.0.0.1, a loopback address") == true }, "\(item)")
                #expect(item["lastHttpStatus"] == nil)
            }
        }
    }
}
