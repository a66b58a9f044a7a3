import HeraldCore
import Testing

@Suite struct GradeRulesTests {
    /// A day of `sent` messages with rates given per thousand.
    static func day(_ day: Int = 100, sent: Int, invalidPerMille: Int = 0, spamPerMille: Int = 0, deliveredPerMille: Int = 1000) -> DayFigures {
        DayFigures(day: day, sent: sent, delivered: sent * deliveredPerMille / 1000, invalid: sent * invalidPerMille / 1000, spam: sent * spamPerMille / 1000)
    }

    static func kind(_ decision: GradeDecision) -> String {
        switch decision {
        case .stay: "stay"
        case .promote(let to, _, _): "promote \(to)"
        case .demote(let to, _, _): "demote \(to)"
        case .freeze: "freeze"
        }
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var standing: GradeStanding
        var today: DayFigures
        var earlier: [DayFigures] = []
        var expected: String
        var testDescription: String { name }
    }

    // Grade 2's quota is 2,000: a promotion needs more than 1,400 sent (70 %).
    static let cases: [Case] = [
        // Freeze on one day: only above 300 sent.
        Case(name: "300 sent, all invalid: too few to judge", standing: .init(grade: 5), today: day(sent: 300, invalidPerMille: 500), expected: "stay"),
        Case(name: "301 sent, half invalid: freeze", standing: .init(grade: 5), today: day(sent: 301, invalidPerMille: 500), expected: "freeze"),
        Case(name: "invalid 11.0 %: no freeze", standing: .init(grade: 5), today: day(sent: 1000, invalidPerMille: 110, deliveredPerMille: 890),
             expected: "stay"),
        Case(name: "invalid 11.1 %: freeze", standing: .init(grade: 5), today: day(sent: 1000, invalidPerMille: 111, deliveredPerMille: 889),
             expected: "freeze"),
        Case(name: "spam 15.0 %: no freeze", standing: .init(grade: 5), today: day(sent: 1000, spamPerMille: 150, deliveredPerMille: 850), expected: "stay"),
        Case(name: "spam 15.1 %: freeze", standing: .init(grade: 5), today: day(sent: 1000, spamPerMille: 151, deliveredPerMille: 849), expected: "freeze"),
        Case(name: "success 0 %: freeze", standing: .init(grade: 5), today: day(sent: 1000, deliveredPerMille: 0), expected: "freeze"),
        Case(name: "success 0 % of 300: too few", standing: .init(grade: 5), today: day(sent: 300, deliveredPerMille: 0), expected: "stay"),

        // Promotion: volume, usage, rates, the daily cap and the ceiling.
        Case(name: "1,400 sent at grade 2 is 70 %: no promotion", standing: .init(grade: 2), today: day(sent: 1400), expected: "stay"),
        Case(name: "1,401 sent at grade 2: promotion", standing: .init(grade: 2), today: day(sent: 1401), expected: "promote 3"),
        Case(name: "grade 1: 301 sent is over 70 % of 200", standing: .init(grade: 1), today: day(sent: 301), expected: "promote 2"),
        Case(name: "grade 1: 300 sent is too few", standing: .init(grade: 1), today: day(sent: 300), expected: "stay"),
        Case(name: "invalid 5.0 %: no promotion", standing: .init(grade: 2), today: day(sent: 2000, invalidPerMille: 50, deliveredPerMille: 950),
             expected: "stay"),
        Case(name: "invalid 4.9 %: promotion", standing: .init(grade: 2), today: day(sent: 2000, invalidPerMille: 49, deliveredPerMille: 951),
             expected: "promote 3"),
        Case(name: "spam 2.5 %: no promotion", standing: .init(grade: 2), today: day(sent: 2000, spamPerMille: 25, deliveredPerMille: 975), expected: "stay"),
        Case(name: "spam 2.4 %: promotion", standing: .init(grade: 2), today: day(sent: 2000, spamPerMille: 24, deliveredPerMille: 976),
             expected: "promote 3"),
        Case(name: "success 92.0 %: no promotion", standing: .init(grade: 2), today: day(sent: 2000, deliveredPerMille: 920), expected: "stay"),
        Case(name: "success 92.1 %: promotion", standing: .init(grade: 2), today: day(sent: 2000, deliveredPerMille: 921), expected: "promote 3"),
        Case(name: "1,500 accepted today, 400 sent so far: promotion", standing: .init(grade: 2, quotaUsedToday: 1_500), today: day(sent: 400),
             expected: "promote 3"),
        Case(name: "1,000 accepted today, 400 sent so far: no promotion", standing: .init(grade: 2, quotaUsedToday: 1_000), today: day(sent: 400),
             expected: "stay"),
        Case(name: "two promotions today already", standing: .init(grade: 4, promotionsToday: 2), today: day(sent: 9000), expected: "stay"),
        Case(name: "one promotion today: another", standing: .init(grade: 4, promotionsToday: 1), today: day(sent: 9000), expected: "promote 5"),
        Case(name: "at the ceiling", standing: .init(grade: 10, ceiling: 10), today: day(sent: 190_000), expected: "stay"),
        Case(name: "below a raised ceiling", standing: .init(grade: 10, ceiling: 12), today: day(sent: 190_000), expected: "promote 11"),
        Case(name: "grade 16 is the top", standing: .init(grade: 16, ceiling: 16), today: day(sent: 9_000_000), expected: "stay"),

        // Demotion over the last seven days.
        Case(name: "2 days with data: not judged", standing: .init(grade: 5), today: day(100, sent: 1000, invalidPerMille: 100, deliveredPerMille: 900),
             earlier: [day(99, sent: 1000, invalidPerMille: 100, deliveredPerMille: 900)], expected: "stay"),
        Case(name: "3 days with data, invalid 10 %: demotion", standing: .init(grade: 5),
             today: day(100, sent: 1000, invalidPerMille: 100, deliveredPerMille: 900),
             earlier: [day(99, sent: 1000, invalidPerMille: 100, deliveredPerMille: 900), day(95, sent: 1000, invalidPerMille: 100, deliveredPerMille: 900)],
             expected: "demote 4"),
        Case(name: "a day 7 days back is outside the window", standing: .init(grade: 5),
             today: day(100, sent: 1000, invalidPerMille: 100, deliveredPerMille: 900),
             earlier: [day(99, sent: 1000, invalidPerMille: 100, deliveredPerMille: 900), day(93, sent: 1000, invalidPerMille: 100, deliveredPerMille: 900)],
             expected: "stay"),
        Case(name: "invalid 9.0 % over the week: no demotion", standing: .init(grade: 5),
             today: day(100, sent: 1000, invalidPerMille: 90, deliveredPerMille: 910),
             earlier: [day(99, sent: 1000, invalidPerMille: 90, deliveredPerMille: 910), day(98, sent: 1000, invalidPerMille: 90, deliveredPerMille: 910)],
             expected: "stay"),
        Case(name: "spam 10.1 % over the week: demotion", standing: .init(grade: 5),
             today: day(100, sent: 1000, spamPerMille: 101, deliveredPerMille: 899),
             earlier: [day(99, sent: 1000, spamPerMille: 101, deliveredPerMille: 899), day(98, sent: 1000, spamPerMille: 101, deliveredPerMille: 899)],
             expected: "demote 4"),
        Case(name: "success 65.0 % over the week: no demotion", standing: .init(grade: 5), today: day(100, sent: 1000, deliveredPerMille: 650),
             earlier: [day(99, sent: 1000, deliveredPerMille: 650), day(98, sent: 1000, deliveredPerMille: 650)], expected: "stay"),
        Case(name: "success 64.9 % over the week: demotion", standing: .init(grade: 5), today: day(100, sent: 1000, deliveredPerMille: 649),
             earlier: [day(99, sent: 1000, deliveredPerMille: 649), day(98, sent: 1000, deliveredPerMille: 649)], expected: "demote 4"),
        Case(name: "average of 300 a day: not judged", standing: .init(grade: 5), today: day(100, sent: 300, deliveredPerMille: 500),
             earlier: [day(99, sent: 300, deliveredPerMille: 500), day(98, sent: 300, deliveredPerMille: 500)], expected: "stay"),
        Case(name: "already demoted today", standing: .init(grade: 5, demotedToday: true), today: day(100, sent: 1000, deliveredPerMille: 600),
             earlier: [day(99, sent: 1000, deliveredPerMille: 600), day(98, sent: 1000, deliveredPerMille: 600)], expected: "stay"),
        Case(name: "demoted at grade 1: freeze", standing: .init(grade: 1), today: day(100, sent: 400, deliveredPerMille: 600),
             earlier: [day(99, sent: 400, deliveredPerMille: 600), day(98, sent: 400, deliveredPerMille: 600)], expected: "freeze"),
    ]

