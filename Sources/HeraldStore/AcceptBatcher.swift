import Foundation
import HeraldCore
import Logging
import PostgresNIO

/// Group commit for the accept path: concurrent sends share one transaction. While a transaction is
/// being written, new requests gather; the next one takes them all (up to `maxBatch`) and accepts them
/// set-wise — one statement per step for all of a tenant's requests (see ``SendStore/acceptBatch(_:)``),
/// not one per request — so one commit, one WAL flush and one lock of a tenant's quota row answer them
/// all.
public actor AcceptBatcher {
    public struct Job: Sendable {
        public var tenantID: UUID
        public var send: ValidatedSend
        public var idempotency: SendStore.Idempotency?
        public var now: Date

        public init(tenantID: UUID, send: ValidatedSend, idempotency: SendStore.Idempotency?, now: Date) {
            self.tenantID = tenantID
            self.send = send
            self.idempotency = idempotency
            self.now = now
        }
    }

    typealias Outcome = Result<(SendResult, Bool), any Error>

    let store: SendStore
    /// Requests per transaction.
    public let maxBatch: Int
    /// Transactions written at once (4): a batch spends most of its time on round trips, so a few in
    /// flight overlap them. They cannot deadlock: every batch takes its locks in one order (tenants
    /// sorted; a tenant's Idempotency-Keys, sorted, before its quota row).
    public let maxFlushes: Int
    private var pending: [(job: Job, continuation: CheckedContinuation<Outcome, Never>)] = []
    private var flushing = 0

    public init(store: SendStore, maxBatch: Int = 256, maxFlushes: Int = 4) {
        self.store = store
        self.maxBatch = maxBatch
        self.maxFlushes = maxFlushes
    }

    /// Accepts a send (in a transaction shared with concurrent ones), or throws its refusal.
    public func accept(_ job: Job) async throws -> (SendResult, replayed: Bool) {
        let outcome = await withCheckedContinuation { (continuation: CheckedContinuation<Outcome, Never>) in
            pending.append((job, continuation))
            if flushing < maxFlushes {
                flushing += 1
                Task { await self.flush() }
            }
        }
        return try outcome.get()
    }

    private func flush() async {
        while !pending.isEmpty {
            let batch = takeBatch()
            let outcomes = await store.acceptBatch(batch.map(\.job))
            for (entry, outcome) in zip(batch, outcomes) { entry.continuation.resume(returning: outcome) }
        }
        flushing -= 1
    }

    /// The next batch, in arrival order: at most `maxBatch` requests and each Idempotency-Key of a tenant
    /// once (a repeat waits for the next batch, where it finds the first one's answer).
    private func takeBatch() -> [(job: Job, continuation: CheckedContinuation<Outcome, Never>)] {
        var batch: [(job: Job, continuation: CheckedContinuation<Outcome, Never>)] = []
        var rest: [(job: Job, continuation: CheckedContinuation<Outcome, Never>)] = []
        var keys = Set<String>()
        for entry in pending {
            if batch.count < maxBatch, entry.job.idempotency.map({ keys.insert("\(entry.job.tenantID) \($0.key)").inserted }) ?? true {
                batch.append(entry)
            } else {
                rest.append(entry)
            }
        }
        pending = rest
        return batch
    }
}

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

    /// A sender address as the accept path needs it.
    struct AcceptedSender {
        var id: UUID
        var kind: MailKind
        var replyTo: String?
        var replyToStatus: String
        var domainStatus: String
    }

    struct GroupKey: Hashable, Comparable {
        var tenant: UUID
        var day: String
        static func < (lhs: GroupKey, rhs: GroupKey) -> Bool {
            (lhs.tenant.uuidString, lhs.day) < (rhs.tenant.uuidString, rhs.day)
        }
    }

    /// One tenant's jobs of one quota day, inside the batch transaction: a fixed number of statements
    /// whatever the number of jobs.
    private func acceptTenantJobs(on connection: PostgresConnection, tenantID: UUID, jobs: [AcceptBatcher.Job]) async throws -> [AcceptOutcome] {
        var outcomes = [AcceptOutcome?](repeating: nil, count: jobs.count)
        let requestIDs = jobs.map { UUIDv7.make(at: $0.now) }
        try await connection.query("SELECT set_config('herald.tenant_id', \(tenantID.uuidString), true)", logger: logger)

        // 1. Idempotency-Keys: claim the new ones (a concurrent transaction holding the same key makes this
        // wait for its commit); a key already claimed answers with its first result, or a conflict.
        let claimed = try await claimIdempotencyKeys(connection, tenantID: tenantID, jobs: jobs, requestIDs: requestIDs, outcomes: &outcomes)

        // 2. Account status, grade and mail settings.
        let tenant = try await connection.query("""
            SELECT status, grade, track_opens_clicks, trigger_unsubscribe_link FROM tenants WHERE id = \(tenantID)
            """, logger: logger).decode((String, Int, Bool, Bool).self).first { _ in true }
        let open = jobs.indices.filter { outcomes[$0] == nil }
        guard let (status, grade, trackByDefault, unsubscribeLink) = tenant, status != "frozen", status != "banned" else {
            let refusal = tenant?.0 == "banned" ? HeraldError.accountBanned : tenant == nil ? HeraldError.notFound("tenant") : .accountFrozen
            for index in open { outcomes[index] = .failure(refusal) }
            try await releaseKeys(connection, tenantID: tenantID, jobs: jobs, claimed: claimed, outcomes: outcomes)
            return outcomes.map { $0! }
        }

        // 3. Senders and tags of all the jobs, one query each.
        let froms = Array(Set(open.map { jobs[$0].send.from.description }))
        var senders: [String: AcceptedSender] = [:]
        for try await (address, id, type, replyTo, replyToStatus, domainStatus) in try await connection.query("""
            SELECT s.address, s.id, s.type, s.reply_to, s.reply_to_status, d.status FROM senders s JOIN domains d ON d.id = s.domain_id
            WHERE s.tenant_id = \(tenantID) AND s.address = ANY(\(froms)::text[])
            """, logger: logger).decode((String, UUID, String, String?, String, String).self) {
            senders[address] = AcceptedSender(id: id, kind: MailKind(rawValue: type) ?? .trigger, replyTo: replyTo, replyToStatus: replyToStatus,
                                              domainStatus: domainStatus)
        }
        let tagNames = Array(Set(open.compactMap { jobs[$0].send.tag }))
        var knownTags = Set<String>()
        if !tagNames.isEmpty {
            for try await name in try await connection.query("SELECT name FROM tags WHERE tenant_id = \(tenantID) AND name = ANY(\(tagNames)::text[])",
                                                             logger: logger).decode(String.self) {
                knownTags.insert(name)
            }
        }
        var replyTos: [Int: String] = [:]
        for index in open {
            let send = jobs[index].send
            do {
                guard let sender = senders[send.from.description] else { throw HeraldError.senderNotFound(send.from) }
                guard sender.domainStatus == "verified" else { throw HeraldError.domainNotVerified(send.from) }
                if let tag = send.tag, !knownTags.contains(tag) { throw HeraldError.unknownTag(tag) }
                replyTos[index] = try ReplyToRule.resolve(requested: send.replyTo, senderReplyTo: sender.replyTo, status: sender.replyToStatus)
            } catch let error as HeraldError {
                outcomes[index] = .failure(error)
            }
        }

        // 4. Suppressed and invalid recipients are dropped (by the rules of the sender's kind of mail), the others go on.
        let checked = jobs.indices.filter { outcomes[$0] == nil }
        let addresses = Array(Set(checked.flatMap { jobs[$0].send.recipients.map(\.description) }))
        let (suppressions, invalid) = try await Self.dropFacts(connection, tenantID: tenantID, addresses: addresses, logger: logger)
        var dropped: [Int: [String: String]] = [:]
        for index in checked {
            let send = jobs[index].send, kind = senders[send.from.description]!.kind
            for recipient in send.recipients {
                let address = recipient.description
                if let reason = DropRules.reason(kind: kind, listID: nil, tag: send.tag, suppressions: suppressions[address] ?? [],
                                                 invalid: invalid.contains(address)) {
                    dropped[index, default: [:]][address] = reason
                }
            }
        }

        // 5. Quota: the day's row locked once for all the jobs, shared out in arrival order.
        let needs = jobs.indices.map { index in jobs[index].send.recipients.count(where: { dropped[index]?[$0.description] == nil }) }
        var admitted = checked
        if checked.contains(where: { needs[$0] > 0 }) {
            let (day, monthStart) = SendRules.quotaDay(jobs[checked[0]].now, timeZone: quotaTimeZone)
            var quota = try await Self.lockQuota(connection, tenantID: tenantID, daily: GradeQuota.daily(grade: grade), day: day,
                                                 monthStart: monthStart, logger: logger)
            let before = quota.usedToday
            admitted = checked.filter { index in
                guard let refusal = quota.admit(needs[index]) else { return true }
                outcomes[index] = .failure(HeraldError.quotaExceeded(refusal, count: needs[index]))
                return false
            }
            if quota.usedToday != before { try await Self.storeQuota(connection, tenantID: tenantID, quota: quota, day: day, logger: logger) }
        }

        // 6. Every admitted job's messages and their events, in one statement.
        var results: [(index: Int, result: SendResult)] = []
        if !admitted.isEmpty {
            results = try await insertMessages(connection, tenantID: tenantID, jobs: jobs, admitted: admitted, requestIDs: requestIDs,
                                               senders: senders, replyTos: replyTos, dropped: dropped, trackByDefault: trackByDefault,
                                               unsubscribeLink: unsubscribeLink)
            for (index, result) in results { outcomes[index] = .success((result, false)) }
        }

        // 7. The answers of the keyed jobs, for their replays; refused jobs give their keys back.
        let answers = results.compactMap { entry in jobs[entry.index].idempotency.map { ($0.key, entry.result) } }
        if !answers.isEmpty {
            let encoder = JSONEncoder()
            let bodies = try answers.map { String(decoding: try encoder.encode($0.1), as: UTF8.self) }
            try await connection.query("""
                UPDATE send_requests r SET response = v.body::jsonb FROM unnest(\(answers.map(\.0))::text[], \(bodies)::text[]) AS v(key, body)
                WHERE r.tenant_id = \(tenantID) AND r.idempotency_key = v.key
                """, logger: logger)
        }
        try await releaseKeys(connection, tenantID: tenantID, jobs: jobs, claimed: claimed, outcomes: outcomes)
        return outcomes.map { $0! }
    }

    /// Step 1 of ``acceptTenantJobs``: inserts the jobs' Idempotency-Keys (expired ones first removed);
    /// a key that was already there answers its job with the stored result (same body) or
    /// `Idempotency.Conflict`. Answers the indices of the jobs whose key this transaction inserted.
    private func claimIdempotencyKeys(_ connection: PostgresConnection, tenantID: UUID, jobs: [AcceptBatcher.Job], requestIDs: [UUID],
                                      outcomes: inout [AcceptOutcome?]) async throws -> Set<Int> {
        let keyed = jobs.indices.filter { jobs[$0].idempotency != nil }.sorted { jobs[$0].idempotency!.key < jobs[$1].idempotency!.key }
        guard !keyed.isEmpty else { return [] }
        let keys = keyed.map { jobs[$0].idempotency!.key }
        let hashes = keyed.map { ByteBuffer(bytes: jobs[$0].idempotency!.bodyHash) }
        let nows = keyed.map { jobs[$0].now }
        let cutoffs = nows.map { $0.addingTimeInterval(-idempotencyWindow) }
        try await connection.query("""
            DELETE FROM send_requests r USING unnest(\(keys)::text[], \(cutoffs)::timestamptz[]) AS c(key, cutoff)
            WHERE r.tenant_id = \(tenantID) AND r.idempotency_key = c.key AND r.created_at < c.cutoff
            """, logger: logger)
        var inserted = Set<String>()
        for try await key in try await connection.query("""
            INSERT INTO send_requests (id, tenant_id, idempotency_key, body_hash, response, created_at)
            SELECT id, \(tenantID), key, hash, '{}', at
            FROM unnest(\(keyed.map { requestIDs[$0] })::uuid[], \(keys)::text[], \(hashes)::bytea[], \(nows)::timestamptz[]) AS v(id, key, hash, at)
            ON CONFLICT (tenant_id, idempotency_key) DO NOTHING RETURNING idempotency_key
            """, logger: logger).decode(String.self) {
            inserted.insert(key)
        }
        let taken = keyed.filter { !inserted.contains(jobs[$0].idempotency!.key) }
        if !taken.isEmpty {
            var previous: [String: (hash: [UInt8], response: String)] = [:]
            for try await (key, hash, response) in try await connection.query("""
                SELECT idempotency_key, body_hash, response::text FROM send_requests
                WHERE tenant_id = \(tenantID) AND idempotency_key = ANY(\(taken.map { jobs[$0].idempotency!.key })::text[])
                """, logger: logger).decode((String, ByteBuffer, String).self) {
                previous[key] = (Array(buffer: hash), response)
            }
            for index in taken {
                let idempotency = jobs[index].idempotency!
                guard let first = previous[idempotency.key], let result = try? JSONDecoder().decode(SendResult.self, from: Data(first.response.utf8)) else {
                    outcomes[index] = .failure(HeraldError.conflict("Idempotency.Conflict", "Retry the request."))
                    continue
                }
                guard first.hash == idempotency.bodyHash else {
                    outcomes[index] = .failure(HeraldError.conflict(
                        "Idempotency.Conflict", "This Idempotency-Key was used with a different request body in the last 24 hours."))
                    continue
                }
                outcomes[index] = .success((result, true))
            }
        }
        return Set(keyed.filter { inserted.contains(jobs[$0].idempotency!.key) })
    }

    /// Removes the Idempotency-Keys this transaction inserted for jobs that were then refused, so that a
    /// retry of a refused request is judged afresh (as if the refusal had written nothing).
    private func releaseKeys(_ connection: PostgresConnection, tenantID: UUID, jobs: [AcceptBatcher.Job], claimed: Set<Int>,
                             outcomes: [AcceptOutcome?]) async throws {
        let refused = claimed.filter { if case .some(.success) = outcomes[$0] { false } else { true } }.map { jobs[$0].idempotency!.key }
        guard !refused.isEmpty else { return }
        try await connection.query("DELETE FROM send_requests WHERE tenant_id = \(tenantID) AND idempotency_key = ANY(\(refused)::text[])",
                                   logger: logger)
    }

    /// Step 6 of ``acceptTenantJobs``: one message row per recipient of the admitted jobs (queued, or
    /// dropped with its reason) and its `message.accepted` / `message.dropped` event, in one statement.
    /// The per-request values travel once per job and are joined to the per-recipient ones by ordinal.
    /// Arrays of optionals do not bind, so "none" travels as "" and becomes NULL in SQL.
    private func insertMessages(_ connection: PostgresConnection, tenantID: UUID, jobs: [AcceptBatcher.Job], admitted: [Int], requestIDs: [UUID],
                                senders: [String: AcceptedSender], replyTos: [Int: String], dropped: [Int: [String: String]], trackByDefault: Bool,
                                unsubscribeLink: Bool) async throws -> [(index: Int, result: SendResult)] {
        var jobRequestIDs: [UUID] = [], senderIDs: [UUID] = [], froms: [String] = [], aliases: [String] = [], replyToAddresses: [String] = []
        var subjects: [String] = [], htmls: [String] = [], texts: [String] = [], headers: [String] = [], tags: [String] = [], nows: [Date] = []
        var trackings: [Bool] = [], raws: [ByteBuffer] = [], kinds: [String] = [], priorities: [Int] = [], unsubscribes: [Bool] = []
        var ids: [UUID] = [], ordinals: [Int] = [], addresses: [String] = [], statuses: [String] = [], reasons: [String] = []
        var results: [(index: Int, result: SendResult)] = []
        for (ordinal, index) in admitted.enumerated() {
            let job = jobs[index], send = job.send
            jobRequestIDs.append(requestIDs[index])
            let sender = senders[send.from.description]!
            senderIDs.append(sender.id)
            kinds.append(sender.kind.rawValue)
            priorities.append(sender.kind.priority)
            // Batch mail always carries the one-click unsubscribe fields; trigger mail when the tenant asks.
            unsubscribes.append(sender.kind == .batch || unsubscribeLink)
            froms.append(send.from.description)
            aliases.append(send.fromAlias ?? "")
            replyToAddresses.append(replyTos[index] ?? "")
            subjects.append(send.subject)
            htmls.append(send.html ?? "")
            texts.append(send.text ?? "")
            headers.append(String(decoding: try JSONSerialization.data(withJSONObject: send.headers.map { [$0.name, $0.value] }), as: UTF8.self))
            tags.append(send.tag ?? "")
            nows.append(job.now)
            trackings.append(send.tracking ?? trackByDefault)
            raws.append(ByteBuffer(bytes: send.raw ?? []))
            var messages: [SendResult.Message] = []
            for recipient in send.recipients {
                let address = recipient.description, id = UUIDv7.make(at: job.now), reason = dropped[index]?[address]
                ids.append(id)
                ordinals.append(ordinal + 1)
                addresses.append(address)
                statuses.append(reason == nil ? "queued" : "dropped")
                reasons.append(reason ?? "")
                messages.append(.init(id: id, to: address, status: reason == nil ? "queued" : "dropped", reason: reason))
            }
            results.append((index, SendResult(requestId: requestIDs[index], messages: messages)))
        }
        try await connection.query("""
            WITH j AS (
                SELECT * FROM unnest(\(jobRequestIDs)::uuid[], \(senderIDs)::uuid[], \(froms)::text[], \(aliases)::text[], \(replyToAddresses)::text[],
                                     \(subjects)::text[], \(htmls)::text[], \(texts)::text[], \(headers)::text[], \(tags)::text[], \(nows)::timestamptz[],
                                     \(trackings)::bool[], \(raws)::bytea[], \(kinds)::text[], \(priorities)::int4[], \(unsubscribes)::bool[])
                    WITH ORDINALITY AS j(request_id, sender_id, from_address, from_name, reply_to, subject, html, body_text, headers, tag, at, tracking,
                                         raw, kind, priority, unsubscribe_link, n)
            ), r AS (
                INSERT INTO message_raw (tenant_id, request_id, raw, created_at)
                SELECT \(tenantID), j.request_id, j.raw, j.at FROM j WHERE octet_length(j.raw) > 0
            ), m AS (
                INSERT INTO messages (id, tenant_id, request_id, kind, priority, sender_id, from_address, from_name, to_address, reply_to, subject,
                                      html, body_text, headers, tag, status, reason, next_attempt_at, created_at, updated_at, tracking,
                                      unsubscribe_link, raw)
                SELECT r.id, \(tenantID), j.request_id, j.kind, j.priority, j.sender_id, j.from_address, nullif(j.from_name, ''), r.to_address,
                       nullif(j.reply_to, ''), j.subject, nullif(j.html, ''), nullif(j.body_text, ''), j.headers::jsonb, nullif(j.tag, ''),
                       r.status, nullif(r.reason, ''), CASE WHEN r.status = 'queued' THEN j.at END, j.at, j.at,
                       j.tracking, j.unsubscribe_link, octet_length(j.raw) > 0
                FROM unnest(\(ids)::uuid[], \(ordinals)::int8[], \(addresses)::text[], \(statuses)::text[], \(reasons)::text[])
                         AS r(id, n, to_address, status, reason)
                JOIN j USING (n)
                RETURNING id, to_address, from_address, status, reason, tag, created_at
            )
            INSERT INTO events (tenant_id, message_id, type, data, created_at)
            SELECT \(tenantID), id, CASE WHEN status = 'queued' THEN 'message.accepted' ELSE 'message.dropped' END,
                   jsonb_strip_nulls(jsonb_build_object('messageId', id, 'to', to_address, 'from', from_address, 'status', status, 'reason', reason,
                                                        'tag', tag)),
                   created_at
            FROM m
            """, logger: logger)
        return results
    }
}
