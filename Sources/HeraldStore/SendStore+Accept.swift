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
    /// whatever the number of jobs. Reads → ``AcceptDecision`` → writes. Without Idempotency-Keys that is
    /// two statements: the facts (with the tenant scope and the quota lock) and the writes.
    private func acceptTenantJobs(on connection: PostgresConnection, tenantID: UUID, jobs: [AcceptBatcher.Job]) async throws -> [AcceptOutcome] {
        var outcomes = [AcceptOutcome?](repeating: nil, count: jobs.count)
        let requestIDs = jobs.map { UUIDv7.make(at: $0.now) }

        // Idempotency-Keys: claim the new ones (a concurrent transaction holding the same key makes this
        // wait for its commit); a key already claimed answers with its first result, or a conflict. They are
        // locked before the quota row, as in every accepting transaction.
        var claimed = Set<Int>()
        if jobs.contains(where: { $0.idempotency != nil }) {
            try await connection.query("SELECT set_config('herald.tenant_id', \(tenantID.uuidString), true)", logger: logger)
            claimed = try await claimIdempotencyKeys(connection, tenantID: tenantID, jobs: jobs, requestIDs: requestIDs, outcomes: &outcomes)
        }
        let open = jobs.indices.filter { outcomes[$0] == nil }
        let sends = open.map { jobs[$0].send }

        // The decision, each step fed the facts it needs (read once for all the jobs, the quota row locked
        // with them: a tenant's transactions queue on it anyway, one at a time — see AcceptBatcher).
        var verdicts: [AcceptDecision.Verdict] = []
        var quotaUsed: (day: String, used: Int)?
        if let first = open.first {
            let (day, monthStart) = SendRules.quotaDay(jobs[first].now, timeZone: quotaTimeZone)
            let facts = try await Self.acceptFacts(connection, tenantID: tenantID, sends: sends, day: day, monthStart: monthStart, logger: logger)
            if let refusal = AcceptDecision.tenantRefusal(facts.tenant) {
                verdicts = sends.map { _ in .failure(refusal) }
            } else if let tenant = facts.tenant {
                verdicts = AcceptDecision.check(sends, tenant: tenant, senders: facts.senders, knownTags: facts.knownTags)
                AcceptDecision.drop(&verdicts, sends: sends, suppressions: facts.suppressions, invalid: facts.invalid)
                if AcceptDecision.needsQuota(verdicts) {
                    var quota = QuotaAllocation(daily: tenant.dailyQuota, usedToday: facts.quota.usedToday, usedEarlierThisMonth: facts.quota.usedEarlier)
                    AcceptDecision.allocate(&verdicts, quota: &quota)
                    if quota.usedToday != facts.quota.usedToday { quotaUsed = (day, quota.usedToday) }
                }
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

    /// Everything the decision reads, in one statement, `herald_accept_facts` (each statement inside the
    /// shared transaction cost ~1.3 ms between the previous one's end and its own parse under load, plus its
    /// parse and bind — `HERALD_BENCH_STATEMENTS=1 ops/bench send` — against ~0.03 ms of execution for each
    /// of these reads): the tenant's status, grade and mail settings; the senders the sends name, with their
    /// domain's status; which of their tags exist; the suppressions and invalid-address listings of every
    /// recipient (of the refused sends too, which the decision then does not look at); and the day's quota
    /// row, locked. It also scopes the transaction to the tenant (row-level security).
    struct AcceptFacts {
        var tenant: AcceptTenantFacts?
        var senders: [String: AcceptSenderFacts] = [:]
        var knownTags = Set<String>()
        var suppressions: [String: [DropRules.Suppression]] = [:]
        var invalid = Set<String>()
        var quota = (usedToday: 0, usedEarlier: 0)
    }

    /// `herald_accept_facts` as a prepared statement: parsed and planned once per connection.
    struct AcceptFactsStatement: PostgresPreparedStatement {
        static let name = "herald_accept_facts"
        static let sql = "SELECT kind, a, b, c, d, e, f FROM herald_accept_facts($1, $2, $3, $4, $5::date, $6::date)"
        typealias Row = (String, String?, String?, String?, String?, String?, String?)
        var tenantID: UUID, froms: [String], tags: [String], addresses: [String], day: String, monthStart: String

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 6)
            bindings.append(tenantID)
            bindings.append(froms)
            bindings.append(tags)
            bindings.append(addresses)
            bindings.append(day)
            bindings.append(monthStart)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
    }

    static func acceptFacts(_ connection: PostgresConnection, tenantID: UUID, sends: [ValidatedSend], day: String, monthStart: String,
                            logger: Logger) async throws -> AcceptFacts {
        var facts = AcceptFacts()
        let statement = AcceptFactsStatement(tenantID: tenantID, froms: Array(Set(sends.map(\.from.description))), tags: Array(Set(sends.compactMap(\.tag))),
                                             addresses: AcceptDecision.recipientsToLookUp(sends), day: day, monthStart: monthStart)
        for try await (kind, a, b, c, d, e, f) in try await connection.execute(statement, logger: logger) {
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
            case "quota":
                guard let today = a.flatMap({ Int($0) }), let earlier = b.flatMap({ Int($0) }) else {
                    throw UnknownStoredValue(type: "quota facts", value: "\(a ?? "-") \(b ?? "-")")
                }
                facts.quota = (today, earlier)
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
