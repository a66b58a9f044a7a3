import AsyncHTTPClient
import Foundation
import HeraldAppTestSupport
import HeraldCore
import HeraldStore
import HeraldTestSupport
import NIOCore
import NIOHTTP1
import Testing

/// Cluster-wide limits across real processes (issue #17): two `herald serve` processes on one database
/// hold one tenant rate between them, list each other, and a graceful stop hands the stopped process's
/// share to the one that stays.
@Suite struct ClusterLimitProcessTests {
    /// HERALD_TENANT_RATE of the two processes (burst twice that).
    static let rate = 20

    @Test func twoProcessesKeepOneTenantRateAndAStoppedOneHandsItsShareBack() async throws {
        let keyBytes = (0..<32).map { _ in UInt8.random(in: 0...255) }
        try await TestApp.run(masterKey: MasterKey(bytes: keyBytes)) { app in
            let (_, token) = try await app.rootToken("Shared")
            var servers: [(process: HeraldProcess, base: String)] = []
            for _ in 0..<2 {
                let port = try await freeLocalPort()
                let process = try HeraldProcess(["serve"], environment: app.serveEnvironment(masterKey: keyBytes, [
                    "HERALD_ROLES": "api", "HERALD_HTTP_HOST": "127.0.0.1", "HERALD_HTTP_PORT": String(port),
                    "HERALD_TENANT_RATE": String(Self.rate),
                ]))
                servers.append((process, "http://127.0.0.1:\(port)"))
            }
            defer { for server in servers { server.process.stop() } }
            let get = Self.get
            func liveProcesses(_ base: String) async throws -> [[String: Any]] {
                let body = try await get(base, "/admin/v1/processes", TestApp.adminToken).body
                let object = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
                let items = object?["items"] as? [[String: Any]] ?? []
                return items.filter { $0["alive"] as? Bool == true }
            }
            for server in servers {
                try await waitUntil("both processes are ready") { (try? await get(server.base, "/readyz", "").status) == 200 }
            }
            try await waitUntil("each process lists both") {
                for server in servers where (try? await liveProcesses(server.base).count) != 2 { return false }
                return true
            }
            let listed = try await liveProcesses(servers[0].base)
            #expect(listed.allSatisfy { ($0["roles"] as? [String]) == ["api"] && $0["httpPort"] is Int && $0["pid"] is Int })
            try await waitUntil("the metric counts both") {
                let metrics = try await get(servers[0].base, "/metrics", "").body
                return metrics.contains("herald_processes{role=\"api\"} 2.0")
            }

            // Both processes hammered at once, each by 4 clients: together they admit what one bucket of
            // `rate`/s and `2 × rate` burst admits, plus one token per process (the bound stated in
            // SharedRateLimiter), and each gets a fair part of it.
            let window = 4.0
            let (admitted, elapsed) = try await Self.hammer(servers.map(\.base), clients: 4, seconds: window, token: token, get: get)
            let bound = Double(Self.rate) * elapsed + Double(2 * Self.rate) + 2
            print("cluster limit: 2 processes admitted \(admitted) (\(admitted.reduce(0, +)) in \(elapsed) s; bound \(bound))")
            #expect(Double(admitted.reduce(0, +)) <= bound + Double(Self.rate) * 0.25, "admitted \(admitted) in \(elapsed) s, bound \(bound)")
            #expect(Double(admitted.reduce(0, +)) >= Double(Self.rate) * elapsed * 0.75, "admitted only \(admitted) in \(elapsed) s")
            #expect(admitted.allSatisfy { Double($0) >= Double(Self.rate) * elapsed * 0.2 }, "unfair split \(admitted)")

            // A graceful stop removes the process at once; the one that stays gets the whole rate again.
            servers[1].process.stop()
            #expect(try await liveProcesses(servers[0].base).count == 1)
            try await Task.sleep(for: .seconds(1.5))
            let (alone, aloneElapsed) = try await Self.hammer([servers[0].base], clients: 4, seconds: window, token: token, get: get)
            print("cluster limit: the remaining process admitted \(alone[0]) in \(aloneElapsed) s")
            #expect(Double(alone[0]) >= Double(Self.rate) * aloneElapsed * 0.85, "after the other stopped, only \(alone[0]) in \(aloneElapsed) s")
            #expect(Double(alone[0]) <= Double(Self.rate) * aloneElapsed + Double(2 * Self.rate) + 1 + Double(Self.rate) * 0.25)
        }
    }

    @Sendable static func get(_ base: String, _ path: String, _ token: String) async throws -> (status: Int, body: String) {
        var request = HTTPClientRequest(url: base + path)
        request.headers.add(name: "authorization", value: "Bearer \(token)")
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
        return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 1 << 20)))
    }

    /// `clients` concurrent loops per base URL for `seconds`: the requests each base admitted (200), and
    /// the seconds from the first request to the last answer. Every answer must be 200 or 429.
    static func hammer(_ bases: [String], clients: Int, seconds: Double, token: String,
                       get: @escaping @Sendable (String, String, String) async throws -> (status: Int, body: String)) async throws -> ([Int], Double) {
        let start = ContinuousClock.now
        let deadline = start + .milliseconds(Int(seconds * 1000))
        let counts = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
            for (index, base) in bases.enumerated() {
                for _ in 0..<clients {
                    group.addTask {
                        var ok = 0
                        while ContinuousClock.now < deadline {
                            let status = try await get(base, "/v1/tags", token).status
                            if status == 200 { ok += 1 } else { #expect(status == 429) }
                        }
                        return (index, ok)
                    }
                }
            }
            var counts = Array(repeating: 0, count: bases.count)
            for try await (index, ok) in group { counts[index] += ok }
            return counts
        }
        let elapsed = ContinuousClock.now - start
        return (counts, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }
}
