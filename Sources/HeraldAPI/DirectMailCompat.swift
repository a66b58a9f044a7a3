import Crypto
import Foundation
import HTTPTypes
import HeraldCore
import HeraldDelivery
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
    /// The one accept road of every send.
    let accept: AcceptService
    let batches: BatchStore
    let database: Database
    let grades: GradeStore
    let domains: DomainStore
    /// The records a domain must publish (DescDomain).
    let domainSettings: SendingDomain.Settings
    let senders: SenderStore
    let templates: TemplateStore
    let lists: ListStore
    let identity: IdentityStore
    let stats: StatsStore
    let sending: SendStore
    let verifier: DomainVerifier
    let tenantLimiter: any RateLimiting
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
            if let (action, scoped) = signer, let principal = scoped.principal, !failure.kind.isServerFault, !Self.reads(action) {
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
        "GetTrackList": "dm:QueryStatistics", "GetTrackListByMailFromAndTagName": "dm:QueryStatistics",
        "QueryInvalidAddress": "dm:QueryInvalidAddress", "DeleteInvalidAddress": "dm:RemoveInvalidAddress",
        "AddIpfilter": "dm:UpdateIpProtection", "DeleteIpfilterByEdmId": "dm:UpdateIpProtection", "GetIpfilterList": "dm:GetIpProtection",
        "SetMaxQuotaLevel": "dm:UpdateGradeCeiling",
    ]

    /// Whether an action only reads (its refusals are not audited).
    static func reads(_ action: String) -> Bool { ["Desc", "Query", "Get", "List"].contains { action.hasPrefix($0) } }

    /// Actions of the 2015-11-23 API that Herald does not answer, each with the reason (docs/directmail.md lists
    /// them with the rest): answered with `InvalidAction.Unsupported` and that reason.
    static let unsupported: [String: String] = {
        var reasons: [String: String] = [:]
        func refuse(_ actions: String, _ reason: String) {
            for action in actions.split(separator: " ") { reasons[String(action)] = reason }
        }
        refuse("DedicatedIpAutoRenewal DedicatedIpChangeWarmupType DedicatedIpList DedicatedIpNonePoolList DedicatedIpPoolCreate DedicatedIpPoolDelete "
               + "DedicatedIpPoolList DedicatedIpPoolUpdate GetDedicatedIpWarmUpDetail GetDedicatedIpWarmUpInfo",
               "Dedicated IPs are the operator's: Herald sends from the addresses of the hosts it runs on.")
        refuse("ConfigSetCreate ConfigSetDelete ConfigSetDetail ConfigSetList ConfigSetUpdate ConfigSetRelationFromAddress ConfigSetCancelRelationFromAddress",
               "Configuration sets (IP pools per sender) are not offered: Herald has no dedicated IP pools.")
        refuse("GetSendifyAutoLoginURL GetSendifyInfo OpenSendifyTrialService", "Sendify is an Alibaba Cloud product of its own.")
        refuse("AuthorizeFileUpload SendValidateFile GetValidateFile GetValidateFileStatus ListValidateFile DeleteValidateFile GetValidationQuota "
               + "ValidateEmail CheckDisposable",
               "Address validation (a paid Alibaba Cloud service) is not offered; Herald lists invalid addresses from real bounces (QueryInvalidAddress).")
        refuse("GetSuppressionListLevel SetSuppressionListLevel",
               "Suppressions always apply to the whole account (and to a list or tag where the recipient unsubscribed from one).")
        refuse("ListBlockSending UnblockSending", "Herald does not block recipients by rule; use the suppression list (ListUserSuppression).")
        refuse("GetUser UpdateUser", "Account profiles are kept by the operator, not over this API; sub-users are under /v1/users.")
        refuse("ModifyPWByDomain", "SMTP passwords are per sender address: use ModifyMailAddress with Password.")
        refuse("ChangeDomainDkimRecord", "DKIM keys are rotated with POST /v1/domains/{id}/dkim/rotate.")
        refuse("ApproveReplyMailAddress", "A reply-to address is confirmed by the link mailed to it (CheckReplyToMailAddress mails a new one).")
        refuse("ModifyTag", "Tags cannot be renamed: create a new tag (CreateTag) and delete the old one.")
        refuse("SendTestByTemplate", "Send a test with SingleSendMail, or preview a template with POST /v1/templates/{id}/preview.")
        return reasons
    }()

    /// Runs an action as the principal; answers the fields of its reply.
    func perform(_ action: String, parameters: Parameters, principal: Principal, context: HeraldRequestContext) async throws -> [String: any Sendable] {
        if let ram = Self.tenantActions[action] { try principal.authorize(action: ram, resource: principal.tenantResource) }
        switch action {
        case "SingleSendMail", "BatchSendMail":
            return try await send(action, parameters: parameters, principal: principal, context: context)
        case "DescAccountSummary", "GetIpProtection", "UpdateIpProtection", "CreateUserSuppression", "ListUserSuppression", "RemoveUserSuppression",
             "AddIpfilter", "GetIpfilterList", "DeleteIpfilterByEdmId", "SetMaxQuotaLevel", "DeleteInvalidAddress":
            return try await account(action, parameters: parameters, principal: principal, context: context)
        case "SenderStatisticsByTagNameAndBatchID", "SenderStatisticsDetailByParam", "GetTrackList", "GetTrackListByMailFromAndTagName",
             "QueryInvalidAddress":
            return try await statistics(action, parameters: parameters, principal: principal)
        case "CreateDomain", "CheckDomain", "DeleteDomain", "DescDomain", "CreateMailAddress", "DeleteMailAddress", "ModifyMailAddress",
             "CheckReplyToMailAddress", "CreateTag", "DeleteTag", "CreateReceiver", "DeleteReceiver", "SaveReceiverDetail", "QueryReceiverDetail",
             "DeleteReceiverDetail", "CreateTemplate", "ModifyTemplate", "DeleteTemplate", "DescTemplate":
            return try await manage(action, parameters: parameters, principal: principal, actor: context.auditActor)
        case "QueryDomainByParam", "QueryMailAddressByParam", "QueryTagByParam", "QueryTemplateByParam", "QueryReceiverByParam", "QueryTaskByParam":
            return try await query(action, parameters: parameters, tenantID: principal.tenantID)
        default:
            if let reason = Self.unsupported[action] {
                throw HeraldError(code: "InvalidAction.Unsupported", kind: .invalid, message: "\(action) is not offered by Herald: \(reason)")
            }
            throw HeraldError(code: "InvalidAction.NotFound", kind: .notFound,
                              message: "Specified api is not found, please check your url and method (docs/directmail.md lists the actions Herald answers).")
        }
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
