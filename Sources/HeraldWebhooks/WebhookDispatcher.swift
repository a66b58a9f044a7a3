import AsyncHTTPClient
import Foundation
import HeraldCore
import HeraldStore
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import ServiceLifecycle

/// Webhook metrics: attempts by outcome, attempt latency, and the backlog by state.
public struct WebhookMetrics: Sendable {
    let outcomes: [String: Counter]
    let latency: DurationHistogram
    let backlog: [String: Gauge]

    public init(registry: PrometheusCollectorRegistry) {
        let outcome = MetricNameDescriptor(metricName: "herald_webhook_attempts", unitName: "total", helpText: "Webhook attempts by outcome")
        var outcomes: [String: Counter] = [:]
        for name in ["succeeded", "retry", "failed", "gone"] { outcomes[name] = registry.makeCounter(descriptor: outcome, labels: [("outcome", name)]) }
        self.outcomes = outcomes
        latency = registry.makeDurationHistogram(
            descriptor: .init(metricName: "herald_webhook_attempt_duration", unitName: "seconds", helpText: "Time from sending a webhook to its answer"),
            buckets: [.milliseconds(5), .milliseconds(25), .milliseconds(100), .milliseconds(250), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10)])
        let state = MetricNameDescriptor(metricName: "herald_webhook_backlog", unitName: "", helpText: "Webhook deliveries waiting, by state")
        var backlog: [String: Gauge] = [:]
        for name in ["due", "in_flight", "retrying"] { backlog[name] = registry.makeGauge(descriptor: state, labels: [("state", name)]) }
        self.backlog = backlog
    }

    func attempted(_ decision: WebhookRetryPolicy.Decision, after duration: Duration) {
        let name: String = switch decision {
        case .succeeded: "succeeded"
        case .retry: "retry"
        case .failed: "failed"
        case .gone: "gone"
        }
        outcomes[name]?.increment()
        latency.record(duration)
    }

    func backlog(due: Int, inFlight: Int, retrying: Int) {
        backlog["due"]?.set(Double(due))
        backlog["in_flight"]?.set(Double(inFlight))
        backlog["retrying"]?.set(Double(retrying))
    }
}

/// HTTP clients by checked target: one per (URL host, port, scheme, checked address), each pinned to the
/// address the guard approved (AsyncHTTPClient's `dnsOverride`: TLS still verifies the host name), with
/// its own connection pool. Resolutions are cached for a minute.
actor WebhookClients {
    let guardian: WebhookGuard
    let timeout: Duration
    private var clients: [String: (client: HTTPClient, used: ContinuousClock.Instant)] = [:]
    private var resolved: [String: (checked: WebhookGuard.Checked, at: ContinuousClock.Instant)] = [:]

    init(guardian: WebhookGuard, timeout: Duration) {
        self.guardian = guardian
        self.timeout = timeout
    }

    /// The client for `url`, or the guard's refusal.
    func client(for url: String) async throws(HeraldError) -> HTTPClient {
        let checked: WebhookGuard.Checked
        if let cached = resolved[url], ContinuousClock.now - cached.at < .seconds(60) {
            checked = cached.checked
        } else {
            checked = try await guardian.check(url)
            resolved[url] = (checked, .now)
        }
        let key = "\(checked.target.scheme)://\(checked.target.host):\(checked.target.port)@\(checked.address)"
        if let entry = clients[key] {
            clients[key]?.used = .now
            return entry.client
        }
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow,
                                                     timeout: .init(connect: .seconds(Int64(timeout.components.seconds)),
                                                                    read: .seconds(Int64(timeout.components.seconds))),
                                                     connectionPool: .init(idleTimeout: .seconds(30)))
        if checked.target.address == nil { configuration.dnsOverride = [checked.target.host: checked.address.description] }
        configuration.httpVersion = .http1Only
        configuration.decompression = .disabled
        let client = HTTPClient(eventLoopGroupProvider: .shared(MultiThreadedEventLoopGroup.singleton), configuration: configuration)
        clients[key] = (client, .now)
        return client
    }

    /// Shuts down clients not used for `idle` (an endpoint deleted or moved to another URL).
    func evictIdle(after idle: Duration) async {
        let now = ContinuousClock.now
        for (key, entry) in clients where now - entry.used > idle {
            clients[key] = nil
            try? await entry.client.shutdown()
        }
        resolved = resolved.filter { now - $0.value.at < .seconds(60) }
    }

    func shutdown() async {
        for entry in clients.values { try? await entry.client.shutdown() }
        clients = [:]
    }
}

