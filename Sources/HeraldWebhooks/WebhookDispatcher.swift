import Foundation
import HeraldCore
import HeraldStore
import Logging
import ServiceLifecycle

/// The dispatcher's recorder: every attempt's outcome is committed (a delivery is attempted once per
/// claim), and a failed commit is logged, not thrown — the claims run out and the deliveries go again.
typealias WebhookRecorder = GroupCommitter<WebhookAttemptOutcome, Never, Never>

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
        let recorder = makeRecorder(state: state)
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
                        logger.error("claiming webhook deliveries failed", metadata: ["error": "\(String(reflecting: error))"])
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

    /// Commits attempt outcomes a group at a time as they come (see ``GroupCommitter``), then lets the
    /// dispatch state forget them, recorded or not.
    func makeRecorder(state: DispatchState) -> WebhookRecorder {
        WebhookRecorder { [store, worker, now, logger] outcomes in
            do {
                try await store.record(outcomes, worker: worker, now: now())
            } catch {
                // Not recorded: the claims run out and the deliveries are sent again (same webhook-id).
                logger.error("recording webhook attempts failed", metadata: ["error": "\(error)", "attempts": "\(outcomes.count)"])
            }
            await state.release(outcomes.map(\.id))
        }
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

    /// Lease renewal, the backlog gauge, idle HTTP clients and pruning old deliveries, in the background:
    /// a tick at start, then every few seconds.
    func housekeeping(state: DispatchState) async {
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
            } catch {
                logger.warning("webhook housekeeping failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: tick)
        }
    }
}
