import Configuration
import Foundation
import HeraldCore
import HeraldServer
import HeraldStore
import Logging
import NIOCore
import PostgresNIO
import Testing

@Suite struct ConfigurationTests {
    static let key = Data(repeating: 9, count: 32).base64EncodedString()

    func load(_ environment: [String: String]) throws(HeraldConfiguration.Invalid) -> HeraldConfiguration {
        try HeraldConfiguration(reader: ConfigReader(provider: EnvironmentVariablesProvider(environmentVariables: environment)))
    }

    @Test func defaultsAndValues() throws {
        let configuration = try load(["DATABASE_URL": "postgres://h:p@127.0.0.1:5432/herald", "HERALD_MASTER_KEY": Self.key,
                                      "HERALD_ADMIN_TOKEN": "0123456789abcdef0123", "HERALD_ROLES": "api, grader"])
        #expect(configuration.httpPort == 8080)
        #expect(configuration.roles == [.api, .grader])
        #expect(configuration.tokenLifetime == .seconds(900))
        #expect(configuration.publicURL == "http://127.0.0.1:8080")
        _ = try configuration.requireMasterKey()
        let dns = try load(["DATABASE_URL": "postgres://h:p@127.0.0.1:5432/herald", "HERALD_DNS_SERVER": "[::1]:5353"]).dnsServer
        #expect(dns.port == 5353)
        let limits = try load(["DATABASE_URL": "postgres://h:p@127.0.0.1:5432/herald", "HERALD_LIMITS": "domains=20, listMembers=50000"]).limits
        #expect(limits.domains == 20 && limits.listMembers == 50_000 && limits.senders == 10)
        // Every number of SPEC's grades and limits is configuration (issue #18), SPEC's by default.
        #expect(configuration.gradeQuotas == .standard && configuration.gradeRules == GradeThresholds() && configuration.freeAllowance == 200
                && configuration.invalidAfterHardBounces == 2 && configuration.initialGrade == 2)
        #expect(limits.recipientsPerSend == 100 && limits.subjectLength == 100 && limits.bodyBytes == 81_920)
        let tuned = try load(["DATABASE_URL": "postgres://h:p@127.0.0.1:5432/herald",
                              "HERALD_GRADE_QUOTAS": "100,1000,2000,3000,4000,5000,6000,7000,8000,9000,10000,20000,30000,40000,50000,60000",
                              "HERALD_GRADE_RULES": "promotionsPerDay=4, minimumSent=50, promoteSpamBelow=0.01",
                              "HERALD_FREE_ALLOWANCE": "500", "HERALD_INVALID_AFTER_HARD_BOUNCES": "3", "HERALD_INITIAL_GRADE": "1",
                              "HERALD_LIMITS": "recipientsPerSend=50,subjectLength=78,bodyBytes=40960"])
        #expect(tuned.gradeQuotas.daily(grade: 2) == 1_000 && tuned.gradeRules.quotas == tuned.gradeQuotas.daily)
        #expect(tuned.gradeRules.promotionsPerDay == 4 && tuned.gradeRules.minimumSent == 50 && tuned.gradeRules.promoteSpamBelow == 0.01)
        #expect(tuned.freeAllowance == 500 && tuned.invalidAfterHardBounces == 3 && tuned.initialGrade == 1)
        #expect(tuned.limits.recipientsPerSend == 50 && tuned.limits.subjectLength == 78 && tuned.limits.bodyBytes == 40_960)
        #expect(configuration.unsubscribeAddress == nil && configuration.inboundPort == 25 && configuration.smtpTLS == nil)
        let inbound = try load(["DATABASE_URL": "postgres://h:p@127.0.0.1:5432/herald", "HERALD_UNSUBSCRIBE_ADDRESS": "unsubscribe@mx.example.com",
                                "HERALD_INBOUND_PORT": "2525"])
        #expect(inbound.unsubscribeAddress == "unsubscribe@mx.example.com" && inbound.inboundPort == 2525 && inbound.inboundHost == "0.0.0.0")
        #expect(configuration.smtpPort == nil && configuration.smtpsPort == nil && configuration.smtpMaxSize == 10 << 20)
        let local = try load(["DATABASE_URL": "postgres://h:p@127.0.0.1:5432/herald", "HERALD_SMTP_PORT": "2587", "HERALD_SMTP_ALLOW_INSECURE_AUTH": "1"])
        #expect(local.smtpPort == 2587 && local.smtpAllowInsecureAuth)
        #expect(configuration.smtpMaxUnauthenticated == 20 && configuration.smtpAuthUserFailures == 10 && configuration.smtpAuthUserWindow == 600)
        let guarded = try load(["DATABASE_URL": "postgres://h:p@127.0.0.1:5432/herald", "HERALD_SMTP_MAX_UNAUTHENTICATED": "5",
                                "HERALD_SMTP_AUTH_USER_FAILURES": "3", "HERALD_SMTP_AUTH_USER_WINDOW": "60"])
        #expect(guarded.smtpMaxUnauthenticated == 5 && guarded.smtpAuthUserFailures == 3 && guarded.smtpAuthUserWindow == 60)
    }

    struct Bad: Sendable, CustomTestStringConvertible {
        var environment: [String: String]
        var mentions: String
        var testDescription: String { mentions }
    }

    static let base = ["DATABASE_URL": "postgres://h:p@127.0.0.1:5432/herald"]
    static let bad: [Bad] = [
        Bad(environment: [:], mentions: "DATABASE_URL"),
        Bad(environment: ["DATABASE_URL": "mysql://x@y/z"], mentions: "DATABASE_URL"),
        Bad(environment: ["DATABASE_URL": "postgres://h:p@127.0.0.1:6432/herald?pgbouncer=true"], mentions: "HERALD_DIRECT_DATABASE_URL"),
        Bad(environment: base.merging(["HERALD_DIRECT_DATABASE_URL": "postgres://h:p@127.0.0.1:6432/herald?pgbouncer=true"]) { $1 },
            mentions: "HERALD_DIRECT_DATABASE_URL"),
        Bad(environment: ["DATABASE_URL": "postgres://h:p@a:1,b:2/herald?target_session_attrs=standby"], mentions: "target_session_attrs"),
        Bad(environment: base.merging(["HERALD_HTTP_PORT": "eighty"]) { $1 }, mentions: "HERALD_HTTP_PORT"),
        Bad(environment: base.merging(["HERALD_HTTP_PORT": "70000"]) { $1 }, mentions: "HERALD_HTTP_PORT"),
        Bad(environment: base.merging(["HERALD_MASTER_KEY": "short"]) { $1 }, mentions: "HERALD_MASTER_KEY"),
        Bad(environment: base.merging(["HERALD_ADMIN_TOKEN": "short"]) { $1 }, mentions: "HERALD_ADMIN_TOKEN"),
        Bad(environment: base.merging(["HERALD_ROLES": "api,mailer"]) { $1 }, mentions: "HERALD_ROLES"),
        Bad(environment: base.merging(["HERALD_TRUSTED_PROXIES": "10.0.0.0/99"]) { $1 }, mentions: "HERALD_TRUSTED_PROXIES"),
        Bad(environment: base.merging(["HERALD_PUBLIC_URL": "ftp://x"]) { $1 }, mentions: "HERALD_PUBLIC_URL"),
        Bad(environment: base.merging(["HERALD_DNS_SERVER": "dns.example.com"]) { $1 }, mentions: "HERALD_DNS_SERVER"),
        Bad(environment: base.merging(["HERALD_LIMITS": "domains=lots"]) { $1 }, mentions: "HERALD_LIMITS"),
        Bad(environment: base.merging(["HERALD_SMARTHOST": "relay.example.com"]) { $1 }, mentions: "HERALD_SMARTHOST"),
        Bad(environment: base.merging(["HERALD_SMARTHOST": "relay:0"]) { $1 }, mentions: "HERALD_SMARTHOST"),
        Bad(environment: base.merging(["HERALD_LIMITS": "mailboxes=3"]) { $1 }, mentions: "HERALD_LIMITS"),
        Bad(environment: base.merging(["HERALD_LIMITS": "recipientsPerSend=5000"]) { $1 }, mentions: "HERALD_LIMITS"),
        Bad(environment: base.merging(["HERALD_GRADE_QUOTAS": "200,2000"]) { $1 }, mentions: "HERALD_GRADE_QUOTAS"),
        Bad(environment: base.merging(["HERALD_GRADE_QUOTAS": "200,2000,5000,10000,20000,40000,60000,80000,100000,200000,300000,500000,1000000,"
                                                               + "2000000,5000000,4000000"]) { $1 }, mentions: "HERALD_GRADE_QUOTAS"),
        Bad(environment: base.merging(["HERALD_GRADE_RULES": "promotionsPerDay=5"]) { $1 }, mentions: "HERALD_GRADE_RULES"),
        Bad(environment: base.merging(["HERALD_GRADE_RULES": "promoteSpamBelow=0.5"]) { $1 }, mentions: "HERALD_GRADE_RULES"),
        Bad(environment: base.merging(["HERALD_GRADE_RULES": "luck=1"]) { $1 }, mentions: "HERALD_GRADE_RULES"),
        Bad(environment: base.merging(["HERALD_FREE_ALLOWANCE": "-1"]) { $1 }, mentions: "HERALD_FREE_ALLOWANCE"),
        Bad(environment: base.merging(["HERALD_INVALID_AFTER_HARD_BOUNCES": "0"]) { $1 }, mentions: "HERALD_INVALID_AFTER_HARD_BOUNCES"),
        Bad(environment: base.merging(["HERALD_INITIAL_GRADE": "17"]) { $1 }, mentions: "HERALD_INITIAL_GRADE"),
        Bad(environment: base.merging(["HERALD_DNS_SERVER": "127.0.0.1:0"]) { $1 }, mentions: "HERALD_DNS_SERVER"),
        Bad(environment: base.merging(["HERALD_UNSUBSCRIBE_ADDRESS": "unsubscribe"]) { $1 }, mentions: "HERALD_UNSUBSCRIBE_ADDRESS"),
        Bad(environment: base.merging(["HERALD_UNSUBSCRIBE_ADDRESS": "please-unsubscribe-me@x.example"]) { $1 }, mentions: "HERALD_UNSUBSCRIBE_ADDRESS"),
        Bad(environment: base.merging(["HERALD_INBOUND_PORT": "smtp"]) { $1 }, mentions: "HERALD_INBOUND_PORT"),
        Bad(environment: base.merging(["HERALD_SMTP_PORT": "587"]) { $1 }, mentions: "HERALD_SMTP_TLS_CERT"),
        Bad(environment: base.merging(["HERALD_SMTPS_PORT": "465", "HERALD_SMTP_ALLOW_INSECURE_AUTH": "1"]) { $1 }, mentions: "HERALD_SMTPS_PORT"),
        Bad(environment: base.merging(["HERALD_SMTP_PORT": "five-eight-seven"]) { $1 }, mentions: "HERALD_SMTP_PORT"),
        Bad(environment: base.merging(["HERALD_SMTP_ALLOW_INSECURE_AUTH": "yes"]) { $1 }, mentions: "HERALD_SMTP_ALLOW_INSECURE_AUTH"),
        Bad(environment: base.merging(["HERALD_SMTP_MAX_UNAUTHENTICATED": "0"]) { $1 }, mentions: "HERALD_SMTP_MAX_UNAUTHENTICATED"),
        Bad(environment: base.merging(["HERALD_SMTP_AUTH_USER_FAILURES": "many"]) { $1 }, mentions: "HERALD_SMTP_AUTH_USER_FAILURES"),
        Bad(environment: base.merging(["HERALD_SMTP_TLS_CERT": "/etc/hostname"]) { $1 }, mentions: "HERALD_SMTP_TLS_KEY"),
        Bad(environment: base.merging(["HERALD_SMTP_TLS_CERT": "/nonexistent.pem", "HERALD_SMTP_TLS_KEY": "/nonexistent.key"]) { $1 },
            mentions: "HERALD_SMTP_TLS_CERT"),
        Bad(environment: base.merging(["LOG_LEVEL": "loud"]) { $1 }, mentions: "LOG_LEVEL"),
    ]

    @Test(arguments: bad)
    func malformedOrMissingIsOneClearLine(_ bad: Bad) {
        do {
            _ = try load(bad.environment)
            Issue.record("accepted \(bad.environment)")
        } catch {
            #expect(error.description.contains(bad.mentions), "\(error.description)")
            #expect(!error.description.contains("\n"))
        }
    }

    @Test func logLevelIsAConfigurationValue() throws {
        #expect(try load(Self.base).logLevel == .info)
        #expect(try load(Self.base.merging(["LOG_LEVEL": "warning"]) { $1 }).logLevel == .warning)
    }

    /// The services are built without an admin token; only the `api` role asks for it.
    @Test func theAdminTokenIsRequiredByTheAPIRoleOnly() throws {
        let configuration = try load(Self.base.merging(["HERALD_ROLES": "scheduler,dispatcher,grader"]) { $1 })
        let client = PostgresClient(configuration: try configuration.databaseURL.clientConfiguration(maximumConnections: 1),
                                    backgroundLogger: Logger(label: "test"))
        let services = try HeraldServices(configuration: configuration, database: Database(client: client, logger: Logger(label: "test")),
                                          masterKey: .random(), logger: Logger(label: "test"))
        #expect(try services.services(for: configuration.roles).count == 7, "the cluster service, 4 of the scheduler, the dispatcher, the grader")
        #expect(throws: HeraldConfiguration.Invalid.self) { try services.apiDependencies() }
        #expect(throws: HeraldConfiguration.Invalid.self) { try services.services(for: [.api]) }
    }

    @Test func missingSecretsAreClearErrorsWhenNeeded() throws {
        let configuration = try load(Self.base)
        #expect(throws: HeraldConfiguration.Invalid.self) { try configuration.requireMasterKey() }
        #expect(throws: HeraldConfiguration.Invalid.self) { try configuration.requireAdminToken() }
    }
}
