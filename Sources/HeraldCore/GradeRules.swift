import Foundation

/// One tenant's delivery figures for one day (SPEC §5): messages that reached a final outcome (`sent`),
/// of them delivered, hits on invalid addresses (hard bounces for unknown mailboxes), and spam
/// rejections plus complaints.
public struct DayFigures: Sendable, Equatable, Codable {
    /// Days since 1970-01-01 in the quota time zone (so "the last 7 days" is arithmetic).
    public var day: Int
    public var sent: Int
    public var delivered: Int
    public var invalid: Int
    public var spam: Int

    public init(day: Int, sent: Int, delivered: Int, invalid: Int, spam: Int) {
        self.day = day
        self.sent = sent
        self.delivered = delivered
        self.invalid = invalid
        self.spam = spam
    }

    /// The sum of several days (its `day` is the last one's).
    public static func total(_ days: [DayFigures]) -> DayFigures {
        days.reduce(DayFigures(day: days.map(\.day).max() ?? 0, sent: 0, delivered: 0, invalid: 0, spam: 0)) {
            DayFigures(day: $0.day, sent: $0.sent + $1.sent, delivered: $0.delivered + $1.delivered, invalid: $0.invalid + $1.invalid,
                       spam: $0.spam + $1.spam)
        }
    }

    public var invalidRate: Double { sent > 0 ? Double(invalid) / Double(sent) : 0 }
    public var spamRate: Double { sent > 0 ? Double(spam) / Double(sent) : 0 }
    public var successRate: Double { sent > 0 ? Double(delivered) / Double(sent) : 0 }
}

/// The thresholds of SPEC §5, all configurable; the defaults are SPEC's.
public struct GradeThresholds: Sendable, Equatable, Codable {
    /// Days with fewer sent messages than this (or exactly this many) are not judged.
    public var minimumSent = 300
    public var promoteUsageAbove = 0.70
    public var promoteInvalidBelow = 0.05
    public var promoteSpamBelow = 0.025
    public var promoteSuccessAbove = 0.92
    /// Automatic promotions a day (1–4).
    public var promotionsPerDay = 2
    /// The demotion window and how many of its days need data.
    public var demotionWindowDays = 7
    public var demotionDaysWithData = 3
    public var demoteInvalidAbove = 0.09
    public var demoteSpamAbove = 0.10
    public var demoteSuccessBelow = 0.65
    public var freezeInvalidAbove = 0.11
    public var freezeSpamAbove = 0.15
    /// Daily quota of grades 1…16.
    public var quotas = GradeQuota.defaults

    public init() {}

    /// The names `HERALD_GRADE_RULES` may set.
    public static let names = ["minimumSent", "promoteUsageAbove", "promoteInvalidBelow", "promoteSpamBelow", "promoteSuccessAbove",
                               "promotionsPerDay", "demotionWindowDays", "demotionDaysWithData", "demoteInvalidAbove", "demoteSpamAbove",
                               "demoteSuccessBelow", "freezeInvalidAbove", "freezeSpamAbove"]

    /// These thresholds with `name=value,…` (the `HERALD_GRADE_RULES` setting) applied: rates from 0 to 1, the
    /// promotions a day from 1 to 4 (SPEC §5), the window from 1 to 30 days with at most that many days of data,
    /// and a demotion or freeze never looser than the promotion it undoes. Unknown names and bad values are
    /// refused, naming them.
    public func applying(_ text: String) throws(HeraldError) -> GradeThresholds {
        var rules = self
        for item in text.split(separator: ",") {
            let pair = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2, let value = Double(pair[1]), value.isFinite else {
                throw .validation("\"\(item.prefix(64))\" is not name=number.", field: "gradeRules")
            }
            let name = pair[0]
            func whole(_ range: ClosedRange<Int>) throws(HeraldError) -> Int {
                guard value == value.rounded(), range.contains(Int(value)) else {
                    throw .validation("\(name) must be a whole number from \(range.lowerBound) to \(range.upperBound).", field: name)
                }
                return Int(value)
            }
            func rate() throws(HeraldError) -> Double {
                guard (0...1).contains(value) else { throw .validation("\(name) must be a rate from 0 to 1.", field: name) }
                return value
            }
            switch name {
            case "minimumSent": rules.minimumSent = try whole(0...10_000_000)
            case "promoteUsageAbove": rules.promoteUsageAbove = try rate()
            case "promoteInvalidBelow": rules.promoteInvalidBelow = try rate()
            case "promoteSpamBelow": rules.promoteSpamBelow = try rate()
            case "promoteSuccessAbove": rules.promoteSuccessAbove = try rate()
            case "promotionsPerDay": rules.promotionsPerDay = try whole(1...4)
            case "demotionWindowDays": rules.demotionWindowDays = try whole(1...30)
            case "demotionDaysWithData": rules.demotionDaysWithData = try whole(1...30)
            case "demoteInvalidAbove": rules.demoteInvalidAbove = try rate()
            case "demoteSpamAbove": rules.demoteSpamAbove = try rate()
            case "demoteSuccessBelow": rules.demoteSuccessBelow = try rate()
            case "freezeInvalidAbove": rules.freezeInvalidAbove = try rate()
            case "freezeSpamAbove": rules.freezeSpamAbove = try rate()
            default: throw .validation("\(name) is not a grade rule; use one of \(Self.names.joined(separator: ", ")).", field: name)
            }
        }
        guard rules.demotionDaysWithData <= rules.demotionWindowDays else {
            throw .validation("demotionDaysWithData may not exceed demotionWindowDays.", field: "demotionDaysWithData")
        }
        guard rules.demoteInvalidAbove >= rules.promoteInvalidBelow, rules.demoteSpamAbove >= rules.promoteSpamBelow,
              rules.demoteSuccessBelow <= rules.promoteSuccessAbove else {
            throw .validation("A demotion threshold may not be stricter than the promotion one it undoes.", field: "gradeRules")
        }
        guard rules.freezeInvalidAbove >= rules.demoteInvalidAbove, rules.freezeSpamAbove >= rules.demoteSpamAbove else {
            throw .validation("A freeze threshold may not be stricter than the demotion one.", field: "gradeRules")
        }
        return rules
    }
}

