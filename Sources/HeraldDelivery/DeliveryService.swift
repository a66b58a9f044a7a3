import Foundation
import HeraldStore
import Logging
import ServiceLifecycle

/// Runs the worker until shutdown: `loops` claim cycles at once (they share the queue through
/// `SKIP LOCKED`), back to back while there is work, polling when the queue is empty.
public struct DeliveryService: Service {
    let worker: DeliveryWorker
    let pollInterval: Duration
    let loops: Int

    public init(worker: DeliveryWorker, pollInterval: Duration = .seconds(1), loops: Int = 2) {
        self.worker = worker
        self.pollInterval = pollInterval
        self.loops = max(1, loops)
    }

    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            for worker in loopWorkers { group.addTask { await loop(worker) } }
            group.addTask { await housekeeping() }
        }
    }

    /// One worker per loop, each with its own name (`<process worker>/<n>`): a claim's `locked_by` names the
    /// loop that holds it, so a loop whose lease ran out (and whose messages another loop of the same process
    /// claimed again) can neither renew nor record them — one name for both would let it.
    var loopWorkers: [DeliveryWorker] {
        (0..<loops).map { index in
            var worker = self.worker
            worker.worker = "\(self.worker.worker)/\(index)"
            return worker
        }
    }

    /// Every five minutes: the submitted text of requests that are done goes.
    func housekeeping() async {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(300)) }
            guard !Task.isCancelled && !Task.isShuttingDownGracefully else { return }
            do {
                try await worker.store.pruneSubmitted(now: worker.now())
            } catch {
                worker.logger.error("pruning submitted messages failed", metadata: ["error": "\(error)"])
            }
        }
    }

    func loop(_ worker: DeliveryWorker) async {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let attempted: Int
            do {
                attempted = try await worker.runOnce()
            } catch {
                worker.logger.error("delivery cycle failed", metadata: ["error": "\(String(reflecting: error))"])
                attempted = 0
            }
            if attempted == 0 { try? await cancelWhenGracefulShutdown { try await Task.sleep(for: pollInterval) } }
        }
    }
}
