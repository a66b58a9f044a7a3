import Foundation
import HeraldDNS
import HeraldTestSupport
import NIOCore
import Testing

/// The client against a real server on 127.0.0.1: Tests/Peers/dns_server.py, written with dnslib, so
/// what is decoded here was encoded by an independent implementation.
@Suite(.serialized) struct DNSClientTests {
    static var zone: [String: Any] { [
        "example.test": [
            ["TXT", ["v=spf1 include:spf.herald.test -all"], 300],
            ["TXT", ["herald-verification=abc123"], 300],
            ["MX", [20, "mx2.example.test"], 300],
            ["MX", [10, "mx1.example.test"], 300],
        ],
        "mx1.example.test": [["A", "192.0.2.10", 300], ["AAAA", "2001:db8::10", 300]],
        "s1._domainkey.example.test": [["TXT", ["v=DKIM1; k=rsa; p=" + String(repeating: "A", count: 230), String(repeating: "B", count: 250)], 300]],
        "big.example.test": [["TXT", (0..<8).map { "chunk-\($0)-" + String(repeating: "x", count: 200) }, 60]],
        "alias.example.test": [["CNAME", "example.test", 60]],
        "empty.example.test": [["A", "192.0.2.1", 60]],
    ] }

    /// Runs the peer, hands the body a client pointed at it, and returns what the peer logged.
    static func withPeer(_ extra: [String] = [], timeout: Duration = .seconds(2), attempts: Int = 3, cache: DNSCache? = nil,
                         _ body: (DNSClient) async throws -> Void) async throws -> String {
        try await DNSTestServer.with(zone: zone, arguments: extra) { server in
            let client = DNSClient(server: try SocketAddress(ipAddress: "127.0.0.1", port: server.port), timeout: timeout, attempts: attempts, cache: cache)
            try await body(client)
            return server.log
        }
    }

    @Test func txtMxAAndAAAA() async throws {
        _ = try await Self.withPeer { client in
            let texts = try await client.txt("Example.TEST.")
            #expect(Set(texts) == ["v=spf1 include:spf.herald.test -all", "herald-verification=abc123"])
            let mx = try await client.mx("example.test")
            #expect(mx.map(\.host) == ["mx1.example.test", "mx2.example.test"])
            #expect(mx.map(\.preference) == [10, 20])
            let a = try await client.query("mx1.example.test", .a)
            #expect(a.records.map(\.data) == [.a([192, 0, 2, 10])])
            let aaaa = try await client.query("mx1.example.test", .aaaa)
            #expect(aaaa.records.first?.data == .aaaa([0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [0x10]))
            // A DKIM key split over two strings is one value.
            let dkim = try await client.txt("s1._domainkey.example.test")
            #expect(dkim.count == 1 && dkim[0].hasSuffix(String(repeating: "B", count: 250)))
        }
    }

    @Test func nxdomainNoDataAndCNAME() async throws {
        _ = try await Self.withPeer { client in
            let missing = try await client.query("nothing.example.test", .txt)
            #expect(missing.isNXDomain)
            let noData = try await client.query("empty.example.test", .txt)
            #expect(noData.isNoData && !noData.isNXDomain)
            #expect(noData.negativeTTL == 30)
            let alias = try await client.query("alias.example.test", .txt)
            #expect(alias.aliases == ["example.test"])
            #expect(alias.texts.count == 2)
        }
    }

    @Test func truncatedAnswersAreRetriedOverTCP() async throws {
        let log = try await Self.withPeer(["--truncate-over", "512"]) { client in
            let texts = try await client.txt("big.example.test")
            #expect(texts.count == 1)
            #expect(texts.first?.hasPrefix("chunk-0-") == true && texts.first?.contains("chunk-7-") == true)
        }
        #expect(log.contains("udp big.example.test TXT"))
        #expect(log.contains("tcp big.example.test TXT"), "\(log)")
    }

    @Test func lostDatagramsAreRetriedAndServerFailuresThrow() async throws {
        let log = try await Self.withPeer(["--drop-first", "2", "--servfail", "broken.example.test"], timeout: .seconds(1), attempts: 3) { client in
            let texts = try await client.txt("example.test")
            #expect(texts.count == 2)
            await #expect(throws: DNSError.serverFailure(name: "broken.example.test", type: .txt, code: .serverFailure)) {
                try await client.query("broken.example.test", .txt)
            }
        }
        #expect(log.components(separatedBy: "udp dropped").count - 1 == 2)
        // Every attempt lost: a timeout, not an empty answer.
        _ = try await Self.withPeer(["--drop-first", "100"], timeout: .milliseconds(200), attempts: 2) { client in
            await #expect(throws: DNSError.timeout(name: "example.test", type: .txt)) { try await client.query("example.test", .txt) }
        }
    }

    @Test func answersAreCached() async throws {
        let log = try await Self.withPeer(cache: DNSCache()) { client in
            for _ in 0..<3 {
                let mx = try await client.mx("example.test")
                #expect(mx.count == 2)
            }
            for _ in 0..<2 {
                let missing = try await client.query("nothing.example.test", .mx)
                #expect(missing.isNXDomain)
            }
        }
        #expect(log.components(separatedBy: "udp example.test MX").count - 1 == 1)
        #expect(log.components(separatedBy: "udp nothing.example.test MX").count - 1 == 1)
    }
}
