import Foundation

/// The review of a template (SPEC §2) as transitions of ``MailTemplate/Status``: the automatic checks' problems
/// reject at once; a clean submission waits for the operator; an edit of submitted content goes back to
/// review.
extension MailTemplate {
    /// The status after the content of a template in `current` status was replaced with content whose
    /// automatic checks found `problems`: submitted content (pending or approved) goes back to review, or is
    /// rejected at once; a draft or rejected template becomes a draft.
    public static func statusAfterEdit(_ current: Status, problems: [String]) -> Status {
        switch current {
        case .approved, .pending: problems.isEmpty ? .pending : .rejected
        case .draft, .rejected: .draft
        }
    }

    /// The status after a submission, or nil when there is nothing to submit (it is pending or approved).
    public static func statusAfterSubmit(_ current: Status, problems: [String]) -> Status? {
        switch current {
        case .draft, .rejected: problems.isEmpty ? .pending : .rejected
        case .pending, .approved: nil
        }
    }

    /// The status the operator's decision gives a template, or the refusal when it is not waiting for review.
    public static func statusAfterReview(_ current: Status, approve: Bool) throws(HeraldError) -> Status {
        guard current == .pending else {
            throw HeraldError.conflict("Template.NotPending", "Only a template waiting for review can be approved or rejected (it is \(current.rawValue)).")
        }
        return approve ? .approved : .rejected
    }
}

/// The verification of a sending domain (SPEC §2) from its records' check results.
extension SendingDomain {
    /// What a round of checks decides: the domain's new status, and the selector of a waiting DKIM key that
    /// becomes the signing key (its record is published), if any.
    public struct Verdict: Sendable, Equatable {
        public var status: Status
        public var activate: String?

        public init(status: Status, activate: String?) {
            self.status = status
            self.activate = activate
        }
    }

    /// Verified when ownership, SPF and the signing key's DKIM record are ok; failing when a domain verified
    /// before no longer is; pending until its first verification. A waiting key (`pendingSelector`) whose
    /// record is ok becomes the signing key when the domain is usable, or when it has no signing key yet.
    public static func verdict(_ checks: [Check], current: Status, activeSelector: String?, pendingSelector: String?) -> Verdict {
        func ok(_ purpose: Purpose, selector: String? = nil) -> Bool {
            checks.contains { $0.purpose == purpose && $0.selector == selector && $0.status == .ok }
        }
        let usable = ok(.ownership) && ok(.spf) && activeSelector.map { ok(.dkim, selector: $0) } == true
        let status: Status = usable ? .verified : (current == .pending ? .pending : .failing)
        let activate = pendingSelector.flatMap { selector in ok(.dkim, selector: selector) && (usable || activeSelector == nil) ? selector : nil }
        return Verdict(status: status, activate: activate)
    }
}
