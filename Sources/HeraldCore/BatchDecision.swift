import Foundation

/// A batch send as the REST route (`POST /v1/mail/batch`) and BatchSendMail give it, past its template and list.
public struct BatchSendRequest: Sendable, Equatable {
    /// A batch sender address of the account.
    public var from: String
    public var tag: String?
    public var scheduledAt: Date?
    /// The Reply-To asked for (Direct Mail's `ReplyAddress`): it must be the sender's confirmed reply-to; nil:
    /// the sender's confirmed one when it has one.
    public var replyTo: String?
    /// The Reply-To's display name (`ReplyAddressAlias`).
    public var replyToName: String?
    /// Open and click tracking (`ClickTrace`); nil: the tenant's setting.
    public var tracking: Bool?

    public init(from: String, tag: String? = nil, scheduledAt: Date? = nil, replyTo: String? = nil, replyToName: String? = nil, tracking: Bool? = nil) {
        self.from = from
        self.tag = tag
        self.scheduledAt = scheduledAt
        self.replyTo = replyTo
        self.replyToName = replyToName
        self.tracking = tracking
    }
}

/// What the submission of a batch send knows, read in one statement of its transaction.
public struct BatchSubmitFacts: Sendable, Equatable {
    /// The template's review status, kind and content, as the task keeps it.
    public struct Template: Sendable, Equatable {
        public var status: MailTemplate.Status
        public var kind: MailKind
        public var subject: String
        public var html: String?
        public var text: String?

        public init(status: MailTemplate.Status, kind: MailKind, subject: String, html: String?, text: String?) {
            self.status = status
            self.kind = kind
            self.subject = subject
            self.html = html
            self.text = text
        }
    }

    public var tenant: AcceptTenantFacts?
    public var sender: AcceptSenderFacts?
    public var template: Template?
    /// The list's member count, or nil when there is no such list.
    public var listMembers: Int?
    /// Whether the task's tag exists (true when it has none).
    public var tagKnown: Bool

    public init(tenant: AcceptTenantFacts?, sender: AcceptSenderFacts?, template: Template?, listMembers: Int?, tagKnown: Bool) {
        self.tenant = tenant
        self.sender = sender
        self.template = template
        self.listMembers = listMembers
        self.tagKnown = tagKnown
    }
}

/// The rules of batch sends (SPEC §3, §5): what a submission must satisfy, the quota it reserves, and how its
/// expansion shares out suppressions and the quota beyond the reservation. Pure: ``BatchStore`` reads the
/// facts and writes what these decide.
public enum BatchDecision {
    /// What an accepted submission writes: its sender, member count (reserved whole) and content.
    public struct Submission: Sendable, Equatable {
        public var senderID: UUID
        public var members: Int
        public var template: BatchSubmitFacts.Template
        /// The Reply-To its messages carry, as a message stores it, or nil.
        public var replyTo: String?
    }

    /// The checks of a submission, in order: the account may send; the sender exists, is of the batch type and
    /// on a verified domain; the template exists, is approved and is a batch template; the list exists and is
    /// not empty; the tag exists; the Reply-To asked for is the sender's confirmed one (``ReplyToRule``).
    public static func check(from: MailAddress, tag: String?, replyTo: ReplyToRequest = .senderDefault, replyToName: String? = nil,
                             facts: BatchSubmitFacts) throws(HeraldError) -> Submission {
        if let refusal = AcceptDecision.tenantRefusal(facts.tenant) { throw refusal }
        guard let sender = facts.sender else { throw .senderNotFound(from) }
        guard sender.kind == .batch else {
            throw HeraldError(code: "Sender.WrongType", kind: .invalid, message: "Batch mail needs a sender of type batch; \(from) is a trigger sender.",
                              field: "from")
        }
        guard sender.domainStatus == .verified else { throw .domainNotVerified(from) }
        guard let template = facts.template else {
            throw HeraldError(code: "InvalidTemplate.NotFound", kind: .invalid, message: "No such template.", field: "templateId")
        }
        guard template.status == .approved else {
            throw HeraldError(code: "Template.NotApproved", kind: .conflict, message: "The template is \(template.status); only approved templates can be sent.",
                              field: "templateId")
        }
        guard template.kind == .batch else {
            throw HeraldError(code: "Template.WrongType", kind: .invalid, message: "Batch mail needs a batch template (with ${unsubscribe}).", field: "templateId")
        }
        guard let members = facts.listMembers else {
            throw HeraldError(code: "NotFound", kind: .notFound, message: "The recipient list was not found.", field: "listId")
        }
        guard members > 0 else { throw .validation("The recipient list is empty.", field: "listId") }
        if let tag, !facts.tagKnown { throw .unknownTag(tag) }
        let reply = try ReplyToRule.resolve(replyTo, name: replyToName, senderReplyTo: sender.replyTo, status: sender.replyToStatus)
        return Submission(senderID: sender.id, members: members, template: template, replyTo: reply)
    }

    /// The whole list reserved from the quota at submission: the send is refused whole rather than cut short later.
    public static func reserve(_ submission: Submission, quota: inout QuotaAllocation) throws(HeraldError) {
        if let refusal = quota.admit(submission.members) { throw .quotaExceeded(refusal, count: submission.members) }
    }

    /// The reason each member of a chunk is dropped (suppressed in the task's scopes, unsubscribed, invalid), by address.
    public static func drops(_ addresses: [String], listID: UUID, tag: String?, suppressions: [String: [DropRules.Suppression]],
                             invalid: Set<String>) -> [String: String] {
        var dropped: [String: String] = [:]
        for address in addresses {
            dropped[address] = DropRules.reason(kind: .batch, listID: listID, tag: tag, suppressions: suppressions[address] ?? [],
                                                invalid: invalid.contains(address))
        }
        return dropped
    }

    /// How many of a chunk's `sendable` members go beyond the task's reservation (the list grew since the
    /// submission): they need the day's quota.
    public static func beyondReservation(sendable: Int, queuedBefore: Int, reserved: Int) -> Int {
        max(0, queuedBefore + sendable - reserved)
    }

    /// The members beyond the reservation share what the day has left; the last ones that do not fit are
    /// dropped as `quota_exceeded`. Answers how many were granted and adds the drops.
    public static func admitBeyond(_ sendable: [String], beyond: Int, quota: inout QuotaAllocation, dropped: inout [String: String]) -> Int {
        let granted = quota.admitUpTo(beyond)
        for address in sendable.suffix(beyond - granted) { dropped[address] = "quota_exceeded" }
        return granted
    }

    /// The part of a finished task's reservation no message took, given back to the day it was taken from —
    /// only when that is still today (an earlier day's usage is history).
    public static func unusedReservation(done: Bool, reserved: Int, queued: Int, submittedDay: String, today: String) -> Int {
        done && reserved > queued && submittedDay == today ? reserved - queued : 0
    }
}
