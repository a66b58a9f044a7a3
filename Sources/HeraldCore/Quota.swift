import Foundation

/// The credit-grade → daily quota table (SPEC §5 defaults; grades 2 and 16 are fixed points); the
/// monthly quota is the daily one × 30.
public enum GradeQuota {
    /// Daily quota of grades 1…16.
    public static let defaults = [200, 2_000, 5_000, 10_000, 20_000, 40_000, 60_000, 80_000,
                                  100_000, 200_000, 300_000, 500_000, 1_000_000, 2_000_000, 5_000_000, 10_000_000]

    /// The daily quota of `grade` (clamped to 1…16).
    public static func daily(grade: Int, table: [Int] = defaults) -> Int {
        table[min(max(grade, 1), table.count) - 1]
    }
}

/// A credit-grade → daily quota table in force: the installation's (`HERALD_GRADE_QUOTAS`, SPEC §5 by default) or
/// a tenant's own, which the operator sets (`PUT /admin/v1/tenants/{id}/limits` with `dailyQuotas`).
public struct QuotaTable: Sendable, Equatable, Codable {
    /// Daily quota of grades 1…16, each at least 1 and none below the one before.
    public private(set) var daily: [Int]

    public static let standard = QuotaTable(checked: GradeQuota.defaults)

    init(checked daily: [Int]) { self.daily = daily }

    /// A table of 16 daily quotas, each from 1 to 1,000,000,000 and none below the grade before.
    public init(_ daily: [Int], field: String = "dailyQuotas") throws(HeraldError) {
        guard daily.count == 16 else { throw .validation("Give 16 daily quotas, one for each grade from 1 to 16.", field: field) }
        for (index, quota) in daily.enumerated() {
            guard (1...1_000_000_000).contains(quota) else { throw .validation("A daily quota is from 1 to 1,000,000,000.", field: "\(field)[\(index)]") }
            guard index == 0 || quota >= daily[index - 1] else {
                throw .validation("A grade's daily quota may not be below the grade before it.", field: "\(field)[\(index)]")
            }
        }
        self.daily = daily
    }

    /// `200,2000,…` (the `HERALD_GRADE_QUOTAS` setting).
    public static func parse(_ text: String, field: String) throws(HeraldError) -> QuotaTable {
        var values: [Int] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let value = Int(item.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "_", with: "")) else {
                throw .validation("\"\(item.prefix(32))\" is not a number.", field: field)
            }
            values.append(value)
        }
        return try QuotaTable(values, field: field)
    }

    /// PostgreSQL's text of an `int[]` (`{200,2000,…}`), as a table; nil when absent or not a valid table.
    public static func stored(_ text: String?) -> QuotaTable? {
        guard let text, text.hasPrefix("{"), text.hasSuffix("}") else { return nil }
        return try? parse(String(text.dropFirst().dropLast()), field: "quota_table")
    }

    /// The daily quota of `grade` (clamped to 1…16).
    public func daily(grade: Int) -> Int { GradeQuota.daily(grade: grade, table: daily) }
}

/// Shares out what is left of a day's and a month's quota among requests that arrive together, in
/// order: each request fits whole or is refused whole (a send never goes out in part), and a refused
/// request leaves its share to the ones after it.
public struct QuotaAllocation: Sendable, Equatable {
    /// Why a request did not fit.
    public enum Refusal: Sendable, Equatable {
        /// Today's quota (the message names it) is used up for this request.
        case daily(Int)
        /// This month's quota is used up for this request.
        case monthly(Int)
    }

    /// The daily quota.
    public let daily: Int
    /// Used today so far, including the requests admitted by this allocation.
    public private(set) var usedToday: Int
    /// Used this month before today.
    public let usedEarlierThisMonth: Int

    public init(daily: Int, usedToday: Int, usedEarlierThisMonth: Int) {
        self.daily = daily
        self.usedToday = usedToday
        self.usedEarlierThisMonth = usedEarlierThisMonth
    }

    /// The most today's usage may reach: the daily quota, or less when the month's is nearer. Whatever
    /// was admitted from a usage read earlier still fits on a usage grown since as long as the sum stays
    /// within this (a request refused then is refused still), which is what a write checks when it did not
    /// hold the quota row locked while deciding.
    public var ceiling: Int { min(daily, daily * 30 - usedEarlierThisMonth) }

    /// Admits a request for `count` messages (nil) or tells why it does not fit. A request for nothing
    /// (every recipient dropped) always fits.
    public mutating func admit(_ count: Int) -> Refusal? {
        guard count > 0 else { return nil }
        guard usedToday + count <= daily else { return .daily(daily) }
        guard usedEarlierThisMonth + usedToday + count <= daily * 30 else { return .monthly(daily * 30) }
        usedToday += count
        return nil
    }
}

extension HeraldError {
    /// `Quota.Exceeded` for a request of `count` messages.
    public static func quotaExceeded(_ refusal: QuotaAllocation.Refusal, count: Int) -> HeraldError {
        switch refusal {
        case .daily(let daily):
            HeraldError(code: "Quota.Exceeded", kind: .throttled, message: "This request needs \(count) of today's quota of \(daily), which is not left.")
        case .monthly(let monthly):
            HeraldError(code: "Quota.Exceeded", kind: .throttled, message: "This request would pass the monthly quota of \(monthly).")
        }
    }
}

extension QuotaAllocation {
    /// Admits as many of `count` messages as the day and the month have room for, and answers how many
    /// (a batch task's members beyond its reservation: what fits goes, the rest is dropped).
    public mutating func admitUpTo(_ count: Int) -> Int {
        let room = max(0, min(daily - usedToday, daily * 30 - usedEarlierThisMonth - usedToday))
        let granted = min(max(count, 0), room)
        usedToday += granted
        return granted
    }
}

/// A process's lease of a tenant's daily quota (migration 0036): the process takes the quota a slice at a
/// time from the tenant's day, and accepts from its slice with a write to its own lease row only, so that
/// processes accepting for one tenant no longer queue on that tenant's one quota row. A lease that cannot
/// cover a batch asks for more; one that still cannot (the day is nearly used up) leaves the decision to
/// the locked quota row, which takes back what every lease holds untaken first: refusals stay exact.
public enum QuotaLease {
    /// The slice a holder asks for beyond what it needs: a hundredth of the daily quota, from 10 to 1,000. A
    /// busy tenant's process asks about once a slice instead of writing the quota row once a batch, and what
    /// N processes hold untaken (at most N slices plus a batch each) stays small against the quota.
    public static func slice(daily: Int) -> Int { min(1_000, max(10, daily / 100)) }

    /// What to ask for when the lease has `left` and the batch needs `need`: the shortfall and a slice.
    public static func want(need: Int, left: Int, daily: Int) -> Int { max(0, need - left) + slice(daily: daily) }
}
