import Crypto
import Foundation
import HeraldCore
import Logging
import PostgresNIO

/// The answer to a send: one entry per recipient.
public struct SendResult: Sendable, Equatable, Codable {
    public struct Message: Sendable, Equatable, Codable {
        public var id: UUID
        public var to: String
        /// queued or dropped.
        public var status: String
        public var reason: String?
    }
    public var requestId: UUID
    public var messages: [Message]
}

/// The accept path: everything a send needs checked against the database, then one transaction that
/// writes a message row per recipient, their `accepted`/`dropped` events (the outbox) and the quota
/// counter — or nothing at all.
public struct SendStore: Sendable {
    let database: Database
    /// The day boundary of quotas.
    public var quotaTimeZone = TimeZone(identifier: "UTC")!
    /// How long an Idempotency-Key answers with its first result.
    public var idempotencyWindow: TimeInterval = 86_400

    public init(database: Database) {
        self.database = database
    }

    var logger: Logger { database.logger }

    /// An idempotent request: its key and the hash of its body.
    public struct Idempotency: Sendable {
        public var key: String
        public var bodyHash: [UInt8]
        public init(key: String, bodyHash: [UInt8]) {
            self.key = key
            self.bodyHash = bodyHash
        }
    }

    /// Accepts a validated single send for `tenantID` in a transaction of its own, or throws the refusal
    /// with nothing written. (The API goes through ``AcceptBatcher``, which shares one transaction among
    /// concurrent requests.)
    public func acceptSingle(tenantID: UUID, send: ValidatedSend, idempotency: Idempotency?, now: Date) async throws -> (SendResult, replayed: Bool) {
        try await database.withTenant(tenantID) { connection in
            try await acceptOne(on: connection, tenantID: tenantID, send: send, idempotency: idempotency, now: now)
        }
    }

