import Foundation
import HeraldCore
import HeraldStore
import Hummingbird
import Logging
import Prometheus

/// Everything the HTTP application needs, built by the composition root and injected.
public struct APIDependencies: Sendable {
    /// The database.
    public var database: Database
    /// Tenants (operator).
    public var tenants: TenantStore
    /// Users, keys, policies, IP protection.
    public var identity: IdentityStore
    /// Token issue and verification.
    public var tokens: TokenService
    /// Signing keys.
    public var keys: SigningKeyRing
    /// Metrics registry served at /metrics.
    public var registry: PrometheusCollectorRegistry
    /// Operator bearer token.
    public var adminToken: String
    /// Proxies whose X-Forwarded-For is trusted.
    public var trustedProxies: [IPNetwork]
    /// Token endpoint rate per key id and per IP.
    public var authRatePerSecond: Int
    /// Tenant API requests per second per tenant (burst twice that).
    public var tenantRatePerSecond: Int
    /// The clock.
    public var now: @Sendable () -> Date

    /// Builds the dependencies from a database and master key.
    public init(database: Database, masterKey: MasterKey, adminToken: String, tokenLifetime: Duration = .seconds(900),
                trustedProxies: [IPNetwork] = [], authRatePerSecond: Int = 10, tenantRatePerSecond: Int = 500,
                registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(), now: @escaping @Sendable () -> Date = Date.init) {
        let secrets = SecretBox(masterKey: masterKey)
        self.database = database
        self.tenants = TenantStore(database: database, secrets: secrets)
        self.identity = IdentityStore(database: database, secrets: secrets)
        self.keys = SigningKeyRing(database: database, secrets: secrets, publishAfterRetirement: tokenLifetime + .seconds(60), now: now)
        self.tokens = TokenService(auth: AuthStore(database: database, secrets: secrets), keys: keys, lifetime: tokenLifetime, now: now)
        self.registry = registry
        self.adminToken = adminToken
        self.trustedProxies = trustedProxies
        self.authRatePerSecond = authRatePerSecond
        self.tenantRatePerSecond = tenantRatePerSecond
        self.now = now
    }
}

/// Builds the router with every route, returning it and the table of routes it registered.
public func buildRouter(_ dependencies: APIDependencies) -> (Router<HeraldRequestContext>, RouteTable) {
    let router = Router(context: HeraldRequestContext.self)
    let table = RouteTable()
    // Middleware applies to routes registered after it, so it comes first.
    router.add(middleware: HTTPMetricsMiddleware(registry: dependencies.registry))
    router.add(middleware: ProblemMiddleware(routes: table, trustedProxies: dependencies.trustedProxies))

    let rate = Double(dependencies.authRatePerSecond)
    PublicRoutes(tokens: dependencies.tokens, keys: dependencies.keys, database: dependencies.database, registry: dependencies.registry,
                 keyLimiter: TokenBucketLimiter(capacity: dependencies.authRatePerSecond * 3, refillPerSecond: rate),
                 ipLimiter: TokenBucketLimiter(capacity: dependencies.authRatePerSecond * 3, refillPerSecond: rate))
        .register(RouteRegistrar(router: router.group(), table: table, prefix: ""))

    let admin = router.group("admin/v1").add(middleware: AdminAuthMiddleware(adminToken: dependencies.adminToken))
    AdminRoutes(tenants: dependencies.tenants, keys: dependencies.keys)
        .register(RouteRegistrar(router: admin, table: table, prefix: "/admin/v1"))

    let tenant = router.group("v1").add(middleware: TenantAuthMiddleware(
        tokens: dependencies.tokens,
        limiter: TokenBucketLimiter(capacity: dependencies.tenantRatePerSecond * 2, refillPerSecond: Double(dependencies.tenantRatePerSecond))))
    let routes = TenantRoutes(registrar: RouteRegistrar(router: tenant, table: table, prefix: "/v1"), database: dependencies.database)
    IdentityRoutes(identity: dependencies.identity).register(routes)
    return (router, table)
}

/// Builds the HTTP application. The database pool is the caller's to run (it is shared with other roles).
public func buildApplication(_ dependencies: APIDependencies, host: String, port: Int, logger: Logger) -> some ApplicationProtocol {
    let (router, _) = buildRouter(dependencies)
    return Application(router: router, configuration: .init(address: .hostname(host, port: port), serverName: "Herald"), logger: logger)
}
