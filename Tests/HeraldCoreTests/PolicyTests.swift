import Foundation
import Testing
@testable import HeraldCore

@Suite struct PolicyEvaluatorTests {
    static func doc(_ statements: [(PolicyEffect, [String], [String])]) -> PolicyDocument {
        PolicyDocument(statements: statements.map { PolicyStatement(effect: $0.0, actions: $0.1, resources: $0.2) })
    }
    static let tenant = "acs:dm:*:t1:"

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var policies: [PolicyDocument]
        var action: String
        var resource: String
        var expected: PolicyDecision
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "no policies", policies: [], action: "dm:GetUser", resource: "*", expected: .implicitDeny),
        Case(name: "exact allow", policies: [doc([(.allow, ["dm:GetUser"], ["*"])])], action: "dm:GetUser", resource: tenant + "user/1", expected: .allow),
        Case(name: "other action", policies: [doc([(.allow, ["dm:GetUser"], ["*"])])], action: "dm:DeleteUser", resource: "*", expected: .implicitDeny),
        Case(name: "deny wins in same policy", policies: [doc([(.allow, ["dm:*"], ["*"]), (.deny, ["dm:Delete*"], ["*"])])],
             action: "dm:DeleteUser", resource: tenant + "user/1", expected: .explicitDeny),
        Case(name: "deny wins across policies", policies: [doc([(.deny, ["dm:CreateUser"], ["*"])]), doc([(.allow, ["*"], ["*"])])],
             action: "dm:CreateUser", resource: "x", expected: .explicitDeny),
        Case(name: "deny on other resource does not apply", policies: [doc([(.allow, ["dm:*"], ["*"]), (.deny, ["dm:*"], [tenant + "domain/secret.example"])])],
             action: "dm:GetDomain", resource: tenant + "domain/open.example", expected: .allow),
        Case(name: "question mark one char", policies: [doc([(.allow, ["dm:Get?ser"], ["*"])])], action: "dm:GetUser", resource: "*", expected: .allow),
        Case(name: "question mark not zero chars", policies: [doc([(.allow, ["dm:GetU?ser"], ["*"])])], action: "dm:GetUser", resource: "*", expected: .implicitDeny),
        Case(name: "actions case-insensitive", policies: [doc([(.allow, ["DM:getuser"], ["*"])])], action: "dm:GetUser", resource: "*", expected: .allow),
        // Every name in a resource is case-insensitive (ids, addresses, domain names), so patterns match without case:
        // a Deny written with an upper-case id, as Swift's UUID().uuidString prints it, must still hold.
        Case(name: "resources case-insensitive", policies: [doc([(.allow, ["dm:*"], [tenant + "domain/A.example"])])], action: "dm:GetDomain",
             resource: tenant + "domain/a.example", expected: .allow),
        Case(name: "upper-case deny matches the canonical id",
             policies: [doc([(.allow, ["dm:*"], ["*"]), (.deny, ["dm:*"], [tenant + "domain/0192F0C4-0000-7000-8000-0000000000AB"])])],
             action: "dm:DeleteDomain", resource: tenant + "domain/0192f0c4-0000-7000-8000-0000000000ab", expected: .explicitDeny),
        Case(name: "resource wildcard spans separators", policies: [doc([(.allow, ["dm:*"], ["acs:dm:*:t1:*"])])], action: "dm:GetDomain",
             resource: tenant + "domain/x/y", expected: .allow),
        Case(name: "resource of another tenant", policies: [doc([(.allow, ["dm:*"], ["acs:dm:*:t1:*"])])], action: "dm:GetDomain",
             resource: "acs:dm:*:t2:domain/x", expected: .implicitDeny),
        Case(name: "ReadOnly lists", policies: [BuiltinPolicy.readOnlyAccess.document], action: "dm:ListUsers", resource: "*", expected: .allow),
        Case(name: "ReadOnly describes", policies: [BuiltinPolicy.readOnlyAccess.document], action: "dm:DescDomain", resource: "*", expected: .allow),
        Case(name: "ReadOnly queries", policies: [BuiltinPolicy.readOnlyAccess.document], action: "dm:QueryTaskByParam", resource: "*", expected: .allow),
        Case(name: "ReadOnly cannot create", policies: [BuiltinPolicy.readOnlyAccess.document], action: "dm:CreateUser", resource: "*", expected: .implicitDeny),
        Case(name: "ReadOnly cannot send", policies: [BuiltinPolicy.readOnlyAccess.document], action: "dm:SingleSendMail", resource: "*", expected: .implicitDeny),
        Case(name: "FullAccess sends", policies: [BuiltinPolicy.fullAccess.document], action: "dm:SingleSendMail", resource: tenant + "x", expected: .allow),
        Case(name: "FullAccess not other services", policies: [BuiltinPolicy.fullAccess.document], action: "ecs:RunInstances", resource: "*", expected: .implicitDeny),
    ]

    @Test(arguments: cases)
    func evaluates(_ c: Case) {
        #expect(PolicyEvaluator.evaluate(action: c.action, resource: c.resource, policies: c.policies) == c.expected)
    }

    @Test func pathologicalGlobTerminates() {
        let pattern = String(repeating: "a*", count: 60) + "b"
        let value = String(repeating: "a", count: 5000)
        #expect(!Glob.matches(pattern: pattern, value: value, caseInsensitive: false))
        #expect(Glob.matches(pattern: "*", value: "", caseInsensitive: false))
        #expect(Glob.matches(pattern: "a*b*c", value: "axxbyyc", caseInsensitive: false))
        #expect(!Glob.matches(pattern: "a*b*c", value: "axxbyy", caseInsensitive: false))
    }

    @Test func rootPrincipalIsAllowedEverything() throws {
        let root = Principal(tenantID: UUID(), tenantStatus: .active, userID: UUID(), isRoot: true, accessKeyID: "k", policies: [])
        try root.authorize(action: "dm:DeleteUser", resource: "*")
        let user = Principal(tenantID: UUID(), tenantStatus: .active, userID: UUID(), isRoot: false, accessKeyID: "k", policies: [])
        #expect(throws: HeraldError.forbiddenRAM(action: "dm:DeleteUser", resource: "*")) { try user.authorize(action: "dm:DeleteUser", resource: "*") }
    }
}

