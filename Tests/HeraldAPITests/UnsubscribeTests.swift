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
import NIOCore
import PostgresNIO
import Testing

@Suite struct UnsubscribeTests {
    static let oneClick = "List-Unsubscribe=One-Click"

    /// A batch sender, an approved batch template with `${unsubscribe}` and a list of three readers.
    static func batchSetup(_ app: TestApp, token: String) async throws -> (batch: [String: Any], listID: String) {
        #expect(try await app.request(.post, "/v1/senders", token: token, json: ["address": "news@example.test", "type": "batch"]).status == 201)
        let template = try await app.request(.post, "/v1/templates", token: token, json: [
            "name": "newsletter", "subject": "News for ${name}", "type": "batch",
            "html": "<p>Hi ${name}</p><a href=\"${unsubscribe}\">Unsubscribe</a>", "text": "Hi ${name}. Leave: ${unsubscribe}",
        ])
        let templateID = try #require(template["id"])
        _ = try await app.request(.post, "/v1/templates/\(templateID)/submit", token: token)
        _ = try await app.admin(.post, "/admin/v1/templates/\(templateID)/approve")
        let listID = try #require(try await app.request(.post, "/v1/lists", token: token, json: ["name": "readers"])["id"])
        _ = try await app.request(.post, "/v1/lists/\(listID)/recipients", token: token, json: [
            ["address": "ann@example.org", "variables": ["name": "Ann"]], ["address": "ben@example.org", "variables": ["name": "Ben"]],
            ["address": "cy@example.org", "variables": ["name": "Cy"]],
        ])
        return (["templateId": templateID, "listId": listID, "from": "news@example.test"], listID)
    }

    static func runBatch(_ app: TestApp, token: String, batch: [String: Any]) async throws -> String {
        let accepted = try await app.request(.post, "/v1/mail/batch", token: token, json: batch)
        #expect(accepted.status == 202, "\(accepted.body)")
        let expander = TaskExpander(store: app.dependencies.batches, unsubscribeLinks: app.dependencies.unsubscribeLinks, now: app.clock.now)
        #expect(try await expander.runOnce())
        return try #require(accepted["taskId"])
    }

    /// A sending tenant at grade 3 whose batch to the three readers has been delivered to `peer`.
    static func deliveredBatch(_ app: TestApp, _ dns: DNSTestServer, _ peer: SMTPTestServer) async throws
        -> (token: String, batch: [String: Any], listID: String, worker: DeliveryWorker, dkim: String) {
        let (tenant, token, _, _) = try await app.sendingTenant(dns)
        try await app.setGrade(tenant: tenant, 3)
        let (batch, listID) = try await Self.batchSetup(app, token: token)
        _ = try await Self.runBatch(app, token: token, batch: batch)
        let worker = try app.deliveryWorker(dns: dns, smtp: peer)
        #expect(try await worker.runOnce() == 3)
        return (token, batch, listID, worker, try await app.dkimRecord(token: token))
    }

    /// A delivered message of the tenant, written straight into the table.
    static func insertMessage(_ app: TestApp, tenant: UUID, kind: String, to: String) async throws -> UUID {
        let messageID = UUID()
        try await app.dependencies.database.withTenant(tenant) { connection -> Void in
            try await connection.query("""
                INSERT INTO messages (id, tenant_id, request_id, kind, priority, from_address, to_address, subject, status, created_at, updated_at)
                VALUES (\(messageID), \(tenant), \(UUID()), \(kind), 1, 'news@example.test', \(to), 'News', 'delivered', now(), now())
                """, logger: app.dependencies.database.logger)
        }
        return messageID
    }

    /// The link's path (`/u/…`) as the message carries it in List-Unsubscribe.
    static func linkPath(_ data: String) throws -> String {
        let unfolded = data.replacingOccurrences(of: "\r\n\t", with: "").replacingOccurrences(of: "\r\n ", with: "")
        let url = try #require(unfolded.range(of: "List-Unsubscribe: <").map { unfolded[$0.upperBound...].prefix { $0 != ">" } })
        #expect(url.hasPrefix("https://herald.test/u/"))
        return String(url.dropFirst("https://herald.test".count))
    }

