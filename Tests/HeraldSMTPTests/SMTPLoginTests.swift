import Foundation
import HeraldSMTP
import HeraldTestSupport
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Testing

/// A delegate with one user, `app@example.test` / `secret`, whose login carries a credential (the password's
/// generation); changing ``generation`` ends the sessions that logged in before.
final class LoginDelegate: SMTPServerDelegate {
    let generation = NIOLockedValueBox(1)

    func recipient(_ address: String, from: String, client: SocketAddress?) async -> SMTPReply {
        SMTPServerStateMachine.reply(250, (2, 1, 5), "OK")
    }

    func deliver(_ envelope: SMTPServerStateMachine.Envelope, client: SocketAddress?) async -> SMTPReply {
        SMTPServerStateMachine.reply(250, (2, 0, 0), "Queued")
    }

    func login(username: String, password: String, client: SocketAddress?) async -> SMTPLogin {
        guard username == "app@example.test", password == "secret" else {
            return SMTPLogin(reply: SMTPServerStateMachine.reply(535, (5, 7, 8), "Authentication credentials invalid"))
        }
        return SMTPLogin(reply: SMTPServerStateMachine.reply(235, (2, 7, 0), "Authentication successful"),
                         credential: String(generation.withLockedValue { $0 }))
    }

    func sender(_ address: String, authenticatedAs user: String, credential: String, client: SocketAddress?) async -> SMTPReply {
        credential == String(generation.withLockedValue { $0 })
            ? SMTPServerStateMachine.reply(250, (2, 1, 0), "OK")
            : SMTPServerStateMachine.reply(535, (5, 7, 8), "The SMTP password changed since this session logged in; log in again")
    }
}

@Suite struct SMTPLoginTests {
    static func settings() -> SMTPServerStateMachine.Settings {
        var settings = SMTPServerStateMachine.Settings(hostname: "smtp.herald.test")
        settings.authAvailable = true
        settings.authRequiresTLS = false
        settings.requireAuth = true
        return settings
    }

    @Test func aLoginWithACredentialIsCheckedAgainAtEachMail() {
        var machine = SMTPServerStateMachine(settings: Self.settings())
        _ = machine.receive(line: Array("EHLO c".utf8))
        let plain = Data("\0app@example.test\0secret".utf8).base64EncodedString()
        #expect(machine.receive(line: Array("AUTH PLAIN \(plain)".utf8)) == .authenticate(username: "app@example.test", password: "secret"))
        _ = machine.authenticated(SMTPServerStateMachine.reply(235, (2, 7, 0), "OK"), credential: "1")
        #expect(machine.receive(line: Array("MAIL FROM:<app@example.test>".utf8)) == .checkSender("app@example.test"))
        #expect(machine.isWaiting)
        #expect(machine.senderChecked(SMTPServerStateMachine.reply(250, (2, 1, 0), "OK")) == .reply(SMTPServerStateMachine.reply(250, (2, 1, 0), "OK")))
        #expect(machine.receive(line: Array("RCPT TO:<ann@example.org>".utf8)) == .checkRecipient("ann@example.org"))
        _ = machine.recipientChecked(SMTPServerStateMachine.reply(250, nil, "OK"))
        _ = machine.receive(line: Array("RSET".utf8))
        // The password changed: the session ends.
        #expect(machine.receive(line: Array("MAIL FROM:<app@example.test>".utf8)) == .checkSender("app@example.test"))
        let ended = SMTPServerStateMachine.reply(535, (5, 7, 8), "changed")
        #expect(machine.senderChecked(ended) == .replyAndClose(ended))
        #expect(machine.authenticatedAs == nil && machine.credential == nil)
        // A login without a credential (a delegate that keeps nothing) is not asked again.
        var plainMachine = SMTPServerStateMachine(settings: Self.settings())
        _ = plainMachine.receive(line: Array("EHLO c".utf8))
        _ = plainMachine.receive(line: Array("AUTH PLAIN \(plain)".utf8))
        _ = plainMachine.authenticated(SMTPServerStateMachine.reply(235, (2, 7, 0), "OK"))
        #expect(plainMachine.receive(line: Array("MAIL FROM:<app@example.test>".utf8)) == .reply(SMTPServerStateMachine.reply(250, (2, 1, 0), "OK")))
    }