/// The dispatcher's in-memory share of deliveries: per endpoint a queue and a count in flight, capped, so
/// one slow or dead endpoint holds only its own deliveries while the rest go on at full speed.
actor DispatchState {
    let perEndpoint: Int
    let bufferPerEndpoint: Int
    let fastBufferPerEndpoint: Int
    let maxHeld: Int
    /// A first-in-first-out queue that pops in place (an array's removeFirst would copy the rest every time).
    struct FIFO {
        private var items: [ClaimedWebhookDelivery] = []
        private var head = 0
        var count: Int { items.count - head }
        mutating func push(_ item: ClaimedWebhookDelivery) { items.append(item) }
        mutating func pop() -> ClaimedWebhookDelivery? {
            guard head < items.count else { return nil }
            let item = items[head]
            head += 1
            if head == items.count {
                items.removeAll(keepingCapacity: true)
                head = 0
            } else if head >= 256 && head * 2 >= items.count {
                items.removeFirst(head)
                head = 0
            }
            return item
        }
    }

    private var queues: [UUID: FIFO] = [:]
    private var inFlight: [UUID: Int] = [:]
    /// Claimed and not yet recorded.
    private var held = Set<UUID>()

    /// When each endpoint last finished a request (whatever its answer).
    private var lastFinished: [UUID: ContinuousClock.Instant] = [:]

    init(perEndpoint: Int, bufferPerEndpoint: Int, fastBufferPerEndpoint: Int, maxHeld: Int) {
        self.perEndpoint = perEndpoint
        self.bufferPerEndpoint = bufferPerEndpoint
        self.fastBufferPerEndpoint = max(fastBufferPerEndpoint, bufferPerEndpoint)
        self.maxHeld = maxHeld
    }

    var room: Int { maxHeld - held.count }

    /// Endpoints that already have as many deliveries here as they may (the claim skips them).
    /// A slow endpoint (none of its requests finished in the last second) may hold `bufferPerEndpoint`;
    /// one that keeps answering may hold `fastBufferPerEndpoint`, so that claims rarely have to skip it.
    var full: [UUID] {
        let now = ContinuousClock.now
        return inFlight.compactMap { endpoint, count in
            let held = count + (queues[endpoint]?.count ?? 0)
            let moving = lastFinished[endpoint].map { now - $0 < .seconds(1) } ?? false
            return held >= (moving ? fastBufferPerEndpoint : bufferPerEndpoint) ? endpoint : nil
        }
    }

    var heldIDs: [UUID] { Array(held) }

    /// Takes claimed deliveries; answers those to start now (the rest wait for a free slot of their endpoint).
    func add(_ deliveries: [ClaimedWebhookDelivery]) -> [ClaimedWebhookDelivery] {
        var start: [ClaimedWebhookDelivery] = []
        for delivery in deliveries {
            held.insert(delivery.id)
            if inFlight[delivery.endpointID, default: 0] < perEndpoint {
                inFlight[delivery.endpointID, default: 0] += 1
                start.append(delivery)
            } else {
                queues[delivery.endpointID, default: FIFO()].push(delivery)
            }
        }
        return start
    }

    /// One delivery of `endpoint` is done; answers the next one of that endpoint to send, if any.
    func next(after endpoint: UUID) -> ClaimedWebhookDelivery? {
        lastFinished[endpoint] = .now
        if let next = queues[endpoint]?.pop() {
            if queues[endpoint]?.count == 0 { queues[endpoint] = nil }
            return next
        }
        inFlight[endpoint, default: 1] -= 1
        if inFlight[endpoint] == 0 {
            inFlight[endpoint] = nil
            lastFinished[endpoint] = nil
        }
        return nil
    }

    /// Recorded (or given up): no longer held.
    func release(_ ids: [UUID]) {
        for id in ids { held.remove(id) }
    }
}

