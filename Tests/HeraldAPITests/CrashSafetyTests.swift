import Foundation
import HTTPTypes
import HeraldAPI
import HeraldAppTestSupport
import HeraldCore
import HeraldStore
import HeraldTestSupport
import PostgresNIO
import Testing

/// The queue survives a worker that dies without warning: a real `herald serve` process is killed with
/// SIGKILL in the middle of delivering 2,000 messages and started again; every message arrives. The one
/// at-least-once window: a message whose 250 reply came in but whose outcome was not yet committed goes
/// out again after the lease — outcomes are committed as they come, so that is a few messages at most.
@Suite struct CrashSafetyTests {
    @Test func sigkillMidDeliveryLosesNoMessage() async throws {
        let keyBytes = (0..<32).map { _ in UInt8.random(in: 0...255) }
        try await DNSTestServer.with(zone: [:]) { dns in
            try await SMTPTestServer.with { peer in
                try await TestApp.run(dnsPort: dns.port, masterKey: MasterKey(bytes: keyBytes)) { app in
                    let (tenant, token, _, _) = try await app.sendingTenant(dns)
                    try await app.setGrade(tenant: tenant, 4)
                    // The shape: 20 requests of 100 recipients (default), or, with HERALD_CRASH_SINGLE=1, 2,000 requests
                    // of one recipient each; HERALD_CRASH_LEASE sets the lease (default 3 s) and HERALD_CRASH_KILL_AT how many
                    // messages the peer has when the first process is killed (default 400) — for running it in a loop.
                    let shape = ProcessInfo.processInfo.environment
                    let single = shape["HERALD_CRASH_SINGLE"] == "1", lease = shape["HERALD_CRASH_LEASE"] ?? "3"
                    let killAt = shape["HERALD_CRASH_KILL_AT"].flatMap { Int($0) } ?? 400
                    if single {
                        try await withThrowingTaskGroup(of: Void.self) { group in
                            for worker in 0..<16 {
                                group.addTask {
                                    for index in stride(from: worker, to: 2_000, by: 16) {
                                        let sent = try await app.request(.post, "/v1/mail/single", token: token, json: TestApp.mail(to: ["r\(index)@example.org"]))
                                        #expect(sent.status == 200, "\(sent.body)")
                                    }
                                }
                            }
                            try await group.waitForAll()
                        }
                    } else {
                        for request in 0..<20 {
                            let sent = try await app.request(.post, "/v1/mail/single", token: token,
                                                             json: TestApp.mail(to: (0..<100).map { "r\(request)-\($0)@example.org" }))
                            #expect(sent.status == 200, "\(sent.body)")
                        }
                    }
                    let environment = app.serveEnvironment(masterKey: keyBytes, [
                        "HERALD_ROLES": "scheduler", "HERALD_SMARTHOST": "127.0.0.1:\(peer.port)", "HERALD_DNS_SERVER": "127.0.0.1:\(dns.port)",
                        "HERALD_DELIVERY_LEASE": lease,
                    ])
                    func delivered() async throws -> Int {
                        try await app.dependencies.database.withSystem { connection in
                            try await connection.query("SELECT count(*)::int FROM messages WHERE status = 'delivered'", logger: app.dependencies.database.logger)
                                .decode(Int.self).first { _ in true } ?? 0
                        }
                    }
                    // Who holds the claims while the first process delivers: each of its delivery loops under its own
                    // name, so that a loop whose lease ran out cannot record what the other loop claimed again.
                    var holders = Set<String>()
                    let first = try HeraldProcess(["serve"], environment: environment)
                    try await waitUntil("the first deliveries", seconds: 120) {
                        holders.formUnion(try await app.dependencies.database.withSystem { connection in
                            try await connection.query("SELECT DISTINCT locked_by FROM messages WHERE status = 'sending'", logger: app.dependencies.database.logger)
                                .collect().map { try $0.decode(String.self) }
                        })
                        return peer.receivedCount >= killAt || !first.isRunning
                    }
                    #expect(holders.count >= 2, "the delivery loops claim under names of their own: \(holders)")
                    #expect(first.isRunning, "\(first.output)")
                    first.kill()
                    let atKill = peer.receivedCount
                    let recordedAtKill = try await delivered()
                    #expect(atKill < 2_000, "killed mid-delivery")

                    let second = try HeraldProcess(["serve"], environment: environment)
                    defer { second.stop() }
                    try await waitUntil("every message delivered", seconds: 240) { try await delivered() == 2_000 || !second.isRunning }
                    #expect(second.isRunning, "\(second.output)")
                    second.stop()

                    let ids = peer.received.compactMap { message in
                        message.data.split(separator: "\r\n").first { $0.hasPrefix("X-Herald-Message-Id: ") }.map { String($0.dropFirst(21)) }
                    }
                    let distinct = Set(ids)
                    #expect(distinct.count == 2_000, "every message arrived")
                    // A message recorded `delivered` reached the peer: a reply credited to a message whose data never
                    // went out (replies out of step with commands) would show here as a delivered message the peer
                    // never had.
                    let recorded = try await app.dependencies.database.withSystem { connection in
                        try await connection.query("""
                            SELECT id, to_address, attempts, coalesce(last_response, '') FROM messages WHERE status = 'delivered'
                            """, logger: app.dependencies.database.logger).collect().map { try $0.decode((UUID, String, Int, String).self) }
                    }
                    let unreceived = recorded.filter { !distinct.contains($0.0.uuidString.lowercased()) }
                    #expect(unreceived.isEmpty, "recorded delivered but never received: \(unreceived.prefix(20))")
                    // And the peer had each message for its own recipient.
                    let recipients = Dictionary(recorded.map { ($0.0.uuidString.lowercased(), $0.1) }) { first, _ in first }
                    let misdirected = peer.received.filter { message in
                        guard let id = message.data.split(separator: "\r\n").first(where: { $0.hasPrefix("X-Herald-Message-Id: ") })
                            .map({ String($0.dropFirst(21)) }) else { return true }
                        return message.to != [recipients[id] ?? "?"]
                    }
                    #expect(misdirected.isEmpty, "received for another recipient: \(misdirected.prefix(5).map(\.to))")
                    let duplicates = ids.count - distinct.count
                    // The window, exactly: a message sent twice is one the peer had accepted whose outcome was not yet
                    // committed when the process died (outcomes are committed as they come, so it is a few messages).
                    #expect(duplicates <= atKill - recordedAtKill, "\(duplicates) duplicates, \(atKill - recordedAtKill) unrecorded at the kill")
                    print("crash test (\(single ? "2,000 single sends" : "20 × 100"), lease \(lease) s): killed after \(atKill) received "
                        + "(\(recordedAtKill) recorded); \(duplicates) sent twice; \(unreceived.count) recorded delivered but never received")
                    let events = try await app.dependencies.database.withSystem { connection in
                        try await connection.query("SELECT count(*)::int FROM events WHERE type = 'message.delivered'",
                                                   logger: app.dependencies.database.logger).decode(Int.self).first { _ in true } ?? 0
                    }
                    #expect(events == 2_000, "one message.delivered event per message")
                }
            }
        }
    }
}
