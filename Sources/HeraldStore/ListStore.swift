import Foundation
import HeraldCore
import Logging
import PostgresNIO

/// A recipient list.
public struct RecipientListRecord: Sendable, Equatable {
    public var id: UUID
    public var name: String
    public var alias: String?
    public var description: String?
    public var memberCount: Int
    public var createdAt: Date
    public var updatedAt: Date
}

/// A member of a list.
public struct ListMemberRecord: Sendable, Equatable {
    public var address: String
    public var variables: [String: String]
    public var createdAt: Date
}

/// What an import did.
public struct ImportResult: Sendable, Equatable {
    /// Rows stored (new members and updated ones).
    public var imported: Int
    /// Rows refused, with their row number and reason.
    public var rejected: [RecipientImport.Rejection]
    /// Members of the list afterwards.
    public var members: Int
}

/// Recipient lists (limit 10) and their members (at most 10,000 per list, and never more than the
/// tenant's daily quota), imported in batches inside one transaction.
public struct ListStore: Sendable {
    let database: Database
    /// The installation's grade → daily quota table (a list holds at most a day's quota).
    public var quotaTable = QuotaTable.standard
    /// Product limits (lists, members per list) and the tenant's overrides.
    public var limits = TenantLimits()
    /// Rows per INSERT statement of an import.
    public var batchSize = 1_000

    public init(database: Database) {
        self.database = database
    }

    private var logger: Logger { database.logger }

    static func resource(_ tenantID: UUID, _ id: UUID) -> String {
        ResourceName.tenantResource(tenantID: tenantID.lowercasedString, kind: "list", name: id.lowercasedString)
    }

    static func validate(name: String, alias: String?, description: String?) throws(HeraldError) {
        guard (1...64).contains(name.count), !name.contains(where: \.isNewline) else {
            throw .validation("name must be 1 to 64 characters on one line.", field: "name")
        }
        if let alias, alias.count > 64 { throw .validation("alias must be at most 64 characters.", field: "alias") }
        if let description, description.count > 500 { throw .validation("description must be at most 500 characters.", field: "description") }
    }

