import Foundation
import HeraldCore
import Logging
import PostgresNIO

/// The accepting statements of ``AcceptBatcher``: read the facts of a tenant's sends, run the pure steps of
/// ``AcceptDecision`` on them, and write what they decided. No rule of accepting is written here: the write
/// only checks that the quota taken still fits, and where it does not the decision is made again on the
/// quota row locked.
extension SendStore {
    typealias AcceptOutcome = Result<(SendResult, Bool), any Error>

    /// Accepts `jobs` and answers one outcome per job: the result, or the refusal of that job alone (quota,
    /// unknown sender, idempotency conflict…), which writes nothing. They share one write; if the
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

    /// Accepts `jobs`: one tenant's without Idempotency-Keys in two statements and no transaction, others in
    /// one transaction. Jobs are taken per tenant and quota day, in a fixed order, and each tenant's locks
    /// (Idempotency-Keys in key order, then the quota row) in a fixed order too, so two processes' batches
    /// cannot deadlock.
    private func acceptTogether(_ jobs: [AcceptBatcher.Job]) async throws -> [AcceptOutcome] {
        let groups = Dictionary(grouping: jobs.indices) { index in
            GroupKey(tenant: jobs[index].tenantID, day: SendRules.quotaDay(jobs[index].now, timeZone: quotaTimeZone).day)
        }
        // One tenant and day without Idempotency-Keys (a busy tenant's batch): no transaction at all. The
        // facts lock nothing and the write is one statement that commits on its own, so BEGIN and COMMIT
        // would be two more round trips (~1 ms each under load). What needs the quota row locked (a write
        // that no longer fit, a day without its row yet) goes on in a transaction, nothing having been written.
        if groups.count == 1, let key = groups.keys.first, jobs.allSatisfy({ $0.idempotency == nil }),
           let outcomes = try await database.connection({ connection in
               try await acceptTenantJobs(on: connection, tenantID: key.tenant, jobs: jobs, inTransaction: false)
           }) {
            return outcomes
        }
        // (A batch that came back from the path without a transaction needs the quota row locked: it starts so.)
        let lockQuota = groups.count == 1 && jobs.allSatisfy { $0.idempotency == nil }
        let outcomes = try await database.transaction { connection in
            var outcomes = [AcceptOutcome?](repeating: nil, count: jobs.count)
            for key in groups.keys.sorted() {
                let indices = groups[key]!
                let answered = try await acceptTenantJobs(on: connection, tenantID: key.tenant, jobs: indices.map { jobs[$0] }, inTransaction: true,
                                                          lockQuota: lockQuota)
                for (index, outcome) in zip(indices, answered ?? []) { outcomes[index] = outcome }
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

    /// One tenant's jobs of one quota day: a fixed number of statements whatever the number of jobs. Reads →
    /// ``AcceptDecision`` → writes. Without Idempotency-Keys that is two statements: the facts and the write.
    /// Outside a transaction (`inTransaction` false: no keys, nothing locked) it answers nil where the
    /// decision needs the quota row locked, having written nothing; `lockQuota` locks it from the start.
    private func acceptTenantJobs(on connection: PostgresConnection, tenantID: UUID, jobs: [AcceptBatcher.Job],
                                  inTransaction: Bool, lockQuota: Bool = false) async throws -> [AcceptOutcome]? {
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
        if let first = open.first {
            // The quota row is read, not locked, while deciding, so that the tenant's next transaction can
            // read and decide while this one writes; the write checks that what was admitted still fits
            // (`QuotaAllocation.ceiling`). When it no longer does (the tenant's concurrent transaction took
            // the room), or the day has no row yet, the decision is made again with the row locked. A process
            // with a quota holder takes the quota from its lease instead, outside a transaction (``QuotaLease``):
            // its write touches its own lease row only.
            let (day, monthStart) = SendRules.quotaDay(jobs[first].now, timeZone: quotaTimeZone)
            let sends = open.map { jobs[$0].send }
            var locked = lockQuota && inTransaction
            let holder = inTransaction ? nil : quotaHolder
            var leaseAttempts = 0
            while true {
                let facts = try await Self.acceptFacts(connection, tenantID: tenantID, sends: sends, day: day, monthStart: monthStart, lock: locked,
                                                       holder: holder, defaults: (quotaTable, limits.defaults),
                                                       prepared: database.preparedStatements, logger: logger)
                let before = QuotaAllocation(daily: facts.tenant?.dailyQuota ?? 0, usedToday: facts.quota.usedToday ?? 0,
                                             usedEarlierThisMonth: facts.quota.usedEarlier)
                var verdicts = AcceptDecision.plan(sends, tenant: facts.tenant, senders: facts.senders, knownTags: facts.knownTags,
                                                   suppressions: facts.suppressions, invalid: facts.invalid)
                var usage: QuotaUsage?
                if let holder, facts.quota.usedToday != nil {
                    // From the lease: what it has left covers the batch, or it asks for the shortfall and a slice;
                    // when even that does not cover it (the day is nearly used up), the locked row decides.
                    let need = AcceptDecision.quotaNeeded(verdicts)
                    let left = facts.leaseLeft ?? 0
                    if need > left {
                        let granted = try await Self.reserveQuota(connection, tenantID: tenantID, day: day, holder: holder, need: need - left,
                                                                  want: QuotaLease.want(need: need, left: left, daily: before.daily),
                                                                  ceiling: before.ceiling, logger: logger)
                        guard let granted, granted >= need else { return nil }
                    }
                    usage = need > 0 ? QuotaUsage(day: day, taken: need, ceiling: 0, holder: holder) : nil
                } else {
                    var quota = before
                    AcceptDecision.allocate(&verdicts, quota: &quota)
                    let taken = quota.usedToday - before.usedToday
                    // The day has no row yet; or a refusal for quota, which is made on the locked row only (leases
                    // may hold room untaken, which locking takes back).
                    if !locked, (taken > 0 && facts.quota.usedToday == nil) || verdicts.contains(where: Self.isQuotaRefusal) {
                        guard inTransaction else { return nil }
                        locked = true
                        continue
                    }
                    usage = taken > 0 ? QuotaUsage(day: day, taken: taken, ceiling: quota.ceiling, holder: nil) : nil
                }
                var plans: [Int: AcceptPlan] = [:]
                for (index, verdict) in zip(open, verdicts) {
                    switch verdict {
                    case .success(let plan): plans[index] = plan
                    case .failure(let refusal): outcomes[index] = .failure(refusal)
                    }
                }
                guard !plans.isEmpty else { break }
                // Every admitted job's messages and their events (and the quota's new usage) in one statement.
                guard let results = try await insertMessages(connection, tenantID: tenantID, jobs: jobs, plans: plans, requestIDs: requestIDs,
                                                             quota: usage) else {
                    guard !locked else {
                        throw HeraldError(code: "Internal", kind: .internal, message: "The quota row changed while it was locked.")
                    }
                    for index in open { outcomes[index] = nil }
                    // A lease that no longer covers the batch (taken back, or taken by this process's other batch)
                    // asks again; a quota row that changed is locked.
                    if usage?.holder != nil {
                        leaseAttempts += 1
                        if leaseAttempts < 3 { continue }
                    }
                    guard inTransaction else { return nil }
                    locked = true
                    continue
                }
                for (index, result) in results { outcomes[index] = .success((result, false)) }
                try await storeAnswers(connection, tenantID: tenantID, answers: results.compactMap { entry in
                    jobs[entry.index].idempotency.map { ($0.key, entry.result) }
                })
                break
            }
        }
        try await releaseKeys(connection, tenantID: tenantID, jobs: jobs, claimed: claimed, outcomes: outcomes)
        return outcomes.map { $0! }
    }

    static func isQuotaRefusal(_ verdict: AcceptDecision.Verdict) -> Bool {
        if case .failure(let refusal) = verdict { refusal.code == "Quota.Exceeded" } else { false }
    }

    /// Grants `holder`'s lease of the tenant's `day` up to `want` more within `ceiling`, taking back what other
    /// leases hold untaken when the free room is less than `need` (`herald_quota_reserve`, one statement that
    /// locks the quota row for its own duration); answers what the lease has left (nil: the day has no row).
    static func reserveQuota(_ connection: PostgresConnection, tenantID: UUID, day: String, holder: UUID, need: Int, want: Int, ceiling: Int,
                             logger: Logger) async throws -> Int? {
        try await connection.query("""
            SELECT herald_quota_reserve(\(tenantID), \(day)::date, \(holder), \(need)::int4, \(want)::int4, \(ceiling)::int4)
            """, logger: logger).decode(Int?.self).first { _ in true } ?? nil
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
        /// Today's usage (nil: the day has no row yet) and the month's before today.
        var quota: (usedToday: Int?, usedEarlier: Int) = (nil, 0)
        /// What the holder's lease of the day has left to take (nil: no lease).
        var leaseLeft: Int?
    }

    /// `herald_accept_facts` as a prepared statement: parsed and planned once per connection.
    struct AcceptFactsStatement: PostgresPreparedStatement {
        static let name = "herald_accept_facts"
        static let sql = "SELECT kind, a, b, c, d, e, f FROM herald_accept_facts($1, $2, $3, $4, $5::date, $6::date, $7, $8)"
        typealias Row = (String, String?, String?, String?, String?, String?, String?)
        /// `holder`: whose lease to read (the nil UUID: none).
        var tenantID: UUID, froms: [String], tags: [String], addresses: [String], day: String, monthStart: String, lock: Bool, holder: UUID

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 8)
            bindings.append(tenantID)
            bindings.append(froms)
            bindings.append(tags)
            bindings.append(addresses)
            bindings.append(day)
            bindings.append(monthStart)
            bindings.append(lock)
            bindings.append(holder)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
    }

    /// `defaults`: the installation's quota table and product limits, which the tenant's own (when it has any) replace.
    static func acceptFacts(_ connection: PostgresConnection, tenantID: UUID, sends: [ValidatedSend], day: String, monthStart: String, lock: Bool,
                            holder: UUID?, defaults: (quotas: QuotaTable, limits: ProductLimits) = (.standard, ProductLimits()),
                            prepared: Bool, logger: Logger) async throws -> AcceptFacts {
        var facts = AcceptFacts()
        let statement = AcceptFactsStatement(tenantID: tenantID, froms: Array(Set(sends.map(\.from.description))), tags: Array(Set(sends.compactMap(\.tag))),
                                             addresses: AcceptDecision.recipientsToLookUp(sends), day: day, monthStart: monthStart, lock: lock,
                                             holder: holder ?? UUID.none)
        for (kind, a, b, c, d, e, f) in try await connection.run(statement, prepared: prepared, logger: logger) {
            switch kind {
            case "tenant":
                guard let status = a, let grade = b.flatMap({ Int($0) }) else { throw UnknownStoredValue(type: "tenant facts", value: "\(a ?? "-") \(b ?? "-")") }
                facts.tenant = AcceptTenantFacts(status: try .stored(status), grade: grade, trackByDefault: c == "true", triggerUnsubscribeLink: d == "true",
                                                 quotas: QuotaTable.stored(e) ?? defaults.quotas,
                                                 limits: TenantLimits.applying(overridesJSON: f, to: defaults.limits))
            case "sender":
                guard let address = a, let id = b.flatMap(UUID.init(uuidString:)), let type = c, let replyToStatus = e, let domainStatus = f else {
                    throw UnknownStoredValue(type: "sender facts", value: a ?? "-")
                }
                facts.senders[address] = AcceptSenderFacts(id: id, kind: try .stored(type), replyTo: d, replyToStatus: try .stored(replyToStatus),
                                                           domainStatus: try .stored(domainStatus))
            case "tag": if let a { facts.knownTags.insert(a) }
            case "suppression": if let a, let b, let c { facts.suppressions[a, default: []].append(.init(scope: b, source: c)) }
            case "quota":
                guard let earlier = b.flatMap({ Int($0) }), a == nil || Int(a!) != nil else {
                    throw UnknownStoredValue(type: "quota facts", value: "\(a ?? "-") \(b ?? "-")")
                }
                facts.quota = (a.flatMap { Int($0) }, earlier)
            case "lease":
                guard let left = a.flatMap({ Int($0) }) else { throw UnknownStoredValue(type: "lease facts", value: a ?? "-") }
                facts.leaseLeft = left
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
