import Foundation

/// Every per-tenant product limit in one place (SPEC §2 defaults), configurable for the installation
/// (`HERALD_LIMITS`) and overridable per tenant by the operator. Exceeding one is `Limit.Exceeded`
/// naming it.
public struct ProductLimits: Codable, Sendable, Equatable {
    public var users = 100
    public var accessKeysPerUser = 2
    public var policies = 100
    public var domains = 5
    public var senders = 10
    /// Sender deletions per calendar month; nil = by tenant kind (10 enterprise, 5 personal).
    public var senderDeletionsPerMonth: Int?
    public var tags = 10
    public var templates = 10
    public var lists = 10
    public var listMembers = 10_000
    /// Invalid addresses a tenant may remove from its list itself per calendar month; 0: only the operator
    /// (Direct Mail lets only support remove them).
    public var invalidAddressRemovalsPerMonth = 1_000
    /// Recipients of one single send (SPEC §2: 100); at most ``SendRules/ceiling``'s.
    public var recipientsPerSend = 100
    /// Characters of a subject (100).
    public var subjectLength = 100
    /// Bytes of a body, html and text together (80 KB).
    public var bodyBytes = 80 * 1024

    public init() {}

    /// The send limits at their most (``SendRules/ceiling``), the rest as by default: what is checked before a
    /// tenant's own limits are known.
    public static let ceiling: ProductLimits = {
        var limits = ProductLimits()
        (limits.recipientsPerSend, limits.subjectLength, limits.bodyBytes) = SendRules.ceiling
        return limits
    }()

    /// The most a limit may be set to: the send limits are bounded by what every path can carry.
    static func maximum(_ name: String) -> Int {
        switch name {
        case "recipientsPerSend": SendRules.ceiling.recipientsPerSend
        case "subjectLength": SendRules.ceiling.subjectLength
        case "bodyBytes": SendRules.ceiling.bodyBytes
        default: 10_000_000
        }
    }

    /// The names an override may use.
    public static let names = ["users", "accessKeysPerUser", "policies", "domains", "senders", "senderDeletionsPerMonth", "tags",
                               "templates", "lists", "listMembers", "invalidAddressRemovalsPerMonth",
                               "recipientsPerSend", "subjectLength", "bodyBytes"]

    /// Sender deletions a month for a tenant of `kind`.
    public func senderDeletions(kind: TenantKind) -> Int {
        senderDeletionsPerMonth ?? (kind == .personal ? 5 : 10)
    }

    /// These limits with `overrides` (name → value) applied; unknown names and values out of 0…10,000,000
    /// are refused, naming them.
    public func applying(_ overrides: [String: Int]) throws(HeraldError) -> ProductLimits {
        var limits = self
        for (name, value) in overrides.sorted(by: { $0.key < $1.key }) {
            let maximum = Self.maximum(name), minimum = ["recipientsPerSend", "subjectLength", "bodyBytes"].contains(name) ? 1 : 0
            guard (minimum...maximum).contains(value) else { throw .validation("\(name) must be from \(minimum) to \(maximum).", field: name) }
            switch name {
            case "users": limits.users = value
            case "accessKeysPerUser": limits.accessKeysPerUser = value
            case "policies": limits.policies = value
            case "domains": limits.domains = value
            case "senders": limits.senders = value
            case "senderDeletionsPerMonth": limits.senderDeletionsPerMonth = value
            case "tags": limits.tags = value
            case "templates": limits.templates = value
            case "lists": limits.lists = value
            case "listMembers": limits.listMembers = value
            case "invalidAddressRemovalsPerMonth": limits.invalidAddressRemovalsPerMonth = value
            case "recipientsPerSend": limits.recipientsPerSend = value
            case "subjectLength": limits.subjectLength = value
            case "bodyBytes": limits.bodyBytes = value
            default: throw .validation("\(name) is not a limit; use one of \(Self.names.joined(separator: ", ")).", field: name)
            }
        }
        return limits
    }

    /// Parses `name=value,name=value` (the `HERALD_LIMITS` setting).
    public static func parseOverrides(_ text: String) throws(HeraldError) -> [String: Int] {
        var overrides: [String: Int] = [:]
        for item in text.split(separator: ",") {
            let pair = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2, let value = Int(pair[1]) else { throw .validation("\"\(item)\" is not name=number.", field: "limits") }
            overrides[pair[0]] = value
        }
        return overrides
    }
}
