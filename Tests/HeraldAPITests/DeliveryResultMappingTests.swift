import Foundation
import HeraldCore
import HeraldDelivery
import HeraldSMTP
import Testing

/// The one place where the SMTP conversation's verdict becomes a ``DeliveryResult``: the worker decides
/// retries and invalid addresses, the store only writes.
@Suite struct DeliveryResultMappingTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func result(_ outcome: SMTPOutcome, attempts: Int = 1, acceptedAt: Date? = nil) -> DeliveryResult {
        DeliveryResult(outcome, attempts: attempts, acceptedAt: acceptedAt ?? now, retry: RetryPolicy(), now: now, random: 0)
    }

    static func reply(_ code: Int, _ enhanced: (Int, Int, Int)?, _ text: String) -> SMTPReply {
        SMTPReply(code: code, enhanced: enhanced.map { EnhancedStatus(statusClass: $0.0, subject: $0.1, detail: $0.2) }, lines: [text])
    }

    @Test func eachOutcomeClassMapsOnce() {
        #expect(result(.delivered(Self.reply(250, (2, 0, 0), "ok"))) == .delivered)
        #expect(result(.softFailure("451 4.7.1 try later")) == .deferred(until: now.addingTimeInterval(60)))
        #expect(result(.softFailure("connection refused"), attempts: 2) == .deferred(until: now.addingTimeInterval(300)))
        // A soft failure past the retry window has failed.
        #expect(result(.softFailure("451 later"), attempts: 5, acceptedAt: now.addingTimeInterval(-72 * 3_600)) == .failed)
        #expect(result(.hardFailure(Self.reply(550, (5, 1, 1), "user unknown"))) == .bounced(invalid: true))
        #expect(result(.hardFailure(Self.reply(550, nil, "mailbox unavailable"))) == .bounced(invalid: false))
        #expect(result(.hardFailure(Self.reply(552, (5, 2, 2), "mailbox full"))) == .bounced(invalid: false))
        #expect(result(.spamRejected(Self.reply(550, (5, 7, 1), "rejected"))) == .spamRejected)
        // The response the store writes is the reply as logs show it.
        #expect(SMTPOutcome.hardFailure(Self.reply(550, (5, 1, 1), "user unknown")).response == "550 5.1.1 user unknown")
        #expect(SMTPOutcome.softFailure("the session ended").response == "the session ended")
    }
}
