import Foundation
import HTTPTypes
import HeraldAPI
import HeraldCore
import HeraldDNS
import HeraldStore
import HeraldTestSupport
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Synchronization
import Prometheus
import Testing

/// A settable clock for tests.
final class TestClock: Sendable {
    private let offset = Mutex<TimeInterval>(0)
    func advance(_ seconds: TimeInterval) { offset.withLock { $0 += seconds } }
    var now: @Sendable () -> Date { { Date().addingTimeInterval(self.offset.withLock { $0 }) } }
    /// Monotonic seconds that move only when the test advances the clock (rate limiters).
    var seconds: @Sendable () -> Double { { 1_000 + self.offset.withLock { $0 } } }
}

/// A JSON answer from the live server.
struct Reply: Sendable {
    var status: Int
    var headers: HTTPFields
    var body: String
    var json: [String: any Sendable] {
        (try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: any Sendable]) ?? [:]
    }
    var code: String? { json["code"] as? String }
    subscript(key: String) -> String? { json[key] as? String }
}

/// A running Herald on 127.0.0.1 with a fresh database, and helpers that speak to it as a client would.
struct TestApp: Sendable {
    static let adminToken = "test-admin-token-0123456789abcdef"
    let client: any TestClientProtocol
    let dependencies: APIDependencies
    let clock: TestClock
    let routes: RouteTable
    /// The test database, for a `herald` process of the test's own.
    let databaseURL: DatabaseURL

    static let domainSettings = SendingDomain.Settings(spfInclude: "_spf.herald.test", returnPathMX: "bounces.herald.test")

    /// The environment of a `herald serve` of the test's own on the test database, with this master key, the
    /// public URL https://herald.test, warnings only, and `settings` on top.
    func serveEnvironment(masterKey: [UInt8], _ settings: [String: String]) -> [String: String] {
        let url = databaseURL
        return [
            "DATABASE_URL": "postgres://\(url.username):\(url.password ?? "")@\(url.host):\(url.port)/\(url.database)",
            "HERALD_MASTER_KEY": Data(masterKey).base64EncodedString(), "HERALD_ADMIN_TOKEN": TestApp.adminToken,
            "HERALD_PUBLIC_URL": "https://herald.test", "LOG_LEVEL": "warning",
        ].merging(settings) { $1 }
    }

    static func run(authRate: Int = 1000, tenantRate: Int = 100_000, dnsPort: Int = 9, masterKey: MasterKey = .random(),
                    allowPrivateWebhooks: Bool = true, linkRate: Int = 100_000, unsubscribeAddress: String? = nil, senderRate: Int = 100_000, _ body: @escaping @Sendable (TestApp) async throws -> Void) async throws {
        try await withTestDatabase { database, url in
            let clock = TestClock()
            let registry = PrometheusCollectorRegistry()
            var database = database
            database.metrics = DatabaseMetrics(registry: registry, poolSize: 4)
            let dependencies = APIDependencies(database: database, masterKey: masterKey, adminToken: adminToken,
                                               authRatePerSecond: authRate, tenantRatePerSecond: tenantRate, registry: registry,
                                               dns: DNSClient(server: try SocketAddress(ipAddress: "127.0.0.1", port: dnsPort), timeout: .seconds(1), attempts: 2,
                                                              cache: DNSCache(now: clock.now)),
                                               publicURL: "https://herald.test", sensitiveWords: ["casino", "lottery"],
                                               domainSettings: domainSettings, allowPrivateWebhooks: allowPrivateWebhooks, linkRatePerSecond: linkRate,
                                               unsubscribeMailbox: try unsubscribeAddress.map { try UnsubscribeMailbox(address: $0, masterKey: masterKey) },
                                               senderRatePerSecond: senderRate,
                                               now: clock.now,
                                               limiterClock: clock.seconds)
            let (router, routes) = try buildRouter(dependencies)
            let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: TestDatabases.logger)
            try await app.test(.live) { client in
                try await body(TestApp(client: client, dependencies: dependencies, clock: clock, routes: routes, databaseURL: url))
            }
        }
    }

    func request(_ method: HTTPRequest.Method, _ path: String, token: String? = nil, json: Any? = nil,
                 raw: String? = nil, contentType: String? = "application/json", headers extra: HTTPFields = [:]) async throws -> Reply {
        var headers = extra
        if let token { headers[.authorization] = "Bearer \(token)" }
        var body: ByteBuffer?
        if let json {
            body = ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: json))
        } else if let raw {
            body = ByteBuffer(string: raw)
        }
        if body != nil, let contentType { headers[.contentType] = contentType }
        let response = try await client.execute(uri: path, method: method, headers: headers, body: body)
        return Reply(status: Int(response.status.code), headers: response.headers, body: String(buffer: response.body))
    }

    func admin(_ method: HTTPRequest.Method, _ path: String, json: Any? = nil) async throws -> Reply {
        try await request(method, path, token: Self.adminToken, json: json)
    }

    /// Creates a tenant through the operator API and returns (tenantId, keyId, secret).
    func createTenant(_ name: String) async throws -> (tenant: String, keyID: String, secret: String) {
        let reply = try await admin(.post, "/admin/v1/tenants", json: ["name": name])
        #expect(reply.status == 201, "\(reply.body)")
        return (reply["tenantId"] ?? "", reply["accessKeyId"] ?? "", reply["accessKeySecret"] ?? "")
    }

    func token(_ keyID: String, _ secret: String) async throws -> String {
        let reply = try await request(.post, "/v1/auth/token", json: ["accessKeyId": keyID, "accessKeySecret": secret])
        #expect(reply.status == 200, "\(reply.body)")
        return reply["token"] ?? ""
    }

    /// A tenant's root token.
    func rootToken(_ name: String = "Acme") async throws -> (tenant: String, token: String) {
        let created = try await createTenant(name)
        return (created.tenant, try await token(created.keyID, created.secret))
    }
}

/// Asserts a problem+json refusal with a code and a request id.
func expectProblem(_ reply: Reply, _ status: Int, _ code: String, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(reply.status == status, "\(reply.body)", sourceLocation: sourceLocation)
    #expect(reply.code == code, "\(reply.body)", sourceLocation: sourceLocation)
    #expect(reply.headers[.contentType] == "application/problem+json", sourceLocation: sourceLocation)
    #expect((reply["requestId"] ?? "").isEmpty == false, sourceLocation: sourceLocation)
    #expect(reply["requestId"] == reply.headers[HTTPField.Name("X-Request-Id")!], sourceLocation: sourceLocation)
}


