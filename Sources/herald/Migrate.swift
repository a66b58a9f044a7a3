import ArgumentParser
import HeraldCore
import HeraldServer
import HeraldStore

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply Migrations/*.sql in order, recording what ran.")

    func run() async throws {
        var configuration = try Startup.configuration()
        // Migrations hold a session-level lock: on the direct URL (not a pgbouncer in transaction mode).
        configuration.databaseURL = configuration.directDatabaseURL
        let logger = Startup.logger("herald.migrate", configuration)
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
