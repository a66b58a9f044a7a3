/// Plays days of a sending profile through ``GradeRules`` with a fake calendar — the tool an operator
/// uses to see what thresholds do (`herald admin simulate-grades`). Each day the profile says what the
/// tenant sent at its grade of the morning; the day is evaluated at four points (a quarter of the
/// figures, half, three quarters, all), as the periodic evaluation would see it grow.
public struct GradeSimulation: Sendable {
    /// What a tenant sends on day `day` (0-based) when its daily quota is `quota`.
    public typealias Profile = @Sendable (_ day: Int, _ quota: Int) -> (sent: Int, deliveredRate: Double, invalidRate: Double, spamRate: Double)

    public struct Day: Sendable, Equatable {
        public var day: Int
        public var grade: Int
        public var frozen: Bool
        public var sent: Int
        public var events: [String]
    }

    public var thresholds = GradeThresholds()
    public var ceiling = 10
    public var startGrade = 2

    public init() {}

    /// Profiles by name: good, poor, spiky, dying.
    public static let profiles: [String: Profile] = [
        // 80 % of the quota every day, clean.
        "good": { _, quota in (quota * 8 / 10, 0.98, 0.01, 0.005) },
        // Busy but bad: a third of the mail does not arrive.
        "poor": { _, quota in (max(400, quota * 6 / 10), 0.60, 0.08, 0.02) },
        // A clean campaign every third day, little in between.
        "spiky": { day, quota in day % 3 == 0 ? (quota * 9 / 10, 0.97, 0.01, 0.005) : (50, 0.97, 0.01, 0.005) },
        // An old list: invalid addresses grow by 1.5 points a day.
        "dying": { day, quota in
            let invalid = min(0.6, 0.01 + 0.015 * Double(day))
            return (quota * 7 / 10, max(0, 0.97 - invalid), invalid, 0.005)
        },
    ]

    /// Runs `days` days; a frozen tenant stays frozen (unfreezing is the operator's).
    public func run(_ profile: Profile, days: Int) -> [Day] {
        var grade = startGrade
        var frozen = false
        var history: [DayFigures] = []
        var result: [Day] = []
        for day in 0..<days {
            guard !frozen else {
                result.append(Day(day: day, grade: grade, frozen: true, sent: 0, events: []))
                history.append(DayFigures(day: day, sent: 0, delivered: 0, invalid: 0, spam: 0))
                continue
            }
            let plan = profile(day, GradeQuota.daily(grade: grade, table: thresholds.quotas))
            var standing = GradeStanding(grade: grade, ceiling: ceiling)
            var events: [String] = []
            var figures = DayFigures(day: day, sent: 0, delivered: 0, invalid: 0, spam: 0)
            for quarter in 1...4 where !frozen {
                let sent = plan.sent * quarter / 4
                figures = DayFigures(day: day, sent: sent, delivered: Int(Double(sent) * plan.deliveredRate),
                                     invalid: Int(Double(sent) * plan.invalidRate), spam: Int(Double(sent) * plan.spamRate))
                switch GradeRules.evaluate(standing, today: figures, earlier: history, thresholds: thresholds) {
                case .stay: break
                case .promote(let to, let reason, _):
                    events.append("promoted to \(to): \(reason)")
                    standing.grade = to
                    standing.promotionsToday += 1
                case .demote(let to, let reason, _):
                    events.append("demoted to \(to): \(reason)")
                    standing.grade = to
                    standing.demotedToday = true
                case .freeze(let reason, _):
                    events.append("frozen: \(reason)")
                    frozen = true
                }
            }
            grade = standing.grade
            history.append(figures)
            result.append(Day(day: day, grade: grade, frozen: frozen, sent: figures.sent, events: events))
        }
        return result
    }
}
