import Foundation

/// Allow or Deny.
public enum PolicyEffect: String, Codable, Sendable {
    /// Grants the matched actions.
    case allow = "Allow"
    /// Refuses the matched actions, overriding any Allow.
    case deny = "Deny"
}

/// One statement of a RAM policy.
public struct PolicyStatement: Codable, Sendable, Equatable {
    /// Allow or Deny.
    public var effect: PolicyEffect
    /// Action patterns, e.g. `dm:Get*`.
    public var actions: [String]
    /// Resource patterns, e.g. `acs:dm:*:<tenant>:domain/*`.
    public var resources: [String]

    enum CodingKeys: String, CodingKey {
        case effect = "Effect", actions = "Action", resources = "Resource"
    }

    /// Creates a statement.
    public init(effect: PolicyEffect, actions: [String], resources: [String]) {
        self.effect = effect
        self.actions = actions
        self.resources = resources
    }

    /// Decodes Action and Resource given as a string or an array of strings.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        effect = try container.decode(PolicyEffect.self, forKey: .effect)
        actions = try Self.stringOrArray(container, .actions)
        resources = try Self.stringOrArray(container, .resources)
    }

    private static func stringOrArray(_ container: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys) throws -> [String] {
        if let single = try? container.decode(String.self, forKey: key) { return [single] }
        return try container.decode([String].self, forKey: key)
    }
}

/// A RAM-style policy document: `{"Statement":[{"Effect","Action","Resource"}]}`.
public struct PolicyDocument: Codable, Sendable, Equatable {
    /// Optional version string, kept as given.
    public var version: String?
    /// The statements.
    public var statements: [PolicyStatement]

    enum CodingKeys: String, CodingKey {
        case version = "Version", statements = "Statement"
    }

    /// Creates a document.
    public init(version: String? = nil, statements: [PolicyStatement]) {
        self.version = version
        self.statements = statements
    }

    /// Largest accepted document, in bytes of JSON.
    public static let maxSize = 6144

    /// Decodes and validates a document from JSON bytes.
    public static func parse(_ bytes: [UInt8]) throws(HeraldError) -> PolicyDocument {
        guard bytes.count <= maxSize else { throw .validation("The policy document is larger than \(maxSize) bytes.", field: "document") }
        let document: PolicyDocument
        do {
            document = try JSONDecoder().decode(PolicyDocument.self, from: Data(bytes))
        } catch {
            throw .validation("The policy document is not valid: it needs Statement: [{Effect, Action, Resource}].", field: "document")
        }
        try document.validate()
        return document
    }

    /// Checks the rules of a well-formed document, naming the failing field.
    public func validate() throws(HeraldError) {
        if let encoded = try? JSONEncoder().encode(self), encoded.count > Self.maxSize {
            throw .validation("The policy document is larger than \(Self.maxSize) bytes.", field: "document")
        }
        guard !statements.isEmpty else { throw .validation("Statement must not be empty.", field: "document.Statement") }
        guard statements.count <= 100 else { throw .validation("At most 100 statements are allowed.", field: "document.Statement") }
        for (index, statement) in statements.enumerated() {
            let base = "document.Statement[\(index)]"
            guard !statement.actions.isEmpty else { throw .validation("Action must not be empty.", field: "\(base).Action") }
            guard !statement.resources.isEmpty else { throw .validation("Resource must not be empty.", field: "\(base).Resource") }
            for (i, action) in statement.actions.enumerated() where !Self.isValidAction(action) {
                throw .validation("\"\(action)\" is not an action: use dm:<Name>, with * and ? as wildcards.", field: "\(base).Action[\(i)]")
            }
            for (i, resource) in statement.resources.enumerated() where !(resource == "*" || (resource.hasPrefix("acs:dm:") && resource.utf8.count <= 512)) {
                throw .validation("\"\(resource)\" is not a resource: use * or acs:dm:….", field: "\(base).Resource[\(i)]")
            }
        }
    }

    static func isValidAction(_ action: String) -> Bool {
        if action == "*" { return true }
        guard action.lowercased().hasPrefix("dm:") else { return false }
        let name = action.dropFirst(3)
        return !name.isEmpty && name.count <= 128 && name.unicodeScalars.allSatisfy {
            ($0.isASCII && CharacterSet.alphanumerics.contains($0)) || $0 == "*" || $0 == "?"
        }
    }
}

