import Crypto
import Foundation
import HeraldAPI
import HeraldCore
import HeraldDelivery
import HeraldDNS
import HeraldStore
import HeraldWebhooks
import Logging
import Prometheus

/// What every role of a process shares, built once from the configuration: the database, the metrics
/// registry, the DNS client, every store and the link signers. Each role (``HeraldServices/services(for:worker:)``)
/// takes what it needs from here and adds only what it alone runs; `herald serve`, `herald admin` and the
/// end-to-end tests all build through this one initialiser.
public struct HeraldServices: Sendable {
    /// The validated settings these services were built from.
    public let configuration: HeraldConfiguration
    /// The process's logger.
    public let logger: Logger
    /// The database (its pool is the caller's to run).
    public let database: Database
    /// Metrics served at /metrics; every role registers its own there.
    public let registry: PrometheusCollectorRegistry
    /// The one resolver of the process: domain verification, the webhook guard, MX lookups.
    public let dns: DNSClient
    /// The clock.
    public let now: @Sendable () -> Date
    /// Monotonic seconds for the rate limiters.
    public let limiterClock: @Sendable () -> Double
    /// This process in `herald_processes` (a new id each start).
    public let process: ProcessRecord
    /// The processes of the installation.
    public let processes: ProcessStore
    /// This process's shares of the installation's limits, renewed by ``ClusterService``.
    public let shareBook: LimitShareBook
    /// The rate limits of SPEC §11, held for the whole installation.
    public let rateLimits: RateLimits

    /// Tenants (operator).
    public let tenants: TenantStore
    /// Users, keys, policies, IP protection.
    public let identity: IdentityStore
    /// Sending domains.
    public let domains: DomainStore
    /// DNS checks of sending domains (the API on request, the scheduler role's recheck when due).
    public let verifier: DomainVerifier
    /// Sender addresses and tags.
    public let senders: SenderStore
    /// Templates and their review.
    public let templates: TemplateStore
    /// Recipient lists.
    public let lists: ListStore
    /// The accept path and suppressions.
    public let sending: SendStore
    /// Batch sends and their expansion.
    public let batches: BatchStore
    /// The one accept road of every send (REST, the compatibility endpoint, SMTP submission): its concurrent
    /// sends share transactions, and its sender rate is shared by every path of the process.
    public let accept: AcceptService
    /// The public unsubscribe links and unsubscribes received by mail.
    public let unsubscribes: UnsubscribeStore
    /// Sending statistics.
    public let stats: StatsStore
    /// Open and click records.
    public let tracking: TrackingStore
    /// Tracking and unsubscribe-link settings of accounts.
    public let accountSettings: AccountSettingsStore
    /// Webhook endpoints and their delivery log.
    public let webhooks: WebhookStore
    /// Claims, results and bounces of deliveries (metrics are added by the scheduler role).
    public let deliveries: DeliveryStore
    /// Credit grades (metrics are added by the grader role).
    public let grades: GradeStore
    /// Token signing keys.
    public let keys: SigningKeyRing
    /// Token issue and verification.
    public let tokens: TokenService

    /// The SSRF guard of webhook URLs, at registration and again at connect time.
    public let webhookGuard: WebhookGuard
    /// Open and click tracking links.
    public let trackingLinks: TrackingLinks
    /// Unsubscribe links and List-Unsubscribe fields (https, and mailto when an address is configured).
    public let unsubscribeLinks: UnsubscribeLinks
    /// The mailbox that receives unsubscribe mail (`HERALD_UNSUBSCRIBE_ADDRESS`), if any.
    public let unsubscribeMailbox: UnsubscribeMailbox?
    /// VERP return paths of delivered mail and the bounces that come back to them.
    public let bounceAddress: BounceAddress
    /// Signs reply-to confirmation links.
    public let replyToKey: SymmetricKey
    /// Tenants' IP allowlists for SMTP submission (nil when `HERALD_PRINCIPAL_CACHE_TTL` is 0).
    public let ipAllowlists: TenantCache<TenantKey, IPAllowlist>?
    /// The sensitive words in force (HERALD_SENSITIVE_WORDS, or the operator's list).
    public let contentRules: ContentRulesStore
    /// Signs console sessions and their CSRF tokens.
    let consoleKey: SymmetricKey
    /// Senders' SMTP password fingerprints for submission's re-check of each MAIL (nil when the TTL is 0).
    public let passwordFingerprints: TenantCache<SenderKey, String>?

