import Crypto
import Foundation
import _CryptoExtras

/// Sending-domain rules with no I/O: the name, the DNS records a tenant must publish, and how what
/// was found in DNS compares with them.
public enum SendingDomain {
    /// Checks and normalises a domain name: ASCII letters, digits and hyphens in 2+ labels (an
    /// internationalised name in its `xn--` form), each 1–63 characters, not starting or ending with a
    /// hyphen, 253 characters at most, and a top-level label that is not all digits.
    /// `allowUnderscore` admits DNS names that are not host names (`_spf.example.com`).
    public static func normalize(_ name: String, field: String = "name", allowUnderscore: Bool = false) throws(HeraldError) -> String {
        var name = name.trimmingWhitespace.lowercased()
        if name.hasSuffix(".") { name.removeLast() }
        guard name.utf8.allSatisfy({ $0 < 0x80 }) else {
            throw .validation("\(field) must be ASCII; give an internationalised domain in its xn-- (punycode) form.", field: field)
        }
        // ASCII from here on: a letter is a-z (lowercased), a digit 0-9.
        func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }
        let labels = name.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard name.utf8.count <= 253, labels.count >= 2,
              labels.allSatisfy({ label in
                  (1...63).contains(label.count) && label.first != UInt8(ascii: "-") && label.last != UInt8(ascii: "-")
                      && label.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || isDigit($0) || $0 == UInt8(ascii: "-") || (allowUnderscore && $0 == UInt8(ascii: "_")) }
              }),
              let top = labels.last, !top.allSatisfy(isDigit)
        else {
            throw .validation("\(field) is not a domain name like mail.example.com.", field: field)
        }
        return name
    }

    /// What a record is for.
    public enum Purpose: String, Codable, Sendable, CaseIterable {
        /// Proves the tenant controls the domain.
        case ownership
        /// Authorises Herald's servers to send for the domain.
        case spf
        /// The public half of a DKIM signing key.
        case dkim
        /// A suggested DMARC policy (checked, not required).
        case dmarc
        /// MX of the return-path (bounce) host, when the operator configured one (checked, not required).
        case returnPath = "return_path"
        /// SPF of the return-path host (the envelope sender's domain once the return path is used, so SPF is
        /// evaluated there); the return path is used only when both of its records are in place.
        case returnPathSPF = "return_path_spf"
    }

    /// Where a domain stands (`domains.status`): mail is sent only from a verified domain, and a failing
    /// one (verified once, its records broken since) keeps its senders' SMTP logins.
    public enum Status: String, Sendable, Hashable, Codable, CaseIterable {
        /// Not verified yet.
        case pending
        /// Its required records are published.
        case verified
        /// Verified once; a recheck found a required record missing.
        case failing
    }

    /// The check result of one record.
    public enum RecordStatus: String, Codable, Sendable {
        /// Not checked yet.
        case pending
        /// Published as required.
        case ok
        /// Nothing at that name.
        case missing
        /// Something else is published there.
        case mismatch
        /// The lookup failed (timeout, SERVFAIL); try again.
        case error
    }

    /// One record to publish.
    public struct Record: Codable, Sendable, Equatable {
        public var purpose: Purpose
        /// `TXT` or `MX`.
        public var type: String
        /// Fully qualified owner name.
        public var host: String
        /// The value to publish (for MX, `preference exchange`).
        public var value: String
        /// DKIM only: the selector the record is for.
        public var selector: String?
        /// DKIM only: the key's algorithm (`k=`).
        public var algorithm: DKIM.Algorithm?

        public init(purpose: Purpose, type: String, host: String, value: String, selector: String? = nil, algorithm: DKIM.Algorithm? = nil) {
            self.purpose = purpose
            self.type = type
            self.host = host
            self.value = value
            self.selector = selector
            self.algorithm = algorithm
        }

        /// Whether the domain cannot be used for sending until this record checks out. An Ed25519 key's
        /// record is not: without it the domain signs with RSA alone (see ``signingSelectors(keys:checks:)``).
        public var isRequired: Bool { purpose == .ownership || purpose == .spf || (purpose == .dkim && algorithm != .ed25519) }
    }

    /// Settings of the operator's installation that shape the records.
    public struct Settings: Sendable, Equatable {
        /// Host named in `include:` of the SPF record.
        public var spfInclude: String
        /// MX host for the return-path subdomain, if bounces come back to Herald.
        public var returnPathMX: String?
        /// Label of the return-path subdomain (`bounces` → `bounces.example.com`).
        public var returnPathLabel: String

        public init(spfInclude: String, returnPathMX: String? = nil, returnPathLabel: String = "bounces") {
            self.spfInclude = spfInclude
            self.returnPathMX = returnPathMX
            self.returnPathLabel = returnPathLabel
        }
    }

    /// A DKIM key's public side as the records need it.
    public struct DKIMPublicKey: Sendable, Equatable {
        public var selector: String
        /// RSA: SubjectPublicKeyInfo DER, base64; Ed25519: the raw 32-byte key, base64 (RFC 8463 §4).
        public var publicKeyBase64: String
        /// Which record it needs (`k=`).
        public var algorithm: DKIM.Algorithm

        public init(selector: String, publicKeyBase64: String, algorithm: DKIM.Algorithm = .rsa) {
            self.selector = selector
            self.publicKeyBase64 = publicKeyBase64
            self.algorithm = algorithm
        }
    }

    /// What the last check found for one record.
    public struct Check: Codable, Sendable, Equatable {
        public var purpose: Purpose
        public var host: String
        public var selector: String?
        public var status: RecordStatus
        /// What DNS held at the host (TXT values, or MX as `preference host`), at most a few entries.
        public var found: [String]
        /// Since when the record has had this status (the first check that found it so); nil in checks stored
        /// before this was kept.
        public var since: Date?

        public init(purpose: Purpose, host: String, selector: String? = nil, status: RecordStatus, found: [String], since: Date? = nil) {
            self.purpose = purpose
            self.host = host
            self.selector = selector
            self.status = status
            self.found = found
            self.since = since
        }
    }

    /// `checks` made at `now`, each with the time since when its record has had its status: the previous check's
    /// `since` when that record (purpose, host, selector) had the same status then, else `now`.
    public static func carryingSince(_ checks: [Check], previous: [Check], now: Date) -> [Check] {
        checks.map { check in
            var check = check
            let before = previous.first { $0.purpose == check.purpose && $0.host == check.host && $0.selector == check.selector }
            check.since = before.flatMap { $0.status == check.status ? ($0.since ?? now) : nil } ?? now
            return check
        }
    }

    /// The TXT value proving ownership.
    public static func ownershipValue(token: String) -> String { "herald-verification=\(token)" }

    /// Every record the tenant must (or may) publish for `domain`.
    public static func records(domain: String, token: String, dkim: [DKIMPublicKey], settings: Settings) -> [Record] {
        var records = [
            Record(purpose: .ownership, type: "TXT", host: "_herald.\(domain)", value: ownershipValue(token: token)),
            Record(purpose: .spf, type: "TXT", host: domain, value: "v=spf1 include:\(settings.spfInclude) -all"),
        ]
        for key in dkim {
            records.append(Record(purpose: .dkim, type: "TXT", host: "\(key.selector)._domainkey.\(domain)",
                                  value: "v=DKIM1; k=\(key.algorithm.rawValue); p=\(key.publicKeyBase64)", selector: key.selector,
                                  algorithm: key.algorithm))
        }
        records.append(Record(purpose: .dmarc, type: "TXT", host: "_dmarc.\(domain)", value: "v=DMARC1; p=none; rua=mailto:dmarc-reports@\(domain)"))
        if let mx = settings.returnPathMX {
            records.append(Record(purpose: .returnPath, type: "MX", host: "\(settings.returnPathLabel).\(domain)", value: "10 \(mx)"))
            records.append(Record(purpose: .returnPathSPF, type: "TXT", host: "\(settings.returnPathLabel).\(domain)",
                                  value: "v=spf1 include:\(settings.spfInclude) -all"))
        }
        return records
    }

    /// Compares what DNS holds at a record's host (TXT values, or MX as `preference host`; nil when the
    /// name does not exist or has no such records) with what should be there.
    public static func check(_ record: Record, found: [String], settings: Settings) -> RecordStatus {
        switch record.purpose {
        case .ownership:
            if found.isEmpty { return .missing }
            return found.contains(record.value) ? .ok : .mismatch
        case .spf, .returnPathSPF:
            // RFC 7208 §4.5: exactly one SPF record; it must include ours (other mechanisms may stay).
            let spf = found.filter { $0.lowercased().hasPrefix("v=spf1") }
            if spf.isEmpty { return .missing }
            guard spf.count == 1 else { return .mismatch }
            let terms = spf[0].lowercased().split(separator: " ")
            return terms.contains { $0 == "include:\(settings.spfInclude.lowercased())" || $0 == "+include:\(settings.spfInclude.lowercased())" }
                ? .ok : .mismatch
        case .dkim:
            if found.isEmpty { return .missing }
            let expected = dkimTags(record.value)
            // An Ed25519 key's record must also say k=ed25519 (a verifier reads a record without k= as RSA);
            // RSA records are compared on p= alone, as they always were.
            return found.contains { value in
                let tags = dkimTags(value)
                return expected["p"] != nil && tags["p"] == expected["p"]
                    && (record.algorithm != .ed25519 || tags["k"]?.lowercased() == DKIM.Algorithm.ed25519.rawValue)
            } ? .ok : .mismatch
        case .dmarc:
            let dmarc = found.filter { $0.hasPrefix("v=DMARC1") }
            if dmarc.isEmpty { return .missing }
            return dmarc.count == 1 ? .ok : .mismatch
        case .returnPath:
            if found.isEmpty { return .missing }
            let expectedHost = record.value.split(separator: " ").last.map { String($0).lowercased() }
            return found.contains { $0.split(separator: " ").last.map { String($0).lowercased() } == expectedHost } ? .ok : .mismatch
        }
    }

    /// The tags of a DKIM key record (RFC 6376 §3.6.1), whitespace removed from values.
    public static func dkimTags(_ value: String) -> [String: String] {
        var tags: [String: String] = [:]
        for part in value.split(separator: ";") {
            let pair = part.split(separator: "=", maxSplits: 1)
            guard pair.count == 2 else { continue }
            let name = pair[0].trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
            tags[name] = pair[1].filter { !$0.isWhitespace }
        }
        return tags
    }

    /// A fresh DKIM selector: `herald` + the date + 4 random characters, e.g. `herald20261125ab3k`, and
    /// `-ed25519` after it for an Ed25519 key (`herald20261125ab3k-ed25519`).
    public static func newSelector(now: Date, algorithm: DKIM.Algorithm = .rsa) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month, .day], from: now)
        let date = String(format: "%04d%02d%02d", parts.year ?? 0, parts.month ?? 0, parts.day ?? 0)
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        return "herald" + date + String((0..<4).map { _ in alphabet.randomElement()! }) + (algorithm == .ed25519 ? "-ed25519" : "")
    }

    /// A fresh ownership token (128 bits, base32-ish lower case).
    public static func newToken() -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567")
        return String((0..<26).map { _ in alphabet.randomElement()! })
    }
}

