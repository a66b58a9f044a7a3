import ArgumentParser
import HeraldServer
import HeraldStore
import ServiceLifecycle
import UnixSignals

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve the configured roles (HERALD_ROLES, all by default) until SIGTERM/SIGINT.")

    func run() async throws {
        let configuration = try Startup.configuration()
        let logger = Startup.logger("herald", configuration)
        let masterKey = Startup.masterKey(configuration)
        let client = try Startup.client(configuration, maximumConnections: configuration.databasePoolSize, logger: logger)
        var services: [any Service] = [client]
        do {
            let shared = try HeraldServices(configuration: configuration, database: Database(client: client, logger: logger),
                                            masterKey: masterKey, logger: logger)
            services += try shared.services(for: configuration.roles)
        } catch let error as HeraldConfiguration.Invalid {
            Startup.fail(error.description)
        }
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
