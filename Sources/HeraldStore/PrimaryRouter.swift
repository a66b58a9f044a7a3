import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO

/// Herald's way to a database that fails over: a `DATABASE_URL` that lists several servers
/// (`postgres://u:p@h1:5432,h2:5432/db?target_session_attrs=read-write`, as libpq takes it) is served
/// through this router. PostgresNIO's pool connects to one server, so the pool connects to the router's
/// Unix socket instead, and the router relays each of its connections, byte for byte, to the server that
/// takes writes now (TLS to it when the URL requires it; the socket is the process's own).
///
/// Which server that is, the router learns by probing each one in turn (`SHOW transaction_read_only`,
/// or `pg_is_in_recovery()` for `primary`): at start, every `probeInterval`, and at once when a
/// connection to the one it knows fails. When the writable server changes, the connections relayed to
/// the old one are closed, so the pool opens new ones (to the new one). While no server takes writes, a
/// new connection waits for one up to `waitForPrimary`, probing every 250 ms, and is closed after that
/// (the pool reports the failure and tries again).
public final class PrimaryRouter: Sendable {
    /// Where the pool connects.
    public let socketPath: String
    let url: DatabaseURL
    let logger: Logger
    let probeInterval: TimeAmount
    let waitForPrimary: TimeAmount
    private let state = NIOLockedValueBox(State())
    private let group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton

    struct State {
        var primary: DatabaseURL.Endpoint?
        var relayed: [ObjectIdentifier: (endpoint: DatabaseURL.Endpoint, inbound: any Channel, outbound: any Channel)] = [:]
        var server: (any Channel)?
        var switches = 0
        /// The last server found writable.
        var lastKnown: DatabaseURL.Endpoint?
    }

    public init(url: DatabaseURL, logger: Logger, probeInterval: TimeAmount = .seconds(1), waitForPrimary: TimeAmount = .seconds(10)) {
        self.url = url
        self.logger = logger
        self.probeInterval = probeInterval
        self.waitForPrimary = waitForPrimary
        socketPath = NSTemporaryDirectory() + "herald-db-\(ProcessInfo.processInfo.processIdentifier)-\(UInt32.random(in: 0...UInt32.max)).sock"
    }

    /// The server that takes writes, as last probed.
    public var primary: DatabaseURL.Endpoint? { state.withLockedValue { $0.primary } }
    /// How many times the writable server changed since start.
    public var switches: Int { state.withLockedValue { $0.switches } }

    /// Listens on ``socketPath`` (call before the pool connects).
    public func start() async throws {
        try? FileManager.default.removeItem(atPath: socketPath)
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .childChannelOption(.autoRead, value: false)
            .childChannelInitializer { [self] inbound in
                // The relay starts once the channel is set up (it waits for a server, which the
                // initializer must not).
                Task { await self.relay(inbound) }
                return inbound.eventLoop.makeSucceededVoidFuture()
            }
            .bind(unixDomainSocketPath: socketPath, cleanupExistingSocketFile: true)
            .get()
        state.withLockedValue { $0.server = server }
        _ = await probe()
    }

    /// Probes every `probeInterval` until cancelled, then stops listening and closes what it relays.
    public func run() async {
        while !Task.isCancelled {
            try? await Task.sleep(nanoseconds: UInt64(probeInterval.nanoseconds))
            if Task.isCancelled { break }
            _ = await probe()
        }
        await stop()
    }

    /// Stops listening and closes every relayed connection.
    public func stop() async {
        let (server, relayed) = state.withLockedValue { state in
            defer { state.server = nil; state.relayed = [:] }
            return (state.server, Array(state.relayed.values))
        }
        try? await server?.close()
        for entry in relayed { entry.inbound.close(promise: nil) }
        try? FileManager.default.removeItem(atPath: socketPath)
    }

    /// Finds the server that takes writes (the first in the URL's order), records it, and closes the
    /// connections relayed to another one when it changed. Nil while none does.
    @discardableResult
    func probe() async -> DatabaseURL.Endpoint? {
        var found: DatabaseURL.Endpoint?
        for endpoint in url.endpoints where await isUsable(endpoint) {
            found = endpoint
            break
        }
        // Only a change is logged (a relay waiting for a server probes every 250 ms).
        let (stale, change): ([any Channel], String?) = state.withLockedValue { state in
            guard state.primary != found else { return ([], nil) }
            let previous = state.primary
            state.primary = found
            if let found, let last = state.lastKnown, last != found { state.switches += 1 }
            if let found { state.lastKnown = found }
            let stale = state.relayed.values.filter { $0.endpoint != found }.map(\.inbound)
            let change = found.map { "the writable database server is now \($0)" + (previous == nil ? "" : " (was \(previous!))") }
                ?? "no database server takes writes (was \(previous.map { "\($0)" } ?? "none"))"
            return (stale, change)
        }
        if let change {
            logger.log(level: found == nil ? .error : .warning, "\(change)", metadata: ["closing": "\(stale.count)"])
        }
        for channel in stale { channel.close(promise: nil) }
        return found
    }

