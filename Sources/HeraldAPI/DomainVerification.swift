import Foundation
import HeraldCore
import HeraldDNS
import HeraldStore
import Logging

/// Checks a domain's records in DNS and stores what it found. The database is not touched while the
/// lookups run: the domain is read in one transaction, looked up with no connection held, and the
/// results written in another.
public struct DomainVerifier: Sendable {
    let domains: DomainStore
    let dns: DNSClient
    let settings: SendingDomain.Settings
    let now: @Sendable () -> Date

    public init(domains: DomainStore, dns: DNSClient, settings: SendingDomain.Settings, now: @escaping @Sendable () -> Date) {
        self.domains = domains
        self.dns = dns
        self.settings = settings
        self.now = now
    }

    /// Looks every record of the domain up now and records the outcome.
    public func verify(tenantID: UUID, id: UUID, actor: AuditActor) async throws -> DomainRecord {
        let domain = try await domains.get(tenantID: tenantID, id: id)
        let checks = await lookUp(domain.records(settings: settings).map(\.record))
        return try await domains.saveChecks(tenantID: tenantID, id: id, checks: checks, actor: actor, now: now())
    }

    /// Checks records concurrently, keeping their order.
    func lookUp(_ records: [SendingDomain.Record]) async -> [SendingDomain.Check] {
        await withTaskGroup(of: (Int, SendingDomain.Check).self) { group in
            for (index, record) in records.enumerated() {
                group.addTask { (index, await check(record)) }
            }
            var checks = [SendingDomain.Check?](repeating: nil, count: records.count)
            for await (index, check) in group { checks[index] = check }
            return checks.compactMap { $0 }
        }
    }

    func check(_ record: SendingDomain.Record) async -> SendingDomain.Check {
        do {
            let found: [String]
            if record.type == "MX" {
                found = try await dns.query(record.host, .mx, useCache: false).mailExchangers.map { "\($0.preference) \($0.host)" }
            } else {
                found = try await dns.query(record.host, .txt, useCache: false).texts
            }
            return SendingDomain.Check(purpose: record.purpose, host: record.host, selector: record.selector,
                                       status: SendingDomain.check(record, found: found, settings: settings),
                                       found: Array(found.prefix(5).map { String($0.prefix(1024)) }))
        } catch {
            return SendingDomain.Check(purpose: record.purpose, host: record.host, selector: record.selector, status: .error, found: [])
        }
    }

    /// One pass of the periodic re-verification: claims due domains (any tenant, leased so that several
    /// processes share the work) and checks them. Returns how many were checked.
    public func recheckDue(limit: Int = 50) async throws -> Int {
        let due = try await domains.claimDueForRecheck(limit: limit, now: now(), lease: .seconds(600))
        let actor = AuditActor(type: .system)
        for (tenantID, id) in due {
            _ = try? await verify(tenantID: tenantID, id: id, actor: actor)
        }
        return due.count
    }
}
