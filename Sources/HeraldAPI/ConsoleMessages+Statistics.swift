import Foundation
import HeraldCore
import HeraldStore
import Hummingbird

/// The console's statistics (issue #19): `GET /v1/stats` by day, sender or tag over a range of days, optionally for
/// one sender or tag, with the counts and rates in a table and, by day, the server-drawn chart.
extension Console {
    func registerStatisticsPages(on router: Router<HeraldRequestContext>) {
        router.get("/console/statistics") { request, _ in await statisticsPage(request) }
    }

    /// `GET /console/statistics?groupBy=day|sender|tag&from=YYYY-MM-DD&until=YYYY-MM-DD&sender=&tag=` (the last 30 days by day when empty).
    func statisticsPage(_ request: Request) async -> Response {
        await show(request, action: "dm:QueryStatistics") { viewer in
            let query = request.uri.queryParameters
            let field = { (name: String) -> String in (query.get(name) ?? "").trimmingCharacters(in: .whitespacesAndNewlines) }
            let today = now()
            let fromText = field("from").isEmpty ? StatsDay.format(today.addingTimeInterval(-29 * 86_400)) : field("from")
            let untilText = field("until").isEmpty ? StatsDay.format(today) : field("until")
            let sender = String(field("sender").prefix(254)), tag = String(field("tag").prefix(128))
            let grouping = StatsStore.Grouping(rawValue: field("groupBy")) ?? .day
            var context: [String: Any] = [
                "from": fromText, "until": untilText, "sender": sender, "tag": tag,
                "groupings": [StatsStore.Grouping.day, .sender, .tag].map { group -> [String: Any] in
                    ["value": group.rawValue, "name": viewer["stat_by_" + group.rawValue], "selected": group == grouping]
                },
                "keyTitle": viewer["stat_key_" + grouping.rawValue],
            ]
            do {
                // The checks of GET /v1/stats.
                guard let from = StatsDay.parse(fromText) else { throw HeraldError.validation("from must be a day like 2026-11-01.", field: "from") }
                guard let until = StatsDay.parse(untilText) else { throw HeraldError.validation("until must be a day like 2026-11-30.", field: "until") }
                guard from <= until else { throw HeraldError.validation("until must not be before from.", field: "until") }
                guard until.timeIntervalSince(from) < 366 * 86_400 else { throw HeraldError.validation("At most 366 days at a time.", field: "until") }
                let (items, total) = try await stats.stats(tenantID: viewer.principal.tenantID, from: fromText, until: untilText, groupBy: grouping,
                                                           sender: sender.isEmpty ? nil : sender.lowercased(), tag: tag.isEmpty ? nil : tag)
                context["rows"] = items.map { Self.statisticsRow($0, name: $0.key.isEmpty ? viewer["stat_noTag"] : $0.key) }
                context["total"] = Self.statisticsRow(total, name: viewer["stat_total"])
                if grouping == .day { context["chart"] = ConsolePages.chart(items, words: viewer.words, label: viewer["statistics"]) }
                return page(viewer, title: "statistics", "stat_page", context)
            } catch let error as HeraldError where !error.kind.isServerFault {
                context["rows"] = [[String: Any]]()
                return page(viewer, title: "statistics", "stat_page", context, notice: error.message)
            }
        }
    }

    /// A row's counts and rates: delivery (delivered / accepted, "—" of none), bounce (hard bounces / accepted), spam (spam
    /// rejections / accepted), open and click (of delivered; unique ones beside them), as GET /v1/stats reckons them.
    static func statisticsRow(_ record: StatsRecord, name: String) -> [String: Any] {
        // A rate of nothing is no rate: a dash, not 0 %.
        let rate = { (part: Int64, whole: Int64) -> String in
            whole == 0 ? "—" : String(format: "%.1f %%", Components.Schemas.StatsRow.rate(part, whole) * 100)
        }
        return [
            "key": name, "requests": record.requests, "accepted": record.accepted, "delivered": record.delivered,
            "bounced": record.hardBounces, "softBounces": record.softBounces, "invalid": record.invalid, "spam": record.spamRejections,
            "failed": record.failed, "dropped": record.dropped, "opens": record.opens, "clicks": record.clicks, "unsubscribes": record.unsubscribes,
            "deliveryRate": rate(record.delivered, record.accepted), "bounceRate": rate(record.hardBounces, record.accepted),
            "spamRate": rate(record.spamRejections, record.accepted), "openRate": rate(record.opens, record.delivered),
            "uniqueOpenRate": rate(record.uniqueOpens, record.delivered), "clickRate": rate(record.clicks, record.delivered),
            "uniqueClickRate": rate(record.uniqueClicks, record.delivered),
        ]
    }
}

