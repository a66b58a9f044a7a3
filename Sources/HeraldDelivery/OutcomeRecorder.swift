import Foundation
import HeraldCore
import HeraldStore
import Logging

/// Commits delivery results (``DeliveryAttempt``) as they come, a group at a time: while one transaction
/// is being written the next results gather, and the next transaction takes them all. So a message whose server said 250
/// is marked delivered a few milliseconds later, not at the end of its batch — the window in which a
/// crash makes it go out twice (at-least-once delivery: see docs/design.md) is one commit wide.
actor OutcomeRecorder {
    let store: DeliveryStore
    /// The messages of the claim (their leases are renewed until each has a result).
    let claimed: Set<UUID>
    let worker: String
    let now: @Sendable () -> Date
    let logger: Logger
    private var pending: [DeliveryAttempt] = []
    private var seen = Set<UUID>()
    private var flushing: Task<Void, Never>?
    private var failure: (any Error)?

    init(store: DeliveryStore, claimed: Set<UUID>, worker: String, now: @escaping @Sendable () -> Date, logger: Logger) {
        self.store = store
        self.claimed = claimed
        self.worker = worker
        self.now = now
        self.logger = logger
    }

    /// Queues results for the next commit; a message's first result is the one that counts.
    func add(_ attempts: [DeliveryAttempt]) {
        for attempt in attempts where seen.insert(attempt.messageID).inserted { pending.append(attempt) }
        if flushing == nil, !pending.isEmpty { flushing = Task { await self.flush() } }
    }

    /// The messages of the batch that have no outcome yet (their leases are still needed).
    func unrecorded() -> [UUID] {
        Array(claimed.subtracting(seen))
    }

    private func flush() async {
        while !pending.isEmpty {
            let batch = pending
            pending = []
            do {
                try await store.record(batch, worker: worker, now: now())
            } catch {
                // Not recorded: the leases run out and the messages are tried again.
                logger.error("recording delivery outcomes failed", metadata: ["error": "\(error)", "messages": "\(batch.count)"])
                failure = error
            }
        }
        flushing = nil
    }

    /// Waits until everything added is committed; throws when a commit failed.
    func finish() async throws {
        while let flushing { await flushing.value }
        if let failure { throw failure }
    }
}
