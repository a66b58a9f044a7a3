import Crypto
import Foundation

/// The service's root secret (`HERALD_MASTER_KEY`): 32 random bytes from which every at-rest and signing key is derived.
public struct MasterKey: Sendable {
    fileprivate let key: SymmetricKey

    /// Parses the base64 form used in configuration; exactly 32 bytes are required.
    public init(base64: String) throws(HeraldError) {
        guard let data = Data(base64Encoded: base64.trimmingCharacters(in: .whitespacesAndNewlines)), data.count == 32 else {
            throw HeraldError(code: "Config.Invalid", kind: .internal, message: "HERALD_MASTER_KEY must be 32 random bytes in base64 (e.g. `openssl rand -base64 32`).")
        }
        self.key = SymmetricKey(data: data)
    }

    /// Creates a master key from raw bytes (tests).
    public init(bytes: [UInt8]) {
        precondition(bytes.count == 32, "master key must be 32 bytes")
        self.key = SymmetricKey(data: bytes)
    }

    /// A fresh random master key (tests and first-run set-up).
    public static func random() -> MasterKey {
        MasterKey(bytes: (0..<32).map { _ in UInt8.random(in: 0...255) })
    }

    /// Derives an independent 256-bit key for one purpose, so no two features share key material.
    public func derive(_ purpose: String) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(inputKeyMaterial: key, info: Array("herald/\(purpose)".utf8), outputByteCount: 32)
    }
}

/// Envelope encryption of small secrets at rest: each secret gets its own random data key (AES-256-GCM),
/// and the data key is wrapped with a key-encryption key derived from the master key.
///
/// The associated data binds a ciphertext to the row it belongs to, so ciphertexts cannot be swapped between rows.
public struct SecretBox: Sendable {
    private static let version: UInt8 = 1
    private let kek: SymmetricKey
    private let kekID: [UInt8]

    /// Creates a box whose key-encryption key is derived from `masterKey`.
    public init(masterKey: MasterKey) {
        self.kek = masterKey.derive("kek/v1")
        self.kekID = Array(SHA256.hash(data: kek.withUnsafeBytes { Array($0) }).prefix(4))
    }

    /// Encrypts `plaintext`, bound to `context` (for example `access_key:LTAI…`).
    public func seal(_ plaintext: [UInt8], context: String) -> [UInt8] {
        let aad = Array(context.utf8)
        let dataKey = SymmetricKey(size: .bits256)
        // Sealing with a valid key cannot fail; a failure here is a programming error.
        let body = try! AES.GCM.seal(plaintext, using: dataKey, authenticating: aad).combined!
        let wrapped = try! AES.GCM.seal(dataKey.withUnsafeBytes { Array($0) }, using: kek, authenticating: aad).combined!
        var out: [UInt8] = [Self.version]
        out += kekID
        out += [UInt8(wrapped.count)]
        out += wrapped
        out += body
        return out
    }

    /// Decrypts what `seal` produced with the same context; any tampering or a different master key fails.
    public func open(_ blob: [UInt8], context: String) throws(HeraldError) -> [UInt8] {
        let failure = HeraldError(code: "Secret.Undecryptable", kind: .internal, message: "A stored secret could not be decrypted (wrong HERALD_MASTER_KEY?).")
        guard blob.count > 6, blob[0] == Self.version, Array(blob[1..<5]) == kekID else { throw failure }
        let wrappedLength = Int(blob[5])
        guard blob.count > 6 + wrappedLength else { throw failure }
        let aad = Array(context.utf8)
        do {
            let wrapped = try AES.GCM.SealedBox(combined: blob[6..<(6 + wrappedLength)])
            let dataKey = SymmetricKey(data: try AES.GCM.open(wrapped, using: kek, authenticating: aad))
            let body = try AES.GCM.SealedBox(combined: blob[(6 + wrappedLength)...])
            return Array(try AES.GCM.open(body, using: dataKey, authenticating: aad))
        } catch {
            throw failure
        }
    }
}

/// Comparison whose running time does not depend on the contents of two byte strings, only on their lengths.
///
/// The lengths are compared at full width: folding them into a byte would make, for example, an empty
/// input equal to 256 zero bytes. Every byte of the longer input is visited, so neither a different length
/// nor a common prefix ends the loop early.
public func constantTimeEquals(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
    let countA = a.count, countB = b.count
    var diff = UInt(bitPattern: countA ^ countB)
    var ia = a.makeIterator()
    var ib = b.makeIterator()
    for _ in 0..<max(countA, countB) {
        let x = ia.next() ?? 0
        let y = ib.next() ?? 0
        diff |= UInt(x ^ y)
    }
    return diff == 0
}
