import Foundation
import HeraldCore
import Logging
import PostgresNIO
import Prometheus

/// What happens to an account's standing, inside the caller's transaction: the grade history row with
/// its reason and figures, the `account.*` event in the outbox, and the account's queued mail —
/// paused when it is frozen, queued again when it is unfrozen, dropped (with events) when it is banned.
enum AccountChanges {
    static func record(_ connection: PostgresConnection, logger: Logger, tenantID: UUID, change: GradeChange, from: Int, to: Int, reason: String,
                       figures: DayFigures?, actor: String, now: Date) async throws {
        let figuresJSON = figures.map { String(decoding: (try? JSONEncoder().encode(GradeFiguresBody($0))) ?? Data("{}".utf8), as: UTF8.self) } ?? "{}"
        let type = change.event.rawValue
        try await connection.query("""
            WITH history AS (
                INSERT INTO grade_history (tenant_id, change, from_grade, to_grade, reason, figures, actor, created_at)
                VALUES (\(tenantID), \(change.rawValue), \(from), \(to), \(reason), \(figuresJSON)::jsonb, \(actor), \(now))
            )
            INSERT INTO events (tenant_id, type, data, created_at, expires_on)
            VALUES (\(tenantID), \(type), jsonb_build_object('from', \(from)::int, 'to', \(to)::int, 'reason', \(reason)::text,
                                                              'figures', \(figuresJSON)::jsonb), \(now), herald_keep_events(\(tenantID)))
            """, logger: logger)
    }

    /// A frozen account's waiting mail is set aside (not dropped).
    static func pauseMail(_ connection: PostgresConnection, logger: Logger, tenantID: UUID, now: Date) async throws {
        try await connection.query("""
            UPDATE messages SET status = 'paused', updated_at = \(now)
            WHERE expires_on IS NULL AND tenant_id = \(tenantID) AND status IN ('queued', 'deferred')
            """, logger: logger)
    }

    /// An unfrozen account's paused mail is due again.
    static func resumeMail(_ connection: PostgresConnection, logger: Logger, tenantID: UUID, now: Date) async throws {
        try await connection.query("""
            UPDATE messages SET status = CASE WHEN attempts > 0 THEN 'deferred' ELSE 'queued' END,
                   next_attempt_at = greatest(coalesce(next_attempt_at, \(now)), \(now)), updated_at = \(now)
            WHERE expires_on IS NULL AND tenant_id = \(tenantID) AND status = 'paused'
            """, logger: logger)
    }

    /// A banned account's waiting mail is dropped, each message with its `message.dropped` event.
    static func dropMail(_ connection: PostgresConnection, logger: Logger, tenantID: UUID, now: Date) async throws {
        try await connection.query("""
            WITH dropped AS (
                UPDATE messages SET status = 'dropped', reason = 'account_banned', next_attempt_at = NULL, updated_at = \(now),
                       expires_on = herald_keep_messages(\(tenantID))
                WHERE expires_on IS NULL AND tenant_id = \(tenantID) AND status IN ('queued', 'deferred', 'paused')
                RETURNING id, to_address, from_address, tag, status, reason
            )
            INSERT INTO events (tenant_id, message_id, type, data, created_at, expires_on)
            SELECT \(tenantID), id, \(EventType.messageDropped.rawValue),
                   herald_message_event(id, to_address, from_address, tag, p_status => status, p_reason => reason), \(now),
                   herald_keep_events(\(tenantID))
            FROM dropped
            """, logger: logger)
    }
}

/// The figures of a grade decision as they are stored and sent in events.
struct GradeFiguresBody: Codable {
    var sent: Int
    var delivered: Int
    var invalid: Int
    var spam: Int
    var invalidRate: Double
    var spamRate: Double
    var successRate: Double

    init(_ figures: DayFigures) {
        sent = figures.sent
        delivered = figures.delivered
        invalid = figures.invalid
        spam = figures.spam
        invalidRate = (figures.invalidRate * 10_000).rounded() / 10_000
        spamRate = (figures.spamRate * 10_000).rounded() / 10_000
        successRate = (figures.successRate * 10_000).rounded() / 10_000
    }
}

