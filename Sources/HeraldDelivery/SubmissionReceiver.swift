import Foundation
import HeraldCore
import HeraldSMTP
import HeraldStore
import Logging
import NIOCore

/// SMTP submission (SPEC §3, the `smtp` role on `HERALD_SMTP_PORT` with STARTTLS and `HERALD_SMTPS_PORT`
/// with implicit TLS): a tenant's application logs in with a sender address and its SMTP password
/// (`PUT /v1/senders/{id}/smtp-password`), `MAIL FROM` must be that address (the state machine enforces it),
/// and each message goes through the same accept road as `POST /v1/mail/single` (``AcceptService``): account status, IP
/// protection (the SMTP client's address), sender verified and of the trigger type, recipient syntax,
/// quota, suppressions. It is stored as submitted (attachments and all) and delivered DKIM-signed; the
/// reply to the final dot comes after the commit, so a 250 means the message is durably queued.
public struct SubmissionReceiver: SMTPServerDelegate {
    let senders: SenderStore
    /// The one accept road of every send (the same service the API's send paths use).
    let accept: AcceptService
    /// Failed logins per client address (a password guesser gets 454 after the burst).
    let authLimiter: any RateLimiting
    /// Failed logins per user name (the sender address), whatever the client address: a botnet guessing one
    /// sender's password from many addresses gets 454 too. 10 per 10 minutes unless configured.
    public var userAuthLimiter: any RateLimiting = TokenBucketLimiter(capacity: 10, refillPerSecond: 10.0 / 600)
    let logger: Logger
    public var metrics: SMTPListenerMetrics?
    /// Senders' SMTP password fingerprints for the re-check of every MAIL, kept while their changes are heard.
    public var passwordFingerprints: TenantCache<SenderKey, String>?

    public init(senders: SenderStore, accept: AcceptService, authLimiter: any RateLimiting,
                logger: Logger = Logger(label: "herald.submission")) {
        self.senders = senders
        self.accept = accept
        self.authLimiter = authLimiter
        self.logger = logger
    }

    /// What a session keeps of its login: the tenant, the sender, and a fingerprint of the password hash it
    /// matched, so that each MAIL can see whether the password is still the same.
    struct Credential {
        var tenantID: UUID
        var senderID: UUID
        var fingerprint: String

        var encoded: String { "\(tenantID.uuidString)|\(senderID.uuidString)|\(fingerprint)" }

        init(tenantID: UUID, senderID: UUID, fingerprint: String) {
            self.tenantID = tenantID
            self.senderID = senderID
            self.fingerprint = fingerprint
        }

        init?(_ text: String) {
            let parts = text.split(separator: "|")
            guard parts.count == 3, let tenant = UUID(uuidString: String(parts[0])), let sender = UUID(uuidString: String(parts[1])) else { return nil }
            self.init(tenantID: tenant, senderID: sender, fingerprint: String(parts[2]))
        }
    }

    public func authenticate(username: String, password: String, client: SocketAddress?) async -> SMTPReply {
        await login(username: username, password: password, client: client).reply
    }

    public func login(username: String, password: String, client: SocketAddress?) async -> SMTPLogin {
        // Only failures count (an application may open many sessions at once); a client address or a user name
        // that used up its failures is refused before the deliberately slow hash.
        let address = client?.ipAddress ?? "?"
        let user = username.lowercased()
        var limited = await authLimiter.isExhausted(address)
        if !limited { limited = await userAuthLimiter.isExhausted(user) }
        if limited {
            metrics?.login("limited")
            return SMTPLogin(reply: SMTPServerStateMachine.reply(454, (4, 7, 0), "Too many failed logins, try again later"))
        }
        do {
            // The address may be a sender of more than one tenant (each on its own verified domain): the password
            // says which. An unknown user name is hashed against a dummy too: the same time, the same answer as a
            // wrong password.
            let candidates = try await senders.smtpLoginCandidates(address: username)
            var stored: (tenantID: UUID, senderID: UUID, hash: String)?
            if candidates.isEmpty {
                _ = await senders.passwordHasher.verify(password, against: SMTPPassword.unknownUserHash)
            }
            for candidate in candidates where await senders.passwordHasher.verify(password, against: candidate.hash) {
                stored = candidate
                break
            }
            guard let (tenantID, senderID, hash) = stored else {
                _ = await authLimiter.acquire(address)
                _ = await userAuthLimiter.acquire(user)
                metrics?.login("failed")
                return SMTPLogin(reply: SMTPServerStateMachine.reply(535, (5, 7, 8), "Authentication credentials invalid"))
            }
            metrics?.login("ok")
            return SMTPLogin(reply: SMTPServerStateMachine.reply(235, (2, 7, 0), "Authentication successful"),
                             credential: Credential(tenantID: tenantID, senderID: senderID, fingerprint: SMTPPassword.fingerprint(of: hash)).encoded)
        } catch {
            logger.error("SMTP login check failed", metadata: ["error": "\(error)"])
            return SMTPLogin(reply: SMTPServerStateMachine.reply(454, (4, 7, 0), "Temporary authentication failure"))
        }
    }

