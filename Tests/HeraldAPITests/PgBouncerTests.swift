import AsyncHTTPClient
import HeraldAPI
import PostgresNIO
import Foundation
import HeraldAppTestSupport
import HeraldCore
import HeraldStore
import HeraldTestSupport
import NIOCore
import NIOHTTP1
import Testing

/// Herald through pgbouncer in transaction mode (issue #17): a real `herald serve` (api and scheduler)
/// whose DATABASE_URL is the pgbouncer ops/test starts (`pgbouncer=true`: no prepared statements, since a
/// server connection is shared between transactions) and whose LISTEN goes on HERALD_DIRECT_DATABASE_URL
/// accepts sends, refuses what it must, keeps idempotency, and delivers them with their events.
@Suite struct PgBouncerTests {
    @Test func sendsGoEndToEndThroughPgbouncerInTransactionMode() async throws {
        guard let bouncer = ProcessInfo.processInfo.environment["HERALD_TEST_PGBOUNCER_PORT"].flatMap(Int.init) else {
            throw TestSupportError("HERALD_TEST_PGBOUNCER_PORT is not set: ops/test starts pgbouncer")
        }
        let keyBytes = (0..<32).map { _ in UInt8.random(in: 0...255) }
        try await DNSTestServer.with(zone: [:]) { dns in
            try await SMTPTestServer.with { peer in
                try await TestApp.run(dnsPort: dns.port, masterKey: MasterKey(bytes: keyBytes)) { app in
                    let (_, token, _, _) = try await app.sendingTenant(dns)
                    let url = app.databaseURL
                    let port = try await freeLocalPort()
                    let process = try HeraldProcess(["serve"], environment: app.serveEnvironment(masterKey: keyBytes, [
                        "DATABASE_URL": "postgres://\(url.username):\(url.password ?? "")@127.0.0.1:\(bouncer)/\(url.database)?pgbouncer=true",
                        "HERALD_DIRECT_DATABASE_URL": "postgres://\(url.username):\(url.password ?? "")@\(url.host):\(url.port)/\(url.database)",
                        "HERALD_ROLES": "api,scheduler", "HERALD_HTTP_HOST": "127.0.0.1", "HERALD_HTTP_PORT": String(port),
                        "HERALD_SMARTHOST": "127.0.0.1:\(peer.port)", "HERALD_DNS_SERVER": "127.0.0.1:\(dns.port)",
                    ]))
                    defer { process.stop() }
                    let base = "http://127.0.0.1:\(port)"
                    func send(_ body: [String: Any], key: String? = nil) async throws -> (status: Int, body: String) {
                        var request = HTTPClientRequest(url: base + "/v1/mail/single")
                        request.method = .POST
                        request.headers.add(name: "authorization", value: "Bearer \(token)")
                        request.headers.add(name: "content-type", value: "application/json")
                        if let key { request.headers.add(name: "idempotency-key", value: key) }
                        request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body)))
                        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
                        return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 1 << 20)))
                    }
                    try await waitUntil("the process is ready") {
                        (try? await HTTPClient.shared.execute(HTTPClientRequest(url: base + "/readyz"), timeout: .seconds(2)).status.code) == 200
                    }
                    // Concurrent sends (half with Idempotency-Keys, which take the transaction path) over more of
                    // Herald's connections than pgbouncer has server connections (ops/test gives it 3), so that
                    // consecutive statements of one Herald connection meet different server connections.
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for worker in 0..<16 {
                            group.addTask {
                                for index in stride(from: worker, to: 160, by: 16) {
                                    let sent = try await send(TestApp.mail(to: ["r\(index)@example.org"]), key: index.isMultiple(of: 2) ? "k\(index)" : nil)
                                    #expect(sent.status == 200, "\(sent.body)\n\(process.output)")
                                }
                            }
                        }
                        try await group.waitForAll()
                    }
                    // The same Idempotency-Key twice is one message; a refusal is still a refusal.
                    let first = try await send(TestApp.mail(to: ["again@example.org"]), key: "pgbouncer-1")
                    let second = try await send(TestApp.mail(to: ["again@example.org"]), key: "pgbouncer-1")
                    #expect(first.status == 200 && second.status == 200 && first.body == second.body, "\(first.body) / \(second.body)")
                    let refused = try await send(TestApp.mail(to: ["x@example.org"]).merging(["from": "nobody@example.test"]) { $1 })
                    #expect(refused.status == 400 || refused.status == 403 || refused.status == 404, "\(refused.body)")

                    try await waitUntil("every message delivered", seconds: 60) { peer.receivedCount >= 161 || !process.isRunning }
                    #expect(peer.receivedCount == 161, "\(process.output)")
                    let database = app.dependencies.database
                    try await waitUntil("every delivery recorded with its event") {
                        try await database.withSystem { connection in
                            try await connection.query("SELECT count(*)::int FROM events WHERE type = 'message.delivered'", logger: database.logger)
                                .decode(Int.self).first { _ in true } ?? 0
                        } == 161
                    }
                    #expect(!process.output.contains("prepared statement"), "\(process.output)")
                }
            }
        }
    }

    @Test func aPgbouncerURLNeedsTheDirectOne() throws {
        let url = try DatabaseURL("postgres://u:p@127.0.0.1:6432/db?pgbouncer=true")
        #expect(url.pgbouncer)
        #expect(try DatabaseURL("postgres://u:p@127.0.0.1:6432/db").pgbouncer == false)
        #expect(throws: HeraldError.self) { try DatabaseURL("postgres://u:p@h/db?pgbouncer=maybe") }
    }
}
