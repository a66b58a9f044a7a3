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
/// A tenant is in at most two transactions at a time (`perTenant`): they meet on its quota row only when
/// they write (the facts are read without locking it, and the write checks that what was taken still
/// fits), so the second reads and decides while the first writes and commits; more would queue on the
/// row (measured: 4 transactions of one tenant in flight, when the row was locked from the start, spent
/// 15 ms each waiting on it), so its requests gather for the next one instead, while other tenants'
/// requests go in the other transactions in flight, never behind a busy tenant.
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
    /// Transactions of one tenant at once.
    public let perTenant: Int
    private var pending: [(job: Job, continuation: CheckedContinuation<Outcome, Never>)] = []
    private var flushing = 0
    /// Transactions in flight, by tenant.
    private var busy: [UUID: Int] = [:]

    public init(store: SendStore, maxBatch: Int = 256, maxFlushes: Int = 4, perTenant: Int = 2) {
        self.store = store
        self.maxBatch = maxBatch
        self.maxFlushes = maxFlushes
        self.perTenant = perTenant
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
            for tenant in tenants { busy[tenant, default: 0] += 1 }
            let outcomes = await store.acceptBatch(batch.map(\.job))
            for tenant in tenants { busy[tenant] = busy[tenant]! > 1 ? busy[tenant]! - 1 : nil }
            for (entry, outcome) in zip(batch, outcomes) { entry.continuation.resume(returning: outcome) }
        }
        flushing -= 1
    }

    /// The next batch, in arrival order: at most `maxBatch` requests of tenants with fewer than `perTenant`
    /// transactions in flight, and each Idempotency-Key of a tenant once (a repeat waits for the next batch,
    /// where it finds the first one's answer, or for the one in flight's commit).
    private func takeBatch() -> [(job: Job, continuation: CheckedContinuation<Outcome, Never>)] {
        // Most often every request pending goes: taken whole, without copying them one by one.
        if pending.count <= maxBatch, pending.allSatisfy({ $0.job.idempotency == nil && busy[$0.job.tenantID, default: 0] < perTenant }) {
            let taken = pending
            pending = []
            return taken
        }
        var batch: [(job: Job, continuation: CheckedContinuation<Outcome, Never>)] = []
        var rest: [(job: Job, continuation: CheckedContinuation<Outcome, Never>)] = []
        var keys = Set<String>()
        for entry in pending {
            if batch.count < maxBatch, busy[entry.job.tenantID, default: 0] < perTenant,
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
