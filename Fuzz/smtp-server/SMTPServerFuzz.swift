// Fuzz target smtp-server: SMTPServerStateMachine fed as SMTPServerHandler feeds it (SMTPServer.swift): the
// bytes arrive in chunks, are cut into lines at LF (CR dropped, over-long lines cut and the rest discarded,
// DATA lines allowed longer), pipelined lines are taken one at a time, the delegate's answers come back before
// the next line, and STARTTLS drops whatever was sent after it. The first bytes choose the settings, the
// delegate's answers and the chunk sizes.
//
// Beyond "no crash": every reply is well formed (a code 200...599, CRLF only at line ends: nothing the client
// sent can start a line of its own), AUTH is asked only where it is offered, a delivered envelope has only
// recipients the delegate accepted, within the limits, with the data an independent reading of RFC 5321
// §4.5.2 gives, and with submission rules on, only the authenticated user's own address as the sender.
@testable import HeraldSMTP

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSMTPServer(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let flags = input.byte()
    var settings = SMTPServerStateMachine.Settings(hostname: "mx.herald.test", maxMessageSize: flags & 1 == 0 ? 1 << 20 : 300,
                                                   maxRecipients: flags & 2 == 0 ? 100 : 3, maxCommandLength: flags & 4 == 0 ? 2048 : 64,
                                                   maxErrors: 10, tlsAvailable: flags & 8 != 0)
    settings.authAvailable = flags & 16 != 0
    settings.requireAuth = flags & 32 != 0
    settings.startsSecured = flags & 64 != 0
    settings.authRequiresTLS = flags & 128 == 0
    var driver = Driver(settings: settings, answers: input.byte(), chunking: input.byte())
    driver.run(input.rest)
    return 0
}

/// SMTPServerHandler's reading loop without the channel, with a delegate that answers at once.
private struct Driver {
    /// SMTPServerHandler's limits (SMTPServer.swift, which needs NIO and is not compiled in here).
    static let maxDataLine = 65_536
    static let maxBuffered = 1 << 20
    var machine: SMTPServerStateMachine
    let settings: SMTPServerStateMachine.Settings
    var buffer: [UInt8] = []
    var discarding = false
    var closing = false
    /// Bits that decide the delegate's answers, used round-robin.
    var answers: UInt8
    var chunking: UInt8
    var asked = 0
    /// Recipients the delegate accepted (a delivered envelope may hold only these).
    var acceptedRecipients: Set<String> = []
    /// Who the delegate said the connection authenticated as (nil again after STARTTLS).
    var authenticated: String?
    /// The lines given to the machine since its 354, for the independent reading of DATA.
    var dataLines: [([UInt8], Bool)]?

    init(settings: SMTPServerStateMachine.Settings, answers: UInt8, chunking: UInt8) {
        self.machine = SMTPServerStateMachine(settings: settings)
        self.settings = settings
        self.answers = answers
        self.chunking = chunking
    }

    mutating func run(_ stream: [UInt8]) {
        check(machine.greeting)
        var offset = 0
        var step = 0
        while offset < stream.count, !closing {
            // Chunk sizes from 1 byte to the whole rest, varied by the chunking byte.
            let size = chunking == 0 ? stream.count : 1 + (Int(chunking) * 7 + step * 13) % (Int(chunking) * 4)
            step += 1
            let end = min(stream.count, offset + size)
            buffer += stream[offset..<end]
            offset = end
            process()
        }
    }

    mutating func process() {
        while !closing, !machine.isWaiting, let (line, overlong) = nextLine() {
            if dataLines != nil { dataLines?.append((line, overlong)) }
            perform(machine.receive(line: line, overlong: overlong))
        }
        if !closing, buffer.count > Self.maxBuffered { closing = true }
    }

    /// SMTPServerHandler.nextLine on an array.
    mutating func nextLine() -> ([UInt8], Bool)? {
        let limit = machine.isReadingData ? Self.maxDataLine : settings.maxCommandLength
        while true {
            guard let newline = buffer.firstIndex(of: 10) else {
                if discarding {
                    buffer.removeAll()
                } else if buffer.count > limit {
                    let cut = Array(buffer.prefix(limit))
                    buffer.removeAll()
                    discarding = true
                    return (cut, true)
                }
                return nil
            }
            var line = Array(buffer[..<newline])
            buffer.removeSubrange(...newline)
            if discarding {
                discarding = false
                continue
            }
            if line.last == 13 { line.removeLast() }
            return line.count > limit ? (Array(line.prefix(limit)), true) : (line, false)
        }
    }

    mutating func decide() -> Bool {
        defer { asked += 1 }
        return answers >> (asked % 8) & 1 == 0
    }

