import Crypto
import Foundation
import HeraldCore
import HeraldDelivery
import HeraldStore
import HeraldWebhooks
import Hummingbird
import Logging
import OpenAPIRuntime
import Prometheus

/// Everything the HTTP application needs, built by the composition root (HeraldServer's `HeraldServices`) and injected.
public struct APIDependencies: Sendable {
    /// The database.
    public var database: Database
    /// Tenants (operator).
    public var tenants: TenantStore
    /// Users, keys, policies, IP protection.
    public var identity: IdentityStore
    /// Sending domains.
    public var domains: DomainStore
    /// DNS checks of sending domains.
    public var verifier: DomainVerifier
    /// What domains' DNS records name.
    public var domainSettings: SendingDomain.Settings
    /// Sender addresses and tags.
    public var senders: SenderStore
    /// Templates and their review.
    public var templates: TemplateStore
    /// Recipient lists.
    public var lists: ListStore
    /// The accept path and suppressions.
    public var sending: SendStore
    /// Batch sends.
    public var batches: BatchStore
    /// The one accept road of every send (REST, the compatibility endpoint, SMTP submission).
    public var accept: AcceptService
    /// The public unsubscribe links.
    public var unsubscribes: UnsubscribeStore
    /// Sending statistics.
    public var stats: StatsStore
    /// Credit grades (the compatibility endpoint reads a tenant's quota from them).
    public var grades: GradeStore
    /// Open and click tracking: the links and their records.
    public var trackingLinks: TrackingLinks
    /// Open and click records.
    public var tracking: TrackingStore
    /// Tracking and unsubscribe-link settings of accounts.
    public var accountSettings: AccountSettingsStore
    /// Webhook endpoints and their delivery log.
    public var webhooks: WebhookStore
    /// The SSRF guard that webhook URLs pass at registration.
    public var webhookGuard: WebhookGuard
    /// VERP return paths of delivered mail (their label comes from the domain settings).
    public var bounceAddress: BounceAddress
    /// Unsubscribe links and List-Unsubscribe fields (https, and mailto when an address is configured).
    public var unsubscribeLinks: UnsubscribeLinks
    /// The installation's product limits (tenants may have overrides).
    public var productLimits: ProductLimits
    /// Signs reply-to confirmation links.
    public var replyToKey: SymmetricKey
    /// Base of public links.
    public var publicURL: String
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
    /// The rate limits (SPEC §11): per tenant, per token-endpoint key and client address, per link client.
    public var rateLimits: RateLimits
    /// The clock.
    public var now: @Sendable () -> Date
    /// The sensitive words in force (set by the composition root).
    public var contentRules: ContentRulesStore?
    /// Signs console sessions; nil: no console.
    public var consoleKey: SymmetricKey?

    /// Collects what the HTTP application needs; the composition root (`HeraldServices` in HeraldServer)
    /// builds each piece once and shares it with the other roles.
    public init(database: Database, tenants: TenantStore, identity: IdentityStore, domains: DomainStore, verifier: DomainVerifier,
                domainSettings: SendingDomain.Settings, senders: SenderStore, templates: TemplateStore, lists: ListStore,
                sending: SendStore, batches: BatchStore, accept: AcceptService, unsubscribes: UnsubscribeStore, stats: StatsStore,
                trackingLinks: TrackingLinks, tracking: TrackingStore, accountSettings: AccountSettingsStore, grades: GradeStore,
                webhooks: WebhookStore, webhookGuard: WebhookGuard, bounceAddress: BounceAddress, unsubscribeLinks: UnsubscribeLinks,
                productLimits: ProductLimits, replyToKey: SymmetricKey, publicURL: String, tokens: TokenService, keys: SigningKeyRing,
                registry: PrometheusCollectorRegistry, adminToken: String, trustedProxies: [IPNetwork],
                rateLimits: RateLimits, now: @escaping @Sendable () -> Date) {
        self.database = database
        self.tenants = tenants
        self.identity = identity
        self.domains = domains
        self.verifier = verifier
        self.domainSettings = domainSettings
        self.senders = senders
        self.templates = templates
        self.lists = lists
        self.sending = sending
        self.batches = batches
        self.accept = accept
        self.unsubscribes = unsubscribes
        self.stats = stats
        self.trackingLinks = trackingLinks
        self.tracking = tracking
        self.accountSettings = accountSettings
        self.grades = grades
        self.webhooks = webhooks
        self.webhookGuard = webhookGuard
        self.bounceAddress = bounceAddress
        self.unsubscribeLinks = unsubscribeLinks
        self.productLimits = productLimits
        self.replyToKey = replyToKey
        self.publicURL = publicURL
        self.tokens = tokens
        self.keys = keys
        self.registry = registry
        self.adminToken = adminToken
        self.trustedProxies = trustedProxies
        self.rateLimits = rateLimits
        self.now = now
    }
}

