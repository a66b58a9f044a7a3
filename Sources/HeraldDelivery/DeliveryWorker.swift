import Foundation
import HeraldCore
import HeraldDNS
import HeraldSMTP
import HeraldStore
import Logging

/// Claims due messages, signs and delivers them grouped by recipient domain (one connection per group,
/// several messages over it), and records the outcomes. No database connection is held while mail is
/// on the wire.
public struct DeliveryWorker: Sendable {
    public var store: DeliveryStore
    public var domains: DomainStore
    public var router: MailRouter
    public var smtp: SMTPDelivery
    public var worker: String
    /// When a soft failure is tried again (the worker decides; the store only writes).
    public var retry = RetryPolicy()
    public var batchSize = 100
    /// How long a claim holds its messages; renewed every third of it while they are on the wire, so a
    /// crashed worker's messages come back after at most this long.
    public var lease: Duration = .seconds(60)
    /// Recipient domains delivered to at once.
    public var parallelDomains = 8
    /// Connections to one destination at once, within a claim cycle (a per-destination cap).
    public var connectionsPerDomain = 4
    /// Messages handed to one connection at a time (it then goes back to the pool for reuse).
    public var messagesPerConnection = 50
    /// Messages per second per recipient domain, when limited (``DomainRateLimits``); what is over the
    /// rate goes back to the queue, unattempted, until the domain has room again.
    public var domainRates = DomainRateLimits(rates: [:])
    /// Makes the open and click links of messages sent with tracking (none without it).
    public var tracking: TrackingLinks?
    /// The VERP return path (`HERALD_RETURN_PATH_MX` set): mail from a domain whose return-path MX record is
    /// in place goes out with `b+<token>@bounces.<domain>` as its envelope sender, so that late bounces come
    /// back to the inbound listener; other mail keeps the sender address.
    public var returnPath: BounceAddress?
    /// Makes the unsubscribe fields of trigger mail whose tenant wants them there.
    public var unsubscribeLinks: UnsubscribeLinks?
    public var now: @Sendable () -> Date
    public var logger = Logger(label: "herald.delivery")
    /// DKIM keys on libcrypto, loaded once each.
    let keyCache = SigningKeyCache()

    public init(store: DeliveryStore, domains: DomainStore, router: MailRouter, smtp: SMTPDelivery, worker: String,
                now: @escaping @Sendable () -> Date = Date.init) {
        self.store = store
        self.domains = domains
        self.router = router
        self.smtp = smtp
        self.worker = worker
        self.now = now
    }

    /// One claim cycle; returns how many messages it attempted. Each result is committed as soon as the
    /// server has answered it (see ``OutcomeRecorder``), and the leases of the batch are renewed while it
    /// is on the wire.
    public func runOnce() async throws -> Int {
        let claimed = try await store.claim(worker: worker, limit: batchSize, now: now(), lease: lease)
        guard !claimed.isEmpty else { return 0 }
        let recorder = OutcomeRecorder.outcomes(store: store, worker: worker, now: now, logger: logger)
        let claimedIDs = claimed.map(\.id)
        // Addresses are parsed here, once; a message whose addresses do not parse cannot be built.
        var mails: [OutgoingMail] = []
        var unbuildable: [DeliveryAttempt] = []
        for message in claimed {
            do {
                mails.append(try OutgoingMail(message))
            } catch {
                unbuildable.append(Self.unbuildable(message.id, error))
            }
        }
        await recorder.add(unbuildable)
        // Signing keys, once per tenant and sending domain of the batch.
        var keys: SigningKeys = [:]
        var looked = Set<String>(), returnPaths = Set<String>()
        for mail in mails where mail.message.kind != .system {
            guard looked.insert(mail.sendingDomain).inserted else { continue }
            let (stored, verifiedReturnPath) = try await domains.sending(tenantID: mail.message.tenantID, domain: mail.from.domain)
            if !stored.isEmpty {
                keys[mail.sendingDomain] = try stored.map {
                    DKIM.Signer(selector: $0.selector, key: try keyCache.key(algorithm: $0.algorithm, stored: $0.privateKey))
                }
            }
            if returnPath != nil, verifiedReturnPath { returnPaths.insert(mail.sendingDomain) }
        }
        let verifiedReturnPaths = returnPaths
        let groups = Dictionary(grouping: mails) { $0.to.domain }
        let signingKeys = keys
        let renewal = Task { [store, worker, lease, now, logger] in
            while !Task.isCancelled {
                try? await Task.sleep(for: lease / 3)
                guard !Task.isCancelled else { break }
                do {
                    try await store.renew(worker: worker, ids: await recorder.unseen(among: claimedIDs), now: now(), lease: lease)
                } catch {
                    logger.warning("lease renewal failed", metadata: ["error": "\(error)"])
                }
            }
        }
        defer { renewal.cancel() }
        await withTaskGroup(of: Void.self) { group in
            var running = 0
            for (domain, mails) in groups {
                if running >= parallelDomains {
                    await group.next()
                    running -= 1
                }
                group.addTask { await deliver(mails, domain: domain, keys: signingKeys, returnPaths: verifiedReturnPaths, recorder: recorder) }
                running += 1
            }
        }
        try await recorder.finish()
        return claimed.count
    }

