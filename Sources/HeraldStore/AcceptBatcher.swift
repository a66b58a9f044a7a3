import Foundation
import HeraldCore
import Logging
import PostgresNIO

/// Group commit for the accept path: concurrent sends share one transaction. While a transaction is
/// being written, new requests gather; the next one takes them all (up to `maxBatch`). Each request runs
/// inside its own savepoint, with the row-level-security tenant set for it, so a refusal (quota,
/// unknown sender, an idempotency conflict) rolls back only that request. One commit — one WAL flush —
/// then answers them all, and a tenant's hot quota row is locked once per batch instead of once per
/// request.
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
    /// Transactions written at once. One by default: two batch transactions could deadlock (one holding a
    /// tenant's quota row and waiting on an Idempotency-Key the other inserted, the other then needing that
    /// quota row), and a second one did not add throughput (see docs/design.md).
    public let maxFlushes: Int
    private var pending: [(Job, CheckedContinuation<Outcome, Never>)] = []
    private var flushing = 0

    public init(store: SendStore, maxBatch: Int = 64, maxFlushes: Int = 1) {
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
                Task { await self.flush() }
            }
        }
        return try outcome.get()
    }

    private func flush() async {
        while !pending.isEmpty {
            let batch = Array(pending.prefix(maxBatch))
            pending.removeFirst(batch.count)
            let outcomes = await store.acceptBatch(batch.map(\.0))
            for ((_, continuation), outcome) in zip(batch, outcomes) { continuation.resume(returning: outcome) }
        }
        flushing -= 1
    }
}

extension SendStore {
    /// Runs each job in its own savepoint of one transaction; answers one outcome per job. If the
    /// transaction itself fails (the database went away), every job gets that error.
    func acceptBatch(_ jobs: [AcceptBatcher.Job]) async -> [Result<(SendResult, Bool), any Error>] {
        do {
            return try await database.transaction { connection in
                var outcomes: [Result<(SendResult, Bool), any Error>] = []
                outcomes.reserveCapacity(jobs.count)
                for job in jobs {
                    try await connection.query("SAVEPOINT accept", logger: logger)
                    try await connection.query("SELECT set_config('herald.tenant_id', \(job.tenantID.uuidString), true)", logger: logger)
                    do {
                        let result = try await acceptOne(on: connection, tenantID: job.tenantID, send: job.send, idempotency: job.idempotency, now: job.now)
                        try await connection.query("RELEASE SAVEPOINT accept", logger: logger)
                        outcomes.append(.success(result))
                    } catch {
                        try await connection.query("ROLLBACK TO SAVEPOINT accept", logger: logger)
                        try await connection.query("RELEASE SAVEPOINT accept", logger: logger)
                        outcomes.append(.failure(error))
                    }
                }
                return outcomes
            }
        } catch {
            return jobs.map { _ in .failure(error) }
        }
    }
}
