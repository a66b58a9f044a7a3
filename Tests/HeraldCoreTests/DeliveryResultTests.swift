import Foundation
import HeraldCore
import Testing

/// The typed vocabulary of delivery: what a result means for the message, the invalid-address rule and
/// the retry decision, without a database.
@Suite struct DeliveryResultTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func eachResultNamesItsStatusEventAndNextAttempt() {
        let later = now.addingTimeInterval(60)
        #expect(DeliveryResult.delivered.status == .delivered && DeliveryResult.delivered.event == .messageDelivered)
        #expect(DeliveryResult.deferred(until: later).status == .deferred && DeliveryResult.deferred(until: later).event == .messageDeferred)
        #expect(DeliveryResult.deferred(until: later).nextAttemptAt == later)
        #expect(DeliveryResult.failed.status == .failed && DeliveryResult.failed.event == .messageFailed && DeliveryResult.failed.nextAttemptAt == nil)
        #expect(DeliveryResult.bounced(invalid: true).event == .messageBounced && DeliveryResult.bounced(invalid: true).isInvalidAddress)
        #expect(!DeliveryResult.bounced(invalid: false).isInvalidAddress && !DeliveryResult.spamRejected.isInvalidAddress)
        #expect(DeliveryResult.spamRejected.status == .spamRejected && DeliveryResult.spamRejected.event == .messageSpamRejected)
        // Released: back to the queue, no event, named apart in metrics.
        #expect(DeliveryResult.released(until: later).status == .queued && DeliveryResult.released(until: later).event == nil)
        #expect(DeliveryResult.released(until: later).nextAttemptAt == later && DeliveryResult.released(until: later).name == "released")
        #expect(DeliveryResult.spamRejected.name == "spam_rejected")
    }

    @Test func invalidAddressRuleIsA5xxWith51x() {
        #expect(InvalidAddressRule.isInvalidAddress(response: "550 5.1.1 user unknown"))
        #expect(InvalidAddressRule.isInvalidAddress(response: "553 5.1.2 the domain example.invalid does not exist"))
        #expect(InvalidAddressRule.isInvalidAddress(response: "556 5.1.10 example.com accepts no mail (null MX)"))
        #expect(!InvalidAddressRule.isInvalidAddress(response: "550 5.7.1 rejected"))
        #expect(!InvalidAddressRule.isInvalidAddress(response: "450 4.1.1 try later"))
        #expect(!InvalidAddressRule.isInvalidAddress(response: "550 mailbox unavailable"))
        #expect(!InvalidAddressRule.isInvalidAddress(response: " 550 5.1.1 user unknown"))
        #expect(!InvalidAddressRule.isInvalidAddress(response: "smtp; 550 5.1.1 user unknown"))
        #expect(!InvalidAddressRule.isInvalidAddress(response: "550 5.1"))
        #expect(!InvalidAddressRule.isInvalidAddress(response: "the message could not be built: bad address"))
        #expect(DeliveryResult.bounced(response: "550 5.1.1 no such user") == .bounced(invalid: true))
        #expect(DeliveryResult.bounced(response: "554 5.0.0 no") == .bounced(invalid: false))
    }

    @Test func softFailureIsDeferredUntilTheWindowCloses() {
        let policy = RetryPolicy()
        // The first retry a minute after the first attempt (no jitter at random 0).
        #expect(policy.afterSoftFailure(attempts: 1, acceptedAt: now, now: now, random: 0) == .deferred(until: now.addingTimeInterval(60)))
        #expect(policy.afterSoftFailure(attempts: 3, acceptedAt: now, now: now, random: 0) == .deferred(until: now.addingTimeInterval(1_800)))
        // The last delay repeats; jitter moves it by up to 10 %.
        #expect(policy.afterSoftFailure(attempts: 9, acceptedAt: now, now: now, random: 1) == .deferred(until: now.addingTimeInterval(21_600 * 1.1)))
        // Past 72 hours after acceptance the message has failed.
        let late = now.addingTimeInterval(71 * 3_600)
        #expect(policy.afterSoftFailure(attempts: 6, acceptedAt: now, now: late, random: 0) == .failed)
    }

    @Test func vocabularyNamesAreTheStoredOnes() {
        #expect(MessageStatus.allCases.map(\.rawValue)
                == ["queued", "deferred", "sending", "delivered", "bounced", "spam_rejected", "failed", "dropped", "paused"])
        #expect(EventType.subscribable.count == EventType.allCases.count - 1 && !EventType.subscribable.contains(.webhookTest))
        #expect(EventType.allCases.filter(\.isMessageEvent).count == 11)
        #expect(GradeChange.frozen.event == .accountFrozen && GradeChange.promoted.event == .accountGradeChanged && GradeChange(becoming: .active) == .unfrozen)
        #expect(WebhookEventTypes.all.first == "message.accepted" && WebhookEventTypes.all.last == "webhook.disabled")
    }
}