    /// The accept path inside the caller's transaction (RLS already set to `tenantID`).
    func acceptOne(on connection: PostgresConnection, tenantID: UUID, send: ValidatedSend, idempotency: Idempotency?,
                   now: Date) async throws -> (SendResult, replayed: Bool) {
        let requestID = UUIDv7.make(at: now)
        let (day, monthStart) = SendRules.quotaDay(now, timeZone: quotaTimeZone)
        do {
            if let idempotency {
                let cutoff = now.addingTimeInterval(-idempotencyWindow)
                try await connection.query("""
                    DELETE FROM send_requests WHERE tenant_id = \(tenantID) AND idempotency_key = \(idempotency.key) AND created_at < \(cutoff)
                    """, logger: logger)
                // A concurrent request with the same key waits here until the first commits, then sees its row.
                let inserted = try await connection.query("""
                    INSERT INTO send_requests (id, tenant_id, idempotency_key, body_hash, response, created_at)
                    VALUES (\(requestID), \(tenantID), \(idempotency.key), \(ByteBuffer(bytes: idempotency.bodyHash)), '{}', \(now))
                    ON CONFLICT (tenant_id, idempotency_key) DO NOTHING RETURNING id
                    """, logger: logger).decode(UUID.self).first { _ in true }
                if inserted == nil {
                    let previous = try await connection.query("""
                        SELECT body_hash, response::text FROM send_requests WHERE tenant_id = \(tenantID) AND idempotency_key = \(idempotency.key)
                        """, logger: logger).decode((ByteBuffer, String).self).first { _ in true }
                    guard let (hash, response) = previous else { throw HeraldError.conflict("Idempotency.Conflict", "Retry the request.") }
                    guard Array(buffer: hash) == idempotency.bodyHash else {
                        throw HeraldError.conflict("Idempotency.Conflict", "This Idempotency-Key was used with a different request body in the last 24 hours.")
                    }
                    return (try JSONDecoder().decode(SendResult.self, from: Data(response.utf8)), true)
                }
            }

            // Account and sender.
            let grade = try await Self.sendingGrade(connection, tenantID: tenantID, logger: logger)
            let sender = try await connection.query("""
                SELECT s.id, d.status FROM senders s JOIN domains d ON d.id = s.domain_id
                WHERE s.tenant_id = \(tenantID) AND s.address = \(send.from.description)
                """, logger: logger).decode((UUID, String).self).first { _ in true }
            guard let (senderID, domainStatus) = sender else {
                throw HeraldError(code: "InvalidMailAddress.NotFound", status: 400,
                                  message: "\(send.from) is not a sender address of this account.", field: "from")
            }
            guard domainStatus == "verified" else {
                throw HeraldError(code: "Domain.NotVerified", status: 409, message: "The domain of \(send.from) is not verified now.", field: "from")
            }
            if let tag = send.tag {
                let known = try await connection.query("SELECT 1 FROM tags WHERE tenant_id = \(tenantID) AND name = \(tag)", logger: logger)
                    .decode(Int.self).first { _ in true }
                guard known != nil else { throw HeraldError.validation("The tag \(tag) does not exist; create it first.", field: "tag") }
            }

            // Suppressed and invalid recipients are dropped, the others go on.
            let addresses = send.recipients.map(\.description)
            var dropped: [String: String] = [:]
            for try await (address, reason) in try await connection.query("""
                SELECT address, 'suppressed' FROM suppressions WHERE tenant_id = \(tenantID) AND scope = '*' AND address = ANY(\(addresses)::text[])
                UNION ALL
                SELECT address, 'invalid_address' FROM invalid_addresses WHERE tenant_id = \(tenantID) AND listed AND address = ANY(\(addresses)::text[])
                """, logger: logger).decode((String, String).self) {
                dropped[address] = dropped[address] ?? reason
            }
            let accepted = addresses.filter { dropped[$0] == nil }

            // Quota: reserved by a conditional upsert, so concurrent sends serialise on the day's row and
            // can never overshoot; the month is checked under the same lock.
            if !accepted.isEmpty {
                try await Self.reserveQuota(connection, tenantID: tenantID, grade: grade, count: accepted.count, day: day, monthStart: monthStart,
                                            logger: logger)
            }

            // One message row per recipient and its event, written in one statement each.
            // Arrays of optionals do not bind, so "no reason" travels as "" and becomes NULL in SQL.
            var ids: [UUID] = [], statuses: [String] = [], reasons: [String] = []
            for address in addresses {
                ids.append(UUIDv7.make(at: now))
                statuses.append(dropped[address] == nil ? "queued" : "dropped")
                reasons.append(dropped[address] ?? "")
            }
            let headersJSON = String(decoding: try JSONSerialization.data(withJSONObject: send.headers.map { [$0.name, $0.value] }), as: UTF8.self)
            try await connection.query("""
                INSERT INTO messages (id, tenant_id, request_id, kind, priority, sender_id, from_address, from_name, to_address, reply_to, subject,
                                      html, body_text, headers, tag, status, reason, next_attempt_at, created_at, updated_at)
                SELECT i, \(tenantID), \(requestID), 'trigger', 0, \(senderID), \(send.from.description), \(send.fromAlias), a, \(send.replyTo?.description),
                       \(send.subject), \(send.html), \(send.text), \(headersJSON)::jsonb, \(send.tag), s, r,
                       CASE WHEN s = 'queued' THEN \(now) END, \(now), \(now)
                FROM unnest(\(ids)::uuid[], \(addresses)::text[], \(statuses)::text[], \(reasons)::text[]) AS u(i, a, s, r0),
                     LATERAL (SELECT nullif(r0, '') AS r) AS reason
                """, logger: logger)
            try await connection.query("""
                INSERT INTO events (tenant_id, message_id, type, data, created_at)
                SELECT \(tenantID), i, CASE WHEN s = 'queued' THEN 'message.accepted' ELSE 'message.dropped' END,
                       jsonb_strip_nulls(jsonb_build_object('messageId', i, 'to', a, 'from', \(send.from.description), 'status', s, 'reason', r,
                                                            'tag', \(send.tag)::text)),
                       \(now)
                FROM unnest(\(ids)::uuid[], \(addresses)::text[], \(statuses)::text[], \(reasons)::text[]) AS u(i, a, s, r0),
                     LATERAL (SELECT nullif(r0, '') AS r) AS reason
                """, logger: logger)
            let result = SendResult(requestId: requestID, messages: zip(ids, zip(addresses, zip(statuses, reasons))).map {
                SendResult.Message(id: $0.0, to: $0.1.0, status: $0.1.1.0, reason: $0.1.1.1.isEmpty ? nil : $0.1.1.1)
            })
            if let idempotency {
                let json = String(decoding: try JSONEncoder().encode(result), as: UTF8.self)
                try await connection.query("""
                    UPDATE send_requests SET response = \(json)::jsonb WHERE tenant_id = \(tenantID) AND idempotency_key = \(idempotency.key)
                    """, logger: logger)
            }
            return (result, false)
        }
    }

    /// The tenant's grade, after refusing a frozen or banned account (inside the sending transaction).
    static func sendingGrade(_ connection: PostgresConnection, tenantID: UUID, logger: Logger) async throws -> Int {
        let tenant = try await connection.query("SELECT status, grade FROM tenants WHERE id = \(tenantID)", logger: logger)
            .decode((String, Int).self).first { _ in true }
        guard let (status, grade) = tenant else { throw HeraldError.notFound("tenant") }
        if status == "frozen" { throw HeraldError.accountFrozen }
        if status == "banned" { throw HeraldError.accountBanned }
        return grade
    }

