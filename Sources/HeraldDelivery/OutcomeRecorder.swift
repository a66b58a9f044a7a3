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
    /// A recorder of `worker`'s results. While the database is unreachable (a failover: ``Database/isUnavailable(_:)``)
    /// a commit is tried again every 250 ms for up to `patience`, since what the servers answered is known and a
    /// result lost would send the message again after its lease; recording a result twice is harmless (a
    /// message's first result is the one that counts). A commit that still fails is logged (the messages'
    /// leases run out and they are tried again) and rethrown by ``finish()``.
    static func outcomes(store: DeliveryStore, worker: String, now: @escaping @Sendable () -> Date, logger: Logger,
                         patience: Duration = .seconds(30)) -> OutcomeRecorder {
        OutcomeRecorder(key: \.messageID) { attempts in
            let started = ContinuousClock.now
            while true {
                do {
                    try await store.record(attempts, worker: worker, now: now())
                    return
                } catch where Database.isUnavailable(error) && ContinuousClock.now - started < patience && !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(250))
                } catch {
                    logger.error("recording delivery outcomes failed", metadata: ["error": "\(String(reflecting: error))", "messages": "\(attempts.count)"])
                    throw error
                }
            }
        }
    }
}
