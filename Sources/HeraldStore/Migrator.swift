import Crypto
import Foundation
import HeraldCore
import Logging
import PostgresNIO

/// One SQL migration file (`NNNN_name.sql`).
public struct Migration: Sendable, Equatable {
    /// The numeric prefix, e.g. `0001`.
    public var version: String
    /// The file name without extension.
    public var name: String
    /// The SQL text.
    public var sql: String
    /// SHA-256 of the SQL text, hex.
    public var checksum: String
    /// The file starts with `-- herald:no-transaction`: its statements run one by one, each in its own
    /// transaction, instead of the whole file in one.
    public var outsideTransaction: Bool {
        sql.hasPrefix("-- herald:no-transaction")
    }

    /// Creates a migration from its file name and text.
    public init(fileName: String, sql: String) {
        let base = fileName.hasSuffix(".sql") ? String(fileName.dropLast(4)) : fileName
        self.name = base
        self.version = String(base.prefix { $0.isNumber })
        self.sql = sql
        self.checksum = SHA256.hash(data: Array(sql.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// Reads every `*.sql` file of `directory`, ordered by version.
    public static func load(from directory: String) throws(HeraldError) -> [Migration] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw HeraldError(code: "Migration.Missing", kind: .internal, message: "Cannot read migrations directory \(directory) (set HERALD_MIGRATIONS_DIR).")
        }
        var migrations: [Migration] = []
        for file in names.sorted() where file.hasSuffix(".sql") {
            guard let text = try? String(contentsOfFile: "\(directory)/\(file)", encoding: .utf8) else {
                throw HeraldError(code: "Migration.Unreadable", kind: .internal, message: "Cannot read migration \(file).")
            }
            let migration = Migration(fileName: file, sql: text)
            guard !migration.version.isEmpty else {
                throw HeraldError(code: "Migration.BadName", kind: .internal, message: "Migration \(file) must start with a number, e.g. 0002_domains.sql.")
            }
            if let clash = migrations.first(where: { $0.version == migration.version }) {
                throw HeraldError(code: "Migration.BadName", kind: .internal, message: "Migrations \(clash.name) and \(migration.name) share version \(migration.version).")
            }
            migrations.append(migration)
        }
        return migrations
    }
}

/// Applies migrations in order, each in its own transaction (or, when it says so, each statement in its own), recording name and checksum in `schema_migrations`.
///
/// A session-level advisory lock makes concurrent runs safe: the second waits (polling), then finds nothing to do.
/// A file whose checksum differs from the recorded one is refused: applied migrations are immutable.
public struct Migrator: Sendable {
    /// Advisory lock key (arbitrary constant, "herald" in ASCII).
    static let lockKey: Int64 = 0x68_65_72_61_6c_64
    let migrations: [Migration]
    let logger: Logger

    /// Creates a migrator for the given files.
    public init(migrations: [Migration], logger: Logger) {
        self.migrations = migrations
        self.logger = logger
    }

    /// Applies what is pending; returns the names applied now.
    @discardableResult
    public func migrate(client: PostgresClient) async throws -> [String] {
        try await client.withConnection { connection in
            // Polled, not waited for: a session waiting in pg_advisory_lock is a running statement, which
            // CREATE INDEX CONCURRENTLY (in the holder's migration) would wait for in turn — a deadlock.
            while try await connection.query("SELECT pg_try_advisory_lock(\(Self.lockKey))", logger: logger)
                .decode(Bool.self).first(where: { _ in true }) != true {
                try await Task.sleep(for: .milliseconds(100))
            }
            do {
                let applied = try await apply(on: connection)
                try await connection.query("SELECT pg_advisory_unlock(\(Self.lockKey))", logger: logger)
                return applied
            } catch {
                _ = try? await connection.query("SELECT pg_advisory_unlock(\(Self.lockKey))", logger: logger)
                throw error
            }
        }
    }

    private func apply(on connection: PostgresConnection) async throws -> [String] {
        try await connection.query("""
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version text PRIMARY KEY,
                name text NOT NULL,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """, logger: logger)
        var recorded: [String: (name: String, checksum: String)] = [:]
        for try await (version, name, checksum) in try await connection.query(
            "SELECT version, name, checksum FROM schema_migrations", logger: logger
        ).decode((String, String, String).self) {
            recorded[version] = (name, checksum)
        }
        var appliedNow: [String] = []
        for migration in migrations {
            if let existing = recorded[migration.version] {
                guard existing.checksum == migration.checksum else {
                    throw HeraldError(code: "Migration.Modified", kind: .internal,
                                      message: "Migration \(migration.name) was changed after it was applied (checksum \(existing.checksum.prefix(12)) recorded, \(migration.checksum.prefix(12)) now). Add a new migration instead.")
                }
                continue
            }
            if migration.outsideTransaction {
                // Statements that must not run in a transaction block (CREATE INDEX CONCURRENTLY) or should
                // not hold their locks together (VALIDATE CONSTRAINT), each committing on its own; such a
                // file is written so that running it again after an interruption is safe.
                do {
                    try await run(migration, on: connection)
                } catch {
                    throw HeraldError(code: "Migration.Failed", kind: .internal, message: "Migration \(migration.name) failed: \(String(reflecting: error))")
                }
            } else {
                try await connection.query("BEGIN", logger: logger)
                do {
                    try await run(migration, on: connection)
                    try await connection.query("COMMIT", logger: logger)
                } catch {
                    _ = try? await connection.query("ROLLBACK", logger: logger)
                    throw HeraldError(code: "Migration.Failed", kind: .internal, message: "Migration \(migration.name) failed: \(String(reflecting: error))")
                }
            }
            logger.info("applied migration", metadata: ["migration": "\(migration.name)"])
            appliedNow.append(migration.name)
        }
        return appliedNow
    }

    /// The statements of `migration`, then its row in `schema_migrations`.
    private func run(_ migration: Migration, on connection: PostgresConnection) async throws {
        for statement in SQLScript.split(migration.sql) {
            try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
        }
        try await connection.query(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES (\(migration.version), \(migration.name), \(migration.checksum))",
            logger: logger)
    }
}
