import Foundation
import HeraldCore
import HeraldSMTP
import HeraldStore
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// SMTP submission (SPEC §3, the `smtp` role on `HERALD_SMTP_PORT` with STARTTLS and `HERALD_SMTPS_PORT`
/// with implicit TLS): a tenant's application logs in with a sender address and its SMTP password
/// (`PUT /v1/senders/{id}/smtp-password`), `MAIL FROM` must be that address (the state machine enforces it),
/// and each message goes through the same accept path as `POST /v1/mail/single`: account status, IP
/// protection (the SMTP client's address), sender verified and of the trigger type, recipient syntax,
/// quota, suppressions. It is stored as submitted (attachments and all) and delivered DKIM-signed; the
/// reply to the final dot comes after the commit, so a 250 means the message is durably queued.
public struct SubmissionReceiver: SMTPServerDelegate {
    let senders: SenderStore
    let identity: IdentityStore
    let acceptBatcher: AcceptBatcher
    /// Failed logins per client address (a password guesser gets 454 after the burst).
    let authLimiter: TokenBucketLimiter
    let now: @Sendable () -> Date
    let logger: Logger
    public var metrics: SMTPListenerMetrics?
    /// Sends per sender address, shared with the API's send paths.
    public var senderRate: SenderRateLimit?
    /// The tenant of each address that logged in (a session's messages need not look it up again; the accept
    /// path still checks that the sender exists and is verified).
    let tenants = NIOLockedValueBox<[String: UUID]>([:])

    public init(senders: SenderStore, identity: IdentityStore, acceptBatcher: AcceptBatcher, authLimiter: TokenBucketLimiter,
                now: @escaping @Sendable () -> Date = Date.init, logger: Logger = Logger(label: "herald.submission")) {
        self.senders = senders
        self.identity = identity
        self.acceptBatcher = acceptBatcher
        self.authLimiter = authLimiter
        self.now = now
        self.logger = logger
    }

    public func authenticate(username: String, password: String, client: SocketAddress?) async -> SMTPReply {
        // Only failures count (an application may open many sessions at once); an address that used up its
        // failures is refused before the deliberately slow hash.
        let address = client?.ipAddress ?? "?"
        if authLimiter.isExhausted(address) {
            metrics?.login("limited")
            return SMTPServerStateMachine.reply(454, (4, 7, 0), "Too many failed logins, try again later")
        }
        do {
            guard let (tenantID, _, hash) = try await senders.smtpPasswordHash(address: username), SMTPPassword.verify(password, against: hash) else {
                _ = authLimiter.acquire(address)
                metrics?.login("failed")
                return SMTPServerStateMachine.reply(535, (5, 7, 8), "Authentication credentials invalid")
            }
            tenants.withLockedValue { cache in
                if cache.count > 10_000 { cache.removeAll() }
                cache[username.lowercased()] = tenantID
            }
            metrics?.login("ok")
            return SMTPServerStateMachine.reply(235, (2, 7, 0), "Authentication successful")
        } catch {
            logger.error("SMTP login check failed", metadata: ["error": "\(error)"])
            return SMTPServerStateMachine.reply(454, (4, 7, 0), "Temporary authentication failure")
        }
    }

    func tenant(of user: String) async throws -> UUID? {
        if let cached = tenants.withLockedValue({ $0[user.lowercased()] }) { return cached }
        return try await senders.smtpPasswordHash(address: user)?.tenantID
    }

    public func recipient(_ address: String, from: String, client: SocketAddress?) async -> SMTPReply {
        (try? MailAddress(address)) == nil
            ? SMTPServerStateMachine.reply(553, (5, 1, 3), "Bad recipient address syntax")
            : SMTPServerStateMachine.reply(250, (2, 1, 5), "OK")
    }

    public func deliver(_ envelope: SMTPServerStateMachine.Envelope, client: SocketAddress?) async -> SMTPReply {
        guard let user = envelope.authenticatedAs else { return SMTPServerStateMachine.reply(530, (5, 7, 0), "Authentication required") }
        do {
            guard let tenantID = try await tenant(of: user) else {
                return SMTPServerStateMachine.reply(535, (5, 7, 8), "The sender address no longer has an SMTP password")
            }
            let protection = try await identity.ipProtection(tenantID: tenantID)
            let allowlist = (try? IPAllowlist.parse(enabled: protection.enabled, entries: protection.allow)) ?? IPAllowlist(enabled: true, networks: [])
            try IPProtectionGuard.check(client: client?.ipAddress.flatMap(IPAddress.init), allowlist: allowlist)
            let send = try SendRules.validateSubmission(from: user, to: envelope.recipients, raw: envelope.data)
            try senderRate?.check(tenantID: tenantID, sender: user)
            let (result, _) = try await acceptBatcher.accept(.init(tenantID: tenantID, send: send, idempotency: nil, now: now()))
            let dropped = result.messages.filter { $0.status != "queued" }
            metrics?.submission("accepted")
            let note = dropped.isEmpty ? "" : "; not sent to " + dropped.map { "\($0.to) (\($0.reason ?? "dropped"))" }.joined(separator: ", ")
            return SMTPServerStateMachine.reply(250, (2, 0, 0), "Queued as \(result.requestId.uuidString.lowercased())\(note)")
        } catch let error as HeraldError {
            // Refusals keep their stable code; those that may pass later (quota, rate) are temporary.
            metrics?.submission("refused")
            let temporary = error.status == 429 || error.code.hasPrefix("Quota")
            return SMTPServerStateMachine.reply(temporary ? 452 : 554, temporary ? (4, 7, 1) : (5, 7, 1), "\(error.code): \(error.message)")
        } catch {
            metrics?.submission("failed")
            logger.error("SMTP submission failed", metadata: ["error": "\(error)"])
            return SMTPServerStateMachine.reply(451, (4, 3, 0), "Temporary failure, try again later")
        }
    }
}
