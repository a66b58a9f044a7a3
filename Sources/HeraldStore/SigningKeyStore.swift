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
        /// When the last reload of a stale set was started.
        var lastStaleRefresh: Date = .distantPast
        var refreshes = 0
        /// The reload under way, which every request that needs it waits for (one reload for them all).
        var reloading: Task<Void, Never>?
    }
    private let state = Mutex(State())

    /// Reloads so far (tests).
    var refreshCount: Int { state.withLock { $0.refreshes } }

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
        let rows: [(String, ByteBuffer, ByteBuffer, Bool)] = try await database.withSystem { [self] connection in
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
        let kid = try await database.withSystem { [self] connection in
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
    /// A set older than 30 seconds is reloaded in the background, at most one reload at a time, while
    /// requests go on with the set they have; a request that needs the reload (its key is unknown, or no
    /// set was loaded yet) waits for the one under way. Before, every request that found the set stale
    /// reloaded it itself, each behind the same advisory lock (48 reloads in 10 s of `ops/bench send`,
    /// 50 ms of waiting each).
    public func publicKeys(ensuring kid: String?) async -> [String: Curve25519.Signing.PublicKey] {
        let wait = state.withLock { state -> Task<Void, Never>? in
            let now = now()
            let missing = kid.map { state.published[$0] == nil } ?? state.published.isEmpty
            if let running = state.reloading { return missing ? running : nil }
            let due = missing ? now.timeIntervalSince(state.lastMissRefresh) > 5
                              : now.timeIntervalSince(state.loadedAt) > 30 && now.timeIntervalSince(state.lastStaleRefresh) > 5
            guard due else { return nil }
            if missing { state.lastMissRefresh = now } else { state.lastStaleRefresh = now }
            let reload = Task {
                do { try await self.refresh() } catch {
                    self.database.logger.warning("signing key refresh failed", metadata: ["error": "\(String(reflecting: error))"])
                }
                self.state.withLock { $0.reloading = nil }
            }
            state.reloading = reload
            return missing ? reload : nil
        }
        await wait?.value
        return state.withLock { $0.published }
    }

    /// Waits for the reload under way, if any (tests).
    func reloaded() async {
        await state.withLock { $0.reloading }?.value
    }

    /// The JWKS document's keys.
    public func jwks() async -> [JWK] {
        _ = await publicKeys(ensuring: nil)
        return state.withLock { $0.jwks }
    }
}
