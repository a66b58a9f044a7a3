import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// The SMTP client as callers use it: delivers envelopes to a host over a connection from ``pool``
/// (an ``SMTPSession`` driving ``SMTPClientStateMachine`` over SwiftNIO) and answers one outcome per
/// recipient. Every failure (refused connection, timeout, broken protocol) becomes a soft failure of
/// what was not finished; it never throws. No database is touched here: callers hold no connection
/// across it.
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
    /// The connections: a cap per destination and idle ones kept for reuse.
    public var pool: SMTPConnectionPool

    public init(hostname: String, pool: SMTPConnectionPool = SMTPConnectionPool()) {
        self.hostname = hostname
        self.pool = pool
    }

    /// Delivers `envelopes` to `host:port`.
    public func deliver(_ envelopes: [SMTPClientStateMachine.Envelope], host: String, port: Int) async -> [[SMTPOutcome]] {
        await attempt(envelopes, host: host, port: port).outcomes
    }

    /// Delivers `envelopes` to `host:port`, telling whether a connection was made at all (a router tries
    /// the next MX when not). `finished` hears each envelope's outcome as soon as the server has answered
    /// it (its index and one outcome per recipient), so that a caller can record it before the session
    /// ends. The connection comes from ``pool`` (a free slot to the destination, an idle connection when
    /// there is one) and goes back to it. A reused connection that turns out to be dead before it answered
    /// anything is replaced by a new one; a STARTTLS handshake that fails is followed by a plaintext
    /// connection, as between MTAs (RFC 3207 §4.1 leaves it to the client).
    public func attempt(_ envelopes: [SMTPClientStateMachine.Envelope], host: String, port: Int,
                        finished: @escaping @Sendable (Int, [SMTPOutcome]) async -> Void = { _, _ in }) async -> (outcomes: [[SMTPOutcome]], connected: Bool) {
        let destination = "\(host):\(port)\(startTLS ? "" : "/plain")"
        func connect(_ configuration: SMTPDelivery) async throws -> SMTPSession {
            let session = try await SMTPSession.connect(host: host, port: port, configuration: configuration)
            await pool.countOpened()
            return session
        }
        let idle = await pool.acquire(destination)
        var session: SMTPSession?
        var outcomes: [[SMTPOutcome]]
        do {
            let first: SMTPSession
            if let idle { first = idle } else { first = try await connect(self) }
            session = first
            let repliesBefore = first.replies
            outcomes = await first.send(envelopes, finished: finished)
            if idle != nil && first.replies == repliesBefore && !first.isOpen {
                // The server had closed the idle connection: once more on a new one.
                let fresh = try await connect(self)
                session = fresh
                outcomes = await fresh.send(envelopes, finished: finished)
            }
            if session?.tlsFailed == true {
                var plaintext = self
                plaintext.startTLS = false
                logger.info("STARTTLS failed; delivering in plaintext", metadata: ["host": "\(host):\(port)"])
                let plain = try await connect(plaintext)
                outcomes = await plain.send(envelopes, finished: finished)
                plain.quit()
            }
        } catch {
            await pool.release(destination, session: nil)
            return (envelopes.map { $0.recipients.map { _ in .softFailure("connection to \(host):\(port) failed: \(error)") } }, false)
        }
        await pool.release(destination, session: session)
        return (outcomes, true)
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