/// The outcome of evaluating policies for one request.
public enum PolicyDecision: Sendable, Equatable {
    /// An Allow matched and no Deny did.
    case allow
    /// A Deny matched (it wins over any Allow).
    case explicitDeny
    /// Nothing allowed it.
    case implicitDeny
}

/// Evaluates RAM policies: explicit Deny wins, then any Allow, else denied.
///
/// Resource patterns match case-insensitively: every object name in a resource is case-insensitive (ids,
/// addresses, domain names; see ``ResourceName/canonicalName(kind:_:)``), so a Deny written with an
/// upper-case id, as `UUID().uuidString` prints it, still matches.
public enum PolicyEvaluator {
    /// The decision for `action` on `resource` under `policies`.
    public static func evaluate(action: String, resource: String, policies: [PolicyDocument]) -> PolicyDecision {
        evaluate(action: action, resources: [resource], policies: policies)
    }

    /// The decision for `action` on a request that touches every one of `resources` (a send touches the
    /// tenant, its sender address and the sender's domain): a Deny that matches any of them wins, else an
    /// Allow that matches any of them allows.
    public static func evaluate(action: String, resources: [String], policies: [PolicyDocument]) -> PolicyDecision {
        var allowed = false
        for policy in policies {
            for statement in policy.statements {
                let actionMatches = statement.actions.contains { Glob.matches(pattern: $0, value: action, caseInsensitive: true) }
                guard actionMatches, statement.resources.contains(where: { pattern in
                    resources.contains { Glob.matches(pattern: pattern, value: $0, caseInsensitive: true) }
                }) else { continue }
                if statement.effect == .deny { return .explicitDeny }
                allowed = true
            }
        }
        return allowed ? .allow : .implicitDeny
    }
}

/// `*` / `?` wildcard matching, iterative with single backtrack point: linear-ish, no blow-up on `a*a*a*b`.
public enum Glob {
    /// Whether `value` matches `pattern`.
    public static func matches(pattern: String, value: String, caseInsensitive: Bool) -> Bool {
        let p = Array((caseInsensitive ? pattern.lowercased() : pattern).unicodeScalars)
        let v = Array((caseInsensitive ? value.lowercased() : value).unicodeScalars)
        var pi = 0, vi = 0
        var star = -1, mark = 0
        while vi < v.count {
            if pi < p.count && (p[pi] == "?" || p[pi] == v[vi]) {
                pi += 1; vi += 1
            } else if pi < p.count && p[pi] == "*" {
                star = pi; mark = vi; pi += 1
            } else if star >= 0 {
                pi = star + 1; mark += 1; vi = mark
            } else {
                return false
            }
        }
        while pi < p.count && p[pi] == "*" { pi += 1 }
        return pi == p.count
    }
}

/// The built-in policies every tenant has.
public enum BuiltinPolicy: String, CaseIterable, Sendable {
    /// Everything in Direct Mail.
    case fullAccess = "FullAccess"
    /// Read-only calls: Get*, List*, Query*, Desc*.
    case readOnlyAccess = "ReadOnlyAccess"

    /// The policy's document.
    public var document: PolicyDocument {
        switch self {
        case .fullAccess:
            return PolicyDocument(version: "1", statements: [PolicyStatement(effect: .allow, actions: ["dm:*"], resources: ["*"])])
        case .readOnlyAccess:
            return PolicyDocument(version: "1", statements: [PolicyStatement(effect: .allow, actions: ["dm:Get*", "dm:List*", "dm:Query*", "dm:Desc*"], resources: ["*"])])
        }
    }

    /// Human description.
    public var description: String {
        switch self {
        case .fullAccess: return "Full access to every Direct Mail action of the tenant."
        case .readOnlyAccess: return "Read-only access: Get*, List*, Query* and Desc* actions."
        }
    }
}

/// Builds resource names in the `acs:dm:*:<tenant>:<kind>/<name>` form, always from canonical values, so
/// that the same object has one resource name however a request spells it (REST path, Direct Mail
/// compatibility parameter, audit log).
public enum ResourceName {
    /// One object of a tenant; `name` is made canonical (``canonicalName(kind:_:)``).
    public static func tenantResource(tenantID: String, kind: String, name: String) -> String {
        "acs:dm:*:\(tenantID.lowercased()):\(kind)/\(canonicalName(kind: kind, name))"
    }

