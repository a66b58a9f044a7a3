import Foundation
import HeraldCore
import HeraldStore

/// The account's own settings and lists over the compatibility endpoint: DescAccountSummary, the IP protection
/// switch, the user suppression list — on the services of their REST routes.
extension DirectMailCompat {
    /// DescAccountSummary, GetIpProtection, UpdateIpProtection, the IP filter entries, SetMaxQuotaLevel,
    /// DeleteInvalidAddress and the …UserSuppression actions.
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
        case "AddIpfilter":
            // An entry of the IP allowlist (the switch is UpdateIpProtection's); its id is the entry itself.
            let entry = try parameters.require("IpAddress")
            guard let network = IPNetwork(entry) else {
                throw HeraldError(code: "InvalidParameter", kind: .invalid, message: "IpAddress must be an IPv4/IPv6 address or CIDR.", field: "IpAddress")
            }
            _ = try await identity.changeIPAllowlist(tenantID: principal.tenantID, actor: context.auditActor) { $0 + [network.description] }
            return ["IpFilterId": network.description]
        case "GetIpfilterList":
            let protection = try await identity.ipProtection(tenantID: principal.tenantID)
            let created = Self.detailTime.string(from: protection.updatedAt ?? now())
            let rows: [[String: any Sendable]] = protection.allow.map { ["Id": $0, "IpAddress": $0, "CreateTime": created] }
            let (page, size) = try Self.page(parameters)
            return ["PageNumber": page, "PageSize": size, "TotalCount": rows.count,
                    "data": ["ipfilters": Array(rows.dropFirst((page - 1) * size).prefix(size))]]
        case "DeleteIpfilterByEdmId":
            let id = try parameters.require("Id")
            let entry = IPNetwork(id)?.description ?? id
            // Looked for under the row's lock, in the change itself.
            _ = try await identity.changeIPAllowlist(tenantID: principal.tenantID, actor: context.auditActor) { (entries) throws(HeraldError) in
                guard entries.contains(entry) else {
                    throw HeraldError(code: "InvalidIpfilter.NotFound", kind: .notFound, message: "No IP filter \(id.prefix(64)).", field: "Id")
                }
                return entries.filter { $0 != entry }
            }
            return [:]
        case "SetMaxQuotaLevel":
            // The tenant's own ceiling on its grade (PUT /v1/account/grade-ceiling).
            guard let level = Int(try parameters.require("MaxQuotaLevel")) else {
                throw HeraldError(code: "InvalidParameter", kind: .invalid, message: "MaxQuotaLevel must be a grade from 9 to 16.", field: "MaxQuotaLevel")
            }
            let account = try await grades.setCeiling(tenantID: principal.tenantID, ceiling: level, actor: context.auditActor, now: now())
            return ["MaxQuotaLevel": account.gradeCeiling]
        case "DeleteInvalidAddress":
            try await sending.removeInvalidAddress(tenantID: principal.tenantID, address: try parameters.require("ToAddress"), actor: context.auditActor)
            return [:]
        default: // RemoveUserSuppression
            for address in try parameters.require("SuppressionIds").split(separator: ",") {
                try await sending.removeSuppression(tenantID: principal.tenantID, address: address.trimmingCharacters(in: .whitespaces).lowercased(),
                                                    actor: context.auditActor)
            }
            return [:]
        }
    }
}
