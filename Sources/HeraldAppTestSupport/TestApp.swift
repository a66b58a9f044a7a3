import Configuration
import Foundation
import HTTPTypes
import HeraldAPI
import HeraldCore
import HeraldDNS
import HeraldServer
import HeraldStore
import HeraldTestSupport
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Synchronization
import Testing

/// A settable clock for tests.
public final class TestClock: Sendable {
    private let offset = Mutex<TimeInterval>(0)
    /// A clock at the real time.
    public init() {}
    /// Moves the clock (and the rate limiters' seconds) forward.
    public func advance(_ seconds: TimeInterval) { offset.withLock { $0 += seconds } }
    /// The time, moved by what the test advanced.
    public var now: @Sendable () -> Date { { Date().addingTimeInterval(self.offset.withLock { $0 }) } }
    /// Monotonic seconds that move only when the test advances the clock (rate limiters).
    public var seconds: @Sendable () -> Double { { 1_000 + self.offset.withLock { $0 } } }
}

/// A JSON answer from the live server.
public struct Reply: Sendable {
    /// The HTTP status code.
    public var status: Int
    /// The response headers.
    public var headers: HTTPFields
    /// The body as text.
    public var body: String
    /// An answer with this status, these headers and this body.
    public init(status: Int, headers: HTTPFields, body: String) {
        self.status = status
        self.headers = headers
        self.body = body
    }
    /// The body as a JSON object (empty when it is not one).
    public var json: [String: any Sendable] {
        (try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: any Sendable]) ?? [:]
    }
    /// The problem code of a refusal.
    public var code: String? { json["code"] as? String }
    /// A string member of the JSON body.
    public subscript(key: String) -> String? { json[key] as? String }
}

/// A running Herald on 127.0.0.1 with a fresh database, built by the composition root (``HeraldServices``)
/// as `herald serve` builds it, and helpers that speak to it as a client would.
public struct TestApp: Sendable {
    /// The operator's bearer token.
    public static let adminToken = "test-admin-token-0123456789abcdef"
    /// The HTTP client of the live server.
    public let client: any TestClientProtocol
    /// Every shared service, as the roles get them.
    public let services: HeraldServices
    /// What the HTTP application was built with.
    public let dependencies: APIDependencies
    /// The clock of the app (and its rate limiters).
    public let clock: TestClock
    /// The routes the application registered.
    public let routes: RouteTable
    /// The test database, for a `herald` process of the test's own.
    public let databaseURL: DatabaseURL

    /// What the DNS records of test domains name.
    public static let domainSettings = SendingDomain.Settings(spfInclude: "_spf.herald.test", returnPathMX: "bounces.herald.test")

    /// The environment of a `herald serve` of the test's own on the test database, with this master key, the
    /// public URL https://herald.test, warnings only, and `settings` on top.
    public func serveEnvironment(masterKey: [UInt8], _ settings: [String: String]) -> [String: String] {
        Self.environment(databaseURL).merging(["HERALD_MASTER_KEY": Data(masterKey).base64EncodedString()]) { $1 }.merging(settings) { $1 }
    }

    /// The settings every test Herald shares: the test database, the public URL https://herald.test, the
    /// test domain settings, warnings only.
    static func environment(_ url: DatabaseURL) -> [String: String] {
        [
            "DATABASE_URL": "postgres://\(url.username):\(url.password ?? "")@\(url.host):\(url.port)/\(url.database)",
            "HERALD_ADMIN_TOKEN": TestApp.adminToken, "HERALD_PUBLIC_URL": "https://herald.test", "LOG_LEVEL": "warning",
        ]
    }

