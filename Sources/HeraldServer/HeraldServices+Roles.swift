import Foundation
import HeraldAPI
import HeraldCore
import HeraldDelivery
import HeraldSMTP
import HeraldStore
import HeraldWebhooks
import Hummingbird
import Logging
import ServiceLifecycle

/// The roles: each function adds to the shared services what that role alone runs.
extension HeraldServices {
    /// The services of every configured role, in a fixed order. A missing setting a role needs is a
    /// ``HeraldConfiguration/Invalid``.
    public func services(for roles: Set<HeraldConfiguration.Role>) throws -> [any Service] {
        // First, so that it stops last: the process hands its shares back once the others have stopped.
        var services: [any Service] = [cluster()]
        if roles.contains(.api) { services.append(try api()) }
        if roles.contains(.scheduler) { services += scheduler() }
        if roles.contains(.smtp) { services += try smtp() }
        if roles.contains(.dispatcher) { services.append(dispatcher()) }
        if roles.contains(.grader) { services.append(grader()) }
        if !roles.isDisjoint(with: [.api, .smtp]), let listener = try tenantChangeListener() { services.append(TenantChangeService(listener: listener)) }
        return services
    }

    /// What the HTTP application needs; the admin token is required here, and only here.
    public func apiDependencies() throws(HeraldConfiguration.Invalid) -> APIDependencies {
        var dependencies = APIDependencies(database: database, tenants: tenants, identity: identity, domains: domains, verifier: verifier,
                        domainSettings: configuration.domainSettings, senders: senders, templates: templates, lists: lists,
                        sending: sending, batches: batches, accept: accept, unsubscribes: unsubscribes, stats: stats,
                        trackingLinks: trackingLinks, tracking: tracking, accountSettings: accountSettings, grades: grades,
                        webhooks: webhooks, webhookGuard: webhookGuard, bounceAddress: bounceAddress, unsubscribeLinks: unsubscribeLinks,
                        productLimits: configuration.limits, replyToKey: replyToKey, publicURL: configuration.publicURL, tokens: tokens,
                        keys: keys, registry: registry, adminToken: try configuration.requireAdminToken(),
                        trustedProxies: configuration.trustedProxies, rateLimits: rateLimits, now: now)
        dependencies.contentRules = contentRules
        dependencies.consoleKey = consoleKey
        return dependencies
    }

    /// `api`: the REST API, public pages and the compatibility endpoint on `HERALD_HTTP_HOST:HERALD_HTTP_PORT`.
    public func api() throws -> any Service {
        let application = try buildApplication(try apiDependencies(), host: configuration.httpHost, port: configuration.httpPort, logger: logger)
        logger.info("serving HTTP", metadata: ["url": "http://\(configuration.httpHost):\(configuration.httpPort)"])
        return application
    }

    /// Every process: its heartbeat in `herald_processes` and the renewal of its shares of the
    /// installation's limits.
    public func cluster() -> ClusterService {
        ClusterService(process: process, processes: processes, book: shareBook, metrics: ProcessMetrics(registry: registry), logger: logger)
    }

    /// The listener that keeps the process's tenant caches (principals, IP allowlists, SMTP password
    /// fingerprints) truthful, on its own direct connection; nil when the caches are off. The `api` and
    /// `smtp` roles run it (once per process).
    public func tenantChangeListener() throws -> TenantChangeListener? {
        let all: [(any TenantChangeObserver)?] = [tokens.auth.principals, ipAllowlists, passwordFingerprints]
        let caches = all.compactMap { $0 }
        guard !caches.isEmpty else { return nil }
        do { return try TenantChangeListener(caches: caches, url: configuration.directDatabaseURL, logger: logger) } catch {
            throw HeraldConfiguration.Invalid(description: "HERALD_DIRECT_DATABASE_URL: cannot set up TLS: \(error)")
        }
    }

    /// `scheduler` (`worker` names it on the rows it leases): delivery (claim, sign, send, record), batch expansion, the re-verification of domains and the history's partitions.
    public func scheduler(worker: String = workerName()) -> [any Service] {
        let metrics = DeliveryMetrics(registry: registry)
        var store = deliveries
        store.metrics = metrics
        // HERALD_DELIVERY_CONCURRENCY holds for the whole installation: each process keeps its share of a destination's connections.
        let connections = SharedConcurrencyLimit(name: "connections", limit: configuration.deliveryConcurrency, roles: ["scheduler"], book: shareBook)
        let pool = SMTPConnectionPool(maxPerDestination: configuration.deliveryConcurrency, observe: { metrics.connection(reused: $0) },
                                      sharedSlots: { await connections.slots($0, wanting: $1, holding: $2) },
                                      sharedUse: { connections.using($0, count: $1, holding: $2) })
        var delivery = DeliveryWorker(store: store, domains: domains, router: MailRouter(dns: dns, smarthost: configuration.smarthost),
                                      smtp: SMTPDelivery(hostname: hostname ?? "localhost", pool: pool), worker: worker)
        delivery.lease = configuration.deliveryLease
        delivery.domainRates = DomainRateLimits(rates: configuration.deliveryRates, book: shareBook)
        delivery.tracking = trackingLinks
        delivery.unsubscribeLinks = unsubscribeLinks
        if configuration.domainSettings.returnPathMX != nil { delivery.returnPath = bounceAddress }
        return [
            DomainRecheckService(verifier: verifier, logger: logger),
            HistoryService(history: HistoryStore(database: database), webhookRetentionDays: configuration.webhookRetentionDays,
                           statsRetentionDays: configuration.statsRetentionDays,
                           metrics: HistoryMetrics(registry: registry), logger: logger),
            DeliveryService(worker: delivery),
            TaskExpansionService(expander: TaskExpander(store: batches, unsubscribeLinks: unsubscribeLinks), logger: logger),
        ]
    }