@Suite struct PolicyDocumentTests {
    @Test func decodesStringOrArrayAndReencodesArrays() throws {
        let json = #"{"Version":"1","Statement":[{"Effect":"Allow","Action":"dm:Get*","Resource":["*"]}]}"#
        let document = try PolicyDocument.parse(Array(json.utf8))
        #expect(document.statements[0].actions == ["dm:Get*"])
        let encoded = String(decoding: try JSONEncoder().encode(document), as: UTF8.self)
        #expect(encoded.contains(#""Action":["dm:Get*"]"#))
        #expect(encoded.contains(#""Version":"1""#))
    }

    struct Bad: Sendable, CustomTestStringConvertible {
        var json: String
        var field: String
        var testDescription: String { field }
    }

    static let bad: [Bad] = [
        Bad(json: #"{"Statement":[]}"#, field: "document.Statement"),
        Bad(json: #"{"Statement":[{"Effect":"Allow","Action":[],"Resource":"*"}]}"#, field: "document.Statement[0].Action"),
        Bad(json: #"{"Statement":[{"Effect":"Allow","Action":"dm:*","Resource":[]}]}"#, field: "document.Statement[0].Resource"),
        Bad(json: #"{"Statement":[{"Effect":"Allow","Action":["dm:Get*","ecs:Run"],"Resource":"*"}]}"#, field: "document.Statement[0].Action[1]"),
        Bad(json: #"{"Statement":[{"Effect":"Allow","Action":"dm:Get-User","Resource":"*"}]}"#, field: "document.Statement[0].Action[0]"),
        Bad(json: #"{"Statement":[{"Effect":"Allow","Action":"dm:*","Resource":"arn:aws:s3:::x"}]}"#, field: "document.Statement[0].Resource[0]"),
    ]

    @Test(arguments: bad)
    func rejectsWithFieldPath(_ bad: Bad) {
        do {
            _ = try PolicyDocument.parse(Array(bad.json.utf8))
            Issue.record("accepted \(bad.json)")
        } catch {
            #expect(error.code == "Validation.Failed")
            #expect(error.field == bad.field)
        }
    }

    @Test func rejectsUnknownEffectTooManyStatementsAndOversize() {
        #expect(throws: HeraldError.self) { try PolicyDocument.parse(Array(#"{"Statement":[{"Effect":"Maybe","Action":"dm:*","Resource":"*"}]}"#.utf8)) }
        let many = PolicyDocument(statements: Array(repeating: PolicyStatement(effect: .allow, actions: ["dm:A"], resources: ["*"]), count: 101))
        #expect(throws: HeraldError.self) { try many.validate() }
        let huge = PolicyDocument(statements: [PolicyStatement(effect: .allow, actions: (0..<600).map { "dm:Action\($0)" }, resources: ["*"])])
        #expect(throws: HeraldError.self) { try huge.validate() }
    }

    @Test func resourceTemplatesExpandWithTheCallersTenantAndPathParameters() {
        let tenant = "0192f0c4-0000-7000-8000-000000000001"
        #expect(ResourceName.expand(template: "acs:dm:*:{tenantId}:*", tenantID: tenant, parameters: [:]) == "acs:dm:*:\(tenant):*")
        #expect(ResourceName.expand(template: "acs:dm:*:{tenantId}:user/{id}", tenantID: tenant, parameters: ["id": "abc"])
                == "acs:dm:*:\(tenant):user/abc")
        #expect(ResourceName.expand(template: "acs:dm:*:{tenantId}:policy/{policyName}", tenantID: tenant, parameters: [:])
                == "acs:dm:*:\(tenant):policy/*")
        // A parameter cannot smuggle wildcards into its own resource name.
        #expect(ResourceName.expand(template: "acs:dm:*:{tenantId}:policy/{policyName}", tenantID: tenant, parameters: ["policyName": "a*?"])
                == "acs:dm:*:\(tenant):policy/a__")
        // Nor by percent-encoding them.
        #expect(ResourceName.expand(template: "acs:dm:*:{tenantId}:policy/{policyName}", tenantID: tenant, parameters: ["policyName": "a%2A"])
                == "acs:dm:*:\(tenant):policy/a_")
    }

    /// A path parameter names its object canonically however it is written: an id in upper case or
    /// percent-encoded is the stored lower-case id; a policy name keeps its case (the only case-sensitive name).
    @Test func resourceNamesAreBuiltFromCanonicalValues() {
        let tenant = "0192f0c4-0000-7000-8000-000000000001"
        let id = "0192f0c4-0000-7000-8000-0000000000ab"
        let expected = "acs:dm:*:\(tenant):domain/\(id)"
        for written in [id, id.uppercased(), "%30" + id.dropFirst(), "0192F0C4-0000-7000-8000-0000000000aB", "%30" + id.uppercased().dropFirst()] {
            #expect(ResourceName.expand(template: "acs:dm:*:{tenantId}:domain/{id}", tenantID: tenant, parameters: ["id": Substring(written)])
                    == expected, "\(written)")
        }
        #expect(ResourceName.expand(template: "acs:dm:*:{tenantId}:domain/{id}", tenantID: tenant.uppercased(), parameters: ["id": Substring(id)])
                == expected)
        // The Direct Mail compatibility endpoint and the stores name objects through the same function.
        #expect(ResourceName.tenantResource(tenantID: tenant, kind: "domain", name: id.uppercased()) == expected)
        #expect(ResourceName.canonicalName(kind: "sender", "News@Mail.Example.TEST") == "news@mail.example.test")
        #expect(ResourceName.canonicalName(kind: "policy", "NoDeletes") == "NoDeletes")
        #expect(ResourceName.expand(template: "acs:dm:*:{tenantId}:policy/{policyName}", tenantID: tenant, parameters: ["policyName": "No%44eletes"])
                == "acs:dm:*:\(tenant):policy/NoDeletes")
    }

    /// A send touches the tenant, its sender and the sender's domain: a Deny on any of them refuses it.
    @Test func sendsAreCheckedAgainstSenderAndDomain() throws {
        let tenantID = UUID(), senderID = UUID(), domainID = UUID(), otherID = UUID()
        let t = tenantID.uuidString.lowercased()
        func principal(_ statements: [(PolicyEffect, [String], [String])], root: Bool = false) -> Principal {
            Principal(tenantID: tenantID, tenantStatus: .active, userID: UUID(), isRoot: root, accessKeyID: "LTAI", policies: [PolicyEvaluatorTests.doc(statements)])
        }
        let allowAll: (PolicyEffect, [String], [String]) = (.allow, ["dm:*"], ["*"])
        let sender = (id: senderID, domainID: domainID)
        try principal([allowAll]).authorizeSend(action: "dm:SingleSendMail", sender: sender)
        let senderResource = "acs:dm:*:\(t):sender/\(senderID.uuidString.lowercased())"
        let domainResource = "acs:dm:*:\(t):domain/\(domainID.uuidString.lowercased())"
        for (denied, named) in [("acs:dm:*:\(t):sender/\(senderID.uuidString)", senderResource), (domainResource, domainResource),
                                ("acs:dm:*:\(t):domain/*", domainResource)] {
            let user = principal([allowAll, (.deny, ["dm:*SendMail"], [denied])])
            #expect(throws: HeraldError.forbiddenRAM(action: "dm:BatchSendMail", resource: named)) {
                try user.authorizeSend(action: "dm:BatchSendMail", sender: sender)
            }
            // The root user is allowed everything.
            try principal([(.deny, ["*"], ["*"])], root: true).authorizeSend(action: "dm:BatchSendMail", sender: sender)
        }
        // A Deny on another sender or domain does not apply; an unknown sender is checked on the tenant only.
        try principal([allowAll, (.deny, ["dm:*"], ["acs:dm:*:\(t):sender/\(otherID)", "acs:dm:*:\(t):domain/\(otherID)"])])
            .authorizeSend(action: "dm:SingleSendMail", sender: sender)
        try principal([allowAll, (.deny, ["dm:*"], ["acs:dm:*:\(t):sender/*"])]).authorizeSend(action: "dm:SingleSendMail", sender: nil)
        #expect(throws: HeraldError.self) { try principal([]).authorizeSend(action: "dm:SingleSendMail", sender: sender) }
    }

    @Test func onlyTheRootUserActsOnTheRootUser() throws {
        try RootUserRule.check(callerIsRoot: true, targetIsRoot: true)
        try RootUserRule.check(callerIsRoot: false, targetIsRoot: false)
        try RootUserRule.check(callerIsRoot: true, targetIsRoot: false)
        #expect(throws: RootUserRule.refusal) { try RootUserRule.check(callerIsRoot: false, targetIsRoot: true) }
        #expect(RootUserRule.refusal.kind == .forbidden && RootUserRule.refusal.code == "Forbidden.RootUser")
    }

    /// Reply-to confirmations: at most the allowance per sender and per tenant in a sliding hour; Retry-After
    /// says when the oldest confirmation of the allowance leaves the window.
    @Test func replyToConfirmationLimit() throws {
        let limit = ReplyToConfirmationLimit(perSender: 2, perTenant: 3)
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        func ago(_ seconds: TimeInterval...) -> [Date] { seconds.map { now.addingTimeInterval(-$0) } }
        try limit.check(senderRecent: [], tenantRecent: [], now: now)
        try limit.check(senderRecent: ago(10), tenantRecent: ago(10, 20), now: now)
        // Older than the hour does not count.
        try limit.check(senderRecent: ago(10, 3600), tenantRecent: ago(10, 3600, 4000), now: now)
        func refusal(_ sender: [Date], _ tenant: [Date]) -> HeraldError? {
            do { try limit.check(senderRecent: sender, tenantRecent: tenant, now: now); return nil } catch { return error }
        }
        let bySender = try #require(refusal(ago(100, 600), ago(100, 600)))
        #expect(bySender.code == "Throttling.ReplyToConfirmation" && bySender.kind == .throttled)
        #expect(bySender.retryAfter == 3000, "the second newest (600 s ago) leaves the window in 3000 s")
        let byTenant = try #require(refusal(ago(5), ago(5, 50, 3599.5)))
        #expect(byTenant.retryAfter == 1)
        #expect(refusal([], [])?.retryAfter == nil)
        let closed = ReplyToConfirmationLimit(perSender: 0, perTenant: 5)
        #expect(throws: HeraldError.self) { try closed.check(senderRecent: [], tenantRecent: [], now: now) }
    }
}
