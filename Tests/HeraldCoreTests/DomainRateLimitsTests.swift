import HeraldCore
import Synchronization
import Testing

@Suite struct DomainRateLimitsTests {
    @Test func parsesRatesAndNamesTheBadOne() throws {
        #expect(try DomainRateLimits.parse("gmail.com=20, QQ.com=5,*=100") == ["gmail.com": 20, "qq.com": 5, "*": 100])
        #expect(try DomainRateLimits.parse("") == [:])
        for bad in ["gmail.com", "gmail.com=0", "gmail.com=-1", "localhost=5", "x.com=fast"] {
            #expect(throws: HeraldError.self) { try DomainRateLimits.parse(bad) }
        }
    }

    @Test func aBucketPerDomainRefilledByTheClock() async {
        let clock = Mutex<Double>(100)
        let limits = DomainRateLimits(rates: ["slow.example": 2, "*": 10], now: { clock.withLock { $0 } })
        // A second's worth at once, then nothing until the clock moves.
        #expect(await limits.take("slow.example", count: 5).granted == 2)
        let empty = await limits.take("slow.example", count: 1)
        #expect(empty.granted == 0 && abs(empty.retryAfter - 0.5) < 0.001)
        clock.withLock { $0 += 1 }
        #expect(await limits.take("SLOW.example", count: 5).granted == 2)
        // Other domains have the default rate; a domain with no rate and no default would not be limited.
        #expect(await limits.take("other.example", count: 25).granted == 10)
        #expect(await DomainRateLimits(rates: [:]).take("any.example", count: 1_000).granted == 1_000)
    }
}
