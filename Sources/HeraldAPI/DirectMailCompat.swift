import Crypto
import Foundation
import HTTPTypes
import HeraldCore
import HeraldStore
import Hummingbird
import Logging
import NIOCore

/// `POST /`: the Direct Mail OpenAPI (2015-11-23) compatibility endpoint (SPEC §9), so that the official
/// Alibaba Cloud SDKs work against Herald by changing only the endpoint. RPC style: the action and its
/// parameters come in the query string and/or a form body; the request is signed with an AccessKey by either
/// scheme the SDKs use (``AlibabaSignature``): V2 (`Signature`, `SignatureMethod=HMAC-SHA1`,
/// `SignatureNonce`, `Timestamp` as parameters) or V3 (`Authorization: ACS3-HMAC-SHA256 …` with
/// `x-acs-action`, `x-acs-version`, `x-acs-date`, `x-acs-signature-nonce`, `x-acs-content-sha256`).
/// A timestamp more than 15 minutes off and a nonce used before are refused. The signer is then a tenant
/// principal like a bearer token's (policies, IP protection, frozen and banned accounts, the tenant rate),
/// and each action runs on the same services as its REST route. Answers and errors have Direct Mail's
/// shape: `{"RequestId", …}` and `{"RequestId", "HostId", "Code", "Message"}`.
struct DirectMailCompat: Sendable {
    let auth: AuthStore
    let acceptBatcher: AcceptBatcher
    let batches: BatchStore
    let database: Database
    let grades: GradeStore
    let domains: DomainStore
    let senders: SenderStore
    let templates: TemplateStore
    let lists: ListStore
    let identity: IdentityStore
    let stats: StatsStore
    let sending: SendStore
    let senderRate: SenderRateLimit
    let verifier: DomainVerifier
    let tenantLimiter: TokenBucketLimiter
    let now: @Sendable () -> Date
    /// How far a request's timestamp may be from our clock.
    static let window: TimeInterval = 15 * 60
    static let version = "2015-11-23"
    /// The largest form body (an HtmlBody may be large).
    static let maxBody = 1 << 20

    /// The parameters of one request: query string and form body together.
    struct Parameters {
        var all: [(String, String)]

        subscript(_ name: String) -> String? { all.last { $0.0 == name }?.1 }

        /// The parameter, or nil when it is absent or empty (the SDKs send empty optional fields).
        func optional(_ name: String) -> String? { self[name].flatMap { $0.isEmpty ? nil : $0 } }

        func require(_ name: String) throws(HeraldError) -> String {
            guard let value = self[name], !value.isEmpty else {
                throw HeraldError(code: "MissingParameter", kind: .invalid, message: "The parameter \(name) is required.", field: name)
            }
            return value
        }
    }

    func handle(_ request: Request, context: HeraldRequestContext) async -> Response {
        var signer: (action: String, context: HeraldRequestContext)?
        do {
            var request = request
            let body = try await request.collectBody(upTo: Self.maxBody)
            let parameters = try parameters(request, body: body)
            let (action, principal) = try await authenticate(request, parameters: parameters, body: Array(buffer: body))
            var scoped = context
            scoped.principal = principal
            signer = (action, scoped)
            let reply = try await RequestScope.$context.withValue(scoped) {
                try await perform(action, parameters: parameters, principal: principal, context: scoped)
            }
            return Self.json(.ok, reply.merging(["RequestId": context.requestID]) { $1 })
        } catch {
            let failure = HeraldError.unwrapping(error)
                ?? HeraldError(code: "InternalError", kind: .internal, message: "The request processing has failed due to some unknown error.")
            // A signed request that was refused goes to the tenant's audit log, as a refused REST change does.
            if let (action, scoped) = signer, let principal = scoped.principal, !failure.kind.isServerFault, !action.hasPrefix("Desc"), !action.hasPrefix("Query") {
                await AuditLog.recordRefusal(database: database, tenantID: principal.tenantID, actor: scoped.auditActor,
                                             action: Self.tenantActions[action] ?? "dm:" + action, resource: principal.tenantResource, code: failure.code)
            }
            if failure.kind.isServerFault { context.logger.error("Direct Mail compatibility request failed", metadata: ["error": "\(error)"]) }
            return Self.json(HTTPResponse.Status(code: failure.kind.httpStatus),
                             ["RequestId": context.requestID, "HostId": "herald", "Code": failure.code, "Message": failure.message])
        }
    }