    /// Builds every shared service over `database` (whose metrics go to the new registry).
    /// - Parameters:
    ///   - dns: the resolver; by default one for `HERALD_DNS_SERVER`.
    ///   - now: the clock, injected so tests can move it.
    ///   - limiterClock: monotonic seconds for the rate limiters.
    public init(configuration: HeraldConfiguration, database: Database, masterKey: MasterKey, logger: Logger, dns: DNSClient? = nil,
                now: @escaping @Sendable () -> Date = Date.init,
                limiterClock: @escaping @Sendable () -> Double = TokenBucketLimiter.monotonicSeconds) throws(HeraldConfiguration.Invalid) {
        self.configuration = configuration
        self.logger = logger
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        var database = database
        database.metrics = DatabaseMetrics(registry: registry, poolSize: configuration.databasePoolSize)
        database.preparedStatements = !configuration.databaseURL.pgbouncer
        self.database = database
        let dns = dns ?? DNSClient(server: configuration.dnsServer, logger: logger)
        self.dns = dns
        self.now = now
        self.limiterClock = limiterClock
        process = ProcessRecord(id: UUID(), roles: configuration.roles.map(\.rawValue).sorted(), host: ProcessInfo.processInfo.hostName,
                                pid: Int(ProcessInfo.processInfo.processIdentifier),
                                httpPort: configuration.roles.contains(.api) ? configuration.httpPort : nil)
        processes = ProcessStore(database: database)
        let shareBook = LimitShareBook(exchanger: LimitShareStore(database: database, process: process.id), now: limiterClock)
        self.shareBook = shareBook
        let rateLimits = RateLimits.shared(.init(tenant: configuration.tenantRatePerSecond, sender: configuration.senderRatePerSecond,
                                                 link: configuration.linkRatePerSecond, auth: configuration.authRatePerSecond,
                                                 userFailures: configuration.smtpAuthUserFailures, userWindow: configuration.smtpAuthUserWindow),
                                           book: shareBook)
        self.rateLimits = rateLimits
        do {
            unsubscribeMailbox = try configuration.unsubscribeAddress.map { address throws(HeraldError) in
                try UnsubscribeMailbox(address: address, masterKey: masterKey)
            }
        } catch {
            throw HeraldConfiguration.Invalid(description: "HERALD_UNSUBSCRIBE_ADDRESS: \(error.message)")
        }

        let secrets = SecretBox(masterKey: masterKey)
        let tenantLimits = TenantLimits(defaults: configuration.limits)
        var tenants = TenantStore(database: database, secrets: secrets)
        tenants.initialGrade = configuration.initialGrade
        self.tenants = tenants
        var identity = IdentityStore(database: database, secrets: secrets)
        identity.limits = tenantLimits
        self.identity = identity
        var domains = DomainStore(database: database, secrets: secrets)
        domains.recheckInterval = configuration.domainRecheckInterval
        domains.limits = tenantLimits
        self.domains = domains
        verifier = DomainVerifier(domains: domains, dns: dns, settings: configuration.domainSettings, now: now)
        var senders = SenderStore(database: database)
        senders.limits = tenantLimits
        senders.confirmationLimit = ReplyToConfirmationLimit(perSender: configuration.replyToConfirmationsPerHour,
                                                             perTenant: configuration.replyToConfirmationsPerHour)
        let replyToKey = masterKey.derive("reply-to-confirmation")
        consoleKey = masterKey.derive("console-session")
        self.replyToKey = replyToKey
        // Herald's own mail (reply-to confirmations) comes from HERALD_SYSTEM_FROM, by default no-reply@ the public host.
        let publicURL = configuration.publicURL
        let defaultFrom = try? MailAddress("no-reply@" + ((URL(string: publicURL)?.host()).flatMap { try? SendingDomain.normalize($0) } ?? "herald.localhost"))
        if let from = configuration.systemFrom ?? defaultFrom {
            senders.confirmations = ReplyToConfirmationMail(key: SymmetricKeyBox(replyToKey), publicURL: publicURL, from: from)
        }
        self.senders = senders
        let contentRules = ContentRulesStore(database: database, configured: configuration.sensitiveWords)
        self.contentRules = contentRules
        var templates = TemplateStore(database: database)
        templates.sensitiveWords = configuration.sensitiveWords
        templates.contentRules = contentRules
        templates.limits = tenantLimits
        self.templates = templates
        var lists = ListStore(database: database)
        lists.limits = tenantLimits
        lists.quotaTable = configuration.gradeQuotas
        self.lists = lists
        var sending = SendStore(database: database)
        sending.quotaHolder = process.id
        sending.limits = tenantLimits
        sending.quotaTable = configuration.gradeQuotas
        self.sending = sending
        var batches = BatchStore(database: database)
        batches.quotaTable = configuration.gradeQuotas
        self.batches = batches
        unsubscribes = UnsubscribeStore(database: database)
        stats = StatsStore(database: database)
        tracking = TrackingStore(database: database)
        accountSettings = AccountSettingsStore(database: database)
        webhooks = WebhookStore(database: database, secrets: secrets)
        var deliveries = DeliveryStore(database: database)
        deliveries.invalidAfterHardBounces = configuration.invalidAfterHardBounces
        self.deliveries = deliveries
        var grades = GradeStore(database: database)
        grades.thresholds = configuration.gradeRules
        grades.freeAllowance = configuration.freeAllowance
        self.grades = grades
        keys = SigningKeyRing(database: database, secrets: secrets, publishAfterRetirement: configuration.tokenLifetime + .seconds(60), now: now)
        var auth = AuthStore(database: database, secrets: secrets)
        let cached = configuration.principalCacheLifetime > .zero
        let lifetime = configuration.principalCacheLifetime
        auth.principals = cached ? PrincipalCache(maxAge: lifetime, metrics: TenantCacheMetrics(registry: registry, cache: "principal")) : nil
        tokens = TokenService(auth: auth, keys: keys, lifetime: configuration.tokenLifetime, now: now)
        ipAllowlists = cached ? TenantCache(maxAge: lifetime, metrics: TenantCacheMetrics(registry: registry, cache: "ip_protection")) : nil
        passwordFingerprints = cached ? TenantCache(maxAge: lifetime, metrics: TenantCacheMetrics(registry: registry, cache: "smtp_password")) : nil

        webhookGuard = WebhookGuard(policy: WebhookTargetPolicy(allowPrivate: configuration.webhookAllowPrivate), dns: dns)
        trackingLinks = TrackingLinks(publicURL: publicURL, masterKey: masterKey)
        unsubscribeLinks = UnsubscribeLinks(publicURL: publicURL, masterKey: masterKey, mailbox: unsubscribeMailbox)
        bounceAddress = BounceAddress(masterKey: masterKey, label: configuration.domainSettings.returnPathLabel)
        var accept = AcceptService(batcher: AcceptBatcher(store: sending), senders: senders, identity: identity, batches: batches,
                                   senderRate: rateLimits.sender, now: now)
        accept.ipAllowlists = ipAllowlists
        accept.contentRules = contentRules
        self.accept = accept
    }

    /// The host name Herald gives in SMTP greetings and Message-Ids: the host of `HERALD_PUBLIC_URL`.
    var hostname: String? { URL(string: configuration.publicURL)?.host() }
}
