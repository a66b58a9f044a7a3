import HeraldStore
import Logging
import Prometheus
import ServiceLifecycle

/// The scheduler role's upkeep of the history (``HistoryStore/maintain(today:maxSteps:)``): at start and
/// every `interval`, partitions are made ahead of the expiry days that need them and those whose days are
/// past are dropped whole. Several schedulers may run it; one at a time does the work. It also writes
/// HERALD_WEBHOOK_RETENTION_DAYS and HERALD_STATS_RETENTION_DAYS where the database reads them (finished
/// webhook deliveries' expiry, the statistics' days kept).
public struct HistoryService: Service {
    let history: HistoryStore
    let webhookRetentionDays: Int
    let statsRetentionDays: Int
    let interval: Duration
    let metrics: HistoryMetrics
    let logger: Logger

    public init(history: HistoryStore, webhookRetentionDays: Int, statsRetentionDays: Int, interval: Duration = .seconds(3_600),
                metrics: HistoryMetrics, logger: Logger) {
        self.history = history
        self.webhookRetentionDays = webhookRetentionDays
        self.statsRetentionDays = statsRetentionDays
        self.interval = interval
        self.metrics = metrics
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await history.setRetention(webhookDays: webhookRetentionDays, statsDays: statsRetentionDays)
                for step in try await history.maintain() {
                    logger.info("history upkeep", metadata: ["step": "\(step)"])
                }
                metrics.partitions(try await history.partitions())
            } catch {
                // Partitions are made 8 days ahead of need, so a failed run is retried long before it matters.
                logger.error("history upkeep failed", metadata: ["error": "\(String(reflecting: error))"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}

/// `herald_history_partitions{table}`: partitions of each history table, and
/// `herald_history_rows{table}`: the planner's estimate of their rows.
public struct HistoryMetrics: Sendable {
    let counts: [String: Gauge]
    let rows: [String: Gauge]

    public init(registry: PrometheusCollectorRegistry) {
        var counts: [String: Gauge] = [:], rows: [String: Gauge] = [:]
        for table in HistoryStore.tables {
            counts[table] = registry.makeGauge(descriptor: MetricNameDescriptor(metricName: "herald_history_partitions", unitName: "",
                                                                                helpText: "Partitions of a history table"),
                                               labels: [("table", table)])
            rows[table] = registry.makeGauge(descriptor: MetricNameDescriptor(metricName: "herald_history_rows", unitName: "",
                                                                              helpText: "Rows of a history table, as the planner estimates them"),
                                             labels: [("table", table)])
        }
        self.counts = counts
        self.rows = rows
    }

    func partitions(_ partitions: [HistoryPartition]) {
        for (table, gauge) in counts { gauge.set(Double(partitions.count { $0.parent == table })) }
        for (table, gauge) in rows {
            gauge.set(Double(partitions.filter { $0.parent == table }.reduce(0) { $0 + $1.estimatedRows }))
        }
    }
}