    @Test(arguments: cases) func boundaries(_ example: Case) {
        #expect(Self.kind(GradeRules.evaluate(example.standing, today: example.today, earlier: example.earlier)) == example.expected)
    }

    @Test func decisionsCarryTheirReasonAndFigures() {
        let today = Self.day(sent: 1000, invalidPerMille: 120, deliveredPerMille: 880)
        guard case .freeze(let reason, let figures) = GradeRules.evaluate(.init(grade: 3), today: today, earlier: []) else {
            Issue.record("not frozen")
            return
        }
        #expect(reason == "invalid-address rate 12% today is above 11%")
        #expect(figures == today)
        var strict = GradeThresholds()
        strict.freezeInvalidAbove = 0.2
        #expect(Self.kind(GradeRules.evaluate(.init(grade: 3), today: today, earlier: [], thresholds: strict)) != "freeze")
    }
}

@Suite struct GradeSimulationTests {
    @Test func aGoodSenderClimbsToItsCeilingAndStops() throws {
        let days = GradeSimulation().run(try #require(GradeSimulation.profiles["good"]), days: 30)
        #expect(days.first?.grade == 3, "promoted on its first busy day")
        #expect(days.last?.grade == 10 && days.allSatisfy { !$0.frozen })
        let reached = try #require(days.firstIndex { $0.grade == 10 })
        #expect(days[reached...].allSatisfy { $0.grade == 10 }, "no promotion past the ceiling")
        #expect(zip(days.dropFirst(), days).allSatisfy { $0.grade >= $1.grade }, "never demoted")
    }

    @Test func aPoorSenderIsDemotedThenFrozen() throws {
        var simulation = GradeSimulation()
        simulation.startGrade = 3
        let days = simulation.run(try #require(GradeSimulation.profiles["poor"]), days: 30)
        let demoted = try #require(days.firstIndex { $0.events.contains { $0.hasPrefix("demoted") } })
        let frozen = try #require(days.firstIndex { $0.frozen })
        #expect(demoted >= 2, "not before three days of data")
        #expect(demoted < frozen && days[frozen].grade == 1)
        #expect(days.last?.frozen == true)
    }

    @Test func aDyingListIsFrozenOnItsFirstBadDay() throws {
        let days = GradeSimulation().run(try #require(GradeSimulation.profiles["dying"]), days: 30)
        let frozen = try #require(days.firstIndex { $0.frozen })
        #expect(days[frozen].events.last?.contains("invalid-address rate") == true, "\(days[frozen].events)")
    }
}
