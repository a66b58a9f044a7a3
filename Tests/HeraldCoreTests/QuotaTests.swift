import HeraldCore
import Testing

@Suite struct QuotaTests {
    @Test func gradeQuotaTable() {
        #expect(GradeQuota.daily(grade: 1) == 200)
        #expect(GradeQuota.daily(grade: 2) == 2_000)
        #expect(GradeQuota.daily(grade: 4) == 10_000)
        #expect(GradeQuota.daily(grade: 16) == 10_000_000)
        #expect(GradeQuota.daily(grade: 99) == 10_000_000)
        #expect(GradeQuota.daily(grade: 0) == 200)
    }

    @Test func requestsFitWholeOrNotAtAll() {
        var quota = QuotaAllocation(daily: 200, usedToday: 180, usedEarlierThisMonth: 0)
        #expect(quota.admit(10) == nil)
        #expect(quota.admit(11) == .daily(200))  // 201 would pass the day
        #expect(quota.admit(0) == nil)  // every recipient dropped: nothing to count
        #expect(quota.admit(10) == nil)  // exactly 200
        #expect(quota.usedToday == 200)
        #expect(quota.admit(1) == .daily(200))
    }

    @Test func theMonthIsDailyTimesThirty() {
        var quota = QuotaAllocation(daily: 200, usedToday: 0, usedEarlierThisMonth: 5_900)
        #expect(quota.admit(100) == nil)
        #expect(quota.admit(1) == .monthly(6_000))
        #expect(quota.usedToday == 100)
        var fresh = QuotaAllocation(daily: 200, usedToday: 0, usedEarlierThisMonth: 0)
        #expect(fresh.admit(201) == .daily(200))
        #expect(fresh.usedToday == 0)
    }

    @Test func aLeaseAsksForItsShortfallAndASlice() {
        #expect(QuotaLease.slice(daily: 200) == 10)
        #expect(QuotaLease.slice(daily: 10_000) == 100)
        #expect(QuotaLease.slice(daily: 10_000_000) == 1_000)
        #expect(QuotaLease.want(need: 50, left: 20, daily: 10_000) == 130)
        #expect(QuotaLease.want(need: 5, left: 20, daily: 200) == 10, "a lease that covers the batch still asks for a slice")
    }
}
