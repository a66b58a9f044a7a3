import HeraldStore
import ServiceLifecycle

/// Runs a ``PrimaryRouter`` (its probes) until shutdown, then closes what it relays.
public struct PrimaryRouterService: Service {
    let router: PrimaryRouter

    public init(router: PrimaryRouter) {
        self.router = router
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown { await router.run() }
        await router.stop()
    }
}
