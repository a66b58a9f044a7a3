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

/// Late bounces through the VERP return path: with the return-path MX of the sender's domain in place, mail
/// goes out with `b+<token>@bounces.<domain>` as its envelope sender; a delivery status notification sent
/// there later turns the delivered message into a bounce (event, invalid-address count) when it is about the
/// message's recipient; delays, auto-replies, forged return paths and reports about another recipient change
/// nothing.
@Suite struct BounceTests {
    static let dsn = """
        From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r
        To: RCPT\r
        Subject: Undelivered Mail Returned to Sender\r
        MIME-Version: 1.0\r
        Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r
        \r
        --B\r
        Content-Type: text/plain\r
        \r
        I'm sorry to have to inform you that your message could not be delivered.\r
        --B\r
        Content-Type: message/delivery-status\r
        \r
        Reporting-MTA: dns; mx.example.org\r
        \r
        Final-Recipient: rfc822; TO\r
        Action: ACTION\r
        Status: STATUS\r
        Diagnostic-Code: smtp; 550 5.1.1 <TO>: Recipient address rejected:\r
         User unknown in virtual mailbox table\r
        --B--\r

        """

    @Test func lateBouncesComeBackThroughTheReturnPath() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await SMTPTestServer.with { peer in
                try await TestApp.run(dnsPort: dns.port) { app in
                    let (tenant, token, _, _) = try await app.sendingTenant(dns)
                    let sent = try await app.request(.post, "/v1/mail/single", token: token, json: TestApp.mail(to: ["ann@example.org", "ben@example.org"]))
                    #expect(sent.status == 200, "\(sent.body)")
                    var worker = try app.deliveryWorker(dns: dns, smtp: peer)
                    worker.returnPath = app.dependencies.bounceAddress
                    #expect(try await worker.runOnce() == 2)
                    var returnPaths: [String: String] = [:]
                    for message in peer.received {
                        #expect(message.from.hasPrefix("b+") && message.from.hasSuffix("@bounces.example.test"), "\(message.from)")
                        #expect(message.data.contains("From: app@example.test") || message.data.contains("<app@example.test>"))
                        returnPaths[message.to.first ?? ""] = message.from
                    }
                    let ann = try #require(returnPaths["ann@example.org"]), ben = try #require(returnPaths["ben@example.org"])

                    let receiver = InboundMailReceiver(mailbox: nil, unsubscribes: nil, bounces: app.dependencies.bounceAddress,
                                                       deliveries: DeliveryStore(database: app.dependencies.database), now: app.clock.now)
                    let server = try await SMTPServer.bind(.init(host: "127.0.0.1", port: 0, session: .init(hostname: "mx.herald.test")),
                                                           delegate: receiver, logger: TestDatabases.logger)
                    defer { server.close() }
                    func report(to rcpt: String, recipient: String, action: String, status: String) -> String {
                        Self.dsn.replacingOccurrences(of: "RCPT", with: rcpt).replacingOccurrences(of: "TO", with: recipient)
                            .replacingOccurrences(of: "ACTION", with: action).replacingOccurrences(of: "STATUS", with: status)
                    }
                    var forged = Array(ann)
                    forged[5] = forged[5] == "a" ? "b" : "a"
                    let (status, output) = try await runPythonDetached(pythonSMTPClientPrelude + """
                        import json
                        port, mails = int(sys.argv[1]), json.loads(sys.argv[2])
                        with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
                            for rcpt, body in mails:
                                try:
                                    s.sendmail("", [rcpt], body.encode())
                                    print("taken")
                                except smtplib.SMTPRecipientsRefused as e:
                                    print("refused", e.recipients[rcpt][0])
                        """, [String(server.port), String(decoding: try JSONSerialization.data(withJSONObject: [
                            [ben, report(to: ben, recipient: "ben@example.org", action: "delayed", status: "4.4.1")],
                            [ben, "From: ben@example.org\r\nSubject: Auto: out of office\r\n\r\nI am away.\r\n"],
                            [String(forged), report(to: String(forged), recipient: "ann@example.org", action: "failed", status: "5.1.1")],
                            // To ben's return path, but about another recipient: it changes neither ben's message nor ann's.
                            [ben, report(to: ben, recipient: "ann@example.org", action: "failed", status: "5.1.1")],
                            [ben, report(to: ben, recipient: "ben@other.example", action: "failed", status: "5.1.1")],
                            // The recipient's domain in another case is the same recipient.
                            [ann, report(to: ann, recipient: "ann@Example.ORG", action: "failed", status: "5.1.1")],
                            [ann, report(to: ann, recipient: "ann@example.org", action: "failed", status: "5.1.1")],
                        ]), as: UTF8.self)])
                    #expect(status == 0, "\(output)")
                    #expect(output == "taken\ntaken\nrefused 550\ntaken\ntaken\ntaken\ntaken\n", "\(output)")

                    let messages = try await app.request(.get, "/v1/messages", token: token)
                    let items = try #require(messages.json["items"] as? [[String: Any]])
                    let byRecipient = Dictionary(uniqueKeysWithValues: items.map { ($0["to"] as? String ?? "", $0) })
                    #expect(byRecipient["ann@example.org"]?["status"] as? String == "bounced", "\(messages.body)")
                    #expect((byRecipient["ann@example.org"]?["lastResponse"] as? String)?.lowercased()
                        .hasPrefix("550 5.1.1 <ann@example.org>: recipient address rejected: user unknown") == true, "\(messages.body)")
                    #expect(byRecipient["ben@example.org"]?["status"] as? String == "delivered",
                            "a delay, an auto-reply and reports about other recipients change nothing")
                    #expect(try await app.count("""
                        SELECT count(*)::int FROM events WHERE type = 'message.bounced' AND (data->>'late')::boolean AND data->>'to' = 'ann@example.org'
                        """) == 1, "one event, though the report came twice")
                    #expect(try await app.count("""
                        SELECT hard_bounces FROM invalid_addresses WHERE tenant_id = '\(tenant)' AND address = 'ann@example.org'
                        """) == 1)

                    // Without the return path's SPF record, mail keeps the sender as its envelope sender (SPF must
                    // pass where it is evaluated).
                    let domains = try await app.request(.get, "/v1/domains", token: token)
                    let domain = try #require((domains.json["items"] as? [[String: Any]])?.first)
                    let records = try #require(domain["records"] as? [[String: Any]])
                    try dns.setZone(DNSTestServer.zone(publishing: records) { $0["purpose"] as? String == "return_path_spf" })
                    let checked = try await app.request(.post, "/v1/domains/\(domain["id"] as? String ?? "")/verify", token: token)
                    #expect(checked.body.contains("\"return_path_spf\"") && checked["status"] == "verified", "\(checked.body)")
                    #expect(try await app.request(.post, "/v1/mail/single", token: token, json: TestApp.mail(to: ["cy@example.org"])).status == 200)
                    #expect(try await worker.runOnce() == 1)
                    #expect(peer.received.last?.from == "app@example.test", "\(peer.received.last?.from ?? "")")
                }
            }
        }
    }
}