    func parameters(_ request: Request, body: ByteBuffer) throws(HeraldError) -> Parameters {
        var all = Self.form(request.uri.query ?? "")
        let type = request.headers[.contentType]?.lowercased() ?? ""
        if body.readableBytes > 0 {
            guard type.hasPrefix("application/x-www-form-urlencoded") else {
                throw HeraldError(code: "UnsupportedMediaType", kind: .unsupportedMediaType, message: "Send the parameters as application/x-www-form-urlencoded.")
            }
            all += Self.form(String(buffer: body))
        }
        // Text that PostgreSQL cannot store (NUL) or that has no place in a name or header (control
        // characters) is refused here, for every action, before it can reach a shared transaction.
        for (name, value) in all {
            try TextRules.checkLine(name, field: "parameter name")
            try TextRules.checkBody(value, field: name) // single-line fields (Subject, FromAlias…) get the send path's own checks
        }
        return Parameters(all: all)
    }

    /// Checks the signature, the timestamp and the nonce; answers the action and the signer.
    func authenticate(_ request: Request, parameters: Parameters, body: [UInt8]) async throws -> (String, Principal) {
        let keyID: String, nonce: String, timestamp: String, action: String, version: String
        let check: @Sendable (String) -> Bool
        if let header = request.headers[.authorization], header.hasPrefix("ACS3-") {
            guard let authorization = AlibabaSignature.V3Authorization(header) else {
                throw HeraldError(code: "IncompleteSignature", kind: .invalid, message: "The Authorization header is malformed.")
            }
            func acs(_ name: String) throws(HeraldError) -> String {
                guard let field = HTTPField.Name(name), let value = request.headers[field], !value.isEmpty else {
                    throw HeraldError(code: "MissingParameter", kind: .invalid, message: "The header \(name) is required.", field: name)
                }
                return value
            }
            keyID = authorization.accessKeyID
            nonce = try acs("x-acs-signature-nonce")
            timestamp = try acs("x-acs-date")
            action = try acs("x-acs-action")
            version = try acs("x-acs-version")
            let payloadHash = try acs("x-acs-content-sha256")
            guard payloadHash == AlibabaSignature.hex(Array(SHA256.hash(data: body))),
                  ["host", "x-acs-action", "x-acs-version", "x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256"]
                    .allSatisfy(authorization.signedHeaders.contains) else {
                throw Self.signatureMismatch
            }
            var signed: [(String, String)] = []
            for name in authorization.signedHeaders {
                if name == "host" {
                    signed.append(("host", request.head.authority ?? ""))
                } else if let field = HTTPField.Name(name) {
                    signed += request.headers[values: field].map { (name, $0) }
                }
            }
            let method = request.method.rawValue, path = request.uri.path, query = Self.form(request.uri.query ?? ""), headers = signed
            check = { secret in
                constantTimeEquals(Array(AlibabaSignature.v3(method: method, path: path, query: query, headers: headers,
                                                             signedHeaders: authorization.signedHeaders, payloadHash: payloadHash, secret: secret).utf8),
                                   Array(authorization.signature.lowercased().utf8))
            }
        } else {
            guard let signature = parameters["Signature"] else {
                throw HeraldError(code: "MissingParameter", kind: .invalid, message: "The request is not signed (Signature or Authorization).",
                                  field: "Signature")
            }
            keyID = try parameters.require("AccessKeyId")
            nonce = try parameters.require("SignatureNonce")
            timestamp = try parameters.require("Timestamp")
            action = try parameters.require("Action")
            version = try parameters.require("Version")
            guard (parameters["SignatureMethod"] ?? "HMAC-SHA1") == "HMAC-SHA1" else {
                throw HeraldError(code: "InvalidParameter", kind: .invalid, message: "SignatureMethod must be HMAC-SHA1.", field: "SignatureMethod")
            }
            let unsigned = parameters.all.filter { $0.0 != "Signature" }, method = request.method.rawValue
            check = { secret in
                constantTimeEquals(Array(AlibabaSignature.v2(method: method, parameters: unsigned, secret: secret).utf8), Array(signature.utf8))
            }
        }
        guard version == Self.version else {
            throw HeraldError(code: "InvalidVersion", kind: .invalid, message: "Specified parameter Version is not valid: use 2015-11-23.", field: "Version")
        }
        guard let date = AlibabaSignature.timestamp(timestamp) else {
            throw HeraldError(code: "InvalidTimeStamp.Format", kind: .invalid, message: "Specified time stamp is not in ISO 8601 UTC form.")
        }
        guard abs(date.timeIntervalSince(now())) <= Self.window else {
            throw HeraldError(code: "InvalidTimeStamp.Expired", kind: .invalid, message: "Specified time stamp or date value is expired (15 minutes).")
        }
        guard nonce.utf8.count <= 128 else {
            throw HeraldError(code: "InvalidParameter", kind: .invalid, message: "The signature nonce is too long.", field: "SignatureNonce")
        }
        guard let (owner, secret) = try await auth.signingSecret(accessKeyID: keyID) else {
            throw HeraldError(code: "InvalidAccessKeyId.NotFound", kind: .notFound, message: "Specified access key is not found.")
        }
        guard check(secret) else { throw Self.signatureMismatch }
        guard try await auth.useNonce(nonce, owner: owner, accessKeyID: keyID, now: now()) else {
            throw HeraldError(code: "SignatureNonceUsed", kind: .invalid, message: "Specified signature nonce was used already.")
        }
        guard let principal = try await auth.principal(tenantID: owner.tenantID, userID: owner.userID, accessKeyID: keyID) else {
            throw HeraldError(code: "InvalidAccessKeyId.NotFound", kind: .notFound, message: "Specified access key is not found.")
        }
        if principal.tenantStatus == .banned { throw HeraldError.accountBanned }
        if case .limited(let retryAfter) = tenantLimiter.acquire(principal.tenantID.uuidString) { throw HeraldError.rateLimited(retryAfter: retryAfter) }
        return (action, principal)
    }