/// The credit-grade evaluation (SPEC §5) over the database: which tenants are due, their figures, and
/// the effects of each decision, one transaction per batch of tenants.
public struct GradeStore: Sendable {
    let database: Database
    public var thresholds = GradeThresholds()
    /// The first messages of a day that are free (`HERALD_FREE_ALLOWANCE`).
    public var freeAllowance = 200
    /// Counters, when a registry is attached.
    public var metrics: GradeMetrics?
    /// The day boundary (the quota's).
    public var quotaTimeZone = TimeZone(identifier: "UTC")!

    public init(database: Database) {
        self.database = database
    }

    private var logger: Logger { database.logger }

    /// A decision that changed something.
    public struct Change: Sendable, Equatable {
        public var tenantID: UUID
        public var decision: GradeDecision
    }

    /// Evaluates up to `limit` active tenants whose figures changed today since their last evaluation.
    /// Several processes can run it at once: a tenant is locked by the one evaluating it (the others skip
    /// it). The cost follows the active tenants, not the messages: one counter row per tenant and day.
    public func evaluateDue(now: Date, limit: Int = 500) async throws -> (evaluated: Int, changes: [Change]) {
        let (evaluated, changes, _) = try await evaluateBatch(now: now, limit: limit, after: nil)
        return (evaluated, changes)
    }

    /// One pass over every due tenant, `batch` per transaction, walking today's figures in order (each
    /// batch starts where the last ended, so a pass reads each row once).
    public func evaluatePass(now: Date, batch: Int = 2_000) async throws -> (evaluated: Int, changes: [Change]) {
        var cursor: (Date, UUID)?
        var evaluated = 0
        var changes: [Change] = []
        while true {
            let (count, made, next) = try await evaluateBatch(now: now, limit: batch, after: cursor)
            evaluated += count
            changes += made
            guard count > 0, let next else { return (evaluated, changes) }
            cursor = next
        }
    }

    private func evaluateBatch(now: Date, limit: Int, after cursor: (Date, UUID)?) async throws -> (Int, [Change], (Date, UUID)?) {
        let today = SendRules.quotaDay(now, timeZone: quotaTimeZone).day
        let thresholds = self.thresholds
        let (afterTime, afterTenant) = cursor ?? (Date.distantPast, UUID.none)
        return try await database.withSystem { connection in
            var standings: [UUID: GradeStanding] = [:], tables: [UUID: QuotaTable] = [:]
            var last: (Date, UUID)?
            for try await (id, grade, ceiling, promotionsToday, demotedToday, used, updated, table) in try await connection.query("""
                SELECT t.id, t.grade::int, t.grade_ceiling::int,
                       CASE WHEN t.promotions_day = \(today)::date THEN t.promotions_count ELSE 0 END,
                       coalesce(t.demoted_day = \(today)::date, false),
                       herald_quota_used(t.id, \(today)::date, \(today)::date),
                       s.updated_at, t.quota_table::text
                FROM tenant_daily_stats s JOIN tenants t ON t.id = s.tenant_id
                WHERE s.day = \(today)::date AND (s.updated_at, s.tenant_id) > (\(afterTime), \(afterTenant))
                      AND t.status = 'active' AND s.updated_at > coalesce(t.graded_at, '-infinity')
                ORDER BY s.updated_at, s.tenant_id LIMIT \(limit)
                FOR UPDATE OF t SKIP LOCKED
                """, logger: logger).decode((UUID, Int, Int, Int, Bool, Int, Date, String?).self) {
                standings[id] = GradeStanding(grade: grade, ceiling: ceiling, promotionsToday: promotionsToday, demotedToday: demotedToday,
                                              quotaUsedToday: used)
                tables[id] = QuotaTable.stored(table)
                last = (updated, id)
            }
            guard !standings.isEmpty else { return (0, [], nil) }
            let ids = Array(standings.keys)
            var days: [UUID: [DayFigures]] = [:]
            for try await (id, offset, sent, delivered, invalid, spam) in try await connection.query("""
                SELECT tenant_id, (day - \(today)::date)::int, sent, delivered, invalid, spam FROM tenant_daily_stats
                WHERE tenant_id = ANY(\(ids)::uuid[]) AND day > \(today)::date - \(thresholds.demotionWindowDays)::int AND day <= \(today)::date
                """, logger: logger).decode((UUID, Int, Int, Int, Int, Int).self) {
                days[id, default: []].append(DayFigures(day: offset, sent: sent, delivered: delivered, invalid: invalid, spam: spam))
            }
            var changes: [Change] = []
            for (id, standing) in standings.sorted(by: { $0.key.uuidString < $1.key.uuidString }) {
                let figures = days[id] ?? []
                let todays = figures.first { $0.day == 0 } ?? DayFigures(day: 0, sent: 0, delivered: 0, invalid: 0, spam: 0)
                // A tenant with its own quota table is judged on its usage of it.
                var rules = thresholds
                if let table = tables[id] { rules.quotas = table.daily }
                let decision = GradeRules.evaluate(standing, today: todays, earlier: figures.filter { $0.day != 0 }, thresholds: rules)
                if decision != .stay {
                    try await apply(decision, to: id, standing: standing, on: connection, today: today, now: now)
                    changes.append(Change(tenantID: id, decision: decision))
                }
            }
            try await connection.query("UPDATE tenants SET graded_at = \(now) WHERE id = ANY(\(ids)::uuid[])", logger: logger)
            metrics?.evaluated(ids.count, changes: changes.map(\.decision))
            return (ids.count, changes, last)
        }
    }

