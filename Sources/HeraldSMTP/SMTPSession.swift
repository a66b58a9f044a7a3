import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// One SMTP connection that lives across many deliveries: ``SMTPClientStateMachine`` driven by one
/// task that owns the channel and takes, one at a time, the events of the session — replies from the
/// server, the connection closing, new messages to send, the request to quit. Between deliveries the
/// session sits idle (an ``SMTPConnectionPool`` keeps it for reuse); the next message goes out over the
/// same connection, after RSET when the previous transaction failed.
public final class SMTPSession: Sendable {
    public let host: String
    public let port: Int
    /// Whether the connection was put under STARTTLS.
    public var isSecured: Bool { status.withLock { $0.secured } }
    /// Whether the session can take more messages (the connection is up and the server has not ended it).
    public var isOpen: Bool { status.withLock { !$0.ended } }
    /// Whether STARTTLS was tried and failed (the connection is gone; a plaintext one may work).
    public var tlsFailed: Bool { status.withLock { $0.tlsFailed } }
    /// Replies the server sent over this connection.
    public var replies: Int { status.withLock { $0.replies } }

    struct Status {
        var ended = false
        var secured = false
        var tlsFailed = false
        var replies = 0
        /// Replies when STARTTLS began: none after it means the handshake never completed.
        var repliesAtTLS: Int?
    }

    enum Event: Sendable {
        case request(Request)
        case bytes(ByteBuffer)
        case closed(String)
        case quit
    }

    struct Request: Sendable {
        var envelopes: [SMTPClientStateMachine.Envelope]
        var finished: @Sendable (Int, [SMTPOutcome]) async -> Void
        var continuation: CheckedContinuation<[[SMTPOutcome]], Never>
    }

    private let status = Mutex(Status())
    private let events: AsyncStream<Event>.Continuation

    private init(host: String, port: Int, events: AsyncStream<Event>.Continuation) {
        self.host = host
        self.port = port
        self.events = events
    }

    /// Connects (TCP only; the greeting, EHLO and STARTTLS happen with the first messages). Throws when
    /// no connection could be made — the caller may try the next MX.
    public static func connect(host: String, port: Int, configuration: SMTPDelivery) async throws -> SMTPSession {
        let replyTimeout = configuration.replyTimeout
        let channel = try await ClientBootstrap(group: configuration.group)
            .connectTimeout(.nanoseconds(Int64(configuration.connectTimeout.components.seconds) * 1_000_000_000
                + configuration.connectTimeout.components.attoseconds / 1_000_000_000))
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    // A server silent for longer than the reply timeout gets its connection closed, which
                    // ends the session with soft failures for what was unfinished.
                    try channel.pipeline.syncOperations.addHandlers([
                        IdleStateHandler(readTimeout: .nanoseconds(Int64(replyTimeout.components.seconds) * 1_000_000_000
                            + replyTimeout.components.attoseconds / 1_000_000_000)),
                        CloseOnIdle(),
                    ])
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        let (stream, continuation) = AsyncStream<Event>.makeStream()
        let session = SMTPSession(host: host, port: port, events: continuation)
        let machine = SMTPClientStateMachine(hostname: configuration.hostname, tlsAvailable: configuration.startTLS)
        Task { await session.run(channel: channel, events: stream, machine: machine, replyTimeout: replyTimeout) }
        return session
    }

    /// Sends `envelopes` over this connection and answers one outcome per recipient of each; `finished`
    /// hears each envelope's outcome as soon as the server has answered it (outcomes made up because the
    /// connection failed are only in the answer). On a session that has ended every envelope is a soft
    /// failure.
    public func send(_ envelopes: [SMTPClientStateMachine.Envelope],
                     finished: @escaping @Sendable (Int, [SMTPOutcome]) async -> Void = { _, _ in }) async -> [[SMTPOutcome]] {
        guard !envelopes.isEmpty else { return [] }
        return await withCheckedContinuation { continuation in
            let request = Request(envelopes: envelopes, finished: finished, continuation: continuation)
            if case .terminated = events.yield(.request(request)) {
                continuation.resume(returning: envelopes.map { $0.recipients.map { _ in .softFailure("the connection to \(host):\(port) is closed") } })
            }
        }
    }

    /// Says QUIT (once the messages in progress are done) and closes the connection.
    public func quit() {
        events.yield(.quit)
    }

    // MARK: The session's task

    private struct Pending {
        var request: Request
        var outcomes: [[SMTPOutcome]?]
        var left: Int
    }

