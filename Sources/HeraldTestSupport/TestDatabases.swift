import Foundation
import HeraldCore
import HeraldStore
import Logging
import PostgresNIO

/// Test databases as SwiftPackageIndex-Server makes them: the migrations run once into a template
/// database, and every test gets its own clone (`CREATE DATABASE … TEMPLATE …`), dropped afterwards.
/// The server comes from `HERALD_TEST_DATABASE_URL`, which `ops/test` sets.
public actor TestDatabases {
    /// The process-wide instance.
    public static let shared = TestDatabases()

    private var template: Task<String, any Error>?
    /// The repository root (for `Migrations/`).
    public static let repositoryRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// A logger that stays quiet unless TEST_LOG_LEVEL is set.
    public static let logger: Logger = {
        var logger = Logger(label: "herald.test")
        logger.logLevel = ProcessInfo.processInfo.environment["TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
        return logger
    }()

    /// The server's URL (the `herald` maintenance database).
    public static func baseURL() throws -> DatabaseURL {
        guard let text = ProcessInfo.processInfo.environment["HERALD_TEST_DATABASE_URL"] else {
            throw HeraldError(code: "Test.NoDatabase", kind: .internal,
                              message: "HERALD_TEST_DATABASE_URL is not set: run the tests through ops/test, which starts PostgreSQL.")
        }
        return try DatabaseURL(text)
    }

    /// The migrations of this repository.
    public static func migrations() throws -> [Migration] {
        try Migration.load(from: repositoryRoot + "/Migrations")
    }

    /// Runs `body` with a pool on the server's maintenance database.
    public static func withClient<R: Sendable>(_ url: DatabaseURL, _ body: @escaping @Sendable (PostgresClient) async throws -> R) async throws -> R {
        let client = PostgresClient(configuration: try url.clientConfiguration(maximumConnections: 8), backgroundLogger: logger)
        return try await withThrowingTaskGroup(of: R?.self) { group in
            group.addTask { await client.run(); return nil }
            group.addTask { try await body(client) }
            defer { group.cancelAll() }
            while let result = try await group.next() {
                if let value = result { return value }
            }
            throw CancellationError()
        }
    }

    private func templateName() async throws -> String {
        if let template { return try await template.value }
        let task = Task<String, any Error> {
            let base = try Self.baseURL()
            let name = "herald_tpl_\(ProcessInfo.processInfo.processIdentifier)_\(AccessKeyGenerator.randomString(count: 6).lowercased())"
            _ = try await Self.withClient(base) { client in
                try await client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: Self.logger)
            }
            _ = try await Self.withClient(base.with(database: name)) { client in
                try await Migrator(migrations: try Self.migrations(), logger: Self.logger).migrate(client: client)
            }
            return name
        }
        template = task
        return try await task.value
    }

    /// A fresh database for one test (migrated, unless `migrated` is false); dropped when `body` returns or throws.
    public func withDatabase<R: Sendable>(migrated: Bool = true, _ body: @escaping @Sendable (Database, DatabaseURL) async throws -> R) async throws -> R {
        let template = migrated ? " TEMPLATE \(try await templateName())" : ""
        let base = try Self.baseURL()
        let name = "herald_t_\(AccessKeyGenerator.randomString(count: 12).lowercased())"
        _ = try await Self.withClient(base) { client in
            try await client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)\(template)"), logger: Self.logger)
        }
        let url = base.with(database: name)
        let result: Result<R, any Error>
        do {
            result = .success(try await Self.withClient(url) { client in
                try await body(Database(client: client, logger: Self.logger), url)
            })
        } catch {
            result = .failure(error)
        }
        _ = try? await Self.withClient(base) { client in
            try await client.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)"), logger: Self.logger)
        }
        return try result.get()
    }
}

/// Shorthand for `TestDatabases.shared.withDatabase`.
public func withTestDatabase<R: Sendable>(migrated: Bool = true, _ body: @escaping @Sendable (Database, DatabaseURL) async throws -> R) async throws -> R {
    try await TestDatabases.shared.withDatabase(migrated: migrated, body)
}
