import Foundation
import HeraldCore
import HeraldStore

/// The operator API under `/admin/v1` (``AccessMiddleware`` checked `HERALD_ADMIN_TOKEN`).
extension APIHandler {
    func adminCreateTenant(_ input: Operations.AdminCreateTenant.Input) async throws -> Operations.AdminCreateTenant.Output {
        guard case .json(let body) = input.body else { throw HeraldError.validation("Send name.") }
        let kind: TenantKind = body.kind == .personal ? .personal : .enterprise
        let created = try await tenants.create(name: body.name, kind: kind, grade: body.grade, actor: try RequestScope.current().auditActor)
        return .created(.init(body: .json(.init(tenantId: created.tenant.id.lowercased, name: created.tenant.name,
                                                accessKeyId: created.accessKeyID, accessKeySecret: created.accessKeySecret))))
    }

    func adminListTenants(_ input: Operations.AdminListTenants.Input) async throws -> Operations.AdminListTenants.Output {
        let limit = try QueryParameters.limit(input.query.limit)
        let status = input.query.status.flatMap { TenantStatus(rawValue: $0.rawValue) }
        let items = try await tenants.list(status: status, limit: limit, after: try QueryParameters.uuidCursor(input.query.cursor))
        return .ok(.init(body: .json(.init(items: items.map(Components.Schemas.Tenant.init),
                                           nextCursor: QueryParameters.nextCursor(items.map(\.id), limit: limit)))))
    }

    func adminListProcesses(_ input: Operations.AdminListProcesses.Input) async throws -> Operations.AdminListProcesses.Output {
        .ok(.init(body: .json(.init(items: try await processes.list().map(Components.Schemas.HeraldProcess.init)))))
    }

    func adminGetTenant(_ input: Operations.AdminGetTenant.Input) async throws -> Operations.AdminGetTenant.Output {
        guard let tenant = try await tenants.get(try uuidPath(input.path.id, what: "tenant")) else { throw HeraldError.notFound("tenant") }
        return .ok(.init(body: .json(.init(tenant))))
    }

    func adminFreezeTenant(_ input: Operations.AdminFreezeTenant.Input) async throws -> Operations.AdminFreezeTenant.Output {
        let reason: String? = if case .json(let body) = input.body { body.reason } else { nil }
        return .ok(.init(body: .json(try await changeTenant(input.path.id, .freeze, reason: reason))))
    }

    func adminUnfreezeTenant(_ input: Operations.AdminUnfreezeTenant.Input) async throws -> Operations.AdminUnfreezeTenant.Output {
        let reason: String? = if case .json(let body) = input.body { body.reason } else { nil }
        return .ok(.init(body: .json(try await changeTenant(input.path.id, .unfreeze, reason: reason))))
    }

    func adminBanTenant(_ input: Operations.AdminBanTenant.Input) async throws -> Operations.AdminBanTenant.Output {
        let reason: String? = if case .json(let body) = input.body { body.reason } else { nil }
        return .ok(.init(body: .json(try await changeTenant(input.path.id, .ban, reason: reason))))
    }

    func adminRotateSigningKey(_ input: Operations.AdminRotateSigningKey.Input) async throws -> Operations.AdminRotateSigningKey.Output {
        let kid = try await keys.rotate()
        return .ok(.init(body: .json(.init(kid: kid, createdAt: now()))))
    }

    private func changeTenant(_ id: String, _ change: TenantStore.StatusChange, reason: String?) async throws -> Components.Schemas.Tenant {
        let tenant = try await tenants.change(try uuidPath(id, what: "tenant"), change, reason: try OperatorReason.validate(reason),
                                              actor: try RequestScope.current().auditActor)
        return .init(tenant)
    }
}

/// Product limits per tenant.
extension APIHandler {
    func adminGetTenantLimits(_ input: Operations.AdminGetTenantLimits.Input) async throws -> Operations.AdminGetTenantLimits.Output {
        let id = try uuidPath(input.path.id, what: "tenant")
        let overrides = try await tenants.limitOverrides(id)
        return .ok(.init(body: .json(try limitsBody(overrides, kind: try await tenants.get(id)?.kind ?? .enterprise,
                                                    quotas: try await tenants.quotaTable(id)))))
    }

