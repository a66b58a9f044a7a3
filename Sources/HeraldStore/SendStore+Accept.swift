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
        let tenant = try await Self.tenantFacts(connection, tenantID: tenantID, logger: logger)
        if let refusal = AcceptDecision.tenantRefusal(tenant) {
            verdicts = sends.map { _ in .failure(refusal) }
        } else if let tenant {
            let (senders, knownTags) = try await Self.senderFacts(connection, tenantID: tenantID, sends: sends, logger: logger)
            verdicts = AcceptDecision.check(sends, tenant: tenant, senders: senders, knownTags: knownTags)
            let (suppressions, invalid) = try await Self.dropFacts(connection, tenantID: tenantID,
                                                                  addresses: AcceptDecision.recipientsToCheck(verdicts, sends: sends), logger: logger)
            AcceptDecision.drop(&verdicts, sends: sends, suppressions: suppressions, invalid: invalid)
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

    /// The tenant's status, grade and mail settings.
    static func tenantFacts(_ connection: PostgresConnection, tenantID: UUID, logger: Logger) async throws -> AcceptTenantFacts? {
        try await connection.query("""
            SELECT status, grade, track_opens_clicks, trigger_unsubscribe_link FROM tenants WHERE id = \(tenantID)
            """, logger: logger).decode((String, Int, Bool, Bool).self).first { _ in true }
            .map { AcceptTenantFacts(status: try .stored($0.0), grade: $0.1, trackByDefault: $0.2, triggerUnsubscribeLink: $0.3) }
    }

    /// The senders the sends name (with their domain's status) and which of their tags exist: one query each.
    static func senderFacts(_ connection: PostgresConnection, tenantID: UUID, sends: [ValidatedSend],
                            logger: Logger) async throws -> (senders: [String: AcceptSenderFacts], knownTags: Set<String>) {
        var senders: [String: AcceptSenderFacts] = [:]
        let froms = Array(Set(sends.map(\.from.description)))
        if !froms.isEmpty {
            for try await (address, id, type, replyTo, replyToStatus, domainStatus) in try await connection.query("""
                SELECT s.address, s.id, s.type, s.reply_to, s.reply_to_status, d.status FROM senders s JOIN domains d ON d.id = s.domain_id
                WHERE s.tenant_id = \(tenantID) AND s.address = ANY(\(froms)::text[])
                """, logger: logger).decode((String, UUID, String, String?, String, String).self) {
                senders[address] = AcceptSenderFacts(id: id, kind: try .stored(type), replyTo: replyTo, replyToStatus: try .stored(replyToStatus),
                                                     domainStatus: try .stored(domainStatus))
            }
        }
        let tagNames = Array(Set(sends.compactMap(\.tag)))
        var knownTags = Set<String>()
        if !tagNames.isEmpty {
            for try await name in try await connection.query("SELECT name FROM tags WHERE tenant_id = \(tenantID) AND name = ANY(\(tagNames)::text[])",
                                                             logger: logger).decode(String.self) {
                knownTags.insert(name)
            }
        }
        return (senders, knownTags)
    }

    /// What ``DropRules`` needs of `addresses`: each one's suppressions (scope and source) and which are on the
    /// invalid-address list — one statement, for the accept path and batch expansion alike.
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
