import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL

/// Decides what an ``SMTPServer`` accepts. Called off the event loop; may use the database.
public protocol SMTPServerDelegate: Sendable {
    /// The reply to `RCPT TO:<address>`: 2xx accepts the recipient.
    func recipient(_ address: String, from: String, client: SocketAddress?) async -> SMTPReply
    /// The reply to the message's final dot: 2xx means it was taken (durably, where that matters).
    func deliver(_ envelope: SMTPServerStateMachine.Envelope, client: SocketAddress?) async -> SMTPReply
    /// The reply to AUTH's credentials: 235 authenticates the connection as `username`.
    func authenticate(username: String, password: String, client: SocketAddress?) async -> SMTPReply
    /// AUTH's answer with what the session keeps of it: a credential makes each MAIL ask ``sender(_:authenticatedAs:credential:client:)``.
    func login(username: String, password: String, client: SocketAddress?) async -> SMTPLogin
    /// The reply to MAIL FROM after a login with a credential: 2xx goes on; 421 or 535 (the login no longer
    /// holds: password changed, sender gone) ends the session.
    func sender(_ address: String, authenticatedAs user: String, credential: String, client: SocketAddress?) async -> SMTPReply
}

/// The answer to AUTH: the reply, and for a 235 what the session hands back at each MAIL.
public struct SMTPLogin: Sendable, Hashable {
    public var reply: SMTPReply
    public var credential: String?

    public init(reply: SMTPReply, credential: String? = nil) {
        self.reply = reply
        self.credential = credential
    }
}

extension SMTPServerDelegate {
    /// Servers without AUTH never get here (the machine refuses AUTH first).
    public func authenticate(username: String, password: String, client: SocketAddress?) async -> SMTPReply {
        SMTPServerStateMachine.reply(535, (5, 7, 8), "Authentication credentials invalid")
    }

    /// ``authenticate(username:password:client:)`` without a credential.
    public func login(username: String, password: String, client: SocketAddress?) async -> SMTPLogin {
        SMTPLogin(reply: await authenticate(username: username, password: password, client: client))
    }

    /// Every MAIL goes on.
    public func sender(_ address: String, authenticatedAs user: String, credential: String, client: SocketAddress?) async -> SMTPReply {
        SMTPServerStateMachine.reply(250, (2, 1, 0), "OK")
    }
}

/// An SMTP server on SwiftNIO: ``SMTPServerStateMachine`` per connection, driven by a channel handler,
/// with a cap on connections (in all, per client address, and per client address before AUTH), an idle
/// timeout and optional STARTTLS.
public final class SMTPServer: Sendable {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        public var session: SMTPServerStateMachine.Settings
        /// The certificate for STARTTLS (none: STARTTLS is not offered).
        public var tls: NIOSSLContext?
        /// TLS from the first byte (SMTPS, port 465) instead of STARTTLS; needs ``tls``.
        public var implicitTLS = false
        /// A connection that sends nothing this long is closed (RFC 5321 §4.5.3.2.7 suggests 5 minutes).
        public var idleTimeout: TimeAmount = .minutes(5)
        public var maxConnections = 500
        public var maxConnectionsPerAddress = 20
        /// Connections per client address that have not authenticated (yet): kept small, so that a few
        /// addresses cannot hold every connection open without a password.
        public var maxUnauthenticatedPerAddress = 20
        public var group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton

        public init(host: String, port: Int, session: SMTPServerStateMachine.Settings, tls: NIOSSLContext? = nil) {
            self.host = host
            self.port = port
            self.session = session
            self.tls = tls
            self.session.tlsAvailable = tls != nil
        }

