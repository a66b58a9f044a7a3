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
/// hand.
struct APIHandler: APIProtocol {
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
    let keyLimiter: TokenBucketLimiter
    /// Token endpoint: attempts per client address.
    let ipLimiter: TokenBucketLimiter
    /// Public link pages (`/u/`): requests per client address.
    let linkLimiter: TokenBucketLimiter
    let now: @Sendable () -> Date

    /// The calling tenant and who to write into the audit log (tenant operations only).
    func caller() throws(HeraldError) -> (tenant: UUID, actor: AuditActor) {
        let context = try RequestScope.current()
        return (try context.requirePrincipal().tenantID, context.auditActor)
    }

    /// The served copy of the contract, read once.
    static let openAPIDocument: [UInt8]? = Bundle.module.url(forResource: "Resources/openapi", withExtension: "yaml")
        .flatMap { try? Data(contentsOf: $0) }.map { Array($0) }
}
