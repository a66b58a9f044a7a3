import Foundation
import HeraldCore
import Logging
import PostgresNIO
import Synchronization

/// The installation's content rules (the sensitive words): `HERALD_SENSITIVE_WORDS` until the operator sets a
/// list (`PUT /admin/v1/content-rules`, table `content_rules`), that list after. Every send path and the
/// template review read ``words()``: the list as this process last read it, read again once it is older than
/// `maxAge` (so a change reaches every process within that time, and a send costs no query).
public final class ContentRulesStore: Sendable {
    /// The rules in force and where they come from.
    public struct Rules: Sendable, Equatable {
        public var sensitiveWords: [String]
        /// `configuration` (HERALD_SENSITIVE_WORDS) or `operator`.
        public var source: String
        public var updatedAt: Date?
    }

    let database: Database
    let configured: [String]
    let maxAge: TimeInterval
    private let cache: Mutex<(rules: Rules, readAt: Date)?> = Mutex(nil)
    /// Whether a read is under way: the sends that find the list old meanwhile use it as it is (one read at a time).
    private let reading = Mutex(false)

    public init(database: Database, configured: [String], maxAge: TimeInterval = 2) {
        self.database = database
        self.configured = (try? SensitiveWords.normalize(configured)) ?? configured
        self.maxAge = maxAge
    }

    /// The sensitive words in force. A failed read keeps the last list (or the configured one) rather than
    /// failing the send.
    public func words() async -> [String] {
        let cached = cache.withLock { $0 }
        if let cached, Date().timeIntervalSince(cached.readAt) < maxAge { return cached.rules.sensitiveWords }
        let mine = reading.withLock { (busy: inout Bool) -> Bool in
            if busy { return false }
            busy = true
            return true
        }
        if !mine, let cached { return cached.rules.sensitiveWords }
        defer { if mine { reading.withLock { $0 = false } } }
        do {
            return try await rules().sensitiveWords
        } catch {
            database.logger.warning("content rules could not be read; the last ones apply", metadata: ["error": "\(error)"])
            return cache.withLock { $0?.rules.sensitiveWords } ?? configured
        }
    }

    /// The rules in force, read now.
    public func rules() async throws -> Rules {
        let logger = database.logger
        let row = try await database.withSystem { connection in
            try await connection.query("SELECT sensitive_words, updated_at FROM content_rules WHERE id = 1", logger: logger)
                .decode(([String], Date).self).first { _ in true }
        }
        let rules = row.map { Rules(sensitiveWords: $0.0, source: "operator", updatedAt: $0.1) }
            ?? Rules(sensitiveWords: configured, source: "configuration", updatedAt: nil)
        cache.withLock { $0 = (rules, Date()) }
        return rules
    }

    /// Replaces the sensitive words (normalized), logged; nil goes back to the configured list.
    public func setSensitiveWords(_ words: [String]?, actor: AuditActor) async throws -> Rules {
        let normalized = try words.map { words throws(HeraldError) in try SensitiveWords.normalize(words) }
        let logger = database.logger
        _ = try await database.withSystem { connection in
            if let normalized {
                try await connection.query("""
                    INSERT INTO content_rules (id, sensitive_words, updated_at) VALUES (1, \(normalized), now())
                    ON CONFLICT (id) DO UPDATE SET sensitive_words = EXCLUDED.sensitive_words, updated_at = EXCLUDED.updated_at
                    """, logger: logger)
            } else {
                try await connection.query("DELETE FROM content_rules WHERE id = 1", logger: logger)
            }
        }
        // The audit log is a tenant's; an installation's change goes to the service log.
        database.logger.notice("content rules changed", metadata: [
            "sensitiveWords": "\(normalized?.joined(separator: ",") ?? "(HERALD_SENSITIVE_WORDS)")", "actor": "\(actor.type.rawValue)",
            "request": "\(actor.requestID ?? "-")",
        ])
        return try await rules()
    }
}
