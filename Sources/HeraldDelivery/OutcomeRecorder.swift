import Foundation
import HeraldCore
import HeraldStore
import Logging

/// Commits delivery results (``DeliveryAttempt``) as they come, a group at a time (``GroupCommitter``): a
/// message whose server said 250 is marked delivered a few milliseconds later, not at the end of its batch —
/// the window in which a crash makes it go out twice (at-least-once delivery: see docs/design.md) is one
/// commit wide. A message's first result is the one that counts.
typealias OutcomeRecorder = GroupCommitter<DeliveryAttempt, UUID, any Error>

extension GroupCommitter where Item == DeliveryAttempt, Key == UUID, Failure == any Error {
    /// A recorder of `worker`'s results: a commit that fails is logged (the messages' leases run out and they
    /// are tried again) and rethrown by ``finish()``.
    static func outcomes(store: DeliveryStore, worker: String, now: @escaping @Sendable () -> Date, logger: Logger) -> OutcomeRecorder {
        OutcomeRecorder(key: \.messageID) { attempts in
            do {
                try await store.record(attempts, worker: worker, now: now())
            } catch {
                logger.error("recording delivery outcomes failed", metadata: ["error": "\(error)", "messages": "\(attempts.count)"])
                throw error
            }
        }
    }
}
