import Foundation
import HeraldCore
import Logging
import PostgresNIO

/// Group commit for the accept path: concurrent sends share one transaction. While a transaction is
/// being written, new requests gather; the next one takes them all (up to `maxBatch`) and accepts them
/// set-wise — one statement per step for all of a tenant's requests (see ``SendStore/acceptBatch(_:)``),
/// not one per request — so one commit, one WAL flush and one lock of a tenant's quota row answer them
/// all.
///
/// A tenant is in one transaction at a time: its transactions would queue on its quota row anyway, so its
/// requests gather for the next one instead (a busy tenant's batches grow rather than wait on each other's
/// locks — measured: 4 transactions of one tenant in flight spent 15 ms each waiting on that row), while
/// other tenants' requests go in the other transactions in flight, never behind a busy tenant.
public actor AcceptBatcher {
    public struct Job: Sendable {
        public var tenantID: UUID
        public var send: ValidatedSend
        public var idempotency: SendStore.Idempotency?
        public var now: Date

        public init(tenantID: UUID, send: ValidatedSend, idempotency: SendStore.Idempotency?, now: Date) {
            self.tenantID = tenantID
            self.send = send
            self.idempotency = idempotency
            self.now = now
        }
    }

    typealias Outcome = Result<(SendResult, Bool), any Error>

    let store: SendStore
    /// Requests per transaction.
    public let maxBatch: Int
    /// Transactions written at once (4): a batch spends most of its time on round trips, so a few in
    /// flight overlap them. They cannot deadlock: every batch takes its locks in one order (tenants
    /// sorted; a tenant's Idempotency-Keys, sorted, before its quota row).
    public let maxFlushes: Int
    private var pending: [(job: Job, continuation: CheckedContinuation<Outcome, Never>)] = []
    private var flushing = 0
    /// Tenants with a transaction in flight (one each: measured with two on `ops/bench send`, no faster —
    /// the second waits on the first's quota row for its writes, which are most of a batch's time).
    private var busy = Set<UUID>()

    public init(store: SendStore, maxBatch: Int = 256, maxFlushes: Int = 4) {
        self.store = store
        self.maxBatch = maxBatch
        self.maxFlushes = maxFlushes
    }

    /// Accepts a send (in a transaction shared with concurrent ones), or throws its refusal.
    public func accept(_ job: Job) async throws -> (SendResult, replayed: Bool) {
        let outcome = await withCheckedContinuation { (continuation: CheckedContinuation<Outcome, Never>) in
            pending.append((job, continuation))
            if flushing < maxFlushes {
                flushing += 1
                Task(priority: .high) { await self.flush() }
            }
        }
        return try outcome.get()
    }

    /// Writes batches while there are requests of tenants without a transaction in flight. The flusher that
    /// frees a tenant looks again, so a request left waiting for its busy tenant is always taken.
    private func flush() async {
        while true {
            let batch = takeBatch()
            guard !batch.isEmpty else { break }
            let tenants = Set(batch.map(\.job.tenantID))
            busy.formUnion(tenants)
            let outcomes = await store.acceptBatch(batch.map(\.job))
            busy.subtract(tenants)
            for (entry, outcome) in zip(batch, outcomes) { entry.continuation.resume(returning: outcome) }
        }
        flushing -= 1
    }

    /// The next batch, in arrival order: at most `maxBatch` requests of tenants without a transaction in
    /// flight, and each Idempotency-Key of a tenant once (a repeat waits for the next batch, where it finds
    /// the first one's answer).
    private func takeBatch() -> [(job: Job, continuation: CheckedContinuation<Outcome, Never>)] {
        var batch: [(job: Job, continuation: CheckedContinuation<Outcome, Never>)] = []
        var rest: [(job: Job, continuation: CheckedContinuation<Outcome, Never>)] = []
        var keys = Set<String>()
        for entry in pending {
            if batch.count < maxBatch, !busy.contains(entry.job.tenantID),
               entry.job.idempotency.map({ keys.insert("\(entry.job.tenantID) \($0.key)").inserted }) ?? true {
                batch.append(entry)
            } else {
                rest.append(entry)
            }
        }
        pending = rest
        return batch
    }
}