    static let signatureMismatch = HeraldError(code: "SignatureDoesNotMatch", kind: .invalid,
                                               message: "Specified signature is not matched with our calculation.")

    /// The RAM action of each action on the whole tenant (the management actions on one object authorize in
    /// ``manage(_:parameters:principal:actor:)``); the same names as the REST routes'.
    static let tenantActions: [String: String] = [
        "SingleSendMail": "dm:SingleSendMail", "BatchSendMail": "dm:BatchSendMail", "DescAccountSummary": "dm:DescAccountSummary",
        "GetIpProtection": "dm:GetIpProtection", "UpdateIpProtection": "dm:UpdateIpProtection",
        "SenderStatisticsByTagNameAndBatchID": "dm:QueryStatistics", "SenderStatisticsDetailByParam": "dm:QueryMailByParam",
        "CreateUserSuppression": "dm:AddSuppression", "ListUserSuppression": "dm:QuerySuppression", "RemoveUserSuppression": "dm:RemoveSuppression",
        "QueryDomainByParam": "dm:QueryDomainByParam", "QueryMailAddressByParam": "dm:QueryMailAddressByParam",
        "QueryTagByParam": "dm:QueryTagByParam", "QueryTemplateByParam": "dm:QueryTemplateByParam",
        "QueryReceiverByParam": "dm:QueryReceiverByParam", "QueryTaskByParam": "dm:QueryTaskByParam",
    ]

