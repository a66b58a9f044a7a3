import HeraldStore
import ServiceLifecycle

/// Runs the principal cache's listener (``PrincipalChangeListener``) until shutdown.
public struct PrincipalChangeService: Service {
    let listener: PrincipalChangeListener

    public init(listener: PrincipalChangeListener) {
        self.listener = listener
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown { await listener.run() }
    }
}
