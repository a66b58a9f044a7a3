import Foundation

/// Tests/Peers/dns_server.py (dnslib) on 127.0.0.1: an authoritative server whose zone a test rewrites
/// at will (the peer reads it on every query) and whose query log it can read.
public final class DNSTestServer: @unchecked Sendable {
    /// The UDP and TCP port.
    public let port: Int
    let peer: PeerProcess
    let directory: URL
    /// The zone file the peer reads on every query (a browser test rewrites it from the records a page shows).
    public let zoneFile: URL
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

extension DNSTestServer {
    /// The zone a tenant would publish for the DNS `records` Herald lists for a domain (TXT values split
    /// into 255-byte strings), leaving out those `skip` picks.
    public static func zone(publishing records: [[String: Any]], except skip: (([String: Any]) -> Bool)? = nil) -> [String: Any] {
        var zone: [String: [[Any]]] = [:]
        for record in records where !(skip?(record) ?? false) {
            let host = record["host"] as? String ?? "", value = record["value"] as? String ?? ""
            if record["type"] as? String == "MX" {
                let parts = value.split(separator: " ")
                zone[host, default: []].append(["MX", [Int(parts[0]) ?? 10, String(parts[1])], 60])
            } else {
                var chunks: [String] = []
                var rest = Substring(value)
                while !rest.isEmpty { chunks.append(String(rest.prefix(255))); rest = rest.dropFirst(255) }
                zone[host, default: []].append(["TXT", chunks, 60])
            }
        }
        return zone
    }
}
