import HeraldCore
import HeraldStore
import Logging
import Prometheus
import ServiceLifecycle

/// Every process runs this: it registers the process in `herald_processes` and says it is alive every
/// `heartbeat` (handing back the installation's idle quota leases with it), renews the process's shares of
/// the installation's limits every interval of the book, and on a graceful stop (it stops after the other
/// services) removes the process, handing its shares and quota leases back at once, so the processes that
/// remain get them at their next renewal.
public struct ClusterService: Service {
    let process: ProcessRecord
    let processes: ProcessStore
    let book: LimitShareBook
    let metrics: ProcessMetrics
    let heartbeat: Duration
    let logger: Logger

    public init(process: ProcessRecord, processes: ProcessStore, book: LimitShareBook, metrics: ProcessMetrics,
                heartbeat: Duration = .seconds(2), logger: Logger) {
        self.process = process
        self.processes = processes
        self.book = book
        self.metrics = metrics
        self.heartbeat = heartbeat
        self.logger = logger
    }

    public func run() async throws {
        let interval = Duration.milliseconds(Int64(book.settings.interval * 1000))
        let clock = ContinuousClock()
        var nextBeat = clock.now
        var failing = false
        var sharing = true
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            if clock.now >= nextBeat {
                nextBeat = clock.now + heartbeat
                do {
                    metrics.live(try await processes.heartbeat(process))
                    if failing { logger.info("process heartbeat recorded again") }
                    failing = false
                } catch {
                    if !failing { logger.error("process heartbeat failed", metadata: ["error": "\(String(reflecting: error))"]) }
                    failing = true
                }
                do {
                    try await processes.releaseQuotaLeases(holder: nil)
                } catch {
                    logger.warning("idle quota leases not handed back (the next heartbeat tries again)",
                                   metadata: ["error": "\(String(reflecting: error))"])
                }
            }
            await book.renew()
            if let failure = await book.lastFailure {
                if sharing { logger.error("limit shares could not be renewed; each limit is split evenly until they are", metadata: ["error": "\(failure)"]) }
                sharing = false
            } else if !sharing {
                logger.info("limit shares renewed again")
                sharing = true
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
        do {
            try await processes.releaseQuotaLeases(holder: process.id)
            try await processes.deregister(process.id)
            logger.info("process deregistered; its limit shares and quota leases handed back")
        } catch {
            logger.warning("process deregistration failed (its shares lapse by themselves)", metadata: ["error": "\(error)"])
        }
    }
}

/// `herald_processes{role}`: the live processes of the installation by role, as this process last saw them.
public struct ProcessMetrics: Sendable {
    let gauges: [String: Gauge]

    public init(registry: PrometheusCollectorRegistry) {
        var gauges: [String: Gauge] = [:]
        let descriptor = MetricNameDescriptor(metricName: "herald_processes", unitName: "", helpText: "Live Herald processes of the installation by role")
        for role in HeraldConfiguration.Role.allCases {
            gauges[role.rawValue] = registry.makeGauge(descriptor: descriptor, labels: [("role", role.rawValue)])
        }
        self.gauges = gauges
    }

    func live(_ byRole: [String: Int]) {
        for (role, gauge) in gauges { gauge.set(Double(byRole[role] ?? 0)) }
    }
}
