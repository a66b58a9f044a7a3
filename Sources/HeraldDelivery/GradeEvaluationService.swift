import Foundation
import HeraldStore
import Logging
import ServiceLifecycle

/// Evaluates credit grades every `interval` (grader role): due tenants in batches until none is left,
/// then waits. Safe in several processes (each tenant is evaluated by one).
public struct GradeEvaluationService: Service {
    let store: GradeStore
    let interval: Duration
    let now: @Sendable () -> Date
    let logger: Logger

    public init(store: GradeStore, interval: Duration, now: @escaping @Sendable () -> Date = Date.init, logger: Logger) {
        self.store = store
        self.interval = interval
        self.now = now
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                let (_, changes) = try await store.evaluatePass(now: now())
                for change in changes {
                    logger.info("credit grade", metadata: ["tenant_id": "\(change.tenantID)", "decision": "\(change.decision)"])
                }
            } catch {
                logger.error("grade evaluation failed", metadata: ["error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}
