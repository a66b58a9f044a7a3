import Foundation
import HeraldCore
import Logging
import PostgresNIO

/// The writes of the accepting transaction: Idempotency-Keys claimed and released, the messages with their
/// events and the quota's usage, the answers kept for replays.
extension SendStore {
    /// Inserts the jobs' Idempotency-Keys (expired ones first removed);
    /// a key that was already there answers its job with the stored result (same body) or
    /// `Idempotency.Conflict`. Answers the indices of the jobs whose key this transaction inserted.
    func claimIdempotencyKeys(_ connection: PostgresConnection, tenantID: UUID, jobs: [AcceptBatcher.Job], requestIDs: [UUID],
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

    /// The answers of the keyed jobs, kept for their replays.
    func storeAnswers(_ connection: PostgresConnection, tenantID: UUID, answers: [(key: String, result: SendResult)]) async throws {
        guard !answers.isEmpty else { return }
        let encoder = JSONEncoder()
        let bodies = try answers.map { String(decoding: try encoder.encode($0.result), as: UTF8.self) }
        try await connection.query("""
            UPDATE send_requests r SET response = v.body::jsonb FROM unnest(\(answers.map(\.key))::text[], \(bodies)::text[]) AS v(key, body)
            WHERE r.tenant_id = \(tenantID) AND r.idempotency_key = v.key
            """, logger: logger)
    }

    /// Removes the Idempotency-Keys this transaction inserted for jobs that were then refused, so that a
    /// retry of a refused request is judged afresh (as if the refusal had written nothing).
    func releaseKeys(_ connection: PostgresConnection, tenantID: UUID, jobs: [AcceptBatcher.Job], claimed: Set<Int>,
                     outcomes: [AcceptOutcome?]) async throws {
        let refused = claimed.filter { if case .some(.success) = outcomes[$0] { false } else { true } }.map { jobs[$0].idempotency!.key }
        guard !refused.isEmpty else { return }
        try await connection.query("DELETE FROM send_requests WHERE tenant_id = \(tenantID) AND idempotency_key = ANY(\(refused)::text[])",
                                   logger: logger)
    }

    /// One message row per recipient of the admitted jobs (queued, or dropped with its reason, as their plans
    /// say), its `message.accepted` / `message.dropped` event and the quota taken, in one statement — or
    /// nothing at all, answering nil, when what was taken no longer fits the day's row as it is now (see
    /// ``QuotaUsage``). The per-request values travel once per job and are joined to the per-recipient ones
    /// by ordinal. Arrays of optionals do not bind, so "none" travels as "" and becomes NULL in SQL.
    func insertMessages(_ connection: PostgresConnection, tenantID: UUID, jobs: [AcceptBatcher.Job], plans: [Int: AcceptPlan], requestIDs: [UUID],
                        quota: QuotaUsage?) async throws -> [(index: Int, result: SendResult)]? {
        var jobRequestIDs: [UUID] = [], senderIDs: [UUID] = [], froms: [String] = [], aliases: [String] = [], replyToAddresses: [String] = []
        var subjects: [String] = [], htmls: [String] = [], texts: [String] = [], headers: [String] = [], tags: [String] = [], nows: [Date] = []
        var trackings: [Bool] = [], raws: [ByteBuffer] = [], kinds: [String] = [], priorities: [Int] = [], unsubscribes: [Bool] = []
        var ids: [UUID] = [], ordinals: [Int] = [], addresses: [String] = [], statuses: [String] = [], reasons: [String] = []
        var results: [(index: Int, result: SendResult)] = []
        for (ordinal, index) in plans.keys.sorted().enumerated() {
            let job = jobs[index], send = job.send, plan = plans[index]!
            jobRequestIDs.append(requestIDs[index])
            senderIDs.append(plan.senderID)
            kinds.append(plan.kind.rawValue)
            priorities.append(plan.priority)
            unsubscribes.append(plan.unsubscribeLink)
            froms.append(send.from.description)
            aliases.append(send.fromAlias ?? "")
            replyToAddresses.append(plan.replyTo ?? "")
            subjects.append(send.subject)
            htmls.append(send.html ?? "")
            texts.append(send.text ?? "")
            headers.append(send.headers.isEmpty ? "[]"
                           : String(decoding: try JSONSerialization.data(withJSONObject: send.headers.map { [$0.name, $0.value] }), as: UTF8.self))
            tags.append(send.tag ?? "")
            nows.append(job.now)
            trackings.append(plan.tracking)
            raws.append(ByteBuffer(bytes: send.raw ?? []))
            var messages: [SendResult.Message] = []
            for recipient in send.recipients {
                let address = recipient.description, id = UUIDv7.make(at: job.now), reason = plan.dropReason(address)
                ids.append(id)
                ordinals.append(ordinal + 1)
                addresses.append(address)
                let status: MessageStatus = reason == nil ? .queued : .dropped
                statuses.append(status.rawValue)
                reasons.append(reason ?? "")
                messages.append(.init(id: id, to: address, status: status, reason: reason))
            }
            results.append((index, SendResult(requestId: requestIDs[index], messages: messages)))
        }
        let statement = InsertMessagesStatement(
            tenantID: tenantID, quotaUpdate: quota != nil, quotaTaken: quota?.taken ?? 0, quotaCeiling: quota?.ceiling ?? 0,
            quotaDay: quota?.day ?? "1970-01-01", quotaLeased: quota?.holder != nil,
            quotaHolder: quota?.holder ?? UUID.none, jobs: .init(
                requestIDs: jobRequestIDs, senderIDs: senderIDs, froms: froms, aliases: aliases, replyTos: replyToAddresses, subjects: subjects,
                htmls: htmls, texts: texts, headers: headers, tags: tags, nows: nows, trackings: trackings, raws: raws, kinds: kinds,
                priorities: priorities, unsubscribes: unsubscribes),
            recipients: .init(ids: ids, ordinals: ordinals, addresses: addresses, statuses: statuses, reasons: reasons))
        var written = false
        for ok in try await connection.run(statement, prepared: database.preparedStatements, logger: logger) { written = ok }
        return written ? results : nil
    }
}

/// The quota an accepting transaction takes on `day`: `taken` more, as long as the day's usage stays
/// within `ceiling` (``QuotaAllocation/ceiling``). The usage it was decided on may have been read
/// without a lock; the write checks against the row as it is when it locks it.
struct QuotaUsage {
    var day: String
    var taken: Int
    var ceiling: Int
    /// Taken from this holder's lease of the day (which must have it left; `ceiling` then plays no part)
    /// instead of the day's row.
    var holder: UUID?
}

/// The statement of ``SendStore/insertMessages(_:tenantID:jobs:plans:requestIDs:quota:)``, prepared once per
/// connection (its parse and plan cost more than its execution for a small batch; inside the function the
/// plan is kept per connection too).
struct InsertMessagesStatement: PostgresPreparedStatement {
    /// One value per admitted job, in ordinal order.
    struct Jobs {
        var requestIDs: [UUID], senderIDs: [UUID], froms: [String], aliases: [String], replyTos: [String], subjects: [String], htmls: [String]
        var texts: [String], headers: [String], tags: [String], nows: [Date], trackings: [Bool], raws: [ByteBuffer], kinds: [String]
        var priorities: [Int], unsubscribes: [Bool]
    }

