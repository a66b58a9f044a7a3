import Foundation
import HeraldCore
import HeraldDNS
import HeraldSMTP
import HeraldStore
import Logging
import ServiceLifecycle

/// Where mail for a recipient domain goes: the smart host when one is set (`HERALD_SMARTHOST`), else
/// the domain's MX hosts by preference, or its own address when it has no MX (implicit MX, RFC 5321
/// §5.1). A null MX (RFC 7505) refuses mail for good; a DNS failure is a soft failure.
public struct MailRouter: Sendable {
    public var dns: DNSClient
    public var smarthost: (host: String, port: Int)?

    public init(dns: DNSClient, smarthost: (host: String, port: Int)?) {
        self.dns = dns
        self.smarthost = smarthost
    }

    public enum Route: Sendable {
        case hosts([(host: String, port: Int)])
        case fail(DeliveryOutcome)
    }

    public func route(domain: String) async -> Route {
        if let smarthost { return .hosts([smarthost]) }
        do {
            let answer = try await dns.query(domain, .mx)
            if answer.isNXDomain {
                return .fail(.hardFailure(SMTPReply(code: 550, enhanced: EnhancedStatus(statusClass: 5, subject: 1, detail: 2),
                                                    lines: ["the domain \(domain) does not exist"])))
            }
            let exchangers = answer.mailExchangers
            if exchangers.count == 1 && exchangers[0].host.isEmpty {
                return .fail(.hardFailure(SMTPReply(code: 556, enhanced: EnhancedStatus(statusClass: 5, subject: 1, detail: 10),
                                                    lines: ["\(domain) accepts no mail (null MX)"])))
            }
            if exchangers.isEmpty { return .hosts([(domain, 25)]) }
            return .hosts(exchangers.map { ($0.host, 25) })
        } catch {
            return .fail(.softFailure("MX lookup for \(domain) failed: \(error)"))
        }
    }
}

/// Claims due messages, signs and delivers them grouped by recipient domain (one connection per group,
/// several messages over it), and records the outcomes. No database connection is held while mail is
/// on the wire.
public struct DeliveryWorker: Sendable {
    public var store: DeliveryStore
    public var domains: DomainStore
    public var router: MailRouter
    public var smtp: SMTPDelivery
    public var worker: String
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

    public init(store: DeliveryStore, domains: DomainStore, router: MailRouter, smtp: SMTPDelivery, worker: String,
                now: @escaping @Sendable () -> Date = Date.init) {
        self.store = store
        self.domains = domains
        self.router = router
        self.smtp = smtp
        self.worker = worker
        self.now = now
    }

    /// One claim cycle; returns how many messages it attempted. Each outcome is committed as soon as the
    /// server has answered it (see ``OutcomeRecorder``), and the leases of the batch are renewed while it
    /// is on the wire.
    public func runOnce() async throws -> Int {
        let claimed = try await store.claim(worker: worker, limit: batchSize, now: now(), lease: lease)
        guard !claimed.isEmpty else { return 0 }
        // Signing keys, once per tenant and sending domain of the batch.
        var keys: [String: (selector: String, key: DKIMKeyPair)] = [:]
        var looked = Set<String>(), returnPaths = Set<String>()
        for message in claimed where message.kind != "system" {
            guard let domain = message.from.split(separator: "@").last.map(String.init) else { continue }
            let name = "\(message.tenantID)|\(domain)"
            guard looked.insert(name).inserted else { continue }
            let (key, verifiedReturnPath) = try await domains.sending(tenantID: message.tenantID, domain: domain)
            if let key { keys[name] = key }
            if returnPath != nil, verifiedReturnPath { returnPaths.insert(name) }
        }
        let verifiedReturnPaths = returnPaths
        let groups = Dictionary(grouping: claimed) { $0.to.split(separator: "@").last.map { String($0).lowercased() } ?? "" }
        let recorder = OutcomeRecorder(store: store, claimed: Dictionary(uniqueKeysWithValues: claimed.map { ($0.id, $0) }), worker: worker, now: now,
                                       logger: logger)
        let signingKeys = keys
        let renewal = Task { [store, worker, lease, now, logger] in
            while !Task.isCancelled {
                try? await Task.sleep(for: lease / 3)
                guard !Task.isCancelled else { break }
                do {
                    try await store.renew(worker: worker, ids: await recorder.unrecorded(), now: now(), lease: lease)
                } catch {
                    logger.warning("lease renewal failed", metadata: ["error": "\(error)"])
                }
            }
        }
        defer { renewal.cancel() }
        await withTaskGroup(of: Void.self) { group in
            var running = 0
            for (domain, messages) in groups {
                if running >= parallelDomains {
                    await group.next()
                    running -= 1
                }
                group.addTask { await deliver(messages, domain: domain, keys: signingKeys, returnPaths: verifiedReturnPaths, recorder: recorder) }
                running += 1
            }
        }
        try await recorder.finish()
        return claimed.count
    }

