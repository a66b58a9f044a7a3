import Foundation
import HeraldCore
import HeraldStore

/// Sub-users, AccessKeys, policies, IP protection and the audit log of the calling tenant.
extension APIHandler {
    // MARK: Users

    func createUser(_ input: Operations.CreateUser.Input) async throws -> Operations.CreateUser.Output {
        guard case .json(let body) = input.body else { throw HeraldError.validation("Send name.") }
        let (tenant, actor) = try caller()
        return .created(.init(body: .json(.init(try await identity.createUser(tenantID: tenant, name: body.name, actor: actor)))))
    }

    func listUsers(_ input: Operations.ListUsers.Input) async throws -> Operations.ListUsers.Output {
        let limit = try QueryParameters.limit(input.query.limit)
        let users = try await identity.listUsers(tenantID: try caller().tenant, limit: limit, after: try QueryParameters.uuidCursor(input.query.cursor))
        return .ok(.init(body: .json(.init(items: users.map(Components.Schemas.User.init), nextCursor: QueryParameters.nextCursor(users.map(\.id), limit: limit)))))
    }

    func getUser(_ input: Operations.GetUser.Input) async throws -> Operations.GetUser.Output {
        .ok(.init(body: .json(.init(try await identity.getUser(tenantID: try caller().tenant, id: try uuidPath(input.path.id, what: "user"))))))
    }

    func updateUser(_ input: Operations.UpdateUser.Input) async throws -> Operations.UpdateUser.Output {
        let id = try uuidPath(input.path.id, what: "user")
        guard case .json(let body) = input.body, body.name != nil || body.enabled != nil else {
            throw HeraldError.validation("Give name and/or enabled.")
        }
        try await guardRootUser(id)
        let (tenant, actor) = try caller()
        return .ok(.init(body: .json(.init(try await identity.updateUser(tenantID: tenant, id: id, name: body.name, enabled: body.enabled, actor: actor)))))
    }

    func deleteUser(_ input: Operations.DeleteUser.Input) async throws -> Operations.DeleteUser.Output {
        let id = try uuidPath(input.path.id, what: "user")
        try await guardRootUser(id)
        let (tenant, actor) = try caller()
        try await identity.deleteUser(tenantID: tenant, id: id, actor: actor)
        return .noContent(.init())
    }

    /// Refuses a sub-user acting on the root user, whatever its policies allow (``RootUserRule``). Which
    /// user is root never changes (the root user cannot be deleted), so reading it before the change is
    /// enough; the root caller and a user acting on itself need no read.
    func guardRootUser(_ userID: UUID) async throws {
        let principal = try RequestScope.current().requirePrincipal()
        guard !principal.isRoot, principal.userID != userID else { return }
        let target = try await identity.getUser(tenantID: principal.tenantID, id: userID)
        try RootUserRule.check(callerIsRoot: principal.isRoot, targetIsRoot: target.root)
    }

    // MARK: AccessKeys

    func createAccessKey(_ input: Operations.CreateAccessKey.Input) async throws -> Operations.CreateAccessKey.Output {
        let userID = try uuidPath(input.path.id, what: "user")
        try await guardRootUser(userID)
        let (tenant, actor) = try caller()
        let (key, secret) = try await identity.createAccessKey(tenantID: tenant, userID: userID, actor: actor)
        return .created(.init(body: .json(.init(accessKeyId: key.accessKeyId, accessKeySecret: secret, userId: key.userId.lowercased, createdAt: key.createdAt))))
    }

    func listAccessKeys(_ input: Operations.ListAccessKeys.Input) async throws -> Operations.ListAccessKeys.Output {
        let userID = try uuidPath(input.path.id, what: "user")
        try await guardRootUser(userID)
        let keys = try await identity.listAccessKeys(tenantID: try caller().tenant, userID: userID)
        return .ok(.init(body: .json(.init(items: keys.map(Components.Schemas.AccessKey.init)))))
    }

    func deleteAccessKey(_ input: Operations.DeleteAccessKey.Input) async throws -> Operations.DeleteAccessKey.Output {
        let userID = try uuidPath(input.path.id, what: "user")
        try await guardRootUser(userID)
        let (tenant, actor) = try caller()
        try await identity.deleteAccessKey(tenantID: tenant, userID: userID, keyID: input.path.accessKeyId, actor: actor)
        return .noContent(.init())
    }

    // MARK: Policies

    func listPoliciesForUser(_ input: Operations.ListPoliciesForUser.Input) async throws -> Operations.ListPoliciesForUser.Output {
        let attached = try await identity.listUserPolicies(tenantID: try caller().tenant, userID: try uuidPath(input.path.id, what: "user"))
        return .ok(.init(body: .json(.init(items: attached.map(Components.Schemas.AttachedPolicy.init)))))
    }