/// Where a tenant stands when it is evaluated.
public struct GradeStanding: Sendable, Equatable {
    public var grade: Int
    /// The highest grade automatic promotion reaches (9–16, default 10).
    public var ceiling: Int
    /// Automatic promotions already made today.
    public var promotionsToday: Int
    /// Whether the tenant was already demoted today (one demotion a day: the 7-day window changes
    /// slowly, and evaluation runs every minute or two).
    public var demotedToday: Bool
    /// Today's quota used (sends accepted); when unknown, the day's sent messages stand for it.
    public var quotaUsedToday: Int?

    public init(grade: Int, ceiling: Int = 10, promotionsToday: Int = 0, demotedToday: Bool = false, quotaUsedToday: Int? = nil) {
        self.grade = grade
        self.ceiling = ceiling
        self.promotionsToday = promotionsToday
        self.demotedToday = demotedToday
        self.quotaUsedToday = quotaUsedToday
    }
}

/// What an evaluation decided, with the reason and the figures that decided it.
public enum GradeDecision: Sendable, Equatable {
    case stay
    case promote(to: Int, reason: String, figures: DayFigures)
    case demote(to: Int, reason: String, figures: DayFigures)
    case freeze(reason: String, figures: DayFigures)
}

/// SPEC §5's rules as a pure function of the figures: freeze on one bad day, demotion over the last
/// seven days, promotion on a good, busy day. Evaluated for an active tenant (a frozen or banned one
/// is not evaluated).
public enum GradeRules {
    /// Decides for a tenant standing at `standing`, with `today`'s figures and those of the days before
    /// (any order; only the last ``GradeThresholds/demotionWindowDays`` days ending today count).
    public static func evaluate(_ standing: GradeStanding, today: DayFigures, earlier: [DayFigures],
                                thresholds: GradeThresholds = GradeThresholds()) -> GradeDecision {
        let t = thresholds
        // Freeze: a single bad day with enough volume.
        if today.sent > t.minimumSent {
            if today.invalidRate > t.freezeInvalidAbove {
                return .freeze(reason: "invalid-address rate \(percent(today.invalidRate)) today is above \(percent(t.freezeInvalidAbove))", figures: today)
            }
            if today.spamRate > t.freezeSpamAbove {
                return .freeze(reason: "spam rate \(percent(today.spamRate)) today is above \(percent(t.freezeSpamAbove))", figures: today)
            }
            if today.delivered == 0 {
                return .freeze(reason: "nothing of \(today.sent) sent today was delivered", figures: today)
            }
        }
        // Demotion: the window's days with data, their average volume and their rates.
        let window = ([today] + earlier).filter { $0.day > today.day - t.demotionWindowDays && $0.day <= today.day && $0.sent > 0 }
        let week = DayFigures.total(window)
        if !standing.demotedToday, window.count >= t.demotionDaysWithData, Double(week.sent) / Double(window.count) > Double(t.minimumSent) {
            var why: String?
            if week.invalidRate > t.demoteInvalidAbove {
                why = "invalid-address rate \(percent(week.invalidRate)) over \(window.count) days is above \(percent(t.demoteInvalidAbove))"
            } else if week.spamRate > t.demoteSpamAbove {
                why = "spam rate \(percent(week.spamRate)) over \(window.count) days is above \(percent(t.demoteSpamAbove))"
            } else if week.successRate < t.demoteSuccessBelow {
                why = "success rate \(percent(week.successRate)) over \(window.count) days is below \(percent(t.demoteSuccessBelow))"
            }
            if let why {
                if standing.grade <= 1 { return .freeze(reason: "demoted at grade 1: \(why)", figures: week) }
                return .demote(to: standing.grade - 1, reason: why, figures: week)
            }
        }
        // Promotion: a busy, clean day, within the daily cap and the ceiling.
        let quota = GradeQuota.daily(grade: standing.grade, table: t.quotas)
        let used = max(standing.quotaUsedToday ?? today.sent, today.sent)
        if today.sent > t.minimumSent, Double(used) > t.promoteUsageAbove * Double(quota), today.invalidRate < t.promoteInvalidBelow,
           today.spamRate < t.promoteSpamBelow, today.successRate > t.promoteSuccessAbove,
           standing.promotionsToday < t.promotionsPerDay, standing.grade < min(standing.ceiling, t.quotas.count) {
            return .promote(to: standing.grade + 1,
                            reason: "\(used) of the daily \(quota) used today (\(percent(Double(used) / Double(quota)))), \(today.sent) sent, success \(percent(today.successRate))",
                            figures: today)
        }
        return .stay
    }

    static func percent(_ value: Double) -> String {
        let tenths = (value * 1000).rounded()
        return tenths.truncatingRemainder(dividingBy: 10) == 0 ? "\(Int(tenths / 10))%" : "\(tenths / 10)%"
    }
}