    /// Performs an action as the handler would. An if-chain rather than a switch: an action added to the machine
    /// later (one this driver does not answer) leaves the machine waiting and ends the run, instead of breaking
    /// the build of this target.
    mutating func perform(_ action: SMTPServerStateMachine.Action) {
        if case .reply(let reply) = action {
            check(reply)
            if reply.code == 354 { dataLines = [] }
        } else if case .replyAndClose(let reply) = action {
            check(reply)
            closing = true
        } else if case .checkRecipient(let address) = action {
            fuzzCheck(machine.currentSender != nil, "RCPT asked outside a transaction")
            let yes = decide()
            if yes { acceptedRecipients.insert(address) }
            perform(machine.recipientChecked(yes ? SMTPServerStateMachine.reply(250, (2, 1, 5), "OK")
                                                 : SMTPServerStateMachine.reply(550, (5, 1, 1), "No such user")))
        } else if case .authenticate(let username, let password) = action {
            fuzzCheck(settings.authAvailable && (machine.isSecured || !settings.authRequiresTLS), "AUTH asked where it is not offered")
            fuzzCheck(machine.authenticatedAs == nil, "AUTH asked on an authenticated connection")
            // A real delegate knows only addresses it issued passwords for: printable, no spaces.
            let known = !username.isEmpty && username.unicodeScalars.allSatisfy { $0.value > 32 && $0.value < 127 }
            let yes = known && password == "secret"
            if yes { authenticated = username }
            perform(machine.authenticated(yes ? SMTPServerStateMachine.reply(235, (2, 7, 0), "Authentication successful")
                                              : SMTPServerStateMachine.reply(535, (5, 7, 8), "Authentication credentials invalid")))
            fuzzCheck(machine.authenticatedAs == (yes ? username : authenticated), "authenticatedAs does not follow the delegate's answer")
        } else if case .deliver(let envelope) = action {
            checkDelivery(envelope)
            dataLines = nil
            perform(machine.delivered(decide() ? SMTPServerStateMachine.reply(250, (2, 0, 0), "queued")
                                               : SMTPServerStateMachine.reply(451, (4, 3, 0), "try later")))
        } else if case .startTLS(let reply) = action {
            check(reply)
            fuzzCheck(reply.code == 220, "STARTTLS answered \(reply.code)")
            fuzzCheck(machine.isSecured && machine.authenticatedAs == nil, "STARTTLS kept the old session state")
            buffer.removeAll()
            discarding = false
            authenticated = nil
            dataLines = nil
        }
    }

    func checkDelivery(_ envelope: SMTPServerStateMachine.Envelope) {
        fuzzCheck(!envelope.recipients.isEmpty && envelope.recipients.count <= settings.maxRecipients,
                  "\(envelope.recipients.count) recipients delivered")
        fuzzCheck(envelope.recipients.allSatisfy(acceptedRecipients.contains), "a recipient the delegate did not accept")
        fuzzCheck(envelope.data.count <= settings.maxMessageSize, "\(envelope.data.count) bytes delivered")
        fuzzCheck(envelope.authenticatedAs == authenticated, "the envelope's user is not the one the delegate accepted")
        if settings.requireAuth {
            fuzzCheck(envelope.authenticatedAs != nil, "submission without AUTH")
            fuzzCheck(envelope.from.lowercased() == envelope.authenticatedAs?.lowercased(), "sender \(envelope.from) is not the authenticated user")
        }
        // RFC 5321 §4.5.2: each line up to the lone dot, a leading dot removed, with CRLF.
        guard let lines = dataLines else {
            fuzzCheck(false, "delivered without DATA")
            return
        }
        fuzzCheck(lines.last.map { $0.0 == [UInt8(ascii: ".")] && !$0.1 } == true, "delivered before the final dot")
        var expected: [UInt8] = []
        for (line, overlong) in lines.dropLast() {
            fuzzCheck(!overlong, "an over-long line was delivered")
            expected += line.first == UInt8(ascii: ".") ? Array(line.dropFirst()) : line
            expected += [13, 10]
        }
        fuzzCheck(envelope.data == expected, "the data differs from its lines")
    }

    /// A reply the client can read: a code, and CR or LF only as the CRLF that ends each line.
    func check(_ reply: SMTPReply) {
        fuzzCheck((200...599).contains(reply.code), "reply code \(reply.code)")
        let bytes = reply.encoded
        var index = 0
        while index < bytes.count {
            if bytes[index] == 13 || bytes[index] == 10 {
                fuzzCheck(bytes[index] == 13 && index + 1 < bytes.count && bytes[index + 1] == 10, "a bare CR or LF inside reply \(reply)")
                index += 2
            } else {
                index += 1
            }
        }
        fuzzCheck(bytes.last == 10, "a reply that does not end with CRLF")
    }
}
