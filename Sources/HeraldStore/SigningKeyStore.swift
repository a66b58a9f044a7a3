import Crypto
import Foundation
import HeraldCore
import Logging
import PostgresNIO
import Synchronization

/// The token signing keys, kept in the database (private halves encrypted) so every process signs and
/// verifies with the same set, and a rotation in one process reaches the others on their next refresh.
public final class SigningKeyRing: Sendable {
    let database: Database
    let secrets: SecretBox
    /// How long a retired key stays published: the token lifetime plus leeway.
    let publishAfterRetirement: Duration
    let now: @Sendable () -> Date

    private struct State {
        var current: TokenSigningKey?
        var published: [String: Curve25519.Signing.PublicKey] = [:]
        var jwks: [JWK] = []
        var loadedAt: Date = .distantPast
        var lastMissRefresh: Date = .distantPast
        /// When a request last took on the reload of a stale set (one request at a time does).
        var lastStaleRefresh: Date = .distantPast
        var refreshes = 0
    }
    private let state = Mutex(State())

    /// Reloads so far (tests).
    public var refreshCount: Int { state.withLock { $0.refreshes } }

    /// Creates a ring; call `refresh()` once before use.
    public init(database: Database, secrets: SecretBox, publishAfterRetirement: Duration, now: @escaping @Sendable () -> Date = Date.init) {
        self.database = database
        self.secrets = secrets
        self.publishAfterRetirement = publishAfterRetirement
        self.now = now
    }

    private var windowSeconds: Double { Double(publishAfterRetirement.components.seconds) }

    /// Ensures an active key exists (creating the first one on a new database) and reloads the set.
    public func refresh() async throws {
        state.withLock { $0.refreshes += 1 }
        let window = windowSeconds
        let rows: [(String, ByteBuffer, ByteBuffer, Bool)] = try await database.withSystem { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(7263)", logger: database.logger)
            let active = try await connection.query("SELECT count(*) FROM signing_keys WHERE retired_at IS NULL", logger: database.logger)
                .decode(Int.self).first { _ in true } ?? 0
            if active == 0 { _ = try await insertKey(on: connection) }
            var result: [(String, ByteBuffer, ByteBuffer, Bool)] = []
            for try await row in try await connection.query("""
                SELECT kid, public_key, private_ciphertext, retired_at IS NULL FROM signing_keys
                WHERE retired_at IS NULL OR retired_at > now() - make_interval(secs => \(window))
                ORDER BY created_at DESC
                """, logger: database.logger).decode((String, ByteBuffer, ByteBuffer, Bool).self) {
                result.append(row)
            }
            return result
        }
        var current: TokenSigningKey?
        var published: [String: Curve25519.Signing.PublicKey] = [:]
        var jwks: [JWK] = []
        for (kid, publicKey, sealed, active) in rows {
            guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: Array(buffer: publicKey)) else { continue }
            published[kid] = key
            jwks.append(JWK(kid: kid, x: Base64URL.encode(key.rawRepresentation)))
            if active, current == nil {
                let raw = try secrets.open(Array(buffer: sealed), context: "signing_key:\(kid)")
                current = TokenSigningKey(kid: kid, privateKey: try Curve25519.Signing.PrivateKey(rawRepresentation: raw))
            }
        }
        let loadedAt = now()
        state.withLock {
            $0.current = current
            $0.published = published
            $0.jwks = jwks
            $0.loadedAt = loadedAt
        }
    }

    private func insertKey(on connection: PostgresConnection) async throws -> String {
        let key = TokenSigningKey.generate()
        let sealed = secrets.seal(Array(key.privateKey.rawRepresentation), context: "signing_key:\(key.kid)")
        try await connection.query("""
            INSERT INTO signing_keys (kid, algorithm, public_key, private_ciphertext)
            VALUES (\(key.kid), 'EdDSA', \(ByteBuffer(bytes: key.privateKey.publicKey.rawRepresentation)), \(ByteBuffer(bytes: sealed)))
            """, logger: database.logger)
        return key.kid
    }

    /// Retires the active key and makes a new one; the old key stays published until its last token has expired.
    @discardableResult
    public func rotate() async throws -> String {
        let kid = try await database.withSystem { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(7263)", logger: database.logger)
            try await connection.query("UPDATE signing_keys SET retired_at = now() WHERE retired_at IS NULL", logger: database.logger)
            return try await insertKey(on: connection)
        }
        try await refresh()
        return kid
    }

    /// The key new tokens are signed with.
    public func currentKey() async throws -> TokenSigningKey {
        if let key = state.withLock({ $0.current }) { return key }
        try await refresh()
        guard let key = state.withLock({ $0.current }) else { throw HeraldError(code: "Internal", kind: .internal, message: "No signing key.") }
        return key
    }

    /// Public keys trusted for verification. An unknown `kid` triggers at most one reload every 5 seconds,
    /// so a key rotated in another process is picked up without letting junk tokens hammer the database.
    /// A set older than 30 seconds is reloaded by one request (at most one every 5 seconds), while the
    /// others go on with the set they have: every request that found it stale used to reload it, each
    /// behind the same advisory lock — 48 reloads in 10 s of `ops/bench send`, waiting 50 ms each.
    public func publicKeys(ensuring kid: String?) async -> [String: Curve25519.Signing.PublicKey] {
        let (keys, shouldReload) = state.withLock { state -> ([String: Curve25519.Signing.PublicKey], Bool) in
            let now = now()
            if let kid, state.published[kid] == nil, now.timeIntervalSince(state.lastMissRefresh) > 5 {
                state.lastMissRefresh = now
                return (state.published, true)
            }
            if now.timeIntervalSince(state.loadedAt) > 30, now.timeIntervalSince(state.lastStaleRefresh) > 5 {
                state.lastStaleRefresh = now
                return (state.published, true)
            }
            return (state.published, false)
        }
        guard shouldReload else { return keys }
        do { try await refresh() } catch { database.logger.warning("signing key refresh failed", metadata: ["error": "\(String(reflecting: error))"]) }
        return state.withLock { $0.published }
    }

    /// The JWKS document's keys.
    public func jwks() async -> [JWK] {
        _ = await publicKeys(ensuring: nil)
        return state.withLock { $0.jwks }
    }
}
