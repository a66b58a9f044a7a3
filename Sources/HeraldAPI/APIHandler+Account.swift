import Foundation
import HeraldCore
import HeraldStore
import OpenAPIRuntime

/// The account's credit grade and quotas (tenant side) and the operator's manual grade.
extension APIHandler {

    func getAccount(_ input: Operations.GetAccount.Input) async throws -> Operations.GetAccount.Output {
        .ok(.init(body: .json(.init(try await grades.account(tenantID: try caller().tenant, now: now())))))
    }

    func updateGradeCeiling(_ input: Operations.UpdateGradeCeiling.Input) async throws -> Operations.UpdateGradeCeiling.Output {
        guard case .json(let body) = input.body else { throw HeraldError.validation("Send gradeCeiling.") }
        let (tenant, actor) = try caller()
        return .ok(.init(body: .json(.init(try await grades.setCeiling(tenantID: tenant, ceiling: body.gradeCeiling, actor: actor, now: now())))))
    }

    func listGradeHistory(_ input: Operations.ListGradeHistory.Input) async throws -> Operations.ListGradeHistory.Output {
        let decoder = JSONDecoder()
        let items = try await grades.history(tenantID: try caller().tenant).map { record in
            Components.Schemas.GradeChange(
                change: .init(rawValue: record.change) ?? .set, fromGrade: record.fromGrade, toGrade: record.toGrade, reason: record.reason,
                figures: .init(additionalProperties: try decoder.decode(OpenAPIObjectContainer.self, from: Data(record.figuresJSON.utf8))),
                actor: .init(rawValue: record.actor) ?? .system, at: record.at)
        }
        return .ok(.init(body: .json(.init(items: items))))
    }

    func adminSetTenantGrade(_ input: Operations.AdminSetTenantGrade.Input) async throws -> Operations.AdminSetTenantGrade.Output {
        guard case .json(let body) = input.body else { throw HeraldError.validation("Send grade.") }
        let id = try uuidPath(input.path.id, what: "tenant")
        try await grades.setGrade(tenantID: id, grade: body.grade, reason: try OperatorReason.validate(body.reason), actor: try RequestScope.current().auditActor, now: now())
        guard let tenant = try await tenants.get(id) else { throw HeraldError.notFound("tenant") }
        return .ok(.init(body: .json(.init(tenant))))
    }
}

extension Components.Schemas.Account {
    init(_ record: AccountRecord) {
        self.init(grade: record.grade, gradeCeiling: record.gradeCeiling, status: .init(rawValue: record.status.rawValue) ?? .active,
                  dailyQuota: record.dailyQuota, dailyUsed: record.dailyUsed, dailyRemaining: record.dailyRemaining,
                  monthlyQuota: record.monthlyQuota, monthlyUsed: record.monthlyUsed, freeRemaining: record.freeRemaining)
    }
}

/// Mail settings of the account.
extension APIHandler {
    func getAccountSettings(_ input: Operations.GetAccountSettings.Input) async throws -> Operations.GetAccountSettings.Output {
        .ok(.init(body: .json(.init(try await accountSettings.get(tenantID: try caller().tenant)))))
    }

    func updateAccountSettings(_ input: Operations.UpdateAccountSettings.Input) async throws -> Operations.UpdateAccountSettings.Output {
        guard case .json(let body) = input.body else { throw HeraldError.validation("Send trackOpensAndClicks and unsubscribeLinkInTriggerMail.") }
        let (tenant, actor) = try caller()
        let settings = try await accountSettings.set(tenantID: tenant, trackOpensAndClicks: body.trackOpensAndClicks,
                                                     unsubscribeLinkInTriggerMail: body.unsubscribeLinkInTriggerMail,
                                                     messageRetentionDays: body.messageRetentionDays, eventRetentionDays: body.eventRetentionDays,
                                                     actor: actor)
        return .ok(.init(body: .json(.init(settings))))
    }
}

extension Components.Schemas.AccountSettings {
    init(_ settings: AccountSettings) {
        self.init(trackOpensAndClicks: settings.trackOpensAndClicks, unsubscribeLinkInTriggerMail: settings.unsubscribeLinkInTriggerMail,
                  messageRetentionDays: settings.retention.messageDays, eventRetentionDays: settings.retention.eventDays)
    }
}