    /// Delivers one domain's messages over up to ``connectionsPerDomain`` connections at once.
    func deliver(_ messages: [ClaimedMessage], domain: String, keys: [String: (selector: String, key: DKIMKeyPair)], returnPaths: Set<String> = [],
                 recorder: OutcomeRecorder) async {
        let (granted, retryAfter) = domainRates.take(domain, count: messages.count)
        if granted < messages.count {
            let until = now().addingTimeInterval(max(retryAfter, 0.05))
            await recorder.add(messages[granted...].map { .released($0.id, until: until, reason: "over the delivery rate of \(domain)") })
        }
        let messages = Array(messages.prefix(granted))
        let chunks = stride(from: 0, to: messages.count, by: messagesPerConnection).map {
            Array(messages[$0..<min($0 + messagesPerConnection, messages.count)])
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

    func deliverOverOneConnection(_ messages: [ClaimedMessage], domain: String, keys: [String: (selector: String, key: DKIMKeyPair)],
                                  returnPaths: Set<String> = [], recorder: OutcomeRecorder) async {
        var envelopes: [SMTPClientStateMachine.Envelope] = []
        var ids: [UUID] = []
        var unbuildable: [AttemptResult] = []
        for message in messages {
            do {
                envelopes.append(.init(from: envelopeSender(message, returnPaths: returnPaths), recipients: [message.to], data: try build(message, keys: keys)))
                ids.append(message.id)
            } catch {
                unbuildable.append(AttemptResult(id: message.id, status: "bounced", response: "the message could not be built: \(error)"))
            }
        }
        await recorder.add(unbuildable)
        guard !envelopes.isEmpty else { return }
        switch await router.route(domain: domain) {
        case .fail(let outcome):
            await recorder.add(ids.map { AttemptResult(id: $0, status: outcome.messageStatus, response: Self.describe(outcome)) })
        case .hosts(let hosts):
            let envelopeIDs = ids
            var outcomes: [[DeliveryOutcome]] = []
            for (host, port) in hosts {
                let attempt = await smtp.attempt(envelopes, host: host, port: port) { index, outcome in
                    await recorder.add([Self.result(envelopeIDs[index], outcome)])
                }
                outcomes = attempt.outcomes
                if attempt.connected { break }
            }
            // What the session did not finish (and a connection that was never made) is recorded now;
            // the recorder ignores a message it already has.
            await recorder.add(zip(ids, outcomes).map { Self.result($0, $1) })
        }
    }

    static func result(_ id: UUID, _ outcome: [DeliveryOutcome]) -> AttemptResult {
        let first = outcome.first ?? .softFailure("no outcome")
        return AttemptResult(id: id, status: first.messageStatus, response: describe(first))
    }

    static func describe(_ outcome: DeliveryOutcome) -> String {
        switch outcome {
        case .delivered(let reply), .hardFailure(let reply), .spamRejected(let reply): reply.description
        case .softFailure(let reason): reason
        }
    }

    /// The message's extra header fields, with RFC 8058 one-click unsubscribe (tenant-wide scope) on mail
    /// accepted with `unsubscribeLink` (trigger mail whose tenant asked for it, single sends from a batch-type
    /// sender); batch tasks' messages have theirs, with the list's scope, from the expansion.
    func headers(_ message: ClaimedMessage) -> [(name: String, value: String)] {
        guard message.unsubscribeLink, message.kind != "system", let unsubscribeLinks,
              !message.headers.contains(where: { $0.name.lowercased() == "list-unsubscribe" }) else { return message.headers }
        return message.headers + unsubscribeLinks.headers(tenant: message.tenantID, message: message.id, scope: "*").map { (name: $0.0, value: $0.1) }
    }

    /// The envelope sender (MAIL FROM) of a message: its VERP return path when its domain has one in place.
    func envelopeSender(_ message: ClaimedMessage, returnPaths: Set<String>) -> String {
        guard let returnPath, let domain = message.from.split(separator: "@").last.map(String.init),
              returnPaths.contains("\(message.tenantID)|\(domain)") else { return message.from }
        return returnPath.address(for: message.id, domain: domain.lowercased())
    }

    /// The message as it goes on the wire, DKIM-signed with its domain's active key.
    func build(_ message: ClaimedMessage, keys: [String: (selector: String, key: DKIMKeyPair)]) throws -> [UInt8] {
        let from = try MailAddress(message.from)
        if let raw = message.raw {
            // Submitted over SMTP: sent as submitted, with Herald's fields on top where the message has none.
            let fields = [("X-Herald-Message-Id", message.id.uuidString.lowercased()),
                          ("Message-ID", "<\(message.id.uuidString.lowercased())@\(from.domain)>"),
                          ("Date", MIME.rfc5322Date(message.createdAt))] + (message.replyTo.map { [("Reply-To", "<\($0)>")] } ?? [])
                + headers(message).map { ($0.name, $0.value) }
            let prepared = MIME.prepending(fields, to: raw)
            guard let signing = keys["\(message.tenantID)|\(from.domain)"] else { return prepared }
            return try DKIM.sign(prepared, domain: from.domain, selector: signing.selector, key: signing.key, at: now())
        }
        let outgoing = OutgoingMessage(from: from, fromName: message.fromName, to: try MailAddress(message.to),
                                       replyTo: try message.replyTo.map { try MailAddress($0) }, subject: message.subject,
                                       html: message.html.map { html in
                                           guard message.tracking, let tracking else { return html }
                                           return tracking.rewrite(html: html, tenantID: message.tenantID, messageID: message.id)
                                       },
                                       text: message.text, messageID: "\(message.id.uuidString.lowercased())@\(from.domain)",
                                       heraldMessageID: message.id.uuidString.lowercased(), date: message.createdAt, extraHeaders: headers(message))
        let rendered = outgoing.render()
        guard let signing = keys["\(message.tenantID)|\(from.domain)"] else { return rendered }
        return try DKIM.sign(rendered, domain: from.domain, selector: signing.selector, key: signing.key, at: now())
    }
}

/// Commits delivery outcomes as they come, a group at a time: while one transaction is being written
/// the next outcomes gather, and the next transaction takes them all. So a message whose server said 250
/// is marked delivered a few milliseconds later, not at the end of its batch — the window in which a
/// crash makes it go out twice (at-least-once delivery: see docs/design.md) is one commit wide.
actor OutcomeRecorder {
    let store: DeliveryStore
    let claimed: [UUID: ClaimedMessage]
    let worker: String
    let now: @Sendable () -> Date
    let logger: Logger
    private var pending: [AttemptResult] = []
    private var seen = Set<UUID>()
    private var flushing: Task<Void, Never>?
    private var failure: (any Error)?

    init(store: DeliveryStore, claimed: [UUID: ClaimedMessage], worker: String, now: @escaping @Sendable () -> Date, logger: Logger) {
        self.store = store
        self.claimed = claimed
        self.worker = worker
        self.now = now
        self.logger = logger
    }

    /// Queues outcomes for the next commit; a message's first outcome is the one that counts.
    func add(_ results: [AttemptResult]) {
        for result in results where seen.insert(result.id).inserted { pending.append(result) }
        if flushing == nil, !pending.isEmpty { flushing = Task { await self.flush() } }
    }

    /// The messages of the batch that have no outcome yet (their leases are still needed).
    func unrecorded() -> [UUID] {
        claimed.keys.filter { !seen.contains($0) }
    }

    private func flush() async {
        while !pending.isEmpty {
            let batch = pending
            pending = []
            do {
                try await store.record(batch, claimed: claimed, worker: worker, now: now())
            } catch {
                // Not recorded: the leases run out and the messages are tried again.
                logger.error("recording delivery outcomes failed", metadata: ["error": "\(error)", "messages": "\(batch.count)"])
                failure = error
            }
        }
        flushing = nil
    }

    /// Waits until everything added is committed; throws when a commit failed.
    func finish() async throws {
        while let flushing { await flushing.value }
        if let failure { throw failure }
    }
}

/// Runs the worker until shutdown: `loops` claim cycles at once (they share the queue through
/// `SKIP LOCKED`), back to back while there is work, polling when the queue is empty.
public struct DeliveryService: Service {
    let worker: DeliveryWorker
    let pollInterval: Duration
    let loops: Int

    public init(worker: DeliveryWorker, pollInterval: Duration = .seconds(1), loops: Int = 2) {
        self.worker = worker
        self.pollInterval = pollInterval
        self.loops = max(1, loops)
    }

    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            for worker in loopWorkers { group.addTask { await loop(worker) } }
            group.addTask { await housekeeping() }
        }
    }

