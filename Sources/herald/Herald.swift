import ArgumentParser
import Configuration
import Foundation
import HeraldCore
import HeraldServer
import HeraldStore
import Logging
import PostgresNIO

@main
struct Herald: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "herald",
        abstract: "Herald: a self-hostable, multi-tenant email sending service.",
        subcommands: [Serve.self, Migrate.self, Admin.self]
    )
}

/// Shared start-up of the commands: configuration (exit 2 with one line when invalid), logger, database pool.
enum Startup {
    static func configuration() throws -> HeraldConfiguration {
        LoggingSystem.bootstrap { label in HeraldLogHandler(label: label) }
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

    /// A logger at `LOG_LEVEL`.
    static func logger(_ label: String, _ configuration: HeraldConfiguration) -> Logger {
        var logger = Logger(label: label)
        logger.logLevel = configuration.logLevel
        return logger
    }

    /// The master key, or exit 2 with one line.
    static func masterKey(_ configuration: HeraldConfiguration) -> MasterKey {
        do { return try configuration.requireMasterKey() } catch { fail(error.description) }
    }

    /// The pool the database of `configuration` is reached through, and the router it connects through when
    /// `DATABASE_URL` lists several servers (started; the caller runs both). `configuration`'s URLs are
    /// routed through it (the direct one too, when it is the same URL).
    static func client(_ configuration: inout HeraldConfiguration, maximumConnections: Int,
                       logger: Logger) async throws -> (PostgresClient, PrimaryRouter?) {
        var router: PrimaryRouter?
        if configuration.databaseURL.needsRouter {
            let started = PrimaryRouter(url: configuration.databaseURL, logger: logger)
            try await started.start()
            if started.primary == nil { logger.warning("no database server of DATABASE_URL takes writes yet", metadata: ["servers": "\(configuration.databaseURL.endpoints)"]) }
            if configuration.directDatabaseURL == configuration.databaseURL {
                configuration.directDatabaseURL = configuration.directDatabaseURL.routed(through: started.socketPath)
            }
            configuration.databaseURL = configuration.databaseURL.routed(through: started.socketPath)
            router = started
        }
        let client = PostgresClient(configuration: try configuration.databaseURL.clientConfiguration(maximumConnections: maximumConnections),
                                    backgroundLogger: logger)
        return (client, router)
    }

    /// Runs `body` with a live pool, shutting the pool down afterwards.
    static func withDatabase<R: Sendable>(_ configuration: HeraldConfiguration, logger: Logger,
                                          _ body: @escaping @Sendable (Database) async throws -> R) async throws -> R {
        var configuration = configuration
        let (client, router) = try await client(&configuration, maximumConnections: 4, logger: logger)
        defer { if let router { Task { await router.stop() } } }
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
