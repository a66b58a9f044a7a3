import HeraldSMTP
import Testing

/// What the libFuzzer targets smtp-server and smtp-reply (ops/fuzz) found, kept as unit tests; each input is
/// also in the target's corpus under Fuzz/.
@Suite struct SMTPFuzzRegressionTests {
    /// smtp-server: `EHLO c\rlbm…` was echoed in the 250 reply, whose first line then held a bare CR (which some
    /// clients read as the end of a line: the client's own text would start a reply line of its own).
    @Test func aControlCharacterInTheEHLONameIsRefusedNotEchoed() {
        for name in ["c\rX-Injected: 1", "c\0x", "c\u{7F}", "c\tx"] {
            for verb in ["EHLO", "HELO"] {
                var machine = SMTPServerStateMachine(settings: .init(hostname: "mx.test"))
                guard case .reply(let reply) = machine.receive(line: Array("\(verb) \(name)".utf8)) else {
                    Issue.record("no reply to \(verb)")
                    continue
                }
                #expect(reply.code == 501, "\(verb) \(name.debugDescription)")
                #expect(!reply.encoded.dropLast(2).contains(13), "\(verb) \(name.debugDescription): a CR inside the reply")
            }
        }
        var machine = SMTPServerStateMachine(settings: .init(hostname: "mx.test"))
        guard case .reply(let reply) = machine.receive(line: Array("EHLO client.example".utf8)) else { Issue.record("no EHLO reply"); return }
        #expect(reply.code == 250, "a plain name still greets")
    }

    /// smtp-reply: the line limit held only for a line still arriving, so a longer line that came in one read
    /// was taken, and the replies depended on how the bytes happened to be read.
    @Test func theLineLimitHoldsHoweverTheBytesArrive() {
        let line = Array(("250 " + String(repeating: "x", count: 5000) + "\r\n").utf8)
        var whole = SMTPReplyParser()
        #expect(throws: SMTPProtocolError.lineTooLong) { try whole.feed(line) }
        var pieces = SMTPReplyParser()
        #expect(throws: SMTPProtocolError.lineTooLong) {
            _ = try pieces.feed(line.prefix(4500))
            _ = try pieces.feed(line.dropFirst(4500))
        }
        var atTheLimit = SMTPReplyParser()
        let limit = Array(("250 " + String(repeating: "y", count: atTheLimit.maxLineLength - 5) + "\r\n").utf8)
        #expect((try? atTheLimit.feed(limit))?.count == 1, "a line of exactly the limit (CR included) is taken")
    }

    /// A server that never ends its multi-line reply (`250-` forever) grew the pending lines without bound.
    @Test func aReplyOfTooManyLinesIsAnError() throws {
        var parser = SMTPReplyParser()
        var bytes: [UInt8] = []
        for _ in 0..<parser.maxLines { bytes += Array("250-x\r\n".utf8) }
        #expect(throws: SMTPProtocolError.tooManyLines) { try parser.feed(bytes + Array("250 end\r\n".utf8)) }
        var enough = SMTPReplyParser()
        let fine = try enough.feed(bytes.dropLast(7) + Array("250 end\r\n".utf8))
        #expect(fine.count == 1 && fine[0].lines.count == enough.maxLines)
    }
}