/// Builds the router with every operation of the contract, returning it and the table of routes it registered.
public func buildRouter(_ dependencies: APIDependencies) throws -> (Router<HeraldRequestContext>, RouteTable) {
    let router = Router(context: HeraldRequestContext.self)
    let table = RouteTable()
    // Middleware applies to routes registered after it, so it comes first.
    router.add(middleware: HTTPMetricsMiddleware(registry: dependencies.registry))
    router.add(middleware: ProblemMiddleware(routes: table, trustedProxies: dependencies.trustedProxies))
    router.add(middleware: RequestBodyMiddleware())
    router.add(middleware: ResponseHeaderMiddleware())

    let handler = APIHandler(
        tokens: dependencies.tokens, keys: dependencies.keys, database: dependencies.database, tenants: dependencies.tenants,
        identity: dependencies.identity, domains: dependencies.domains, verifier: dependencies.verifier,
        domainSettings: dependencies.domainSettings, senders: dependencies.senders, templates: dependencies.templates, lists: dependencies.lists, sending: dependencies.sending, batches: dependencies.batches, accept: dependencies.accept,
        webhooks: dependencies.webhooks, webhookGuard: dependencies.webhookGuard, unsubscribes: dependencies.unsubscribes, stats: dependencies.stats,
        trackingLinks: dependencies.trackingLinks, tracking: dependencies.tracking, accountSettings: dependencies.accountSettings,
        unsubscribeLinks: dependencies.unsubscribeLinks, productLimits: dependencies.productLimits, replyToKey: dependencies.replyToKey,
        publicURL: dependencies.publicURL, registry: dependencies.registry,
        keyLimiter: dependencies.rateLimits.authKey, ipLimiter: dependencies.rateLimits.authAddress, linkLimiter: dependencies.rateLimits.link,
        contentRules: dependencies.contentRules, grades: dependencies.grades, now: dependencies.now)
    let access = AccessMiddleware(
        tokens: dependencies.tokens, database: dependencies.database, adminToken: dependencies.adminToken,
        tenantLimiter: dependencies.rateLimits.tenant)
    // The hot route by hand, before the generated routes (anything it does not take goes on to them).
    router.add(middleware: try SingleSendRoute(access: access, handler: handler))
    let compat = DirectMailCompat(auth: dependencies.tokens.auth,
                                  accept: dependencies.accept, batches: dependencies.batches, database: dependencies.database,
                                  grades: dependencies.grades, domains: dependencies.domains,
                                  domainSettings: dependencies.domainSettings, senders: dependencies.senders, templates: dependencies.templates, lists: dependencies.lists, identity: dependencies.identity,
                                  stats: dependencies.stats, sending: dependencies.sending,
                                  verifier: dependencies.verifier, tenantLimiter: access.tenantLimiter, now: dependencies.now)
    router.post("/") { request, context in await compat.handle(request, context: context) }
    if let consoleKey = dependencies.consoleKey {
        Console(deps: dependencies, database: dependencies.database, auth: dependencies.tokens.auth, domains: dependencies.domains,
                senders: dependencies.senders, verifier: dependencies.verifier,
                domainSettings: dependencies.domainSettings, grades: dependencies.grades, stats: dependencies.stats, key: consoleKey,
                secure: dependencies.publicURL.lowercased().hasPrefix("https://"), keyLimiter: dependencies.rateLimits.authKey,
                ipLimiter: dependencies.rateLimits.authAddress, now: dependencies.now)
            .register(on: router)
    }
    try handler.registerHandlers(on: RecordingTransport(router: router, table: table), serverURL: URL(string: "/")!,
                                 configuration: Configuration(dateTranscoder: .iso8601, jsonEncodingOptions: [.sortedKeys, .withoutEscapingSlashes]),
                                 middlewares: [access])
    return (router, table)
}

/// Builds the HTTP application. The database pool is the caller's to run (it is shared with other roles).
public func buildApplication(_ dependencies: APIDependencies, host: String, port: Int, logger: Logger) throws -> some ApplicationProtocol {
    let (router, _) = try buildRouter(dependencies)
    return Application(router: router, configuration: .init(address: .hostname(host, port: port), serverName: "Herald"), logger: logger)
}
