import Foundation
import HeraldCore
import HeraldStore

/// One send, as every way mail comes in builds it: REST (`POST /v1/mail/single`, `POST /v1/mail/batch`),
/// the Direct Mail compatibility endpoint (SingleSendMail, BatchSendMail) and SMTP submission.
public struct SendRequest: Sendable {
    /// Who sends, and from where.
    public enum Caller: Sendable {
        /// A signed-in principal (a bearer token or a compatibility-endpoint signature) on `client`.
        case principal(Principal, client: IPAddress?)
        /// An SMTP submission session of `tenantID`, logged in as a sender address, on `client`.
        case submission(tenantID: UUID, client: IPAddress?)

        var tenantID: UUID {
            switch self {
            case .principal(let principal, _): principal.tenantID
            case .submission(let tenantID, _): tenantID
            }
        }
    }

    /// Which batch send's template and recipient list.
    public enum TemplateReference: Sendable {
        /// By id, as the REST route names them (checked as ids).
        case ids(template: String, list: String)
        /// By name, as the Direct Mail API names them.
        case names(template: String, list: String)
    }

    /// What is sent.
    public enum Content: Sendable {
        /// A message from its parts (subject, html and/or text, headers…) to up to 100 recipients.
        case message(SingleSendRequest)
        /// A message as submitted over SMTP by the authenticated sender `from`, delivered as it is.
        case submission(from: String, to: [String], raw: [UInt8])
        /// A batch send: an approved template to every member of a list, as a task expanded later.
        case template(TemplateReference, BatchSendRequest)
    }

    public var caller: Caller
    public var content: Content
    /// The request's Idempotency-Key and body hash (REST single sends).
    public var idempotency: SendStore.Idempotency?
    /// Who the audit log names (batch sends).
    public var actor: AuditActor?

    public init(caller: Caller, content: Content, idempotency: SendStore.Idempotency? = nil, actor: AuditActor? = nil) {
        self.caller = caller
        self.content = content
        self.idempotency = idempotency
        self.actor = actor
    }
}

/// What a send was answered with.
public enum SendAnswer: Sendable {
    /// The messages of a single send, queued or dropped (`replayed`: the first answer of its Idempotency-Key).
    case messages(SendResult, replayed: Bool)
    /// The task of a batch send.
    case task(UUID)

    /// The messages of a single send (a batch send has none yet).
    public var result: SendResult? {
        if case .messages(let result, _) = self { result } else { nil }
    }
}

/// The one accept road (SPEC §3) for every way mail comes in, as a linear pipeline: the caller's gate
/// (account status, IP protection) → the request's own checks (pure, ``SendRules``) → the RAM check of
/// the sender (sub-users) → the sender's rate → the accepting transaction (``AcceptBatcher``: the store's
/// reads, the pure ``AcceptDecision``, the writes, shared with concurrent requests) or, for a batch send,
/// the task's submission (``BatchStore/submit``).
public struct AcceptService: Sendable {
    let batcher: AcceptBatcher
    let senders: SenderStore
    let identity: IdentityStore
    /// Batch sends; nil where none are taken (SMTP submission).
    let batches: BatchStore?
    /// Sends per sender address; nil: not limited.
    let senderRate: SenderRateLimit?
    let now: @Sendable () -> Date
    /// Tenants' IP allowlists for SMTP sessions (which have no principal), kept while their changes are heard.
    public var ipAllowlists: TenantCache<TenantKey, IPAllowlist>?
    /// The sensitive words no sent message may contain; nil: none.
    public var contentRules: ContentRulesStore?

    public init(batcher: AcceptBatcher, senders: SenderStore, identity: IdentityStore, batches: BatchStore?, senderRate: SenderRateLimit?,
                now: @escaping @Sendable () -> Date) {
        self.batcher = batcher
        self.senders = senders
        self.identity = identity
        self.batches = batches
        self.senderRate = senderRate
        self.now = now
    }

