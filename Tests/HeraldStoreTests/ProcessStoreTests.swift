import Foundation
import HeraldCore
import HeraldTestSupport
import PostgresNIO
import Testing
@testable import HeraldStore

/// The processes of an installation and their shares of the cluster-wide limits, on PostgreSQL: the
/// exchange's lock keeps the live grants of a bucket within its limit however many processes trade at
/// once; a process that stops hands its shares back, and one not seen for 10 s no longer counts.
@Suite struct ProcessStoreTests {
    static func process(_ roles: [String] = ["api"]) -> ProcessRecord {
        ProcessRecord(id: UUID(), roles: roles, host: "test-host", pid: Int.random(in: 2...99_999), httpPort: 8080)
    }

    static func liveGranted(_ database: Database, _ bucket: String) async throws -> Double {
        try await database.withSystem { connection in
            let rows = try await connection.query("""
                SELECT coalesce(sum(s.granted), 0) FROM herald_limit_shares s JOIN herald_processes p ON p.id = s.process_id
                WHERE s.bucket = \(bucket) AND s.expires_at > clock_timestamp() AND p.last_seen > clock_timestamp() - interval '10 seconds'
                """, logger: database.logger)
            return try await rows.decode(Double.self).first { _ in true } ?? 0
        }
    }

    @Test func processesRegisterListAndLeave() async throws {
        try await withTestDatabase { database, _ in
            let store = ProcessStore(database: database)
            let api = Self.process(), scheduler = Self.process(["scheduler", "dispatcher"])
            try await store.heartbeat(api)
            let live = try await store.heartbeat(scheduler)
            #expect(live == ["api": 1, "scheduler": 1, "dispatcher": 1])
            let listed = try await store.list()
            #expect(Set(listed.map(\.id)) == [api.id, scheduler.id] && listed.allSatisfy(\.alive))
            #expect(listed.first { $0.id == scheduler.id }?.roles == ["scheduler", "dispatcher"])
            // A heartbeat after the row was swept registers the process again.
            try await store.deregister(api.id)
            #expect(try await store.list().map(\.id) == [scheduler.id])
            try await store.heartbeat(api)
            #expect(try await store.list().count == 2)
        }
    }

    @Test func twoProcessesShareOneLimitAndAStoppedOneHandsItsShareBack() async throws {
        try await withTestDatabase { database, _ in
            let store = ProcessStore(database: database)
            let first = Self.process(), second = Self.process()
            try await store.heartbeat(first)
            let a = LimitShareStore(database: database, process: first.id), b = LimitShareStore(database: database, process: second.id)
            // Alone: the whole limit.
            let request = ShareRequest(bucket: "tenant:x", limit: 100, wants: 10, roles: ["api"])
            #expect(try await a.exchange([request], ttl: 3).grants == [100])
            // A second process arrives: nothing is free until the first renews, then they split it.
            try await store.heartbeat(second)
            #expect(try await b.exchange([request], ttl: 3).grants == [0])
            let renewed = try await a.exchange([request], ttl: 3).grants[0]
            #expect(renewed == 10 + 80.0 / 2)
            #expect(try await b.exchange([request], ttl: 3).grants == [50])
            #expect(try await Self.liveGranted(database, "tenant:x") == 100)
            #expect(try await store.list().allSatisfy { $0.shares == 1 })
            // A process of another role does not take a slice: the scheduler never asks for tenant rates.
            try await store.heartbeat(Self.process(["scheduler"]))
            #expect(try await a.exchange([request], ttl: 3).grants == [50])
            // The second stops: its share is gone at once and the first gets the whole limit again.
            try await store.deregister(second.id)
            #expect(try await Self.liveGranted(database, "tenant:x") == 50)
            #expect(try await a.exchange([request], ttl: 3).grants == [100])
            // A release hands the share back.
            #expect(try await a.exchange([ShareRequest(bucket: "tenant:x", limit: 100, wants: 0, release: true, roles: ["api"])], ttl: 3).grants == [0])
            #expect(try await Self.liveGranted(database, "tenant:x") == 0)
        }
    }

    @Test func aProcessNotSeenFor10SecondsNoLongerHoldsItsShare() async throws {
        try await withTestDatabase { database, _ in
            let store = ProcessStore(database: database)
            let first = Self.process(), gone = Self.process()
            try await store.heartbeat(first)
            try await store.heartbeat(gone)
            let request = ShareRequest(bucket: "sender:y", limit: 40, wants: 40, roles: ["api"])
            #expect(try await LimitShareStore(database: database, process: gone.id).exchange([request], ttl: 60).grants == [40])
            #expect(try await LimitShareStore(database: database, process: first.id).exchange([request], ttl: 3).grants == [0])
            // Its heartbeat stops (a crash): after 10 s its grant no longer counts, though its row's lease runs on.
            _ = try await database.withSystem { connection in
                try await connection.query("UPDATE herald_processes SET last_seen = clock_timestamp() - interval '11 seconds' WHERE id = \(gone.id)",
                                           logger: database.logger)
            }
            #expect(try await LimitShareStore(database: database, process: first.id).exchange([request], ttl: 3).grants == [40])
            #expect(try await store.list().first { $0.id == gone.id }?.alive == false)
        }
    }

    @Test func concurrentExchangesNeverGrantMoreThanTheLimit() async throws {
        try await withTestDatabase { database, _ in
            let store = ProcessStore(database: database)
            let processes = (0..<4).map { _ in Self.process() }
            for process in processes { try await store.heartbeat(process) }
            let buckets = ["tenant:a", "tenant:b", "tenant:c"]
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (index, process) in processes.enumerated() {
                    group.addTask {
                        let exchange = LimitShareStore(database: database, process: process.id)
                        for round in 0..<15 {
                            // Each asks for the buckets in its own order; the lock order is the hashes', so no deadlock.
                            let order = (index + round).isMultiple(of: 2) ? buckets : buckets.reversed()
                            let requests = order.map { ShareRequest(bucket: $0, limit: 60, wants: Double.random(in: 0...120), roles: ["api"]) }
                            _ = try await exchange.exchange(requests, ttl: 30)
                        }
                    }
                }
                group.addTask {
                    for _ in 0..<30 {
                        for bucket in buckets {
                            let granted = try await Self.liveGranted(database, bucket)
                            #expect(granted <= 60 + 1e-9)
                        }
                    }
                }
                try await group.waitForAll()
            }
            for bucket in buckets {
                let granted = try await Self.liveGranted(database, bucket)
                #expect(granted <= 60 + 1e-9 && granted > 0, "\(bucket): \(granted)")
            }
        }
    }
}
