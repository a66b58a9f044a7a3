import Foundation
import HeraldCore
import HeraldStore

// Conversions between the store's records and the contract's generated schemas. They are spelled out
// (not round-tripped through JSON) so that a contract change the code has not followed fails to compile.

extension UUID {
    /// The lowercase form every response uses.
    var lowercased: String { lowercasedString }
}

extension Components.Schemas.User {
    init(_ user: UserRecord) {
        self.init(id: user.id.lowercased, name: user.name, enabled: user.enabled, root: user.root, createdAt: user.createdAt)
    }
}

extension Components.Schemas.AccessKey {
    init(_ key: AccessKeyRecord) {
        self.init(accessKeyId: key.accessKeyId, userId: key.userId.lowercased, status: .active, createdAt: key.createdAt, lastUsedAt: key.lastUsedAt)
    }
}

extension Components.Schemas.PolicyDocument {
    init(_ document: PolicyDocument) {
        self.init(version: document.version, statement: document.statements.map { statement in
            .init(effect: statement.effect == .allow ? .allow : .deny,
                  action: statement.actions.count == 1 ? .case1(statement.actions[0]) : .case2(statement.actions),
                  resource: statement.resources.count == 1 ? .case1(statement.resources[0]) : .case2(statement.resources))
        })
    }

    /// The RAM document, validated by HeraldCore's rules; failures name the field under `document`.
    func validated() throws(HeraldError) -> PolicyDocument {
        let document = PolicyDocument(version: version, statements: statement.map { statement in
            PolicyStatement(effect: statement.effect == .allow ? .allow : .deny,
                            actions: statement.action.strings, resources: statement.resource.strings)
        })
        try document.validate()
        return document
    }
}

extension Components.Schemas.PolicyDocument.StatementPayloadPayload.ActionPayload {
    var strings: [String] {
        switch self {
        case .case1(let one): [one]
        case .case2(let many): many
        }
    }
}

extension Components.Schemas.PolicyDocument.StatementPayloadPayload.ResourcePayload {
    var strings: [String] {
        switch self {
        case .case1(let one): [one]
        case .case2(let many): many
        }
    }
}

extension Components.Schemas.Policy {
    init(_ policy: PolicyRecord) {
        self.init(name: policy.name, _type: policy.type == .system ? .system : .custom, description: policy.description,
                  document: .init(policy.document), createdAt: policy.createdAt, updatedAt: policy.updatedAt)
    }
}

extension Components.Schemas.AttachedPolicy {
    init(_ policy: HeraldStore.AttachedPolicy) {
        self.init(name: policy.name, _type: policy.type == .system ? .system : .custom)
    }
}

extension Components.Schemas.IpProtection {
    init(_ setting: IPProtectionRecord) {
        self.init(enabled: setting.enabled, allow: setting.allow, updatedAt: setting.updatedAt)
    }
}

extension Components.Schemas.AuditEntry {
    init(_ entry: HeraldStore.AuditEntry) {
        self.init(id: entry.id, at: entry.at, actorType: ActorTypePayload(rawValue: entry.actorType) ?? .system,
                  userId: entry.userId?.lowercased, accessKeyId: entry.accessKeyId, sourceIp: entry.sourceIp,
                  action: entry.action, resource: entry.resource, result: entry.result, requestId: entry.requestId,
                  detail: entry.detail.map { DetailPayload(additionalProperties: $0) })
    }
}

extension Components.Schemas.Tenant {
    init(_ tenant: TenantRecord) {
        self.init(id: tenant.id.lowercased, name: tenant.name, kind: tenant.kind == .personal ? .personal : .enterprise,
                  status: StatusPayload(rawValue: tenant.status.rawValue) ?? .active, grade: tenant.grade,
                  gradeCeiling: tenant.gradeCeiling, freezeCount: tenant.freezeCount, createdAt: tenant.createdAt, updatedAt: tenant.updatedAt)
    }
}

extension Components.Schemas.HeraldProcess {
    init(_ process: ProcessRecord) {
        self.init(id: process.id.lowercased, roles: process.roles.compactMap(RolesPayloadPayload.init(rawValue:)), host: process.host,
                  pid: process.pid, httpPort: process.httpPort, startedAt: process.startedAt, lastSeen: process.lastSeen,
                  alive: process.alive, limitShares: process.shares)
    }
}

extension Components.Schemas.Jwk {
    init(_ key: JWK) {
        self.init(kty: .okp, crv: .ed25519, x: key.x, kid: key.kid, alg: .edDSA, use: .sig)
    }
}
