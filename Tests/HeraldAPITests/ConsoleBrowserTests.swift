import AsyncHTTPClient
import Foundation
import HTTPTypes
import HeraldAPI
import HeraldAppTestSupport
import HeraldCore
import HeraldStore
import HeraldTestSupport
import NIOHTTP1
import PostgresNIO
import Testing

/// The console in a real browser (issue #19): a `herald serve` process (API, scheduler, dispatcher) on the test
/// database, the test DNS server, SMTP peer and webhook receiver, and headless Chromium driven with Selenium by
/// Tests/Peers/console_browser.py (`ops/test` installs Chromium, chromedriver and Selenium). The script clicks
/// through what a tenant and the operator do; this test then checks what the clicks must have done.
/// `ops/test --screenshots DIR` (HERALD_TEST_SCREENSHOTS) keeps the pages at 360 px and 1280 px.
@Suite struct ConsoleBrowserTests {
    @Test func aTenantAndTheOperatorInABrowser() async throws {
        let keyBytes = (0..<32).map { _ in UInt8.random(in: 0...255) }
        try await DNSTestServer.with(zone: [:]) { dns in
            try await SMTPTestServer.with { peer in
                try await WebhookTestServer.with { hooks in
                    try await TestApp.run(dnsPort: dns.port, masterKey: MasterKey(bytes: keyBytes)) { app in
                        let root = try await app.createTenant("Browser")
                        let token = try await app.token(root.keyID, root.secret)
                        let user = try #require(try await app.request(.post, "/v1/users", token: token, json: ["name": "reader"])["id"])
                        #expect(try await app.request(.post, "/v1/users/\(user)/policies", token: token, json: ["policy": "ReadOnlyAccess"]).status == 200)
                        let key = try await app.request(.post, "/v1/users/\(user)/access-keys", token: token)

                        let work = FileManager.default.temporaryDirectory.appendingPathComponent("herald-browser-\(UUID().uuidString)")
                        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
                        defer { try? FileManager.default.removeItem(at: work) }
                        let port = try await freeLocalPort()
                        let base = "http://127.0.0.1:\(port)"
                        let process = try HeraldProcess(["serve"], environment: app.serveEnvironment(masterKey: keyBytes, [
                            "HERALD_ROLES": "api,scheduler,dispatcher", "HERALD_HTTP_HOST": "127.0.0.1", "HERALD_HTTP_PORT": String(port),
                            "HERALD_PUBLIC_URL": base, "HERALD_SMARTHOST": "127.0.0.1:\(peer.port)", "HERALD_DNS_SERVER": "127.0.0.1:\(dns.port)",
                            "HERALD_WEBHOOK_ALLOW_PRIVATE": "1", "HERALD_SPF_INCLUDE": TestApp.domainSettings.spfInclude,
                            "HERALD_RETURN_PATH_MX": TestApp.domainSettings.returnPathMX ?? "", "HERALD_SENSITIVE_WORDS": "casino,lottery",
                        ]))
                        defer { process.stop() }
                        try await waitUntil("the herald process answers", seconds: 60) {
                            (try? await Self.status(base + "/readyz")) == 200 || !process.isRunning
                        }
                        #expect(process.isRunning, "\(process.output)")

                        let settings: [String: Any] = [
                            "base": base, "root": [root.keyID, root.secret],
                            "reader": [try #require(key["accessKeyId"]), try #require(key["accessKeySecret"])],
                            "adminToken": TestApp.adminToken, "zoneFile": dns.zoneFile.path, "webhookURL": "http://127.0.0.1:\(hooks.port)/hook",
                            "screenshots": ProcessInfo.processInfo.environment["HERALD_TEST_SCREENSHOTS"] ?? "",
                            "workDirectory": work.path,
                        ]
                        let script = try String(contentsOfFile: TestDatabases.repositoryRoot + "/Tests/Peers/console_browser.py", encoding: .utf8)
                        let (status, output) = try await runPythonDetached(script, [], input: Array(try JSONSerialization.data(withJSONObject: settings)))
                        #expect(status == 0, "\(output)\n--- herald ---\n\(process.output.suffix(4_000))")

                        // What the clicks did, seen through the API.
                        let domains = try await app.request(.get, "/v1/domains", token: token)
                        #expect(domains.body.contains("\"name\":\"browser.test\"") && domains.body.contains("\"status\":\"verified\""), "\(domains.body)")
                        #expect(!domains.body.contains("evil.example") && !domains.body.contains("forged.example"), "refused posts changed nothing")
                        let senders = try await app.request(.get, "/v1/senders", token: token)
                        #expect(senders.body.contains("news@browser.test"), "\(senders.body)")
                        // The batch reached the SMTP peer, each member with their own variables; the test event reached the receiver.
                        let subjects = peer.received.compactMap { message in
                            message.data.split(separator: "\r\n").first { $0.hasPrefix("Subject: ") }.map { String($0.dropFirst(9)) }
                        }
                        #expect(Set(subjects).isSuperset(of: ["Welcome, Alice", "Welcome, Bob"]), "\(subjects)")
                        #expect(!peer.received.contains { $0.to.contains("not-an-address") })
                        let members = try await app.request(.get, "/v1/lists", token: token)
                        #expect(members.body.contains("customers"), "\(members.body)")
                        try await waitUntil("the test event reaches the receiver", seconds: 30) { !hooks.received.isEmpty }
                        let audit = try await app.request(.get, "/v1/audit-log", token: token)
                        #expect(audit.body.contains("dm:CreateDomain") && audit.body.contains("dm:CheckDomain") && audit.body.contains("Forbidden.RAM")
                                && audit.body.contains("dm:RotateWebhookSecret"),
                                "the console's changes and the reader's refusal are audited: \(audit.body.prefix(800))")
                    }
                }
            }
        }
    }

    static func status(_ url: String) async throws -> Int {
        Int(try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(2)).status.code)
    }
}
