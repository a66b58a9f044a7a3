import Foundation

/// An IPv4 (4 bytes) or IPv6 (16 bytes) address.
public struct IPAddress: Hashable, Sendable, CustomStringConvertible {
    /// Network-order bytes: 4 for IPv4, 16 for IPv6.
    public let bytes: [UInt8]

    /// Wraps raw bytes (4 or 16).
    public init?(bytes: [UInt8]) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    /// Parses dotted IPv4 (strict: no leading zeros) or any RFC 4291 IPv6 text form; an IPv6 zone (`%eth0`) is stripped.
    public init?(_ text: String) {
        if let v4 = Self.parseIPv4(Substring(text)) {
            bytes = v4
        } else if let v6 = Self.parseIPv6(text) {
            bytes = v6
        } else {
            return nil
        }
    }

    /// Whether this is an IPv4 address.
    public var isIPv4: Bool { bytes.count == 4 }

    /// For `::ffff:a.b.c.d`, the IPv4 address a.b.c.d.
    public var unmappedIPv4: IPAddress? {
        guard bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff else { return nil }
        return IPAddress(bytes: Array(bytes[12..<16]))
    }

    /// Canonical text (RFC 5952 for IPv6).
    public var description: String {
        if isIPv4 { return bytes.map(String.init).joined(separator: ".") }
        if let v4 = unmappedIPv4 { return "::ffff:\(v4)" }
        let groups = (0..<8).map { Int(bytes[2 * $0]) << 8 | Int(bytes[2 * $0 + 1]) }
        // Longest run (length ≥ 2) of zero groups, first one on ties.
        var bestStart = -1, bestLength = 0, i = 0
        while i < 8 {
            if groups[i] == 0 {
                var j = i
                while j < 8 && groups[j] == 0 { j += 1 }
                if j - i > bestLength && j - i >= 2 { bestStart = i; bestLength = j - i }
                i = j
            } else { i += 1 }
        }
        func hex(_ range: Range<Int>) -> String { range.map { String(groups[$0], radix: 16) }.joined(separator: ":") }
        guard bestStart >= 0 else { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
    }

    static func parseIPv4(_ text: Substring) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var result: [UInt8] = []
        for part in parts {
            guard (1...3).contains(part.count), part.allSatisfy({ $0.isASCII && $0.isNumber }),
                  !(part.count > 1 && part.first == "0"), let value = UInt8(part) else { return nil }
            result.append(value)
        }
        return result
    }

    static func parseIPv6(_ input: String) -> [UInt8]? {
        var text = Substring(input)
        if let percent = text.firstIndex(of: "%") {
            guard text.index(after: percent) < text.endIndex else { return nil }
            text = text[..<percent]
        }
        guard text.contains(":"), text.count <= 45 else { return nil }
        var tail: [UInt8] = []
        // Embedded IPv4 in the last group.
        if let lastColon = text.lastIndex(of: ":"), text[text.index(after: lastColon)...].contains(".") {
            guard let v4 = parseIPv4(text[text.index(after: lastColon)...]) else { return nil }
            tail = v4
            text = text[...lastColon]
            if text.hasSuffix("::") == false { text = text.dropLast() }
        }
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ part: String) -> [UInt16]? {
            if part.isEmpty { return [] }
            var result: [UInt16] = []
            for group in part.split(separator: ":", omittingEmptySubsequences: false) {
                guard (1...4).contains(group.count), let value = UInt16(group, radix: 16) else { return nil }
                result.append(value)
            }
            return result
        }
        guard let head = groups(halves[0]) else { return nil }
        let tailGroups = tail.count / 2
        var words: [UInt16]
        if halves.count == 2 {
            guard let rest = groups(halves[1]) else { return nil }
            let missing = 8 - tailGroups - head.count - rest.count
            guard missing >= 1 else { return nil }
            words = head + Array(repeating: 0, count: missing) + rest
        } else {
            guard head.count + tailGroups == 8 else { return nil }
            words = head
        }
        var bytes: [UInt8] = []
        for word in words { bytes += [UInt8(word >> 8), UInt8(word & 0xff)] }
        bytes += tail
        return bytes.count == 16 ? bytes : nil
    }
}

