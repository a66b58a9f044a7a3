import Foundation
import HeraldCore
import HeraldStore

/// The read actions of the compatibility endpoint: statistics, the mail detail, and the Query…ByParam lists.
extension DirectMailCompat {
    /// SenderStatisticsByTagNameAndBatchID (per day) and SenderStatisticsDetailByParam (per message).
    func statistics(_ action: String, parameters: Parameters, principal: Principal) async throws -> [String: any Sendable] {
        switch action {
        case "SenderStatisticsByTagNameAndBatchID":
            let from = try parameters.require("StartTime"), until = try parameters.require("EndTime")
            guard let start = StatsDay.parse(from), let end = StatsDay.parse(until), start <= end, end.timeIntervalSince(start) < 366 * 86_400 else {
                throw HeraldError(code: "InvalidParameter", kind: .invalid, message: "StartTime and EndTime must be days like 2026-11-01, at most a year apart.",
                                  field: "StartTime")
            }
            let items: [StatsRecord]
            if let batch = parameters.optional("BatchID") {
                // One batch send's figures (its EnvId); the sender and tag are the task's own.
                guard let taskID = UUID(uuidString: batch) else {
                    throw HeraldError(code: "InvalidParameter", kind: .invalid, message: "BatchID must be a batch send's EnvId.", field: "BatchID")
                }
                items = try await stats.taskStats(tenantID: principal.tenantID, taskID: taskID, from: from, until: until)
            } else {
                items = try await stats.stats(tenantID: principal.tenantID, from: from, until: until, groupBy: .day,
                                              sender: parameters.optional("AccountName")?.lowercased(), tag: parameters.optional("TagName")).items
            }
            let rows: [[String: any Sendable]] = items.map { day in
                // Direct Mail's columns: requests, delivered, failed (hard bounces, spam rejections, retries given up) and
                // unavailable (invalid addresses and dropped recipients).
                let failed = day.hardBounces + day.spamRejections + day.failed, unavailable = day.invalid + day.dropped
                return ["CreateTime": day.key, "requestCount": Int(day.requests), "successCount": Int(day.delivered), "faildCount": Int(failed),
                        "unavailableCount": Int(unavailable), "succeededPercent": Self.percent(day.delivered, day.requests),
                        "unavailablePercent": Self.percent(unavailable, day.requests)]
            }
            return ["TotalCount": rows.count, "data": ["stat": rows]]
        case "GetTrackList", "GetTrackListByMailFromAndTagName":
            var reply = try await trackList(parameters: parameters, principal: principal)
            if action == "GetTrackListByMailFromAndTagName", let data = reply.removeValue(forKey: "data") as? [String: any Sendable] {
                // This one's list is named differently: {"TrackList": {"Stat": […]}}.
                reply["TrackList"] = ["Stat": data["stat"] ?? [String]()] as [String: any Sendable]
            }
            return reply
        case "QueryInvalidAddress":
            return try await invalidAddresses(parameters: parameters, principal: principal)
        default: // SenderStatisticsDetailByParam
            // Direct Mail's status numbers: 0 delivered, 2 invalid address (hard bounce), 3 spam, 4 failed.
            let byNumber: [String: MessageStatus] = ["0": .delivered, "2": .bounced, "3": .spamRejected, "4": .failed]
            let numbers = Dictionary(uniqueKeysWithValues: byNumber.map { ($0.value, Int($0.key) ?? 4) })
            var status: MessageStatus?
            if let given = parameters.optional("Status") {
                guard let mapped = byNumber[given] else {
                    throw HeraldError(code: "InvalidParameter", kind: .invalid, message: "Status must be 0, 2, 3 or 4.", field: "Status")
                }
                status = mapped
            }
            func moment(_ name: String) throws(HeraldError) -> Date? {
                guard let text = parameters.optional(name) else { return nil }
                guard let date = Self.detailTime.date(from: text) ?? StatsDay.parse(text) else {
                    throw HeraldError(code: "InvalidParameter", kind: .invalid, message: "\(name) must look like 2026-11-26 10:00.", field: name)
                }
                return date
            }
            let length = Int(parameters["Length"] ?? "50") ?? 0
            guard (1...100).contains(length) else {
                throw HeraldError(code: "InvalidParameter", kind: .invalid, message: "Length must be 1 to 100.", field: "Length")
            }
            var before: UUID?
            if let next = parameters.optional("NextStart") {
                guard let id = UUID(uuidString: next) else {
                    throw HeraldError(code: "InvalidParameter", kind: .invalid, message: "NextStart is invalid.", field: "NextStart")
                }
                before = id
            }
            let found = try await sending.searchMessages(tenantID: principal.tenantID, to: parameters.optional("ToAddress"),
                                                         status: status, from: try moment("StartTime"), until: try moment("EndTime"), limit: length,
                                                         before: before)
            // The sender and tag filters apply to the page found (so a page may come back shorter than Length).
            let account = parameters.optional("AccountName")?.lowercased(), tag = parameters.optional("TagName")
            let rows: [[String: any Sendable]] = found.filter { (account == nil || $0.from == account) && (tag == nil || $0.tag == tag) }.map { message in
                ["AccountName": message.from, "ToAddress": message.to, "Status": numbers[message.status] ?? 4, "Subject": message.subject,
                 "Message": message.lastResponse ?? "", "ErrorClassification": message.reason ?? "",
                 "LastUpdateTime": Self.detailTime.string(from: message.updatedAt), "UtcLastUpdateTime": Int(message.updatedAt.timeIntervalSince1970)]
            }
            var reply: [String: any Sendable] = ["data": ["mailDetail": rows]]
            if found.count == length, let last = found.last { reply["NextStart"] = last.id.lowercasedString }
            return reply
        }
    }