    private func apply(_ decision: GradeDecision, to id: UUID, standing: GradeStanding, on connection: PostgresConnection, today: String,
                       now: Date) async throws {
        switch decision {
        case .stay:
            return
        case .promote(let to, let reason, let figures):
            try await connection.query("""
                UPDATE tenants SET grade = \(to), promotions_day = \(today)::date, promotions_count = \(standing.promotionsToday + 1), updated_at = \(now)
                WHERE id = \(id)
                """, logger: logger)
            try await AccountChanges.record(connection, logger: logger, tenantID: id, change: .promoted, from: standing.grade, to: to, reason: reason,
                                            figures: figures, actor: "system", now: now)
        case .demote(let to, let reason, let figures):
            try await connection.query("UPDATE tenants SET grade = \(to), demoted_day = \(today)::date, updated_at = \(now) WHERE id = \(id)",
                                       logger: logger)
            try await AccountChanges.record(connection, logger: logger, tenantID: id, change: .demoted, from: standing.grade, to: to, reason: reason,
                                            figures: figures, actor: "system", now: now)
        case .freeze(let reason, let figures):
            try await connection.query("""
                UPDATE tenants SET status = 'frozen', freeze_count = freeze_count + 1, updated_at = \(now) WHERE id = \(id)
                """, logger: logger)
            try await AccountChanges.pauseMail(connection, logger: logger, tenantID: id, now: now)
            try await AccountChanges.record(connection, logger: logger, tenantID: id, change: .frozen, from: standing.grade, to: standing.grade,
                                            reason: reason, figures: figures, actor: "system", now: now)
        }
    }

    /// How many domains, sender addresses, tags, templates and recipient lists the tenant has (the Direct Mail
    /// account summary shows them with the quota).
    public func resourceCounts(tenantID: UUID) async throws -> (domains: Int, senders: Int, tags: Int, templates: Int, lists: Int) {
        let row = try await database.withTenant(tenantID) { connection in
            try await connection.query("""
                SELECT (SELECT count(*) FROM domains WHERE tenant_id = \(tenantID))::int,
                       (SELECT count(*) FROM senders WHERE tenant_id = \(tenantID))::int,
                       (SELECT count(*) FROM tags WHERE tenant_id = \(tenantID))::int,
                       (SELECT count(*) FROM templates WHERE tenant_id = \(tenantID))::int,
                       (SELECT count(*) FROM recipient_lists WHERE tenant_id = \(tenantID))::int
                """, logger: logger).decode((Int, Int, Int, Int, Int).self).first { _ in true }
        }
        let counts = row ?? (0, 0, 0, 0, 0)
        return (counts.0, counts.1, counts.2, counts.3, counts.4)
    }
}

