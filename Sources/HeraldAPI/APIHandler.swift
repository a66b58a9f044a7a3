import Crypto
import Foundation
import HeraldCore
import HeraldDelivery
import HeraldStore
import HeraldWebhooks
import OpenAPIRuntime
import Prometheus

/// Herald's implementation of the operations of OpenAPI/openapi.yaml (the generated `APIProtocol`).
/// Authentication and authorization happen before a handler runs (``AccessMiddleware``); a handler reads
/// the caller from ``RequestScope`` and throws ``HeraldError`` for every refusal, which
/// ``ProblemMiddleware`` renders as problem+json — the error responses of the contract are never built by
/// hand. A class: the generated server copies its handler into every request, and this one holds ~35 stores.
final class APIHandler: APIProtocol, Sendable {
    let tokens: TokenService
    let keys: SigningKeyRing
    let database: Database
    let tenants: TenantStore
    let identity: IdentityStore
    let domains: DomainStore
    let verifier: DomainVerifier
    let domainSettings: SendingDomain.Settings
    let senders: SenderStore
    let templates: TemplateStore
    let lists: ListStore
    let sending: SendStore
    let batches: BatchStore
    /// The one accept road of every send.
    let accept: AcceptService
    let webhooks: WebhookStore
    let webhookGuard: WebhookGuard
    let unsubscribes: UnsubscribeStore
    let stats: StatsStore
    let trackingLinks: TrackingLinks
    let tracking: TrackingStore
    let accountSettings: AccountSettingsStore
    /// Signs and checks unsubscribe tokens.
    let unsubscribeLinks: UnsubscribeLinks
    /// The installation's product limits.
    let productLimits: ProductLimits
    /// Signs reply-to confirmation links.
    let replyToKey: SymmetricKey
    /// Base of public links (`HERALD_PUBLIC_URL`).
    let publicURL: String
    let registry: PrometheusCollectorRegistry
    /// Token endpoint: attempts per AccessKey id.
    let keyLimiter: any RateLimiting
    /// Token endpoint: attempts per client address.
    let ipLimiter: any RateLimiting
    /// Public link pages (`/u/`): requests per client address.
    let linkLimiter: any RateLimiting
    /// The installation's processes (operator).
    let processes: ProcessStore
    /// The sensitive words in force (the operator's content-rules routes).
    let contentRules: ContentRulesStore?
    /// Credit grades and the account (with the installation's quota table and free allowance).
    let grades: GradeStore
    let now: @Sendable () -> Date

    init(tokens: TokenService, keys: SigningKeyRing, database: Database, tenants: TenantStore, identity: IdentityStore,
         domains: DomainStore, verifier: DomainVerifier, domainSettings: SendingDomain.Settings, senders: SenderStore,
         templates: TemplateStore, lists: ListStore, sending: SendStore, batches: BatchStore, accept: AcceptService,
         webhooks: WebhookStore, webhookGuard: WebhookGuard, unsubscribes: UnsubscribeStore, stats: StatsStore,
         trackingLinks: TrackingLinks, tracking: TrackingStore, accountSettings: AccountSettingsStore,
         unsubscribeLinks: UnsubscribeLinks, productLimits: ProductLimits, replyToKey: SymmetricKey, publicURL: String,
         registry: PrometheusCollectorRegistry, keyLimiter: any RateLimiting, ipLimiter: any RateLimiting,
         linkLimiter: any RateLimiting, contentRules: ContentRulesStore? = nil, grades: GradeStore? = nil,
         now: @escaping @Sendable () -> Date) {
        self.contentRules = contentRules
        self.grades = grades ?? GradeStore(database: database)
        self.tokens = tokens
        self.keys = keys
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
        self.webhooks = webhooks
        self.webhookGuard = webhookGuard
        self.unsubscribes = unsubscribes
        self.stats = stats
        self.trackingLinks = trackingLinks
        self.tracking = tracking
        self.accountSettings = accountSettings
        self.unsubscribeLinks = unsubscribeLinks
        self.productLimits = productLimits
        self.replyToKey = replyToKey
        self.publicURL = publicURL
        self.registry = registry
        self.keyLimiter = keyLimiter
        self.ipLimiter = ipLimiter
        self.linkLimiter = linkLimiter
        processes = ProcessStore(database: database)
        self.now = now
    }

    /// The calling tenant and who to write into the audit log (tenant operations only).
    func caller() throws(HeraldError) -> (tenant: UUID, actor: AuditActor) {
        let context = try RequestScope.current()
        return (try context.requirePrincipal().tenantID, context.auditActor)
    }

    /// The served copy of the contract, read once.
    static let openAPIDocument: [UInt8]? = Bundle.module.url(forResource: "Resources/openapi", withExtension: "yaml")
        .flatMap { try? Data(contentsOf: $0) }.map { Array($0) }
}