    /// One worker per loop, each with its own name (`<process worker>/<n>`): a claim's `locked_by` names the
    /// loop that holds it, so a loop whose lease ran out (and whose messages another loop of the same process
    /// claimed again) can neither renew nor record them — one name for both would let it.
    var loopWorkers: [DeliveryWorker] {
        (0..<loops).map { index in
            var worker = self.worker
            worker.worker = "\(self.worker.worker)/\(index)"
            return worker
        }
    }

    /// Every five minutes: the submitted text of requests that are done goes.
    func housekeeping() async {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(300)) }
            guard !Task.isCancelled && !Task.isShuttingDownGracefully else { return }
            do {
                try await worker.store.pruneSubmitted(now: worker.now())
            } catch {
                worker.logger.error("pruning submitted messages failed", metadata: ["error": "\(error)"])
            }
        }
    }

    func loop(_ worker: DeliveryWorker) async {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let attempted: Int
            do {
                attempted = try await worker.runOnce()
            } catch {
                worker.logger.error("delivery cycle failed", metadata: ["error": "\(error)"])
                attempted = 0
            }
            if attempted == 0 { try? await cancelWhenGracefulShutdown { try await Task.sleep(for: pollInterval) } }
        }
    }
}

/// Expands batch tasks into messages, a chunk per transaction, until each is done.
public struct TaskExpander: Sendable {
    public var store: BatchStore
    /// Builds the unsubscribe link and fields of a message.
    public var unsubscribeLinks: UnsubscribeLinks
    public var chunk = 1_000
    public var lease: Duration = .seconds(300)
    public var now: @Sendable () -> Date

    public init(store: BatchStore, unsubscribeLinks: UnsubscribeLinks, now: @escaping @Sendable () -> Date = Date.init) {
        self.store = store
        self.unsubscribeLinks = unsubscribeLinks
        self.now = now
    }

    /// Expands one due task to the end; answers whether there was one.
    public func runOnce() async throws -> Bool {
        guard let task = try await store.claim(now: now(), lease: lease) else { return false }
        while try await !store.expandChunk(task, chunk: chunk, now: now(), unsubscribeLinks: unsubscribeLinks) {}
        return true
    }
}

/// Runs the expander until shutdown.
public struct TaskExpansionService: Service {
    let expander: TaskExpander
    let logger: Logger

    public init(expander: TaskExpander, logger: Logger) {
        self.expander = expander
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            var worked = false
            do {
                worked = try await expander.runOnce()
            } catch {
                logger.error("batch expansion failed", metadata: ["error": "\(error)"])
            }
            if !worked { try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) } }
        }
    }
}