    /// GetTrackList (and GetTrackListByMailFromAndTagName): opens and clicks per day from `GET /v1/stats`, for a
    /// sender and/or tag, a page (`PageNumber`, `PageSize`) of days at a time; rates are of the delivered.
    func trackList(parameters: Parameters, principal: Principal) async throws -> [String: any Sendable] {
        let from = try parameters.require("StartTime"), until = try parameters.require("EndTime")
        guard let start = StatsDay.parse(from), let end = StatsDay.parse(until), start <= end, end.timeIntervalSince(start) < 366 * 86_400 else {
            throw HeraldError(code: "InvalidParameter", kind: .invalid, message: "StartTime and EndTime must be days like 2026-11-01, at most a year apart.",
                              field: "StartTime")
        }
        let (items, _) = try await stats.stats(tenantID: principal.tenantID, from: from, until: until, groupBy: .day,
                                               sender: parameters.optional("AccountName")?.lowercased(), tag: parameters.optional("TagName"))
        let rows: [[String: any Sendable]] = items.map { day in
            ["CreateTime": day.key, "TotalNumber": String(day.delivered), "RcptOpenCount": String(day.opens), "RcptClickCount": String(day.clicks),
             "RcptUniqueOpenCount": String(day.uniqueOpens), "RcptUniqueClickCount": String(day.uniqueClicks),
             "RcptOpenRate": Self.percent(day.opens, day.delivered), "RcptClickRate": Self.percent(day.clicks, day.delivered),
             "RcptUniqueOpenRate": Self.percent(day.uniqueOpens, day.delivered), "RcptUniqueClickRate": Self.percent(day.uniqueClicks, day.delivered)]
        }
        guard let page = Int(parameters["PageNumber"] ?? "1"), page >= 1, let size = Int(parameters["PageSize"] ?? "10"), (1...100).contains(size) else {
            throw HeraldError(code: "InvalidParameter", kind: .invalid, message: "PageNumber must be 1 or more and PageSize 1 to 100.", field: "PageSize")
        }
        return ["PageNo": page, "PageSize": size, "Total": rows.count, "TotalPages": (rows.count + size - 1) / size,
                "data": ["stat": Array(rows.dropFirst((page - 1) * size).prefix(size))]]
    }

    /// QueryInvalidAddress: the addresses listed as invalid (hard bounces), filtered by `KeyWord` and the
    /// listing's last change between `StartTime` and `EndTime`, `Length` (1 to 100) at a time after `NextStart`.
    func invalidAddresses(parameters: Parameters, principal: Principal) async throws -> [String: any Sendable] {
        let keyword = (parameters["KeyWord"] ?? "").lowercased()
        func moment(_ name: String) throws(HeraldError) -> Date? {
            guard let text = parameters.optional(name) else { return nil }
            guard let date = StatsDay.parse(text) ?? Self.detailTime.date(from: text) else {
                throw HeraldError(code: "InvalidParameter", kind: .invalid, message: "\(name) must be a day like 2026-11-26.", field: name)
            }
            return date
        }
        let start = try moment("StartTime"), end = try moment("EndTime").map { $0.addingTimeInterval(86_400) }
        let length = Int(parameters["Length"] ?? "10") ?? 0
        guard (1...100).contains(length) else {
            throw HeraldError(code: "InvalidParameter", kind: .invalid, message: "Length must be 1 to 100.", field: "Length")
        }
        let after = parameters.optional("NextStart")
        let listed = try await sending.invalidAddresses(tenantID: principal.tenantID).filter { item in
            item.listed && (keyword.isEmpty || item.address.contains(keyword))
                && (start.map { item.updatedAt >= $0 } ?? true) && (end.map { item.updatedAt < $0 } ?? true)
        }
        let page = Array(listed.filter { after == nil || $0.address > after! }.prefix(length))
        var reply: [String: any Sendable] = ["TotalCount": listed.count, "data": ["mailDetail": page.map { item in
            ["ToAddress": item.address, "LastUpdateTime": Self.detailTime.string(from: item.updatedAt),
             "UtcLastUpdateTime": Int(item.updatedAt.timeIntervalSince1970)] as [String: any Sendable]
        }]]
        if page.count == length, let last = page.last { reply["NextStart"] = last.address }
        return reply
    }

