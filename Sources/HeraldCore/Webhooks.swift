import Crypto
import Foundation

/// A webhook endpoint's signing secret in the Standard Webhooks form: `whsec_` and the base64 of 32
/// random bytes; the bytes are the HMAC key.
public struct WebhookSecret: Sendable, Equatable {
    public let key: [UInt8]

    public init(key: [UInt8]) { self.key = key }

    /// A fresh random secret.
    public static func generate() -> WebhookSecret {
        var generator = SystemRandomNumberGenerator()
        return WebhookSecret(key: (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }

    /// Parses `whsec_<base64>`.
    public init?(_ text: String) {
        guard text.hasPrefix("whsec_"), let data = Data(base64Encoded: String(text.dropFirst(6))), (24...64).contains(data.count) else { return nil }
        key = Array(data)
    }

    /// The form shown to the tenant once.
    public var description: String { "whsec_" + Data(key).base64EncodedString() }
}

/// Standard Webhooks signatures: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, several separated by
/// a space while a rotated-out secret is still honoured.
public enum WebhookSignature {
    /// One signature.
    public static func sign(id: String, timestamp: Int, body: some Sequence<UInt8>, secret: WebhookSecret) -> String {
        var hmac = HMAC<SHA256>(key: SymmetricKey(data: secret.key))
        hmac.update(data: Array("\(id).\(timestamp).".utf8))
        hmac.update(data: Array(body))
        return "v1," + Data(hmac.finalize()).base64EncodedString()
    }

    /// The `webhook-signature` header value: one signature per secret (the current one first).
    public static func header(id: String, timestamp: Int, body: [UInt8], secrets: [WebhookSecret]) -> String {
        secrets.map { sign(id: id, timestamp: timestamp, body: body, secret: $0) }.joined(separator: " ")
    }
}

/// Event types a webhook endpoint can ask for (API.md); `*` means all of them.
public enum WebhookEventTypes {
    public static let all = EventType.subscribable.map(\.rawValue)

    /// Checks a filter: `["*"]` or a non-empty list of known types, without duplicates.
    public static func validate(_ types: [String]) throws(HeraldError) -> [String] {
        guard !types.isEmpty else { throw .validation("eventTypes must list at least one event type, or \"*\".", field: "eventTypes") }
        if types == ["*"] { return types }
        var seen = Set<String>()
        for type in types {
            guard all.contains(type) else {
                throw .validation("Unknown event type \"\(type)\"; use \"*\" or some of: \(all.joined(separator: ", ")).", field: "eventTypes")
            }
            guard seen.insert(type).inserted else { throw .validation("eventTypes lists \"\(type)\" twice.", field: "eventTypes") }
        }
        return types
    }
}

/// Where webhooks may go. A URL is https (plain http only when private targets are allowed, for tests
/// and private installations), has a host, no user name or password, and at most 2,048 characters; the
/// addresses its host resolves to are checked separately with ``isForbidden(_:)``, at registration and
/// again at every connection.
public struct WebhookTargetPolicy: Sendable {
    /// `HERALD_WEBHOOK_ALLOW_PRIVATE=1`.
    public var allowPrivate: Bool

    public init(allowPrivate: Bool) { self.allowPrivate = allowPrivate }

    /// A checked URL's parts.
    public struct Target: Sendable, Equatable {
        public var url: String
        public var scheme: String
        /// The host as written (lower-cased, without brackets for IPv6).
        public var host: String
        public var port: Int
        /// The host when it is an address literal.
        public var address: IPAddress?
    }

    /// Parses and checks a URL's form (not yet where its host resolves).
    public func target(_ text: String) throws(HeraldError) -> Target {
        let invalid = HeraldError.validation("url must be an absolute https URL (at most 2,048 characters).", field: "url")
        guard text.utf8.count <= 2048, let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
              var host = components.host?.lowercased(), !host.isEmpty else { throw invalid }
        guard scheme == "https" || (scheme == "http" && allowPrivate) else {
            throw .validation(allowPrivate ? "url must be http or https." : "url must be https (plain http only when the operator allows private webhook targets).",
                              field: "url")
        }
        guard components.user == nil, components.password == nil else {
            throw .validation("url must not carry a user name or password.", field: "url")
        }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let port = components.port ?? (scheme == "https" ? 443 : 80)
        guard (1...65535).contains(port) else { throw invalid }
        let address = IPAddress(host)
        if address == nil {
            guard host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == ".") }), !host.hasPrefix("."),
                  host.split(separator: ".").allSatisfy({ !$0.isEmpty && $0.count <= 63 }) else { throw invalid }
        }
        return Target(url: text, scheme: scheme, host: host, port: port, address: address)
    }

    /// Why an address may not be a webhook target, or nil when it may.
    public func refusal(_ address: IPAddress) -> String? {
        allowPrivate ? nil : Self.isForbidden(address)
    }

    /// Ranges no webhook may reach when private targets are not allowed.
    static let forbidden: [(IPNetwork, String)] = [
        ("0.0.0.0/8", "an unspecified address"), ("127.0.0.0/8", "a loopback address"), ("10.0.0.0/8", "a private address"),
        ("172.16.0.0/12", "a private address"), ("192.168.0.0/16", "a private address"), ("169.254.0.0/16", "a link-local address"),
        ("100.64.0.0/10", "a shared (CGNAT) address"), ("192.0.0.0/24", "an IETF protocol address"), ("192.0.2.0/24", "a documentation address"),
        ("198.18.0.0/15", "a benchmarking address"), ("198.51.100.0/24", "a documentation address"), ("203.0.113.0/24", "a documentation address"),
        ("224.0.0.0/4", "a multicast address"), ("240.0.0.0/4", "a reserved address"),
        ("::/128", "an unspecified address"), ("::1/128", "a loopback address"),
        ("::/96", "an IPv4-compatible address"), ("64:ff9b::/96", "a NAT64 address"), ("64:ff9b:1::/48", "a NAT64 address"),
        ("100::/64", "a discard address"), ("2001::/32", "a Teredo address"), ("2001:db8::/32", "a documentation address"),
        ("2002::/16", "a 6to4 address"), ("fc00::/7", "a unique local address"), ("fe80::/10", "a link-local address"),
        ("fec0::/10", "a site-local address"), ("ff00::/8", "a multicast address"),
    ].map { (IPNetwork($0.0)!, $0.1) }

    /// Loopback, private, link-local (which holds the cloud metadata address 169.254.169.254), CGNAT
    /// (Alibaba Cloud's metadata 100.100.100.200), multicast, reserved, IPv6 unique local (AWS's
    /// fd00:ec2::254), v4-mapped and the other tunnelling forms that embed an IPv4 address.
    public static func isForbidden(_ address: IPAddress) -> String? {
        // (IPNetwork.contains maps IPv4 into ::ffff:0:0/96, so that range is checked here, for IPv6 only.)
        if !address.isIPv4, let v4 = address.unmappedIPv4 { return isForbidden(v4) ?? "an IPv4-mapped address" }
        return forbidden.first { $0.0.contains(address) }?.1
    }
}