/// The account as its tenant sees it (`GET /v1/account`).
public struct AccountRecord: Sendable, Equatable {
    public var grade: Int
    public var gradeCeiling: Int
    public var status: TenantStatus
    public var dailyQuota: Int
    public var dailyUsed: Int
    public var monthlyUsed: Int
    public var dailyRemaining: Int { max(0, dailyQuota - dailyUsed) }
    public var monthlyQuota: Int { dailyQuota * 30 }
    /// The first messages of a day that are free (`HERALD_FREE_ALLOWANCE`, 200 by default).
    public var freeAllowance = 200
    public var freeRemaining: Int { max(0, freeAllowance - dailyUsed) }
}

/// A grade history entry.
public struct GradeChangeRecord: Sendable {
    public var change: String
    public var fromGrade: Int
    public var toGrade: Int
    public var reason: String
    public var figuresJSON: String
    public var actor: String
    public var at: Date
}

extension GradeStore {
    /// The tenant's grade, ceiling, status and quotas now.
    public func account(tenantID: UUID, now: Date) async throws -> AccountRecord {
        let (day, monthStart) = SendRules.quotaDay(now, timeZone: quotaTimeZone)
        let quotas = thresholds.quotas, freeAllowance = self.freeAllowance
        return try await database.withTenant(tenantID) { connection in
            let row = try await connection.query("""
                SELECT t.grade::int, t.grade_ceiling::int, t.status,
                       herald_quota_used(t.id, \(day)::date, \(day)::date), herald_quota_used(t.id, \(monthStart)::date, \(day)::date),
                       t.quota_table::text
                FROM tenants t WHERE t.id = \(tenantID)
                """, logger: database.logger).decode((Int, Int, String, Int, Int, String?).self).first { _ in true }
            guard let (grade, ceiling, status, used, monthly, table) = row else { throw HeraldError.notFound("account") }
            let daily = (QuotaTable.stored(table)?.daily ?? quotas)
            return AccountRecord(grade: grade, gradeCeiling: ceiling, status: try .stored(status), dailyQuota: GradeQuota.daily(grade: grade, table: daily),
                                 dailyUsed: used, monthlyUsed: monthly, freeAllowance: freeAllowance)
        }
    }

    /// Sets the highest grade automatic promotion may reach: 9–16, and not below the current grade.
    public func setCeiling(tenantID: UUID, ceiling: Int, actor: AuditActor, now: Date) async throws -> AccountRecord {
        guard (9...16).contains(ceiling) else { throw HeraldError.validation("gradeCeiling must be from 9 to 16.", field: "gradeCeiling") }
        try await database.withTenant(tenantID) { connection in
            let grade = try await connection.query("SELECT grade::int FROM tenants WHERE id = \(tenantID) FOR UPDATE", logger: database.logger)
                .decode(Int.self).first { _ in true }
            guard let grade else { throw HeraldError.notFound("account") }
            guard ceiling >= grade else {
                throw HeraldError(code: "Grade.CeilingBelowGrade", kind: .conflict, message: "The ceiling cannot be below the current grade \(grade).",
                                  field: "gradeCeiling")
            }
            try await connection.query("UPDATE tenants SET grade_ceiling = \(ceiling), updated_at = \(now) WHERE id = \(tenantID)", logger: database.logger)
            try await AuditLog.record(on: connection, logger: database.logger, tenantID: tenantID, actor: actor, action: "dm:UpdateGradeCeiling",
                                      resource: ResourceName.tenantWildcard(tenantID: tenantID.lowercasedString),
                                      detail: ["gradeCeiling": String(ceiling)])
        }
        return try await account(tenantID: tenantID, now: now)
    }