    /// Accepts a send, or throws its refusal (``HeraldError``) with nothing written.
    public func accept(_ request: SendRequest) async throws -> SendAnswer {
        let tenantID = request.caller.tenantID
        try await gate(request.caller)
        switch request.content {
        case .message(let parts):
            let send = try SendRules.validate(parts)
            if let contentRules {
                try SensitiveWords.check([("subject", send.subject), ("html", send.html), ("text", send.text)], words: await contentRules.words())
            }
            return try await acceptMessage(send, request: request, action: "dm:SingleSendMail")
        case .submission(let from, let to, let raw):
            let send = try SendRules.validateSubmission(from: from, to: to, raw: raw)
            if let contentRules {
                // What a reader sees: the decoded Subject and text parts (a word hidden in base64 is found).
                try SensitiveWords.check([("message", MIMEText.texts(raw).joined(separator: "\n"))], words: await contentRules.words())
            }
            return try await acceptMessage(send, request: request, action: "dm:SingleSendMail")
        case .template(let reference, let batch):
            let from = batch.from
            guard let batches, let actor = request.actor else { throw HeraldError(code: "Internal", kind: .internal, message: "Batch sends are not taken here.") }
            var ids: (template: UUID, list: UUID)?
            if case .ids(let template, let list) = reference { ids = try Self.ids(template: template, list: list) }
            try await authorize(request.caller, action: "dm:BatchSendMail", from: from)
            try await senderRate?.check(tenantID: tenantID, sender: from)
            if case .names(let template, let list) = reference { ids = try await Self.resolve(batches, tenantID: tenantID, template: template, list: list) }
            guard let (templateID, listID) = ids else { throw HeraldError.notFound("template") }
            return .task(try await batches.submit(tenantID: tenantID, templateID: templateID, listID: listID, request: batch, now: now(), actor: actor))
        }
    }

    /// The checks of a message past its own: RAM, the sender's rate, the Idempotency-Key; then the accepting transaction.
    private func acceptMessage(_ send: ValidatedSend, request: SendRequest, action: String) async throws -> SendAnswer {
        let tenantID = request.caller.tenantID
        try await authorize(request.caller, action: action, from: send.from.description)
        try await senderRate?.check(tenantID: tenantID, sender: send.from.description)
        if let key = request.idempotency?.key {
            guard (1...128).contains(key.utf8.count), key.utf8.allSatisfy({ $0 > 32 && $0 < 127 }) else {
                throw HeraldError.validation("Idempotency-Key must be 1 to 128 printable ASCII characters.", field: "Idempotency-Key")
            }
        }
        let (result, replayed) = try await batcher.accept(.init(tenantID: tenantID, send: send, idempotency: request.idempotency, now: now()))
        return .messages(result, replayed: replayed)
    }

    /// The first checks of every send, in SPEC §3's order: account status (frozen is checked again in the
    /// accepting transaction), then the tenant's IP protection — read with the principal, or for an SMTP
    /// session (which has none) here.
    private func gate(_ caller: SendRequest.Caller) async throws {
        switch caller {
        case .principal(let principal, let client):
            if principal.tenantStatus == .frozen { throw HeraldError.accountFrozen }
            try IPProtectionGuard.check(client: client, allowlist: principal.ipAllowlist)
        case .submission(let tenantID, let client):
            let load = { [identity] () async throws -> IPAllowlist? in
                let protection = try await identity.ipProtection(tenantID: tenantID)
                return (try? IPAllowlist.parse(enabled: protection.enabled, entries: protection.allow)) ?? IPAllowlist(enabled: true, networks: [])
            }
            let allowlist = try await TenantCache.value(in: ipAllowlists, TenantKey(tenantID: tenantID), load: load)
            try IPProtectionGuard.check(client: client, allowlist: allowlist ?? IPAllowlist(enabled: true, networks: []))
        }
    }

    /// The RAM check of a send against its sender address and the sender's domain, beyond the tenant-wide
    /// check of the route: one read, for sub-users only (an SMTP session is its sender's own).
    private func authorize(_ caller: SendRequest.Caller, action: String, from address: String) async throws {
        guard case .principal(let principal, _) = caller, !principal.isRoot else { return }
        try principal.authorizeSend(action: action, sender: try await senders.resourceIDs(tenantID: principal.tenantID, address: address))
    }

    /// A batch send's template and list ids as the REST route gives them.
    static func ids(template: String, list: String) throws(HeraldError) -> (template: UUID, list: UUID) {
        guard let templateID = UUID(uuidString: template) else {
            throw HeraldError(code: "InvalidTemplate.NotFound", kind: .invalid, message: "No such template.", field: "templateId")
        }
        guard let listID = UUID(uuidString: list) else {
            throw HeraldError(code: "NotFound", kind: .notFound, message: "The recipient list was not found.", field: "listId")
        }
        return (templateID, listID)
    }

    /// A batch send's template and list by the names the Direct Mail API gives.
    static func resolve(_ batches: BatchStore, tenantID: UUID, template: String, list: String) async throws -> (template: UUID, list: UUID) {
        let (templateID, listID) = try await batches.resolve(tenantID: tenantID, template: template, list: list)
        guard let templateID else {
            throw HeraldError(code: "InvalidTemplate.NotFound", kind: .notFound, message: "The template \(template) was not found.", field: "TemplateName")
        }
        guard let listID else {
            throw HeraldError(code: "InvalidReceiver.NotExists", kind: .notFound, message: "The receivers list \(list) was not found.", field: "ReceiversName")
        }
        return (templateID, listID)
    }
}
