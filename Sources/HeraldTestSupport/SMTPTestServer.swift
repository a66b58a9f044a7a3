import Foundation

/// Tests/Peers/smtp_server.py (aiosmtpd) on 127.0.0.1: accepts mail, records what it received, and
/// answers RCPT from a script a test rewrites at will.
public final class SMTPTestServer: @unchecked Sendable {
    /// A message as the peer received it.
    public struct Received: Decodable, Sendable {
        public var from: String
        public var to: [String]
        public var data: String
        /// Whether the session was under STARTTLS.
        public var tls: Bool
        /// The connection it came over (numbered from 1 as they were opened).
        public var session: Int
        /// Connections open when it arrived.
        public var open: Int
    }

    public let port: Int
    let peer: PeerProcess
    let directory: URL
    let recordFile: URL
    let scriptFile: URL

    /// A peer; with `tls` it offers STARTTLS with a fresh self-signed certificate; with `brokenTLS` it
    /// offers STARTTLS and then fails the handshake.
    public init(tls: Bool = false, brokenTLS: Bool = false) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("herald-smtp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        recordFile = directory.appendingPathComponent("received.jsonl")
        scriptFile = directory.appendingPathComponent("script.json")
        peer = try PeerProcess(script: "smtp_server.py", arguments: ["--record", recordFile.path, "--script", scriptFile.path] + (tls ? ["--tls"] : [])
                           + (brokenTLS ? ["--broken-tls"] : []))
        port = peer.port
    }

    /// RCPT replies per recipient, in order of attempts (`"450 4.2.1 busy"`, `"550 5.1.1 unknown"`, `"drop"`).
    public func script(_ replies: [String: [String]]) throws {
        try JSONSerialization.data(withJSONObject: replies).write(to: scriptFile, options: .atomic)
    }

    /// Everything received so far.
    public var received: [Received] {
        guard let text = try? String(contentsOf: recordFile, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { try? JSONDecoder().decode(Received.self, from: Data($0.utf8)) }
    }

    /// How many messages were received so far (without reading them).
    public var receivedCount: Int { countLines(recordFile) }

    public func stop() {
        peer.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    public static func with<R>(tls: Bool = false, brokenTLS: Bool = false, _ body: (SMTPTestServer) async throws -> R) async throws -> R {
        let server = try SMTPTestServer(tls: tls, brokenTLS: brokenTLS)
        defer { server.stop() }
        return try await body(server)
    }
}
