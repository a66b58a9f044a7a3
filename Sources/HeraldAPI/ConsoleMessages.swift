import Foundation
import HTTPTypes
import HeraldCore
import HeraldStore
import Hummingbird

/// The console's messages (issue #19): the search of `GET /v1/messages` (recipient, status, time, paged) and one
/// message's facts and events in order, as `GET /v1/messages/{id}` shows them, under the same RAM actions.
/// Suppressions and invalid addresses (ConsoleMessages+Suppressions.swift) and statistics
/// (ConsoleMessages+Statistics.swift) are registered from here too.
extension Console {
    func registerMessagePages(on router: Router<HeraldRequestContext>) {
        router.get("/console/messages") { request, _ in await messagesPage(request) }
        router.get("/console/messages/{id}") { request, context in await messagePage(request, id: context.parameters.get("id") ?? "") }
        registerSuppressionPages(on: router)
        registerStatisticsPages(on: router)
    }

    /// Messages on one page of the search.
    static let messagesPerPage = 50

    /// `GET /console/messages?to=&status=&from=&until=&cursor=`: the search form and a page of messages, newest first.
    func messagesPage(_ request: Request) async -> Response {
        await show(request, action: "dm:QueryMailByParam") { viewer in
            let query = request.uri.queryParameters
            let field = { (name: String) -> String in (query.get(name) ?? "").trimmingCharacters(in: .whitespacesAndNewlines) }
            let to = String(field("to").prefix(254)), statusText = field("status"), fromText = field("from"), untilText = field("until")
            let cursorText = field("cursor")
            var context: [String: Any] = [
                "to": to, "from": fromText, "until": untilText,
                "statuses": MessageStatus.allCases.map { status -> [String: Any] in
                    ["value": status.rawValue, "name": viewer["msg_st_" + status.rawValue], "selected": status.rawValue == statusText]
                },
            ]
            do {
                let status = MessageStatus(rawValue: statusText)
                if status == nil, !statusText.isEmpty { throw HeraldError.validation("status is invalid.", field: "status") }
                let from = try Self.msgSearchTime(fromText, field: "from", endOfDay: false)
                let until = try Self.msgSearchTime(untilText, field: "until", endOfDay: true)
                let cursor = UUID(uuidString: cursorText)
                if cursor == nil, !cursorText.isEmpty { throw HeraldError.validation("cursor is invalid.", field: "cursor") }
                let items = try await deps.sending.searchMessages(tenantID: viewer.principal.tenantID, to: to.isEmpty ? nil : to, status: status,
                                                                  from: from, until: until, limit: Self.messagesPerPage, before: cursor)
                context["messages"] = items.map { message -> [String: Any] in
                    ["id": message.id.lowercasedString, "time": Self.msgTime(message.createdAt), "at": message.createdAt.ISO8601Format(),
                     "to": message.to, "from": message.from, "subject": message.subject, "tag": message.tag ?? false,
                     "status": message.status.rawValue, "statusText": viewer["msg_st_" + message.status.rawValue]]
                }
                if items.count == Self.messagesPerPage, let last = items.last {
                    context["next"] = "/console/messages?" + Self.msgQueryString([("to", to), ("status", statusText), ("from", fromText),
                                                                             ("until", untilText), ("cursor", last.id.lowercasedString)])
                }
                if !cursorText.isEmpty {
                    context["first"] = "/console/messages?" + Self.msgQueryString([("to", to), ("status", statusText), ("from", fromText),
                                                                              ("until", untilText)])
                }
                context["paged"] = context["next"] != nil || context["first"] != nil
                return page(viewer, title: "messages", "msg_search", context)
            } catch let error as HeraldError where !error.kind.isServerFault {
                context["messages"] = [[String: Any]]()
                return page(viewer, title: "messages", "msg_search", context, notice: error.message)
            }
        }
    }