    /// Reserves `count` of the day's quota by a conditional upsert (concurrent sends serialise on the
    /// day's row and can never overshoot), then checks the month (daily × 30) under the same lock.
    static func reserveQuota(_ connection: PostgresConnection, tenantID: UUID, grade: Int, count: Int, day: String, monthStart: String,
                             logger: Logger) async throws {
        let daily = GradeQuota.daily(grade: grade)
        let reserved = try await connection.query("""
            INSERT INTO quota_usage (tenant_id, day, used) SELECT \(tenantID), \(day)::date, \(count) WHERE \(count) <= \(daily)
            ON CONFLICT (tenant_id, day) DO UPDATE SET used = quota_usage.used + EXCLUDED.used
                WHERE quota_usage.used + EXCLUDED.used <= \(daily)
            RETURNING used
            """, logger: logger).decode(Int.self).first { _ in true }
        guard reserved != nil else {
            throw HeraldError(code: "Quota.Exceeded", status: 429, message: "This request needs \(count) of today's quota of \(daily), which is not left.")
        }
        let month = try await connection.query("""
            SELECT coalesce(sum(used), 0)::int FROM quota_usage
            WHERE tenant_id = \(tenantID) AND day >= \(monthStart)::date AND day <= \(day)::date
            """, logger: logger).decode(Int.self).first { _ in true } ?? 0
        guard month <= daily * 30 else {
            throw HeraldError(code: "Quota.Exceeded", status: 429, message: "This request would pass the monthly quota of \(daily * 30).")
        }
    }

    /// Hash of a request body for idempotency (SHA-256 of its canonical JSON).
    public static func bodyHash(_ canonicalJSON: [UInt8]) -> [UInt8] { Array(SHA256.hash(data: canonicalJSON)) }
}

/// A suppressed address.
public struct SuppressionRecord: Sendable, Equatable {
    public var address: String
    public var scope: String
    public var source: String
    public var createdAt: Date
}

extension SendStore {
    /// Adds a tenant-wide suppression (idempotent).
    public func addSuppression(tenantID: UUID, address: String, source: String = "api", actor: AuditActor) async throws -> SuppressionRecord {
        let address = try MailAddress(address)
        return try await database.withTenant(tenantID) { connection in
            try await connection.query("""
                INSERT INTO suppressions (tenant_id, address, scope, source) VALUES (\(tenantID), \(address.description), '*', \(source))
                ON CONFLICT DO NOTHING
                """, logger: logger)
            try await AuditLog.record(on: connection, logger: logger, tenantID: tenantID, actor: actor, action: "dm:AddSuppression",
                                      resource: ResourceName.tenantWildcard(tenantID: tenantID.uuidString.lowercased()),
                                      detail: ["address": address.description])
            let row = try await connection.query("""
                SELECT address, scope, source, created_at FROM suppressions WHERE tenant_id = \(tenantID) AND address = \(address.description) AND scope = '*'
                """, logger: logger).decode((String, String, String, Date).self).first { _ in true }!
            return SuppressionRecord(address: row.0, scope: row.1, source: row.2, createdAt: row.3)
        }
    }

    public func listSuppressions(tenantID: UUID) async throws -> [SuppressionRecord] {
        try await database.withTenant(tenantID) { connection in
            var items: [SuppressionRecord] = []
            for try await (address, scope, source, created) in try await connection.query("""
                SELECT address, scope, source, created_at FROM suppressions WHERE tenant_id = \(tenantID) ORDER BY address, scope LIMIT 1000
                """, logger: logger).decode((String, String, String, Date).self) {
                items.append(SuppressionRecord(address: address, scope: scope, source: source, createdAt: created))
            }
            return items
        }
    }

    public func removeSuppression(tenantID: UUID, address: String, actor: AuditActor) async throws {
        try await database.withTenant(tenantID) { connection in
            let removed = try await connection.query("""
                DELETE FROM suppressions WHERE tenant_id = \(tenantID) AND address = \(address.lowercased()) RETURNING address
                """, logger: logger).decode(String.self).first { _ in true }
            guard removed != nil else { throw HeraldError.notFound("suppression") }
            try await AuditLog.record(on: connection, logger: logger, tenantID: tenantID, actor: actor, action: "dm:RemoveSuppression",
                                      resource: ResourceName.tenantWildcard(tenantID: tenantID.uuidString.lowercased()),
                                      detail: ["address": address.lowercased()])
        }
    }
}