    func attachPolicyToUser(_ input: Operations.AttachPolicyToUser.Input) async throws -> Operations.AttachPolicyToUser.Output {
        let id = try uuidPath(input.path.id, what: "user")
        guard case .json(let body) = input.body else { throw HeraldError.validation("Send policy.") }
        try await guardRootUser(id)
        let (tenant, actor) = try caller()
        return .ok(.init(body: .json(.init(try await identity.attachPolicy(tenantID: tenant, userID: id, name: body.policy, actor: actor)))))
    }

    func detachPolicyFromUser(_ input: Operations.DetachPolicyFromUser.Input) async throws -> Operations.DetachPolicyFromUser.Output {
        let userID = try uuidPath(input.path.id, what: "user")
        try await guardRootUser(userID)
        let (tenant, actor) = try caller()
        try await identity.detachPolicy(tenantID: tenant, userID: userID, name: input.path.policyName, actor: actor)
        return .noContent(.init())
    }

    func createPolicy(_ input: Operations.CreatePolicy.Input) async throws -> Operations.CreatePolicy.Output {
        guard case .json(let body) = input.body else { throw HeraldError.validation("Send name and document.") }
        let document = try body.document.validated()
        let (tenant, actor) = try caller()
        let policy = try await identity.createPolicy(tenantID: tenant, name: body.name, description: body.description ?? "", document: document, actor: actor)
        return .created(.init(body: .json(.init(policy))))
    }

    func listPolicies(_ input: Operations.ListPolicies.Input) async throws -> Operations.ListPolicies.Output {
        .ok(.init(body: .json(.init(items: try await identity.listPolicies(tenantID: try caller().tenant).map(Components.Schemas.Policy.init)))))
    }

    func getPolicy(_ input: Operations.GetPolicy.Input) async throws -> Operations.GetPolicy.Output {
        .ok(.init(body: .json(.init(try await identity.getPolicy(tenantID: try caller().tenant, name: input.path.policyName)))))
    }

    func updatePolicy(_ input: Operations.UpdatePolicy.Input) async throws -> Operations.UpdatePolicy.Output {
        guard case .json(let body) = input.body else { throw HeraldError.validation("Send document.") }
        let document = try body.document.validated()
        let (tenant, actor) = try caller()
        let policy = try await identity.updatePolicy(tenantID: tenant, name: input.path.policyName, description: body.description, document: document, actor: actor)
        return .ok(.init(body: .json(.init(policy))))
    }

    func deletePolicy(_ input: Operations.DeletePolicy.Input) async throws -> Operations.DeletePolicy.Output {
        let (tenant, actor) = try caller()
        try await identity.deletePolicy(tenantID: tenant, name: input.path.policyName, actor: actor)
        return .noContent(.init())
    }

    // MARK: IP protection

    func getIpProtection(_ input: Operations.GetIpProtection.Input) async throws -> Operations.GetIpProtection.Output {
        .ok(.init(body: .json(.init(try await identity.ipProtection(tenantID: try caller().tenant)))))
    }

    func updateIpProtection(_ input: Operations.UpdateIpProtection.Input) async throws -> Operations.UpdateIpProtection.Output {
        guard case .json(let body) = input.body else { throw HeraldError.validation("Send enabled and allow.") }
        let allowlist = try IPAllowlist.parse(enabled: body.enabled, entries: body.allow)
        let (tenant, actor) = try caller()
        return .ok(.init(body: .json(.init(try await identity.setIPProtection(tenantID: tenant, allowlist: allowlist, actor: actor)))))
    }

    func checkIpProtection(_ input: Operations.CheckIpProtection.Input) async throws -> Operations.CheckIpProtection.Output {
        let context = try RequestScope.current()
        let setting = try await identity.ipProtection(tenantID: try context.requirePrincipal().tenantID)
        let allowlist = try IPAllowlist.parse(enabled: setting.enabled, entries: setting.allow)
        try IPProtectionGuard.check(client: context.clientIP, allowlist: allowlist)
        return .ok(.init(body: .json(.init(clientIp: context.clientIP?.description ?? "unknown", allowed: true))))
    }

    // MARK: Audit log

    func listAuditLog(_ input: Operations.ListAuditLog.Input) async throws -> Operations.ListAuditLog.Output {
        var query = AuditQuery()
        query.limit = try QueryParameters.limit(input.query.limit)
        if let cursor = input.query.cursor {
            guard let value = Int64(cursor), value > 0 else { throw HeraldError.validation("cursor is invalid.", field: "cursor") }
            query.before = value
        }
        if let action = input.query.action {
            guard (1...128).contains(action.count) else { throw HeraldError.validation("action is invalid.", field: "action") }
            query.action = action
        }
        query.userID = try QueryParameters.uuid(input.query.userId, "userId")
        query.from = input.query.from
        query.until = input.query.until
        let entries = try await AuditLog.list(database: database, tenantID: try caller().tenant, query: query)
        return .ok(.init(body: .json(.init(items: entries.map(Components.Schemas.AuditEntry.init),
                                           nextCursor: entries.count == query.limit ? entries.last?.id : nil))))
    }
}