        /// Offers STARTTLS with a PEM certificate chain and private key.
        public mutating func loadTLS(certificatePath: String, keyPath: String) throws {
            let chain = try NIOSSLCertificate.fromPEMFile(certificatePath).map { NIOSSLCertificateSource.certificate($0) }
            let key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
            tls = try NIOSSLContext(configuration: .makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key)))
            session.tlsAvailable = true
        }
    }

    struct Connections {
        var open: [ObjectIdentifier: any Channel] = [:]
        var perAddress: [String: Int] = [:]
        /// Connections that have not authenticated, and their number per client address.
        var unauthenticated: Set<ObjectIdentifier> = []
        var unauthenticatedPerAddress: [String: Int] = [:]
        var closed = false

        /// A connection that authenticated, or closed, no longer counts as unauthenticated.
        mutating func leaveUnauthenticated(_ id: ObjectIdentifier, address: String) {
            guard unauthenticated.remove(id) != nil else { return }
            unauthenticatedPerAddress[address, default: 1] -= 1
            if unauthenticatedPerAddress[address] == 0 { unauthenticatedPerAddress[address] = nil }
        }
    }

    let channel: any Channel
    let connections: NIOLockedValueBox<Connections>

    private init(channel: any Channel, connections: NIOLockedValueBox<Connections>) {
        self.channel = channel
        self.connections = connections
    }

    /// The port it listens on (the one chosen when the configuration said 0).
    public var port: Int { channel.localAddress?.port ?? 0 }

    /// Listens until ``close()``.
    public static func bind(_ configuration: Configuration, delegate: any SMTPServerDelegate, logger: Logger) async throws -> SMTPServer {
        let connections = NIOLockedValueBox(Connections())
        let session = {
            var session = configuration.session
            session.tlsAvailable = configuration.tls != nil && !configuration.implicitTLS
            session.startsSecured = configuration.tls != nil && configuration.implicitTLS
            return session
        }()
        let channel = try await ServerBootstrap(group: configuration.group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                let address = channel.remoteAddress?.ipAddress ?? "?"
                let id = ObjectIdentifier(channel)
                let admitted = connections.withLockedValue { state -> Bool in
                    guard !state.closed, state.open.count < configuration.maxConnections,
                          state.perAddress[address, default: 0] < configuration.maxConnectionsPerAddress,
                          state.unauthenticatedPerAddress[address, default: 0] < configuration.maxUnauthenticatedPerAddress else { return false }
                    state.open[id] = channel
                    state.perAddress[address, default: 0] += 1
                    state.unauthenticated.insert(id)
                    state.unauthenticatedPerAddress[address, default: 0] += 1
                    return true
                }
                guard admitted else {
                    let refusal = SMTPServerStateMachine.reply(421, (4, 7, 0), "\(configuration.session.hostname) Too many connections, try again later")
                    return channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(RefusalHandler(reply: refusal))
                    }
                }
                channel.closeFuture.whenComplete { _ in
                    connections.withLockedValue { state in
                        state.leaveUnauthenticated(id, address: address)
                        state.open[id] = nil
                        state.perAddress[address, default: 1] -= 1
                        if state.perAddress[address] == 0 { state.perAddress[address] = nil }
                    }
                }
                return channel.eventLoop.makeCompletedFuture {
                    if configuration.implicitTLS, let tls = configuration.tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
                    }
                    try channel.pipeline.syncOperations.addHandlers([
                        IdleStateHandler(readTimeout: configuration.idleTimeout),
                        SMTPServerHandler(settings: session, tls: configuration.tls, delegate: delegate, logger: logger) {
                            connections.withLockedValue { $0.leaveUnauthenticated(id, address: address) }
                        },
                    ])
                }
            }
            .bind(host: configuration.host, port: configuration.port).get()
        return SMTPServer(channel: channel, connections: connections)
    }

    /// Stops listening and closes every connection.
    public func close() {
        let open = connections.withLockedValue { state in
            state.closed = true
            return Array(state.open.values)
        }
        channel.close(promise: nil)
        for connection in open { connection.close(promise: nil) }
    }

    /// Returns when the listener has closed.
    public func wait() async {
        try? await channel.closeFuture.get()
    }
}

/// Answers a connection over the caps with one reply and closes it.
final class RefusalHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let reply: SMTPReply

    init(reply: SMTPReply) {
        self.reply = reply
    }

    func channelActive(context: ChannelHandlerContext) {
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: reply.encoded))).whenComplete { _ in bound.value.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}

