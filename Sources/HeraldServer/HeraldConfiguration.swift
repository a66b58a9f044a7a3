import Configuration
import Foundation
import HeraldCore
import HeraldDNS
import HeraldStore
import Logging
import NIOCore

/// Herald's settings, read from the environment through swift-configuration and validated at start:
/// a missing or malformed value is one clear error line, never a crash.
public struct HeraldConfiguration: Sendable {
    /// A configuration problem, printed as one line by the command.
    public struct Invalid: Error, CustomStringConvertible, Sendable {
        /// What is wrong and how to fix it.
        public var description: String
    }

    /// Which parts of Herald a process runs.
    public enum Role: String, Sendable, CaseIterable {
        /// REST API, public pages, compatibility endpoint.
        case api
        /// SMTP submission server.
        case smtp
        /// Delivery scheduler.
        case scheduler
        /// Webhook dispatcher.
        case dispatcher
        /// Credit-grade evaluation.
        case grader
    }

    /// `DATABASE_URL`.
    public var databaseURL: DatabaseURL
    /// `HERALD_DIRECT_DATABASE_URL` (`DATABASE_URL`): the same database without a pooler in between, for
    /// the sessions that must last (the principal cache's `LISTEN`, `herald migrate`'s lock) when `DATABASE_URL`
    /// is a pgbouncer in transaction mode (`pgbouncer=true`, which then requires it).
    public var directDatabaseURL: DatabaseURL
    /// `HERALD_PRINCIPAL_CACHE_TTL` seconds (60; 0 turns the cache off): the longest the `api` role serves a
    /// caller's user, keys, policies and IP protection from memory. Every change drops them at once anyway
    /// (LISTEN/NOTIFY); this bounds what a lost notification could cost.
    public var principalCacheLifetime: Duration
    /// `LOG_LEVEL`: trace, debug, info, notice, warning, error or critical (info).
    public var logLevel: Logger.Level
    /// `HERALD_HTTP_PORT` (8080).
    public var httpPort: Int
    /// `HERALD_HTTP_HOST` (0.0.0.0).
    public var httpHost: String
    /// `HERALD_PUBLIC_URL` (base of links; defaults to http://127.0.0.1:<port>).
    public var publicURL: String
    /// `HERALD_MASTER_KEY`, required by anything that touches secrets.
    public var masterKey: MasterKey?
    /// `HERALD_ADMIN_TOKEN`, required by the API role.
    public var adminToken: String?
    /// `HERALD_ROLES` (all by default).
    public var roles: Set<Role>
    /// `HERALD_TOKEN_TTL` seconds (900).
    public var tokenLifetime: Duration
    /// `HERALD_TRUSTED_PROXIES`: CIDRs whose X-Forwarded-For is believed (none by default).
    public var trustedProxies: [IPNetwork]
    /// `HERALD_MIGRATIONS_DIR` (./Migrations).
    public var migrationsDirectory: String
    /// `HERALD_DB_POOL_SIZE` (20).
    public var databasePoolSize: Int
    /// `HERALD_AUTH_RATE` token requests per second per key and per client IP (10, burst 3×).
    public var authRatePerSecond: Int
    /// `HERALD_LINK_RATE`: public link requests (`/u/`) per second per client address and process (20, burst 3×).
    public var linkRatePerSecond: Int
    /// `HERALD_SENDER_RATE`: sends per second per sender address and process (100, burst 2×), on every send path.
    public var senderRatePerSecond: Int
    /// `HERALD_TENANT_RATE` API requests per second per tenant and process (500, burst 2×).
    public var tenantRatePerSecond: Int
    /// `HERALD_DNS_SERVER`: the resolver for MX lookups and domain verification (default: the first
    /// nameserver of /etc/resolv.conf).
    public var dnsServer: SocketAddress
    /// `HERALD_SPF_INCLUDE` (default `_spf.` + the host of `HERALD_PUBLIC_URL`) and `HERALD_RETURN_PATH_MX`
    /// (optional): what the DNS records of sending domains name.
    public var domainSettings: SendingDomain.Settings
    /// `HERALD_SENSITIVE_WORDS`: comma-separated words that get a template submission rejected.
    public var sensitiveWords: [String]
    /// `HERALD_SMARTHOST` (`host:port`): deliver all mail there instead of looking up MX.
    public var smarthost: (host: String, port: Int)?
    /// `HERALD_SYSTEM_FROM`: the sender of Herald's own mail (reply-to confirmations); default
    /// `no-reply@` + the host of `HERALD_PUBLIC_URL`.
    public var systemFrom: MailAddress?
    /// `HERALD_REPLY_TO_CONFIRMATIONS`: reply-to confirmation mails per hour, per sender address and per tenant (5).
    public var replyToConfirmationsPerHour: Int
    /// `HERALD_LIMITS` (`domains=5,senders=10,…`) over SPEC's defaults: the installation's product limits.
    public var limits: ProductLimits
    /// `HERALD_DOMAIN_RECHECK`: seconds between re-verifications of a verified domain (default one day).
    public var domainRecheckInterval: Duration
    /// `HERALD_DELIVERY_LEASE`: seconds a delivery worker holds the messages it claimed (renewed while
    /// they are on the wire); a crashed worker's messages are tried again after at most this long. The
    /// webhook dispatcher's claims last as long.
    public var deliveryLease: Duration
    /// `HERALD_GRADE_INTERVAL`: seconds between credit-grade evaluations (grader role).
    public var gradeInterval: Duration
    /// `HERALD_DELIVERY_CONCURRENCY`: SMTP connections to one destination host at once, per process.
    public var deliveryConcurrency: Int
    /// `HERALD_DELIVERY_RATES`: messages per second per recipient domain, per process
    /// (`gmail.com=20,*=100`; none by default).
    public var deliveryRates: [String: Double]
    /// `HERALD_WEBHOOK_ALLOW_PRIVATE=1`: webhooks may go to loopback/private addresses, and over http.
    public var webhookAllowPrivate: Bool
    /// `HERALD_WEBHOOK_TIMEOUT`: seconds a webhook attempt waits for its answer (default 10).
    public var webhookTimeout: Duration
    /// `HERALD_WEBHOOK_RETRY_SCHEDULE`: seconds between attempts (default 5,300,1800,7200,18000,36000,36000).
    public var webhookRetry: WebhookRetryPolicy
    /// `HERALD_WEBHOOK_CONCURRENCY`: requests in flight to one endpoint at once (default 16).
    public var webhookConcurrency: Int
    /// `HERALD_WEBHOOK_RETENTION_DAYS`: finished deliveries are kept this long (default 30).
    public var webhookRetentionDays: Int
    /// `HERALD_STATS_RETENTION_DAYS`: days of sending statistics (and the grades' daily figures) kept (default 400);
    /// a week of days is dropped at a time once its last day is this old.
    public var statsRetentionDays: Int
    /// `HERALD_UNSUBSCRIBE_ADDRESS` (e.g. `unsubscribe@mail.example.com`, none by default): List-Unsubscribe
    /// gets a `mailto:` at this address (`<local>+<token>@<domain>`) next to the https link, and the `smtp`
    /// role receives that mail on the inbound listener. The domain's MX must point at that listener.
    public var unsubscribeAddress: String?
    /// `HERALD_GRADE_QUOTAS`: the daily quota of grades 1 to 16 (SPEC §5's table by default); the operator may give
    /// a tenant its own (`dailyQuotas` of `PUT /admin/v1/tenants/{id}/limits`).
    public var gradeQuotas: QuotaTable
    /// `HERALD_GRADE_RULES`: the grade thresholds and the promotions a day, as `name=value,…` over SPEC's defaults.
    public var gradeRules: GradeThresholds
    /// `HERALD_FREE_ALLOWANCE`: the messages of a day that are free (200).
    public var freeAllowance: Int
    /// `HERALD_INVALID_AFTER_HARD_BOUNCES`: hard bounces that list an address as invalid (2).
    public var invalidAfterHardBounces: Int
    /// `HERALD_INITIAL_GRADE`: the grade of a new tenant when the operator names none (2).
    public var initialGrade: Int
    /// `HERALD_FBL_ADDRESS` (e.g. `fbl@mx.example.com`, none by default): the address mailbox providers' feedback
    /// loops send their ARF complaint reports to; the `smtp` role receives that mail on the inbound listener.
    /// Reports that come back to a message's VERP return path are taken without it.
    public var fblAddress: String?
    /// `HERALD_INBOUND_HOST` (0.0.0.0) and `HERALD_INBOUND_PORT` (25): the inbound SMTP listener (`smtp` role,
    /// only with `HERALD_UNSUBSCRIBE_ADDRESS`, `HERALD_RETURN_PATH_MX` or `HERALD_FBL_ADDRESS`).
    public var inboundHost: String
    public var inboundPort: Int
    /// `HERALD_SMTP_PORT` (submission with STARTTLS, e.g. 587) and `HERALD_SMTPS_PORT` (implicit TLS, e.g. 465):
    /// the `smtp` role's submission listeners, each only when set; `HERALD_SMTP_HOST` (0.0.0.0) binds them.
    public var smtpPort: Int?
    public var smtpsPort: Int?
    public var smtpHost: String
    /// `HERALD_SMTP_MAX_SIZE`: largest submitted message in bytes (default 10 MiB).
    public var smtpMaxSize: Int
    /// `HERALD_SMTP_ALLOW_INSECURE_AUTH=1`: AUTH without TLS on the submission port (local tests only).
    public var smtpAllowInsecureAuth: Bool
    /// `HERALD_SMTP_MAX_UNAUTHENTICATED`: connections per client address that have not logged in (default 20).
    public var smtpMaxUnauthenticated: Int
    /// `HERALD_SMTP_AUTH_USER_FAILURES` failed logins per user name within `HERALD_SMTP_AUTH_USER_WINDOW`
    /// seconds (default 10 in 600), from any client address, before its logins are refused for a while.
    public var smtpAuthUserFailures: Int
    public var smtpAuthUserWindow: Int
    /// `HERALD_SMTP_TLS_CERT` and `HERALD_SMTP_TLS_KEY` (PEM files, optional): the certificate Herald's SMTP
    /// listeners offer with STARTTLS.
    public var smtpTLS: (certificate: String, key: String)?