    /// `GET /console/messages/{id}`: the message's facts and its events in order; a bad id, or another tenant's, is
    /// a not-found page that says nothing of it.
    func messagePage(_ request: Request, id text: String) async -> Response {
        await showObject(request, id: text, kind: "message", action: "dm:QueryMailById", missing: messageNotFound) { viewer, id in
            let (message, events) = try await deps.sending.message(tenantID: viewer.principal.tenantID, id: id)
            let facts: [(String, String)] = [
                ("msg_id", message.id.lowercasedString), ("msg_sender", message.from), ("msg_recipient", message.to),
                ("msg_subject", message.subject), ("msg_tag", message.tag ?? "—"),
                ("status", viewer["msg_st_" + message.status.rawValue]), ("msg_reason", message.reason ?? "—"),
                ("msg_attempts", String(message.attempts)), ("msg_lastResponse", message.lastResponse ?? "—"),
                ("msg_created", Self.msgTime(message.createdAt)), ("msg_updated", Self.msgTime(message.updatedAt)),
            ]
            let rows: [[String: Any]] = events.enumerated().map { index, event in
                let kind = event.type.rawValue.hasPrefix("message.") ? String(event.type.rawValue.dropFirst("message.".count)) : event.type.rawValue
                return ["n": index + 1, "type": event.type.rawValue, "name": viewer["msg_ev_" + kind], "time": Self.msgTime(event.at),
                        "at": event.at.ISO8601Format(), "details": Self.msgEventDetails(event.dataJSON, viewer: viewer)]
            }
            let context: [String: Any] = [
                "id": message.id.lowercasedString, "subject": message.subject, "status": message.status.rawValue,
                "facts": facts.map { ["name": viewer[$0.0], "key": $0.0, "value": $0.1, "copy": $0.0 == "msg_id"] }, "events": rows,
                // A message still on its way: the events region is fetched again until it has arrived somewhere.
                "live": !message.status.isFinal && message.status != .paused,
            ]
            // Titled "Messages" so that the menu shows where the page is; its heading names the message.
            return page(viewer, title: "messages", "msg_detail", context)
        }
    }

    func messageNotFound(_ viewer: Viewer) -> Response {
        page(viewer, title: "messages", "message", ["title": viewer["msg_notFound"], "text": viewer["msg_notFoundText"]], status: .notFound)
    }

    /// What an event says besides the message's own facts: the SMTP reply, the reason, attempts, a clicked URL…
    static func msgEventDetails(_ json: String, viewer: Viewer) -> [[String: String]] {
        guard let data = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else { return [] }
        // The status is the event's own name; the message, addresses and tag are the page's facts.
        let shown = ["smtpResponse", "reason", "attempts", "late", "scope", "url", "first", "feedbackType", "taskId"]
        let flags: Set<String> = ["late", "first"]
        return shown.compactMap { key -> [String: String]? in
            guard let value = data[key] else { return nil }
            let text: String
            if flags.contains(key), let flag = value as? Bool {
                text = viewer[flag ? "msg_true" : "msg_false"]
            } else if let number = value as? NSNumber, !(value is String) {
                text = number.stringValue
            } else {
                text = "\(value)"
            }
            return ["key": viewer["msg_d_" + key], "value": text]
        }
    }

    /// A time as the console shows it: `2026-12-07 14:03:21 UTC`.
    static func msgTime(_ date: Date) -> String {
        ConsolePages.time(date, seconds: true)
    }

    /// A search bound: a day (`2026-12-01`, its start; its end for `until`) or an ISO 8601 time; nil when empty.
    static func msgSearchTime(_ text: String, field: String, endOfDay: Bool) throws -> Date? {
        if text.isEmpty { return nil }
        if let day = StatsDay.parse(text) { return endOfDay ? day.addingTimeInterval(86_400) : day }
        if let time = try? Date(text, strategy: .iso8601) { return time }
        // `datetime-local` inputs send minutes without a zone: taken as UTC.
        if text.count == 16, let time = try? Date(text + ":00Z", strategy: .iso8601) { return time }
        throw HeraldError.validation("\(field) must be a day like 2026-11-01 or a time like 2026-11-01T08:00:00Z.", field: field)
    }

    /// `name=value&…` of the non-empty values, percent-encoded.
    static func msgQueryString(_ pairs: [(String, String)]) -> String {
        var allowed = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")
        allowed.insert("@")
        return pairs.filter { !$0.1.isEmpty }.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")" }
            .joined(separator: "&")
    }
}

extension ConsolePages {
    /// The templates of this part: messages, suppressions and invalid addresses, statistics.
    static let messagePages: [String: String] = merged([messageSearchPages, suppressionPages, statisticsPages])
    static let messageEnglish: [String: String] = merged([messageSearchEnglish, suppressionEnglish, statisticsEnglish])
    static let messageChinese: [String: String] = merged([messageSearchChinese, suppressionChinese, statisticsChinese])