    /// Runs `body` with a Herald API on a fresh test database; the settings are those of `herald serve`
    /// (as environment variables) with the test's rates, DNS server and clock.
    public static func run(authRate: Int = 1000, tenantRate: Int = 100_000, dnsPort: Int = 9, masterKey: MasterKey = .random(),
                           allowPrivateWebhooks: Bool = true, linkRate: Int = 100_000, unsubscribeAddress: String? = nil, senderRate: Int = 100_000,
                           _ body: @escaping @Sendable (TestApp) async throws -> Void) async throws {
        try await withTestDatabase { database, url in
            var environment = environment(url).merging([
                "HERALD_AUTH_RATE": "\(authRate)", "HERALD_TENANT_RATE": "\(tenantRate)", "HERALD_LINK_RATE": "\(linkRate)",
                "HERALD_SENDER_RATE": "\(senderRate)", "HERALD_DNS_SERVER": "127.0.0.1:\(dnsPort)",
                "HERALD_WEBHOOK_ALLOW_PRIVATE": allowPrivateWebhooks ? "1" : "0", "HERALD_SENSITIVE_WORDS": "casino,lottery",
                "HERALD_SPF_INCLUDE": domainSettings.spfInclude, "HERALD_RETURN_PATH_MX": domainSettings.returnPathMX ?? "",
                "HERALD_DB_POOL_SIZE": "4",
            ]) { $1 }
            if let unsubscribeAddress { environment["HERALD_UNSUBSCRIBE_ADDRESS"] = unsubscribeAddress }
            let configuration = try HeraldConfiguration(reader: ConfigReader(provider: EnvironmentVariablesProvider(environmentVariables: environment)))
            let clock = TestClock()
            let services = try HeraldServices(configuration: configuration, database: database, masterKey: masterKey, logger: TestDatabases.logger,
                                              dns: DNSClient(server: configuration.dnsServer, timeout: .seconds(1), attempts: 2, cache: DNSCache(now: clock.now)),
                                              now: clock.now, limiterClock: clock.seconds)
            let dependencies = try services.apiDependencies()
            let (router, routes) = try buildRouter(dependencies)
            let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: TestDatabases.logger)
            try await app.test(.live) { client in
                try await body(TestApp(client: client, services: services, dependencies: dependencies, clock: clock, routes: routes, databaseURL: url))
            }
        }
    }

    /// One request to the live server.
    public func request(_ method: HTTPRequest.Method, _ path: String, token: String? = nil, json: Any? = nil,
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

    /// One request with the operator's token.
    public func admin(_ method: HTTPRequest.Method, _ path: String, json: Any? = nil) async throws -> Reply {
        try await request(method, path, token: Self.adminToken, json: json)
    }

    /// Creates a tenant through the operator API and returns (tenantId, keyId, secret).
    public func createTenant(_ name: String) async throws -> (tenant: String, keyID: String, secret: String) {
        let reply = try await admin(.post, "/admin/v1/tenants", json: ["name": name])
        #expect(reply.status == 201, "\(reply.body)")
        return (reply["tenantId"] ?? "", reply["accessKeyId"] ?? "", reply["accessKeySecret"] ?? "")
    }

    /// A token for an access key.
    public func token(_ keyID: String, _ secret: String) async throws -> String {
        let reply = try await request(.post, "/v1/auth/token", json: ["accessKeyId": keyID, "accessKeySecret": secret])
        #expect(reply.status == 200, "\(reply.body)")
        return reply["token"] ?? ""
    }

    /// A tenant's root token.
    public func rootToken(_ name: String = "Acme") async throws -> (tenant: String, token: String) {
        let created = try await createTenant(name)
        return (created.tenant, try await token(created.keyID, created.secret))
    }
}

/// Asserts a problem+json refusal with a code and a request id.
public func expectProblem(_ reply: Reply, _ status: Int, _ code: String, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(reply.status == status, "\(reply.body)", sourceLocation: sourceLocation)
    #expect(reply.code == code, "\(reply.body)", sourceLocation: sourceLocation)
    #expect(reply.headers[.contentType] == "application/problem+json", sourceLocation: sourceLocation)
    #expect((reply["requestId"] ?? "").isEmpty == false, sourceLocation: sourceLocation)
    #expect(reply["requestId"] == reply.headers[HTTPField.Name("X-Request-Id")!], sourceLocation: sourceLocation)
}
