import ArgumentParser
import Foundation
import HeraldCore
import HeraldServer
import HeraldStore
import Logging

struct Admin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Operator actions on the local database.",
        subcommands: [CreateTenant.self, ListTenants.self, GetTenant.self, ListProcesses.self, Freeze.self, Unfreeze.self, Ban.self, RotateSigningKey.self,
                      ListTemplates.self, ApproveTemplate.self, RejectTemplate.self, SetGrade.self, EvaluateGrades.self, SimulateGrades.self]
    )

    /// Runs an operator action with the stores (built as `serve` builds them), printing its JSON result.
    static func withStores<R: Encodable & Sendable>(_ body: @escaping @Sendable (HeraldServices) async throws -> R) async throws {
        let configuration = try Startup.configuration()
        let masterKey = Startup.masterKey(configuration)
        let logger = {
            var logger = Startup.logger("herald.admin", configuration)
            logger.logLevel = .warning
            return logger
        }()
        do {
            let result = try await Startup.withDatabase(configuration, logger: logger) { database in
                let services: HeraldServices
                do throws(HeraldConfiguration.Invalid) {
                    services = try HeraldServices(configuration: configuration, database: database, masterKey: masterKey, logger: logger)
                } catch { Startup.fail(error.description) }
                return try await body(services)
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
        @Option(help: "The starting credit grade, 1 to 16 (2 unless given).") var grade: Int?

        func run() async throws {
            guard let kind = TenantKind(rawValue: kind) else { Startup.fail("--kind must be enterprise or personal") }
            let (name, grade) = (self.name, self.grade)
            try await Admin.withStores { stores in
                let created = try await stores.tenants.create(name: name, kind: kind, grade: grade, actor: .cli)
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

    struct ListProcesses: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "processes",
            abstract: "List the Herald processes of the installation (alive: seen in the last 10 s), as GET /admin/v1/processes does.")

        func run() async throws {
            try await Admin.withStores { stores in try await stores.processes.list() }
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
