import Foundation
import HeraldAPI
import HeraldAppTestSupport
import HeraldCore
import HeraldDelivery
import HeraldTestSupport
import PostgresNIO
import Testing

/// Complaints (feedback loops, issue #18): ARF reports built with Python's `email` package and mailed to a real
/// `herald serve` (smtp role) at HERALD_FBL_ADDRESS and at a message's VERP return path.
@Suite struct ComplaintTests {
    @Test func heraldServeRecordsARFComplaints() async throws {
        let keyBytes = (0..<32).map { _ in UInt8.random(in: 0...255) }
        try await TestApp.run(masterKey: MasterKey(bytes: keyBytes)) { app in
            let root = try await app.createTenant("Complaints")
            let tenant = try #require(UUID(uuidString: root.tenant))
            var ids: [String: UUID] = [:]
            for name in ["ann", "ben", "cy"] {
                ids[name] = try await UnsubscribeTests.insertMessage(app, tenant: tenant, kind: "trigger", to: "\(name)@example.org")
            }
            let (ann, ben, cy) = (try #require(ids["ann"]), try #require(ids["ben"]), try #require(ids["cy"]))
            let verp = BounceAddress(masterKey: MasterKey(bytes: keyBytes)).address(for: ben, domain: "example.test")
            let port = String(try await freeLocalPort())
            let process = try HeraldProcess(["serve"], environment: app.serveEnvironment(masterKey: keyBytes, [
                "HERALD_ROLES": "smtp", "HERALD_FBL_ADDRESS": "FBL@mx.herald.test", "HERALD_RETURN_PATH_MX": "mx.herald.test",
                "HERALD_INBOUND_HOST": "127.0.0.1", "HERALD_INBOUND_PORT": port,
            ]))
            defer { process.stop() }
            let (status, output) = try await runPythonDetached(pythonSMTPClientPrelude + """
                from email.mime.multipart import MIMEMultipart
                from email.mime.text import MIMEText
                from email.mime.base import MIMEBase
                from email.mime.message import MIMEMessage
                from email import message_from_string
                port, fbl, verp, ann, cy = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
                def arf(original, rcpt=None, feedback="abuse", headers_only=False):
                    report = MIMEMultipart("report", report_type="feedback-report")
                    report["From"] = "fbl@isp.example"
                    report["Subject"] = "Email Feedback Report"
                    report.attach(MIMEText("This is an email abuse report for an email message received from IP 192.0.2.1."))
                    fields = MIMEBase("message", "feedback-report")
                    fields.set_payload("Feedback-Type: %s\\r\\nUser-Agent: ISP-FBL/2.0\\r\\nVersion: 1\\r\\n" % feedback
                                       + ("Original-Rcpt-To: <%s>\\r\\n" % rcpt if rcpt else ""))
                    report.attach(fields)
                    if headers_only:
                        report.attach(MIMEText(original, "rfc822-headers", "utf-8"))
                    else:
                        report.attach(MIMEMessage(message_from_string(original)))
                    return report.as_bytes()
                def original(message_id, to):
                    return ("From: news@example.test\\r\\nTo: <%s>\\r\\nSubject: News\\r\\n" % to
                            + ("X-Herald-Message-Id: %s\\r\\n" % message_id if message_id else "") + "\\r\\nHello\\r\\n")
                mails = [
                    (fbl, arf(original(ann, "ann@example.org"), rcpt="ann@example.org")),           # recorded
                    (fbl, arf(original(ann, "ann@example.org"), rcpt="ann@example.org")),           # the same again: once
                    (verp, arf(original(None, "ben@example.org"), headers_only=True)),              # by the return path, redacted
                    (fbl, arf(original(cy, "cy@example.org"), rcpt="mallory@example.org")),         # about someone else
                    (fbl, arf(original(cy, "cy@example.org"), rcpt="cy@example.org", feedback="not-spam")),
                    ("postmaster@mx.herald.test", arf(original(cy, "cy@example.org"))),             # not ours
                ]
                with connect(lambda: smtplib.SMTP("127.0.0.1", port, timeout=10)) as s:
                    for rcpt, body in mails:
                        try:
                            s.sendmail("", [rcpt], body)
                            print("taken")
                        except smtplib.SMTPRecipientsRefused as e:
                            print("refused", e.recipients[rcpt][0])
                """, [port, "fbl@MX.herald.test", verp, ann.uuidString.lowercased(), cy.uuidString.lowercased()])
            #expect(status == 0, "\(output)\n\(process.output)")
            #expect(output.split(separator: "\n").suffix(6) == ["taken", "taken", "taken", "taken", "taken", "refused 550"], "\(output)")
            // One event per complained message, with the report's type; the recipients suppressed; the day's spam figure.
            let complained = try await AcceptTrustTests.strings(app, """
                SELECT (data->>'to') || ' ' || (data->>'feedbackType') FROM events WHERE type = 'message.complained' ORDER BY data->>'to'
                """)
            #expect(complained == ["ann@example.org abuse", "ben@example.org abuse"], "\(complained)\n\(process.output)")
            #expect(try await app.count("SELECT count(*)::int FROM suppressions WHERE source = 'complaint' AND scope = '*'") == 2)
            #expect(try await app.count("SELECT count(*)::int FROM suppressions WHERE address = 'cy@example.org'") == 0)
            #expect(try await app.count("SELECT coalesce(sum(spam), 0)::int FROM tenant_daily_stats WHERE tenant_id = '\(tenant.uuidString)'") == 2)
            #expect(try await app.count("SELECT count(*)::int FROM messages WHERE status = 'delivered'") == 3, "complaints change no message")
        }
    }
}
