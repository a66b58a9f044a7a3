import HeraldDNS
import HeraldDelivery
import HeraldTestSupport
import NIOCore
import Testing

/// Where mail goes, against a real DNS server on 127.0.0.1 (dnslib): MX hosts by preference, the
/// domain itself without MX, no route for a domain that does not exist or for a server failure, and
/// the smart host before any lookup.
@Suite struct MailRouterTests {
    static var zone: [String: Any] {
        [
            "two.example": [["MX", [20, "backup.two.example"], 60], ["MX", [10, "mx.two.example"], 60]],
            "bare.example": [["A", "192.0.2.1", 60]],
        ]
    }

    static func withRouter(smarthost: (host: String, port: Int)? = nil, _ body: (MailRouter, DNSTestServer) async throws -> Void) async throws {
        try await DNSTestServer.with(zone: zone, arguments: ["--servfail", "broken.example"]) { dns in
            let client = DNSClient(server: try SocketAddress(ipAddress: "127.0.0.1", port: dns.port), timeout: .seconds(1), attempts: 1)
            try await body(MailRouter(dns: client, smarthost: smarthost), dns)
        }
    }

    static func hosts(_ route: MailRouter.Route) -> [String]? {
        guard case .hosts(let hosts) = route else { return nil }
        return hosts.map { "\($0.host):\($0.port)" }
    }

    @Test func exchangersByPreferenceThenTheDomainItself() async throws {
        try await Self.withRouter { router, _ in
            #expect(Self.hosts(await router.route(domain: "two.example")) == ["mx.two.example:25", "backup.two.example:25"])
            #expect(Self.hosts(await router.route(domain: "bare.example")) == ["bare.example:25"])
        }
    }

    @Test func noRouteForAMissingDomainOrAFailingServer() async throws {
        try await Self.withRouter { router, _ in
            #expect(Self.hosts(await router.route(domain: "nowhere.example")) == nil)
            #expect(Self.hosts(await router.route(domain: "broken.example")) == nil)
        }
    }

    @Test func theSmartHostTakesEverythingWithoutALookup() async throws {
        try await Self.withRouter(smarthost: ("127.0.0.1", 2525)) { router, dns in
            #expect(Self.hosts(await router.route(domain: "two.example")) == ["127.0.0.1:2525"])
            #expect(Self.hosts(await router.route(domain: "nowhere.example")) == ["127.0.0.1:2525"])
            #expect(!dns.log.contains("MX"))
        }
    }
}