    /// Delivers one domain's messages over up to ``connectionsPerDomain`` connections at once.
    func deliver(_ mails: [OutgoingMail], domain: String, keys: SigningKeys, returnPaths: Set<String> = [],
                 recorder: OutcomeRecorder) async {
        let (granted, retryAfter) = await domainRates.take(domain, count: mails.count)
        if granted < mails.count {
            let until = now().addingTimeInterval(max(retryAfter, 0.05))
            await recorder.add(mails[granted...].map {
                DeliveryAttempt(messageID: $0.id, result: .released(until: until), response: "over the delivery rate of \(domain)")
            })
        }
        let mails = Array(mails.prefix(granted))
        let chunks = stride(from: 0, to: mails.count, by: messagesPerConnection).map {
            Array(mails[$0..<min($0 + messagesPerConnection, mails.count)])
        }
        await withTaskGroup(of: Void.self) { group in
            var running = 0
            for chunk in chunks {
                if running >= connectionsPerDomain {
                    await group.next()
                    running -= 1
                }
                group.addTask { await deliverOverOneConnection(chunk, domain: domain, keys: keys, returnPaths: returnPaths, recorder: recorder) }
                running += 1
            }
        }
    }

    func deliverOverOneConnection(_ mails: [OutgoingMail], domain: String, keys: SigningKeys,
                                  returnPaths: Set<String> = [], recorder: OutcomeRecorder) async {
        var envelopes: [SMTPClientStateMachine.Envelope] = []
        var sent: [ClaimedMessage] = []
        var unbuildable: [DeliveryAttempt] = []
        for mail in mails {
            do {
                envelopes.append(.init(from: envelopeSender(mail, returnPaths: returnPaths), recipients: [mail.message.to], data: try build(mail, keys: keys)))
                sent.append(mail.message)
            } catch {
                unbuildable.append(Self.unbuildable(mail.id, error))
            }
        }
        await recorder.add(unbuildable)
        guard !envelopes.isEmpty else { return }
        switch await router.route(domain: domain) {
        case .fail(let outcome):
            await recorder.add(sent.map { attempt($0, [outcome]) })
        case .hosts(let hosts):
            let messages = sent
            var outcomes: [[SMTPOutcome]] = []
            for (host, port) in hosts {
                let connection = await smtp.attempt(envelopes, host: host, port: port) { index, outcome in
                    await recorder.add([attempt(messages[index], outcome)])
                }
                outcomes = connection.outcomes
                if connection.connected { break }
            }
            // What the session did not finish (and a connection that was never made) is recorded now;
            // the recorder ignores a message it already has.
            await recorder.add(zip(messages, outcomes).map { attempt($0, $1) })
        }
    }

    /// The result of a message's attempt, decided here: the SMTP outcome of its (one) recipient, with the
    /// retry time of a soft failure from ``retry``.
    func attempt(_ message: ClaimedMessage, _ outcomes: [SMTPOutcome]) -> DeliveryAttempt {
        let outcome = outcomes.first ?? .softFailure("no outcome")
        return DeliveryAttempt(messageID: message.id,
                               result: DeliveryResult(outcome, attempts: message.attempts, acceptedAt: message.createdAt, retry: retry, now: now()),
                               response: outcome.response)
    }

    /// A message that could not be built (or whose addresses do not parse) bounces.
    static func unbuildable(_ id: UUID, _ error: any Error) -> DeliveryAttempt {
        let response = "the message could not be built: \(error)"
        return DeliveryAttempt(messageID: id, result: .bounced(response: response), response: response)
    }
}
