import HeraldCore
import HeraldDNS
import HeraldTestSupport
import HeraldWebhooks
import NIOCore
import Testing

/// The SSRF guard against a real DNS server on 127.0.0.1 (dnslib): every address a webhook host resolves
/// to is checked, and the dispatcher is given the address that passed.
@Suite struct WebhookGuardTests {
    static var zone: [String: Any] {
        [
            "hooks.example": [["A", "93.184.216.34", 60]],
            "inside.example": [["A", "127.0.0.1", 60]],
            "mixed.example": [["A", "93.184.216.34", 60], ["A", "10.1.2.3", 60]],
            "v6.example": [["AAAA", "2606:2800:220:1::1", 60]],
        ]
    }

    static func withGuard(allowPrivate: Bool, _ body: (WebhookGuard) async throws -> Void) async throws {
        try await DNSTestServer.with(zone: zone) { dns in
            let client = DNSClient(server: try SocketAddress(ipAddress: "127.0.0.1", port: dns.port), timeout: .seconds(1), attempts: 1)
            try await body(WebhookGuard(policy: WebhookTargetPolicy(allowPrivate: allowPrivate), dns: client))
        }
    }

    /// The refusal's message (a validation failure on `url`), or nil when the URL passed.
    static func refusal(_ guardian: WebhookGuard, _ url: String) async -> String? {
        do {
            _ = try await guardian.check(url)
            return nil
        } catch {
            #expect(error.field == "url")
            return error.message
        }
    }

    @Test func publicHostsPassWithTheAddressToConnectTo() async throws {
        try await Self.withGuard(allowPrivate: false) { guardian in
            let checked = try await guardian.check("https://hooks.example/in")
            #expect(checked.address.description == "93.184.216.34")
            #expect(checked.target.host == "hooks.example" && checked.target.port == 443)
            let v6 = try await guardian.check("https://v6.example/in")
            #expect(v6.address.description == "2606:2800:220:1::1")
        }
    }

    @Test func privateAddressesAreRefusedWhateverTheName() async throws {
        try await Self.withGuard(allowPrivate: false) { guardian in
            #expect(await Self.refusal(guardian, "https://inside.example/in")?.contains("127.0.0.1, a loopback address") == true)
            // One private address among public ones is enough to refuse the name.
            #expect(await Self.refusal(guardian, "https://mixed.example/in")?.contains("10.1.2.3") == true)
            #expect(await Self.refusal(guardian, "https://127.0.0.1/in") != nil)
            #expect(await Self.refusal(guardian, "https://nowhere.example/in")?.contains("does not exist") == true)
            #expect(await Self.refusal(guardian, "http://hooks.example/in") != nil)
        }
    }

    @Test func theOperatorMayAllowPrivateTargets() async throws {
        try await Self.withGuard(allowPrivate: true) { guardian in
            let inside = try await guardian.check("https://inside.example/in")
            #expect(inside.address.description == "127.0.0.1")
            let literal = try await guardian.check("http://127.0.0.1:8080/in")
            #expect(literal.target.port == 8080)
        }
    }
}