    static let messageSearchPages: [String: String] = [
        "msg_search": """
            <h1>{{t.messages}}</h1>
            {{#notice}}<p class="notice" role="status">{{notice}}</p>{{/notice}}
            <form method="get" action="/console/messages" class="card filters" id="message-search" role="search">
              <div><label for="msg-to">{{t.msg_recipientWhole}}</label>
                <input id="msg-to" name="to" type="email" maxlength="254" value="{{to}}" placeholder="someone@example.com"></div>
              <div><label for="msg-status">{{t.status}}</label>
                <select id="msg-status" name="status"><option value="">{{t.msg_anyStatus}}</option>{{#statuses}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{name}}</option>{{/statuses}}</select></div>
              <div><label for="msg-from">{{t.msg_from}}</label><input id="msg-from" name="from" type="date" value="{{from}}"></div>
              <div><label for="msg-until">{{t.msg_until}}</label><input id="msg-until" name="until" type="date" value="{{until}}"></div>
              <div><button type="submit" id="msg-search-button">{{t.msg_search}}</button></div>
            </form>
            <section class="card" aria-labelledby="msg-results-title">
              <h2 id="msg-results-title">{{t.msg_results}}</h2>
              <div class="scroll"><table id="message-results">
                <thead><tr><th scope="col">{{t.msg_time}}</th><th scope="col">{{t.msg_recipient}}</th><th scope="col">{{t.msg_sender}}</th><th scope="col">{{t.msg_subjectTag}}</th><th scope="col">{{t.status}}</th></tr></thead>
                <tbody>
                {{#messages}}<tr id="msg-{{id}}" class="message-row"><td><time datetime="{{at}}">{{time}}</time></td><td>{{to}}</td><td>{{from}}</td><td><a class="message-link" href="/console/messages/{{id}}">{{subject}}</a>{{#tag}} <span class="muted">[{{tag}}]</span>{{/tag}}</td><td class="status-{{status}}">{{statusText}}</td></tr>{{/messages}}
                </tbody>
              </table></div>
              {{^messages}}<p class="muted" id="msg-none">{{t.msg_none}}</p>{{/messages}}
              {{#paged}}<nav class="pager" aria-label="{{t.msg_pages}}">{{#first}}<a id="msg-newest" href="{{first}}">{{t.msg_newest}}</a>{{/first}}{{#next}}<a id="msg-older" href="{{next}}">{{t.msg_older}}</a>{{/next}}</nav>{{/paged}}
            </section>
            """,
        "msg_detail": """
            <h1>{{t.msg_message}}: {{subject}}</h1>
            <p><a href="/console/messages" id="msg-back">{{t.msg_back}}</a></p>
            <div id="message-live"{{#live}} data-refresh="5"{{/live}}>
            <section class="card" aria-labelledby="msg-facts-title">
              <h2 id="msg-facts-title">{{t.msg_facts}}</h2>
              <div class="scroll"><table id="message-facts">
                <tbody>
                {{#facts}}<tr id="fact-{{key}}"><th scope="row">{{name}}</th><td>{{#copy}}<code class="copy">{{value}}</code>{{/copy}}{{^copy}}{{value}}{{/copy}}</td></tr>{{/facts}}
                </tbody>
              </table></div>
            </section>
            <section class="card" aria-labelledby="msg-events-title">
              <h2 id="msg-events-title">{{t.msg_events}}</h2>
              <div class="scroll"><table id="message-events">
                <thead><tr><th scope="col">#</th><th scope="col">{{t.msg_time}}</th><th scope="col">{{t.msg_event}}</th><th scope="col">{{t.msg_detail}}</th></tr></thead>
                <tbody>
                {{#events}}<tr class="message-event" data-event="{{type}}"><td>{{n}}</td><td><time datetime="{{at}}">{{time}}</time></td><td>{{name}}</td><td>{{#details}}<span class="muted">{{key}}:</span> <code>{{value}}</code><br>{{/details}}</td></tr>{{/events}}
                </tbody>
              </table></div>
              {{^events}}<p class="muted">{{t.msg_noEvents}}</p>{{/events}}
            </section>
            </div>
            """,
    ]

