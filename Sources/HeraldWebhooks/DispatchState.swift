import Foundation
import HeraldStore

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