    /// A session's login holds while its sender exists with the password it logged in with.
    public func sender(_ address: String, authenticatedAs user: String, credential: String, client: SocketAddress?) async -> SMTPReply {
        guard let credential = Credential(credential) else { return Self.loginEnded }
        do {
            let load = { [senders] () async throws -> String? in
                try await senders.smtpPasswordHash(tenantID: credential.tenantID, senderID: credential.senderID).map(SMTPPassword.fingerprint(of:))
            }
            let key = SenderKey(tenantID: credential.tenantID, senderID: credential.senderID)
            guard let fingerprint = try await TenantCache.value(in: passwordFingerprints, key, load: load),
                  fingerprint == credential.fingerprint else { return Self.loginEnded }
            return SMTPServerStateMachine.reply(250, (2, 1, 0), "OK")
        } catch {
            logger.error("SMTP login recheck failed", metadata: ["error": "\(error)"])
            return SMTPServerStateMachine.reply(451, (4, 3, 0), "Temporary failure, try again later")
        }
    }

    /// The answer to MAIL when the password changed, was cleared or the sender was deleted since the login.
    static let loginEnded = SMTPServerStateMachine.reply(535, (5, 7, 8), "The SMTP password changed since this session logged in; log in again")

    public func recipient(_ address: String, from: String, client: SocketAddress?) async -> SMTPReply {
        (try? MailAddress(address)) == nil
            ? SMTPServerStateMachine.reply(553, (5, 1, 3), "Bad recipient address syntax")
            : SMTPServerStateMachine.reply(250, (2, 1, 5), "OK")
    }

    public func deliver(_ envelope: SMTPServerStateMachine.Envelope, client: SocketAddress?) async -> SMTPReply {
        guard let user = envelope.authenticatedAs, let credential = envelope.credential.flatMap(Credential.init) else {
            return SMTPServerStateMachine.reply(530, (5, 7, 0), "Authentication required")
        }
        do {
            let caller = SendRequest.Caller.submission(tenantID: credential.tenantID, client: client?.ipAddress.flatMap(IPAddress.init))
            let answer = try await accept.accept(SendRequest(caller: caller, content: .submission(from: user, to: envelope.recipients, raw: envelope.data)))
            guard let result = answer.result else { throw HeraldError(code: "Internal", kind: .internal, message: "A submission was not answered.") }
            let dropped = result.messages.filter { $0.status != .queued }
            metrics?.submission("accepted")
            let note = dropped.isEmpty ? "" : "; not sent to " + dropped.map { "\($0.to) (\($0.reason ?? "dropped"))" }.joined(separator: ", ")
            return SMTPServerStateMachine.reply(250, (2, 0, 0), "Queued as \(result.requestId.lowercasedString)\(note)")
        } catch let error as HeraldError {
            // Refusals keep their stable code; those that may pass later (quota, rate) are temporary.
            metrics?.submission("refused")
            let temporary = error.kind == .throttled || error.code.hasPrefix("Quota")
            return SMTPServerStateMachine.reply(temporary ? 452 : 554, temporary ? (4, 7, 1) : (5, 7, 1), "\(error.code): \(error.message)")
        } catch {
            metrics?.submission("failed")
            logger.error("SMTP submission failed", metadata: ["error": "\(error)"])
            return SMTPServerStateMachine.reply(451, (4, 3, 0), "Temporary failure, try again later")
        }
    }
}
