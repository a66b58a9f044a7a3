import Foundation
import HeraldCore
import HeraldSMTP
import HeraldStore
import Logging
import NIOCore
import ServiceLifecycle

/// What the inbound SMTP listener accepts: mail to the `mailto:` unsubscribe addresses of List-Unsubscribe
/// (``UnsubscribeMailbox``), nothing else; Herald is no open relay. A recipient's token is checked at RCPT
/// without the database, so a forged, altered or unknown address gets 550 and costs nothing; the message
/// itself unsubscribes each of its recipients (the suppression and the `message.unsubscribed` event, as a
/// click on the https link does) before the final 250, and a database failure answers 451 so that the
/// sending server tries again. Subject and body are not read: the address is the request (RFC 2369).
public struct UnsubscribeMailReceiver: SMTPServerDelegate {
    let mailbox: UnsubscribeMailbox
    let store: UnsubscribeStore
    let now: @Sendable () -> Date
    let logger: Logger
    public var metrics: SMTPListenerMetrics?

    public init(mailbox: UnsubscribeMailbox, store: UnsubscribeStore, now: @escaping @Sendable () -> Date = Date.init,
                logger: Logger = Logger(label: "herald.inbound")) {
        self.mailbox = mailbox
        self.store = store
        self.now = now
        self.logger = logger
    }

    public func recipient(_ address: String, from: String, client: SocketAddress?) async -> SMTPReply {
        if mailbox.messageID(recipient: address) != nil {
            return SMTPServerStateMachine.reply(250, (2, 1, 5), "OK")
        }
        metrics?.unsubscribe("refused")
        if mailbox.isOurs(address) {
            return SMTPServerStateMachine.reply(550, (5, 1, 1), "No such unsubscribe address")
        }
        return SMTPServerStateMachine.reply(550, (5, 7, 1), "Relaying denied: this server only takes unsubscribe requests")
    }

    public func deliver(_ envelope: SMTPServerStateMachine.Envelope, client: SocketAddress?) async -> SMTPReply {
        do {
            for recipient in envelope.recipients {
                guard let messageID = mailbox.messageID(recipient: recipient) else { continue }
                let result = try await store.unsubscribe(messageID: messageID, now: now())
                logger.info("unsubscribed by mail", metadata: ["message": "\(messageID)", "added": "\(result?.added ?? false)",
                                                              "client": "\(client?.ipAddress ?? "?")"])
            }
            metrics?.unsubscribe("unsubscribed", count: envelope.recipients.count)
            return SMTPServerStateMachine.reply(250, (2, 0, 0), "Unsubscribed")
        } catch {
            metrics?.unsubscribe("failed")
            logger.error("unsubscribe by mail failed", metadata: ["error": "\(error)"])
            return SMTPServerStateMachine.reply(451, (4, 3, 0), "Temporary failure, try again later")
        }
    }
}

/// An SMTP listener of the `smtp` role (inbound on `HERALD_INBOUND_PORT`, submission on `HERALD_SMTP_PORT`
/// and `HERALD_SMTPS_PORT`) as a service: listens until shutdown, then closes its connections.
public struct SMTPListenerService: Service {
    let configuration: SMTPServer.Configuration
    let delegate: any SMTPServerDelegate
    let logger: Logger

    public init(configuration: SMTPServer.Configuration, delegate: any SMTPServerDelegate, logger: Logger) {
        self.configuration = configuration
        self.delegate = delegate
        self.logger = logger
    }

    public func run() async throws {
        let server = try await SMTPServer.bind(configuration, delegate: delegate, logger: logger)
        logger.info("listening for SMTP", metadata: ["address": "\(configuration.host):\(server.port)", "auth": "\(configuration.session.authAvailable)",
                                                     "tls": "\(configuration.tls == nil ? "none" : configuration.implicitTLS ? "implicit" : "starttls")"])
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await server.wait()
            } onGracefulShutdown: {
                server.close()
            }
        } onCancel: {
            server.close()
        }
    }
}