    /// Runs an action as the principal; answers the fields of its reply.
    func perform(_ action: String, parameters: Parameters, principal: Principal, context: HeraldRequestContext) async throws -> [String: any Sendable] {
        if let ram = Self.tenantActions[action] { try principal.authorize(action: ram, resource: principal.tenantResource) }
        switch action {
        case "SingleSendMail":
            try principal.checkMaySend(from: context.clientIP)
            let to = try parameters.require("ToAddress").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            var headers: [String: String] = [:]
            if let text = parameters.optional("Headers") {
                guard let decoded = try? JSONDecoder().decode([String: String].self, from: Data(text.utf8)) else {
                    throw HeraldError(code: "InvalidHeaders.Malformed", kind: .invalid, message: "Headers must be a JSON object of strings.", field: "Headers")
                }
                headers = decoded
            }
            let send = try SendRules.validate(SingleSendRequest(
                from: try parameters.require("AccountName"), fromAlias: parameters.optional("FromAlias"), to: to,
                subject: try parameters.require("Subject"), html: parameters.optional("HtmlBody"),
                text: parameters.optional("TextBody"), replyTo: nil,
                tag: parameters.optional("TagName"), headers: headers,
                tracking: parameters["ClickTrace"].map { $0 == "1" }))
            try await senders.authorizeSend(principal, action: "dm:SingleSendMail", from: send.from.description)
            try senderRate.check(tenantID: principal.tenantID, sender: send.from.description)
            let (result, _) = try await acceptBatcher.accept(.init(tenantID: principal.tenantID, send: send, idempotency: nil, now: now()))
            return ["EnvId": result.requestId.lowercased]
        case "BatchSendMail":
            try principal.checkMaySend(from: context.clientIP)
            let templateName = try parameters.require("TemplateName"), listName = try parameters.require("ReceiversName")
            try await senders.authorizeSend(principal, action: "dm:BatchSendMail", from: try parameters.require("AccountName"))
            try senderRate.check(tenantID: principal.tenantID, sender: try parameters.require("AccountName"))
            let (templateID, listID) = try await batches.resolve(tenantID: principal.tenantID, template: templateName, list: listName)
            guard let templateID else {
                throw HeraldError(code: "InvalidTemplate.NotFound", kind: .notFound, message: "The template \(templateName) was not found.", field: "TemplateName")
            }
            guard let listID else {
                throw HeraldError(code: "InvalidReceiver.NotExists", kind: .notFound, message: "The receivers list \(listName) was not found.", field: "ReceiversName")
            }
            let id = try await batches.submit(tenantID: principal.tenantID, templateID: templateID, listID: listID,
                                              from: try parameters.require("AccountName"), tag: parameters.optional("TagName"),
                                              scheduledAt: nil, now: now(), actor: context.auditActor)
            return ["EnvId": id.lowercased]
        case "DescAccountSummary":
            let account = try await grades.account(tenantID: principal.tenantID, now: now())
            let (domains, senders, tags, templates, lists) = try await grades.resourceCounts(tenantID: principal.tenantID)
            // UserStatus as Direct Mail numbers it: 0 normal, 1 frozen; Herald adds 4 for banned.
            let status = ["active": 0, "frozen": 1, "banned": 4][account.status] ?? 0
            return ["DailyQuota": account.dailyQuota, "MonthQuota": account.monthlyQuota, "QuotaLevel": account.grade,
                    "MaxQuotaLevel": account.gradeCeiling, "DailyRemainFreeQuota": account.freeRemaining, "RemainFreeQuota": account.freeRemaining,
                    "UserStatus": status, "Domains": domains, "MailAddresses": senders, "Tags": tags, "Templates": templates, "Receivers": lists,
                    "EnableTimes": 0, "SmsRecord": 0, "SmsSign": 0, "SmsTemplates": 0]
        case "GetIpProtection":
            return ["IpProtection": try await identity.ipProtection(tenantID: principal.tenantID).enabled ? "on" : "off"]
        case "UpdateIpProtection":
            let value = try parameters.require("IpProtection")
            guard value == "on" || value == "off" else {
                throw HeraldError(code: "InvalidParameter", kind: .invalid, message: "IpProtection must be on or off.", field: "IpProtection")
            }
            // The switch only; the allowlist itself is managed with PUT /v1/ip-protection.
            let current = try await identity.ipProtection(tenantID: principal.tenantID)
            let allowlist = try IPAllowlist.parse(enabled: value == "on", entries: current.allow)
            _ = try await identity.setIPProtection(tenantID: principal.tenantID, allowlist: allowlist, actor: context.auditActor)
            return [:]
        case "SenderStatisticsByTagNameAndBatchID":
            let from = try parameters.require("StartTime"), until = try parameters.require("EndTime")
            guard let start = StatsDay.parse(from), let end = StatsDay.parse(until), start <= end, end.timeIntervalSince(start) < 366 * 86_400 else {
                throw HeraldError(code: "InvalidParameter", kind: .invalid, message: "StartTime and EndTime must be days like 2026-11-01, at most a year apart.",
                                  field: "StartTime")
            }
            let (items, _) = try await stats.stats(tenantID: principal.tenantID, from: from, until: until, groupBy: .day,
                                                   sender: parameters.optional("AccountName")?.lowercased(),
                                                   tag: parameters.optional("TagName"))
            func percent(_ part: Int64, _ whole: Int64) -> String { whole == 0 ? "0.00%" : String(format: "%.2f%%", Double(part) * 100 / Double(whole)) }
            let rows: [[String: any Sendable]] = items.map { day in
                // Direct Mail's columns: requests, delivered, failed (hard bounces, spam rejections, retries given up) and
                // unavailable (invalid addresses and dropped recipients).
                let failed = day.hardBounces + day.spamRejections + day.failed, unavailable = day.invalid + day.dropped
                return ["CreateTime": day.key, "requestCount": Int(day.requests), "successCount": Int(day.delivered), "faildCount": Int(failed),
                        "unavailableCount": Int(unavailable), "succeededPercent": percent(day.delivered, day.requests),
                        "unavailablePercent": percent(unavailable, day.requests)]
            }
            return ["TotalCount": rows.count, "data": ["stat": rows]]
        case "SenderStatisticsDetailByParam":
            // Direct Mail's status numbers: 0 delivered, 2 invalid address (hard bounce), 3 spam, 4 failed.
            let byNumber = ["0": "delivered", "2": "bounced", "3": "spam_rejected", "4": "failed"]
            let numbers = Dictionary(uniqueKeysWithValues: byNumber.map { ($0.value, Int($0.key) ?? 4) })
            var status: String?
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
            if found.count == length, let last = found.last { reply["NextStart"] = last.id.uuidString.lowercased() }
            return reply
        case "CreateUserSuppression":
            let address = try parameters.require("Address")
            let record = try await sending.addSuppression(tenantID: principal.tenantID, address: address, actor: context.auditActor)
            return ["SuppressionId": record.address]
        case "ListUserSuppression":
            let filter = (parameters["Address"] ?? "").lowercased()
            let rows: [[String: any Sendable]] = try await sending.listSuppressions(tenantID: principal.tenantID)
                .filter { filter.isEmpty || $0.address.contains(filter) }
                .map { ["SuppressionId": $0.address, "Address": $0.address, "Type": $0.source == "api" ? "user" : $0.source,
                        "CreateTime": Int($0.createdAt.timeIntervalSince1970), "LastBounceTime": 0] }
            let (page, size) = try Self.page(parameters)
            return ["PageNumber": page, "PageSize": size, "TotalCount": rows.count,
                    "Data": ["UserSuppressions": Array(rows.dropFirst((page - 1) * size).prefix(size))]]
        case "RemoveUserSuppression":
            for address in try parameters.require("SuppressionIds").split(separator: ",") {
                try await sending.removeSuppression(tenantID: principal.tenantID, address: address.trimmingCharacters(in: .whitespaces).lowercased(),
                                                    actor: context.auditActor)
            }
            return [:]
        case "CreateDomain", "CheckDomain", "DeleteDomain", "CreateMailAddress", "DeleteMailAddress", "CreateTag", "DeleteTag",
             "CreateReceiver", "DeleteReceiver", "SaveReceiverDetail", "QueryReceiverDetail", "DeleteReceiverDetail":
            return try await manage(action, parameters: parameters, principal: principal, actor: context.auditActor)
        case "QueryDomainByParam", "QueryMailAddressByParam", "QueryTagByParam", "QueryTemplateByParam", "QueryReceiverByParam", "QueryTaskByParam":
            return try await query(action, parameters: parameters, tenantID: principal.tenantID)
        default:
            throw HeraldError(code: "InvalidAction.NotFound", kind: .notFound,
                              message: "Specified api is not found, please check your url and method (see docs/design.md for the actions Herald answers).")
        }
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
                let verified = domain.status == "verified" ? 0 : 1
                if let status, status != verified { continue }
                let spf = domain.checks.first { $0.purpose == .spf }?.status == .ok
                rows.append(["DomainId": domain.id.uuidString.lowercased(), "DomainName": domain.name, "DomainStatus": verified,
                             "DomainRecord": domain.verificationToken, "SpfAuthStatus": spf ? "0" : "1", "CreateTime": time(domain.createdAt),
                             "UtcCreateTime": Int(domain.createdAt.timeIntervalSince1970)])
            }
        case "QueryMailAddressByParam":
            item = "mailAddress"
            let type = parameters.optional("Sendtype")
            for sender in try await senders.list(tenantID: tenantID) where matches(sender.address) && (type == nil || type == sender.type) {
                rows.append(["MailAddressId": sender.id.uuidString.lowercased(), "AccountName": sender.address, "Sendtype": sender.type,
                             "AccountStatus": "0", "ReplyAddress": sender.replyTo ?? "", "ReplyStatus": sender.replyToStatus == "verified" ? "0" : "1",
                             "CreateTime": time(sender.createdAt)])
            }
        case "QueryTagByParam":
            item = "tag"
            for tag in try await senders.listTags(tenantID: tenantID) where matches(tag.name) {
                rows.append(["TagId": tag.id.uuidString.lowercased(), "TagName": tag.name, "TagDescription": ""])
            }
        case "QueryTemplateByParam":
            item = "template"
            // TemplateStatus as Direct Mail numbers it: 0 under review, 1 approved, 2 rejected; -1 a draft.
            let statuses = ["pending": 0, "approved": 1, "rejected": 2, "draft": -1]
            for template in try await templates.list(tenantID: tenantID, status: nil) where matches(template.name) {
                let number = statuses[template.status] ?? -1
                if let status, status != number { continue }
                rows.append(["TemplateId": template.id.uuidString.lowercased(), "TemplateName": template.name, "TemplateStatus": String(number),
                             "TemplateType": template.kind == .batch ? 1 : 0, "TemplateComment": template.reviewReasons.joined(separator: "; "),
                             "CreateTime": time(template.createdAt), "UtcCreatetime": Int(template.createdAt.timeIntervalSince1970)])
            }
        case "QueryTaskByParam":
            item = "task"
            for task in try await batches.list(tenantID: tenantID, status: nil, limit: 1_000, before: nil) where matches(task.template) {
                rows.append(["TaskId": task.id.uuidString.lowercased(), "TaskStatus": task.status, "TemplateName": task.template,
                             "ReceiversName": task.list, "TagName": task.tag ?? "", "RequestCount": String(task.total), "AddressType": "1",
                             "CreateTime": time(task.createdAt), "UtcCreateTime": Int(task.createdAt.timeIntervalSince1970)])
            }
        default:
            item = "receiver"
            for list in try await lists.list(tenantID: tenantID) where matches(list.name) {
                rows.append(["ReceiverId": list.id.uuidString.lowercased(), "ReceiversName": list.name, "ReceiversAlias": list.alias ?? "",
                             "Desc": list.description ?? "", "Count": list.memberCount, "ReceiversStatus": "1", "CreateTime": time(list.createdAt),
                             "UtcCreateTime": Int(list.createdAt.timeIntervalSince1970)])
            }
        }
        let (page, size) = try Self.page(parameters)
        let slice = Array(rows.dropFirst((page - 1) * size).prefix(size))
        return ["PageNumber": page, "PageSize": size, "TotalCount": rows.count, "data": [item: slice]]
    }

    /// The management actions, on the services of their REST routes and under the same RAM actions.
    func manage(_ action: String, parameters: Parameters, principal: Principal, actor: AuditActor) async throws -> [String: any Sendable] {
        let tenant = principal.tenantID
        func id(_ name: String) throws(HeraldError) -> UUID {
            guard let id = UUID(uuidString: try parameters.require(name)) else {
                throw HeraldError(code: "InvalidParameter", kind: .invalid, message: "\(name) is not a valid id.", field: name)
            }
            return id
        }
        func authorize(_ kind: String?, _ object: UUID?) throws(HeraldError) {
            let resource = kind.flatMap { kind in object.map { principal.resource(kind, $0.uuidString.lowercased()) } } ?? principal.tenantResource
            try principal.authorize(action: "dm:" + action, resource: resource)
        }
        /// The object the parameter names, once the signer may act on it.
        func object(_ name: String, _ kind: String) throws(HeraldError) -> UUID {
            let object = try id(name)
            try authorize(kind, object)
            return object
        }
        switch action {
        case "CreateDomain":
            try authorize(nil, nil)
            let domain = try await domains.create(tenantID: tenant, name: try parameters.require("DomainName"), keyBits: 2048, actor: actor, now: now())
            return ["DomainId": domain.id.uuidString.lowercased()]
        case "CheckDomain":
            let domainID = try object("DomainId", "domain")
            let domain = try await verifier.verify(tenantID: tenant, id: domainID, actor: actor)
            return ["DomainStatus": domain.status == "verified" ? 0 : 1]
        case "DeleteDomain":
            let domainID = try object("DomainId", "domain")
            try await domains.delete(tenantID: tenant, id: domainID, actor: actor)
        case "CreateMailAddress":
            try authorize(nil, nil)
            let type = try parameters.require("Sendtype")
            let reply = parameters.optional("ReplyAddress")
            let (sender, _) = try await senders.create(tenantID: tenant, address: try parameters.require("AccountName"), type: type, replyTo: reply, actor: actor)
            return ["MailAddressId": sender.id.uuidString.lowercased()]
        case "DeleteMailAddress":
            let senderID = try object("MailAddressId", "sender")
            try await senders.delete(tenantID: tenant, id: senderID, actor: actor, now: now())
        case "CreateTag":
            try authorize(nil, nil)
            return ["TagId": try await senders.createTag(tenantID: tenant, name: try parameters.require("TagName"), actor: actor).id.uuidString.lowercased()]
        case "DeleteTag":
            let tagID = try object("TagId", "tag")
            try await senders.deleteTag(tenantID: tenant, id: tagID, actor: actor)
        case "CreateReceiver":
            try authorize(nil, nil)
            let list = try await lists.create(tenantID: tenant, name: try parameters.require("ReceiversName"),
                                              alias: parameters.optional("ReceiversAlias"),
                                              description: parameters.optional("Desc"), actor: actor)
            return ["ReceiverId": list.id.uuidString.lowercased()]
        case "DeleteReceiver":
            let listID = try object("ReceiverId", "list")
            try await lists.delete(tenantID: tenant, id: listID, actor: actor)
        case "SaveReceiverDetail":
            let listID = try object("ReceiverId", "list")
            // Detail: [{"e": address, "u": user name, "n": nickname, "g": gender, "b": birthday, "m": mobile}, …].
            guard let rows = try? JSONSerialization.jsonObject(with: Data(try parameters.require("Detail").utf8)) as? [[String: Any]] else {
                throw HeraldError(code: "InvalidParameter", kind: .invalid, message: "Detail must be a JSON array of objects with e (the address).",
                                  field: "Detail")
            }
            let names = ["u": "UserName", "n": "NickName", "g": "Gender", "b": "Birthday", "m": "Mobile"]
            var candidates: [RecipientImport.Candidate] = [], rejected: [RecipientImport.Rejection] = []
            for (index, row) in rows.enumerated() {
                var variables: [String: String] = [:]
                for (key, value) in row where key != "e" { variables[names[key] ?? key] = "\(value)" }
                switch RecipientImport.check(row: index + 1, address: row["e"] as? String ?? "", variables: variables) {
                case .success(let candidate): candidates.append(candidate)
                case .failure(let rejection): rejected.append(rejection)
                }
            }
            let result = try await lists.importMembers(tenantID: tenant, listID: listID, candidates: candidates, rejected: rejected, actor: actor)
            return ["SuccessCount": result.imported, "ErrorCount": result.rejected.count,
                    "Data": ["Detail": result.rejected.map { ["Email": rows[$0.row - 1]["e"] as? String ?? "", "ErrMessage": $0.reason] as [String: any Sendable] }]]
        case "QueryReceiverDetail":
            let listID = try object("ReceiverId", "list")
            let size = Int(parameters["PageSize"] ?? "10") ?? 0
            guard (1...100).contains(size) else {
                throw HeraldError(code: "InvalidParameter", kind: .invalid, message: "PageSize must be 1 to 100.", field: "PageSize")
            }
            let list = try await lists.get(tenantID: tenant, id: listID)
            let members = try await lists.members(tenantID: tenant, listID: listID, limit: size,
                                                  after: parameters.optional("NextStart"))
            let rows: [[String: any Sendable]] = members.map { member in
                let data = (try? JSONSerialization.data(withJSONObject: member.variables, options: [.sortedKeys])).map { String(decoding: $0, as: UTF8.self) }
                return ["Email": member.address, "Data": data ?? "{}", "CreateTime": Self.detailTime.string(from: member.createdAt),
                        "UtcCreateTime": Int(member.createdAt.timeIntervalSince1970)]
            }
            var reply: [String: any Sendable] = ["TotalCount": list.memberCount, "data": ["detail": rows]]
            if members.count == size, let last = members.last { reply["NextStart"] = last.address }
            return reply
        default: // DeleteReceiverDetail
            let listID = try object("ReceiverId", "list")
            try await lists.deleteMember(tenantID: tenant, listID: listID, address: try parameters.require("Email").lowercased(), actor: actor)
        }
        return [:]
    }

    /// `PageNo` (from 1) and `PageSize` (1 to 100, 10 by default).
    static func page(_ parameters: Parameters) throws(HeraldError) -> (page: Int, size: Int) {
        guard let page = Int(parameters["PageNo"] ?? "1"), page >= 1, let size = Int(parameters["PageSize"] ?? "10"), (1...100).contains(size) else {
            throw HeraldError(code: "InvalidParameter", kind: .invalid, message: "PageNo must be 1 or more and PageSize 1 to 100.", field: "PageSize")
        }
        return (page, size)
    }

    /// Direct Mail's detail times, `2026-11-26 10:00`, and CreateTime form, `2026-11-26T06:30Z` (UTC).
    static let detailTime = utcFormatter("yyyy-MM-dd HH:mm"), createTime = utcFormatter("yyyy-MM-dd'T'HH:mm'Z'")

    static func utcFormatter(_ format: String) -> DateFormatter {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = format
        return formatter
    }

    /// `a=1&b=x%20y` (also `+` for space) as pairs, in order.
    static func form(_ text: String) -> [(String, String)] {
        text.split(separator: "&").compactMap { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ part: Substring) -> String {
                String(part).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(part)
            }
            guard let name = parts.first, !name.isEmpty else { return nil }
            return (decode(name), parts.count == 2 ? decode(parts[1]) : "")
        }
    }

    static func json(_ status: HTTPResponse.Status, _ fields: [String: any Sendable]) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json;charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
