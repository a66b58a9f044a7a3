import Foundation
import HeraldCore
import Logging
import PostgresNIO

/// Group commit for the accept path: concurrent sends of a tenant share one write. While a tenant's batch is
/// being written, its new requests gather; the next batch takes them all (up to `maxBatch`) and accepts them
/// set-wise — one statement per step for all of them (see ``SendStore/acceptBatch(_:)``), not one per
/// request — so one commit and one WAL flush answer them all. A batch without Idempotency-Keys needs no
/// transaction at all: two statements, each committing on its own.
///
/// A batch is one tenant's: the tenant of the oldest request waiting (whose tenant has a batch free). Batches
/// of several tenants in one transaction held each tenant's rows (its quota lease, its statistics) locked
/// until the whole transaction committed, so the next batch of any of them queued behind all of them
/// (`ops/bench scale` (a2), 16 tenants in turn: 1.07 sessions waiting on row locks with one process, 1,190
/// sends/s against 5,249/s from one tenant). Different tenants' batches run side by side instead
/// (`maxFlushes`), never behind a busy tenant.
///
/// A tenant is in at most two batches at a time (`perTenant`): the second reads and decides while the first
/// writes and commits; more would queue on its rows (measured: 4 transactions of one tenant in flight, when
/// the quota row was locked from the start, spent 15 ms each waiting on it), so its requests gather for the
/// next one instead.
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
    /// Requests per batch.
    public let maxBatch: Int
    /// Batches written at once (4): a batch spends most of its time on round trips, so a few in flight
    /// overlap them. They cannot deadlock: every batch takes its locks in one order (a tenant's
    /// Idempotency-Keys, sorted, before its quota row).
    public let maxFlushes: Int
    /// Batches of one tenant at once.
    public let perTenant: Int
    private var pending: [(job: Job, continuation: CheckedContinuation<Outcome, Never>)] = []
    private var flushing = 0
    /// Batches in flight, by tenant.
    private var busy: [UUID: Int] = [:]

    public init(store: SendStore, maxBatch: Int = 256, maxFlushes: Int = 4, perTenant: Int = 2) {
        self.store = store
        self.maxBatch = maxBatch
        self.maxFlushes = maxFlushes
        self.perTenant = perTenant
    }

    /// Accepts a send (in a batch shared with the tenant's concurrent ones), or throws its refusal.
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

    /// Writes batches while there are requests of tenants with a batch free. The flusher that frees a tenant
    /// looks again, so a request left waiting for its busy tenant is always taken.
    private func flush() async {
        while true {
            let batch = takeBatch()
            guard !batch.isEmpty else { break }
            let tenant = batch[0].job.tenantID
            busy[tenant, default: 0] += 1
            let outcomes = await store.acceptBatch(batch.map(\.job))
            busy[tenant] = busy[tenant]! > 1 ? busy[tenant]! - 1 : nil
            for (entry, outcome) in zip(batch, outcomes) { entry.continuation.resume(returning: outcome) }
        }
        flushing -= 1
    }

    /// The next batch: the requests of one tenant (that of the oldest request whose tenant has fewer than
    /// `perTenant` batches in flight), in arrival order, at most `maxBatch`, each Idempotency-Key once (a repeat
    /// waits for the next batch, where it finds the first one's answer, or for the one in flight's commit).
    private func takeBatch() -> [(job: Job, continuation: CheckedContinuation<Outcome, Never>)] {
        guard let tenant = pending.first(where: { busy[$0.job.tenantID, default: 0] < perTenant })?.job.tenantID else { return [] }
        // Most often every request pending is that tenant's and goes: taken whole, without copying them one by one.
        if pending.count <= maxBatch, pending.allSatisfy({ $0.job.tenantID == tenant && $0.job.idempotency == nil }) {
            let taken = pending
            pending = []
            return taken
        }
        var batch: [(job: Job, continuation: CheckedContinuation<Outcome, Never>)] = []
        var rest: [(job: Job, continuation: CheckedContinuation<Outcome, Never>)] = []
        var keys = Set<String>()
        for entry in pending {
            if entry.job.tenantID == tenant, batch.count < maxBatch, entry.job.idempotency.map({ keys.insert($0.key).inserted }) ?? true {
                batch.append(entry)
            } else {
                rest.append(entry)
            }
        }
        pending = rest
        return batch
    }
}