    public func create(tenantID: UUID, name: String, alias: String?, description: String?, actor: AuditActor) async throws -> RecipientListRecord {
        try Self.validate(name: name, alias: alias, description: description)
        let id = UUIDv7.make()
        return try await database.withTenant(tenantID) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(hashtext('lists:' || \(tenantID.uuidString)))", logger: logger)
            let count = try await connection.query("SELECT count(*) FROM recipient_lists WHERE tenant_id = \(tenantID)", logger: logger)
                .decode(Int.self).first { _ in true } ?? 0
            let maxLists = try await limits.effective(connection, tenantID: tenantID, logger: logger).limits.lists
            guard count < maxLists else { throw HeraldError.limitExceeded("A tenant can have at most \(maxLists) recipient lists (limit: lists).") }
            do {
                try await connection.query("""
                    INSERT INTO recipient_lists (id, tenant_id, name, alias, description) VALUES (\(id), \(tenantID), \(name), \(alias), \(description))
                    """, logger: logger)
            } catch where error.isUniqueViolation() {
                throw HeraldError.conflict("List.AlreadyExists", "A recipient list named \(name) already exists.")
            }
            try await AuditLog.record(on: connection, logger: logger, tenantID: tenantID, actor: actor, action: "dm:CreateReceiver",
                                      resource: Self.resource(tenantID, id), detail: ["name": name])
            return try await load(connection, tenantID: tenantID, id: id)!
        }
    }

    public func list(tenantID: UUID) async throws -> [RecipientListRecord] {
        try await database.withTenant(tenantID) { connection in try await loadAll(connection, tenantID: tenantID, id: nil) }
    }

    public func get(tenantID: UUID, id: UUID) async throws -> RecipientListRecord {
        try await database.withTenant(tenantID) { connection in
            guard let list = try await load(connection, tenantID: tenantID, id: id) else { throw HeraldError.notFound("list") }
            return list
        }
    }

    public func delete(tenantID: UUID, id: UUID, actor: AuditActor) async throws {
        try await database.withTenant(tenantID) { connection in
            let deleted = try await connection.query("DELETE FROM recipient_lists WHERE tenant_id = \(tenantID) AND id = \(id) RETURNING name",
                                                     logger: logger).decode(String.self).first { _ in true }
            guard let name = deleted else { throw HeraldError.notFound("list") }
            try await AuditLog.record(on: connection, logger: logger, tenantID: tenantID, actor: actor, action: "dm:DeleteReceiver",
                                      resource: Self.resource(tenantID, id), detail: ["name": name])
        }
    }

    /// Imports checked rows: duplicates merged (the later row wins, existing members updated), new members
    /// beyond the list's capacity refused row by row. One transaction; rows written in batches.
    public func importMembers(tenantID: UUID, listID: UUID, candidates: [RecipientImport.Candidate], rejected: [RecipientImport.Rejection],
                              actor: AuditActor) async throws -> ImportResult {
        let rows = RecipientImport.merged(candidates)
        var rejected = rejected
        return try await database.withTenant(tenantID) { connection in
            let list = try await connection.query("""
                SELECT l.member_count, t.grade, t.quota_table::text FROM recipient_lists l JOIN tenants t ON t.id = l.tenant_id
                WHERE l.tenant_id = \(tenantID) AND l.id = \(listID) FOR UPDATE OF l
                """, logger: logger).decode((Int, Int, String?).self).first { _ in true }
            guard let (memberCount, grade, table) = list else { throw HeraldError.notFound("list") }
            let maxMembers = try await limits.effective(connection, tenantID: tenantID, logger: logger).limits.listMembers
            let capacity = min(maxMembers, (QuotaTable.stored(table) ?? quotaTable).daily(grade: grade))
            // Which addresses are already members (updates take no capacity).
            var existing = Set<String>()
            for start in stride(from: 0, to: rows.count, by: batchSize) {
                let addresses = rows[start..<min(start + batchSize, rows.count)].map(\.address)
                for try await address in try await connection.query("""
                    SELECT address FROM list_members WHERE list_id = \(listID) AND address = ANY(\(addresses)::text[])
                    """, logger: logger).decode(String.self) {
                    existing.insert(address)
                }
            }
            var room = capacity - memberCount
            var accepted: [RecipientImport.Candidate] = []
            accepted.reserveCapacity(rows.count)
            for row in rows {
                if existing.contains(row.address) {
                    accepted.append(row)
                } else if room > 0 {
                    room -= 1
                    accepted.append(row)
                } else {
                    rejected.append(RecipientImport.Rejection(row: row.row, reason: "the list is full (\(capacity) members at most)"))
                }
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            for start in stride(from: 0, to: accepted.count, by: batchSize) {
                let batch = accepted[start..<min(start + batchSize, accepted.count)]
                let addresses = batch.map(\.address)
                let variables = try batch.map { String(decoding: try encoder.encode($0.variables), as: UTF8.self) }
                try await connection.query("""
                    INSERT INTO list_members (list_id, tenant_id, address, variables)
                    SELECT \(listID), \(tenantID), a, v::jsonb FROM unnest(\(addresses)::text[], \(variables)::text[]) AS u(a, v)
                    ON CONFLICT (list_id, address) DO UPDATE SET variables = EXCLUDED.variables, updated_at = now()
                    """, logger: logger)
            }
            let added = accepted.count - accepted.filter { existing.contains($0.address) }.count
            // An import whose every row was refused changed nothing, so the list's updated_at stays as it was.
            if !accepted.isEmpty {
                try await connection.query("""
                    UPDATE recipient_lists SET member_count = member_count + \(added), updated_at = now() WHERE tenant_id = \(tenantID) AND id = \(listID)
                    """, logger: logger)
            }
            try await AuditLog.record(on: connection, logger: logger, tenantID: tenantID, actor: actor, action: "dm:SaveReceiverDetail",
                                      resource: Self.resource(tenantID, listID),
                                      detail: ["imported": String(accepted.count), "rejected": String(rejected.count)])
            return ImportResult(imported: accepted.count, rejected: rejected.sorted { $0.row < $1.row }, members: memberCount + added)
        }
    }

    /// Members in address order after `after`.
    public func members(tenantID: UUID, listID: UUID, limit: Int, after: String?) async throws -> [ListMemberRecord] {
        try await database.withTenant(tenantID) { connection in
            guard try await load(connection, tenantID: tenantID, id: listID) != nil else { throw HeraldError.notFound("list") }
            var members: [ListMemberRecord] = []
            for try await (address, variables, created) in try await connection.query("""
                SELECT address, variables::text, created_at FROM list_members
                WHERE tenant_id = \(tenantID) AND list_id = \(listID) AND (\(after)::text IS NULL OR address > \(after))
                ORDER BY address LIMIT \(limit)
                """, logger: logger).decode((String, String, Date).self) {
                let decoded = (try? JSONDecoder().decode([String: String].self, from: Data(variables.utf8))) ?? [:]
                members.append(ListMemberRecord(address: address, variables: decoded, createdAt: created))
            }
            return members
        }
    }

    /// The whole list as CSV (`address,var1,…`, variables in name order).
    public func exportCSV(tenantID: UUID, listID: UUID) async throws -> String {
        var all: [ListMemberRecord] = []
        var after: String?
        repeat {
            let page = try await members(tenantID: tenantID, listID: listID, limit: 5_000, after: after)
            all += page
            after = page.count == 5_000 ? page.last?.address : nil
        } while after != nil
        let names = Set(all.flatMap(\.variables.keys)).sorted()
        return CSV.document(header: ["address"] + names, rows: all.map { member in [member.address] + names.map { member.variables[$0] ?? "" } })
    }

    public func deleteMember(tenantID: UUID, listID: UUID, address: String, actor: AuditActor) async throws {
        try await database.withTenant(tenantID) { connection in
            let deleted = try await connection.query("""
                DELETE FROM list_members WHERE tenant_id = \(tenantID) AND list_id = \(listID) AND address = \(address.lowercased()) RETURNING address
                """, logger: logger).decode(String.self).first { _ in true }
            guard deleted != nil else { throw HeraldError.notFound("list member") }
            try await connection.query("""
                UPDATE recipient_lists SET member_count = member_count - 1, updated_at = now() WHERE tenant_id = \(tenantID) AND id = \(listID)
                """, logger: logger)
            try await AuditLog.record(on: connection, logger: logger, tenantID: tenantID, actor: actor, action: "dm:DeleteReceiverDetail",
                                      resource: Self.resource(tenantID, listID), detail: ["address": address.lowercased()])
        }
    }

    // MARK: Loading

    private func load(_ connection: PostgresConnection, tenantID: UUID, id: UUID) async throws -> RecipientListRecord? {
        try await loadAll(connection, tenantID: tenantID, id: id).first
    }

    private func loadAll(_ connection: PostgresConnection, tenantID: UUID, id: UUID?) async throws -> [RecipientListRecord] {
        var lists: [RecipientListRecord] = []
        for try await (id, name, alias, description, count, created, updated) in try await connection.query("""
            SELECT id, name, alias, description, member_count, created_at, updated_at FROM recipient_lists
            WHERE tenant_id = \(tenantID) AND (\(id)::uuid IS NULL OR id = \(id)) ORDER BY name
            """, logger: logger).decode((UUID, String, String?, String?, Int, Date, Date).self) {
            lists.append(RecipientListRecord(id: id, name: name, alias: alias, description: description, memberCount: count,
                                             createdAt: created, updatedAt: updated))
        }
        return lists
    }
}