/// Drives one connection's ``SMTPServerStateMachine``: splits lines (taking them one at a time, so that
/// pipelined commands wait while the delegate is asked), writes replies, asks the delegate off the event
/// loop and starts TLS.
final class SMTPServerHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var machine: SMTPServerStateMachine
    private let tls: NIOSSLContext?
    private let delegate: any SMTPServerDelegate
    private let logger: Logger
    private var buffer = ByteBuffer()
    /// Skipping the rest of a line that was cut at the limit.
    private var discarding = false
    private var closing = false
    private var unflushed = false
    /// Told once, when the connection authenticates (it then leaves the cap on unauthenticated connections).
    private var onAuthenticated: (@Sendable () -> Void)?
    /// Longest DATA line taken whole (RFC 5321 says 1,000 with the CRLF; real mail exceeds it).
    static let maxDataLine = 65_536
    /// Bytes a client may send ahead while the delegate is being asked.
    static let maxBuffered = 1 << 20

    init(settings: SMTPServerStateMachine.Settings, tls: NIOSSLContext?, delegate: any SMTPServerDelegate, logger: Logger,
         onAuthenticated: (@Sendable () -> Void)? = nil) {
        self.onAuthenticated = onAuthenticated
        self.machine = SMTPServerStateMachine(settings: settings)
        self.tls = tls
        self.delegate = delegate
        self.logger = logger
    }

    func channelActive(context: ChannelHandlerContext) {
        write(machine.greeting, context: context)
        flush(context: context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        guard !closing else { return }
        buffer.writeBuffer(&incoming)
        process(context: context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read, !closing {
            perform(machine.timedOut(), context: context)
            flush(context: context)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("SMTP connection error", metadata: ["error": "\(error)"])
        closing = true
        context.close(promise: nil)
    }

    /// Takes the lines that have arrived, as far as the machine is not waiting for its delegate.
    private func process(context: ChannelHandlerContext) {
        while !closing, !machine.isWaiting, let (line, overlong) = nextLine() {
            perform(machine.receive(line: line, overlong: overlong), context: context)
        }
        if !closing, buffer.readableBytes > Self.maxBuffered {
            perform(.replyAndClose(SMTPServerStateMachine.reply(421, (4, 7, 0), "Too much input")), context: context)
        }
        if buffer.readerIndex > 65_536 { buffer.discardReadBytes() }
        flush(context: context)
    }

    private func nextLine() -> ([UInt8], Bool)? {
        let limit = machine.isReadingData ? Self.maxDataLine : machine.settings.maxCommandLength
        while true {
            let view = buffer.readableBytesView
            guard let newline = view.firstIndex(of: 10) else {
                if discarding {
                    buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
                } else if view.count > limit {
                    let cut = buffer.readBytes(length: limit) ?? []
                    buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
                    discarding = true
                    return (cut, true)
                }
                return nil
            }
            var line = buffer.readBytes(length: newline - view.startIndex) ?? []
            buffer.moveReaderIndex(forwardBy: 1)
            if discarding {
                discarding = false
                continue
            }
            if line.last == 13 { line.removeLast() }
            return line.count > limit ? (Array(line.prefix(limit)), true) : (line, false)
        }
    }

    private func perform(_ action: SMTPServerStateMachine.Action, context: ChannelHandlerContext) {
        switch action {
        case .none:
            break
        case .reply(let reply):
            write(reply, context: context)
        case .replyAndClose(let reply):
            closing = true
            unflushed = false
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: reply.encoded))).whenComplete { _ in bound.value.close(promise: nil) }
        case .checkRecipient(let address):
            let delegate = self.delegate, remote = context.remoteAddress
            let from = machine.currentSender ?? ""
            ask(context: context, { await delegate.recipient(address, from: from, client: remote) }) { $0.recipientChecked($1) }
        case .authenticate(let username, let password):
            let delegate = self.delegate, remote = context.remoteAddress
            ask(context: context, { await delegate.login(username: username, password: password, client: remote) }) {
                $0.authenticated($1.reply, credential: $1.credential)
            }
        case .checkSender(let address):
            let delegate = self.delegate, remote = context.remoteAddress
            let user = machine.authenticatedAs ?? "", credential = machine.credential ?? ""
            ask(context: context, { await delegate.sender(address, authenticatedAs: user, credential: credential, client: remote) }) {
                $0.senderChecked($1)
            }
        case .deliver(let envelope):
            let delegate = self.delegate, remote = context.remoteAddress
            ask(context: context, { await delegate.deliver(envelope, client: remote) }) { $0.delivered($1) }
        case .startTLS(let reply):
            guard let tls else { return }
            // Anything sent after STARTTLS and before the handshake is not trusted (RFC 3207 §5; the
            // "STARTTLS command injection" of CVE-2011-0411): it is dropped.
            buffer.clear()
            discarding = false
            write(reply, context: context)
            flush(context: context)
            do {
                try context.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls), position: .first)
            } catch {
                closing = true
                context.close(promise: nil)
            }
        }
    }

    /// Asks the delegate off the event loop; its answer goes to the machine, and the lines that waited are taken.
    private func ask<Answer: Sendable>(context: ChannelHandlerContext, _ question: @escaping @Sendable () async -> Answer,
                                       then answer: @escaping @Sendable (inout SMTPServerStateMachine, Answer) -> SMTPServerStateMachine.Action) {
        flush(context: context)
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let future = context.eventLoop.makeFutureWithTask(question)
        future.whenSuccess { reply in
            let (handler, context) = bound.value
            guard !handler.closing else { return }
            handler.perform(answer(&handler.machine, reply), context: context)
            if handler.machine.authenticatedAs != nil, let onAuthenticated = handler.onAuthenticated {
                handler.onAuthenticated = nil
                onAuthenticated()
            }
            handler.process(context: context)
        }
    }

    private func write(_ reply: SMTPReply, context: ChannelHandlerContext) {
        context.write(wrapOutboundOut(ByteBuffer(bytes: reply.encoded)), promise: nil)
        unflushed = true
    }

    private func flush(context: ChannelHandlerContext) {
        guard unflushed else { return }
        unflushed = false
        context.flush()
    }
}
