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

/// The configurable numbers of issue #18: quota tables, grade rules, send limits.
@Suite struct ConfigurableRulesTests {
    @Test func quotaTablesAreSixteenRisingQuotas() throws {
        #expect(QuotaTable.standard.daily(grade: 2) == 2_000 && QuotaTable.standard.daily(grade: 16) == 10_000_000)
        let table = try QuotaTable.parse("1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,1_000", field: "t")
        #expect(table.daily(grade: 16) == 1_000 && table.daily(grade: 40) == 1_000 && table.daily(grade: 0) == 1)
        #expect(throws: HeraldError.self) { try QuotaTable.parse("1,2,3", field: "t") }
        #expect(throws: HeraldError.self) { try QuotaTable(Array(repeating: 5, count: 15) + [4]) }
        #expect(throws: HeraldError.self) { try QuotaTable([0] + Array(repeating: 5, count: 15)) }
        #expect(QuotaTable.stored("{1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16}")?.daily(grade: 3) == 3)
        #expect(QuotaTable.stored(nil) == nil && QuotaTable.stored("{1,2}") == nil)
    }

    @Test func gradeRulesAreCheckedAsAWhole() throws {
        let rules = try GradeThresholds().applying("promotionsPerDay=1, demotionWindowDays=14, demotionDaysWithData=5")
        #expect(rules.promotionsPerDay == 1 && rules.demotionWindowDays == 14 && rules.demotionDaysWithData == 5)
        for bad in ["promotionsPerDay=0", "promotionsPerDay=2.5", "minimumSent=-1", "demoteSpamAbove=2", "demotionDaysWithData=9",
                    "freezeSpamAbove=0.05", "promoteSuccessAbove=0.5", "nope=1", "promotionsPerDay"] {
            #expect(throws: HeraldError.self, "\(bad)") { try GradeThresholds().applying(bad) }
        }
    }

    @Test func sendLimitsAreTheTenantsWithinTheCeiling() throws {
        var limits = try ProductLimits().applying(["recipientsPerSend": 2, "subjectLength": 5, "bodyBytes": 10])
        let send = try SendRules.validate(SingleSendRequest(from: "a@example.test", to: ["x@example.org", "y@example.org", "x@example.org"],
                                                            subject: "Hello", text: "0123456789"))
        try SendRules.checkLimits(send, limits: limits) // two distinct recipients, five characters, ten bytes
        limits.recipientsPerSend = 1
        #expect(throws: HeraldError.self) { try SendRules.checkLimits(send, limits: limits) }
        #expect(throws: HeraldError.self) { try ProductLimits().applying(["recipientsPerSend": 0]) }
        #expect(throws: HeraldError.self) { try ProductLimits().applying(["bodyBytes": (1 << 20) + 1]) }
        // Past the ceiling is refused before the database, whatever the tenant.
        #expect(throws: HeraldError.self) {
            try SendRules.validate(SingleSendRequest(from: "a@example.test", to: (0...SendRules.ceiling.recipientsPerSend).map { "r\($0)@example.org" },
                                                     subject: "Hi", text: "x"))
        }
    }
}