/// Commits attempt outcomes a group at a time (see the delivery worker's `OutcomeRecorder`).
actor WebhookRecorder {
    let store: WebhookStore
    let worker: String
    let state: DispatchState
    let now: @Sendable () -> Date
    let logger: Logger
    private var pending: [WebhookAttemptOutcome] = []
    private var flushing: Task<Void, Never>?

    init(store: WebhookStore, worker: String, state: DispatchState, now: @escaping @Sendable () -> Date, logger: Logger) {
        self.store = store
        self.worker = worker
        self.state = state
        self.now = now
        self.logger = logger
    }

    func add(_ outcome: WebhookAttemptOutcome) {
        pending.append(outcome)
        if flushing == nil { flushing = Task { await self.flush() } }
    }

    private func flush() async {
        while !pending.isEmpty {
            let batch = pending
            pending = []
            do {
                try await store.record(batch, worker: worker, now: now())
            } catch {
                // Not recorded: the claims run out and the deliveries are sent again (same webhook-id).
                logger.error("recording webhook attempts failed", metadata: ["error": "\(error)", "attempts": "\(batch.count)"])
            }
            await state.release(batch.map(\.id))
        }
        flushing = nil
    }

    func finish() async {
        while let flushing { await flushing.value }
    }
}

/// The webhook dispatcher (`dispatcher` role): claims due deliveries with `FOR UPDATE SKIP LOCKED`,
/// POSTs them signed in the Standard Webhooks format, and records each attempt; several processes share
/// the work. No database connection is held while a request is on the wire.
public struct WebhookDispatcher: Service {
    public struct Settings: Sendable {
        /// Answer deadline of one attempt.
        public var timeout: Duration = .seconds(10)
        public var retry = WebhookRetryPolicy.standard
        /// Requests in flight to one endpoint at once.
        public var perEndpoint = 16
        /// Deliveries of one slow endpoint held by this process (in flight and queued) before claims skip it,
        /// so that dead endpoints cannot fill the process.
        public var bufferPerEndpoint = 64
        /// The same for an endpoint that keeps answering: large, because a claim that skips an endpoint still
        /// walks past its due rows.
        public var fastBufferPerEndpoint = 1_000
        /// Deliveries held by this process at most.
        public var maxHeld = 4_000
        public var claimBatch = 500
        public var lease: Duration = .seconds(60)
        /// How often an idle dispatcher looks for due deliveries.
        public var pollInterval: Duration = .milliseconds(25)
        /// Finished deliveries are deleted after this long.
        public var retention: TimeInterval = 30 * 86_400

        public init() {}
    }

    let store: WebhookStore
    let settings: Settings
    let worker: String
    let metrics: WebhookMetrics?
    let logger: Logger
    let now: @Sendable () -> Date
    let clients: WebhookClients

    public init(store: WebhookStore, guardian: WebhookGuard, settings: Settings, worker: String, metrics: WebhookMetrics?, logger: Logger,
                now: @escaping @Sendable () -> Date = Date.init) {
        self.store = store
        self.settings = settings
        self.worker = worker
        self.metrics = metrics
        self.logger = logger
        self.now = now
        self.clients = WebhookClients(guardian: guardian, timeout: settings.timeout)
    }

