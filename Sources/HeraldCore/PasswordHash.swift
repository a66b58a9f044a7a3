import Crypto
import Foundation
import _CryptoExtras

extension SMTPPassword {
    /// scrypt parameters (OWASP's minimum for scrypt is N = 2^17 with 128 MiB; 2^15 keeps a login at a
    /// few tens of milliseconds while still costing 32 MiB per guess).
    static let logN = 15, blockSize = 8, parallelism = 1

    /// `scrypt$15$8$1$<salt>$<hash>` (base64) for a fresh random salt.
    public static func hash(_ password: String) throws -> String {
        var salt = [UInt8](repeating: 0, count: 16)
        for index in salt.indices { salt[index] = UInt8.random(in: 0...255) }
        return try hash(password, salt: salt, logN: logN, blockSize: blockSize, parallelism: parallelism)
    }

    static func hash(_ password: String, salt: [UInt8], logN: Int, blockSize: Int, parallelism: Int) throws -> String {
        let key = try KDF.Scrypt.deriveKey(from: Array(password.utf8), salt: salt, outputByteCount: 32, rounds: 1 << logN,
                                           blockSize: blockSize, parallelism: parallelism)
        let digest = key.withUnsafeBytes { Data($0).base64EncodedString() }
        return "scrypt$\(logN)$\(blockSize)$\(parallelism)$\(Data(salt).base64EncodedString())$\(digest)"
    }

    /// A short digest of a stored hash: what an SMTP session keeps of the password it logged in with, to notice
    /// at its next MAIL that the password was changed or cleared (every new hash has a new salt).
    public static func fingerprint(of stored: String) -> String {
        SHA256.hash(data: Array(stored.utf8)).prefix(16).map { String(format: "%02x", $0) }.joined()
    }

    /// Whether `password` matches a stored hash (constant-time comparison; a malformed hash never matches).
    public static func verify(_ password: String, against stored: String) -> Bool {
        let parts = stored.split(separator: "$")
        guard parts.count == 6, parts[0] == "scrypt", let logN = Int(parts[1]), (10...20).contains(logN), let blockSize = Int(parts[2]),
              (1...32).contains(blockSize), let parallelism = Int(parts[3]), (1...16).contains(parallelism),
              let salt = Data(base64Encoded: String(parts[4])),
              let candidate = try? hash(password, salt: Array(salt), logN: logN, blockSize: blockSize, parallelism: parallelism) else {
            return false
        }
        return constantTimeEquals(Array(candidate.utf8), Array(stored.utf8))
    }
}

extension SMTPPassword {
    /// A well-formed hash that no password matches (its digest is zeros): an unknown user name is checked
    /// against it, so that it costs the same scrypt run as a wrong password and answers alike.
    public static let unknownUserHash = "scrypt$\(logN)$\(blockSize)$\(parallelism)$\(Data(count: 16).base64EncodedString())$\(Data(count: 32).base64EncodedString())"
}

/// A bounded pool of threads that run scrypt, so that a login or a password change never occupies an event
/// loop or the shared executor for tens of milliseconds (and 32 MiB), and at most ``threads`` hashes run at
/// once however many logins arrive: the others wait in a queue (a blocked wait, not a spin). Threads start
/// on first use and live as long as the pool.
public final class PasswordHasher: @unchecked Sendable { // the mutable state is guarded by `condition`
    /// The process's pool, one thread per core.
    public static let shared = PasswordHasher(threads: ProcessInfo.processInfo.activeProcessorCount)

    /// How many hashes may run at once.
    public let threads: Int
    /// Set in the thread dictionary of the pool's threads (a thread's name is not reliable on Linux).
    public static let threadMark = "herald.password-hasher"
    private let condition = NSCondition()
    private var queue: [@Sendable () -> Void] = []
    private var started = 0
    private var running = 0
    private var peak = 0

    public init(threads: Int) {
        self.threads = max(1, threads)
    }

    /// The most hashes that ran at the same time so far (for tests and metrics).
    public var peakConcurrency: Int {
        condition.lock()
        defer { condition.unlock() }
        return peak
    }

    /// `SMTPPassword.hash` on the pool.
    public func hash(_ password: String) async throws -> String {
        try await run { Result { try SMTPPassword.hash(password) } }.get()
    }

    /// `SMTPPassword.verify` on the pool.
    public func verify(_ password: String, against stored: String) async -> Bool {
        await run { SMTPPassword.verify(password, against: stored) }
    }

    /// Runs `work` on one of the pool's threads and returns its result.
    public func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            enqueue { continuation.resume(returning: work()) }
        }
    }

    private func enqueue(_ job: @escaping @Sendable () -> Void) {
        condition.lock()
        queue.append(job)
        if started < threads && started < running + queue.count {
            started += 1
            let name = "scrypt-\(started)" // Linux keeps at most 15 bytes of a thread's name
            // Named from inside: on Linux a name set before start() does not reach the thread.
            Thread { [self] in
                Thread.current.name = name
                Thread.current.threadDictionary[Self.threadMark] = true
                work()
            }.start()
        }
        condition.signal()
        condition.unlock()
    }

    private func work() {
        while true {
            condition.lock()
            while queue.isEmpty { condition.wait() }
            let job = queue.removeFirst()
            running += 1
            peak = max(peak, running)
            condition.unlock()
            job()
            condition.lock()
            running -= 1
            condition.unlock()
        }
    }
}

extension ReplyToToken {
    /// `<tenant>.<sender>.<nonce>.<expiry>.<tag>`, base64url where needed; the tag is the full 32-byte HMAC.
    public func encode(key: SymmetricKey) -> String {
        let body = "\(Base64URL.encode(Self.bytes(tenantID))).\(Base64URL.encode(Self.bytes(senderID))).\(nonce).\(Int(expires.timeIntervalSince1970))"
        let tag = HMAC<SHA256>.authenticationCode(for: Array(body.utf8), using: key)
        return body + "." + Base64URL.encode(Array(tag))
    }

    /// The token's claims when its tag is valid and it has not expired; nil otherwise.
    public static func decode(_ token: String, key: SymmetricKey, now: Date) -> ReplyToToken? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        // Canonical base64url only: the spare bits of the last character cannot vary either.
        guard token.utf8.count <= 256, parts.count == 5, let tag = Base64URL.decode(String(parts[4])), tag.count == 32,
              Base64URL.encode(tag) == parts[4] else { return nil }
        let body = parts[0..<4].joined(separator: ".")
        guard HMAC<SHA256>.isValidAuthenticationCode(tag, authenticating: Array(body.utf8), using: key),
              let tenant = Base64URL.decode(String(parts[0])).flatMap(uuid), let sender = Base64URL.decode(String(parts[1])).flatMap(uuid),
              let expiry = Int(parts[3]) else { return nil }
        let expires = Date(timeIntervalSince1970: TimeInterval(expiry))
        guard expires > now else { return nil }
        return ReplyToToken(tenantID: tenant, senderID: sender, nonce: String(parts[2]), expires: expires)
    }

    static func bytes(_ id: UUID) -> [UInt8] { withUnsafeBytes(of: id.uuid) { Array($0) } }

    static func uuid(_ bytes: [UInt8]) -> UUID? {
        guard bytes.count == 16 else { return nil }
        return bytes.withUnsafeBytes { UUID(uuid: $0.loadUnaligned(as: uuid_t.self)) }
    }
}

/// A symmetric key that can cross module boundaries without importing Crypto everywhere.
public struct SymmetricKeyBox: Sendable {
    public let key: SymmetricKey
    public init(_ key: SymmetricKey) { self.key = key }
}
