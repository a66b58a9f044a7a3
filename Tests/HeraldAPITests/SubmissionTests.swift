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
import PostgresNIO
import Testing

/// SMTP submission end to end: Python's smtplib logs in over STARTTLS with a sender address and its SMTP
/// password and submits a message with an attachment; it is queued through the API's accept path and
/// delivered as submitted, DKIM-signed (checked by dkimpy), to the SMTP peer. One test at a time, with
/// patient clients: every login runs scrypt on a pool of one thread per core, and a debug build's scrypt takes
/// seconds on a busy machine, so parallel tests would queue their logins behind each other's.
@Suite(.serialized) struct SubmissionTests {
    static func withSubmission(_ app: TestApp, implicitTLS: Bool = false, configure: @escaping @Sendable (inout SubmissionReceiver) -> Void = { _ in },
                               _ body: @escaping @Sendable (Int) async throws -> Void) async throws {
        try await SelfSignedCertificate.with(commonName: "smtp.herald.test") { certificate in
            var session = SMTPServerStateMachine.Settings(hostname: "smtp.herald.test", maxMessageSize: 1 << 20)
            session.authAvailable = true
            session.requireAuth = true
            var configuration = SMTPServer.Configuration(host: "127.0.0.1", port: 0, session: session)
            try configuration.loadTLS(certificatePath: certificate.certificatePath, keyPath: certificate.keyPath)
            configuration.implicitTLS = implicitTLS
            var receiver = SubmissionReceiver(senders: app.dependencies.senders, accept: app.dependencies.accept,
                                              authLimiter: TokenBucketLimiter(capacity: 100, refillPerSecond: 100))
            receiver.metrics = SMTPListenerMetrics(registry: app.dependencies.registry)
            configure(&receiver)
            let server = try await SMTPServer.bind(configuration, delegate: receiver, logger: TestDatabases.logger)
            do { try await body(server.port) } catch { server.close(); throw error }
            server.close()
        }
    }

