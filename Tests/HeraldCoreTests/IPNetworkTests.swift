import Foundation
import Testing
@testable import HeraldCore

@Suite struct IPAddressTests {
    @Test(arguments: [
        ("1.2.3.4", "1.2.3.4"), ("0.0.0.0", "0.0.0.0"), ("255.255.255.255", "255.255.255.255"),
        ("::", "::"), ("::1", "::1"), ("2001:DB8::1", "2001:db8::1"), ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"), ("::ffff:1.2.3.4", "::ffff:1.2.3.4"),
        ("fe80::1%eth0", "fe80::1"), ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"), ("1:0:3:4:5:6:7:8", "1:0:3:4:5:6:7:8"),
        ("::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"), ("64:ff9b::192.0.2.33", "64:ff9b::c000:221"),
    ])
    func parsesAndPrintsCanonically(input: String, canonical: String) throws {
        let address = try #require(IPAddress(input))
        #expect(address.description == canonical)
        #expect(IPAddress(canonical) == address)
    }

    @Test(arguments: ["", "1.2.3", "256.1.1.1", "01.2.3.4", "1.2.3.4.5", "1..2.3", "a.b.c.d", "1:2:3:4:5:6:7:8:9", "::1::", ":::",
                      "[::1]", "12345::", "1:2:3:4:5:6:7::8:9", "::ffff:1.2.3", "1.2.3.4/8", " 1.2.3.4", "fe80::1%"])
    func rejects(input: String) {
        #expect(IPAddress(input) == nil)
    }

    @Test func unmapsV4MappedV6() {
        #expect(IPAddress("::ffff:10.1.2.3")?.unmappedIPv4 == IPAddress("10.1.2.3"))
        #expect(IPAddress("::10.1.2.3")?.unmappedIPv4 == nil)
    }
}

@Suite struct IPNetworkTests {
    @Test(arguments: [
        ("10.0.0.0/8", "10.255.1.2", true), ("10.0.0.0/8", "11.0.0.1", false),
        ("0.0.0.0/0", "203.0.113.9", true), ("0.0.0.0/0", "::1", false),
        ("203.0.113.7/32", "203.0.113.7", true), ("203.0.113.7/32", "203.0.113.8", false),
        ("203.0.113.7", "203.0.113.7", true),
        ("::/0", "2001:db8::1", true), ("::1/128", "::1", true), ("::1/128", "::2", false),
        ("2001:db8::/127", "2001:db8::1", true), ("2001:db8::/127", "2001:db8::2", false),
        ("10.0.0.0/8", "::ffff:10.1.2.3", true), ("10.0.0.0/8", "::ffff:11.1.2.3", false),
        ("::ffff:0:0/96", "192.0.2.1", true), ("2001:db8::/32", "192.0.2.1", false),
        ("10.1.2.3/8", "10.9.9.9", true),
    ])
    func contains(network: String, address: String, expected: Bool) throws {
        let net = try #require(IPNetwork(network))
        #expect(net.contains(try #require(IPAddress(address))) == expected)
    }

    @Test func masksHostBits() {
        #expect(IPNetwork("10.1.2.3/8")?.description == "10.0.0.0/8")
        #expect(IPNetwork("2001:db8::ffff/32")?.description == "2001:db8::/32")
        #expect(IPNetwork("1.2.3.4")?.description == "1.2.3.4/32")
    }

    @Test(arguments: ["10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8/8", "x/8", "10.0.0.0/08x"])
    func rejects(input: String) {
        #expect(IPNetwork(input) == nil)
    }
}

@Suite struct IPAllowlistTests {
    @Test func disabledPermitsEverythingEnabledOnlyMembers() throws {
        let off = try IPAllowlist.parse(enabled: false, entries: [])
        #expect(off.permits(nil))
        #expect(off.permits(IPAddress("8.8.8.8")))
        let on = try IPAllowlist.parse(enabled: true, entries: ["203.0.113.0/24", "::1/128", "203.0.113.0/24"])
        #expect(on.networks.count == 2)
        #expect(on.permits(IPAddress("203.0.113.77")))
        #expect(on.permits(IPAddress("::1")))
        #expect(!on.permits(IPAddress("198.51.100.1")))
        #expect(!on.permits(nil))
        #expect(!(try IPAllowlist.parse(enabled: true, entries: [])).permits(IPAddress("127.0.0.1")))
    }

    @Test func badEntryNamesItsIndexAndTooManyIsRefused() {
        do {
            _ = try IPAllowlist.parse(enabled: true, entries: ["10.0.0.0/8", "::1", "nope"])
            Issue.record("accepted")
        } catch {
            #expect(error.field == "allow[2]")
        }
        #expect(throws: HeraldError.self) { try IPAllowlist.parse(enabled: true, entries: Array(repeating: "10.0.0.1", count: 201)) }
    }

    @Test func guardThrowsIpProtectionDenied() throws {
        let allowlist = try IPAllowlist.parse(enabled: true, entries: ["10.0.0.0/8"])
        try IPProtectionGuard.check(client: IPAddress("10.2.3.4"), allowlist: allowlist)
        #expect(throws: HeraldError.ipProtectionDenied("192.0.2.1")) { try IPProtectionGuard.check(client: IPAddress("192.0.2.1"), allowlist: allowlist) }
    }
}

@Suite struct RateLimiterTests {
    final class FakeTime: @unchecked Sendable {
        var seconds = 1000.0
    }

    @Test func burstThenRefill() {
        let time = FakeTime()
        let limiter = TokenBucketLimiter(capacity: 3, refillPerSecond: 1, now: { time.seconds })
        #expect(limiter.acquire("k") == .allowed(remaining: 2))
        #expect(limiter.acquire("k") == .allowed(remaining: 1))
        #expect(limiter.acquire("k") == .allowed(remaining: 0))
        #expect(limiter.acquire("k") == .limited(retryAfterSeconds: 1))
        #expect(limiter.acquire("other") == .allowed(remaining: 2))
        time.seconds += 1
        #expect(limiter.acquire("k") == .allowed(remaining: 0))
        time.seconds += 0.5
        #expect(limiter.acquire("k") == .limited(retryAfterSeconds: 1))
    }

    @Test func isExhaustedLooksWithoutTaking() {
        let time = FakeTime()
        let limiter = TokenBucketLimiter(capacity: 2, refillPerSecond: 1, now: { time.seconds })
        #expect(!limiter.isExhausted("k"), "an unknown key has its whole bucket")
        _ = limiter.acquire("k")
        #expect(!limiter.isExhausted("k") && !limiter.isExhausted("k"), "looking takes nothing")
        _ = limiter.acquire("k")
        #expect(limiter.isExhausted("k"))
        time.seconds += 1
        #expect(!limiter.isExhausted("k"), "refilled")
    }

    @Test func slowRefillRoundsRetryUp() {
        let time = FakeTime()
        let limiter = TokenBucketLimiter(capacity: 1, refillPerSecond: 0.1, now: { time.seconds })
        _ = limiter.acquire("k")
        #expect(limiter.acquire("k") == .limited(retryAfterSeconds: 10))
    }

    @Test func keyCountStaysBounded() {
        let time = FakeTime()
        let limiter = TokenBucketLimiter(capacity: 5, refillPerSecond: 1, maxKeys: 100, now: { time.seconds })
        for i in 0..<1000 { _ = limiter.acquire("k\(i)") }
        // A recent key keeps its state (it was not evicted before being used up).
        for _ in 0..<5 { _ = limiter.acquire("hot") }
        #expect(limiter.acquire("hot") == .limited(retryAfterSeconds: 1))
    }
}
