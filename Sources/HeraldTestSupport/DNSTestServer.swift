import Foundation

/// Tests/Peers/dns_server.py (dnslib) on 127.0.0.1: an authoritative server whose zone a test rewrites
/// at will (the peer reads it on every query) and whose query log it can read.
public final class DNSTestServer: @unchecked Sendable {
    /// The UDP and TCP port.
    public let port: Int
    let peer: PeerProcess
    let directory: URL
    let zoneFile: URL
    let logFile: URL

    /// Starts the peer with `zone` (`{"name": [["TXT", ["…"], ttl], ["MX", [pref, "host"], ttl], …]}`) and extra flags
    /// (`--truncate-over N`, `--drop-first N`, `--servfail NAME`).
    public init(zone: [String: Any], arguments: [String] = []) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("herald-dns-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        zoneFile = directory.appendingPathComponent("zone.json")
        logFile = directory.appendingPathComponent("peer.log")
        try JSONSerialization.data(withJSONObject: zone).write(to: zoneFile)
        _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
        peer = try PeerProcess(script: "dns_server.py", arguments: ["--zone", zoneFile.path] + arguments,
                               standardError: try FileHandle(forWritingTo: logFile))
        port = peer.port
    }

    /// Replaces the zone (the next query sees it).
    public func setZone(_ zone: [String: Any]) throws {
        try JSONSerialization.data(withJSONObject: zone).write(to: zoneFile, options: .atomic)
    }

    /// What the peer logged: one `udp|tcp NAME TYPE` line per query.
    public var log: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    /// Stops the peer and removes its files.
    public func stop() {
        peer.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Runs `body` with a peer that is stopped afterwards, whatever happens.
    public static func with<R>(zone: [String: Any], arguments: [String] = [], _ body: (DNSTestServer) async throws -> R) async throws -> R {
        let server = try DNSTestServer(zone: zone, arguments: arguments)
        defer { server.stop() }
        return try await body(server)
    }
}

/// A failure of the test support code itself.
public struct TestSupportError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
