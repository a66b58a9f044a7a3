import HeraldCore
import Prometheus

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