    /// Reads and validates every setting.
    public init(reader: ConfigReader) throws(Invalid) {
        func string(_ key: ConfigKey, secret: Bool = false) -> String? {
            reader.string(forKey: key, isSecret: secret).flatMap { $0.isEmpty ? nil : $0 }
        }
        func int(_ key: ConfigKey, _ name: String, default value: Int, range: ClosedRange<Int>) throws(Invalid) -> Int {
            guard let text = string(key) else { return value }
            guard let number = Int(text), range.contains(number) else {
                throw Invalid(description: "\(name) must be an integer from \(range.lowerBound) to \(range.upperBound), got \"\(text)\".")
            }
            return number
        }
        guard let url = string("database.url", secret: true) else {
            throw Invalid(description: "DATABASE_URL is required, e.g. postgres://herald:secret@127.0.0.1:5432/herald (ops/run sets it up).")
        }
        do { databaseURL = try DatabaseURL(url) } catch { throw Invalid(description: error.message) }
        if let direct = string("herald.direct.database.url", secret: true) {
            do { directDatabaseURL = try DatabaseURL(direct) } catch { throw Invalid(description: "HERALD_DIRECT_DATABASE_URL: " + error.message) }
        } else {
            directDatabaseURL = databaseURL
        }
        if directDatabaseURL.pgbouncer {
            throw Invalid(description: databaseURL == directDatabaseURL
                ? "DATABASE_URL is a pgbouncer (pgbouncer=true): set HERALD_DIRECT_DATABASE_URL to the database itself, for LISTEN and migrations"
                : "HERALD_DIRECT_DATABASE_URL must be the database itself, not a pgbouncer (pgbouncer=true)")
        }
        if let level = string("log.level") {
            guard let parsed = Logger.Level(rawValue: level) else {
                throw Invalid(description: "LOG_LEVEL must be one of trace, debug, info, notice, warning, error, critical, got \"\(level)\".")
            }
            logLevel = parsed
        } else {
            logLevel = .info
        }
        httpPort = try int("herald.http.port", "HERALD_HTTP_PORT", default: 8080, range: 0...65535)
        httpHost = string("herald.http.host") ?? "0.0.0.0"
        publicURL = string("herald.public.url") ?? "http://127.0.0.1:\(httpPort)"
        guard URL(string: publicURL)?.scheme.map({ $0 == "http" || $0 == "https" }) == true else {
            throw Invalid(description: "HERALD_PUBLIC_URL must be an http(s) URL, got \"\(publicURL)\".")
        }
        if let key = string("herald.master.key", secret: true) {
            do { masterKey = try MasterKey(base64: key) } catch { throw Invalid(description: error.message) }
        }
        adminToken = string("herald.admin.token", secret: true)
        if let token = adminToken, token.utf8.count < 16 {
            throw Invalid(description: "HERALD_ADMIN_TOKEN must be at least 16 characters.")
        }
        if let list = string("herald.roles") {
            var roles = Set<Role>()
            for name in list.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }) where !name.isEmpty {
                guard let role = Role(rawValue: name) else {
                    throw Invalid(description: "HERALD_ROLES has unknown role \"\(name)\"; use a comma list of \(Role.allCases.map(\.rawValue).joined(separator: ",")).")
                }
                roles.insert(role)
            }
            self.roles = roles
        } else {
            roles = Set(Role.allCases)
        }
        tokenLifetime = .seconds(try int("herald.token.ttl", "HERALD_TOKEN_TTL", default: 900, range: 60...86_400))
        trustedProxies = []
        if let proxies = string("herald.trusted.proxies") {
            for entry in proxies.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !entry.isEmpty {
                guard let network = IPNetwork(entry) else { throw Invalid(description: "HERALD_TRUSTED_PROXIES has an invalid CIDR \"\(entry)\".") }
                trustedProxies.append(network)
            }
        }
        migrationsDirectory = string("herald.migrations.dir") ?? "Migrations"
        databasePoolSize = try int("herald.db.pool.size", "HERALD_DB_POOL_SIZE", default: 20, range: 1...500)
        principalCacheLifetime = .seconds(try int("herald.principal.cache.ttl", "HERALD_PRINCIPAL_CACHE_TTL", default: 60, range: 0...3600))
        authRatePerSecond = try int("herald.auth.rate", "HERALD_AUTH_RATE", default: 10, range: 1...100_000)
        tenantRatePerSecond = try int("herald.tenant.rate", "HERALD_TENANT_RATE", default: 500, range: 1...10_000_000)
        senderRatePerSecond = try int("herald.sender.rate", "HERALD_SENDER_RATE", default: 100, range: 1...10_000_000)
        linkRatePerSecond = try int("herald.link.rate", "HERALD_LINK_RATE", default: 20, range: 1...10_000_000)
        replyToConfirmationsPerHour = try int("herald.reply.to.confirmations", "HERALD_REPLY_TO_CONFIRMATIONS", default: 5, range: 0...10_000)
        let publicHost = URL(string: publicURL)?.host() ?? ""
        let hostIsName = (try? SendingDomain.normalize(publicHost)) != nil
        let spfInclude = string("herald.spf.include") ?? "_spf.\(hostIsName ? publicHost : "herald.localhost")"
        let returnPathMX = string("herald.return.path.mx")
        do {
            domainSettings = SendingDomain.Settings(spfInclude: try SendingDomain.normalize(spfInclude, field: "HERALD_SPF_INCLUDE", allowUnderscore: true),
                                                    returnPathMX: try returnPathMX.map { try SendingDomain.normalize($0, field: "HERALD_RETURN_PATH_MX") })
        } catch {
            throw Invalid(description: "\((error as? HeraldError)?.message ?? "\(error)") (HERALD_SPF_INCLUDE / HERALD_RETURN_PATH_MX)")
        }
        sensitiveWords = (string("herald.sensitive.words") ?? "").split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        if let text = string("herald.smarthost") {
            let parts = text.split(separator: ":")
            guard parts.count == 2, !parts[0].isEmpty, let port = Int(parts[1]), (1...65535).contains(port) else {
                throw Invalid(description: "HERALD_SMARTHOST must be host:port, e.g. 127.0.0.1:2525, got \"\(text)\".")
            }
            smarthost = (String(parts[0]), port)
        }
        do {
            systemFrom = try string("herald.system.from").map { try MailAddress($0, field: "HERALD_SYSTEM_FROM") }
        } catch {
            throw Invalid(description: "HERALD_SYSTEM_FROM must be an email address like no-reply@example.com.")
        }
        do {
            limits = try ProductLimits().applying(try ProductLimits.parseOverrides(string("herald.limits") ?? ""))
        } catch {
            throw Invalid(description: "HERALD_LIMITS: \(error.message)")
        }
        do {
            gradeQuotas = try string("herald.grade.quotas").map { text throws(HeraldError) in try QuotaTable.parse(text, field: "HERALD_GRADE_QUOTAS") }
                ?? .standard
        } catch {
            throw Invalid(description: "HERALD_GRADE_QUOTAS: \(error.message) (16 daily quotas, grade 1 to 16, e.g. 200,2000,5000,…)")
        }
        do {
            gradeRules = try GradeThresholds().applying(string("herald.grade.rules") ?? "")
            gradeRules.quotas = gradeQuotas.daily
        } catch {
            throw Invalid(description: "HERALD_GRADE_RULES: \(error.message) (\(error.field ?? ""))")
        }
        freeAllowance = try int("herald.free.allowance", "HERALD_FREE_ALLOWANCE", default: 200, range: 0...1_000_000)
        invalidAfterHardBounces = try int("herald.invalid.after.hard.bounces", "HERALD_INVALID_AFTER_HARD_BOUNCES", default: 2, range: 1...100)
        initialGrade = try int("herald.initial.grade", "HERALD_INITIAL_GRADE", default: 2, range: 1...16)
        domainRecheckInterval = .seconds(try int("herald.domain.recheck", "HERALD_DOMAIN_RECHECK", default: 86_400, range: 60...2_592_000))
        deliveryLease = .seconds(try int("herald.delivery.lease", "HERALD_DELIVERY_LEASE", default: 60, range: 3...3_600))
        gradeInterval = .seconds(try int("herald.grade.interval", "HERALD_GRADE_INTERVAL", default: 90, range: 1...86_400))
        deliveryConcurrency = try int("herald.delivery.concurrency", "HERALD_DELIVERY_CONCURRENCY", default: 10, range: 1...1_000)
        do {
            deliveryRates = try DomainRateLimits.parse(string("herald.delivery.rates") ?? "")
        } catch {
            throw Invalid(description: "HERALD_DELIVERY_RATES: \(error.message)")
        }
        let allowPrivate = string("herald.webhook.allow.private") ?? "0"
        guard ["0", "1", "true", "false"].contains(allowPrivate.lowercased()) else {
            throw Invalid(description: "HERALD_WEBHOOK_ALLOW_PRIVATE must be 1 or 0, got \"\(allowPrivate)\".")
        }
        webhookAllowPrivate = allowPrivate == "1" || allowPrivate.lowercased() == "true"
        webhookTimeout = .seconds(try int("herald.webhook.timeout", "HERALD_WEBHOOK_TIMEOUT", default: 10, range: 1...120))
        do {
            webhookRetry = try string("herald.webhook.retry.schedule").map { text throws(HeraldError) in try WebhookRetryPolicy.parse(text) } ?? .standard
        } catch {
            throw Invalid(description: "HERALD_WEBHOOK_RETRY_SCHEDULE: \(error.message)")
        }
        webhookConcurrency = try int("herald.webhook.concurrency", "HERALD_WEBHOOK_CONCURRENCY", default: 16, range: 1...1_000)
        webhookRetentionDays = try int("herald.webhook.retention.days", "HERALD_WEBHOOK_RETENTION_DAYS", default: 30, range: 1...3_650)
        statsRetentionDays = try int("herald.stats.retention.days", "HERALD_STATS_RETENTION_DAYS", default: 400, range: 31...3_650)
        unsubscribeAddress = string("herald.unsubscribe.address")
        if let address = unsubscribeAddress {
            do { _ = try UnsubscribeMailbox.validate(address) } catch { throw Invalid(description: "HERALD_UNSUBSCRIBE_ADDRESS: \(error.message)") }
        }
        fblAddress = string("herald.fbl.address")
        if let address = fblAddress {
            guard let valid = try? MailAddress(address) else { throw Invalid(description: "HERALD_FBL_ADDRESS must be an address like fbl@mx.example.com.") }
            fblAddress = valid.description
        }
        smtpHost = string("herald.smtp.host") ?? "0.0.0.0"
        // Each submission listener only when its port is set.
        smtpPort = string("herald.smtp.port") == nil ? nil : try int("herald.smtp.port", "HERALD_SMTP_PORT", default: 0, range: 0...65535)
        smtpsPort = string("herald.smtps.port") == nil ? nil : try int("herald.smtps.port", "HERALD_SMTPS_PORT", default: 0, range: 0...65535)
        smtpMaxSize = try int("herald.smtp.max.size", "HERALD_SMTP_MAX_SIZE", default: 10 << 20, range: 1024...(64 << 20))
        let insecure = string("herald.smtp.allow.insecure.auth") ?? "0"
        guard ["0", "1", "true", "false"].contains(insecure.lowercased()) else {
            throw Invalid(description: "HERALD_SMTP_ALLOW_INSECURE_AUTH must be 1 or 0, got \"\(insecure)\".")
        }
        smtpAllowInsecureAuth = insecure == "1" || insecure.lowercased() == "true"
        smtpMaxUnauthenticated = try int("herald.smtp.max.unauthenticated", "HERALD_SMTP_MAX_UNAUTHENTICATED", default: 20, range: 1...10_000)
        smtpAuthUserFailures = try int("herald.smtp.auth.user.failures", "HERALD_SMTP_AUTH_USER_FAILURES", default: 10, range: 1...100_000)
        smtpAuthUserWindow = try int("herald.smtp.auth.user.window", "HERALD_SMTP_AUTH_USER_WINDOW", default: 600, range: 1...86_400)
        inboundHost = string("herald.inbound.host") ?? "0.0.0.0"
        inboundPort = try int("herald.inbound.port", "HERALD_INBOUND_PORT", default: 25, range: 0...65535)
        switch (string("herald.smtp.tls.cert"), string("herald.smtp.tls.key")) {
        case (nil, nil):
            smtpTLS = nil
        case (let certificate?, let key?):
            for (name, path) in [("HERALD_SMTP_TLS_CERT", certificate), ("HERALD_SMTP_TLS_KEY", key)] where !FileManager.default.isReadableFile(atPath: path) {
                throw Invalid(description: "\(name) names \"\(path)\", which is not a readable file.")
            }
            smtpTLS = (certificate, key)
        default:
            throw Invalid(description: "HERALD_SMTP_TLS_CERT and HERALD_SMTP_TLS_KEY go together: set both (PEM files) or neither.")
        }
        if smtpTLS == nil, smtpsPort != nil {
            throw Invalid(description: "HERALD_SMTPS_PORT needs HERALD_SMTP_TLS_CERT and HERALD_SMTP_TLS_KEY (implicit TLS).")
        }
        if smtpTLS == nil, smtpPort != nil, !smtpAllowInsecureAuth {
            throw Invalid(description: "HERALD_SMTP_PORT needs HERALD_SMTP_TLS_CERT and HERALD_SMTP_TLS_KEY (AUTH only after STARTTLS), or HERALD_SMTP_ALLOW_INSECURE_AUTH=1 for local tests.")
        }
        do {
            dnsServer = try DNSServerAddress.resolve(configured: string("herald.dns.server"))
        } catch {
            throw Invalid(description: "HERALD_DNS_SERVER must be an IP address with an optional port (127.0.0.1:53, [::1]:53): \(error)")
        }
    }

    /// The master key, or a clear error for commands that need it.
    public func requireMasterKey() throws(Invalid) -> MasterKey {
        guard let masterKey else {
            throw Invalid(description: "HERALD_MASTER_KEY is required: 32 random bytes in base64 (`openssl rand -base64 32`); ops/run generates one into .data/.")
        }
        return masterKey
    }

    /// The admin token, or a clear error when serving the API without one (only the `api` role needs it).
    public func requireAdminToken() throws(Invalid) -> String {
        guard let adminToken else {
            throw Invalid(description: "HERALD_ADMIN_TOKEN is required to serve the API (the operator's bearer token); ops/run generates one into .data/.")
        }
        return adminToken
    }
}
