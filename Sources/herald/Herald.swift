import ArgumentParser
import Configuration
import Foundation
import HeraldAPI
import HeraldCore
import HeraldDNS
import HeraldDelivery
import HeraldSMTP
import HeraldStore
import HeraldWebhooks
import Hummingbird
import Logging
import PostgresNIO
import Prometheus
import ServiceLifecycle
import UnixSignals

@main
struct Herald: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "herald",
        abstract: "Herald: a self-hostable, multi-tenant email sending service.",
        subcommands: [Serve.self, Migrate.self, Admin.self]
    )
}

/// Shared start-up: configuration (exit 2 with one line when invalid), logger, database pool.
enum Startup {
    static func configuration() throws -> HeraldConfiguration {
        do {
            return try HeraldConfiguration(reader: ConfigReader(provider: EnvironmentVariablesProvider()))
        } catch {
            fail(error.description)
        }
    }

    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("herald: \(message)\n".utf8))
        Foundation.exit(2)
    }

    static func logger(_ label: String) -> Logger {
        var logger = Logger(label: label)
        logger.logLevel = ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        return logger
    }

    /// Runs `body` with a live pool, shutting the pool down afterwards.
    static func withDatabase<R: Sendable>(_ configuration: HeraldConfiguration, logger: Logger,
                                          _ body: @escaping @Sendable (Database) async throws -> R) async throws -> R {
        let client = PostgresClient(configuration: try configuration.databaseURL.clientConfiguration(maximumConnections: 4), backgroundLogger: logger)
        return try await withThrowingTaskGroup(of: R?.self) { group in
            group.addTask { await client.run(); return nil }
            group.addTask { try await body(Database(client: client, logger: logger)) }
            defer { group.cancelAll() }
            while let result = try await group.next() {
                if let value = result { return value }
            }
            throw CancellationError()
        }
    }

    static func migrations(_ configuration: HeraldConfiguration) throws -> [Migration] {
        do { return try Migration.load(from: configuration.migrationsDirectory) } catch { fail(error.message) }
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve the API (and, as they arrive, the other roles) until SIGTERM/SIGINT.")

    func run() async throws {
        let configuration = try Startup.configuration()
        let logger = Startup.logger("herald")
        let masterKey: MasterKey
        let adminToken: String
        do {
            masterKey = try configuration.requireMasterKey()
            adminToken = try configuration.requireAdminToken()
        } catch { Startup.fail(error.description) }
        let client = PostgresClient(configuration: try configuration.databaseURL.clientConfiguration(maximumConnections: configuration.databasePoolSize),
                                    backgroundLogger: logger)
        let registry = PrometheusCollectorRegistry()
        let database = Database(client: client, logger: logger,
                                metrics: DatabaseMetrics(registry: registry, poolSize: configuration.databasePoolSize))
        let mailbox: UnsubscribeMailbox?
        do {
            mailbox = try configuration.unsubscribeAddress.map { address throws(HeraldError) in try UnsubscribeMailbox(address: address, masterKey: masterKey) }
        } catch { Startup.fail("HERALD_UNSUBSCRIBE_ADDRESS: \(error.message)") }
        var dependencies = APIDependencies(database: database, masterKey: masterKey, adminToken: adminToken,
                                           tokenLifetime: configuration.tokenLifetime, trustedProxies: configuration.trustedProxies,
                                           authRatePerSecond: configuration.authRatePerSecond,
                                           tenantRatePerSecond: configuration.tenantRatePerSecond, registry: registry,
                                           dns: DNSClient(server: configuration.dnsServer, logger: logger), publicURL: configuration.publicURL, systemFrom: configuration.systemFrom,
                                           sensitiveWords: configuration.sensitiveWords, limits: configuration.limits,
                                           domainSettings: configuration.domainSettings, domainRecheck: configuration.domainRecheckInterval,
                                           allowPrivateWebhooks: configuration.webhookAllowPrivate, linkRatePerSecond: configuration.linkRatePerSecond,
                                           unsubscribeMailbox: mailbox, senderRatePerSecond: configuration.senderRatePerSecond)
        dependencies.senders.confirmationLimit = ReplyToConfirmationLimit(perSender: configuration.replyToConfirmationsPerHour,
                                                                          perTenant: configuration.replyToConfirmationsPerHour)
        var services: [any Service] = [client]
        if configuration.roles.contains(.api) {
            services.append(try buildApplication(dependencies, host: configuration.httpHost, port: configuration.httpPort, logger: logger))
            logger.info("serving HTTP", metadata: ["url": "http://\(configuration.httpHost):\(configuration.httpPort)"])
        }
        if configuration.roles.contains(.scheduler) {
            services.append(DomainRecheckService(verifier: dependencies.verifier, logger: logger))
            let dns = DNSClient(server: configuration.dnsServer, logger: logger)
            let hostname = URL(string: configuration.publicURL)?.host() ?? "localhost"
            let deliveryMetrics = DeliveryMetrics(registry: registry)
            var deliveryStore = DeliveryStore(database: database)
            deliveryStore.metrics = deliveryMetrics
            let pool = SMTPConnectionPool(maxPerDestination: configuration.deliveryConcurrency) { deliveryMetrics.connection(reused: $0) }
            var worker = DeliveryWorker(store: deliveryStore, domains: dependencies.domains,
                                        router: MailRouter(dns: dns, smarthost: configuration.smarthost),
                                        smtp: SMTPDelivery(hostname: hostname, pool: pool),
                                        worker: workerName())
            worker.lease = configuration.deliveryLease
            worker.domainRates = DomainRateLimits(rates: configuration.deliveryRates)
            worker.tracking = dependencies.trackingLinks
            worker.unsubscribeLinks = dependencies.unsubscribeLinks
            if configuration.domainSettings.returnPathMX != nil { worker.returnPath = dependencies.bounceAddress }
            services.append(DeliveryService(worker: worker))
            services.append(TaskExpansionService(expander: TaskExpander(store: BatchStore(database: database), unsubscribeLinks: dependencies.unsubscribeLinks),
                                                 logger: logger))
        }
        let smtpMetrics = configuration.roles.contains(.smtp) ? SMTPListenerMetrics(registry: registry) : nil
        let takesBounces = configuration.domainSettings.returnPathMX != nil
        if configuration.roles.contains(.smtp), mailbox != nil || takesBounces {
            let hostname = URL(string: configuration.publicURL)?.host() ?? mailbox?.domain ?? "localhost"
            var server = SMTPServer.Configuration(host: configuration.inboundHost, port: configuration.inboundPort,
                                                  session: .init(hostname: hostname, maxMessageSize: 256 * 1024))
            if let paths = configuration.smtpTLS {
                do { try server.loadTLS(certificatePath: paths.certificate, keyPath: paths.key) } catch {
                    Startup.fail("HERALD_SMTP_TLS_CERT / HERALD_SMTP_TLS_KEY: \(error)")
                }
            }
            var receiver = InboundMailReceiver(mailbox: mailbox, unsubscribes: dependencies.unsubscribes,
                                               bounces: takesBounces ? dependencies.bounceAddress : nil,
                                               deliveries: takesBounces ? DeliveryStore(database: database) : nil)
            receiver.metrics = smtpMetrics
            services.append(SMTPListenerService(configuration: server, delegate: receiver, logger: logger))
        }
        if configuration.roles.contains(.smtp) {
            let hostname = URL(string: configuration.publicURL)?.host() ?? "localhost"
            var receiver = SubmissionReceiver(senders: dependencies.senders, identity: dependencies.identity, acceptBatcher: dependencies.acceptBatcher,
                                              authLimiter: TokenBucketLimiter(capacity: configuration.authRatePerSecond * 3,
                                                                              refillPerSecond: Double(configuration.authRatePerSecond)),
                                              logger: logger)
            receiver.metrics = smtpMetrics
            receiver.senderRate = dependencies.senderRate
            receiver.userAuthLimiter = TokenBucketLimiter(capacity: configuration.smtpAuthUserFailures,
                                                          refillPerSecond: Double(configuration.smtpAuthUserFailures) / Double(configuration.smtpAuthUserWindow))
            for (port, implicit) in [(configuration.smtpPort, false), (configuration.smtpsPort, true)] {
                guard let port else { continue }
                var session = SMTPServerStateMachine.Settings(hostname: hostname, maxMessageSize: configuration.smtpMaxSize)
                session.authAvailable = true
                session.requireAuth = true
                session.authRequiresTLS = !configuration.smtpAllowInsecureAuth
                var server = SMTPServer.Configuration(host: configuration.smtpHost, port: port, session: session)
                if let paths = configuration.smtpTLS {
                    do { try server.loadTLS(certificatePath: paths.certificate, keyPath: paths.key) } catch {
                        Startup.fail("HERALD_SMTP_TLS_CERT / HERALD_SMTP_TLS_KEY: \(error)")
                    }
                }
                server.implicitTLS = implicit
                // An application server may hold many sessions at once (the inbound listener keeps 20 per address).
                server.maxConnectionsPerAddress = 200
                // …but only a few of them before AUTH, so that a few addresses cannot take every connection.
                server.maxUnauthenticatedPerAddress = configuration.smtpMaxUnauthenticated
                services.append(SMTPListenerService(configuration: server, delegate: receiver, logger: logger))
            }
        }
        if configuration.roles.contains(.dispatcher) {
            var settings = WebhookDispatcher.Settings()
            settings.timeout = configuration.webhookTimeout
            settings.retry = configuration.webhookRetry
            settings.perEndpoint = configuration.webhookConcurrency
            settings.retention = TimeInterval(configuration.webhookRetentionDays) * 86_400
            settings.lease = configuration.deliveryLease
            services.append(WebhookDispatcher(store: dependencies.webhooks, guardian: dependencies.webhookGuard, settings: settings, worker: workerName(),
                                              metrics: WebhookMetrics(registry: registry), logger: logger))
        }
        if configuration.roles.contains(.grader) {
            var grades = GradeStore(database: database)
            grades.metrics = GradeMetrics(registry: registry)
            services.append(GradeEvaluationService(store: grades, interval: configuration.gradeInterval, logger: logger))
        }
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply Migrations/*.sql in order, recording what ran.")

    func run() async throws {
        let configuration = try Startup.configuration()
        let logger = Startup.logger("herald.migrate")
        let migrations = try Startup.migrations(configuration)
        do {
            let applied = try await Startup.withDatabase(configuration, logger: logger) { database in
                try await Migrator(migrations: migrations, logger: logger).migrate(client: database.client)
            }
            print(applied.isEmpty ? "herald: database is up to date (\(migrations.count) migrations)" : "herald: applied \(applied.joined(separator: ", "))")
        } catch let error as HeraldError {
            Startup.fail(error.message)
        }
    }
}

struct Admin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Operator actions on the local database.",
        subcommands: [CreateTenant.self, ListTenants.self, GetTenant.self, Freeze.self, Unfreeze.self, Ban.self, RotateSigningKey.self,
                      ListTemplates.self, ApproveTemplate.self, RejectTemplate.self, SetGrade.self, EvaluateGrades.self, SimulateGrades.self]
    )

    /// What operator actions work with.
    struct Stores: Sendable {
        var tenants: TenantStore
        var keys: SigningKeyRing
        var templates: TemplateStore
        var grades: GradeStore
    }

    /// Runs an operator action with the stores, printing its JSON result.
    static func withStores<R: Encodable & Sendable>(_ body: @escaping @Sendable (Stores) async throws -> R) async throws {
        let configuration = try Startup.configuration()
        let masterKey: MasterKey
        do { masterKey = try configuration.requireMasterKey() } catch { Startup.fail(error.description) }
        var logger = Startup.logger("herald.admin")
        logger.logLevel = .warning
        do {
            let result = try await Startup.withDatabase(configuration, logger: logger) { database in
                let secrets = SecretBox(masterKey: masterKey)
                let keys = SigningKeyRing(database: database, secrets: secrets, publishAfterRetirement: configuration.tokenLifetime + .seconds(60))
                return try await body(Stores(tenants: TenantStore(database: database, secrets: secrets), keys: keys,
                                             templates: TemplateStore(database: database), grades: GradeStore(database: database)))
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            encoder.dateEncodingStrategy = .iso8601
            print(String(decoding: try encoder.encode(result), as: UTF8.self))
        } catch let error as HeraldError {
            Startup.fail("\(error.code): \(error.message)")
        }
    }

    struct CreatedTenantOutput: Encodable, Sendable {
        var tenantId: UUID
        var name: String
        var accessKeyId: String
        var accessKeySecret: String
    }

    struct CreateTenant: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "create-tenant", abstract: "Create a tenant; prints its root AccessKey as JSON.")
        @Option(help: "The tenant's name.") var name: String
        @Option(help: "enterprise or personal.") var kind: String = "enterprise"

        func run() async throws {
            guard let kind = TenantKind(rawValue: kind) else { Startup.fail("--kind must be enterprise or personal") }
            let name = self.name
            try await Admin.withStores { stores in
                let created = try await stores.tenants.create(name: name, kind: kind, actor: .cli)
                return CreatedTenantOutput(tenantId: created.tenant.id, name: created.tenant.name,
                                           accessKeyId: created.accessKeyID, accessKeySecret: created.accessKeySecret)
            }
        }
    }

    struct ListTenants: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list-tenants", abstract: "List tenants.")
        @Option(help: "Only tenants with this status.") var status: String?

        func run() async throws {
            let status = try self.status.map { text throws -> TenantStatus in
                guard let value = TenantStatus(rawValue: text) else { Startup.fail("--status must be active, frozen or banned") }
                return value
            }
            try await Admin.withStores { stores in try await stores.tenants.list(status: status, limit: 100, after: nil) }
        }
    }

    struct TenantID: ParsableArguments {
        @Option(name: .customLong("tenant"), help: "Tenant id.") var tenant: String
        var id: UUID {
            guard let id = UUID(uuidString: tenant) else { Startup.fail("--tenant must be a tenant id (UUID)") }
            return id
        }
    }

    struct GetTenant: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "get-tenant", abstract: "Show a tenant.")
        @OptionGroup var tenant: TenantID
        func run() async throws {
            let id = tenant.id
            try await Admin.withStores { stores in
                guard let tenant = try await stores.tenants.get(id) else { throw HeraldError.notFound("tenant") }
                return tenant
            }
        }
    }

    static func change(_ change: TenantStore.StatusChange, _ id: UUID, reason: String?, force: Bool = false) async throws {
        try await withStores { stores in try await stores.tenants.change(id, change, reason: reason, actor: .cli, force: force) }
    }

    struct Freeze: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Freeze a tenant (no sending; management works).")
        @OptionGroup var tenant: TenantID
        @Option(help: "Why.") var reason: String?
        func run() async throws { try await Admin.change(.freeze, tenant.id, reason: reason) }
    }

    struct SetGrade: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "set-grade",
                                                        abstract: "Set a tenant's credit grade (by hand at most once a day per tenant).")
        @OptionGroup var tenant: TenantID
        @Option(help: "The grade, 1-16.") var grade: Int
        @Option(help: "Why.") var reason: String?
        func run() async throws {
            let id = tenant.id, grade = self.grade, reason = self.reason
            try await Admin.withStores { stores in
                try await stores.grades.setGrade(tenantID: id, grade: grade, reason: reason, actor: .cli, now: Date())
                return try await stores.tenants.get(id)
            }
        }
    }

    struct Unfreeze: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Unfreeze a tenant (after a second freeze only with --force).")
        @OptionGroup var tenant: TenantID
        @Option(help: "Why.") var reason: String?
        @Flag(help: "Restore a tenant whose second freeze is otherwise final.") var force = false
        func run() async throws { try await Admin.change(.unfreeze, tenant.id, reason: reason, force: force) }
    }

    struct Ban: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Ban a tenant (final: no sending, no management).")
        @OptionGroup var tenant: TenantID
        @Option(help: "Why.") var reason: String?
        func run() async throws { try await Admin.change(.ban, tenant.id, reason: reason) }
    }

    struct RotatedKey: Encodable, Sendable { var kid: String }

    struct RotateSigningKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rotate-signing-key",
                                                        abstract: "Add a new token signing key; the old one stays in the JWKS until its last token expires.")
        func run() async throws {
            try await Admin.withStores { stores in RotatedKey(kid: try await stores.keys.rotate()) }
        }
    }

    /// One full credit-grade pass now, as the grader role runs it every HERALD_GRADE_INTERVAL seconds.
    struct EvaluateGrades: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "evaluate-grades",
                                                        abstract: "Evaluate every tenant whose figures changed today, once, and print the counts.")
        @Option(help: "Tenants per transaction.") var batch = 2_000

        struct Result: Encodable, Sendable {
            var evaluated: Int
            var promoted: Int
            var demoted: Int
            var frozen: Int
            var seconds: Double
        }

        func run() async throws {
            let batch = self.batch
            try await Admin.withStores { stores in
                let started = ContinuousClock.now
                var result = Result(evaluated: 0, promoted: 0, demoted: 0, frozen: 0, seconds: 0)
                do {
                    let (evaluated, changes) = try await stores.grades.evaluatePass(now: Date(), batch: batch)
                    result.evaluated = evaluated
                    for change in changes {
                        switch change.decision {
                        case .stay: break
                        case .promote: result.promoted += 1
                        case .demote: result.demoted += 1
                        case .freeze: result.frozen += 1
                        }
                    }
                }
                let elapsed = ContinuousClock.now - started
                result.seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                return result
            }
        }
    }

    /// Plays days of a sending profile through the grade rules (no database): what an operator runs
    /// before changing thresholds.
    struct SimulateGrades: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "simulate-grades",
            abstract: "Print the credit-grade trajectory of a sending profile (good, poor, spiky, dying) day by day.")
        @Option(help: "good, poor, spiky or dying") var profile = "good"
        @Option(help: "days to play") var days = 30
        @Option(help: "the grade ceiling (9-16)") var ceiling = 10
        @Option(help: "the starting grade") var start = 2

        func run() throws {
            guard let plan = GradeSimulation.profiles[profile] else {
                Startup.fail("unknown profile \(profile); use one of \(GradeSimulation.profiles.keys.sorted().joined(separator: ", "))")
            }
            guard (1...3_650).contains(days), (9...16).contains(ceiling), (1...16).contains(start) else {
                Startup.fail("--days must be 1-3650, --ceiling 9-16, --start 1-16")
            }
            var simulation = GradeSimulation()
            simulation.ceiling = ceiling
            simulation.startGrade = start
            print("day  grade  status  sent       events")
            for day in simulation.run(plan, days: days) {
                let sent = String(day.sent).padding(toLength: 10, withPad: " ", startingAt: 0)
                print("\(String(day.day + 1).padding(toLength: 4, withPad: " ", startingAt: 0)) \(String(day.grade).padding(toLength: 6, withPad: " ", startingAt: 0)) "
                      + "\(day.frozen ? "frozen" : "active")  \(sent) \(day.events.joined(separator: "; "))")
            }
        }
    }

    struct ListTemplates: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list-templates", abstract: "Templates waiting for review, oldest first.")
        func run() async throws {
            try await Admin.withStores { stores in try await stores.templates.pending(limit: 100) }
        }
    }

    struct TemplateID: ParsableArguments {
        @Option(name: .customLong("template"), help: "Template id.") var template: String
        var id: UUID {
            guard let id = UUID(uuidString: template) else { Startup.fail("--template must be a template id (UUID)") }
            return id
        }
    }

    struct ApproveTemplate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "approve-template", abstract: "Approve a template waiting for review.")
        @OptionGroup var template: TemplateID
        func run() async throws {
            let id = template.id
            try await Admin.withStores { stores in try await stores.templates.review(id: id, approve: true, reason: nil, actor: .cli, now: Date()) }
        }
    }

    struct RejectTemplate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "reject-template", abstract: "Reject a template waiting for review.")
        @OptionGroup var template: TemplateID
        @Option(help: "Why (the tenant sees it).") var reason: String
        func run() async throws {
            let id = template.id, reason = self.reason
            try await Admin.withStores { stores in try await stores.templates.review(id: id, approve: false, reason: reason, actor: .cli, now: Date()) }
        }
    }
}

/// This process's name on the rows it leases: host, process id and a random part (containers all run as
/// process 1, and a restarted process must not take its predecessor's leases for its own).
func workerName() -> String {
    "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)-\(String(UInt32.random(in: 0...UInt32.max), radix: 36))"
}
