import Foundation
import HeraldCore
import Logging
import PostgresNIO

/// The PostgreSQL pool plus the two kinds of transaction Herald uses.
///
/// A *tenant transaction* sets the row-level-security variable `herald.tenant_id`, so even a query
/// that forgot its tenant filter sees only that tenant's rows. A *system transaction* (operator actions,
/// token exchange, background workers) sets `herald.system`, and must scope its queries itself.
public struct Database: Sendable {
    /// The underlying pool; run it as a service (`client.run()`).
    public let client: PostgresClient
    /// Logger for queries.
    public let logger: Logger

    /// Wraps a pool.
    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Runs `body` in a transaction scoped to `tenantID` by row-level security.
    public func withTenant<R: Sendable>(_ tenantID: UUID, _ body: (PostgresConnection) async throws -> R) async throws -> R {
        try await transaction { connection in
            try await connection.query("SELECT set_config('herald.tenant_id', \(tenantID.uuidString), true)", logger: logger)
            return try await body(connection)
        }
    }

    /// Runs `body` in a transaction that may see every tenant's rows.
    public func withSystem<R: Sendable>(_ body: (PostgresConnection) async throws -> R) async throws -> R {
        try await transaction { connection in
            try await connection.query("SELECT set_config('herald.system', 'on', true)", logger: logger)
            return try await body(connection)
        }
    }

    /// Answers whether the database is reachable (readiness).
    public func ping() async -> Bool {
        do {
            try await client.query("SELECT 1", logger: logger)
            return true
        } catch {
            return false
        }
    }

    /// BEGIN … COMMIT around `body`, ROLLBACK on any error, rethrowing the body's own error unchanged
    /// (PostgresNIO's helper wraps it, and callers need to see a `HeraldError` as it was thrown).
    private func transaction<R: Sendable>(_ body: (PostgresConnection) async throws -> R) async throws -> R {
        try await client.withConnection { connection in
            try await connection.query("BEGIN", logger: logger)
            let value: R
            do {
                value = try await body(connection)
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: logger)
                throw error
            }
            try await connection.query("COMMIT", logger: logger)
            return value
        }
    }
}

extension PostgresError.Code {
    /// unique_violation
    static let uniqueViolation = PostgresError.Code(raw: "23505")
    /// foreign_key_violation
    static let foreignKeyViolation = PostgresError.Code(raw: "23503")
}

extension Error {
    /// Whether this is PostgreSQL's unique-constraint violation (optionally on the named constraint).
    func isUniqueViolation(constraint: String? = nil) -> Bool {
        guard let error = self as? PSQLError, error.serverInfo?[.sqlState] == PostgresError.Code.uniqueViolation.raw else { return false }
        if let constraint { return error.serverInfo?[.constraintName] == constraint }
        return true
    }
}