    /// One value per recipient; `ordinals` names each one's job (1-based).
    struct Recipients {
        var ids: [UUID], ordinals: [Int], addresses: [String], statuses: [String], reasons: [String]
    }

    static let name = "herald_accept_write"
    /// The write is `herald_accept_write` (migration 0028), which scopes itself to the tenant: it needs no
    /// transaction around it.
    static let sql = """
        SELECT herald_accept_write($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16::int4[], $17, $18, $19::int4, $20::int4,
                                   $21::date, $22, $23, $24, $25, $26, $27, $28, $29, $30)
        """
    typealias Row = Bool

    var tenantID: UUID
    /// The quota taken on `quotaDay` (``QuotaUsage``), when `quotaUpdate` says so. (No optional values: a
    /// prepared statement's parameter types are those of its first execution, and a NULL has none.)
    var quotaUpdate: Bool, quotaTaken: Int, quotaCeiling: Int, quotaDay: String
    /// Whether the quota is taken from `quotaHolder`'s lease (the nil UUID when not).
    var quotaLeased: Bool, quotaHolder: UUID
    var jobs: Jobs
    var recipients: Recipients

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 30)
        bindings.append(tenantID)
        bindings.append(jobs.requestIDs)
        bindings.append(jobs.senderIDs)
        bindings.append(jobs.froms)
        bindings.append(jobs.aliases)
        bindings.append(jobs.replyTos)
        bindings.append(jobs.subjects)
        bindings.append(jobs.htmls)
        bindings.append(jobs.texts)
        bindings.append(jobs.headers)
        bindings.append(jobs.tags)
        bindings.append(jobs.nows)
        bindings.append(jobs.trackings)
        bindings.append(jobs.raws)
        bindings.append(jobs.kinds)
        bindings.append(jobs.priorities)
        bindings.append(jobs.unsubscribes)
        bindings.append(quotaUpdate)
        bindings.append(quotaTaken)
        bindings.append(quotaCeiling)
        bindings.append(quotaDay)
        bindings.append(recipients.ids)
        bindings.append(recipients.ordinals)
        bindings.append(recipients.addresses)
        bindings.append(recipients.statuses)
        bindings.append(recipients.reasons)
        bindings.append(EventType.messageAccepted.rawValue)
        bindings.append(EventType.messageDropped.rawValue)
        bindings.append(quotaLeased)
        bindings.append(quotaHolder)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Bool.self) }
}
