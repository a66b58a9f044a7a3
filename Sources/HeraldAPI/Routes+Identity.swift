import Foundation
import HeraldCore
import HeraldStore
import Hummingbird

/// Sub-users, AccessKeys, policies, IP protection and the audit log.
struct IdentityRoutes {
    let identity: IdentityStore

    struct CreateUser: StrictBody {
        static let fields: Set<String> = ["name"]
        var name: String
    }
    struct UpdateUser: StrictBody {
        static let fields: Set<String> = ["name", "enabled"]
        var name: String?
        var enabled: Bool?
    }
    struct AttachPolicy: StrictBody {
        static let fields: Set<String> = ["policy"]
        var policy: String
    }
    struct CreatePolicy: StrictBody {
        static let fields: Set<String> = ["name", "description", "document"]
        var name: String
        var description: String?
        var document: PolicyDocument
    }
    struct UpdatePolicy: StrictBody {
        static let fields: Set<String> = ["description", "document"]
        var description: String?
        var document: PolicyDocument
    }
    struct PutIPProtection: StrictBody {
        static let fields: Set<String> = ["enabled", "allow"]
        var enabled: Bool
        var allow: [String]
    }
    struct CreatedAccessKey: Encodable {
        var accessKeyId: String
        var accessKeySecret: String
        var userId: UUID
        var createdAt: Date
    }
    struct Items<T: Encodable & Sendable>: Encodable, Sendable { var items: [T] }
    struct IPCheck: Encodable { var clientIp: String; var allowed: Bool }

