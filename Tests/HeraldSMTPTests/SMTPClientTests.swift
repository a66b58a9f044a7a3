import Foundation
import HeraldSMTP
import Testing

@Suite struct SMTPReplyParserTests {
    @Test func multiLineRepliesAndEnhancedCodes() throws {
        var parser = SMTPReplyParser()
        #expect(try parser.feed(Array("250-mx.example.org Hello\r\n250-SIZE 1000\r\n250-PIPE".utf8)).isEmpty)
        let replies = try parser.feed(Array("LINING\r\n250 STARTTLS\r\n550 5.1.1 <x@example.org>: user unknown\n".utf8))
        #expect(replies.count == 2)
        #expect(replies[0].code == 250 && replies[0].extensions == ["SIZE": "1000", "PIPELINING": "", "STARTTLS": ""])
        #expect(replies[1].enhanced == EnhancedStatus(statusClass: 5, subject: 1, detail: 1))
        #expect(replies[1].lines == ["<x@example.org>: user unknown"])
        #expect(replies[1].description == "550 5.1.1 <x@example.org>: user unknown")
        #expect(try parser.feed(Array("354 go ahead\r\n".utf8)).first?.enhanced == nil)
    }

    @Test func refusesWhatIsNotSMTP() {
        var parser = SMTPReplyParser()
        #expect(throws: SMTPProtocolError.self) { try parser.feed(Array("HTTP/1.1 400 Bad Request\r\n".utf8)) }
        var mixed = SMTPReplyParser()
        #expect(throws: SMTPProtocolError.inconsistentCodes) { try mixed.feed(Array("250-a\r\n251 b\r\n".utf8)) }
        var long = SMTPReplyParser()
        #expect(throws: SMTPProtocolError.lineTooLong) { try long.feed(Array(repeating: UInt8(ascii: "2"), count: 5000)) }
    }

    @Test func outcomes() {
        func reply(_ code: Int, _ enhanced: (Int, Int, Int)?, _ text: String) -> SMTPReply {
            SMTPReply(code: code, enhanced: enhanced.map { EnhancedStatus(statusClass: $0.0, subject: $0.1, detail: $0.2) }, lines: [text])
        }
        #expect(SMTPOutcome.classify(reply(250, (2, 0, 0), "ok")).messageStatus == "delivered")
        #expect(SMTPOutcome.classify(reply(451, (4, 7, 1), "try later")).messageStatus == "deferred")
        #expect(SMTPOutcome.classify(reply(550, (5, 1, 1), "user unknown")).messageStatus == "bounced")
        #expect(SMTPOutcome.classify(reply(550, (5, 7, 1), "rejected")).messageStatus == "spam_rejected")
        #expect(SMTPOutcome.classify(reply(554, nil, "Message rejected as spam")).messageStatus == "spam_rejected")
        #expect(SMTPOutcome.classify(reply(550, nil, "Blocked - see https://rbl.example")).messageStatus == "spam_rejected")
    }

    @Test func dotStuffing() {
        #expect(String(decoding: SMTPData.encode(Array("a\r\n.b\n..c\r\n".utf8)), as: UTF8.self) == "a\r\n..b\r\n...c\r\n.\r\n")
        #expect(String(decoding: SMTPData.encode(Array(".".utf8)), as: UTF8.self) == "..\r\n.\r\n")
        #expect(String(decoding: SMTPData.encode(Array("x".utf8)), as: UTF8.self) == "x\r\n.\r\n")
    }
}

/// Drives the state machine through scripted server replies, as the channel handler will.
@Suite struct SMTPClientStateMachineTests {
    static func r(_ text: String) -> SMTPReply {
        var parser = SMTPReplyParser()
        return try! parser.feed(Array((text.replacingOccurrences(of: "|", with: "\r\n") + "\r\n").utf8)).last!
    }

    static func sent(_ actions: [SMTPClientStateMachine.Action]) -> String {
        actions.compactMap { if case .send(let bytes) = $0 { String(decoding: bytes, as: UTF8.self) } else { nil } }.joined()
    }

    static func finished(_ actions: [SMTPClientStateMachine.Action]) -> [Int: [String]] {
        var result: [Int: [String]] = [:]
        for case .finished(let envelope, let outcomes) in actions { result[envelope] = outcomes.map(\.messageStatus) }
        return result
    }

    let message = SMTPClientStateMachine.Envelope(from: "news@example.test", recipients: ["a@example.org", "b@example.org"],
                                                  data: Array("Subject: hi\r\n\r\n.dot line\r\n".utf8))

