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
        public var status: MessageStatus
        public var reason: String?

        public init(id: UUID, to: String, status: MessageStatus, reason: String?) {
            self.id = id
            self.to = to
            self.status = status
            self.reason = reason
        }
    }
    public var requestId: UUID
    public var messages: [Message]

    public init(requestId: UUID, messages: [Message]) {
        self.requestId = requestId
        self.messages = messages
    }
}

/// The accept path's store: the facts a send is decided on (``AcceptDecision``), read in one transaction
/// that then writes a message row per recipient, their `accepted`/`dropped` events (the outbox) and the
/// quota counter as decided — or nothing at all (see SendStore+Accept.swift).
public struct SendStore: Sendable {
    let database: Database
    /// The day boundary of quotas.
    public var quotaTimeZone = TimeZone(identifier: "UTC")!
    /// How long an Idempotency-Key answers with its first result.
    public var idempotencyWindow: TimeInterval = 86_400
    /// The holder of this process's quota leases (its `herald_processes` id; ``QuotaLease``), or nil to take
    /// every send's quota from the tenant's day row.
    public var quotaHolder: UUID?
    /// Product limits (the send limits, invalid-address removals) and the tenant's overrides.
    public var limits = TenantLimits()
    /// The installation's grade → daily quota table (a tenant may have its own).
    public var quotaTable = QuotaTable.standard

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
    /// concurrent requests; both run the same set-based code.)
    public func acceptSingle(tenantID: UUID, send: ValidatedSend, idempotency: Idempotency?, now: Date) async throws -> (SendResult, replayed: Bool) {
        try await acceptBatch([.init(tenantID: tenantID, send: send, idempotency: idempotency, now: now)])[0].get()
    }

    /// Locks the tenant's quota row of `day` (creating it) until the transaction ends, and reads what is
    /// used today and earlier this month (`herald_lock_quota`): concurrent senders serialise here and can
    /// never overshoot.
    static func lockQuota(_ connection: PostgresConnection, tenantID: UUID, daily: Int, day: String, monthStart: String,
                          logger: Logger) async throws -> QuotaAllocation {
        let row = try await connection.query("SELECT used_today, used_earlier FROM herald_lock_quota(\(tenantID), \(day)::date, \(monthStart)::date)",
                                             logger: logger).decode((Int, Int).self).first { _ in true }
        let (today, earlier) = row ?? (0, 0)
        return QuotaAllocation(daily: daily, usedToday: today, usedEarlierThisMonth: earlier)
    }

    /// Writes back the day's usage of a quota locked by ``lockQuota``.
    static func storeQuota(_ connection: PostgresConnection, tenantID: UUID, quota: QuotaAllocation, day: String, logger: Logger) async throws {
        try await connection.query("UPDATE quota_usage SET used = \(quota.usedToday) WHERE tenant_id = \(tenantID) AND day = \(day)::date",
                                   logger: logger)
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
                                      resource: ResourceName.tenantWildcard(tenantID: tenantID.lowercasedString),
                                      detail: ["address": address.description])
            let row = try await connection.query("""
                SELECT address, scope, source, created_at FROM suppressions WHERE tenant_id = \(tenantID) AND address = \(address.description) AND scope = '*'
                """, logger: logger).decode((String, String, String, Date).self).first { _ in true }!
            return SuppressionRecord(address: row.0, scope: row.1, source: row.2, createdAt: row.3)
        }
    }

    /// The tenant's suppressions by address, at most `limit` (1,000 for the list, all for the CSV export).
    public func listSuppressions(tenantID: UUID, limit: Int = 1_000) async throws -> [SuppressionRecord] {
        try await database.withTenant(tenantID) { connection in
            var items: [SuppressionRecord] = []
            for try await (address, scope, source, created) in try await connection.query("""
                SELECT address, scope, source, created_at FROM suppressions WHERE tenant_id = \(tenantID) ORDER BY address, scope LIMIT \(limit)
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
                                      resource: ResourceName.tenantWildcard(tenantID: tenantID.lowercasedString),
                                      detail: ["address": address.lowercased()])
        }
    }
}

extension UUID {
    /// The nil UUID (all zeros): "none" where a statement's parameter cannot be NULL.
    static let none = UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
}