    /// `smtp`: the inbound listener (unsubscribe mail, bounces and complaints, when any is configured) and the
    /// submission listeners (each only when its port is set).
    public func smtp() throws(HeraldConfiguration.Invalid) -> [any Service] {
        let metrics = SMTPListenerMetrics(registry: registry)
        var services: [any Service] = []
        let takesBounces = configuration.domainSettings.returnPathMX != nil
        if unsubscribeMailbox != nil || takesBounces || configuration.fblAddress != nil {
            var server = SMTPServer.Configuration(host: configuration.inboundHost, port: configuration.inboundPort,
                                                  session: .init(hostname: hostname ?? unsubscribeMailbox?.domain ?? "localhost", maxMessageSize: 256 * 1024))
            try loadTLS(&server)
            // Complaints name their message by its return path (when bounces are taken) or its X-Herald-Message-Id.
            var receiver = InboundMailReceiver(mailbox: unsubscribeMailbox, unsubscribes: unsubscribes,
                                               bounces: takesBounces ? bounceAddress : nil,
                                               deliveries: takesBounces || configuration.fblAddress != nil ? deliveries : nil,
                                               feedbackAddress: configuration.fblAddress)
            receiver.metrics = metrics
            services.append(SMTPListenerService(configuration: server, delegate: receiver, logger: logger))
        }
        var receiver = SubmissionReceiver(senders: senders, accept: accept,
                                          authLimiter: rateLimits.smtpAddress, logger: logger)
        receiver.metrics = metrics
        receiver.passwordFingerprints = passwordFingerprints
        receiver.userAuthLimiter = rateLimits.smtpUser
        for (port, implicit) in [(configuration.smtpPort, false), (configuration.smtpsPort, true)] {
            guard let port else { continue }
            // RCPTs past the installation's recipientsPerSend get 452 at once (a tenant's own lower limit is checked
            // when the message is accepted; a tenant's higher one applies to the REST and compatibility sends).
            var session = SMTPServerStateMachine.Settings(hostname: hostname ?? "localhost", maxMessageSize: configuration.smtpMaxSize,
                                                          maxRecipients: configuration.limits.recipientsPerSend)
            session.authAvailable = true
            session.requireAuth = true
            session.authRequiresTLS = !configuration.smtpAllowInsecureAuth
            var server = SMTPServer.Configuration(host: configuration.smtpHost, port: port, session: session)
            try loadTLS(&server)
            server.implicitTLS = implicit
            // An application server may hold many sessions at once (the inbound listener keeps 20 per address).
            server.maxConnectionsPerAddress = 200
            // …but only a few of them before AUTH, so that a few addresses cannot take every connection.
            server.maxUnauthenticatedPerAddress = configuration.smtpMaxUnauthenticated
            services.append(SMTPListenerService(configuration: server, delegate: receiver, logger: logger))
        }
        return services
    }

    /// `dispatcher` (`worker` names it on the rows it leases): webhook deliveries, signed, retried and logged.
    public func dispatcher(worker: String = workerName()) -> any Service {
        var settings = WebhookDispatcher.Settings()
        settings.timeout = configuration.webhookTimeout
        settings.retry = configuration.webhookRetry
        settings.perEndpoint = configuration.webhookConcurrency
        settings.lease = configuration.deliveryLease
        return WebhookDispatcher(store: webhooks, guardian: webhookGuard, settings: settings, worker: worker,
                                 metrics: WebhookMetrics(registry: registry), logger: logger)
    }

    /// `grader`: credit-grade evaluation every `HERALD_GRADE_INTERVAL` seconds.
    public func grader() -> any Service {
        var store = grades
        store.metrics = GradeMetrics(registry: registry)
        return GradeEvaluationService(store: store, interval: configuration.gradeInterval, logger: logger)
    }

    /// The certificate of the SMTP listeners (`HERALD_SMTP_TLS_CERT` / `HERALD_SMTP_TLS_KEY`), when configured.
    private func loadTLS(_ server: inout SMTPServer.Configuration) throws(HeraldConfiguration.Invalid) {
        guard let paths = configuration.smtpTLS else { return }
        do { try server.loadTLS(certificatePath: paths.certificate, keyPath: paths.key) } catch {
            throw HeraldConfiguration.Invalid(description: "HERALD_SMTP_TLS_CERT / HERALD_SMTP_TLS_KEY: \(error)")
        }
    }
}

/// This process's name on the rows it leases: host, process id and a random part (containers all run as
/// process 1, and a restarted process must not take its predecessor's leases for its own).
public func workerName() -> String {
    "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)-\(String(UInt32.random(in: 0...UInt32.max), radix: 36))"
}