    func adminSetTenantLimits(_ input: Operations.AdminSetTenantLimits.Input) async throws -> Operations.AdminSetTenantLimits.Output {
        guard case .json(let body) = input.body else { throw HeraldError.validation("Send the limits to override.") }
        let given: [String: Int?] = [
            "users": body.users, "accessKeysPerUser": body.accessKeysPerUser, "policies": body.policies, "domains": body.domains,
            "senders": body.senders, "senderDeletionsPerMonth": body.senderDeletionsPerMonth, "tags": body.tags, "templates": body.templates,
            "lists": body.lists, "listMembers": body.listMembers, "invalidAddressRemovalsPerMonth": body.invalidAddressRemovalsPerMonth,
            "recipientsPerSend": body.recipientsPerSend, "subjectLength": body.subjectLength, "bodyBytes": body.bodyBytes,
        ]
        let id = try uuidPath(input.path.id, what: "tenant")
        // Both checked before either is written.
        let quotas = try body.dailyQuotas.map { daily throws(HeraldError) in try QuotaTable(daily) }
        _ = try ProductLimits().applying(given.compactMapValues { $0 })
        let actor = try RequestScope.current().auditActor
        let overrides = try await tenants.setLimitOverrides(id, given.compactMapValues { $0 }, actor: actor)
        try await tenants.setQuotaTable(id, quotas, actor: actor)
        return .ok(.init(body: .json(try limitsBody(overrides, kind: try await tenants.get(id)?.kind ?? .enterprise, quotas: quotas))))
    }

    /// The limits in force for a tenant of `kind` (sender deletions a month follow the kind unless overridden).
    private func limitsBody(_ overrides: [String: Int], kind: TenantKind, quotas: QuotaTable?) throws -> Components.Schemas.TenantLimits {
        let limits = try productLimits.applying(overrides)
        let daily = quotas?.daily ?? grades.thresholds.quotas
        return .init(limits: .init(users: limits.users, accessKeysPerUser: limits.accessKeysPerUser, policies: limits.policies,
                                   domains: limits.domains, senders: limits.senders, senderDeletionsPerMonth: limits.senderDeletions(kind: kind),
                                   tags: limits.tags, templates: limits.templates, lists: limits.lists, listMembers: limits.listMembers,
                                   invalidAddressRemovalsPerMonth: limits.invalidAddressRemovalsPerMonth, recipientsPerSend: limits.recipientsPerSend,
                                   subjectLength: limits.subjectLength, bodyBytes: limits.bodyBytes, dailyQuotas: daily),
                     overrides: .init(additionalProperties: overrides))
    }
}

/// The installation's content rules (the sensitive words), for the operator.
extension APIHandler {
    func adminGetContentRules(_ input: Operations.AdminGetContentRules.Input) async throws -> Operations.AdminGetContentRules.Output {
        .ok(.init(body: .json(.init(try await requireContentRules().rules()))))
    }

    func adminSetContentRules(_ input: Operations.AdminSetContentRules.Input) async throws -> Operations.AdminSetContentRules.Output {
        guard case .json(let body) = input.body else { throw HeraldError.validation("Send sensitiveWords (a list, or null).") }
        let rules = try await requireContentRules().setSensitiveWords(body.sensitiveWords, actor: try RequestScope.current().auditActor)
        return .ok(.init(body: .json(.init(rules))))
    }

    func requireContentRules() throws(HeraldError) -> ContentRulesStore {
        guard let contentRules else { throw HeraldError(code: "Internal", kind: .internal, message: "Content rules are not configured here.") }
        return contentRules
    }
}

extension Components.Schemas.ContentRules {
    init(_ rules: ContentRulesStore.Rules) {
        self.init(sensitiveWords: rules.sensitiveWords, source: rules.source == "operator" ? ._operator : .configuration, updatedAt: rules.updatedAt)
    }
}