    /// Every object of a tenant.
    public static func tenantWildcard(tenantID: String) -> String {
        "acs:dm:*:\(tenantID.lowercased()):*"
    }

    /// The one spelling of an object's name in a resource: an id as the lower-case UUID Herald stores
    /// (whatever case or form the caller wrote it in), an address or domain name case-folded, a policy name
    /// as it is (policy names are the only case-sensitive names). Wildcard characters are replaced, so a
    /// name cannot widen its own resource.
    public static func canonicalName(kind: String, _ name: some StringProtocol) -> String {
        let text = String(name)
        let folded: String
        if let id = UUID(uuidString: text) {
            folded = id.lowercasedString
        } else {
            folded = kind == "policy" ? text : text.lowercased()
        }
        return folded.replacingOccurrences(of: "*", with: "_").replacingOccurrences(of: "?", with: "_")
    }

    /// Fills an operation's `x-dm-resource` template (`acs:dm:*:{tenantId}:user/{id}`): `{tenantId}` becomes
    /// the caller's tenant and every other `{name}` the path parameter of that name (`*` when absent).
    /// Parameters arrive as written in the path: they are percent-decoded (as the handler decodes them) and
    /// made canonical for the kind before the placeholder, so `/v1/domains/<ID>` and `/v1/domains/%36…` name
    /// the same resource as `/v1/domains/<id>`.
    public static func expand(template: String, tenantID: String, parameters: [String: Substring]) -> String {
        var result = ""
        var rest = template[...]
        while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
            result += rest[..<open]
            let name = String(rest[rest.index(after: open)..<close])
            if name == "tenantId" {
                result += tenantID.lowercased()
            } else if let value = parameters[name] {
                result += canonicalName(kind: kind(before: result), String(value).removingPercentEncoding ?? String(value))
            } else {
                result += "*"
            }
            rest = rest[rest.index(after: close)...]
        }
        return result + rest
    }

    /// The kind a placeholder names: what is between the last `:` and the `/` before it (`user` in `…:user/`).
    private static func kind(before placeholder: String) -> String {
        guard placeholder.hasSuffix("/") else { return "" }
        let path = placeholder.dropLast()
        return String(path[(path.lastIndex(of: ":").map(path.index(after:)) ?? path.startIndex)...])
    }
}

/// Only the root user manages the root user: a sub-user, whatever its policies allow, may not create, list
/// or delete the root user's AccessKeys, attach or detach its policies, or change or delete it, because
/// the root user is allowed everything and a key of its own would escape every Deny.
public enum RootUserRule {
    /// The refusal a sub-user gets for acting on the root user.
    public static let refusal = HeraldError(code: "Forbidden.RootUser", kind: .forbidden,
                                            message: "Only the root user can manage the root user, its AccessKeys and its policies.")

    /// Throws ``refusal`` when a caller that is not root acts on the root user.
    public static func check(callerIsRoot: Bool, targetIsRoot: Bool) throws(HeraldError) {
        if targetIsRoot && !callerIsRoot { throw refusal }
    }
}

extension Principal {
    /// The RAM decision for a send (`dm:SingleSendMail`, `dm:BatchSendMail`): the action on the tenant, on the
    /// sender address (`sender/<id>`) and on its domain (`domain/<id>`); a Deny on either refuses it.
    /// `sender` is nil when the address is not one of the tenant's senders (the send is refused for that
    /// later, with its own code).
    public func authorizeSend(action: String, sender: (id: UUID, domainID: UUID)?) throws(HeraldError) {
        if isRoot { return }
        var resources = [tenantResource]
        if let sender {
            resources.append(resource("sender", sender.id.uuidString))
            resources.append(resource("domain", sender.domainID.uuidString))
        }
        guard PolicyEvaluator.evaluate(action: action, resources: resources, policies: policies) != .allow else { return }
        // Name the resource a Deny matched, so the tenant sees which of its statements refused the send.
        let denied = resources.first { PolicyEvaluator.evaluate(action: action, resource: $0, policies: policies) == .explicitDeny }
        throw .forbiddenRAM(action: action, resource: denied ?? tenantResource)
    }
}