    /// The newest 100 grade changes, freezes, unfreezes and bans.
    public func history(tenantID: UUID) async throws -> [GradeChangeRecord] {
        try await database.withTenant(tenantID) { connection in
            var items: [GradeChangeRecord] = []
            for try await (change, from, to, reason, figures, actor, at) in try await connection.query("""
                SELECT change, from_grade::int, to_grade::int, reason, figures::text, actor, created_at FROM grade_history
                WHERE tenant_id = \(tenantID) ORDER BY id DESC LIMIT 100
                """, logger: database.logger).decode((String, Int, Int, String, String, String, Date).self) {
                items.append(GradeChangeRecord(change: change, fromGrade: from, toGrade: to, reason: reason, figuresJSON: figures, actor: actor, at: at))
            }
            return items
        }
    }

    /// The operator sets a tenant's grade: at most once a day per tenant; recorded and announced.
    public func setGrade(tenantID: UUID, grade: Int, reason: String?, actor: AuditActor, now: Date) async throws {
        guard (1...16).contains(grade) else { throw HeraldError.validation("grade must be from 1 to 16.", field: "grade") }
        let today = SendRules.quotaDay(now, timeZone: quotaTimeZone).day
        try await database.withSystem { connection in
            let row = try await connection.query("""
                SELECT grade::int, status, coalesce(manual_grade_day = \(today)::date, false) FROM tenants WHERE id = \(tenantID) FOR UPDATE
                """, logger: database.logger).decode((Int, String, Bool).self).first { _ in true }
            guard let (current, status, changedToday) = row else { throw HeraldError.notFound("tenant") }
            guard try TenantStatus.stored(status) != .banned else { throw HeraldError.conflict("Tenant.Banned", "The tenant is banned; a ban is final.") }
            guard !changedToday else {
                throw HeraldError.conflict("Grade.ManualLimit", "This tenant's grade was already set by hand today; once a day at most.")
            }
            guard grade != current else { return }
            try await connection.query("""
                UPDATE tenants SET grade = \(grade), manual_grade_day = \(today)::date, updated_at = \(now) WHERE id = \(tenantID)
                """, logger: database.logger)
            let why = reason.map { String($0.prefix(500)) } ?? "set by the operator"
            try await AccountChanges.record(connection, logger: database.logger, tenantID: tenantID, change: .set, from: current, to: grade,
                                            reason: why, figures: nil, actor: "operator", now: now)
            try await AuditLog.record(on: connection, logger: database.logger, tenantID: tenantID, actor: actor, action: "admin:SetTenantGrade",
                                      resource: ResourceName.tenantWildcard(tenantID: tenantID.lowercasedString),
                                      detail: ["from": String(current), "to": String(grade), "reason": why])
        }
    }
}

/// The grader as Prometheus sees it: tenants evaluated, and decisions by kind.
public struct GradeMetrics: Sendable {
    let evaluations: Counter
    let decisions: [String: Counter]

    public init(registry: PrometheusCollectorRegistry) {
        evaluations = registry.makeCounter(descriptor: .init(metricName: "herald_grade_evaluations", unitName: "total",
                                                             helpText: "Tenants evaluated for their credit grade"))
        let descriptor = MetricNameDescriptor(metricName: "herald_grade_changes", unitName: "total", helpText: "Credit-grade decisions by kind")
        var decisions: [String: Counter] = [:]
        for kind in ["promoted", "demoted", "frozen"] { decisions[kind] = registry.makeCounter(descriptor: descriptor, labels: [("change", kind)]) }
        self.decisions = decisions
    }

    func evaluated(_ count: Int, changes: [GradeDecision]) {
        evaluations.increment(by: Int64(count))
        for change in changes {
            switch change {
            case .stay: break
            case .promote: decisions["promoted"]?.increment()
            case .demote: decisions["demoted"]?.increment()
            case .freeze: decisions["frozen"]?.increment()
            }
        }
    }
}