    public func run() async throws {
        let state = DispatchState(perEndpoint: settings.perEndpoint, bufferPerEndpoint: max(settings.bufferPerEndpoint, settings.perEndpoint),
                                  fastBufferPerEndpoint: settings.fastBufferPerEndpoint,
                                  maxHeld: settings.maxHeld)
        let recorder = WebhookRecorder(store: store, worker: worker, state: state, now: now, logger: logger)
        let keeper = Task { await housekeeping(state: state) }
        defer { keeper.cancel() }
        // In-flight requests end by themselves (within the timeout) after a graceful shutdown begins.
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                let room = await state.room
                var claimed: [ClaimedWebhookDelivery] = []
                if room > 0 {
                    do {
                        claimed = try await store.claim(worker: worker, limit: min(room, settings.claimBatch), excluding: await state.full, now: now(),
                                                        lease: settings.lease)
                    } catch {
                        logger.error("claiming webhook deliveries failed", metadata: ["error": "\(error)"])
                    }
                }
                for delivery in await state.add(claimed) {
                    group.addTask { await sendAll(starting: delivery, state: state, recorder: recorder) }
                }
                if claimed.count < min(room, settings.claimBatch) || room <= 0 {
                    try? await cancelWhenGracefulShutdown { try await Task.sleep(for: settings.pollInterval) }
                }
            }
        }
        await recorder.finish()
        await clients.shutdown()
    }

    /// Sends deliveries of one endpoint one after another, as long as it has some queued here.
    func sendAll(starting first: ClaimedWebhookDelivery, state: DispatchState, recorder: WebhookRecorder) async {
        var current: ClaimedWebhookDelivery? = first
        while let delivery = current {
            guard let outcome = await attempt(delivery) else {
                // Cut short by a hard stop: not an attempt; the claim runs out and it is made again.
                return
            }
            await recorder.add(outcome)
            // Stopping: what is still queued here is left to its claim, which runs out (another process or
            // the next start sends it), so a slow endpoint cannot hold the shutdown up.
            if Task.isCancelled || Task.isShuttingDownGracefully { return }
            current = await state.next(after: delivery.endpointID)
        }
    }

    /// One POST and what it came to; nil when it was cut short by cancellation (a hard stop).
    func attempt(_ delivery: ClaimedWebhookDelivery) async -> WebhookAttemptOutcome? {
        let started = ContinuousClock.now
        let attemptedAt = now()
        let id = "msg_" + delivery.id.uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let timestamp = Int(attemptedAt.timeIntervalSince1970)
        var status: Int?
        var error: String?
        var excerpt: String?
        var retryAfter: String?
        do {
            let client = try await clients.client(for: delivery.url)
            var request = HTTPClientRequest(url: delivery.url)
            request.method = .POST
            request.headers.add(name: "content-type", value: "application/json")
            request.headers.add(name: "user-agent", value: "Herald-Webhooks/1.0")
            request.headers.add(name: "webhook-id", value: id)
            request.headers.add(name: "webhook-timestamp", value: String(timestamp))
            request.headers.add(name: "webhook-signature",
                                value: WebhookSignature.header(id: id, timestamp: timestamp, body: delivery.body, secrets: delivery.secrets))
            request.body = .bytes(ByteBuffer(bytes: delivery.body))
            let response = try await client.execute(request, timeout: .init(settings.timeout))
            status = Int(response.status.code)
            retryAfter = response.headers.first(name: "retry-after")
            var body = ByteBuffer()
            for try await chunk in response.body {
                body.writeImmutableBuffer(chunk)
                if body.readableBytes >= 1024 { break }
            }
            if body.readableBytes > 0 {
                excerpt = String(decoding: body.readableBytesView.prefix(1024), as: UTF8.self)
            }
        } catch let refusal as HeraldError {
            error = refusal.message
        } catch let failure {
            if let failure = failure as? HTTPClientError, failure == .cancelled { return nil }
            error = Self.describe(failure)
        }
        // No answer because the task was cancelled (the DNS lookup or the request cut short): not an attempt.
        if status == nil && Task.isCancelled { return nil }
        let elapsed = ContinuousClock.now - started
        let decision = settings.retry.decide(attempt: delivery.attempts + 1, status: status, retryAfter: retryAfter, now: now())
        if let status, (300..<400).contains(status) { error = "redirects are not followed" }
        metrics?.attempted(decision, after: elapsed)
        let milliseconds = Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
        return WebhookAttemptOutcome(id: delivery.id, endpointID: delivery.endpointID, attemptedAt: attemptedAt, httpStatus: status, error: error,
                                     latencyMs: milliseconds, response: excerpt, decision: decision)
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout: return "timed out"
            case .connectTimeout: return "connection timed out"
            case .remoteConnectionClosed: return "the connection was closed without an answer"
            default: return "\(error)"
            }
        }
        return "\(error)"
    }

    /// Lease renewal, the backlog gauge, idle HTTP clients and pruning old deliveries, in the background:
    /// a tick at start, then every few seconds.
    func housekeeping(state: DispatchState) async {
        var lastPrune = ContinuousClock.now - .seconds(3_600)
        var lastRenewal = ContinuousClock.now
        let tick = min(settings.lease / 3, .seconds(5))
        while !Task.isCancelled {
            do {
                if ContinuousClock.now - lastRenewal >= settings.lease / 3 {
                    lastRenewal = .now
                    try await store.renew(worker: worker, ids: await state.heldIDs, now: now(), lease: settings.lease)
                }
                if let metrics {
                    let backlog = try await store.backlog(now: now())
                    metrics.backlog(due: backlog.due, inFlight: backlog.inFlight, retrying: backlog.retrying)
                }
                await clients.evictIdle(after: .seconds(600))
                if ContinuousClock.now - lastPrune > .seconds(3_600) {
                    lastPrune = .now
                    while try await store.prune(before: now().addingTimeInterval(-settings.retention)) > 0 {}
                }
            } catch {
                logger.warning("webhook housekeeping failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: tick)
        }
    }
}
