/// The SMTP connections of one process, by destination (`host:port`, and whether STARTTLS is wanted):
/// at most ``maxPerDestination`` in use at once — a delivery beyond that waits for a free slot — and up to
/// ``maxIdlePerDestination`` kept open between deliveries for ``idleTimeout``, so that the next messages
/// for the same server reuse a connection instead of paying for TCP, the greeting, EHLO and STARTTLS
/// again. Idle time is read from an injected clock (tests move it by hand).
///
/// With `sharedSlots`, the cap of a destination holds for the whole installation: the pool asks how many
/// of the destination's connections this process may have open now (its share of the cap, traded with
/// the other processes), opens no more than that (a delivery beyond it waits, asking again every 100 ms),
/// and keeps a released connection idle only while its open connections stay within it.
public actor SMTPConnectionPool {
    /// Connections in use to one destination at once.
    public let maxPerDestination: Int
    /// Idle connections kept per destination.
    public let maxIdlePerDestination: Int
    /// How long an idle connection is kept (zero: none are kept).
    public let idleTimeout: Duration

    /// Idle connections by destination, each with the time it became idle (``elapsed``).
    private var idle: [String: [(session: SMTPSession, since: Duration)]] = [:]
    private var inUse: [String: Int] = [:]
    private var waiting: [String: [CheckedContinuation<Void, Never>]] = [:]
    /// Deliveries waiting for the installation's share to grow, by destination.
    private var waitingForShare: [String: Int] = [:]
    /// This process's share of each destination's cap, as last answered.
    private var share: [String: Int] = [:]
    /// How many connections to a destination this process may have open, given how many it would use
    /// and how many it has open.
    let sharedSlots: (@Sendable (_ destination: String, _ wanting: Int, _ open: Int) async -> Int)?
    /// Told how many connections to a destination this process uses (in use and waiting) and has open
    /// when one is given back.
    let sharedUse: (@Sendable (_ destination: String, _ using: Int, _ open: Int) -> Void)?
    private var sweeper: Task<Void, Never>?
    /// Connections opened and reused, for metrics and tests.
    public private(set) var opened = 0
    public private(set) var reused = 0

    /// Told of every connection handed out: reused from the idle ones, or opened (metrics).
    let observe: @Sendable (_ reused: Bool) -> Void
    /// Time on the pool's clock since the pool was made.
    let elapsed: @Sendable () -> Duration
    /// Sleeps until that time (``elapsed``) on the pool's clock.
    let sleepUntil: @Sendable (Duration) async throws -> Void

    /// A pool with these caps; idle time is read from `clock` (the continuous clock, unless a test moves its own).
    public init<C: Clock<Duration>>(maxPerDestination: Int = 10, maxIdlePerDestination: Int = 4, idleTimeout: Duration = .seconds(5),
                                    clock: C = ContinuousClock(), observe: @escaping @Sendable (_ reused: Bool) -> Void = { _ in },
                                    sharedSlots: (@Sendable (_ destination: String, _ wanting: Int, _ open: Int) async -> Int)? = nil,
                                    sharedUse: (@Sendable (_ destination: String, _ using: Int, _ open: Int) -> Void)? = nil) {
        self.maxPerDestination = max(1, maxPerDestination)
        self.sharedSlots = sharedSlots
        self.sharedUse = sharedUse
        self.maxIdlePerDestination = max(0, maxIdlePerDestination)
        self.idleTimeout = idleTimeout
        self.observe = observe
        let origin = clock.now
        elapsed = { origin.duration(to: clock.now) }
        sleepUntil = { try await clock.sleep(until: origin.advanced(by: $0), tolerance: nil) }
    }

    /// Waits for a slot to `destination`, then answers an idle open connection to it, if there is one.
    func acquire(_ destination: String) async -> SMTPSession? {
        while true {
            if inUse[destination, default: 0] >= maxPerDestination {
                await withCheckedContinuation { waiting[destination, default: []].append($0) }
                continue
            }
            guard let sharedSlots else { break }
            let wanting = inUse[destination, default: 0] + waitingForShare[destination, default: 0] + (waiting[destination]?.count ?? 0) + 1
            let slots = await sharedSlots(destination, wanting, inUse[destination, default: 0] + (idle[destination]?.count ?? 0))
            share[destination] = slots
            closeIdle(destination, beyond: slots)
            if inUse[destination, default: 0] < min(slots, maxPerDestination) { break }
            waitingForShare[destination, default: 0] += 1
            try? await Task.sleep(for: .milliseconds(100))
            waitingForShare[destination, default: 1] -= 1
            if waitingForShare[destination] == 0 { waitingForShare[destination] = nil }
        }
        inUse[destination, default: 0] += 1
        sweep()
        while let last = idle[destination]?.popLast() {
            if idle[destination]?.isEmpty == true { idle[destination] = nil }
            if last.session.isOpen {
                reused += 1
                observe(true)
                return last.session
            }
        }
        return nil
    }

    /// Counts a connection this pool's caller opened.
    func countOpened() {
        opened += 1
        observe(false)
    }

    /// Gives the slot back, and the connection for reuse when it is still open (else it is closed).
    func release(_ destination: String, session: SMTPSession?) {
        inUse[destination, default: 1] -= 1
        defer {
            sharedUse?(destination, inUse[destination, default: 0] + waitingForShare[destination, default: 0] + (waiting[destination]?.count ?? 0),
                       inUse[destination, default: 0] + (idle[destination]?.count ?? 0))
        }
        if let session {
            let open = inUse[destination, default: 0] + idle[destination, default: []].count
            if session.isOpen, idleTimeout > .zero, idle[destination, default: []].count < maxIdlePerDestination,
               open < share[destination] ?? maxPerDestination {
                idle[destination, default: []].append((session, elapsed()))
                scheduleSweep()
            } else {
                session.quit()
            }
        }
        if var waiters = waiting[destination], !waiters.isEmpty {
            let next = waiters.removeFirst()
            waiting[destination] = waiters.isEmpty ? nil : waiters
            next.resume()
        }
    }

    /// Quits idle connections to `destination` while more than `slots` are open (the share shrank).
    private func closeIdle(_ destination: String, beyond slots: Int) {
        while inUse[destination, default: 0] + (idle[destination]?.count ?? 0) > slots, let last = idle[destination]?.popLast() {
            last.session.quit()
            if idle[destination]?.isEmpty == true { idle[destination] = nil }
        }
    }

    /// Closes every idle connection (at shutdown).
    public func closeIdle() {
        for (_, sessions) in idle { for entry in sessions { entry.session.quit() } }
        idle = [:]
        sweeper?.cancel()
        sweeper = nil
    }

    /// The connections kept idle now (tests).
    var idleSessions: [SMTPSession] {
        idle.values.flatMap { $0.map(\.session) }
    }

    /// Quits connections idle for longer than the timeout, and forgets the ones the server closed.
    private func sweep() {
        let now = elapsed()
        for (destination, sessions) in idle {
            var kept: [(session: SMTPSession, since: Duration)] = []
            for entry in sessions {
                if entry.session.isOpen && now - entry.since < idleTimeout { kept.append(entry) } else { entry.session.quit() }
            }
            idle[destination] = kept.isEmpty ? nil : kept
        }
    }

    /// Sweeps whenever the oldest idle connection reaches the timeout, until none is left idle. The
    /// deadline comes from the connection's own idle time, so a sweeper that starts late does not sleep
    /// past it.
    private func scheduleSweep() {
        guard sweeper == nil else { return }
        sweeper = Task { [sleepUntil] in
            while !Task.isCancelled, let deadline = self.nextExpiry() {
                try? await sleepUntil(deadline)
                if Task.isCancelled { break }
                self.sweep()
            }
        }
    }

    /// When the oldest idle connection times out; nil when none is idle (the sweeper stops).
    private func nextExpiry() -> Duration? {
        guard let oldest = idle.values.lazy.flatMap({ $0 }).map(\.since).min() else {
            sweeper = nil
            return nil
        }
        return oldest + idleTimeout
    }
}
