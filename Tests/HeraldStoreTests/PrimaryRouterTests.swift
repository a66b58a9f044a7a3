import Foundation
import HeraldCore
import HeraldTestSupport
import Logging
import PostgresNIO
import Testing
@testable import HeraldStore

/// A DATABASE_URL of several servers (issue #17): Herald's pool writes to the one that takes writes, and
/// when that one vanishes (its forwarder killed) it goes on on the next without a restart. The servers:
/// the read-only cluster ops/test starts (HERALD_TEST_READONLY_DATABASE_URL, listed first: it answers but
/// must not be written to) and the test cluster behind two TCP forwarders.
@Suite(.serialized) struct PrimaryRouterTests {
    static func readOnlyServer() throws -> DatabaseURL {
        guard let text = ProcessInfo.processInfo.environment["HERALD_TEST_READONLY_DATABASE_URL"] else {
            throw TestSupportError("HERALD_TEST_READONLY_DATABASE_URL is not set: ops/test starts the read-only cluster")
        }
        return try DatabaseURL(text)
    }

    @Test func parsesSeveralServersAsLibpqDoes() throws {
        let url = try DatabaseURL("postgres://u:p%40ss@db1:5433,db2,[::1]:6000/mail?target_session_attrs=read-write&sslmode=require")
        #expect(url.endpoints == [.init(host: "db1", port: 5433), .init(host: "db2", port: 5432), .init(host: "::1", port: 6000)])
        #expect(url.host == "db1" && url.port == 5433 && url.password == "p@ss" && url.database == "mail" && url.requireTLS)
        #expect(url.targetSession == .readWrite && url.needsRouter)
        #expect(try DatabaseURL("postgres://u@h/db").needsRouter == false)
        #expect(try DatabaseURL("postgres://u@h/db?target_session_attrs=primary").needsRouter)
        for bad in ["postgres://u@h1,/db", "postgres://u@h1:x,h2/db", "postgres://u@h1,h2:70000/db",
                    "postgres://u@h/db?target_session_attrs=standby", "postgres://u@[::1,h2/db"] {
            #expect(throws: HeraldError.self, "\(bad)") { try DatabaseURL(bad) }
        }
    }

