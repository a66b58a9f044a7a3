import Foundation
import HeraldCore
@testable import HeraldSMTP
import HeraldTestSupport
import Testing

/// The client against aiosmtpd (an independent server) on 127.0.0.1.
@Suite struct SMTPDeliveryTests {
    @Test func deliversSignedMessagesAndReportsEachRecipient() async throws {
        try await SMTPTestServer.with { peer in
            try peer.script(["busy@example.org": ["450 4.2.1 Mailbox busy"], "nobody@example.org": ["550 5.1.1 No such user"]])
            let key = try DKIMKeyPair.generate(bits: 1024)
            let message = OutgoingMessage(from: try MailAddress("news@mail.example.test"), fromName: "Acme", to: try MailAddress("jane@example.org"),
                                          subject: "Hello", html: "<p>Hi</p>", text: "Hi\n.\nend", messageID: "m1@mail.example.test",
                                          heraldMessageID: "m1", date: Date())
            let signed = try DKIM.sign(message.render(), domain: "mail.example.test", selector: "s1", key: key, at: Date())
            let delivery = SMTPDelivery(hostname: "herald.test")
            let outcomes = await delivery.deliver([
                .init(from: "news@mail.example.test", recipients: ["jane@example.org", "busy@example.org", "nobody@example.org"], data: signed),
                .init(from: "news@mail.example.test", recipients: ["bob@example.org"], data: Array("Subject: second\r\n\r\nbody\r\n".utf8)),
            ], host: "127.0.0.1", port: peer.port)
            #expect(outcomes.map { $0.map(\.messageStatus) } == [["delivered", "deferred", "bounced"], ["delivered"]])

            let received = peer.received
            #expect(received.count == 2)
            #expect(received.first?.to == ["jane@example.org"])
            #expect(received.last?.to == ["bob@example.org"])
            // What arrived (dot-stuffing undone by the server) still verifies with dkimpy.
            let data = try #require(received.first?.data)
            let (status, output) = try runPython("""
                import sys, dkim
                record = ("v=DKIM1; k=rsa; p=" + sys.argv[1]).encode()
                print("ok" if dkim.verify(sys.stdin.buffer.read(), dnsfunc=lambda name, timeout=5: record) else "fail")
                """, [key.publicKeyBase64], input: Array(data.utf8))
            #expect(status == 0 && output == "ok\n", "\(output)")
        }
    }

    @Test func unreachableServersAreSoftFailures() async throws {
        let delivery = SMTPDelivery(hostname: "herald.test")
        // A port nobody listens on (bound and closed at once).
        let outcomes = await delivery.deliver([.init(from: "a@example.test", recipients: ["b@example.org"], data: Array("x\r\n".utf8))],
                                              host: "127.0.0.1", port: 9)
        #expect(outcomes.map { $0.map(\.messageStatus) } == [["deferred"]])
    }

    @Test func startTLSWhenOffered() async throws {
        try await SMTPTestServer.with(tls: true) { peer in
            let delivery = SMTPDelivery(hostname: "herald.test")
            let message = Array("Subject: secret\r\n\r\nover TLS\r\n".utf8)
            let outcomes = await delivery.deliver([.init(from: "a@example.test", recipients: ["b@example.org"], data: message)],
                                                  host: "127.0.0.1", port: peer.port)
            #expect(outcomes.map { $0.map(\.messageStatus) } == [["delivered"]])
            #expect(peer.received.first?.tls == true)
            // Without STARTTLS on our side the same server takes the message in clear text.
            var plain = delivery
            plain.startTLS = false
            _ = await plain.deliver([.init(from: "a@example.test", recipients: ["c@example.org"], data: message)], host: "127.0.0.1", port: peer.port)
            #expect(peer.received.last?.tls == false)
        }
    }

    @Test func aServerSlowerThanTheReplyTimeoutIsASoftFailureAndOutcomesArriveAsTheyHappen() async throws {
        try await SMTPTestServer.with { peer in
            try peer.script(["late@example.org": ["slow 0.2 250 OK"], "stuck@example.org": ["slow 60 250 OK"]])
            var delivery = SMTPDelivery(hostname: "herald.test")
            delivery.replyTimeout = .seconds(10)
            let heard = Heard()
            let started = ContinuousClock.now
            let attempt = await delivery.attempt([
                .init(from: "a@example.test", recipients: ["late@example.org"], data: Array("Subject: 1\r\n\r\none\r\n".utf8)),
                .init(from: "a@example.test", recipients: ["stuck@example.org"], data: Array("Subject: 2\r\n\r\ntwo\r\n".utf8)),
            ], host: "127.0.0.1", port: peer.port) { index, outcome in
                await heard.add(index, outcome.map(\.messageStatus))
            }
            // A slow answer within the timeout is fine; a silent server is cut off at the timeout.
            #expect(attempt.outcomes.map { $0.map(\.messageStatus) } == [["delivered"], ["deferred"]])
            #expect(ContinuousClock.now - started < .seconds(45))
            // The first outcome was reported while the session was still going on.
            let events = await heard.events
            #expect(events.first?.0 == 0 && events.first?.1 == ["delivered"])
        }
    }