    static let messageSearchEnglish: [String: String] = [
        "msg_recipient": "Recipient", "msg_recipientWhole": "Recipient (the whole address)", "msg_sender": "Sender", "msg_anyStatus": "Any status", "msg_from": "From (day)", "msg_until": "Until (day)",
        "msg_search": "Search", "msg_results": "Messages, newest first", "msg_time": "Time", "msg_subjectTag": "Subject [tag]",
        "msg_none": "No messages match.", "msg_pages": "Pages", "msg_newest": "Newest", "msg_older": "Older messages",
        "msg_message": "Message", "msg_back": "Back to the search", "msg_facts": "Facts", "msg_events": "Events, in order",
        "msg_event": "Event", "msg_detail": "Detail", "msg_noEvents": "No events (they are kept for a limited time).",
        "msg_notFound": "Not found", "msg_notFoundText": "There is no such message.",
        "msg_id": "Message ID", "msg_subject": "Subject", "msg_tag": "Tag", "msg_reason": "Reason", "msg_attempts": "Delivery attempts",
        "msg_lastResponse": "Last SMTP reply", "msg_created": "Accepted", "msg_updated": "Last change",
        "msg_true": "yes", "msg_false": "no",
        "msg_st_queued": "Queued", "msg_st_deferred": "Deferred (will retry)", "msg_st_sending": "Sending", "msg_st_delivered": "Delivered",
        "msg_st_bounced": "Bounced", "msg_st_spam_rejected": "Rejected as spam", "msg_st_failed": "Failed", "msg_st_dropped": "Dropped",
        "msg_st_paused": "Set aside (account frozen)",
        "msg_ev_accepted": "Queued", "msg_ev_dropped": "Dropped", "msg_ev_deferred": "Attempt deferred", "msg_ev_delivered": "Delivered",
        "msg_ev_bounced": "Bounced", "msg_ev_spam_rejected": "Rejected as spam", "msg_ev_failed": "Failed", "msg_ev_opened": "Opened",
        "msg_ev_clicked": "Link clicked", "msg_ev_unsubscribed": "Unsubscribed", "msg_ev_complained": "Complaint (marked as spam)",
        "msg_d_smtpResponse": "SMTP reply", "msg_d_reason": "Reason", "msg_d_attempts": "Attempts", "msg_d_late": "Late report",
        "msg_d_scope": "Scope", "msg_d_url": "URL", "msg_d_first": "First time", "msg_d_feedbackType": "Feedback type", "msg_d_taskId": "Task",
        "msg_d_status": "Status",
    ]

    static let messageSearchChinese: [String: String] = [
        "msg_recipient": "收件人", "msg_recipientWhole": "收件人（完整地址）", "msg_sender": "发信地址", "msg_anyStatus": "全部状态", "msg_from": "开始日期", "msg_until": "结束日期",
        "msg_search": "搜索", "msg_results": "邮件（最新的在前）", "msg_time": "时间", "msg_subjectTag": "主题 [标签]",
        "msg_none": "没有符合条件的邮件。", "msg_pages": "分页", "msg_newest": "最新", "msg_older": "更早的邮件",
        "msg_message": "邮件", "msg_back": "返回搜索", "msg_facts": "基本信息", "msg_events": "事件（按时间顺序）",
        "msg_event": "事件", "msg_detail": "详情", "msg_noEvents": "没有事件（事件只保留一段时间）。",
        "msg_notFound": "未找到", "msg_notFoundText": "没有这封邮件。",
        "msg_id": "邮件 ID", "msg_subject": "主题", "msg_tag": "标签", "msg_reason": "原因", "msg_attempts": "投递次数",
        "msg_lastResponse": "最后的 SMTP 应答", "msg_created": "受理时间", "msg_updated": "最后更新",
        "msg_true": "是", "msg_false": "否",
        "msg_st_queued": "排队中", "msg_st_deferred": "延迟（将重试）", "msg_st_sending": "发送中", "msg_st_delivered": "已送达",
        "msg_st_bounced": "退信", "msg_st_spam_rejected": "被判为垃圾邮件", "msg_st_failed": "失败", "msg_st_dropped": "已丢弃",
        "msg_st_paused": "已搁置（账户冻结）",
        "msg_ev_accepted": "已排队", "msg_ev_dropped": "已丢弃", "msg_ev_deferred": "投递延迟", "msg_ev_delivered": "已送达",
        "msg_ev_bounced": "退信", "msg_ev_spam_rejected": "被判为垃圾邮件", "msg_ev_failed": "失败", "msg_ev_opened": "已打开",
        "msg_ev_clicked": "点击链接", "msg_ev_unsubscribed": "退订", "msg_ev_complained": "投诉（标记为垃圾邮件）",
        "msg_d_smtpResponse": "SMTP 应答", "msg_d_reason": "原因", "msg_d_attempts": "次数", "msg_d_late": "延后报告",
        "msg_d_scope": "范围", "msg_d_url": "链接", "msg_d_first": "首次", "msg_d_feedbackType": "反馈类型", "msg_d_taskId": "任务",
        "msg_d_status": "状态",
    ]
}
