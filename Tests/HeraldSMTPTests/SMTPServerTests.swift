import Foundation
import HeraldSMTP
import HeraldTestSupport
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Testing

/// The server's state machine on its own, with no network.
@Suite struct SMTPServerStateMachineTests {
    func line(_ text: String) -> [UInt8] { Array(text.utf8) }

    func replyCode(_ action: SMTPServerStateMachine.Action) -> Int? {
        switch action {
        case .reply(let reply), .replyAndClose(let reply), .startTLS(let reply): reply.code
        default: nil
        }
    }

    @Test func aTransactionFromGreetingToTheFinalDot() throws {
        var machine = SMTPServerStateMachine(settings: .init(hostname: "mx.test", maxMessageSize: 100))
        #expect(machine.greeting.code == 220)
        #expect(replyCode(machine.receive(line: line("MAIL FROM:<a@b.test>"))) == 503, "EHLO first")
        guard case .reply(let ehlo) = machine.receive(line: line("EHLO client.test")) else { Issue.record("no EHLO reply"); return }
        #expect(ehlo.code == 250 && ehlo.lines.contains("PIPELINING") && ehlo.lines.contains("SIZE 100") && !ehlo.lines.contains("STARTTLS"))
        #expect(replyCode(machine.receive(line: line("STARTTLS"))) == 502, "no certificate, no STARTTLS")
        #expect(replyCode(machine.receive(line: line("RCPT TO:<x@y.test>"))) == 503, "MAIL first")
        #expect(replyCode(machine.receive(line: line("MAIL FROM:<a@b.test> SIZE=101"))) == 552, "declared too big")
        #expect(replyCode(machine.receive(line: line("mail from: <a@b.test> BODY=8BITMIME"))) == 250, "case and a space tolerated")
        #expect(machine.currentSender == "a@b.test")
        #expect(replyCode(machine.receive(line: line("DATA"))) == 554, "no recipients yet")
        #expect(replyCode(machine.receive(line: line("MAIL FROM:<>"))) == 250)
        #expect(machine.receive(line: line("RCPT TO:<@relay.test:x@y.test>")) == .checkRecipient("x@y.test"), "source route dropped")
        #expect(machine.isWaiting)
        #expect(replyCode(machine.recipientChecked(SMTPServerStateMachine.reply(250, (2, 1, 5), "OK"))) == 250)
        #expect(machine.receive(line: line("RCPT TO:<no@y.test>")) == .checkRecipient("no@y.test"))
        #expect(replyCode(machine.recipientChecked(SMTPServerStateMachine.reply(550, (5, 1, 1), "No"))) == 550)
        #expect(replyCode(machine.receive(line: line("DATA"))) == 354)
        #expect(machine.receive(line: line("Subject: hi")) == .none)
        #expect(machine.receive(line: line("")) == .none)
        #expect(machine.receive(line: line("..leading dot")) == .none)
        guard case .deliver(let envelope) = machine.receive(line: line(".")) else { Issue.record("no message"); return }
        #expect(envelope.from == "" && envelope.recipients == ["x@y.test"] && envelope.clientName == "client.test")
        #expect(String(decoding: envelope.data, as: UTF8.self) == "Subject: hi\r\n\r\n.leading dot\r\n")
        #expect(replyCode(machine.delivered(SMTPServerStateMachine.reply(250, (2, 0, 0), "OK"))) == 250)
        #expect(replyCode(machine.receive(line: line("NOOP"))) == 250)
        guard case .replyAndClose(let bye) = machine.receive(line: line("QUIT")) else { Issue.record("no 221"); return }
        #expect(bye.code == 221)
    }

