import AsyncHTTPClient
import HeraldCore
import NIOCore
import NIOPosix

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
