import Foundation
import HeraldCore
import Testing

@Suite struct AcceptRulesTests {
    @Test func textRulesRefuseWhatTheDatabaseOrAHeaderCannotHold() throws {
        #expect(throws: HeraldError.self) { try TextRules.checkLine("a\u{0}", field: "subject") }
        #expect(throws: HeraldError.self) { try TextRules.checkLine("a\r\nBcc: x", field: "subject") }
        #expect(throws: HeraldError.self) { try TextRules.checkLine("a\u{85}", field: "subject") }
        try TextRules.checkLine("tab\tand ünïcödé 中文", field: "subject")
        #expect(throws: HeraldError.self) { try TextRules.checkBody("a\u{0}b", field: "text") }
        #expect(throws: HeraldError.self) { try TextRules.checkBody("a\u{1B}[31m", field: "text") }
        try TextRules.checkBody("lines\r\nand\ttabs\n\u{0C}page", field: "text")
        do {
            try TextRules.checkBody("\u{0}", field: "html")
            Issue.record("a NUL passed")
        } catch {
            #expect(error.code == "Validation.Failed" && error.field == "html")
        }
    }

    @Test func partialAdmissionTakesWhatTheDayAndMonthHaveLeft() {
        var quota = QuotaAllocation(daily: 200, usedToday: 150, usedEarlierThisMonth: 0)
        #expect(quota.admitUpTo(30) == 30 && quota.usedToday == 180)
        #expect(quota.admitUpTo(100) == 20 && quota.usedToday == 200)
        #expect(quota.admitUpTo(5) == 0)
        var month = QuotaAllocation(daily: 200, usedToday: 0, usedEarlierThisMonth: 5_990)
        #expect(month.admitUpTo(50) == 10, "the month's 6,000 bound")
        var none = QuotaAllocation(daily: 200, usedToday: 0, usedEarlierThisMonth: 0)
        #expect(none.admitUpTo(-3) == 0 && none.usedToday == 0)
    }

    @Test func dropRulesFollowTheKindOfMail() {
        let list = UUID()
        let unsubscribed = [DropRules.Suppression(scope: "*", source: "unsubscribe")]
        #expect(DropRules.reason(kind: .trigger, listID: nil, tag: nil, suppressions: unsubscribed, invalid: false) == nil,
                "trigger mail still goes to who unsubscribed")
        #expect(DropRules.reason(kind: .batch, listID: nil, tag: nil, suppressions: unsubscribed, invalid: false) == "unsubscribed")
        let api = [DropRules.Suppression(scope: "*", source: "api")]
        #expect(DropRules.reason(kind: .trigger, listID: nil, tag: nil, suppressions: api, invalid: false) == "suppressed")
        let tagged = [DropRules.Suppression(scope: "tag:news", source: "unsubscribe")]
        #expect(DropRules.reason(kind: .batch, listID: nil, tag: "news", suppressions: tagged, invalid: false) == "unsubscribed")
        #expect(DropRules.reason(kind: .batch, listID: nil, tag: "other", suppressions: tagged, invalid: false) == nil)
        #expect(DropRules.reason(kind: .trigger, listID: nil, tag: "news", suppressions: tagged, invalid: false) == nil)
        let listed = [DropRules.Suppression(scope: "list:" + list.uuidString.lowercased(), source: "unsubscribe")]
        #expect(DropRules.reason(kind: .batch, listID: list, tag: nil, suppressions: listed, invalid: false) == "unsubscribed")
        #expect(DropRules.reason(kind: .batch, listID: UUID(), tag: nil, suppressions: listed, invalid: false) == nil)
        #expect(DropRules.reason(kind: .trigger, listID: nil, tag: nil, suppressions: [], invalid: true) == "invalid_address")
        #expect(MailKind.trigger.priority < MailKind.batch.priority)
    }

    @Test func replyToIsOnlyTheSendersConfirmedAddress() throws {
        let help = try MailAddress("help@example.test")
        #expect(try ReplyToRule.resolve(.senderDefault, senderReplyTo: "help@example.test", status: .verified) == "help@example.test")
        #expect(try ReplyToRule.resolve(.senderDefault, senderReplyTo: "help@example.test", status: .pending) == nil)
        #expect(try ReplyToRule.resolve(.address(help), senderReplyTo: "HELP@example.test", status: .verified) == "help@example.test")
        #expect(throws: HeraldError.self) { try ReplyToRule.resolve(.address(help), senderReplyTo: "help@example.test", status: .pending) }
        #expect(throws: HeraldError.self) { try ReplyToRule.resolve(.address(try MailAddress("x@evil.example")), senderReplyTo: nil, status: .none) }
        // SingleSendMail's ReplyToAddress: true needs a confirmed one; false sends none even when there is one.
        #expect(try ReplyToRule.resolve(.sender, senderReplyTo: "help@example.test", status: .verified) == "help@example.test")
        #expect(throws: HeraldError.self) { try ReplyToRule.resolve(.sender, senderReplyTo: "help@example.test", status: .pending) }
        #expect(try ReplyToRule.resolve(.none, senderReplyTo: "help@example.test", status: .verified) == nil)
        // A display name (ReplyAddressAlias) makes the stored value the field's mailbox; without an address it is refused.
        #expect(try ReplyToRule.resolve(.sender, name: "Help \"Desk\"", senderReplyTo: "help@example.test", status: .verified)
                == "\"Help \\\"Desk\\\"\" <help@example.test>")
        #expect(try ReplyToRule.resolve(.senderDefault, name: "Hilfe für Sie", senderReplyTo: "help@example.test", status: .verified)
                == "=?UTF-8?B?SGlsZmUgZsO8ciBTaWU=?= <help@example.test>")
        #expect(throws: HeraldError.self) { try ReplyToRule.resolve(.none, name: "Help", senderReplyTo: "help@example.test", status: .verified) }
        #expect(ReplyToRule.field("help@example.test") == "<help@example.test>")
        #expect(ReplyToRule.field("\"Help\" <help@example.test>") == "\"Help\" <help@example.test>")
        #expect(throws: HeraldError.self) { try ReplyToRule.validateName(String(repeating: "x", count: ReplyToRule.maxName + 1)) }
        #expect(throws: HeraldError.self) { try ReplyToRule.validateName("two\nlines") }
        // What a send asks for: an address, else the sender's own as chosen.
        #expect(try SendRules.replyToRequest(nil, sender: nil) == .senderDefault)
        #expect(try SendRules.replyToRequest(nil, sender: true) == .sender)
        #expect(try SendRules.replyToRequest(nil, sender: false) == .none)
        #expect(try SendRules.replyToRequest("Help@Example.test", sender: false) == .address(help))
    }
}
