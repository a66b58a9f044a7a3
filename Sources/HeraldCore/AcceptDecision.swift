import Foundation

/// What the accept decision knows of the sending tenant, read in the accepting transaction.
public struct AcceptTenantFacts: Sendable, Equatable {
    public var status: TenantStatus
    /// The credit grade (sets the daily quota).
    public var grade: Int
    /// Open and click tracking when a send does not say.
    public var trackByDefault: Bool
    /// Whether trigger mail carries the one-click unsubscribe fields too.
    public var triggerUnsubscribeLink: Bool
    /// The grade → daily quota table in force for the tenant (its own, or the installation's).
    public var quotas: QuotaTable
    /// The product limits in force for the tenant (the send limits among them).
    public var limits: ProductLimits

    public init(status: TenantStatus, grade: Int, trackByDefault: Bool, triggerUnsubscribeLink: Bool, quotas: QuotaTable = .standard,
                limits: ProductLimits = ProductLimits()) {
        self.status = status
        self.grade = grade
        self.trackByDefault = trackByDefault
        self.triggerUnsubscribeLink = triggerUnsubscribeLink
        self.quotas = quotas
        self.limits = limits
    }

    /// The daily quota of the tenant's grade.
    public var dailyQuota: Int { quotas.daily(grade: grade) }
}

/// What the accept decision knows of a sender address, read in the accepting transaction.
public struct AcceptSenderFacts: Sendable, Equatable {
    public var id: UUID
    /// The sender's type, which is the kind of mail it sends: a batch-type sender sends batch mail whatever
    /// path it uses.
    public var kind: MailKind
    public var replyTo: String?
    /// Whether the reply-to address is confirmed.
    public var replyToStatus: ReplyToStatus
    /// The status of the sender's domain.
    public var domainStatus: SendingDomain.Status

    public init(id: UUID, kind: MailKind, replyTo: String?, replyToStatus: ReplyToStatus, domainStatus: SendingDomain.Status) {
        self.id = id
        self.kind = kind
        self.replyTo = replyTo
        self.replyToStatus = replyToStatus
        self.domainStatus = domainStatus
    }
}

/// How an accepted send is written: one message per recipient, queued or dropped with its reason.
public struct AcceptPlan: Sendable, Equatable {
    public var senderID: UUID
    public var kind: MailKind
    /// The queue priority of the messages.
    public var priority: Int { kind.priority }
    /// The Reply-To the messages carry (the sender's confirmed one), or nil.
    public var replyTo: String?
    /// Open and click tracking links in the HTML part.
    public var tracking: Bool
    /// Whether the messages carry the one-click unsubscribe fields.
    public var unsubscribeLink: Bool
    /// The reason each dropped recipient is not sent to, by address.
    public var dropped: [String: String] = [:]
    /// Messages this send takes from the quota (the recipients not dropped).
    public var quotaNeeded: Int

    /// The reason `address` is dropped, or nil when a message to it is queued.
    public func dropReason(_ address: String) -> String? { dropped[address] }
}

/// The accept decision of SPEC §3 for the sends of one tenant and one quota day, as named pure steps that
/// the accepting transaction runs between its reads and its writes (``AcceptBatcher``): every path that
/// accepts mail (REST, the compatibility endpoint, SMTP submission) goes through these steps, and nothing
/// of it is decided in SQL.
///
/// 1. ``tenantRefusal(_:)``: a missing, frozen or banned account refuses every send.
/// 2. ``check(_:tenant:senders:knownTags:)``: the sender exists on a verified domain; its type sets the
///    kind of mail; the tag exists; the Reply-To rule; tracking and unsubscribe fields.
/// 3. ``drop(_:sends:suppressions:invalid:)``: suppressed and invalid recipients by the kind's rules.
/// 4. ``allocate(_:quota:)``: the day's and month's quota shared out in arrival order, whole or refused.
public enum AcceptDecision {
    /// One send's verdict: how it is written, or why it is refused (nothing written).
    public typealias Verdict = Result<AcceptPlan, HeraldError>

    /// Step 1: the refusal of every send of a tenant that is missing, frozen or banned, or nil.
    public static func tenantRefusal(_ tenant: AcceptTenantFacts?) -> HeraldError? {
        guard let tenant else { return .notFound("tenant") }
        switch tenant.status {
        case .banned: return .accountBanned
        case .frozen: return .accountFrozen
        case .active: return nil
        }
    }

