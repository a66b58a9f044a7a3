// Fuzz target smtp-reply: SMTPReplyParser on whatever a remote mail server sends (any MX a recipient address
// names, so anybody's). The first byte chooses how the bytes are cut into reads.
//
// Beyond "no crash": every reply has a code in 200...599, at least one line, no line longer than the parser's
// limit and no more lines than its limit, an enhanced status only of the code's class; the replies and the
// error do not depend on how the bytes were cut into reads; and a one-line reply, written as the server
// writes it, parses to itself.
@testable import HeraldSMTP

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSMTPReply(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let cut = Int(input.byte())
    let bytes = input.rest
    let whole = parse([bytes[...]])
    var chunks: [ArraySlice<UInt8>] = []
    var offset = 0
    // At most about 256 reads: the parser looks for the LF from the start of its buffer at every read, so
    // byte-at-a-time reads of a long line cost quadratic time here (libFuzzer instruments every comparison).
    let least = bytes.count / 256
    while offset < bytes.count {
        let end = min(bytes.count, offset + max(least, 1 + (cut * 31 + chunks.count * 7) % (cut + 1)))
        chunks.append(bytes[offset..<end])
        offset = end
    }
    let pieces = parse(chunks)
    fuzzCheck(whole.replies == pieces.replies && whole.error == pieces.error,
              "the replies depend on how the bytes were read: \(whole) vs \(pieces)")
    let limits = SMTPReplyParser()
    for reply in whole.replies {
        fuzzCheck((200...599).contains(reply.code), "reply code \(reply.code)")
        fuzzCheck(!reply.lines.isEmpty && reply.lines.count <= limits.maxLines, "a reply of \(reply.lines.count) lines")
        fuzzCheck(reply.lines.allSatisfy { $0.unicodeScalars.count <= limits.maxLineLength && !$0.utf8.contains(10) }, "a line over the limit")
        if let status = reply.enhanced { fuzzCheck(status.statusClass == reply.code / 100, "enhanced status \(status) on \(reply.code)") }
        // (Invalid UTF-8 came in as U+FFFD, three bytes each: the encoding can outgrow the line limit.)
        if reply.lines.count == 1, reply.encoded.count <= limits.maxLineLength + 1 {
            var parser = SMTPReplyParser()
            let again = try? parser.feed(reply.encoded)
            fuzzCheck(again == [reply], "\(reply) does not parse back from its own encoding: \(String(describing: again))")
        }
    }
    return 0
}

/// The replies the parser returns for these reads, up to its first error, and that error.
private func parse(_ reads: [ArraySlice<UInt8>]) -> (replies: [SMTPReply], error: SMTPProtocolError?) {
    var parser = SMTPReplyParser()
    var replies: [SMTPReply] = []
    do {
        for read in reads {
            parser.append(read)
            while let reply = try parser.next() { replies.append(reply) }
        }
    } catch {
        return (replies, error)
    }
    return (replies, nil)
}