    /// Waits until `done` answers true, checking every 10 ms; fails the test after `seconds`.
    static func waitUntil(_ what: String, seconds: Double = 20, _ done: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if try await done() { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("timed out waiting for \(what)")
        throw TestSupportError("timed out waiting for \(what)")
    }

    static func envelope(_ to: String) -> SMTPClientStateMachine.Envelope {
        .init(from: "a@example.test", recipients: [to], data: Array("Subject: hello \(to)\r\n\r\nbody\r\n".utf8))
    }

    @Test func connectionsAreReusedCappedAndClosedWhenIdle() async throws {
        try await SMTPTestServer.with { peer in
            // Idle time on a clock of the test's: nothing times out until the test moves it.
            let clock = ManualClock()
            let pool = SMTPConnectionPool(maxPerDestination: 2, maxIdlePerDestination: 2, idleTimeout: .milliseconds(1500), clock: clock)
            let delivery = SMTPDelivery(hostname: "herald.test", pool: pool)
            // One after another: the same connection every time (RSET-free: each transaction ended well).
            for index in 0..<3 {
                let outcomes = await delivery.deliver([Self.envelope("seq\(index)@example.org")], host: "127.0.0.1", port: peer.port)
                #expect(outcomes.map { $0.map(\.messageStatus) } == [["delivered"]])
            }
            #expect(Set(peer.received.map(\.session)).count == 1, "\(peer.received.map(\.session))")
            let (opened, reused) = (await pool.opened, await pool.reused)
            #expect(opened == 1 && reused == 2)
            // A refused transaction (RSET after it) does not spoil the connection for the next message.
            try peer.script(["nobody@example.org": ["550 5.1.1 No such user"]])
            let refused = await delivery.deliver([Self.envelope("nobody@example.org"), Self.envelope("after@example.org")],
                                                 host: "127.0.0.1", port: peer.port)
            #expect(refused.map { $0.map(\.messageStatus) } == [["bounced"], ["delivered"]])
            #expect(await pool.opened == 1)

            // Eight at once: never more than two connections open to the server.
            await withTaskGroup(of: Void.self) { group in
                for index in 0..<8 {
                    group.addTask { _ = await delivery.deliver([Self.envelope("par\(index)@example.org")], host: "127.0.0.1", port: peer.port) }
                }
            }
            let parallel = peer.received.filter { $0.to.first?.hasPrefix("par") == true }
            #expect(parallel.count == 8)
            #expect(parallel.allSatisfy { $0.open <= 2 }, "\(parallel.map(\.open))")
            #expect(await pool.opened <= 2)

            // Past the idle timeout the pool has said QUIT: a new connection. The pool's sweeper wakes when the clock
            // passes the timeout; the idle connections are gone once each server has answered QUIT and closed.
            let idle = await pool.idleSessions
            #expect(!idle.isEmpty)
            clock.advance(by: .seconds(2))
            try await Self.waitUntil("the idle connections closed") { idle.allSatisfy { !$0.isOpen } }
            #expect(await pool.idleSessions.isEmpty)
            let before = await pool.opened
            _ = await delivery.deliver([Self.envelope("later@example.org")], host: "127.0.0.1", port: peer.port)
            #expect(await pool.opened == before + 1)
            #expect(peer.received.last?.open == 1, "the idle connections were closed")
        }
    }

    @Test func aFailedTLSHandshakeFallsBackToPlaintext() async throws {
        try await SMTPTestServer.with(brokenTLS: true) { peer in
            let delivery = SMTPDelivery(hostname: "herald.test", pool: SMTPConnectionPool(idleTimeout: .zero))
            let outcomes = await delivery.deliver([Self.envelope("tls@example.org")], host: "127.0.0.1", port: peer.port)
            #expect(outcomes.map { $0.map(\.messageStatus) } == [["delivered"]], "\(outcomes)")
            #expect(peer.received.count == 1 && peer.received.first?.tls == false)
        }
    }
}

/// Outcomes reported during a session, in order.
private actor Heard {
    var events: [(Int, [String])] = []
    func add(_ index: Int, _ statuses: [String]) { events.append((index, statuses)) }
}

/// The pool's cap as a share of the installation's: never more in use than the share allows.
@Suite struct SMTPConnectionPoolShareTests {
    @Test func noMoreConnectionsInUseThanTheShare() async throws {
        let share = ShareBox(1)
        let pool = SMTPConnectionPool(maxPerDestination: 10, idleTimeout: .zero, sharedSlots: { _, _, _ in share.value })
        _ = await pool.acquire("mx:25")
        // A second waits while the share is one…
        let second = Task { _ = await pool.acquire("mx:25"); return ContinuousClock.now }
        try await Task.sleep(for: .milliseconds(300))
        let grown = ContinuousClock.now
        // …and goes once the share grows, without a release.
        share.value = 2
        let started = await second.value
        #expect(started > grown)
        await pool.release("mx:25", session: nil)
        await pool.release("mx:25", session: nil)
    }
}

final class ShareBox: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Int
    init(_ value: Int) { stored = value }
    var value: Int {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}
