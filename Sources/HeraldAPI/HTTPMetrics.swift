import Hummingbird
import Prometheus

/// Counts requests by route and status and records their latency, into an injected registry
/// (no global metrics state, so each application and test has its own).
struct HTTPMetricsMiddleware: RouterMiddleware {
    typealias Context = HeraldRequestContext
    let registry: PrometheusCollectorRegistry
    static let buckets: [Duration] = [.microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
                                      .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
                                      .milliseconds(500), .seconds(1), .seconds(2)]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let response = try await next(request, context)
        // The matched route pattern, not the raw path, keeps label cardinality bounded.
        let route = context.endpointPath ?? "unmatched"
        let labels = [("method", request.method.rawValue), ("route", route), ("status", String(response.status.code))]
        registry.makeCounter(descriptor: .init(metricName: "herald_http_requests", unitName: "total", helpText: "HTTP requests by route and status"), labels: labels).increment()
        registry.makeDurationHistogram(descriptor: .init(metricName: "herald_http_request_duration", unitName: "seconds", helpText: "HTTP request latency"),
                                       labels: [("method", request.method.rawValue), ("route", route)], buckets: Self.buckets)
            .record(ContinuousClock.now - start)
        return response
    }
}