    @Test func oversizedMessagesLongLinesAndTooManyErrors() {
        var machine = SMTPServerStateMachine(settings: .init(hostname: "mx.test", maxMessageSize: 20, maxRecipients: 1, maxErrors: 3))
        _ = machine.receive(line: line("HELO c"))
        _ = machine.receive(line: line("MAIL FROM:<a@b.test>"))
        _ = machine.receive(line: line("RCPT TO:<x@y.test>"))
        _ = machine.recipientChecked(SMTPServerStateMachine.reply(250, nil, "OK"))
        #expect(replyCode(machine.receive(line: line("RCPT TO:<z@y.test>"))) == 452, "one recipient at most")
        _ = machine.receive(line: line("DATA"))
        _ = machine.receive(line: line("0123456789"))
        _ = machine.receive(line: line("0123456789"))
        #expect(replyCode(machine.receive(line: line("."))) == 552, "over the size limit: refused, nothing delivered")
        #expect(replyCode(machine.receive(line: line("MAIL FROM:<a@b.test>"))) == 250, "the session goes on")
        #expect(replyCode(machine.receive(line: Array(repeating: 65, count: 10), overlong: true)) == 500)
        #expect(replyCode(machine.receive(line: line("BOGUS"))) == 500)
        guard case .replyAndClose(let reply) = machine.receive(line: line("BOGUS")) else { Issue.record("no hang-up"); return }
        #expect(reply.code == 421)
    }

    @Test func submissionNeedsAuthOverTLSAndItsOwnAddress() throws {
        var settings = SMTPServerStateMachine.Settings(hostname: "smtp.test", tlsAvailable: true)
        settings.authAvailable = true
        settings.requireAuth = true
        var machine = SMTPServerStateMachine(settings: settings)
        guard case .reply(let plainEHLO) = machine.receive(line: line("EHLO c")) else { Issue.record("no EHLO reply"); return }
        #expect(!plainEHLO.lines.contains("AUTH PLAIN LOGIN"), "no AUTH before TLS")
        #expect(replyCode(machine.receive(line: line("AUTH PLAIN AGFAYg=="))) == 538)
        #expect(replyCode(machine.receive(line: line("MAIL FROM:<app@example.test>"))) == 530)
        #expect(replyCode(machine.receive(line: line("STARTTLS"))) == 220)
        guard case .reply(let ehlo) = machine.receive(line: line("EHLO c")) else { Issue.record("no EHLO reply"); return }
        #expect(ehlo.lines.contains("AUTH PLAIN LOGIN") && !ehlo.lines.contains("STARTTLS"))

        // PLAIN with an initial response; a refusal leaves the connection unauthenticated.
        let credentials = Data("\0app@example.test\0secret".utf8).base64EncodedString()
        #expect(machine.receive(line: line("AUTH PLAIN " + credentials)) == .authenticate(username: "app@example.test", password: "secret"))
        #expect(machine.isWaiting)
        #expect(replyCode(machine.authenticated(SMTPServerStateMachine.reply(535, (5, 7, 8), "No"))) == 535)
        #expect(machine.authenticatedAs == nil)

        // LOGIN in three steps, "*" cancels.
        #expect(machine.receive(line: line("AUTH LOGIN")) == .reply(SMTPReply(code: 334, lines: ["VXNlcm5hbWU6"])))
        #expect(replyCode(machine.receive(line: line("*"))) == 501)
        _ = machine.receive(line: line("AUTH LOGIN"))
        #expect(machine.receive(line: line(Data("app@example.test".utf8).base64EncodedString())) == .reply(SMTPReply(code: 334, lines: ["UGFzc3dvcmQ6"])))
        #expect(machine.receive(line: line(Data("secret".utf8).base64EncodedString())) == .authenticate(username: "app@example.test", password: "secret"))
        #expect(replyCode(machine.authenticated(SMTPServerStateMachine.reply(235, (2, 7, 0), "OK"))) == 235)
        #expect(machine.authenticatedAs == "app@example.test")
        #expect(replyCode(machine.receive(line: line("AUTH PLAIN " + credentials))) == 503, "once per connection")

        // MAIL FROM must be the authenticated address (case aside).
        #expect(replyCode(machine.receive(line: line("MAIL FROM:<boss@example.test>"))) == 553)
        #expect(replyCode(machine.receive(line: line("MAIL FROM:<App@Example.test>"))) == 250)
    }