    func register(_ routes: TenantRoutes) {
        let identity = self.identity
        let database = routes.database

        routes.on(.post, "users", action: "dm:CreateUser") { request, context, principal in
            let body = try await JSONBody.decode(CreateUser.self, from: request, context: context)
            let user = try await identity.createUser(tenantID: principal.tenantID, name: body.name, actor: context.auditActor)
            return try JSONBody.response(user, status: .created)
        }
        routes.on(.get, "users", action: "dm:ListUsers") { request, context, principal in
            let limit = try QueryParameters.limit(request)
            let users = try await identity.listUsers(tenantID: principal.tenantID, limit: limit, after: try QueryParameters.uuidCursor(request))
            let next = users.count == limit ? users.last.map { QueryParameters.encodeCursor($0.id) } : nil
            return try JSONBody.response(Page(items: users, nextCursor: next))
        }
        routes.on(.get, "users/{id}", action: "dm:GetUser", resource: TenantRoutes.user) { _, context, principal in
            try JSONBody.response(try await identity.getUser(tenantID: principal.tenantID, id: try context.uuidParameter("id", what: "user")))
        }
        routes.on(.patch, "users/{id}", action: "dm:UpdateUser", resource: TenantRoutes.user) { request, context, principal in
            let id = try context.uuidParameter("id", what: "user")
            let body = try await JSONBody.decode(UpdateUser.self, from: request, context: context)
            guard body.name != nil || body.enabled != nil else { throw HeraldError.validation("Give name and/or enabled.") }
            return try JSONBody.response(try await identity.updateUser(tenantID: principal.tenantID, id: id, name: body.name,
                                                                      enabled: body.enabled, actor: context.auditActor))
        }
        routes.on(.delete, "users/{id}", action: "dm:DeleteUser", resource: TenantRoutes.user) { _, context, principal in
            try await identity.deleteUser(tenantID: principal.tenantID, id: try context.uuidParameter("id", what: "user"), actor: context.auditActor)
            return .noContent
        }

        routes.on(.post, "users/{id}/access-keys", action: "dm:CreateAccessKey", resource: TenantRoutes.user) { _, context, principal in
            let (key, secret) = try await identity.createAccessKey(tenantID: principal.tenantID, userID: try context.uuidParameter("id", what: "user"),
                                                                   actor: context.auditActor)
            return try JSONBody.response(CreatedAccessKey(accessKeyId: key.accessKeyId, accessKeySecret: secret, userId: key.userId, createdAt: key.createdAt),
                                         status: .created)
        }
        routes.on(.get, "users/{id}/access-keys", action: "dm:ListAccessKeys", resource: TenantRoutes.user) { _, context, principal in
            try JSONBody.response(Items(items: try await identity.listAccessKeys(tenantID: principal.tenantID, userID: try context.uuidParameter("id", what: "user"))))
        }
        routes.on(.delete, "users/{id}/access-keys/{accessKeyId}", action: "dm:DeleteAccessKey", resource: TenantRoutes.user) { _, context, principal in
            try await identity.deleteAccessKey(tenantID: principal.tenantID, userID: try context.uuidParameter("id", what: "user"),
                                               keyID: context.parameters.get("accessKeyId") ?? "", actor: context.auditActor)
            return .noContent
        }

        routes.on(.get, "users/{id}/policies", action: "dm:ListPoliciesForUser", resource: TenantRoutes.user) { _, context, principal in
            try JSONBody.response(Items(items: try await identity.listUserPolicies(tenantID: principal.tenantID, userID: try context.uuidParameter("id", what: "user"))))
        }
        routes.on(.post, "users/{id}/policies", action: "dm:AttachPolicyToUser", resource: TenantRoutes.user) { request, context, principal in
            let id = try context.uuidParameter("id", what: "user")
            let body = try await JSONBody.decode(AttachPolicy.self, from: request, context: context)
            return try JSONBody.response(try await identity.attachPolicy(tenantID: principal.tenantID, userID: id, name: body.policy, actor: context.auditActor))
        }
        routes.on(.delete, "users/{id}/policies/{policyName}", action: "dm:DetachPolicyFromUser", resource: TenantRoutes.user) { _, context, principal in
            try await identity.detachPolicy(tenantID: principal.tenantID, userID: try context.uuidParameter("id", what: "user"),
                                            name: context.parameters.get("policyName") ?? "", actor: context.auditActor)
            return .noContent
        }

        routes.on(.post, "policies", action: "dm:CreatePolicy") { request, context, principal in
            let body = try await JSONBody.decode(CreatePolicy.self, from: request, context: context)
            try body.document.validate()
            return try JSONBody.response(try await identity.createPolicy(tenantID: principal.tenantID, name: body.name, description: body.description ?? "",
                                                                        document: body.document, actor: context.auditActor), status: .created)
        }
        routes.on(.get, "policies", action: "dm:ListPolicies") { _, _, principal in
            try JSONBody.response(Items(items: try await identity.listPolicies(tenantID: principal.tenantID)))
        }
        routes.on(.get, "policies/{policyName}", action: "dm:GetPolicy", resource: TenantRoutes.policy) { _, context, principal in
            try JSONBody.response(try await identity.getPolicy(tenantID: principal.tenantID, name: context.parameters.get("policyName") ?? ""))
        }
        routes.on(.put, "policies/{policyName}", action: "dm:UpdatePolicy", resource: TenantRoutes.policy) { request, context, principal in
            let body = try await JSONBody.decode(UpdatePolicy.self, from: request, context: context)
            try body.document.validate()
            return try JSONBody.response(try await identity.updatePolicy(tenantID: principal.tenantID, name: context.parameters.get("policyName") ?? "",
                                                                        description: body.description, document: body.document, actor: context.auditActor))
        }
        routes.on(.delete, "policies/{policyName}", action: "dm:DeletePolicy", resource: TenantRoutes.policy) { _, context, principal in
            try await identity.deletePolicy(tenantID: principal.tenantID, name: context.parameters.get("policyName") ?? "", actor: context.auditActor)
            return .noContent
        }

        routes.on(.get, "ip-protection", action: "dm:GetIpProtection") { _, _, principal in
            try JSONBody.response(try await identity.ipProtection(tenantID: principal.tenantID))
        }
        routes.on(.put, "ip-protection", action: "dm:UpdateIpProtection") { request, context, principal in
            let body = try await JSONBody.decode(PutIPProtection.self, from: request, context: context)
            let allowlist = try IPAllowlist.parse(enabled: body.enabled, entries: body.allow)
            return try JSONBody.response(try await identity.setIPProtection(tenantID: principal.tenantID, allowlist: allowlist, actor: context.auditActor))
        }
        routes.on(.post, "ip-protection/check", action: "dm:CheckIpProtection") { _, context, principal in
            let setting = try await identity.ipProtection(tenantID: principal.tenantID)
            let allowlist = try IPAllowlist.parse(enabled: setting.enabled, entries: setting.allow)
            try IPProtectionGuard.check(client: context.clientIP, allowlist: allowlist)
            return try JSONBody.response(IPCheck(clientIp: context.clientIP?.description ?? "unknown", allowed: true))
        }

        routes.on(.get, "audit-log", action: "dm:ListAuditLog") { request, context, principal in
            var query = AuditQuery()
            query.limit = try QueryParameters.limit(request)
            if let cursor = request.uri.queryParameters.get("cursor") {
                guard let value = Int64(cursor), value > 0 else { throw HeraldError.validation("cursor is invalid.", field: "cursor") }
                query.before = value
            }
            if let action = request.uri.queryParameters.get("action") {
                guard (1...128).contains(action.count) else { throw HeraldError.validation("action is invalid.", field: "action") }
                query.action = action
            }
            query.userID = try QueryParameters.uuid(request, "userId")
            query.from = try QueryParameters.date(request, "from")
            query.until = try QueryParameters.date(request, "until")
            let entries = try await AuditLog.list(database: database, tenantID: principal.tenantID, query: query)
            return try JSONBody.response(Page(items: entries, nextCursor: entries.count == query.limit ? entries.last?.id : nil))
        }
    }
}