    /// Whether `endpoint` answers and, for read-write and primary, takes writes.
    func isUsable(_ endpoint: DatabaseURL.Endpoint) async -> Bool {
        do {
            let connection = try await PostgresConnection.connect(on: group.next(), configuration: try url.connectionConfiguration(to: endpoint),
                                                                  id: 0, logger: logger)
            defer { Task { try? await connection.close() } }
            switch url.targetSession {
            case .any:
                return true
            case .readWrite:
                let rows = try await connection.query("SHOW transaction_read_only", logger: logger)
                for try await value in rows.decode(String.self) { return value == "off" }
                return false
            case .primary:
                let rows = try await connection.query("SELECT pg_is_in_recovery()", logger: logger)
                for try await value in rows.decode(Bool.self) { return !value }
                return false
            }
        } catch {
            return false
        }
    }

    /// Connects `inbound` (from the pool) to the writable server and relays between them.
    private func relay(_ inbound: any Channel) async {
        let deadline = NIODeadline.now() + waitForPrimary
        var probed = false
        while NIODeadline.now() < deadline {
            var target = state.withLockedValue { $0.primary }
            if target == nil || probed { target = await probe() }
            if let target, let outbound = try? await connect(target) {
                let key = ObjectIdentifier(inbound)
                state.withLockedValue { $0.relayed[key] = (target, inbound, outbound) }
                inbound.closeFuture.whenComplete { [self] _ in
                    state.withLockedValue { _ = $0.relayed.removeValue(forKey: key) }
                    outbound.close(promise: nil)
                }
                outbound.closeFuture.whenComplete { _ in inbound.close(promise: nil) }
                do {
                    try await inbound.pipeline.addHandler(RelayHandler(partner: outbound)).get()
                    try await outbound.pipeline.addHandler(RelayHandler(partner: inbound)).get()
                    inbound.setOption(.autoRead, value: true).whenComplete { _ in inbound.read() }
                } catch {
                    inbound.close(promise: nil)
                }
                // A change of server found meanwhile closes this one too.
                if state.withLockedValue({ $0.primary }) != target { inbound.close(promise: nil) }
                return
            }
            if probed { try? await Task.sleep(nanoseconds: 250_000_000) }
            probed = true
        }
        logger.error("no database server takes writes; a connection of the pool was closed", metadata: ["servers": "\(url.endpoints)"])
        inbound.close(promise: nil)
    }

    /// A connection to `endpoint`, with TLS when the URL requires it (PostgreSQL's SSLRequest first).
    private func connect(_ endpoint: DatabaseURL.Endpoint) async throws -> any Channel {
        let channel = try await ClientBootstrap(group: group)
            .connectTimeout(.seconds(2))
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .connect(host: endpoint.host, port: endpoint.port)
            .get()
        guard url.requireTLS else { return channel }
        do {
            let answer = channel.eventLoop.makePromise(of: UInt8.self)
            try await channel.eventLoop.submit {
                try channel.pipeline.syncOperations.addHandler(SSLRequestHandler(answer: answer), name: "ssl-request")
            }.get()
            var request = channel.allocator.buffer(capacity: 8)
            request.writeInteger(Int32(8))
            request.writeInteger(Int32(80_877_103))
            try await channel.writeAndFlush(request).get()
            guard try await answer.futureResult.get() == UInt8(ascii: "S") else { throw RouterError.tlsRefused(endpoint) }
            let context = try NIOSSLContext(configuration: .clientDefault)
            let hostname = endpoint.host.first?.isLetter == true ? endpoint.host : nil
            try await channel.pipeline.removeHandler(name: "ssl-request").get()
            try await channel.eventLoop.submit {
                try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: context, serverHostname: hostname), position: .first)
            }.get()
            return channel
        } catch {
            try? await channel.close()
            throw error
        }
    }

    enum RouterError: Error {
        case tlsRefused(DatabaseURL.Endpoint)
    }
}

/// Reads the one-byte answer to PostgreSQL's SSLRequest.
private final class SSLRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    let answer: EventLoopPromise<UInt8>

    init(answer: EventLoopPromise<UInt8>) { self.answer = answer }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        if let byte = buffer.readInteger(as: UInt8.self) { answer.succeed(byte) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        answer.fail(ChannelError.ioOnClosedChannel)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        answer.fail(error)
        context.close(promise: nil)
    }
}

/// Writes what one side reads to the other and closes the pair together.
private final class RelayHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let partner: any Channel

    init(partner: any Channel) { self.partner = partner }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        partner.write(unwrapInboundIn(data), promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner.flush()
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner.close(promise: nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