    @Test func pipelinedSessionWithStartTLSAndTwoMessages() {
        var machine = SMTPClientStateMachine(hostname: "herald.test", tlsAvailable: true)
        let first = machine.enqueue(message)
        #expect(first.actions.isEmpty)
        #expect(Self.sent(machine.received(Self.r("220 mx.example.org ESMTP"))) == "EHLO herald.test\r\n")
        #expect(Self.sent(machine.received(Self.r("250-mx.example.org|250-STARTTLS|250-PIPELINING|250 SIZE 100000"))) == "STARTTLS\r\n")
        #expect(machine.received(Self.r("220 2.0.0 ready")) == [.startTLS])
        #expect(Self.sent(machine.tlsEstablished()) == "EHLO herald.test\r\n")
        let pipelined = machine.received(Self.r("250-mx.example.org|250-PIPELINING|250 SIZE 100000"))
        #expect(Self.sent(pipelined) == "MAIL FROM:<news@example.test> SIZE=26\r\nRCPT TO:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
        #expect(machine.isSecured)
        #expect(machine.received(Self.r("250 2.1.0 ok")).isEmpty)
        #expect(machine.received(Self.r("550 5.1.1 no such user")).isEmpty)
        #expect(machine.received(Self.r("250 2.1.5 ok")).isEmpty)
        #expect(Self.sent(machine.received(Self.r("354 go ahead"))) == "Subject: hi\r\n\r\n..dot line\r\n.\r\n")
        let second = machine.enqueue(message)
        #expect(second.actions.isEmpty)
        let done = machine.received(Self.r("250 2.0.0 queued as ABC"))
        #expect(Self.finished(done) == [0: ["bounced", "delivered"]])
        // The next message starts on the same connection without RSET.
        #expect(Self.sent(done).hasPrefix("MAIL FROM:<news@example.test>"))
        _ = machine.received(Self.r("250 ok"))
        _ = machine.received(Self.r("250 ok"))
        _ = machine.received(Self.r("250 ok"))
        _ = machine.received(Self.r("354 go"))
        #expect(machine.quit().isEmpty)
        let last = machine.received(Self.r("451 4.3.0 try again later"))
        #expect(Self.finished(last) == [1: ["deferred", "deferred"]])
        #expect(Self.sent(last) == "QUIT\r\n")
        #expect(machine.received(Self.r("221 bye")) == [.close])
    }

    @Test func heloFallbackWithoutPipeliningAndRefusedMail() {
        var machine = SMTPClientStateMachine(hostname: "herald.test", tlsAvailable: false)
        _ = machine.enqueue(message)
        _ = machine.received(Self.r("220 old.example.org"))
        #expect(Self.sent(machine.received(Self.r("502 command not implemented"))) == "HELO herald.test\r\n")
        #expect(Self.sent(machine.received(Self.r("250 old.example.org"))) == "MAIL FROM:<news@example.test>\r\n")
        let refused = machine.received(Self.r("550 5.7.1 sender blocked"))
        #expect(Self.finished(refused) == [0: ["spam_rejected", "spam_rejected"]])
        #expect(Self.sent(refused) == "RSET\r\n")
        _ = machine.received(Self.r("250 ok"))
        #expect(machine.isIdle)
        // One recipient refused, the other delivered, step by step.
        _ = machine.enqueue(message)
        #expect(Self.sent(machine.received(Self.r("250 ok"))) == "RCPT TO:<a@example.org>\r\n")
        #expect(Self.sent(machine.received(Self.r("450 4.2.1 mailbox busy"))) == "RCPT TO:<b@example.org>\r\n")
        #expect(Self.sent(machine.received(Self.r("250 ok"))) == "DATA\r\n")
        _ = machine.received(Self.r("354 go"))
        #expect(Self.finished(machine.received(Self.r("250 ok"))) == [1: ["deferred", "delivered"]])
    }

    @Test func failuresEndTheSessionSoftlyOrHard() {
        var closed = SMTPClientStateMachine(hostname: "herald.test", tlsAvailable: false)
        _ = closed.enqueue(message)
        _ = closed.enqueue(message)
        #expect(Self.finished(closed.connectionClosed("timeout")) == [0: ["deferred", "deferred"], 1: ["deferred", "deferred"]])

        var refused = SMTPClientStateMachine(hostname: "herald.test", tlsAvailable: false)
        _ = refused.enqueue(message)
        let actions = refused.received(Self.r("554 5.7.1 no service for you"))
        #expect(Self.finished(actions) == [0: ["spam_rejected", "spam_rejected"]])
        #expect(actions.last == .close)

        // SIZE: a message over the server's limit is refused without sending it.
        var small = SMTPClientStateMachine(hostname: "herald.test", tlsAvailable: false)
        _ = small.enqueue(message)
        _ = small.received(Self.r("220 mx"))
        let tooBig = small.received(Self.r("250-mx|250 SIZE 10"))
        #expect(Self.finished(tooBig) == [0: ["bounced", "bounced"]])
        #expect(Self.sent(tooBig).isEmpty)

        // All recipients refused under pipelining: no message data is sent.
        var none = SMTPClientStateMachine(hostname: "herald.test", tlsAvailable: false)
        _ = none.enqueue(message)
        _ = none.received(Self.r("220 mx"))
        _ = none.received(Self.r("250-mx|250 PIPELINING"))
        _ = none.received(Self.r("250 ok"))
        _ = none.received(Self.r("550 5.1.1 unknown"))
        _ = none.received(Self.r("550 5.1.1 unknown"))
        let data = none.received(Self.r("554 5.5.1 no valid recipients"))
        #expect(Self.finished(data) == [0: ["bounced", "bounced"]])
        #expect(Self.sent(data) == "RSET\r\n")
    }

