import HeraldAPI
import Logging
import ServiceLifecycle

/// Runs ``DomainVerifier/recheckDue(limit:)`` every `interval` until shutdown: the scheduler role's
/// re-verification of sending domains (the API verifies on request with the same verifier).
public struct DomainRecheckService: Service {
    let verifier: DomainVerifier
    let interval: Duration
    let logger: Logger

    public init(verifier: DomainVerifier, interval: Duration = .seconds(60), logger: Logger) {
        self.verifier = verifier
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                let checked = try await verifier.recheckDue()
                if checked > 0 { logger.info("re-verified sending domains", metadata: ["count": "\(checked)"]) }
            } catch {
                logger.error("domain re-verification failed", metadata: ["error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}
