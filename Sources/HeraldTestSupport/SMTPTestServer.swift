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
    }

    public let port: Int
    let process: Process
    let stdin: Pipe
    let directory: URL
    let recordFile: URL
    let scriptFile: URL

    /// A peer; with `tls` it offers STARTTLS with a fresh self-signed certificate.
    public init(tls: Bool = false) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("herald-smtp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        recordFile = directory.appendingPathComponent("received.jsonl")
        scriptFile = directory.appendingPathComponent("script.json")
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", TestDatabases.repositoryRoot + "/Tests/Peers/smtp_server.py", "--record", recordFile.path,
                             "--script", scriptFile.path] + (tls ? ["--tls"] : [])
        stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        try process.run()
        var line = Data()
        while !line.contains(0x0A) {
            let chunk = stdout.fileHandleForReading.availableData
            guard !chunk.isEmpty else { break }
            line += chunk
        }
        let text = String(decoding: line, as: UTF8.self)
        guard text.hasPrefix("PORT "), let port = Int(text.dropFirst(5).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            process.terminate()
            throw TestSupportError("the SMTP test peer did not start: \(text)")
        }
        self.port = port
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

    public func stop() {
        try? stdin.fileHandleForWriting.close()
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: directory)
    }

    public static func with<R>(tls: Bool = false, _ body: (SMTPTestServer) async throws -> R) async throws -> R {
        let server = try SMTPTestServer(tls: tls)
        defer { server.stop() }
        return try await body(server)
    }
}
