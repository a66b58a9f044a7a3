import HeraldStore
import ServiceLifecycle

/// Runs the tenant caches' listener (``TenantChangeListener``) until shutdown.
public struct TenantChangeService: Service {
    let listener: TenantChangeListener

    public init(listener: TenantChangeListener) {
        self.listener = listener
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown { await listener.run() }
    }
}