    /// Replies out of step with the commands (an extra or lost reply, one left over from an earlier
    /// transaction) never deliver a message: only a 2xx to the end of the data does; any reply of the wrong
    /// kind for its step ends the session with a soft failure, and no data goes out after it.
    @Test func repliesOfTheWrongKindForTheirStepNeverDeliver() {
        let one = SMTPClientStateMachine.Envelope(from: "news@example.test", recipients: ["a@example.org"], data: Array("Subject: hi\r\n\r\nhi\r\n".utf8))
        /// A session past EHLO (with PIPELINING or not) with `one` sent as far as its first command.
        func session(pipelining: Bool) -> SMTPClientStateMachine {
            var machine = SMTPClientStateMachine(hostname: "herald.test", tlsAvailable: false)
            _ = machine.enqueue(one)
            _ = machine.received(Self.r("220 mx"))
            _ = machine.received(Self.r(pipelining ? "250-mx|250 PIPELINING" : "250 mx"))
            return machine
        }
        func expectSoftEnd(_ actions: [SMTPClientStateMachine.Action], _ what: Comment) {
            #expect(Self.finished(actions) == [0: ["deferred"]], what)
            #expect(actions.last == .close, what)
            #expect(Self.sent(actions).isEmpty, what)
        }

        // A 250 where the 354 to DATA belongs (the 250 of an earlier command): the data was never sent.
        var stepwise = session(pipelining: false)
        _ = stepwise.received(Self.r("250 ok"))
        #expect(Self.sent(stepwise.received(Self.r("250 ok"))) == "DATA\r\n")
        expectSoftEnd(stepwise.received(Self.r("250 2.0.0 queued")), "2xx to DATA")

        // The same under pipelining.
        var pipelined = session(pipelining: true)
        _ = pipelined.received(Self.r("250 ok"))
        _ = pipelined.received(Self.r("250 ok"))
        expectSoftEnd(pipelined.received(Self.r("250 2.0.0 queued")), "2xx to DATA, pipelined")

        // A 354 where a RCPT reply was expected.
        var early = session(pipelining: true)
        _ = early.received(Self.r("250 ok"))
        expectSoftEnd(early.received(Self.r("354 go ahead")), "3xx to RCPT")

        // A 354 to MAIL (it used to become the MAIL "failure" given to every recipient, and 3xx counted as delivered).
        var mail = session(pipelining: false)
        expectSoftEnd(mail.received(Self.r("354 go ahead")), "3xx to MAIL")

        // A 3xx to the end of the data.
        var end = session(pipelining: false)
        _ = end.received(Self.r("250 ok"))
        _ = end.received(Self.r("250 ok"))
        #expect(Self.sent(end.received(Self.r("354 go"))).hasSuffix("\r\n.\r\n"))
        expectSoftEnd(end.received(Self.r("354 go on")), "3xx to the end of the data")

        // A 2xx other than 250 to MAIL and RCPT is a completion (RFC 5321 §4.2.1), and the 2xx to the data's end delivers.
        var fine = session(pipelining: false)
        _ = fine.received(Self.r("251 ok"))
        _ = fine.received(Self.r("251 2.1.5 will forward"))
        _ = fine.received(Self.r("354 go"))
        #expect(Self.finished(fine.received(Self.r("250 2.0.0 queued"))) == [0: ["delivered"]])

        // A reply to an idle session (nothing asked) ends it; the next message is not sent over it.
        var idle = session(pipelining: false)
        _ = idle.received(Self.r("250 ok"))
        _ = idle.received(Self.r("250 ok"))
        _ = idle.received(Self.r("354 go"))
        _ = idle.received(Self.r("250 queued"))
        #expect(idle.isIdle)
        #expect(idle.received(Self.r("250 stray")) == [.close])
        let next = idle.enqueue(one)
        #expect(Self.sent(next.actions).isEmpty)

        // The outcome of a 3xx is never a delivery.
        #expect(SMTPOutcome.classify(Self.r("354 go ahead")).messageStatus == "deferred")
    }
}