/// A CIDR network (`10.0.0.0/8`, `2001:db8::/32`); a bare address means /32 or /128.
/// Host bits below the prefix are accepted and masked off, so `10.1.2.3/8` is stored as `10.0.0.0/8`.
public struct IPNetwork: Hashable, Sendable, CustomStringConvertible {
    /// The network address (host bits zero).
    public let address: IPAddress
    /// Prefix length.
    public let prefixLength: Int

    /// Parses a CIDR or a bare address.
    public init?(_ text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let parts = trimmed.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let address = IPAddress(String(parts[0])) else { return nil }
        let maxLength = address.bytes.count * 8
        var length = maxLength
        if parts.count == 2 {
            guard (1...3).contains(parts[1].count), parts[1].allSatisfy({ $0.isASCII && $0.isNumber }),
                  let value = Int(parts[1]), value <= maxLength else { return nil }
            length = value
        }
        self.prefixLength = length
        self.address = IPAddress(bytes: Self.mask(address.bytes, length))!
    }

    static func mask(_ bytes: [UInt8], _ length: Int) -> [UInt8] {
        bytes.enumerated().map { index, byte in
            let bits = max(0, min(8, length - index * 8))
            return bits == 8 ? byte : byte & UInt8(truncatingIfNeeded: 0xff << (8 - bits))
        }
    }

    /// `address/prefix`.
    public var description: String { "\(address)/\(prefixLength)" }

    /// Whether `candidate` is inside; IPv4 networks also contain v4-mapped IPv6 addresses of members, and
    /// IPv6 networks covering `::ffff:0:0/96` contain the plain IPv4 addresses they map.
    public func contains(_ candidate: IPAddress) -> Bool {
        var other = candidate
        if address.isIPv4, !candidate.isIPv4 {
            guard let v4 = candidate.unmappedIPv4 else { return false }
            other = v4
        } else if !address.isIPv4, candidate.isIPv4 {
            other = IPAddress(bytes: Array(repeating: 0, count: 10) + [0xff, 0xff] + candidate.bytes)!
        }
        return Self.mask(other.bytes, prefixLength) == address.bytes
    }
}

/// A tenant's sending allowlist.
public struct IPAllowlist: Sendable, Equatable {
    /// Whether it is enforced.
    public var enabled: Bool
    /// Allowed networks.
    public var networks: [IPNetwork]

    /// Creates an allowlist.
    public init(enabled: Bool, networks: [IPNetwork]) {
        self.enabled = enabled
        self.networks = networks
    }

    /// Most entries accepted.
    public static let maxEntries = 200

    /// Parses entries, naming the first bad one (`allow[3]`); duplicates are dropped, order kept.
    public static func parse(enabled: Bool, entries: [String]) throws(HeraldError) -> IPAllowlist {
        guard entries.count <= maxEntries else { throw .validation("At most \(maxEntries) entries are allowed.", field: "allow") }
        var networks: [IPNetwork] = []
        for (index, entry) in entries.enumerated() {
            guard let network = IPNetwork(entry) else {
                throw .validation("\"\(entry.prefix(64))\" is not an IPv4/IPv6 address or CIDR.", field: "allow[\(index)]")
            }
            if !networks.contains(network) { networks.append(network) }
        }
        return IPAllowlist(enabled: enabled, networks: networks)
    }

    /// Whether a client may send: always when disabled; when enabled, only a known address inside a network.
    public func permits(_ address: IPAddress?) -> Bool {
        guard enabled else { return true }
        guard let address else { return false }
        return networks.contains { $0.contains(address) }
    }
}

/// The one IP-protection check every send path (REST, SMTP, compatibility endpoint) calls.
public enum IPProtectionGuard {
    /// Throws `IpProtection.Denied` when the allowlist does not permit `client`.
    public static func check(client: IPAddress?, allowlist: IPAllowlist) throws(HeraldError) {
        guard allowlist.permits(client) else { throw .ipProtectionDenied(client?.description ?? "unknown") }
    }
}