/// What makes a DKIM signature over the signed data: for `rsa-sha256` RSASSA-PKCS1-v1_5 over its SHA-256,
/// for `ed25519-sha256` (RFC 8463) PureEdDSA over its SHA-256. ``DKIMKeyPair`` signs RSA with swift-crypto,
/// the delivery worker with the system's libcrypto, faster; ``DKIMEd25519Key`` signs Ed25519.
public protocol DKIMSigningKey: Sendable {
    /// The key's algorithm, which names the signature's `a=` tag.
    var algorithm: DKIM.Algorithm { get }
    /// The signature of `data`.
    func sign(_ data: [UInt8]) throws -> [UInt8]
}

/// An RSA key for DKIM signing (RFC 6376 §3.3: rsa-sha256; RFC 8301: at least 1024 bits, 2048 advised).
public struct DKIMKeyPair: DKIMSigningKey {
    /// The private key.
    public let privateKey: _RSA.Signing.PrivateKey

    /// Key sizes Herald generates.
    public static let allowedSizes = [1024, 2048]

    /// Generates a key of `bits` (1024 or 2048).
    public static func generate(bits: Int) throws(HeraldError) -> DKIMKeyPair {
        guard allowedSizes.contains(bits) else { throw .validation("dkimKeyBits must be 1024 or 2048.", field: "dkimKeyBits") }
        do {
            return DKIMKeyPair(privateKey: try _RSA.Signing.PrivateKey(unsafeKeySize: .init(bitCount: bits)))
        } catch {
            throw HeraldError(code: "Internal", kind: .internal, message: "Could not generate an RSA key.")
        }
    }

    /// Loads a key from its DER form (as stored, sealed, in the database).
    public init(der: [UInt8]) throws {
        privateKey = try _RSA.Signing.PrivateKey(unsafeDERRepresentation: der)
    }

    init(privateKey: _RSA.Signing.PrivateKey) { self.privateKey = privateKey }

    /// The private key's DER form, to seal and store.
    public var privateKeyDER: [UInt8] { Array(privateKey.derRepresentation) }

    /// The public key as published in `p=` (SubjectPublicKeyInfo DER, base64).
    public var publicKeyBase64: String { privateKey.publicKey.derRepresentation.base64EncodedString() }

    /// Size in bits.
    public var bits: Int { privateKey.keySizeInBits }

    /// Always RSA.
    public var algorithm: DKIM.Algorithm { .rsa }

    /// RSASSA-PKCS1-v1_5 over SHA-256 of `data` (the DKIM `rsa-sha256` algorithm).
    public func sign(_ data: [UInt8]) throws -> [UInt8] {
        Array(try privateKey.signature(for: SHA256.hash(data: data), padding: .insecurePKCS1v1_5).rawRepresentation)
    }
}
