import Foundation
import HeraldCore
import HeraldStore

/// The account's own settings and lists over the compatibility endpoint: DescAccountSummary, the IP protection
/// switch, the user suppression list — on the services of their REST routes.
extension DirectMailCompat {
    /// DescAccountSummary, GetIpProtection, UpdateIpProtection and the …UserSuppression actions.
    func account(_ action: String, parameters: Parameters, principal: Principal, context: HeraldRequestContext) async throws -> [String: any Sendable] {
        switch action {
        case "DescAccountSummary":
            let account = try await grades.account(tenantID: principal.tenantID, now: now())
            let (domains, senders, tags, templates, lists) = try await grades.resourceCounts(tenantID: principal.tenantID)
            // UserStatus as Direct Mail numbers it: 0 normal, 1 frozen; Herald adds 4 for banned.
            let status = [TenantStatus.active: 0, .frozen: 1, .banned: 4][account.status] ?? 0
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
        default: // RemoveUserSuppression
            for address in try parameters.require("SuppressionIds").split(separator: ",") {
                try await sending.removeSuppression(tenantID: principal.tenantID, address: address.trimmingCharacters(in: .whitespaces).lowercased(),
                                                    actor: context.auditActor)
            }
            return [:]
        }
    }
}