/// When a failed webhook attempt is tried again (SPEC §6): immediately, then after 5 s, 5 min, 30 min,
/// 2 h, 5 h, 10 h and 10 h, each with ±10 % jitter; after the last one the delivery has failed. A 429,
/// 502, 503 or 504 with `Retry-After` is not retried before it says.
public struct WebhookRetryPolicy: Sendable, Equatable {
    /// Seconds before each retry; attempt n + 1 waits `delays[n - 1]` after attempt n.
    public var delays: [Double]
    /// Fraction of jitter either way.
    public var jitter: Double = 0.1
    /// An endpoint failing for this long without a single success is disabled.
    public var disableAfter: TimeInterval = 5 * 86_400

    public static let standard = WebhookRetryPolicy(delays: [5, 300, 1_800, 7_200, 18_000, 36_000, 36_000])

    public init(delays: [Double]) { self.delays = delays }

    /// Parses `HERALD_WEBHOOK_RETRY_SCHEDULE`: comma-separated seconds, e.g. `5,300,1800`.
    public static func parse(_ text: String) throws(HeraldError) -> WebhookRetryPolicy {
        let parts = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        var delays: [Double] = []
        for part in parts {
            guard let value = Double(part), value >= 0, value <= 30 * 86_400 else {
                throw .validation("a retry schedule is comma-separated seconds (0 to 2592000), e.g. 5,300,1800; got \"\(part)\".")
            }
            delays.append(value)
        }
        guard !delays.isEmpty, delays.count <= 20 else { throw .validation("a retry schedule has 1 to 20 delays.") }
        return WebhookRetryPolicy(delays: delays)
    }

    /// What an attempt's answer means.
    public enum Decision: Sendable, Equatable {
        case succeeded
        /// Try again at this time.
        case retry(Date)
        /// No more attempts.
        case failed
        /// `410 Gone`: the endpoint is disabled at once.
        case gone
    }

    /// Decides after attempt number `attempt` (1 for the first) got `status` (nil: no HTTP answer at
    /// all — a timeout, a refused or reset connection). `random` gives values in 0..<1 (injected in tests).
    public func decide(attempt: Int, status: Int?, retryAfter: String?, now: Date, random: () -> Double = { Double.random(in: 0..<1) }) -> Decision {
        if let status, (200..<300).contains(status) { return .succeeded }
        if status == 410 { return .gone }
        guard attempt >= 1, attempt <= delays.count else { return .failed }
        let base = delays[attempt - 1]
        var delay = base * (1 + jitter * (2 * random() - 1))
        if let status, [429, 502, 503, 504].contains(status), let retryAfter, let wait = Self.retryAfterSeconds(retryAfter, now: now) {
            delay = max(delay, wait)
        }
        return .retry(now.addingTimeInterval(max(0, delay)))
    }

    /// `Retry-After` as delay-seconds or an HTTP date (RFC 9110 §10.2.3); capped at a day.
    public static func retryAfterSeconds(_ value: String, now: Date) -> Double? {
        let text = value.trimmingCharacters(in: .whitespaces)
        if let seconds = Int(text), seconds >= 0 { return Double(min(seconds, 86_400)) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: text) else { return nil }
        return min(max(0, date.timeIntervalSince(now)), 86_400)
    }
}
