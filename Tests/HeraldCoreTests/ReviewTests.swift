import Foundation
import HeraldCore
import Testing

/// The state transitions of template review and domain verification, without PostgreSQL.
@Suite struct ReviewTests {
    @Test func anEditSendsSubmittedContentBackToReviewAndKeepsDraftsDrafts() {
        #expect(MailTemplate.statusAfterEdit(.approved, problems: []) == .pending)
        #expect(MailTemplate.statusAfterEdit(.pending, problems: []) == .pending)
        #expect(MailTemplate.statusAfterEdit(.approved, problems: ["sensitive word: casino"]) == .rejected)
        #expect(MailTemplate.statusAfterEdit(.rejected, problems: []) == .draft)
        #expect(MailTemplate.statusAfterEdit(.draft, problems: ["anything"]) == .draft)
    }

    @Test func aSubmissionIsCheckedOnceAndTheOperatorDecidesOnlyPendingTemplates() throws {
        #expect(MailTemplate.statusAfterSubmit(.draft, problems: []) == .pending)
        #expect(MailTemplate.statusAfterSubmit(.rejected, problems: ["no ${unsubscribe}"]) == .rejected)
        #expect(MailTemplate.statusAfterSubmit(.pending, problems: []) == nil)
        #expect(MailTemplate.statusAfterSubmit(.approved, problems: ["x"]) == nil)
        #expect(try MailTemplate.statusAfterReview(.pending, approve: true) == .approved)
        #expect(try MailTemplate.statusAfterReview(.pending, approve: false) == .rejected)
        for status in [MailTemplate.Status.draft, .approved, .rejected] {
            #expect(throws: HeraldError.self) { try MailTemplate.statusAfterReview(status, approve: true) }
        }
    }

    @Test func aDomainIsVerifiedByOwnershipSPFAndItsSigningKey() {
        func check(_ purpose: SendingDomain.Purpose, _ selector: String? = nil, ok: Bool = true) -> SendingDomain.Check {
            .init(purpose: purpose, host: "example.com", selector: selector, status: ok ? .ok : .missing, found: [])
        }
        let good = [check(.ownership), check(.spf), check(.dkim, "s1")]
        #expect(SendingDomain.verdict(good, current: .pending, activeSelector: "s1", pendingSelector: nil) == .init(status: .verified, activate: nil))
        // A record gone: failing once verified, still pending before.
        let noSPF = [check(.ownership), check(.spf, ok: false), check(.dkim, "s1")]
        #expect(SendingDomain.verdict(noSPF, current: .verified, activeSelector: "s1", pendingSelector: nil).status == .failing)
        #expect(SendingDomain.verdict(noSPF, current: .pending, activeSelector: "s1", pendingSelector: nil).status == .pending)
        // Rotation: the waiting key takes over once its record is published and the domain is usable…
        let rotated = good + [check(.dkim, "s2")]
        #expect(SendingDomain.verdict(rotated, current: .verified, activeSelector: "s1", pendingSelector: "s2").activate == "s2")
        #expect(SendingDomain.verdict(good + [check(.dkim, "s2", ok: false)], current: .verified, activeSelector: "s1", pendingSelector: "s2").activate == nil)
        #expect(SendingDomain.verdict(noSPF + [check(.dkim, "s2")], current: .verified, activeSelector: "s1", pendingSelector: "s2").activate == nil)
        // …or at once when there is no signing key.
        #expect(SendingDomain.verdict([check(.dkim, "s2")], current: .pending, activeSelector: nil, pendingSelector: "s2").activate == "s2")
    }
}
