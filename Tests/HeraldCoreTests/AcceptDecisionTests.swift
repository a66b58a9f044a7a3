import Foundation
import HeraldCore
import Testing

/// The accept decision of every send path, without PostgreSQL: facts in, verdicts and quota out.
@Suite struct AcceptDecisionTests {
    static let active = AcceptTenantFacts(status: .active, grade: 1, trackByDefault: true, triggerUnsubscribeLink: false)
    static let triggerID = UUID(), batchID = UUID()
    static let senders: [String: AcceptSenderFacts] = [
        "app@example.test": .init(id: triggerID, kind: .trigger, replyTo: "help@example.test", replyToStatus: .verified, domainStatus: .verified),
        "news@example.test": .init(id: batchID, kind: .batch, replyTo: nil, replyToStatus: .none, domainStatus: .verified),
        "old@gone.test": .init(id: UUID(), kind: .trigger, replyTo: nil, replyToStatus: .none, domainStatus: .pending),
    ]

    static func send(from: String = "app@example.test", to: [String] = ["ann@example.org"], tag: String? = nil, replyTo: String? = nil,
                     tracking: Bool? = nil) throws -> ValidatedSend {
        try SendRules.validate(SingleSendRequest(from: from, to: to, subject: "Hi", text: "Hello", replyTo: replyTo, tag: tag, tracking: tracking))
    }

    static func decide(_ sends: [ValidatedSend], tenant: AcceptTenantFacts? = active, tags: Set<String> = [],
                       suppressions: [String: [DropRules.Suppression]] = [:], invalid: Set<String> = [],
                       quota: QuotaAllocation = .init(daily: 200, usedToday: 0, usedEarlierThisMonth: 0)) -> (verdicts: [AcceptDecision.Verdict], quota: QuotaAllocation) {
        AcceptDecision.decide(sends, tenant: tenant, senders: senders, knownTags: tags, suppressions: suppressions, invalid: invalid, quota: quota)
    }

    static func code(_ verdict: AcceptDecision.Verdict) -> String? {
        if case .failure(let error) = verdict { error.code } else { nil }
    }

    @Test func aMissingFrozenOrBannedAccountRefusesEverySend() throws {
        let sends = [try Self.send(), try Self.send(to: ["ben@example.org"])]
        #expect(Self.decide(sends, tenant: nil).verdicts.map(Self.code) == ["NotFound", "NotFound"])
        var frozen = Self.active
        frozen.status = .frozen
        #expect(Self.decide(sends, tenant: frozen).verdicts.map(Self.code) == ["Account.Frozen", "Account.Frozen"])
        frozen.status = .banned
        let (verdicts, quota) = Self.decide(sends, tenant: frozen)
        #expect(verdicts.map(Self.code) == ["Account.Banned", "Account.Banned"])
        #expect(quota.usedToday == 0, "a refused send takes no quota")
    }