    @Test func submitOverSTARTTLSDeliveredAsSubmittedAndSigned() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await SMTPTestServer.with { peer in
                try await TestApp.run(dnsPort: dns.port) { app in
                    let (tenant, token, _, _) = try await app.sendingTenant(dns)
                    let senders = try await app.request(.get, "/v1/senders", token: token)
                    let senderID = try #require((senders.json["items"] as? [[String: Any]])?.first?["id"] as? String)
                    #expect(try await app.request(.put, "/v1/senders/\(senderID)/smtp-password", token: token,
                                                  json: ["password": "Correct-Horse-42"]).status == 204)
                    _ = try await app.request(.post, "/v1/suppressions", token: token, json: ["address": "gone@example.org"])
                    #expect(try await app.request(.post, "/v1/tags", token: token, json: ["name": "invoices"]).status == 201)
                    try await Self.withSubmission(app) { port in
                        let (status, output) = try await runPythonDetached(pythonSMTPClientPrelude + """
                            from email.message import EmailMessage
                            port = int(sys.argv[1])
                            def message(sender, subject="Invoice 42"):
                                m = EmailMessage()
                                m["From"] = "Acme Billing <" + sender + ">"
                                m["To"] = "ann@example.org"
                                m["Subject"] = subject
                                m["X-Herald-Tag"] = "invoices"
                                m.set_content("Your invoice is attached.\\n.\\nA line with a dot.")
                                m.add_attachment(b"%PDF-1.4 fake pdf " * 200, maintype="application", subtype="pdf", filename="invoice.pdf")
                                return m
                            with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
                                s.ehlo("app.test")
                                print("auth before tls:", "auth" in s.esmtp_features)
                                print("mail before auth:", s.mail("app@example.test")[0])
                                s.rset()
                                s.starttls(context=context)
                                s.ehlo("app.test")
                                try:
                                    s.login("app@example.test", "wrong-password")
                                except smtplib.SMTPAuthenticationError as e:
                                    print("wrong password:", e.smtp_code)
                                s.login("app@example.test", "Correct-Horse-42")
                                try:
                                    s.send_message(message("app@example.test"), from_addr="boss@example.test", to_addrs=["ann@example.org"])
                                except smtplib.SMTPSenderRefused as e:
                                    print("other envelope sender:", e.smtp_code)
                                try:
                                    s.send_message(message("boss@example.test"), from_addr="app@example.test", to_addrs=["ann@example.org"])
                                except smtplib.SMTPDataError as e:
                                    print("other From field:", e.smtp_code, e.smtp_error.decode().split(":")[0])
                                s.mail("app@example.test")
                                s.rcpt("ann@example.org")
                                s.rcpt("gone@example.org")
                                code, reply = s.data(message("app@example.test").as_bytes().replace(b"\\n", b"\\r\\n"))
                                print("sent:", code, reply.decode())
                            """, [String(port)])
                        #expect(status == 0, "\(output)")
                        #expect(output.contains("auth before tls: False"), "\(output)")
                        #expect(output.contains("mail before auth: 530"), "\(output)")
                        #expect(output.contains("wrong password: 535"), "\(output)")
                        #expect(output.contains("other envelope sender: 553"), "\(output)")
                        #expect(output.contains("other From field: 554 5.7.1 InvalidMailAddress.Mismatch"), "\(output)")
                        #expect(output.contains("sent: 250 2.0.0 Queued as ") && output.contains("not sent to gone@example.org (suppressed)"), "\(output)")
                    }
                    #expect(try await app.count("messages", tenant: tenant) == 2, "Ann queued, the suppressed address dropped")
                    let worker = try app.deliveryWorker(dns: dns, smtp: peer)
                    #expect(try await worker.runOnce() == 1)
                    let delivered = try #require(peer.received.first)
                    #expect(delivered.to == ["ann@example.org"])
                    #expect(delivered.data.contains("filename=\"invoice.pdf\"") && delivered.data.contains("\r\n.\r\nA line with a dot."), "as submitted")
                    #expect(delivered.data.contains("X-Herald-Message-Id: ") && delivered.data.contains("Subject: Invoice 42"))
                    try expectDKIMVerifies(delivered.data, record: try await app.dkimRecord(token: token))
                    // The submitted text goes once no message of the request can still be sent.
                    let store = DeliveryStore(database: app.dependencies.database)
                    #expect(try await store.pruneSubmitted(now: app.clock.now()) == 0, "too young")
                    #expect(try await store.pruneSubmitted(now: app.clock.now().addingTimeInterval(3_600)) == 1)
                    // smtplib tries PLAIN, then LOGIN, with the wrong password: two failed logins.
                    let metrics = try await app.request(.get, "/metrics", contentType: nil)
                    #expect(metrics.body.contains("herald_smtp_logins_total{result=\"failed\"} 2")
                            && metrics.body.contains("herald_smtp_logins_total{result=\"ok\"} 1")
                            && metrics.body.contains("herald_smtp_submissions_total{result=\"accepted\"} 1")
                            && metrics.body.contains("herald_smtp_submissions_total{result=\"refused\"} 1"), "\(metrics.body.suffix(1500))")
                    let messages = try await app.request(.get, "/v1/messages?to=ann@example.org", token: token)
                    #expect(messages.body.contains("Invoice 42") && messages.body.contains("invoices"), "\(messages.body)")
                }
            }
        }
    }

    /// A real `herald serve` with the smtp role takes a message on HERALD_SMTPS_PORT (implicit TLS) from
    /// smtplib.SMTP_SSL and queues it.
    @Test func heraldServeTakesSubmissionsOverImplicitTLS() async throws {
        let keyBytes = (0..<32).map { _ in UInt8.random(in: 0...255) }
        try await DNSTestServer.with(zone: [:]) { dns in
            try await TestApp.run(dnsPort: dns.port, masterKey: MasterKey(bytes: keyBytes)) { app in
                let (tenant, token, _, _) = try await app.sendingTenant(dns)
                let senders = try await app.request(.get, "/v1/senders", token: token)
                let senderID = try #require((senders.json["items"] as? [[String: Any]])?.first?["id"] as? String)
                #expect(try await app.request(.put, "/v1/senders/\(senderID)/smtp-password", token: token,
                                              json: ["password": "Correct-Horse-42"]).status == 204)
                let port = String(try await freeLocalPort())
                try await SelfSignedCertificate.with(commonName: "smtp.herald.test") { certificate in
                    let process = try HeraldProcess(["serve"], environment: app.serveEnvironment(masterKey: keyBytes, [
                        "HERALD_ROLES": "smtp", "HERALD_SMTP_HOST": "127.0.0.1", "HERALD_SMTPS_PORT": port,
                        "HERALD_SMTP_TLS_CERT": certificate.certificatePath, "HERALD_SMTP_TLS_KEY": certificate.keyPath,
                    ]))
                    defer { process.stop() }
                    let (status, output) = try await runPythonDetached(pythonSMTPClientPrelude + """
                        port = int(sys.argv[1])
                        with connect(lambda: smtplib.SMTP_SSL("127.0.0.1", port, timeout=60, context=context)) as s:
                            s.login("app@example.test", "Correct-Horse-42")
                            s.sendmail("app@example.test", ["ann@example.org"],
                                       "From: app@example.test\\r\\nTo: ann@example.org\\r\\nSubject: Over 465\\r\\n\\r\\nHello\\r\\n")
                            print("sent over", s.sock.version())
                        """, [port])
                    #expect(status == 0, "\(output)\n\(process.output)")
                    #expect(output.contains("sent over TLSv1."), "\(output)")
                }
                #expect(try await app.count("messages", tenant: tenant) == 1)
            }
        }
    }

    /// A tenant with a sender address `app@example.test` whose SMTP password is Correct-Horse-42.
    static func submittingTenant(_ app: TestApp, _ dns: DNSTestServer) async throws -> (tenant: String, token: String, senderID: String) {
        let (tenant, token, _, _) = try await app.sendingTenant(dns)
        let senders = try await app.request(.get, "/v1/senders", token: token)
        let senderID = try #require((senders.json["items"] as? [[String: Any]])?.first?["id"] as? String)
        #expect(try await app.request(.put, "/v1/senders/\(senderID)/smtp-password", token: token, json: ["password": "Correct-Horse-42"]).status == 204)
        return (tenant, token, senderID)
    }

    /// The From check as mail programs read the field (RFC 5322 address lists): every known bypass is refused
    /// with 554 and a stable code, a NUL in a header field is refused before the database (where it used to
    /// abort the accept transaction shared with other tenants), a Reply-To other than the sender's confirmed
    /// reply-to is refused, and the one good message is delivered with its own Reply-To field as written and
    /// without the Bcc and the forged X-Herald-Message-Id its client put in.
    @Test func submittedHeadersAreCheckedAndCleaned() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await SMTPTestServer.with { peer in
                try await TestApp.run(dnsPort: dns.port) { app in
                    let (tenant, _, _) = try await Self.submittingTenant(app, dns)
                    let tenantID = try #require(UUID(uuidString: tenant))
                    try await AcceptTrustTests.system(app, """
                        UPDATE senders SET reply_to = 'help@example.test', reply_to_status = 'verified' WHERE tenant_id = \(tenantID)
                        """)
                    try await Self.withSubmission(app) { port in
                        let (status, output) = try await runPythonDetached(pythonSMTPClientPrelude + """
                            port = int(sys.argv[1])
                            def send(s, head, name):
                                text = head + "\\r\\nTo: ann@example.org\\r\\nSubject: Hi\\r\\n\\r\\nHello\\r\\n"
                                try:
                                    s.sendmail("app@example.test", ["ann@example.org"], text.encode())
                                    print(name, "accepted")
                                except smtplib.SMTPDataError as e:
                                    print(name, e.smtp_code, e.smtp_error.decode())
                            with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
                                s.starttls(context=context)
                                s.login("app@example.test", "Correct-Horse-42")
                                send(s, "From: ceo@bank.example (<app@example.test>)", "comment")
                                send(s, "From: ceo@bank.example, <app@example.test>", "list")
                                send(s, "From: app@example.test\\r\\nFrom: ceo@bank.example", "second field")
                                send(s, "From: \\"ceo@bank.example\\" <app@example.test>", "display name")
                                send(s, "From: app@example.test\\r\\nX-Note: nul\\0", "nul")
                                send(s, "From: app@example.test\\r\\nReply-To: Help <attacker@evil.example>", "reply-to")
                                send(s, "From: Acme <app@example.test>\\r\\nBcc: boss@example.org,\\r\\n spy@example.org\\r\\n"
                                        "X-Herald-Message-Id: 00000000-0000-0000-0000-000000000000\\r\\n"
                                        "Reply-To: Help Desk <HELP@example.test>", "clean")
                            """, [String(port)])
                        #expect(status == 0, "\(output)")
                        #expect(output.contains("comment 554 5.7.1 InvalidMailAddress.Mismatch"), "\(output)")
                        #expect(output.contains("list 554 5.7.1 InvalidMailAddress.Mismatch"), "\(output)")
                        #expect(output.contains("second field 554 5.7.1 InvalidHeader.Duplicate"), "\(output)")
                        #expect(output.contains("display name 554 5.7.1 InvalidMailAddress.Mismatch"), "\(output)")
                        #expect(output.contains("nul 554 5.7.1 Validation.Failed: The X-Note field contains a control character."), "\(output)")
                        #expect(output.contains("reply-to 554 5.7.1 InvalidReplyAddress.NotVerified"), "\(output)")
                        #expect(output.contains("clean accepted"), "\(output)")
                    }
                    #expect(try await app.count("messages", tenant: tenant) == 1, "only the clean message was queued")
                    let worker = try app.deliveryWorker(dns: dns, smtp: peer)
                    #expect(try await worker.runOnce() == 1)
                    let delivered = try #require(peer.received.first)
                    let ids = delivered.data.components(separatedBy: "\r\n").filter { $0.lowercased().hasPrefix("x-herald-message-id:") }
                    #expect(ids.count == 1 && !ids[0].contains("00000000-0000"), "Herald's own id only: \(ids)")
                    #expect(!delivered.data.lowercased().contains("bcc:") && !delivered.data.contains("spy@example.org"), "\(delivered.data)")
                    #expect(delivered.data.components(separatedBy: "\r\n").filter { $0.lowercased().hasPrefix("reply-to:") }
                            == ["Reply-To: Help Desk <HELP@example.test>"], "the client's confirmed Reply-To, as written and once")
                    #expect(delivered.to == ["ann@example.org"])
                }
            }
        }
    }

    /// Failed logins are limited per user name whatever the client address (here 4 failures: smtplib tries
    /// PLAIN then LOGIN, two per wrong login, from 127.0.0.2 and .3); then even the right password from a
    /// third address gets 454. An unknown user name gets the very answer of a wrong password.
    @Test func loginFailuresAreLimitedPerUserName() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await TestApp.run(dnsPort: dns.port) { app in
                _ = try await Self.submittingTenant(app, dns)
                try await Self.withSubmission(app, configure: { $0.userAuthLimiter = TokenBucketLimiter(capacity: 4, refillPerSecond: 4.0 / 600) }) { port in
                    let (status, output) = try await runPythonDetached(pythonSMTPClientPrelude + """
                        port = int(sys.argv[1])
                        def login(source, user, password):
                            with smtplib.SMTP("127.0.0.1", port, timeout=60, source_address=(source, 0)) as s:
                                s.starttls(context=context)
                                s.ehlo("app.test")
                                try:
                                    s.login(user, password)
                                    return "235"
                                except smtplib.SMTPAuthenticationError as e:
                                    return str(e.smtp_code) + " " + e.smtp_error.decode()
                        wrong = login("127.0.0.2", "app@example.test", "Wrong-Horse-42")
                        unknown = login("127.0.0.5", "nobody@example.test", "Wrong-Horse-42")
                        print("wrong:", wrong)
                        print("unknown answers alike:", wrong == unknown)
                        print("second address:", login("127.0.0.3", "app@example.test", "Wrong-Horse-42"))
                        print("third address, right password:", login("127.0.0.4", "app@example.test", "Correct-Horse-42"))
                        print("another user:", login("127.0.0.4", "nobody@example.test", "Wrong-Horse-42"))
                        """, [String(port)])
                    #expect(status == 0, "\(output)")
                    #expect(output.contains("wrong: 535 5.7.8 Authentication credentials invalid"), "\(output)")
                    #expect(output.contains("unknown answers alike: True"), "\(output)")
                    #expect(output.contains("second address: 535"), "\(output)")
                    #expect(output.contains("third address, right password: 454 4.7.0 Too many failed logins"), "\(output)")
                    #expect(output.contains("another user: 535"), "the limit is the user name's, not the address's: \(output)")
                }
            }
        }
    }

    /// A sender address is unique only within a tenant: two tenants that each verified the domain (two accounts
    /// of one company, or the domain's former and present owner) may both have it, each with its own SMTP
    /// password. A login is the tenant whose password it carries; the other tenant's row is not in the way.
    @Test func aSharedSenderAddressLogsInToTheTenantWhosePasswordItCarries() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await TestApp.run(dnsPort: dns.port) { app in
                let (first, _, _) = try await Self.submittingTenant(app, dns)
                let (second, token, _, _) = try await app.sendingTenant(dns, name: "Other")
                let senders = try await app.request(.get, "/v1/senders", token: token)
                let senderID = try #require((senders.json["items"] as? [[String: Any]])?.first?["id"] as? String)
                #expect(try await app.request(.put, "/v1/senders/\(senderID)/smtp-password", token: token, json: ["password": "Other-Horse-43"]).status == 204)
                let receiver = SubmissionReceiver(senders: app.dependencies.senders, accept: app.dependencies.accept,
                                                  authLimiter: TokenBucketLimiter(capacity: 100, refillPerSecond: 100))
                func tenant(_ password: String) async -> String? {
                    let login = await receiver.login(username: "app@example.test", password: password, client: nil)
                    guard login.reply.code == 235 else { return nil }
                    return login.credential?.split(separator: "|").first.map { $0.lowercased() } // tenant|sender|fingerprint
                }
                #expect(await tenant("Correct-Horse-42") == first.lowercased())
                #expect(await tenant("Other-Horse-43") == second.lowercased())
                #expect(await tenant("Wrong-Horse-44") == nil)
            }
        }
    }

    /// A password change over REST ends the SMTP sessions that logged in with the old password: their next
    /// MAIL gets 535 and the connection closes; a new login with the new password works, until the sender is
    /// deleted.
    /// With `cached`, the sessions re-check each MAIL against the in-process fingerprint cache, which a
    /// change drops through LISTEN/NOTIFY (migration 0026) before the test lets the client go on.
    @Test(arguments: [false, true]) func aPasswordChangeEndsOpenSessions(cached: Bool) async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await TestApp.run(dnsPort: dns.port) { app in
                let (tenant, token, senderID) = try await Self.submittingTenant(app, dns)
                let fingerprints = cached ? TenantCache<SenderKey, String>() : nil
                let listening = try fingerprints.map { cache in
                    let listener = try TenantChangeListener(caches: [cache], url: app.databaseURL, logger: TestDatabases.logger)
                    return Task { await listener.run() }
                }
                defer { listening?.cancel() }
                if let fingerprints { try await waitUntil("the listener listens") { fingerprints.isLive } }
                // Once a change is made: the cached fingerprint must be gone before the client's next MAIL.
                @Sendable func heard() async throws {
                    if let fingerprints { try await waitUntil("the change is heard") { fingerprints.count == 0 } }
                }
                let directory = FileManager.default.temporaryDirectory.appendingPathComponent("herald-submission-\(UUID().uuidString)")
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                defer { try? FileManager.default.removeItem(at: directory) }
                try await Self.withSubmission(app, configure: { $0.passwordFingerprints = fingerprints }) { port in
                    async let run = runPythonDetached(pythonSMTPClientPrelude + """
                        import os
                        port, directory = int(sys.argv[1]), sys.argv[2]
                        message = "From: app@example.test\\r\\nTo: ann@example.org\\r\\nSubject: Hi\\r\\n\\r\\nHello\\r\\n"
                        s = smtplib.SMTP("127.0.0.1", port, timeout=60)
                        s.starttls(context=context)
                        s.login("app@example.test", "Correct-Horse-42")
                        s.sendmail("app@example.test", ["ann@example.org"], message)
                        print("before the change: sent")
                        open(os.path.join(directory, "logged-in"), "w").close()
                        deadline = time.time() + 60
                        while not os.path.exists(os.path.join(directory, "changed")) and time.time() < deadline:
                            time.sleep(0.05)
                        try:
                            s.sendmail("app@example.test", ["ann@example.org"], message)
                            print("after the change: sent")
                        except smtplib.SMTPSenderRefused as e:
                            print("after the change:", e.smtp_code, e.smtp_error.decode())
                        try:
                            s.noop()
                            print("still open")
                        except smtplib.SMTPServerDisconnected:
                            print("closed")
                        def wait(name):
                            open(os.path.join(directory, name), "w").close()
                            deadline = time.time() + 60
                            while not os.path.exists(os.path.join(directory, name + "-done")) and time.time() < deadline:
                                time.sleep(0.05)
                        t = smtplib.SMTP("127.0.0.1", port, timeout=60)
                        t.starttls(context=context)
                        t.login("app@example.test", "Battery-Staple-43")
                        t.sendmail("app@example.test", ["ann@example.org"], message)
                        print("new password: sent")
                        wait("relogged")
                        try:
                            t.sendmail("app@example.test", ["ann@example.org"], message)
                            print("after deletion: sent")
                        except smtplib.SMTPSenderRefused as e:
                            print("after deletion:", e.smtp_code)
                        """, [String(port), directory.path])
                    let marker = directory.appendingPathComponent("logged-in").path
                    for _ in 0..<1200 where !FileManager.default.fileExists(atPath: marker) { try await Task.sleep(for: .milliseconds(50)) }
                    #expect(try await app.request(.put, "/v1/senders/\(senderID)/smtp-password", token: token,
                                                  json: ["password": "Battery-Staple-43"]).status == 204)
                    try await heard()
                    _ = FileManager.default.createFile(atPath: directory.appendingPathComponent("changed").path, contents: nil)
                    let relogged = directory.appendingPathComponent("relogged").path
                    for _ in 0..<1200 where !FileManager.default.fileExists(atPath: relogged) { try await Task.sleep(for: .milliseconds(50)) }
                    #expect(try await app.request(.delete, "/v1/senders/\(senderID)", token: token).status == 204)
                    try await heard()
                    _ = FileManager.default.createFile(atPath: relogged + "-done", contents: nil)
                    let (status, output) = try await run
                    #expect(status == 0, "\(output)")
                    #expect(output.contains("before the change: sent"), "\(output)")
                    #expect(output.contains("after the change: 535 5.7.8 The SMTP password changed"), "\(output)")
                    #expect(output.contains("closed"), "\(output)")
                    #expect(output.contains("new password: sent"), "\(output)")
                    #expect(output.contains("after deletion: 535"), "a deleted sender's sessions end too: \(output)")
                    if let fingerprints { #expect(fingerprints.isLive, "the cache served throughout") }
                }
                #expect(try await app.count("messages", tenant: tenant) == 2)
            }
        }
    }
}