    /// Three connections per address may wait without a login; the fourth is refused, and a connection that
    /// logs in makes room (logged-in connections count only against the larger cap).
    @Test func fewConnectionsPerAddressBeforeAuth() async throws {
        var configuration = SMTPServer.Configuration(host: "127.0.0.1", port: 0, session: Self.settings())
        configuration.maxConnectionsPerAddress = 200
        configuration.maxUnauthenticatedPerAddress = 3
        let delegate = LoginDelegate()
        let server = try await SMTPServer.bind(configuration, delegate: delegate, logger: Logger(label: "test.smtp-login"))
        defer { server.close() }
        let (status, output) = try await runPythonDetached("""
            import base64, socket, sys
            socket.setdefaulttimeout(5)
            port = int(sys.argv[1])
            def connect():
                s = socket.create_connection(("127.0.0.1", port))
                return s, s.recv(1000).decode().strip()
            def command(s, line):
                s.sendall(line.encode() + b"\\r\\n")
                return s.recv(1000).decode().strip()
            waiting = [connect() for _ in range(3)]
            print("waiting", [greeting[:3] for _, greeting in waiting])
            fourth, greeting = connect()
            print("fourth", greeting)
            first = waiting[0][0]
            command(first, "EHLO c")
            print("login", command(first, "AUTH PLAIN " + base64.b64encode(b"\\0app@example.test\\0secret").decode()))
            fifth, greeting = connect()
            print("after login", greeting[:3])
            sixth, greeting = connect()
            print("sixth", greeting[:3])
            """, [String(server.port)])
        #expect(status == 0, "\(output)")
        #expect(output.contains("waiting ['220', '220', '220']"), "\(output)")
        #expect(output.contains("fourth 421 4.7.0"), "\(output)")
        #expect(output.contains("login 235"), "\(output)")
        #expect(output.contains("after login 220"), "\(output)")
        #expect(output.contains("sixth 421"), "\(output)")
    }

    /// smtplib logs in; the password changes; the session's next MAIL is refused with 535 and the connection closed.
    @Test func aChangedPasswordEndsTheSession() async throws {
        let delegate = LoginDelegate()
        let server = try await SMTPServer.bind(SMTPServer.Configuration(host: "127.0.0.1", port: 0, session: Self.settings()), delegate: delegate,
                                               logger: Logger(label: "test.smtp-login"))
        defer { server.close() }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("herald-login-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        async let run = runPythonDetached(pythonSMTPClientPrelude + """
            import os
            port, directory = int(sys.argv[1]), sys.argv[2]
            s = smtplib.SMTP("127.0.0.1", port, timeout=10)
            s.login("app@example.test", "secret")
            s.sendmail("app@example.test", ["ann@example.org"], "From: app@example.test\\r\\n\\r\\nfirst\\r\\n")
            print("first sent")
            open(os.path.join(directory, "logged-in"), "w").close()
            deadline = time.time() + 30
            while not os.path.exists(os.path.join(directory, "changed")) and time.time() < deadline:
                time.sleep(0.05)
            try:
                s.sendmail("app@example.test", ["ann@example.org"], "From: app@example.test\\r\\n\\r\\nsecond\\r\\n")
                print("second sent")
            except smtplib.SMTPSenderRefused as e:
                print("second refused", e.smtp_code, e.smtp_error.decode())
            try:
                s.noop()
                print("still open")
            except smtplib.SMTPServerDisconnected:
                print("closed")
            """, [String(server.port), directory.path])
        let marker = directory.appendingPathComponent("logged-in").path
        for _ in 0..<600 where !FileManager.default.fileExists(atPath: marker) { try await Task.sleep(for: .milliseconds(50)) }
        delegate.generation.withLockedValue { $0 += 1 }
        _ = FileManager.default.createFile(atPath: directory.appendingPathComponent("changed").path, contents: nil)
        let (status, output) = try await run
        #expect(status == 0, "\(output)")
        #expect(output.contains("first sent"), "\(output)")
        #expect(output.contains("second refused 535 5.7.8 The SMTP password changed"), "\(output)")
        #expect(output.contains("closed"), "\(output)")
    }
}