    @Test func senderTagAndReplyToAreCheckedPerSend() throws {
        let sends = [
            try Self.send(from: "nobody@example.test"),
            try Self.send(from: "old@gone.test"),
            try Self.send(tag: "invoices"),
            try Self.send(tag: "known"),
            try Self.send(replyTo: "other@example.test"),
            try Self.send(replyTo: "help@example.test"),
        ]
        let (verdicts, quota) = Self.decide(sends, tags: ["known"])
        #expect(verdicts.map(Self.code) == ["InvalidMailAddress.NotFound", "Domain.NotVerified", "Validation.Failed", nil,
                                            "InvalidReplyAddress.NotVerified", nil])
        #expect(quota.usedToday == 2, "only the two accepted sends count")
        let plan = try verdicts[5].get()
        #expect(plan.replyTo == "help@example.test" && plan.senderID == Self.triggerID)
        // With none asked for, the sender's confirmed Reply-To is used.
        #expect(try verdicts[3].get().replyTo == "help@example.test")
    }

    @Test func theSenderTypeSetsTheKindPriorityAndUnsubscribeFields() throws {
        let (verdicts, _) = Self.decide([try Self.send(), try Self.send(from: "news@example.test")])
        let trigger = try verdicts[0].get(), batch = try verdicts[1].get()
        #expect(trigger.kind == .trigger && trigger.priority == 0 && !trigger.unsubscribeLink)
        #expect(batch.kind == .batch && batch.priority == 1 && batch.unsubscribeLink && batch.senderID == Self.batchID)
        var tenant = Self.active
        tenant.triggerUnsubscribeLink = true
        #expect(try Self.decide([try Self.send()], tenant: tenant).verdicts[0].get().unsubscribeLink)
    }

    @Test func trackingFollowsTheSendOrElseTheTenant() throws {
        let (verdicts, _) = Self.decide([try Self.send(), try Self.send(tracking: false)])
        #expect(try verdicts[0].get().tracking && !(try verdicts[1].get().tracking))
        var tenant = Self.active
        tenant.trackByDefault = false
        #expect(!(try Self.decide([try Self.send()], tenant: tenant).verdicts[0].get().tracking))
    }

    @Test func suppressedAndInvalidRecipientsAreDroppedByTheKindsRules() throws {
        let suppressions: [String: [DropRules.Suppression]] = [
            "sup@example.org": [.init(scope: "*", source: "api")],
            "unsub@example.org": [.init(scope: "*", source: "unsubscribe")],
        ]
        let to = ["ann@example.org", "sup@example.org", "unsub@example.org", "bad@example.org"]
        let (verdicts, quota) = Self.decide([try Self.send(to: to), try Self.send(from: "news@example.test", to: to)],
                                            suppressions: suppressions, invalid: ["bad@example.org"])
        let trigger = try verdicts[0].get(), batch = try verdicts[1].get()
        // Trigger mail ignores an unsubscribe (it is transactional); batch mail honours it.
        #expect(trigger.dropped == ["sup@example.org": "suppressed", "bad@example.org": "invalid_address"])
        #expect(batch.dropped == ["sup@example.org": "suppressed", "unsub@example.org": "unsubscribed", "bad@example.org": "invalid_address"])
        #expect(trigger.quotaNeeded == 2 && batch.quotaNeeded == 1 && quota.usedToday == 3)
    }

    @Test func theQuotaIsSharedInArrivalOrderWholeOrRefused() throws {
        let ten = (0..<10).map { "r\($0)@example.org" }
        let sends = [try Self.send(to: ten), try Self.send(to: Array(ten.prefix(6))), try Self.send(to: Array(ten.prefix(5)))]
        let (verdicts, quota) = Self.decide(sends, quota: .init(daily: 200, usedToday: 185, usedEarlierThisMonth: 0))
        // 10 fit (195), 6 do not (201) and leave their share to the 5 after them (200).
        #expect(verdicts.map(Self.code) == [nil, "Quota.Exceeded", nil])
        #expect(quota.usedToday == 200)
        // A send with every recipient dropped needs no quota, and never locks it.
        var all = [try Self.send(to: ["sup@example.org"])]
        let suppressions: [String: [DropRules.Suppression]] = ["sup@example.org": [.init(scope: "*", source: "api")]]
        var steps = AcceptDecision.check(all, tenant: Self.active, senders: Self.senders, knownTags: [])
        #expect(AcceptDecision.recipientsToLookUp(all) == ["sup@example.org"])
        AcceptDecision.drop(&steps, sends: all, suppressions: suppressions, invalid: [])
        #expect(!AcceptDecision.needsQuota(steps))
        all.append(try Self.send())
        #expect(Self.decide(all, suppressions: suppressions, quota: .init(daily: 200, usedToday: 200, usedEarlierThisMonth: 0)).verdicts
                    .map(Self.code) == [nil, "Quota.Exceeded"])
    }

    /// Every recipient is looked up once, with the other facts; the drop step then looks only at the sends
    /// that passed the check.
    @Test func everyRecipientIsLookedUpOnceAndOnlyCheckedSendsAreDropped() throws {
        let sends = [try Self.send(from: "nobody@example.test", to: ["a@example.org"]), try Self.send(to: ["b@example.org", "a@example.org"])]
        #expect(AcceptDecision.recipientsToLookUp(sends) == ["a@example.org", "b@example.org"])
        var verdicts = AcceptDecision.check(sends, tenant: Self.active, senders: Self.senders, knownTags: [])
        AcceptDecision.drop(&verdicts, sends: sends, suppressions: ["a@example.org": [.init(scope: "*", source: "api")]], invalid: [])
        #expect(verdicts.map(Self.code) == ["InvalidMailAddress.NotFound", nil])
        #expect(try verdicts[1].get().dropped == ["a@example.org": "suppressed"])
    }

    @Test func aBatchSubmissionIsCheckedInOrderAndReservesTheWholeList() throws {
        let from = try MailAddress("news@example.test")
        let approved = BatchSubmitFacts.Template(status: .approved, kind: .batch, subject: "S", html: "<p>${unsubscribe}</p>", text: nil)
        let good = BatchSubmitFacts(tenant: Self.active, sender: Self.senders["news@example.test"], template: approved, listMembers: 150, tagKnown: true)
        func code(_ facts: BatchSubmitFacts, tag: String? = nil) -> String? {
            do { _ = try BatchDecision.check(from: from, tag: tag, facts: facts); return nil } catch { return error.code }
        }
        #expect(code(good) == nil)
        var facts = good
        facts.tenant?.status = .frozen
        #expect(code(facts) == "Account.Frozen")
        facts = good
        facts.sender = Self.senders["app@example.test"]
        #expect(code(facts) == "Sender.WrongType")
        facts = good
        facts.sender = nil
        #expect(code(facts) == "InvalidMailAddress.NotFound")
        facts = good
        facts.template?.status = .pending
        #expect(code(facts) == "Template.NotApproved")
        facts = good
        facts.template?.kind = .trigger
        #expect(code(facts) == "Template.WrongType")
        facts = good
        facts.listMembers = nil
        #expect(code(facts) == "NotFound")
        facts.listMembers = 0
        #expect(code(facts) == "Validation.Failed")
        facts = good
        facts.tagKnown = false
        #expect(code(facts, tag: "promo") == "Validation.Failed" && code(facts) == nil)
        let submission = try BatchDecision.check(from: from, tag: nil, facts: good)
        var quota = QuotaAllocation(daily: 200, usedToday: 60, usedEarlierThisMonth: 0)
        do {
            try BatchDecision.reserve(submission, quota: &quota)
            Issue.record("150 fitted into the 140 left")
        } catch {
            #expect(error.code == "Quota.Exceeded")
        }
        #expect(quota.usedToday == 60, "refused whole")
        quota = QuotaAllocation(daily: 200, usedToday: 50, usedEarlierThisMonth: 0)
        try BatchDecision.reserve(submission, quota: &quota)
        #expect(quota.usedToday == 200)
    }

    @Test func anExpansionDropsInTheTasksScopesAndSharesTheQuotaBeyondTheReservation() {
        let listID = UUID()
        let suppressions: [String: [DropRules.Suppression]] = [
            "a@example.org": [.init(scope: "list:" + listID.uuidString.lowercased(), source: "unsubscribe")],
            "b@example.org": [.init(scope: "tag:other", source: "api")],
        ]
        var dropped = BatchDecision.drops(["a@example.org", "b@example.org", "c@example.org", "d@example.org"], listID: listID, tag: "promo",
                                          suppressions: suppressions, invalid: ["c@example.org"])
        #expect(dropped == ["a@example.org": "unsubscribed", "c@example.org": "invalid_address"])
        #expect(BatchDecision.beyondReservation(sendable: 10, queuedBefore: 95, reserved: 100) == 5)
        #expect(BatchDecision.beyondReservation(sendable: 3, queuedBefore: 95, reserved: 100) == 0)
        var quota = QuotaAllocation(daily: 200, usedToday: 198, usedEarlierThisMonth: 0)
        let granted = BatchDecision.admitBeyond(["b@example.org", "d@example.org", "e@example.org"], beyond: 3, quota: &quota, dropped: &dropped)
        #expect(granted == 2 && dropped["e@example.org"] == "quota_exceeded" && dropped["d@example.org"] == nil)
        #expect(BatchDecision.unusedReservation(done: true, reserved: 100, queued: 90, submittedDay: "2026-12-06", today: "2026-12-06") == 10)
        #expect(BatchDecision.unusedReservation(done: true, reserved: 100, queued: 90, submittedDay: "2026-12-05", today: "2026-12-06") == 0)
        #expect(BatchDecision.unusedReservation(done: false, reserved: 100, queued: 90, submittedDay: "2026-12-06", today: "2026-12-06") == 0)
    }
}
