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
    /// say), its `message.accepted` / `message.dropped` event and the quota's new usage, in one statement.
    /// The per-request values travel once per job and are joined to the per-recipient ones by ordinal.
    /// Arrays of optionals do not bind, so "none" travels as "" and becomes NULL in SQL.
    func insertMessages(_ connection: PostgresConnection, tenantID: UUID, jobs: [AcceptBatcher.Job], plans: [Int: AcceptPlan], requestIDs: [UUID],
                        quotaUsed: (day: String, used: Int)?) async throws -> [(index: Int, result: SendResult)] {
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
            headers.append(String(decoding: try JSONSerialization.data(withJSONObject: send.headers.map { [$0.name, $0.value] }), as: UTF8.self))
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
        try await connection.query("""
            WITH j AS (
                SELECT * FROM unnest(\(jobRequestIDs)::uuid[], \(senderIDs)::uuid[], \(froms)::text[], \(aliases)::text[], \(replyToAddresses)::text[],
                                     \(subjects)::text[], \(htmls)::text[], \(texts)::text[], \(headers)::text[], \(tags)::text[], \(nows)::timestamptz[],
                                     \(trackings)::bool[], \(raws)::bytea[], \(kinds)::text[], \(priorities)::int4[], \(unsubscribes)::bool[])
                    WITH ORDINALITY AS j(request_id, sender_id, from_address, from_name, reply_to, subject, html, body_text, headers, tag, at, tracking,
                                         raw, kind, priority, unsubscribe_link, n)
            ), q AS (
                UPDATE quota_usage SET used = \(quotaUsed?.used ?? 0)
                WHERE \(quotaUsed != nil) AND tenant_id = \(tenantID) AND day = \(quotaUsed?.day ?? "1970-01-01")::date
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
            SELECT \(tenantID), id, CASE WHEN status = 'queued' THEN \(EventType.messageAccepted.rawValue) ELSE \(EventType.messageDropped.rawValue) END,
                   herald_message_event(id, to_address, from_address, tag, p_status => status, p_reason => reason),
                   created_at
            FROM m
            """, logger: logger)
        return results
    }
}