    /// `12.50%` of the whole, or `0.00%` of nothing.
    static func percent(_ part: Int64, _ whole: Int64) -> String {
        whole == 0 ? "0.00%" : String(format: "%.2f%%", Double(part) * 100 / Double(whole))
    }

    /// The Query…ByParam actions: the tenant's objects with Direct Mail's field names, filtered by `KeyWord`
    /// (part of the name) and the action's status or type parameter, a page (`PageNo` from 1, `PageSize` up to
    /// 100, 10 by default) at a time, as `{"PageNumber", "PageSize", "TotalCount", "data": {"<item>": […]}}`.
    func query(_ action: String, parameters: Parameters, tenantID: UUID) async throws -> [String: any Sendable] {
        let keyword = (parameters["KeyWord"] ?? "").lowercased()
        func matches(_ name: String) -> Bool { keyword.isEmpty || name.lowercased().contains(keyword) }
        func time(_ date: Date) -> String { Self.createTime.string(from: date) }
        let status = parameters["Status"].flatMap(Int.init)
        let item: String
        var rows: [[String: any Sendable]] = []
        switch action {
        case "QueryDomainByParam":
            item = "domain"
            for domain in try await domains.list(tenantID: tenantID) where matches(domain.name) {
                let verified = domain.status == .verified ? 0 : 1
                if let status, status != verified { continue }
                let spf = domain.checks.first { $0.purpose == .spf }?.status == .ok
                rows.append(["DomainId": domain.id.lowercasedString, "DomainName": domain.name, "DomainStatus": verified,
                             "DomainRecord": domain.verificationToken, "SpfAuthStatus": spf ? "0" : "1", "CreateTime": time(domain.createdAt),
                             "UtcCreateTime": Int(domain.createdAt.timeIntervalSince1970)])
            }
        case "QueryMailAddressByParam":
            item = "mailAddress"
            let type = parameters.optional("Sendtype")
            for sender in try await senders.list(tenantID: tenantID) where matches(sender.address) && (type == nil || type == sender.type.rawValue) {
                rows.append(["MailAddressId": sender.id.lowercasedString, "AccountName": sender.address, "Sendtype": sender.type.rawValue,
                             "AccountStatus": "0", "ReplyAddress": sender.replyTo ?? "", "ReplyStatus": sender.replyToStatus == .verified ? "0" : "1",
                             "CreateTime": time(sender.createdAt)])
            }
        case "QueryTagByParam":
            item = "tag"
            for tag in try await senders.listTags(tenantID: tenantID) where matches(tag.name) {
                rows.append(["TagId": tag.id.lowercasedString, "TagName": tag.name, "TagDescription": ""])
            }
        case "QueryTemplateByParam":
            item = "template"
            // TemplateStatus as Direct Mail numbers it: 0 under review, 1 approved, 2 rejected; -1 a draft.
            for template in try await templates.list(tenantID: tenantID, status: nil) where matches(template.name) {
                let number = Self.templateStatus[template.status] ?? -1
                if let status, status != number { continue }
                rows.append(["TemplateId": template.id.lowercasedString, "TemplateName": template.name, "TemplateStatus": String(number),
                             "TemplateType": template.kind == .batch ? 1 : 0, "TemplateComment": template.reviewReasons.joined(separator: "; "),
                             "CreateTime": time(template.createdAt), "UtcCreatetime": Int(template.createdAt.timeIntervalSince1970)])
            }
        case "QueryTaskByParam":
            item = "task"
            for task in try await batches.list(tenantID: tenantID, status: nil, limit: 1_000, before: nil) where matches(task.template) {
                rows.append(["TaskId": task.id.lowercasedString, "TaskStatus": task.status, "TemplateName": task.template,
                             "ReceiversName": task.list, "TagName": task.tag ?? "", "RequestCount": String(task.total), "AddressType": "1",
                             "CreateTime": time(task.createdAt), "UtcCreateTime": Int(task.createdAt.timeIntervalSince1970)])
            }
        default:
            item = "receiver"
            for list in try await lists.list(tenantID: tenantID) where matches(list.name) {
                rows.append(["ReceiverId": list.id.lowercasedString, "ReceiversName": list.name, "ReceiversAlias": list.alias ?? "",
                             "Desc": list.description ?? "", "Count": list.memberCount, "ReceiversStatus": "1", "CreateTime": time(list.createdAt),
                             "UtcCreateTime": Int(list.createdAt.timeIntervalSince1970)])
            }
        }
        let (page, size) = try Self.page(parameters)
        let slice = Array(rows.dropFirst((page - 1) * size).prefix(size))
        return ["PageNumber": page, "PageSize": size, "TotalCount": rows.count, "data": [item: slice]]
    }
}
