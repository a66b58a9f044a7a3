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

    /// The guard runs again when the dispatcher connects: a name that resolved to a public address at
    /// registration and now resolves to loopback is not contacted.
    @Test func theGuardRunsAgainAtConnectTime() async throws {
        try await DNSTestServer.with(zone: ["hooks.example": [["A", "93.184.216.34", 60]]]) { dns in
            try await TestApp.run(dnsPort: dns.port, allowPrivateWebhooks: false) { app in
                let root = try await app.createTenant("Rebind")
                let token = try await app.token(root.keyID, root.secret)
                let hook = try await app.request(.post, "/v1/webhooks", token: token, json: ["url": "https://hooks.example/in", "eventTypes": ["*"]])
                #expect(hook.status == 201, "\(hook.body)")
                try dns.setZone(["hooks.example": [["A", "127.0.0.1", 60]]])
                // The registration's answer is cached for its TTL (60 s) on the test's clock, which the DNS cache reads:
                // past it, the dispatcher's lookup asks the server again, at once.
                app.clock.advance(61)
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
