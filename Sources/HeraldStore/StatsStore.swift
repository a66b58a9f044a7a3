import Foundation
import HeraldCore
import Logging
import PostgresNIO

/// One row of sending statistics (a day, a sender, a tag, or the total).
public struct StatsRecord: Sendable, Equatable {
    public var key: String
    public var requests: Int64 = 0
    public var accepted: Int64 = 0
    public var delivered: Int64 = 0
    public var softBounces: Int64 = 0
    public var hardBounces: Int64 = 0
    public var invalid: Int64 = 0
    public var spamRejections: Int64 = 0
    public var failed: Int64 = 0
    public var dropped: Int64 = 0
    public var opens: Int64 = 0
    public var uniqueOpens: Int64 = 0
    public var clicks: Int64 = 0
    public var uniqueClicks: Int64 = 0
    public var unsubscribes: Int64 = 0

    public init(key: String) { self.key = key }

    /// delivered / accepted (0 when nothing was accepted).
    public var successRate: Double { accepted == 0 ? 0 : Double(delivered) / Double(accepted) }

    mutating func add(_ other: StatsRecord) {
        requests += other.requests; accepted += other.accepted; delivered += other.delivered; softBounces += other.softBounces
        hardBounces += other.hardBounces; invalid += other.invalid; spamRejections += other.spamRejections; failed += other.failed
        dropped += other.dropped; opens += other.opens; uniqueOpens += other.uniqueOpens; clicks += other.clicks
        uniqueClicks += other.uniqueClicks; unsubscribes += other.unsubscribes
    }
}

/// Reads the counters the `events_message_stats` trigger keeps (migration 0015).
public struct StatsStore: Sendable {
    let database: Database

    public init(database: Database) {
        self.database = database
    }

    public enum Grouping: String, Sendable {
        case day, sender, tag
    }

    /// Rows for the UTC days `from...until` (`YYYY-MM-DD`), grouped, optionally for one sender or tag; with
    /// `.day` every day of the range is present. Answers the rows and their total.
    public func stats(tenantID: UUID, from: String, until: String, groupBy: Grouping, sender: String?, tag: String?) async throws
        -> (items: [StatsRecord], total: StatsRecord) {
        let key = switch groupBy {
        case .day: "to_char(day, 'YYYY-MM-DD')"
        case .sender: "sender"
        case .tag: "tag"
        }
        var items: [StatsRecord] = []
        try await database.withTenant(tenantID) { connection in
            let rows = try await connection.query("""
                SELECT \(unescaped: key), sum(requests)::int8, sum(accepted)::int8, sum(delivered)::int8, sum(soft_bounces)::int8,
                       sum(hard_bounces)::int8, sum(invalid)::int8, sum(spam_rejections)::int8, sum(failed)::int8, sum(dropped)::int8,
                       sum(opens)::int8, sum(unique_opens)::int8, sum(clicks)::int8, sum(unique_clicks)::int8, sum(unsubscribes)::int8
                FROM message_stats
                WHERE tenant_id = \(tenantID) AND day BETWEEN \(from)::date AND \(until)::date
                  AND (\(sender)::text IS NULL OR sender = \(sender)) AND (\(tag)::text IS NULL OR tag = \(tag))
                GROUP BY 1 ORDER BY 1
                """, logger: database.logger)
            for try await (name, requests, accepted, delivered, soft, hard, invalid, spam, failed, dropped, opens, uniqueOpens, clicks,
                           uniqueClicks, unsubscribes)
                in rows.decode((String, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64).self) {
                var record = StatsRecord(key: name)
                (record.requests, record.accepted, record.delivered, record.softBounces, record.hardBounces) = (requests, accepted, delivered, soft, hard)
                (record.invalid, record.spamRejections, record.failed, record.dropped) = (invalid, spam, failed, dropped)
                (record.opens, record.uniqueOpens, record.clicks, record.uniqueClicks, record.unsubscribes) = (opens, uniqueOpens, clicks, uniqueClicks, unsubscribes)
                items.append(record)
            }
        }
        if groupBy == .day { items = Self.everyDay(items, from: from, until: until) }
        var total = StatsRecord(key: "total")
        for item in items { total.add(item) }
        return (items, total)
    }

    /// One batch task's figures per UTC day of `from...until` (Direct Mail's `BatchID` filter), from its messages as
    /// they stand now: requests, delivered, hard bounces, spam rejections, failed and dropped (the counters of
    /// `message_stats` have no task). Every day of the range is present.
    public func taskStats(tenantID: UUID, taskID: UUID, from: String, until: String) async throws -> [StatsRecord] {
        var items: [StatsRecord] = []
        try await database.withTenant(tenantID) { connection in
            let rows = try await connection.query("""
                SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), count(*)::int8,
                       count(*) FILTER (WHERE status <> 'dropped')::int8, count(*) FILTER (WHERE status = 'delivered')::int8,
                       count(*) FILTER (WHERE status = 'bounced')::int8, count(*) FILTER (WHERE status = 'spam_rejected')::int8,
                       count(*) FILTER (WHERE status = 'failed')::int8, count(*) FILTER (WHERE status = 'dropped')::int8
                FROM messages
                WHERE tenant_id = \(tenantID) AND request_id = \(taskID)
                  AND created_at >= \(from)::date AND created_at < \(until)::date + 1
                GROUP BY 1 ORDER BY 1
                """, logger: database.logger)
            for try await (day, requests, accepted, delivered, hard, spam, failed, dropped)
                in rows.decode((String, Int64, Int64, Int64, Int64, Int64, Int64, Int64).self) {
                var record = StatsRecord(key: day)
                (record.requests, record.accepted, record.delivered, record.hardBounces) = (requests, accepted, delivered, hard)
                (record.spamRejections, record.failed, record.dropped) = (spam, failed, dropped)
                items.append(record)
            }
        }
        return Self.everyDay(items, from: from, until: until)
    }

    /// The rows with an empty one for each day of the range that had none.
    static func everyDay(_ items: [StatsRecord], from: String, until: String) -> [StatsRecord] {
        guard let start = StatsDay.parse(from), let end = StatsDay.parse(until) else { return items }
        let byDay = Dictionary(uniqueKeysWithValues: items.map { ($0.key, $0) })
        var result: [StatsRecord] = []
        var day = start
        while day <= end {
            let key = StatsDay.format(day)
            result.append(byDay[key] ?? StatsRecord(key: key))
            day = day.addingTimeInterval(86_400)
        }
        return result
    }
}

/// `YYYY-MM-DD` UTC days.
public enum StatsDay {
    public static func parse(_ text: String) -> Date? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard text.utf8.count == 10, parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
              let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2]), (1970...9999).contains(year) else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let components = DateComponents(year: year, month: month, day: day)
        guard components.isValidDate(in: calendar), let date = calendar.date(from: components) else { return nil }
        return date
    }

    public static func format(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month, .day], from: date)
        return String(format: "%04d-%02d-%02d", parts.year ?? 0, parts.month ?? 0, parts.day ?? 0)
    }
}