    @Test func writesGoToTheWritableServerAndGoOnWhenItVanishes() async throws {
        let base = try TestDatabases.baseURL(), readOnly = try Self.readOnlyServer()
        let first = try TCPForwarder(to: base.host, port: base.port), second = try TCPForwarder(to: base.host, port: base.port)
        let url = try DatabaseURL("postgres://\(base.username):\(base.password ?? "")@\(readOnly.host):\(readOnly.port),"
                                  + "127.0.0.1:\(first.port),127.0.0.1:\(second.port)/\(base.database)?target_session_attrs=read-write")
        var logger = Logger(label: "router-test")
        logger.logLevel = .critical
        let router = PrimaryRouter(url: url, logger: logger, probeInterval: .milliseconds(500))
        try await router.start()
        // The read-only server answers first, but does not take writes.
        #expect(router.primary == .init(host: "127.0.0.1", port: first.port))
        let table = "router_test_\(UInt32.random(in: 0...UInt32.max))"
        try await TestDatabases.withClient(url.routed(through: router.socketPath)) { client in
            _ = try await client.query(PostgresQuery(unsafeSQL: "CREATE TABLE \(table) (n int PRIMARY KEY)"))
            // Rows written one by one; the first forwarder dies after 20 of them.
            var written: [Int] = [], failures = 0
            var killedAt: ContinuousClock.Instant?, recoveredAfter: Duration?
            for n in 0..<60 {
                if n == 20 {
                    first.kill()
                    killedAt = .now
                }
                while true {
                    do {
                        _ = try await client.query(PostgresQuery(unsafeSQL: "INSERT INTO \(table) VALUES (\(n))"))
                        if let killedAt, recoveredAfter == nil { recoveredAfter = .now - killedAt }
                        written.append(n)
                        break
                    } catch {
                        failures += 1
                        #expect(killedAt != nil, "a write failed before the server vanished: \(String(reflecting: error))")
                        #expect(ContinuousClock.now - killedAt! < .seconds(10), "still failing 10 s after the server vanished")
                        if ContinuousClock.now - killedAt! >= .seconds(10) { return }
                        try await Task.sleep(for: .milliseconds(50))
                    }
                }
            }
            print("router: writes failed \(failures) times; writable again \(recoveredAfter.map { "\($0)" } ?? "-") after the server vanished")
            #expect(router.primary == .init(host: "127.0.0.1", port: second.port) && router.switches == 1)
            // Every write that succeeded is there, once.
            let rows = try await client.query(PostgresQuery(unsafeSQL: "SELECT count(*)::int, count(DISTINCT n)::int FROM \(table)"))
            for try await (count, distinct) in rows.decode((Int, Int).self) { #expect(count == 60 && distinct == 60) }
            _ = try await client.query(PostgresQuery(unsafeSQL: "DROP TABLE \(table)"))
        }
        await router.stop()
    }

    @Test func withNoWritableServerAConnectionWaitsThenFails() async throws {
        let base = try TestDatabases.baseURL(), readOnly = try Self.readOnlyServer()
        let url = try DatabaseURL("postgres://\(base.username):\(base.password ?? "")@\(readOnly.host):\(readOnly.port)/\(base.database)"
                                  + "?target_session_attrs=read-write")
        var logger = Logger(label: "router-test")
        logger.logLevel = .critical
        let router = PrimaryRouter(url: url, logger: logger, waitForPrimary: .seconds(1))
        try await router.start()
        #expect(router.primary == nil)
        let started = ContinuousClock.now
        do {
            let connection = try await PostgresConnection.connect(configuration: try url.routed(through: router.socketPath).connectionConfiguration(),
                                                                  id: 1, logger: logger)
            try await connection.close()
            Issue.record("a connection was made with no server taking writes")
        } catch {
            // The failure is one the API answers 503 (retry), not 500.
            #expect(Database.isUnavailable(error), "\(String(reflecting: error))")
        }
        #expect(ContinuousClock.now - started >= .milliseconds(900))
        // `any` takes the read-only server as it is.
        let anyURL = try DatabaseURL("postgres://\(base.username):\(base.password ?? "")@\(readOnly.host):\(readOnly.port)/\(base.database)")
        #expect(await PrimaryRouter(url: anyURL, logger: logger).isUsable(anyURL.endpoints[0]))
        await router.stop()
    }
}

/// Work on a connection that closes under it is abandoned after a second (PostgresNIO can leave such a
/// query waiting forever), answered 503, and its pool connection is not held.
@Suite struct ConnectionWatchTests {
    @Test func workOnAClosedConnectionIsAbandonedAfterASecond() async throws {
        let base = try TestDatabases.baseURL()
        let connection = try await PostgresConnection.connect(configuration: try base.connectionConfiguration(), id: 7, logger: TestDatabases.logger)
        // Ordinary work passes through.
        let one = try await ConnectionWatch.shared.run(on: connection, logger: TestDatabases.logger, UncheckedWork {
            try await connection.query("SELECT 1", logger: TestDatabases.logger).decode(Int.self).first { _ in true } ?? 0
        })
        #expect(one == 1)
        // Work that never ends, and the connection closed under it.
        let started = ContinuousClock.now
        async let abandoned: Int = ConnectionWatch.shared.run(on: connection, logger: TestDatabases.logger, UncheckedWork {
            try await Task.sleep(for: .seconds(3_600))
            return 0
        })
        try await Task.sleep(for: .milliseconds(100))
        try await connection.close()
        do {
            _ = try await abandoned
            Issue.record("the work was not abandoned")
        } catch let error as HeraldError {
            #expect(error.code == HeraldError.databaseUnavailable.code)
        }
        let waited = ContinuousClock.now - started
        #expect(waited >= .milliseconds(1_000) && waited < .seconds(5), "\(waited)")
    }

    /// A connection closed a moment ago can leave its memory, and so its identity, to a new connection;
    /// the old one's grace must not abandon the new one's work (seen once in a full run: work answered 503
    /// on a live connection).
    @Test func aNewConnectionIsNotAbandonedForAnOldOnesClose() async throws {
        let base = try TestDatabases.baseURL()
        let configuration = try base.connectionConfiguration()
        let abandoned = try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<16 {
                group.addTask {
                    var lost = 0
                    for round in 0..<3 {
                        let old = try await PostgresConnection.connect(configuration: configuration, id: index * 10 + round, logger: TestDatabases.logger)
                        _ = try await ConnectionWatch.shared.run(on: old, logger: TestDatabases.logger, UncheckedWork {
                            try await old.query("SELECT 1", logger: TestDatabases.logger).decode(Int.self).first { _ in true } ?? 0
                        })
                        try await old.close()
                        let new = try await PostgresConnection.connect(configuration: configuration, id: 1_000 + index * 10 + round,
                                                                       logger: TestDatabases.logger)
                        do {
                            _ = try await ConnectionWatch.shared.run(on: new, logger: TestDatabases.logger, UncheckedWork {
                                try await new.query("SELECT pg_sleep(1.2)", logger: TestDatabases.logger).decode(String.self).first { _ in true }
                            })
                        } catch let error as HeraldError where error.code == HeraldError.databaseUnavailable.code {
                            lost += 1
                        }
                        try await new.close()
                    }
                    return lost
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(abandoned == 0, "work on a live connection abandoned for an old connection's close")
    }
}
