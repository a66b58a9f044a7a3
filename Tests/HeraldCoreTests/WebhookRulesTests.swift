import Foundation
import HeraldCore
import Testing

@Suite struct WebhookRulesTests {
    /// The Standard Webhooks specification's own example (github.com/standard-webhooks, libraries' tests).
    @Test func signatureMatchesTheSpecificationsExample() throws {
        let secret = try #require(WebhookSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
        let signature = WebhookSignature.sign(id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_330,
                                              body: Array(#"{"test": 2432232314}"#.utf8), secret: secret)
        #expect(signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        let second = WebhookSecret.generate()
        let header = WebhookSignature.header(id: "msg_1", timestamp: 1, body: [1, 2], secrets: [second, secret])
        #expect(header.split(separator: " ").count == 2 && header.hasPrefix(WebhookSignature.sign(id: "msg_1", timestamp: 1, body: [1, 2], secret: second)))
        #expect(WebhookSecret(second.description) == second)
        #expect(WebhookSecret("whsec_") == nil && WebhookSecret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") == nil)
    }

    @Test func retryScheduleJitterRetryAfterAndGivingUp() throws {
        let policy = WebhookRetryPolicy.standard
        let now = Date(timeIntervalSince1970: 1_000_000)
        #expect(policy.decide(attempt: 1, status: 204, retryAfter: nil, now: now) == .succeeded)
        #expect(policy.decide(attempt: 3, status: 410, retryAfter: nil, now: now) == .gone)
        // Attempt n waits delays[n-1], ±10 %.
        for (attempt, base) in [(1, 5.0), (2, 300.0), (3, 1_800.0), (4, 7_200.0), (5, 18_000.0), (6, 36_000.0), (7, 36_000.0)] {
            #expect(policy.decide(attempt: attempt, status: 500, retryAfter: nil, now: now, random: { 0.5 }) == .retry(now.addingTimeInterval(base)))
            #expect(policy.decide(attempt: attempt, status: nil, retryAfter: nil, now: now, random: { 0 }) == .retry(now.addingTimeInterval(base * 0.9)))
            #expect(policy.decide(attempt: attempt, status: 302, retryAfter: nil, now: now, random: { 0.999999 })
                    != .retry(now.addingTimeInterval(base * 1.11)))
        }
        #expect(policy.decide(attempt: 8, status: 500, retryAfter: nil, now: now) == .failed)
        // Retry-After counts for 429/502/503/504 only, as seconds or an HTTP date; capped at a day.
        #expect(policy.decide(attempt: 1, status: 503, retryAfter: "120", now: now, random: { 0.5 }) == .retry(now.addingTimeInterval(120)))
        #expect(policy.decide(attempt: 1, status: 500, retryAfter: "120", now: now, random: { 0.5 }) == .retry(now.addingTimeInterval(5)))
        #expect(policy.decide(attempt: 2, status: 429, retryAfter: "1", now: now, random: { 0.5 }) == .retry(now.addingTimeInterval(300)))
        #expect(WebhookRetryPolicy.retryAfterSeconds("Wed, 21 Oct 2015 07:28:00 GMT", now: Date(timeIntervalSince1970: 1_445_412_420)) == 60)
        #expect(WebhookRetryPolicy.retryAfterSeconds("9999999", now: now) == 86_400)
        #expect(WebhookRetryPolicy.retryAfterSeconds("soon", now: now) == nil)
        #expect(try WebhookRetryPolicy.parse("0, 5,300").delays == [0, 5, 300])
        #expect(throws: HeraldError.self) { try WebhookRetryPolicy.parse("5,-1") }
        #expect(throws: HeraldError.self) { try WebhookRetryPolicy.parse("") }
    }

    @Test func targetForms() throws {
        let strict = WebhookTargetPolicy(allowPrivate: false)
        let target = try strict.target("https://Hooks.Example.com:8443/path?q=1")
        #expect(target.host == "hooks.example.com" && target.port == 8443 && target.address == nil)
        #expect(try strict.target("https://[2606:4700::1]/").address == IPAddress("2606:4700::1"))
        for bad in ["http://example.com/", "ftp://example.com/", "https://u:p@example.com/", "https:///nohost", "example.com",
                    "https://exa mple.com/", "https://" + String(repeating: "a", count: 2050) + ".com/"] {
            #expect(throws: HeraldError.self, "\(bad)") { try strict.target(bad) }
        }
        #expect(try WebhookTargetPolicy(allowPrivate: true).target("http://127.0.0.1:8080/x").port == 8080)
    }

    @Test func forbiddenAddresses() throws {
        for text in ["127.0.0.1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254", "100.64.0.1", "100.100.100.200",
                     "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fc00::1", "fd00:ec2::254", "ff02::1",
                     "::ffff:127.0.0.1", "::ffff:8.8.8.8", "64:ff9b::a00:1", "2002:a00:1::1", "2001:db8::1"] {
            let address = try #require(IPAddress(text))
            #expect(WebhookTargetPolicy.isForbidden(address) != nil, "\(text)")
            #expect(WebhookTargetPolicy(allowPrivate: true).refusal(address) == nil)
        }
        for text in ["8.8.8.8", "93.184.216.34", "172.32.0.1", "100.128.0.1", "2606:4700:4700::1111", "2a00:1450::1"] {
            #expect(WebhookTargetPolicy.isForbidden(try #require(IPAddress(text))) == nil, "\(text)")
        }
    }

    @Test func eventTypeFilters() throws {
        #expect(try WebhookEventTypes.validate(["*"]) == ["*"])
        #expect(try WebhookEventTypes.validate(["message.delivered", "account.frozen"]).count == 2)
        for bad in [[], ["*", "message.delivered"], ["message.nope"], ["webhook.test"], ["message.delivered", "message.delivered"]] {
            #expect(throws: HeraldError.self, "\(bad)") { try WebhookEventTypes.validate(bad) }
        }
    }
}
