import Foundation
import HeraldCore
import Logging
import PostgresNIO

/// The accepting transaction of ``AcceptBatcher``: reads the facts of a tenant's sends, runs the pure steps
/// of ``AcceptDecision`` on them, and writes what they decided. No rule of accepting is written here: the
/// decision runs inside the transaction only because its quota step must see the quota row locked.
extension SendStore {
    typealias AcceptOutcome = Result<(SendResult, Bool), any Error>

    /// Accepts `jobs` and answers one outcome per job: the result, or the refusal of that job alone (quota,
    /// unknown sender, idempotency conflict…), which writes nothing. They share one transaction; if the
    /// database refuses a statement of it (a value it cannot store, a deadlock), no job's failure is
    /// allowed to fail another's: the jobs are split in halves and each half tried again on its own, down
    /// to the one job the database refuses, which fails alone. A transaction that fails for any other
    /// reason (the database went away) gives every job that error.
    func acceptBatch(_ jobs: [AcceptBatcher.Job]) async -> [AcceptOutcome] {
        do {
            return try await acceptTogether(jobs)
        } catch let error as PSQLError where error.serverInfo != nil && jobs.count > 1 {
            logger.warning("a shared accept transaction failed; retrying its requests apart", metadata: ["jobs": "\(jobs.count)", "error": "\(error)"])
            let middle = jobs.count / 2
            return await acceptBatch(Array(jobs[..<middle])) + acceptBatch(Array(jobs[middle...]))
        } catch {
            return jobs.map { _ in .failure(error) }
        }
    }

    /// Accepts `jobs` in one transaction. Jobs are taken per tenant and quota day, in a fixed order, and
    /// each tenant's locks (Idempotency-Keys in key order, then the quota row) in a fixed order too, so two
    /// processes' batches cannot deadlock.
    private func acceptTogether(_ jobs: [AcceptBatcher.Job]) async throws -> [AcceptOutcome] {
        let groups = Dictionary(grouping: jobs.indices) { index in
            GroupKey(tenant: jobs[index].tenantID, day: SendRules.quotaDay(jobs[index].now, timeZone: quotaTimeZone).day)
        }
        let outcomes = try await database.transaction { connection in
            var outcomes = [AcceptOutcome?](repeating: nil, count: jobs.count)
            for key in groups.keys.sorted() {
                let indices = groups[key]!
                let answered = try await acceptTenantJobs(on: connection, tenantID: key.tenant, jobs: indices.map { jobs[$0] })
                for (index, outcome) in zip(indices, answered) { outcomes[index] = outcome }
            }
            return outcomes
        }
        return outcomes.map { $0 ?? .failure(HeraldError(code: "Internal", kind: .internal, message: "A send was not answered.")) }
    }

    struct GroupKey: Hashable, Comparable {
        var tenant: UUID
        var day: String
        static func < (lhs: GroupKey, rhs: GroupKey) -> Bool {
            (lhs.tenant.uuidString, lhs.day) < (rhs.tenant.uuidString, rhs.day)
        }
    }

    /// One tenant's jobs of one quota day, inside the batch transaction: a fixed number of statements
    /// whatever the number of jobs. Reads → ``AcceptDecision`` → writes.
    private func acceptTenantJobs(on connection: PostgresConnection, tenantID: UUID, jobs: [AcceptBatcher.Job]) async throws -> [AcceptOutcome] {
        var outcomes = [AcceptOutcome?](repeating: nil, count: jobs.count)
        let requestIDs = jobs.map { UUIDv7.make(at: $0.now) }
        try await connection.query("SELECT set_config('herald.tenant_id', \(tenantID.uuidString), true)", logger: logger)

        // Idempotency-Keys: claim the new ones (a concurrent transaction holding the same key makes this
        // wait for its commit); a key already claimed answers with its first result, or a conflict.
        let claimed = try await claimIdempotencyKeys(connection, tenantID: tenantID, jobs: jobs, requestIDs: requestIDs, outcomes: &outcomes)
        let open = jobs.indices.filter { outcomes[$0] == nil }
        let sends = open.map { jobs[$0].send }

        // The decision, each step fed the facts it needs (read once for all the jobs).
        var verdicts: [AcceptDecision.Verdict] = []
        var quotaUsed: (day: String, used: Int)?
        let facts = sends.isEmpty ? AcceptFacts() : try await Self.acceptFacts(connection, tenantID: tenantID, sends: sends, logger: logger)
        if sends.isEmpty {
            verdicts = []
        } else if let refusal = AcceptDecision.tenantRefusal(facts.tenant) {
            verdicts = sends.map { _ in .failure(refusal) }
        } else if let tenant = facts.tenant {
            verdicts = AcceptDecision.check(sends, tenant: tenant, senders: facts.senders, knownTags: facts.knownTags)
            AcceptDecision.drop(&verdicts, sends: sends, suppressions: facts.suppressions, invalid: facts.invalid)
            if AcceptDecision.needsQuota(verdicts) {
                // The day's row locked once for all the jobs (last, so that it is held for as short a time as can be).
                let (day, monthStart) = SendRules.quotaDay(jobs[open[0]].now, timeZone: quotaTimeZone)
                var quota = try await Self.lockQuota(connection, tenantID: tenantID, daily: tenant.dailyQuota, day: day, monthStart: monthStart,
                                                     logger: logger)
                let before = quota.usedToday
                AcceptDecision.allocate(&verdicts, quota: &quota)
                if quota.usedToday != before { quotaUsed = (day, quota.usedToday) }
            }
        }
        var plans: [Int: AcceptPlan] = [:]
        for (index, verdict) in zip(open, verdicts) {
            switch verdict {
            case .success(let plan): plans[index] = plan
            case .failure(let refusal): outcomes[index] = .failure(refusal)
            }
        }

        // Every admitted job's messages and their events (and the quota's new usage) in one statement.
        if !plans.isEmpty {
            let results = try await insertMessages(connection, tenantID: tenantID, jobs: jobs, plans: plans, requestIDs: requestIDs, quotaUsed: quotaUsed)
            for (index, result) in results { outcomes[index] = .success((result, false)) }
            try await storeAnswers(connection, tenantID: tenantID, answers: results.compactMap { entry in
                jobs[entry.index].idempotency.map { ($0.key, entry.result) }
            })
        }
        try await releaseKeys(connection, tenantID: tenantID, jobs: jobs, claimed: claimed, outcomes: outcomes)
        return outcomes.map { $0! }
    }

