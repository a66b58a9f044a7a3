import Foundation
import HeraldCore
import HeraldSMTP
import HeraldStore
import Logging
import NIOCore
import ServiceLifecycle

/// What the inbound SMTP listener accepts, nothing else (Herald is no open relay):
///
/// - mail to the `mailto:` unsubscribe addresses of List-Unsubscribe (``UnsubscribeMailbox``): each
///   recipient is unsubscribed (the suppression and the `message.unsubscribed` event, as a click on the https
///   link does); subject and body are not read, the address is the request (RFC 2369);
/// - bounces to the VERP return paths of delivered messages (``BounceAddress``): a delivery status
///   notification reporting a permanent failure turns the delivered message into a late `bounced` (or
///   `spam_rejected` for 5.7.x); delays, auto-replies and anything else are taken and dropped;
/// - complaints: feedback-loop reports (ARF, ``FeedbackReport``) sent to `HERALD_FBL_ADDRESS` or to a message's
///   VERP return path. The message is the one the return path names (its token checked), else the one the
///   original's return path or `X-Herald-Message-Id` names; it must be delivered, and a report that names a
///   recipient must name its recipient. It is recorded once (``DeliveryStore/recordComplaint``).
///
/// A recipient's token is checked at RCPT without the database, so a forged, altered or unknown address gets
/// 550 and costs nothing; the work is committed before the final 250, and a database failure answers 451 so
/// that the sending server tries again.
public struct InboundMailReceiver: SMTPServerDelegate {
    let mailbox: UnsubscribeMailbox?
    let unsubscribes: UnsubscribeStore?
    let bounces: BounceAddress?
    let deliveries: DeliveryStore?
    /// `HERALD_FBL_ADDRESS`, lower case.
    let feedbackAddress: String?
    let now: @Sendable () -> Date
    let logger: Logger
    public var metrics: SMTPListenerMetrics?

    public init(mailbox: UnsubscribeMailbox?, unsubscribes: UnsubscribeStore?, bounces: BounceAddress? = nil, deliveries: DeliveryStore? = nil,
                feedbackAddress: String? = nil, now: @escaping @Sendable () -> Date = Date.init, logger: Logger = Logger(label: "herald.inbound")) {
        self.feedbackAddress = feedbackAddress?.lowercased()
        self.mailbox = mailbox
        self.unsubscribes = unsubscribes
        self.bounces = bounces
        self.deliveries = deliveries
        self.now = now
        self.logger = logger
    }

    public func recipient(_ address: String, from: String, client: SocketAddress?) async -> SMTPReply {
        if mailbox?.messageID(recipient: address) != nil || bounces?.messageID(recipient: address) != nil
            || (feedbackAddress != nil && address.lowercased() == feedbackAddress) {
            return SMTPServerStateMachine.reply(250, (2, 1, 5), "OK")
        }
        metrics?.unsubscribe("refused")
        if mailbox?.isOurs(address) == true {
            return SMTPServerStateMachine.reply(550, (5, 1, 1), "No such unsubscribe address")
        }
        return SMTPServerStateMachine.reply(550, (5, 7, 1), "Relaying denied: this server only takes unsubscribe requests and bounces")
    }

    public func deliver(_ envelope: SMTPServerStateMachine.Envelope, client: SocketAddress?) async -> SMTPReply {
        do {
            var unsubscribed = 0
            for recipient in envelope.recipients {
                if let mailbox, let unsubscribes, let messageID = mailbox.messageID(recipient: recipient) {
                    let result = try await unsubscribes.unsubscribe(messageID: messageID, now: now())
                    unsubscribed += 1
                    logger.info("unsubscribed by mail", metadata: ["message": "\(messageID)", "added": "\(result?.added ?? false)",
                                                                  "client": "\(client?.ipAddress ?? "?")"])
                } else if let bounces, let deliveries, let messageID = bounces.messageID(recipient: recipient) {
                    if let report = FeedbackReport.parse(envelope.data) {
                        try await complaint(report, messageID: messageID, deliveries: deliveries, client: client)
                    } else {
                        try await lateBounce(envelope.data, messageID: messageID, deliveries: deliveries, client: client)
                    }
                } else if let feedbackAddress, recipient.lowercased() == feedbackAddress, let deliveries {
                    guard let report = FeedbackReport.parse(envelope.data) else {
                        logger.info("mail to the feedback address that is no ARF report ignored", metadata: ["client": "\(client?.ipAddress ?? "?")"])
                        continue
                    }
                    let named = report.returnPaths.lazy.compactMap { bounces?.messageID(recipient: $0) }.first ?? report.heraldMessageID
                    try await complaint(report, messageID: named, deliveries: deliveries, client: client)
                }
            }
            if unsubscribed > 0 { metrics?.unsubscribe("unsubscribed", count: unsubscribed) }
            return SMTPServerStateMachine.reply(250, (2, 0, 0), "OK")
        } catch {
            metrics?.unsubscribe("failed")
            logger.error("inbound mail failed", metadata: ["error": "\(error)"])
            return SMTPServerStateMachine.reply(451, (4, 3, 0), "Temporary failure, try again later")
        }
    }
}

extension InboundMailReceiver {
    /// A complaint about `messageID` (nil: the report named none Herald knows), recorded when the report is a
    /// complaint, the message was delivered and the report names no other recipient.
    func complaint(_ report: FeedbackReport, messageID: UUID?, deliveries: DeliveryStore, client: SocketAddress?) async throws {
        let metadata: Logger.Metadata = ["message": "\(messageID?.lowercasedString ?? "none")", "type": "\(report.feedbackType)",
                                         "client": "\(client?.ipAddress ?? "?")"]
        guard report.isComplaint, let messageID, let to = try await deliveries.deliveredRecipient(messageID: messageID) else {
            logger.info("feedback report not recorded (not a complaint, or no delivered message named)", metadata: metadata)
            return
        }
        guard report.allows(recipient: to) else {
            logger.warning("complaint about another recipient ignored", metadata: metadata)
            return
        }
        let recorded = try await deliveries.recordComplaint(messageID: messageID, feedbackType: report.feedbackType, now: now())
        logger.info("complaint", metadata: metadata.merging(["recorded": "\(recorded)"]) { $1 })
    }

    /// A report that came back to a delivered message's return path changes the message only when it is about
    /// that message's recipient: the return path names the message, but the report's Final- or
    /// Original-Recipient must name its `to` address too (a report about someone else — forwarded mail, a
    /// forgery by whoever saw the return path — changes nothing and is logged).
    func lateBounce(_ data: [UInt8], messageID: UUID, deliveries: DeliveryStore, client: SocketAddress?) async throws {
        let failures = DeliveryReport.permanentFailures(in: data)
        guard !failures.isEmpty, let to = try await deliveries.deliveredRecipient(messageID: messageID) else { return }
        guard let report = failures.first(where: { $0.names(to) }) else {
            logger.warning("late bounce for another recipient ignored", metadata: [
                "message": "\(messageID)", "named": "\(failures.flatMap(\.recipients).joined(separator: ", "))", "client": "\(client?.ipAddress ?? "?")",
            ])
            return
        }
        let result: DeliveryResult = report.status.hasPrefix("5.7.") ? .spamRejected : .bounced(response: report.diagnostic)
        let changed = try await deliveries.recordLateBounce(messageID: messageID, recipient: to, result: result, response: report.diagnostic, now: now())
        logger.info("late bounce", metadata: ["message": "\(messageID)", "status": "\(report.status)", "recorded": "\(changed)"])
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
