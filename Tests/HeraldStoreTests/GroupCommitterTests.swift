import Foundation
import HeraldStore
import Testing

/// The group committer without a database: the commit is a closure that records the groups it is given,
/// and a gate holds the first commit open so that the test knows what gathers behind it.
@Suite struct GroupCommitterTests {
    /// The groups committed, in order.
    actor Committed<Item: Sendable> {
        var groups: [[Item]] = []
        func append(_ group: [Item]) { groups.append(group) }
    }

    /// Holds a commit until the test opens it, and tells the test when the commit has reached it.
    final class Gate: Sendable {
        let (reached, reachedContinuation) = AsyncStream<Void>.makeStream()
        let (opened, openedContinuation) = AsyncStream<Void>.makeStream()

        /// Called by the commit: signals that it is running, then waits until the test opens the gate.
        func pass() async {
            reachedContinuation.yield()
            for await _ in opened { break }
        }

        /// Waits until a commit is at the gate.
        func waitUntilReached() async {
            for await _ in reached { break }
        }

        func open() { openedContinuation.finish() }
    }

    struct Failed: Error, Equatable {
        var group: [Int]
    }

    @Test func itemsGatherWhileACommitRunsAndTheNextCommitTakesThemAll() async throws {
        let committed = Committed<Int>()
        let gate = Gate()
        let committer = GroupCommitter<Int, Never, Never> { group in
            if group.first == 1 { await gate.pass() }
            await committed.append(group)
        }
        await committer.add(1)
        await gate.waitUntilReached()
        // The first commit is running (held at the gate): these wait for the next one.
        await committer.add(2)
        await committer.add([3, 4])
        await committer.add(5)
        gate.open()
        await committer.finish()
        #expect(await committed.groups == [[1], [2, 3, 4, 5]])
        #expect(await committer.commits == 2)
        // Nothing pending: finish answers at once, and a later item starts a new commit.
        await committer.finish()
        await committer.add(6)
        await committer.finish()
        #expect(await committed.groups == [[1], [2, 3, 4, 5], [6]])
    }

    @Test func withoutAKeyEveryItemIsCommitted() async throws {
        let committed = Committed<Int>()
        let committer = GroupCommitter<Int, Never, Never> { await committed.append($0) }
        await committer.add([7, 7, 7])
        await committer.add([Int]())
        await committer.finish()
        #expect(await committed.groups.flatMap { $0 } == [7, 7, 7])
    }

    @Test func theFirstItemOfEachKeyWinsPendingOrCommitted() async throws {
        struct Outcome: Sendable, Equatable {
            var id: Int
            var status: String
        }
        let committed = Committed<Outcome>()
        let gate = Gate()
        let committer = GroupCommitter<Outcome, Int, Never>(key: \.id) { group in
            if group.first?.id == 1 { await gate.pass() }
            await committed.append(group)
        }
        await committer.add(Outcome(id: 1, status: "delivered"))
        await gate.waitUntilReached()
        await committer.add([Outcome(id: 2, status: "deferred"), Outcome(id: 1, status: "deferred"), Outcome(id: 2, status: "bounced"),
                             Outcome(id: 3, status: "bounced")])
        for id in [1, 2, 3] { #expect(await committer.hasSeen(id)) }
        #expect(await committer.hasSeen(4) == false)
        #expect(await committer.unseen(among: [1, 2, 3, 4, 5]) == [4, 5])
        gate.open()
        await committer.finish()
        // One already committed is not committed again either.
        await committer.add(Outcome(id: 3, status: "delivered"))
        await committer.finish()
        #expect(await committed.groups == [[Outcome(id: 1, status: "delivered")],
                                           [Outcome(id: 2, status: "deferred"), Outcome(id: 3, status: "bounced")]])
    }

    @Test func aFailedCommitDoesNotStopTheNextAndFinishRethrowsIt() async throws {
        let committed = Committed<Int>()
        let gate = Gate()
        let committer = GroupCommitter<Int, Never, Failed> { group throws(Failed) in
            if group.first == 1 { await gate.pass() }
            if group.contains(2) { throw Failed(group: group) }
            await committed.append(group)
        }
        await committer.add(1)
        await gate.waitUntilReached()
        await committer.add([2, 3])
        gate.open()
        await #expect(throws: Failed(group: [2, 3])) { try await committer.finish() }
        #expect(await committed.groups == [[1]])
        // The committer goes on after a failure; finish still reports it.
        await committer.add(4)
        await #expect(throws: Failed(group: [2, 3])) { try await committer.finish() }
        #expect(await committed.groups == [[1], [4]])
    }

    /// The delivery worker's shape: outcomes keyed by message id, any error, the claimed messages still
    /// without an outcome (whose leases are renewed) asked for by id.
    @Test func keyedByIDWithAnyErrorAsTheDeliveryWorkerRecords() async throws {
        struct Result: Sendable, Equatable {
            var id: UUID
            var status: String
        }
        struct StoreDown: Error {}
        let claimed = [UUID(), UUID(), UUID()]
        let committed = Committed<Result>()
        let committer = GroupCommitter<Result, UUID, any Error>(key: \.id) { group in
            if group.contains(where: { $0.status == "unwritable" }) { throw StoreDown() }
            await committed.append(group)
        }
        await committer.add([Result(id: claimed[0], status: "delivered"), Result(id: claimed[0], status: "deferred")])
        #expect(Set(await committer.unseen(among: claimed)) == Set(claimed[1...]))
        try await committer.finish()
        await committer.add([Result(id: claimed[1], status: "unwritable")])
        await #expect(throws: StoreDown.self) { try await committer.finish() }
        #expect(await committer.unseen(among: claimed) == [claimed[2]])
        #expect(await committed.groups == [[Result(id: claimed[0], status: "delivered")]])
    }

    @Test func finishWaitsForEveryCommitItStarted() async throws {
        let committed = Committed<Int>()
        let committer = GroupCommitter<Int, Never, Never> { group in
            // A slow commit: finish must not answer before it ends.
            try? await Task.sleep(for: .milliseconds(20))
            await committed.append(group)
        }
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<50 { group.addTask { await committer.add(index) } }
        }
        await committer.finish()
        let all = await committed.groups.flatMap { $0 }
        #expect(all.sorted() == Array(0..<50))
        #expect(await committer.commits == committed.groups.count)
    }
}