    /// Step 2: each send's sender, tag and Reply-To checked; a plan with nothing dropped yet, or the refusal.
    public static func check(_ sends: [ValidatedSend], tenant: AcceptTenantFacts, senders: [String: AcceptSenderFacts],
                             knownTags: Set<String>) -> [Verdict] {
        sends.map { send in
            do throws(HeraldError) {
                guard let sender = senders[send.from.description] else { throw .senderNotFound(send.from) }
                guard sender.domainStatus == .verified else { throw .domainNotVerified(send.from) }
                if let tag = send.tag, !knownTags.contains(tag) { throw .unknownTag(tag) }
                try SendRules.checkLimits(send, limits: tenant.limits)
                let replyTo = try ReplyToRule.resolve(send.replyTo, name: send.replyToName, senderReplyTo: sender.replyTo, status: sender.replyToStatus)
                let kind = sender.kind
                // Batch mail always carries the one-click unsubscribe fields; trigger mail when the tenant asks.
                return .success(AcceptPlan(senderID: sender.id, kind: kind, replyTo: replyTo, tracking: send.tracking ?? tenant.trackByDefault,
                                           unsubscribeLink: kind == .batch || tenant.triggerUnsubscribeLink,
                                           quotaNeeded: send.recipients.count))
            } catch {
                return .failure(error)
            }
        }
    }

    /// The addresses whose suppressions and invalid-address listing step 3 may need, each once: every
    /// recipient of the sends, read with the other facts before step 2 (one statement instead of a read
    /// after it; step 3 looks only at the sends that passed step 2).
    public static func recipientsToLookUp(_ sends: [ValidatedSend]) -> [String] {
        var seen = Set<String>(), addresses: [String] = []
        for send in sends {
            for recipient in send.recipients where seen.insert(recipient.description).inserted { addresses.append(recipient.description) }
        }
        return addresses
    }

    /// Step 3: the suppressed and invalid recipients of each planned send dropped, by the rules of its kind
    /// of mail (``DropRules``); what is left is what the send needs of the quota.
    public static func drop(_ verdicts: inout [Verdict], sends: [ValidatedSend], suppressions: [String: [DropRules.Suppression]],
                            invalid: Set<String>) {
        for index in verdicts.indices {
            guard case .success(var plan) = verdicts[index] else { continue }
            let send = sends[index]
            for recipient in send.recipients {
                let address = recipient.description
                if let reason = DropRules.reason(kind: plan.kind, listID: nil, tag: send.tag, suppressions: suppressions[address] ?? [],
                                                 invalid: invalid.contains(address)) {
                    plan.dropped[address] = reason
                }
            }
            plan.quotaNeeded = send.recipients.count - plan.dropped.count
            verdicts[index] = .success(plan)
        }
    }

    /// Whether step 4 has anything to share out (so the quota row needs to be locked at all).
    public static func needsQuota(_ verdicts: [Verdict]) -> Bool {
        verdicts.contains { (try? $0.get())?.quotaNeeded ?? 0 > 0 }
    }

    /// Step 4: the quota shared out in arrival order; a send that does not fit whole is refused whole
    /// (`Quota.Exceeded`) and leaves its share to the ones after it.
    public static func allocate(_ verdicts: inout [Verdict], quota: inout QuotaAllocation) {
        for index in verdicts.indices {
            guard case .success(let plan) = verdicts[index], let refusal = quota.admit(plan.quotaNeeded) else { continue }
            verdicts[index] = .failure(.quotaExceeded(refusal, count: plan.quotaNeeded))
        }
    }

    /// How much of the quota the planned sends need in all (what a lease must have left for them).
    public static func quotaNeeded(_ verdicts: [Verdict]) -> Int {
        verdicts.reduce(0) { $0 + ((try? $1.get())?.quotaNeeded ?? 0) }
    }

    /// Steps 1–3: the verdicts before the quota is shared out.
    public static func plan(_ sends: [ValidatedSend], tenant: AcceptTenantFacts?, senders: [String: AcceptSenderFacts], knownTags: Set<String>,
                            suppressions: [String: [DropRules.Suppression]], invalid: Set<String>) -> [Verdict] {
        if let refusal = tenantRefusal(tenant) { return sends.map { _ in .failure(refusal) } }
        guard let tenant else { return sends.map { _ in .failure(.notFound("tenant")) } }
        var verdicts = check(sends, tenant: tenant, senders: senders, knownTags: knownTags)
        drop(&verdicts, sends: sends, suppressions: suppressions, invalid: invalid)
        return verdicts
    }

    /// All four steps at once, for facts read together (and for tests): the verdicts, and the quota after them.
    public static func decide(_ sends: [ValidatedSend], tenant: AcceptTenantFacts?, senders: [String: AcceptSenderFacts], knownTags: Set<String>,
                              suppressions: [String: [DropRules.Suppression]], invalid: Set<String>,
                              quota: QuotaAllocation) -> (verdicts: [Verdict], quota: QuotaAllocation) {
        var verdicts = plan(sends, tenant: tenant, senders: senders, knownTags: knownTags, suppressions: suppressions, invalid: invalid)
        var quota = quota
        allocate(&verdicts, quota: &quota)
        return (verdicts, quota)
    }
}
