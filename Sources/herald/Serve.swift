import ArgumentParser
import HeraldServer
import HeraldStore
import NIOCore
import NIOPosix
import ServiceLifecycle
import UnixSignals

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve the configured roles (HERALD_ROLES, all by default) until SIGTERM/SIGINT.")

    func run() async throws {
        // Swift Concurrency's global executor becomes SwiftNIO's event loops (one thread per core, the
        // threads the sockets are served on) before the server starts: a request's work then goes on on
        // the loop that read it, instead of waking a Dispatch thread at every hop between the network and
        // the handlers. (Here rather than before `main`: ArgumentParser's entry point is the one way in
        // that runs an asynchronous command; nothing but the command line has run yet.)
        _ = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
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
