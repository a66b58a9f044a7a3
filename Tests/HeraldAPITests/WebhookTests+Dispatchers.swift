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

/// The dispatcher under load and failure: a dead endpoint holds only its own share, several dispatchers send each
/// delivery once, a killed process loses no event.
extension WebhookTests {
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
                            // Nothing left to send: every delivery is recorded as sent and held by no dispatcher, so no
                            // claim can take one again. A second claim of a delivery would have left it held by the
                            // last claimer until that one's request was answered, so whatever was sent twice has
                            // arrived; the dispatchers stop before the requests are counted.
                            try await waitUntil("every delivery recorded, none held") {
                                try await app.count("""
                                    SELECT count(*)::int FROM webhook_deliveries WHERE status <> 'succeeded' OR locked_by IS NOT NULL
                                    """) == 0
                            }
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
}