    @Test func repliesAreWrittenWithTheirEnhancedStatus() {
        #expect(String(decoding: SMTPServerStateMachine.reply(550, (5, 1, 1), "No such user").encoded, as: UTF8.self) == "550 5.1.1 No such user\r\n")
        #expect(String(decoding: SMTPReply(code: 250, lines: ["mx greets c", "PIPELINING"]).encoded, as: UTF8.self) == "250-mx greets c\r\n250 PIPELINING\r\n")
    }
}

/// Takes recipients whose local part does not start with "bad" and records what arrives.
final class RecordingDelegate: SMTPServerDelegate {
    let messages = NIOLockedValueBox<[SMTPServerStateMachine.Envelope]>([])

    func recipient(_ address: String, from: String, client: SocketAddress?) async -> SMTPReply {
        address.hasPrefix("bad") ? SMTPServerStateMachine.reply(550, (5, 1, 1), "No such user") : SMTPServerStateMachine.reply(250, (2, 1, 5), "OK")
    }

    func deliver(_ envelope: SMTPServerStateMachine.Envelope, client: SocketAddress?) async -> SMTPReply {
        messages.withLockedValue { $0.append(envelope) }
        return SMTPServerStateMachine.reply(250, (2, 0, 0), "Queued")
    }
}

/// The server on 127.0.0.1 against our own client, Python's smtplib and raw sockets.
@Suite struct SMTPServerTests {
    static func withServer(tls: Bool = false, _ change: @escaping @Sendable (inout SMTPServer.Configuration) -> Void = { _ in },
                           _ body: @escaping @Sendable (SMTPServer, RecordingDelegate) async throws -> Void) async throws {
        var configuration = SMTPServer.Configuration(host: "127.0.0.1", port: 0, session: .init(hostname: "mx.herald.test", maxMessageSize: 64 * 1024))
        change(&configuration)
        guard tls else { return try await run(configuration, body) }
        try await SelfSignedCertificate.with(commonName: "mx.herald.test") { certificate in
            var configuration = configuration
            try configuration.loadTLS(certificatePath: certificate.certificatePath, keyPath: certificate.keyPath)
            try await run(configuration, body)
        }
    }

    static func run(_ configuration: SMTPServer.Configuration, _ body: (SMTPServer, RecordingDelegate) async throws -> Void) async throws {
        let delegate = RecordingDelegate()
        let server = try await SMTPServer.bind(configuration, delegate: delegate, logger: Logger(label: "test.smtp-server"))
        do {
            try await body(server, delegate)
        } catch {
            server.close()
            throw error
        }
        server.close()
        await server.wait()
    }

    @Test func ourClientDeliversOverSTARTTLSWithPipelining() async throws {
        try await Self.withServer(tls: true) { server, delegate in
            let delivery = SMTPDelivery(hostname: "client.herald.test")
            let body = "Subject: one\r\n\r\n.starts with a dot\r\n" + String(repeating: "x", count: 2_000) + "\r\nend\r\n"
            let (outcomes, connected) = await delivery.attempt([
                .init(from: "news@example.test", recipients: ["ann@example.org", "bad@example.org"], data: Array(body.utf8)),
                .init(from: "", recipients: ["ben@example.org"], data: Array("Subject: two\r\n\r\nhi\r\n".utf8)),
            ], host: "127.0.0.1", port: server.port)
            #expect(connected)
            #expect(outcomes.map { $0.map(\.messageStatus) } == [["delivered", "bounced"], ["delivered"]])
            let received = delegate.messages.withLockedValue { $0 }
            #expect(received.map(\.recipients) == [["ann@example.org"], ["ben@example.org"]])
            #expect(received.first.map { String(decoding: $0.data, as: UTF8.self) } == body, "dot-stuffing undone, long lines kept")
            #expect(received.last?.from == "" && received.first?.clientName == "client.herald.test")
        }
    }

