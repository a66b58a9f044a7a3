import Foundation
import HeraldCore
import HeraldStore

/// Sending domains: registration, the records to publish, verification through DNS, DKIM rotation, and the
/// opt-in Ed25519 signature beside the RSA one.
extension APIHandler {
    func createDomain(_ input: Operations.CreateDomain.Input) async throws -> Operations.CreateDomain.Output {
        guard case .json(let body) = input.body else { throw HeraldError.validation("Send name.") }
        let (tenant, actor) = try caller()
        let domain = try await domains.create(tenantID: tenant, name: body.name, keyBits: body.dkimKeyBits?.rawValue ?? 2048,
                                              ed25519: body.dkimEd25519 ?? false, actor: actor, now: now())
        return .created(.init(body: .json(.init(domain, settings: domainSettings))))
    }

    func listDomains(_ input: Operations.ListDomains.Input) async throws -> Operations.ListDomains.Output {
        let items = try await domains.list(tenantID: try caller().tenant)
        return .ok(.init(body: .json(.init(items: items.map { Components.Schemas.Domain($0, settings: domainSettings) }))))
    }

    func getDomain(_ input: Operations.GetDomain.Input) async throws -> Operations.GetDomain.Output {
        let domain = try await domains.get(tenantID: try caller().tenant, id: try uuidPath(input.path.id, what: "domain"))
        return .ok(.init(body: .json(.init(domain, settings: domainSettings))))
    }

    func updateDomain(_ input: Operations.UpdateDomain.Input) async throws -> Operations.UpdateDomain.Output {
        guard case .json(let body) = input.body else { throw HeraldError.validation("Send dkimEd25519 (true or false).") }
        let (tenant, actor) = try caller()
        let domain = try await domains.setEd25519(tenantID: tenant, id: try uuidPath(input.path.id, what: "domain"), enabled: body.dkimEd25519,
                                                  actor: actor, now: now())
        return .ok(.init(body: .json(.init(domain, settings: domainSettings))))
    }

    func deleteDomain(_ input: Operations.DeleteDomain.Input) async throws -> Operations.DeleteDomain.Output {
        let (tenant, actor) = try caller()
        try await domains.delete(tenantID: tenant, id: try uuidPath(input.path.id, what: "domain"), actor: actor)
        return .noContent(.init())
    }

    func verifyDomain(_ input: Operations.VerifyDomain.Input) async throws -> Operations.VerifyDomain.Output {
        let (tenant, actor) = try caller()
        let domain = try await verifier.verify(tenantID: tenant, id: try uuidPath(input.path.id, what: "domain"), actor: actor)
        return .ok(.init(body: .json(.init(domain, settings: domainSettings))))
    }

    func rotateDomainDkim(_ input: Operations.RotateDomainDkim.Input) async throws -> Operations.RotateDomainDkim.Output {
        let bits: Int = if case .json(let body) = input.body { body.dkimKeyBits?.rawValue ?? 2048 } else { 2048 }
        let (tenant, actor) = try caller()
        let domain = try await domains.rotateDKIM(tenantID: tenant, id: try uuidPath(input.path.id, what: "domain"), keyBits: bits, actor: actor, now: now())
        return .ok(.init(body: .json(.init(domain, settings: domainSettings))))
    }
}

extension Components.Schemas.Domain {
    init(_ domain: HeraldStore.DomainRecord, settings: SendingDomain.Settings) {
        self.init(
            id: domain.id.lowercased, name: domain.name, status: StatusPayload(rawValue: domain.status.rawValue) ?? .pending,
            records: domain.records(settings: settings).map { record, check in
                Components.Schemas.DomainRecord(
                    purpose: .init(rawValue: record.purpose.rawValue) ?? .ownership, _type: .init(rawValue: record.type) ?? .txt,
                    host: record.host, value: record.value, selector: record.selector,
                    algorithm: record.algorithm.flatMap { Components.Schemas.DomainRecord.AlgorithmPayload(rawValue: $0.rawValue) },
                    required: record.isRequired,
                    status: .init(rawValue: check?.status.rawValue ?? "pending") ?? .pending, found: check?.found)
            },
            dkimKeys: domain.keys.map { key in
                Components.Schemas.DkimKey(selector: key.selector, algorithm: key.algorithm == .ed25519 ? .ed25519 : .rsa,
                                           bits: key.algorithm == .ed25519 ? ._256 : key.bits == 1024 ? ._1024 : ._2048,
                                           state: .init(rawValue: key.state) ?? .retired, createdAt: key.createdAt)
            },
            dkimEd25519: domain.ed25519Enabled,
            createdAt: domain.createdAt, verifiedAt: domain.verifiedAt, lastCheckedAt: domain.lastCheckedAt)
    }
}
