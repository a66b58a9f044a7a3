import Foundation
import HeraldCore
import HeraldStore

/// `GET /v1/stats`: the counters kept as events happen.
extension APIHandler {
    func getStats(_ input: Operations.GetStats.Input) async throws -> Operations.GetStats.Output {
        let tenant = try caller().tenant
        guard let from = StatsDay.parse(input.query.from) else { throw HeraldError.validation("from must be a day like 2026-11-01.", field: "from") }
        guard let until = StatsDay.parse(input.query.until) else { throw HeraldError.validation("until must be a day like 2026-11-30.", field: "until") }
        guard from <= until else { throw HeraldError.validation("until must not be before from.", field: "until") }
        guard until.timeIntervalSince(from) < 366 * 86_400 else { throw HeraldError.validation("At most 366 days at a time.", field: "until") }
        let grouping = StatsStore.Grouping(rawValue: input.query.groupBy?.rawValue ?? "day") ?? .day
        let (items, total) = try await stats.stats(tenantID: tenant, from: input.query.from, until: input.query.until, groupBy: grouping,
                                                   sender: input.query.sender.map { $0.lowercased() }, tag: input.query.tag)
        return .ok(.init(body: .json(.init(from: input.query.from, until: input.query.until, groupBy: .init(rawValue: grouping.rawValue) ?? .day,
                                           items: items.map(Components.Schemas.StatsRow.init), total: .init(total)))))
    }
}

extension Components.Schemas.StatsRow {
    init(_ record: StatsRecord) {
        self.init(key: record.key, requests: record.requests, accepted: record.accepted, delivered: record.delivered, softBounces: record.softBounces,
                  hardBounces: record.hardBounces, invalid: record.invalid, spamRejections: record.spamRejections, failed: record.failed,
                  dropped: record.dropped, opens: record.opens, uniqueOpens: record.uniqueOpens, clicks: record.clicks,
                  uniqueClicks: record.uniqueClicks, unsubscribes: record.unsubscribes,
                  successRate: Self.rate(record.delivered, record.accepted), openRate: Self.rate(record.opens, record.delivered),
                  uniqueOpenRate: Self.rate(record.uniqueOpens, record.delivered), clickRate: Self.rate(record.clicks, record.delivered),
                  uniqueClickRate: Self.rate(record.uniqueClicks, record.delivered))
    }

    /// `part / whole` to 4 decimals; 0 of nothing.
    static func rate(_ part: Int64, _ whole: Int64) -> Double {
        whole == 0 ? 0 : (Double(part) / Double(whole) * 10_000).rounded() / 10_000
    }
}
