import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// One client connection to an SMTP server, driving ``SMTPClientStateMachine`` over SwiftNIO: it
/// connects, delivers the envelopes in order and quits, and answers one outcome per recipient. Every
/// failure (refused connection, timeout, broken protocol) becomes a soft failure of what was not
/// finished; it never throws. No database is touched here: callers hold no connection across it.
public struct SMTPDelivery: Sendable {
    /// The name we greet with (EHLO).
    public var hostname: String
    /// Connect timeout.
    public var connectTimeout: Duration = .seconds(30)
    /// How long to wait for any one reply (RFC 5321 §4.5.3.2 suggests minutes; kept lower by default).
    public var replyTimeout: Duration = .seconds(120)
    public var group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    /// STARTTLS when the server offers it. Opportunistic, as between MTAs: the certificate is not verified
    /// (an MX has no name to check it against that DNS did not already give us); without TLS on offer
    /// the session continues in clear text.
    public var startTLS = true
    public var logger = Logger(label: "herald.smtp")

    public init(hostname: String) {
        self.hostname = hostname
    }

    /// Delivers `envelopes` to `host:port`.
    public func deliver(_ envelopes: [SMTPClientStateMachine.Envelope], host: String, port: Int) async -> [[DeliveryOutcome]] {
        await attempt(envelopes, host: host, port: port).outcomes
    }

    /// Delivers `envelopes` to `host:port`, telling whether a connection was made at all (a router tries
    /// the next MX when not).
    /// `finished` hears each envelope's outcome as soon as the server has answered it (its index and one
    /// outcome per recipient), so that a caller can record it before the session ends; envelopes not
    /// finished in the session are only in the answer.
    public func attempt(_ envelopes: [SMTPClientStateMachine.Envelope], host: String, port: Int,
                        finished: @Sendable (Int, [DeliveryOutcome]) async -> Void = { _, _ in }) async -> (outcomes: [[DeliveryOutcome]], connected: Bool) {
        var outcomes = [[DeliveryOutcome]?](repeating: nil, count: envelopes.count)
        func failRest(_ reason: String) -> [[DeliveryOutcome]] {
            zip(outcomes, envelopes).map { outcome, envelope in outcome ?? envelope.recipients.map { _ in .softFailure(reason) } }
        }
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(.milliseconds(Int64(connectTimeout.components.seconds) * 1000 + connectTimeout.components.attoseconds / 1_000_000_000_000_000))
                .connect(host: host, port: port) { [replyTimeout] channel in
                    channel.eventLoop.makeCompletedFuture {
                        // A server silent for longer than the reply timeout gets its connection closed,
                        // which ends the conversation below with a soft failure.
                        try channel.pipeline.syncOperations.addHandlers([
                            IdleStateHandler(readTimeout: TimeAmount.nanoseconds(Int64(replyTimeout.components.seconds) * 1_000_000_000
                                + replyTimeout.components.attoseconds / 1_000_000_000)),
                            CloseOnIdle(),
                        ])
                        return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            return (failRest("connection to \(host):\(port) failed: \(error)"), false)
        }
        var machine = SMTPClientStateMachine(hostname: hostname, tlsAvailable: startTLS)
        for envelope in envelopes { _ = machine.enqueue(envelope) }
        _ = machine.quit()
        do {
            try await channel.executeThenClose { inbound, outbound in
                var parser = SMTPReplyParser()
                var iterator = inbound.makeAsyncIterator()
                conversation: while true {
                    guard let chunk = try await iterator.next() else {
                        for action in machine.connectionClosed("the connection closed (or the server was silent for \(replyTimeout))") {
                            record(action)
                        }
                        break conversation
                    }
                    for reply in try parser.feed(chunk.readableBytesView) {
                        for action in machine.received(reply) {
                            if case .finished(let index, let result) = action, index < envelopes.count { await finished(index, result) }
                            switch action {
                            case .send(let bytes): try await outbound.write(ByteBuffer(bytes: bytes))
                            case .close: break conversation
                            case .startTLS:
                                // The TLS handler goes first in the pipeline: what we read is decrypted before it reaches
                                // us and what we write is encrypted (and held until the handshake is done). A failed
                                // handshake closes the channel, which ends the session with soft failures.
                                do {
                                    var configuration = TLSConfiguration.makeClientConfiguration()
                                    configuration.certificateVerification = .none
                                    let context = try NIOSSLContext(configuration: configuration)
                                    let serverName = Self.isIPAddress(host) ? nil : host
                                    let pipeline = channel.channel.pipeline
                                    try await channel.channel.eventLoop.submit {
                                        try pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: serverName),
                                                                               position: .first)
                                    }.get()
                                } catch {
                                    for action in machine.tlsFailed("\(error)") { record(action) }
                                    break conversation
                                }
                                for action in machine.tlsEstablished() {
                                    if case .send(let bytes) = action { try await outbound.write(ByteBuffer(bytes: bytes)) }
                                }
                            case .finished: record(action)
                            }
                        }
                    }
                }
            }
        } catch {
            for action in machine.connectionClosed("\(error)") { record(action) }
        }
        func record(_ action: SMTPClientStateMachine.Action) {
            if case .finished(let index, let result) = action, index < outcomes.count { outcomes[index] = result }
        }
        return (failRest("the session ended early"), true)
    }
}

extension SMTPDelivery {
    static func isIPAddress(_ host: String) -> Bool {
        (try? SocketAddress(ipAddress: host, port: 0)) != nil
    }
}

/// Closes the connection when `IdleStateHandler` reports no reads for its timeout.
final class CloseOnIdle: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}