extension ConsolePages {
    static let statisticsPages: [String: String] = [
        "stat_page": """
            <h1>{{t.statistics}}</h1>
            {{#notice}}<p class="notice" role="status">{{notice}}</p>{{/notice}}
            <form method="get" action="/console/statistics" class="card filters" id="stats-form">
              <div><label for="stats-group">{{t.stat_groupBy}}</label>
                <select id="stats-group" name="groupBy">{{#groupings}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{name}}</option>{{/groupings}}</select></div>
              <div><label for="stats-from">{{t.stat_from}}</label><input id="stats-from" name="from" type="date" required value="{{from}}"></div>
              <div><label for="stats-until">{{t.stat_until}}</label><input id="stats-until" name="until" type="date" required value="{{until}}"></div>
              <div><label for="stats-sender">{{t.stat_sender}}</label><input id="stats-sender" name="sender" type="email" maxlength="254" value="{{sender}}"></div>
              <div><label for="stats-tag">{{t.stat_tag}}</label><input id="stats-tag" name="tag" maxlength="128" value="{{tag}}"></div>
              <div><button type="submit" id="stats-show">{{t.stat_show}}</button></div>
            </form>
            {{#chart}}
            <section class="card" aria-labelledby="stats-chart-title" id="stats-chart">
              <h2 id="stats-chart-title">{{t.stat_chart}}</h2>
              {{{chart}}}
              <p class="legend"><span class="key delivered"></span>{{t.delivered}} <span class="key bounced"></span>{{t.bounced}}
                <span class="key spam"></span>{{t.spam}} <span class="key failed"></span>{{t.failed}}</p>
            </section>
            {{/chart}}
            <section class="card" aria-labelledby="stats-table-title">
              <h2 id="stats-table-title">{{t.stat_figures}}</h2>
              <div class="scroll"><table id="stats-table">
                <thead><tr><th scope="col">{{keyTitle}}</th><th scope="col">{{t.stat_requests}}</th><th scope="col">{{t.stat_accepted}}</th>
                  <th scope="col">{{t.delivered}}</th><th scope="col">{{t.bounced}}</th><th scope="col">{{t.spam}}</th><th scope="col">{{t.failed}}</th>
                  <th scope="col">{{t.stat_dropped}}</th><th scope="col">{{t.stat_deliveryRate}}</th><th scope="col">{{t.stat_bounceRate}}</th>
                  <th scope="col">{{t.stat_spamRate}}</th><th scope="col">{{t.stat_openRate}}</th><th scope="col">{{t.stat_clickRate}}</th></tr></thead>
                <tbody>
                {{#rows}}<tr class="stats-row"><th scope="row">{{key}}</th><td>{{requests}}</td><td>{{accepted}}</td><td>{{delivered}}</td><td>{{bounced}}</td><td>{{spam}}</td><td>{{failed}}</td><td>{{dropped}}</td><td class="delivery-rate">{{deliveryRate}}</td><td class="bounce-rate">{{bounceRate}}</td><td class="spam-rate">{{spamRate}}</td><td class="open-rate">{{openRate}} <span class="muted">({{uniqueOpenRate}} {{t.stat_unique}})</span></td><td class="click-rate">{{clickRate}} <span class="muted">({{uniqueClickRate}} {{t.stat_unique}})</span></td></tr>{{/rows}}
                </tbody>
                {{#total}}<tfoot><tr id="stats-total"><th scope="row">{{key}}</th><td>{{requests}}</td><td>{{accepted}}</td><td>{{delivered}}</td><td>{{bounced}}</td><td>{{spam}}</td><td>{{failed}}</td><td>{{dropped}}</td><td class="delivery-rate">{{deliveryRate}}</td><td class="bounce-rate">{{bounceRate}}</td><td class="spam-rate">{{spamRate}}</td><td class="open-rate">{{openRate}} <span class="muted">({{uniqueOpenRate}} {{t.stat_unique}})</span></td><td class="click-rate">{{clickRate}} <span class="muted">({{uniqueClickRate}} {{t.stat_unique}})</span></td></tr></tfoot>{{/total}}
              </table></div>
              {{^rows}}<p class="muted" id="stats-none">{{t.stat_none}}</p>{{/rows}}
              <p class="muted">{{t.stat_explain}}</p>
            </section>
            """,
    ]

    static let statisticsEnglish: [String: String] = [
        "stat_groupBy": "Show by", "stat_by_day": "Day", "stat_by_sender": "Sender address", "stat_by_tag": "Tag",
        "stat_key_day": "Day", "stat_key_sender": "Sender address", "stat_key_tag": "Tag",
        "stat_from": "From (day, UTC)", "stat_until": "Until (day, UTC)", "stat_sender": "Only this sender", "stat_tag": "Only this tag",
        "stat_show": "Show", "stat_chart": "Day by day", "stat_figures": "Figures", "stat_requests": "Requests", "stat_accepted": "Accepted",
        "stat_dropped": "Dropped", "stat_deliveryRate": "Delivery rate", "stat_bounceRate": "Bounce rate", "stat_spamRate": "Spam rate",
        "stat_openRate": "Open rate", "stat_clickRate": "Click rate", "stat_unique": "unique", "stat_total": "Total", "stat_noTag": "(no tag)",
        "stat_none": "Nothing in this range.",
        "stat_explain": "Delivery, bounce and spam rates are of accepted messages; open and click rates of delivered ones.",
    ]

    static let statisticsChinese: [String: String] = [
        "stat_groupBy": "统计维度", "stat_by_day": "按天", "stat_by_sender": "按发信地址", "stat_by_tag": "按标签",
        "stat_key_day": "日期", "stat_key_sender": "发信地址", "stat_key_tag": "标签",
        "stat_from": "开始日期（UTC）", "stat_until": "结束日期（UTC）", "stat_sender": "仅此发信地址", "stat_tag": "仅此标签",
        "stat_show": "查看", "stat_chart": "每日走势", "stat_figures": "数据", "stat_requests": "请求数", "stat_accepted": "受理数",
        "stat_dropped": "丢弃", "stat_deliveryRate": "送达率", "stat_bounceRate": "退信率", "stat_spamRate": "垃圾邮件率",
        "stat_openRate": "打开率", "stat_clickRate": "点击率", "stat_unique": "独立", "stat_total": "合计", "stat_noTag": "（无标签）",
        "stat_none": "此范围内没有数据。",
        "stat_explain": "送达率、退信率和垃圾邮件率以受理数为基数；打开率和点击率以送达数为基数。",
    ]
}