    @Test func pythonSMTPLibAndTheSTARTTLSInjectionGuard() async throws {
        try await Self.withServer(tls: true) { server, delegate in
            let (status, output) = try await runPythonDetached("""
                import smtplib, socket, ssl, sys
                socket.setdefaulttimeout(10)
                port = int(sys.argv[1])
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                with smtplib.SMTP("127.0.0.1", port) as s:
                    s.ehlo("py.test")
                    assert s.has_extn("starttls") and s.has_extn("pipelining"), s.esmtp_features
                    s.starttls(context=context)
                    s.ehlo("py.test")
                    assert not s.has_extn("starttls")
                    refused = s.sendmail("a@example.test", ["ok@example.org", "bad@example.org"], "Subject: py\\r\\n\\r\\nhello\\r\\n")
                    print("refused", sorted(refused))
                # Commands sent in the same packet as STARTTLS must not be answered (RFC 3207 §5).
                raw = socket.create_connection(("127.0.0.1", port))
                raw.recv(1000)
                raw.sendall(b"EHLO py.test\\r\\n")
                raw.recv(1000)
                raw.sendall(b"STARTTLS\\r\\nNOOP\\r\\n")
                answer = raw.recv(1000)
                print("starttls", answer.decode().strip())
                tls = context.wrap_socket(raw)
                tls.sendall(b"NOOP\\r\\n")
                print("after", tls.recv(1000).decode().strip())
                # Pipelined commands are answered in order, one reply each.
                p = socket.create_connection(("127.0.0.1", port))
                p.recv(1000)
                p.sendall(b"HELO py.test\\r\\nMAIL FROM:<a@example.test>\\r\\nRCPT TO:<bad@example.org>\\r\\nRCPT TO:<ok2@example.org>\\r\\nDATA\\r\\nhi\\r\\n.\\r\\nQUIT\\r\\n")
                data = b""
                while True:
                    chunk = p.recv(1000)
                    if not chunk:
                        break
                    data += chunk
                print("pipelined", " ".join(line[:3] for line in data.decode().strip().split("\\r\\n")))
                """, [String(server.port)])
            #expect(status == 0, "\(output)")
            #expect(output.contains("refused ['bad@example.org']"), "\(output)")
            #expect(output.contains("starttls 220 2.0.0 Ready to start TLS\n"), "the injected NOOP is not answered in clear: \(output)")
            #expect(output.contains("after 250 2.0.0 OK"), "\(output)")
            #expect(output.contains("pipelined 250 250 550 250 354 250 221"), "\(output)")
            #expect(delegate.messages.withLockedValue { $0.map(\.recipients) } == [["ok@example.org"], ["ok2@example.org"]])
        }
    }

    @Test func connectionCapsAndTheIdleTimeout() async throws {
        try await Self.withServer({ $0.maxConnectionsPerAddress = 2; $0.idleTimeout = .milliseconds(500) }) { server, _ in
            let (status, output) = try await runPythonDetached("""
                import socket, sys, time
                socket.setdefaulttimeout(5)
                port = int(sys.argv[1])
                first = socket.create_connection(("127.0.0.1", port))
                second = socket.create_connection(("127.0.0.1", port))
                print("first", first.recv(1000).decode().strip())
                second.recv(1000)
                third = socket.create_connection(("127.0.0.1", port))
                print("third", third.recv(1000).decode().strip())
                first.settimeout(5)
                print("idle", first.recv(1000).decode().strip())
                print("closed", first.recv(1000) == b"")
                """, [String(server.port)])
            #expect(status == 0, "\(output)")
            #expect(output.contains("first 220 mx.herald.test ESMTP Herald"), "\(output)")
            #expect(output.contains("third 421 4.7.0"), "\(output)")
            #expect(output.contains("idle 421 4.4.2"), "\(output)")
            #expect(output.contains("closed True"), "\(output)")
        }
    }
}
