import Foundation

/// Tests/Peers/webhook_receiver.py on 127.0.0.1: an HTTP/1.1 receiver (keep-alive, pipelining, chunked
/// bodies) that records every request and answers from a script a test rewrites at will.
///
/// Script replies, per path and in order of requests (past the end of a list, or for a path not in the
/// script: 200 "ok"): `"200"`, `"500"`, `"410"` (body `status <code>`); `"200 some text"` (that body);
/// `"301 https://example.org/"` (any 3xx, with that Location); `"429 5"`, `"503 5"` (with `Retry-After: 5`);
/// `"slow <seconds> <reply>"`; `"hang"` (never answer, keep the connection open); `"close"` (close
/// without answering). Attempts count from the start of the peer; rewriting the script does not reset them.
public final class WebhookTestServer: @unchecked Sendable {
    /// A request as the peer received it.
    public struct Received: Decodable, Sendable {
        /// The request target as sent (with any query string).
        public var path: String
        public var method: String
        /// Header names in lower case; repeated headers joined with ", ".
        public var headers: [String: String]
        public var body: String
        /// When it had been read (Unix seconds).
        public var at: Double
        /// The status it was answered with; nil for `hang` and `close`.
        public var status: Int?
        /// The n-th request on this path, from 1.
        public var attempt: Int
    }

    public let port: Int
    let peer: PeerProcess
    let directory: URL
    let recordFile: URL
    let scriptFile: URL
    let lock = NSLock()
    /// The script as last written (values are `[String]` or `["always": String]`); guarded by `lock`.
    var currentScript: [String: Any] = [:]

    /// A peer; with `countOnly` it records only `<arrival> <event timestamp>` lines (see `countOnlyLines()`)
    /// and answers every request 200.
    public init(countOnly: Bool = false) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("herald-webhook-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        recordFile = directory.appendingPathComponent("received.jsonl")
        scriptFile = directory.appendingPathComponent("script.json")
        peer = try PeerProcess(script: "webhook_receiver.py", arguments: ["--record", recordFile.path, "--script", scriptFile.path]
                           + (countOnly ? ["--count-only"] : []))
        port = peer.port
    }

    /// `http://127.0.0.1:<port><path>`; `path` starts with "/".
    public func url(_ path: String) -> String {
        "http://127.0.0.1:\(port)\(path)"
    }

    /// Sets the replies of these paths, in order of requests (`["/a": ["500", "500"]]`), keeping the other
    /// paths' scripts.
    public func script(_ replies: [String: [String]]) throws {
        try update { script in
            for (path, list) in replies { script[path] = list }
        }
    }

    /// Answers every request on `path` with `reply` (`"410"`, `"hang"`, `"slow 2 200"`, …).
    public func scriptAlways(_ path: String, _ reply: String) throws {
        try update { script in script[path] = ["always": reply] }
    }

    func update(_ change: (inout [String: Any]) -> Void) throws {
        lock.lock()
        defer { lock.unlock() }
        change(&currentScript)
        try JSONSerialization.data(withJSONObject: currentScript).write(to: scriptFile, options: .atomic)
    }

    /// Everything received so far, in order of arrival.
    public var received: [Received] {
        guard let text = try? String(contentsOf: recordFile, encoding: .utf8) else { return [] }
        let decoder = JSONDecoder()
        return text.split(separator: "\n").compactMap { try? decoder.decode(Received.self, from: Data($0.utf8)) }
    }

    /// The requests received on `path`, in order of arrival.
    public func received(path: String) -> [Received] {
        received.filter { $0.path == path }
    }

    /// How many requests were recorded so far (without reading them); in count-only mode, up to 0.2 s late.
    public var receivedCount: Int { countLines(recordFile) }

    /// In count-only mode: per request, when it arrived and the `timestamp` of its JSON body (Unix seconds;
    /// `event` is NaN for a body without a readable timestamp). Flushed by the peer at least every 0.2 s.
    public func countOnlyLines() -> [(arrival: Double, event: Double)] {
        guard let text = try? String(contentsOf: recordFile, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count == 2, let arrival = Double(fields[0]), let event = Double(fields[1]) else { return nil }
            return (arrival: arrival, event: event)
        }
    }

    /// Stops the peer and removes its files.
    public func stop() {
        peer.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Runs `body` with a peer that is stopped afterwards, whatever happens.
    public static func with<R>(countOnly: Bool = false, _ body: (WebhookTestServer) async throws -> R) async throws -> R {
        let server = try WebhookTestServer(countOnly: countOnly)
        defer { server.stop() }
        return try await body(server)
    }
}
