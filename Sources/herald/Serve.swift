import ArgumentParser
import HeraldServer
import HeraldStore
import ServiceLifecycle
import UnixSignals

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve the configured roles (HERALD_ROLES, all by default) until SIGTERM/SIGINT.")

    func run() async throws {
        var configuration = try Startup.configuration()
        let logger = Startup.logger("herald", configuration)
        let masterKey = Startup.masterKey(configuration)
        let (client, router) = try await Startup.client(&configuration, maximumConnections: configuration.databasePoolSize, logger: logger)
        // The router (when DATABASE_URL lists several servers) first, so that it stops last.
        var services: [any Service] = router.map { [PrimaryRouterService(router: $0)] } ?? []
        services.append(client)
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