    private func run(channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>, events stream: AsyncStream<Event>, machine initial: SMTPClientStateMachine,
                     replyTimeout: Duration) async {
        var machine = initial
        var parser = SMTPReplyParser()
        var pending: [Int: Pending] = [:]
        var owners: [Int: (request: Int, position: Int)] = [:]
        var nextRequest = 0
        let events = self.events
        let host = self.host
        do {
            try await channel.executeThenClose { inbound, outbound in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        do {
                            for try await chunk in inbound { events.yield(.bytes(chunk)) }
                            events.yield(.closed("the connection closed (or the server was silent for \(replyTimeout))"))
                        } catch {
                            events.yield(.closed("\(error)"))
                        }
                    }
                    var done = false
                    /// `answered`: the actions follow a reply of the server (not a failure of the connection).
                    func perform(_ actions: [SMTPClientStateMachine.Action], answered: Bool = false) async throws {
                        for action in actions {
                            switch action {
                            case .send(let bytes):
                                try await outbound.write(ByteBuffer(bytes: bytes))
                            case .close:
                                done = true
                            case .startTLS:
                                // The TLS handler goes first in the pipeline: what we read is decrypted before it
                                // reaches us and what we write is encrypted (held until the handshake is done). A
                                // failed handshake closes the channel, which ends the session.
                                do {
                                    var configuration = TLSConfiguration.makeClientConfiguration()
                                    configuration.certificateVerification = .none
                                    let context = try NIOSSLContext(configuration: configuration)
                                    let serverName = SMTPDelivery.isIPAddress(host) ? nil : host
                                    let pipeline = channel.channel.pipeline
                                    try await channel.channel.eventLoop.submit {
                                        try pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: serverName),
                                                                               position: .first)
                                    }.get()
                                    status.withLock {
                                        $0.secured = true
                                        $0.repliesAtTLS = $0.replies
                                    }
                                    // The handshake runs from here; writes wait for it. If it fails, the channel
                                    // closes before the server answers EHLO (see `.closed` below).
                                    try await perform(machine.tlsEstablished())
                                } catch {
                                    status.withLock { $0.tlsFailed = true }
                                    try await perform(machine.tlsFailed("\(error)"))
                                }
                            case .finished(let index, let outcomes):
                                guard let owner = owners.removeValue(forKey: index), var entry = pending[owner.request] else { continue }
                                if answered { await entry.request.finished(owner.position, outcomes) }
                                entry.outcomes[owner.position] = outcomes
                                entry.left -= 1
                                if entry.left == 0 {
                                    pending[owner.request] = nil
                                    entry.request.continuation.resume(returning: entry.outcomes.map { $0! })
                                } else {
                                    pending[owner.request] = entry
                                }
                            }
                        }
                    }
                    /// A session that ends with no reply since STARTTLS began failed its TLS handshake.
                    func checkHandshake() {
                        status.withLock {
                            if let mark = $0.repliesAtTLS, $0.replies == mark {
                                $0.tlsFailed = true
                                $0.secured = false
                            }
                        }
                    }
                    var failure: (any Error)?
                    do {
                        for await event in stream {
                            switch event {
                            case .request(let request):
                                let id = nextRequest
                                nextRequest += 1
                                pending[id] = Pending(request: request, outcomes: request.envelopes.map { _ in nil }, left: request.envelopes.count)
                                for (position, envelope) in request.envelopes.enumerated() {
                                    let (index, actions) = machine.enqueue(envelope)
                                    owners[index] = (id, position)
                                    try await perform(actions)
                                }
                            case .bytes(let chunk):
                                do {
                                    parser.append(chunk.readableBytesView)
                                    while let reply = try parser.next() {
                                        status.withLock { $0.replies += 1 }
                                        let actions = machine.received(reply)
                                        try await perform(actions, answered: true)
                                        if actions.contains(.startTLS) {
                                            // Whatever came after the 220 in clear text is dropped unread: it cannot be
                                            // trusted as part of the TLS session (RFC 3207 §6, STARTTLS command injection).
                                            parser = SMTPReplyParser()
                                            break
                                        }
                                    }
                                } catch let error as SMTPProtocolError {
                                    checkHandshake()
                                    try await perform(machine.connectionClosed("protocol error: \(error)"))
                                    done = true
                                }
                            case .closed(let reason):
                                checkHandshake()
                                try await perform(machine.connectionClosed(reason))
                                done = true
                            case .quit:
                                try await perform(machine.quit())
                                if pending.isEmpty && machine.state == .closed { done = true }
                            }
                            if done { break }
                        }
                    } catch {
                        failure = error
                    }
                    status.withLock { $0.ended = true }
                    events.finish()
                    channel.channel.close(promise: nil)
                    group.cancelAll()
                    if let failure { throw failure }
                }
            }
        } catch {
            status.withLock { $0.ended = true }
            events.finish()
            _ = machine.connectionClosed("\(error)")
        }
        // Whatever was not answered (the channel failed under us) is a soft failure; requests that arrive
        // from now on are answered by `send` itself.
        for (_, entry) in pending {
            let outcomes = zip(entry.outcomes, entry.request.envelopes).map { outcome, envelope in
                outcome ?? envelope.recipients.map { _ in .softFailure("the session with \(host) ended") }
            }
            entry.request.continuation.resume(returning: outcomes)
        }
        for await event in stream {
            if case .request(let request) = event {
                request.continuation.resume(returning: request.envelopes.map { $0.recipients.map { _ in .softFailure("the session with \(host) ended") } })
            }
        }
    }
}