    /// A batch to a 3-member list arrives with both headers (DKIM-verified by dkimpy) and the same link in the
    /// body; the one-click POST unsubscribes that reader (suppression with the list's scope, source
    /// unsubscribe, a message.unsubscribed event), idempotently; the next batch drops them as
    /// `unsubscribed`, and a trigger send still reaches them.
    @Test func oneClickUnsubscribeThenBatchDropsAndTriggerStillGoes() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await SMTPTestServer.with { peer in
                try await TestApp.run(dnsPort: dns.port) { app in
                    let (token, batch, listID, worker, dkimValue) = try await Self.deliveredBatch(app, dns, peer)
                    var annPath = ""
                    for message in peer.received {
                        let path = try Self.linkPath(message.data)
                        let body = message.data.replacingOccurrences(of: "=\r\n", with: "").replacingOccurrences(of: "=3D", with: "=")
                        #expect(body.contains("https://herald.test" + path), "the body link is the header's URL")
                        #expect(message.data.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"))
                        // Both fields are among the signed ones.
                        let unfolded = message.data.replacingOccurrences(of: "\r\n\t", with: "").replacingOccurrences(of: "\r\n ", with: "")
                        #expect(unfolded.contains("list-unsubscribe:list-unsubscribe-post:"), "\(unfolded.prefix(600))")
                        try expectDKIMVerifies(message.data, record: dkimValue)
                        if message.to == ["ann@example.org"] { annPath = path }
                    }
                    #expect(!annPath.isEmpty)

                    // The page, in English and in Chinese; HEAD; nothing changed yet.
                    let page = try await app.request(.get, annPath, contentType: nil)
                    #expect(page.status == 200 && page.body.contains("a**@example.org") && !page.body.contains("ann@example.org"), "\(page.body)")
                    #expect(page.body.contains("<form method=\"post\">") && !page.body.contains("<script"))
                    let chinese = try await app.request(.get, annPath, contentType: nil, headers: [.acceptLanguage: "zh-CN,zh;q=0.9,en;q=0.8"])
                    #expect(chinese.body.contains("lang=\"zh-CN\"") && chinese.body.contains("退订"))
                    #expect(try await app.request(.head, annPath, contentType: nil).status == 200)
                    #expect(try await app.count("SELECT count(*)::int FROM suppressions") == 0)

                    // One click, twice: one suppression, one event.
                    for _ in 0..<2 {
                        let done = try await app.request(.post, annPath, raw: Self.oneClick, contentType: "application/x-www-form-urlencoded")
                        #expect(done.status == 200 && done.body.contains("a**@example.org"), "\(done.body)")
                    }
                    #expect(try await app.count("""
                        SELECT count(*)::int FROM suppressions WHERE address = 'ann@example.org' AND source = 'unsubscribe' AND scope = 'list:\(listID.lowercased())'
                        """) == 1)
                    #expect(try await app.count("SELECT count(*)::int FROM events WHERE type = 'message.unsubscribed' AND data->>'to' = 'ann@example.org'") == 1)
                    let listed = try await app.request(.get, "/v1/suppressions", token: token)
                    #expect(listed.body.contains("ann@example.org"), "\(listed.body)")

                    // The next batch drops Ann (unsubscribed); a trigger send still reaches her.
                    let taskID = try await Self.runBatch(app, token: token, batch: batch)
                    #expect(try await app.count("""
                        SELECT count(*)::int FROM messages WHERE task_id = '\(taskID)' AND to_address = 'ann@example.org' AND status = 'dropped' AND reason = 'unsubscribed'
                        """) == 1)
                    let trigger = try await app.request(.post, "/v1/mail/single", token: token, json: TestApp.mail(to: ["ann@example.org"]))
                    #expect(trigger.status == 200 && trigger.body.contains("\"queued\""), "\(trigger.body)")
                    #expect(try await worker.runOnce() == 3)
                    #expect(peer.received.filter { $0.to == ["ann@example.org"] }.count == 2)
                }
            }
        }
    }

    /// The mailto: address of a delivered message's List-Unsubscribe.
    static func mailtoAddress(_ data: String) throws -> String {
        let unfolded = data.replacingOccurrences(of: "\r\n\t", with: "\t").replacingOccurrences(of: "\r\n ", with: " ")
        let field = try #require(unfolded.components(separatedBy: "\r\n").first { $0.hasPrefix("List-Unsubscribe: ") })
        #expect(field.hasPrefix("List-Unsubscribe: <https://herald.test/u/"), "the https link first: \(field)")
        let mailto = try #require(field.range(of: ">, <mailto:").map { field[$0.upperBound...].prefix { $0 != ">" } }, "\(field)")
        #expect(mailto.hasSuffix("?subject=unsubscribe"))
        return String(mailto.prefix { $0 != "?" })
    }

    /// Sends one mail with Python's smtplib to the inbound listener: "sent", or the refusal's code and text.
    static func mailUnsubscribe(port: Int, from: String, to: String) async throws -> String {
        let (status, output) = try await runPythonDetached("""
            import smtplib, sys
            port, sender, rcpt = int(sys.argv[1]), sys.argv[2], sys.argv[3]
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
                    s.sendmail(sender, [rcpt], "From: " + sender + "\\r\\nTo: " + rcpt + "\\r\\nSubject: unsubscribe\\r\\n\\r\\nunsubscribe\\r\\n")
                print("sent")
            except smtplib.SMTPRecipientsRefused as e:
                code, text = e.recipients[rcpt]
                print(code, text.decode())
            """, [String(port), from, to])
        #expect(status == 0, "\(output)")
        return output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// With HERALD_UNSUBSCRIBE_ADDRESS set, List-Unsubscribe also has a mailto: whose address carries the
    /// message's token (DKIM-signed with the rest); mail to it through the inbound SMTP listener unsubscribes
    /// the reader with the list's scope, exactly as the https link does (and tenant-wide for trigger mail);
    /// forged addresses and other domains are refused at RCPT and change nothing.
    @Test func mailtoUnsubscribeThroughTheInboundListener() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await SMTPTestServer.with { peer in
                try await TestApp.run(dnsPort: dns.port, unsubscribeAddress: "unsubscribe@mx.herald.test") { app in
                    let (token, batch, listID, worker, dkimValue) = try await Self.deliveredBatch(app, dns, peer)
                    var addresses: [String: String] = [:]
                    for message in peer.received {
                        let address = try Self.mailtoAddress(message.data)
                        #expect(address.hasPrefix("unsubscribe+") && address.hasSuffix("@mx.herald.test"))
                        #expect(address.split(separator: "@").first.map { $0.utf8.count } ?? 99 <= 64)
                        _ = try Self.linkPath(message.data)
                        try expectDKIMVerifies(message.data, record: dkimValue)
                        addresses[message.to.first ?? ""] = address
                    }
                    let ann = try #require(addresses["ann@example.org"])

                    let mailbox = try #require(app.dependencies.unsubscribeLinks.mailbox)
                    let server = try await SMTPServer.bind(.init(host: "127.0.0.1", port: 0, session: .init(hostname: "mx.herald.test")),
                                                           delegate: InboundMailReceiver(mailbox: mailbox, unsubscribes: app.dependencies.unsubscribes,
                                                                                             now: app.clock.now),
                                                           logger: TestDatabases.logger)
                    defer { server.close() }

                    // Forged, altered and foreign addresses: refused at RCPT, nothing written.
                    var altered = Array(ann)
                    let index = "unsubscribe+".count + 7
                    altered[index] = altered[index] == "a" ? "b" : "a"
                    #expect(try await Self.mailUnsubscribe(port: server.port, from: "ann@example.org", to: String(altered)).hasPrefix("550 5.1.1"))
                    #expect(try await Self.mailUnsubscribe(port: server.port, from: "ann@example.org", to: "unsubscribe@mx.herald.test").hasPrefix("550 5.1.1"))
                    #expect(try await Self.mailUnsubscribe(port: server.port, from: "x@example.org", to: "someone@example.org").hasPrefix("550 5.7.1"))
                    #expect(try await app.count("SELECT count(*)::int FROM suppressions") == 0)

                    // The real address, twice (the second in upper case): one suppression with the list's scope, one event.
                    #expect(try await Self.mailUnsubscribe(port: server.port, from: "ann@example.org", to: ann) == "sent")
                    #expect(try await Self.mailUnsubscribe(port: server.port, from: "ann@example.org", to: ann.uppercased()) == "sent")
                    #expect(try await app.count("""
                        SELECT count(*)::int FROM suppressions WHERE address = 'ann@example.org' AND source = 'unsubscribe' AND scope = 'list:\(listID.lowercased())'
                        """) == 1)
                    #expect(try await app.count("SELECT count(*)::int FROM suppressions") == 1)
                    #expect(try await app.count("SELECT count(*)::int FROM events WHERE type = 'message.unsubscribed' AND data->>'to' = 'ann@example.org'") == 1)

                    // The next batch drops Ann as unsubscribed.
                    let taskID = try await Self.runBatch(app, token: token, batch: batch)
                    #expect(try await app.count("""
                        SELECT count(*)::int FROM messages WHERE task_id = '\(taskID)' AND to_address = 'ann@example.org' AND status = 'dropped' AND reason = 'unsubscribed'
                        """) == 1)
                    #expect(try await worker.runOnce() == 2)

                    // Trigger mail, when the tenant asks for the fields there too: the mailto leaves the whole tenant.
                    #expect(try await app.request(.put, "/v1/account/settings", token: token, json: ["trackOpensAndClicks": false, "unsubscribeLinkInTriggerMail": true]).status == 200)
                    let trigger = try await app.request(.post, "/v1/mail/single", token: token, json: TestApp.mail(to: ["cy@example.org"]))
                    #expect(trigger.status == 200, "\(trigger.body)")
                    #expect(try await worker.runOnce() == 1)
                    let triggerMessage = try #require(peer.received.last)
                    #expect(triggerMessage.to == ["cy@example.org"])
                    let cy = try Self.mailtoAddress(triggerMessage.data)
                    #expect(try await Self.mailUnsubscribe(port: server.port, from: "cy@example.org", to: cy) == "sent")
                    #expect(try await app.count("""
                        SELECT count(*)::int FROM suppressions WHERE address = 'cy@example.org' AND source = 'unsubscribe' AND scope = '*'
                        """) == 1)
                }
            }
        }
    }

    /// A real `herald serve` with the smtp role and HERALD_UNSUBSCRIBE_ADDRESS listens on HERALD_INBOUND_PORT,
    /// offers STARTTLS with HERALD_SMTP_TLS_CERT/KEY, and unsubscribes the recipient of a trigger message
    /// (tenant-wide) when Python's smtplib mails its address over TLS.
    @Test func heraldServeTakesUnsubscribeMailOverSTARTTLS() async throws {
        let keyBytes = (0..<32).map { _ in UInt8.random(in: 0...255) }
        try await TestApp.run(masterKey: MasterKey(bytes: keyBytes), unsubscribeAddress: "unsubscribe@mx.herald.test") { app in
            let root = try await app.createTenant("Inbound")
            let tenant = try #require(UUID(uuidString: root.tenant))
            let messageID = try await Self.insertMessage(app, tenant: tenant, kind: "trigger", to: "dee@example.org")
            let address = try #require(app.dependencies.unsubscribeLinks.mailbox).address(for: messageID)
            let port = String(try await freeLocalPort())
            try await SelfSignedCertificate.with(commonName: "mx.herald.test") { certificate in
                let process = try HeraldProcess(["serve"], environment: app.serveEnvironment(masterKey: keyBytes, [
                    "HERALD_ROLES": "smtp", "HERALD_UNSUBSCRIBE_ADDRESS": "unsubscribe@mx.herald.test",
                    "HERALD_INBOUND_HOST": "127.0.0.1", "HERALD_INBOUND_PORT": port,
                    "HERALD_SMTP_TLS_CERT": certificate.certificatePath, "HERALD_SMTP_TLS_KEY": certificate.keyPath,
                ]))
                defer { process.stop() }
                let (status, output) = try await runPythonDetached(pythonSMTPClientPrelude + """
                    port, rcpt = int(sys.argv[1]), sys.argv[2]
                    with connect(lambda: smtplib.SMTP("127.0.0.1", port, timeout=10)) as s:
                        s.ehlo("py.test")
                        s.starttls(context=context)
                        version = s.sock.version()
                        s.sendmail("dee@example.org", [rcpt], "Subject: unsubscribe\\r\\n\\r\\nunsubscribe\\r\\n")
                    print("sent over", version)
                    """, [port, address])
                #expect(status == 0, "\(output)\n\(process.output)")
                #expect(output.contains("sent over TLSv1."), "\(output)")
                #expect(try await app.count("""
                    SELECT count(*)::int FROM suppressions WHERE address = 'dee@example.org' AND source = 'unsubscribe' AND scope = '*'
                    """) == 1)
            }
        }
    }

    /// 1,000 random and 1,000 altered tokens on every public link route (unsubscribe, open, click): all 404,
    /// never 5xx, nothing changed.
    @Test func forgedAndAlteredTokensAreNotFound() async throws {
        try await TestApp.run { app in
            let root = try await app.createTenant("Links")
            let tenant = try #require(UUID(uuidString: root.tenant))
            // A real message and its real token, to alter.
            let messageID = try await Self.insertMessage(app, tenant: tenant, kind: "batch", to: "ann@example.org")
            let real = UnsubscribeToken(tenantID: tenant, messageID: messageID, scope: "list:x").encode(key: app.dependencies.unsubscribeLinks.key)
            #expect(try await app.request(.head, "/u/" + real, contentType: nil).status == 200)
            let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
            var tokens: [String] = (0..<1_000).map { _ in String((0..<Int.random(in: 1...200)).map { _ in alphabet.randomElement()! }) }
            for index in 0..<1_000 {
                var bytes = Array(real.utf8)
                switch index % 4 {
                case 0: bytes[Int.random(in: 0..<bytes.count)] = alphabet.randomElement()!.asciiValue!   // one character changed
                case 1: bytes.removeLast(Int.random(in: 1...20))                                      // truncated
                case 2: bytes.insert(alphabet.randomElement()!.asciiValue!, at: Int.random(in: 0...bytes.count))
                default: bytes.swapAt(Int.random(in: 0..<bytes.count), Int.random(in: 0..<bytes.count))
                }
                tokens.append(String(decoding: bytes, as: UTF8.self))
            }
            tokens.append(UnsubscribeToken(tenantID: tenant, messageID: UUID(), scope: "*").encode(key: app.dependencies.unsubscribeLinks.key))
            tokens.append(UnsubscribeToken(tenantID: tenant, messageID: messageID, scope: "*").encode(key: MasterKey.random().derive("unsubscribe")))
            var statuses: [Int: Int] = [:]
            for (index, token) in tokens.enumerated() where token != real {
                let path = "/u/" + (token.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? token)
                let reply: Reply
                switch index % 5 {
                case 0: reply = try await app.request(.get, path, contentType: nil)
                case 1: reply = try await app.request(.post, path, raw: Self.oneClick, contentType: "application/x-www-form-urlencoded")
                case 2: reply = try await app.request(.head, path, contentType: nil)
                case 3: reply = try await app.request(.get, "/t/o/" + path.dropFirst(3), contentType: nil)
                default: reply = try await app.request(.get, "/t/c/" + path.dropFirst(3), contentType: nil)
                }
                statuses[reply.status, default: 0] += 1
            }
            #expect(statuses.keys.allSatisfy { $0 == 404 }, "\(statuses)")
            #expect(try await app.count("SELECT count(*)::int FROM suppressions") == 0)
            #expect(try await app.count("SELECT count(*)::int FROM events") == 0)
        }
    }

    /// The link routes are limited per client address.
    @Test func linksAreRateLimitedPerClient() async throws {
        try await TestApp.run(linkRate: 2) { app in
            var statuses: [Int] = []
            for _ in 0..<10 { statuses.append(try await app.request(.get, "/u/not-a-token", contentType: nil).status) }
            #expect(statuses.prefix(6).allSatisfy { $0 == 404 } && statuses.last == 429, "\(statuses)")
        }
    }
}