    /// Everything the decision reads, in one statement (each statement inside the shared transaction cost
    /// ~1.3 ms between the previous one's end and its own parse under load, plus its parse and bind —
    /// `HERALD_BENCH_STATEMENTS=1 ops/bench send` — against ~0.03 ms of execution for each of these reads):
    /// the tenant's status, grade and mail settings; the senders the sends name, with their domain's
    /// status; which of their tags exist; and the suppressions and invalid-address listings of every
    /// recipient (of the refused sends too, which the decision then does not look at).
    struct AcceptFacts {
        var tenant: AcceptTenantFacts?
        var senders: [String: AcceptSenderFacts] = [:]
        var knownTags = Set<String>()
        var suppressions: [String: [DropRules.Suppression]] = [:]
        var invalid = Set<String>()
    }

    static func acceptFacts(_ connection: PostgresConnection, tenantID: UUID, sends: [ValidatedSend], logger: Logger) async throws -> AcceptFacts {
        var facts = AcceptFacts()
        let froms = Array(Set(sends.map(\.from.description)))
        let tagNames = Array(Set(sends.compactMap(\.tag)))
        let addresses = AcceptDecision.recipientsToLookUp(sends)
        let rows = try await connection.query("""
            SELECT 'tenant', status, grade::text, track_opens_clicks::text, trigger_unsubscribe_link::text, NULL::text, NULL::text
            FROM tenants WHERE id = \(tenantID)
            UNION ALL
            SELECT 'sender', s.address, s.id::text, s.type, s.reply_to, s.reply_to_status, d.status
            FROM senders s JOIN domains d ON d.id = s.domain_id WHERE s.tenant_id = \(tenantID) AND s.address = ANY(\(froms)::text[])
            UNION ALL
            SELECT 'tag', name, NULL, NULL, NULL, NULL, NULL FROM tags WHERE tenant_id = \(tenantID) AND name = ANY(\(tagNames)::text[])
            UNION ALL
            SELECT 'suppression', address, scope, source, NULL, NULL, NULL
            FROM suppressions WHERE tenant_id = \(tenantID) AND address = ANY(\(addresses)::text[])
            UNION ALL
            SELECT 'invalid', address, NULL, NULL, NULL, NULL, NULL
            FROM invalid_addresses WHERE tenant_id = \(tenantID) AND listed AND address = ANY(\(addresses)::text[])
            """, logger: logger)
        for try await (kind, a, b, c, d, e, f) in rows.decode((String, String?, String?, String?, String?, String?, String?).self) {
            switch kind {
            case "tenant":
                guard let status = a, let grade = b.flatMap({ Int($0) }) else { throw UnknownStoredValue(type: "tenant facts", value: "\(a ?? "-") \(b ?? "-")") }
                facts.tenant = AcceptTenantFacts(status: try .stored(status), grade: grade, trackByDefault: c == "true", triggerUnsubscribeLink: d == "true")
            case "sender":
                guard let address = a, let id = b.flatMap(UUID.init(uuidString:)), let type = c, let replyToStatus = e, let domainStatus = f else {
                    throw UnknownStoredValue(type: "sender facts", value: a ?? "-")
                }
                facts.senders[address] = AcceptSenderFacts(id: id, kind: try .stored(type), replyTo: d, replyToStatus: try .stored(replyToStatus),
                                                           domainStatus: try .stored(domainStatus))
            case "tag": if let a { facts.knownTags.insert(a) }
            case "suppression": if let a, let b, let c { facts.suppressions[a, default: []].append(.init(scope: b, source: c)) }
            default: if let a { facts.invalid.insert(a) }
            }
        }
        return facts
    }

    /// What ``DropRules`` needs of `addresses`: each one's suppressions (scope and source) and which are on the
    /// invalid-address list — one statement (batch expansion; the accept path reads them with the rest of its facts).
    static func dropFacts(_ connection: PostgresConnection, tenantID: UUID, addresses: [String],
                          logger: Logger) async throws -> (suppressions: [String: [DropRules.Suppression]], invalid: Set<String>) {
        var suppressions: [String: [DropRules.Suppression]] = [:]
        var invalid = Set<String>()
        guard !addresses.isEmpty else { return (suppressions, invalid) }
        for try await (address, scope, source) in try await connection.query("""
            SELECT address, scope, source FROM suppressions WHERE tenant_id = \(tenantID) AND address = ANY(\(addresses)::text[])
            UNION ALL
            SELECT address, NULL, NULL FROM invalid_addresses WHERE tenant_id = \(tenantID) AND listed AND address = ANY(\(addresses)::text[])
            """, logger: logger).decode((String, String?, String?).self) {
            if let scope, let source { suppressions[address, default: []].append(.init(scope: scope, source: source)) } else { invalid.insert(address) }
        }
        return (suppressions, invalid)
    }
}
