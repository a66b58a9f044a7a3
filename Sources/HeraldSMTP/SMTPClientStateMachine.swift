/// The client side of an SMTP session as a pure state machine (postgres-nio's style): the channel
/// handler feeds it replies and connection events and performs the actions it returns. One session
/// delivers the messages queued on it one after another over one connection (a new MAIL after a
/// completed transaction, RSET after an aborted one), with EHLO (HELO when EHLO is refused),
/// opportunistic STARTTLS, SIZE, and PIPELINING of MAIL, RCPT and DATA when offered.
public struct SMTPClientStateMachine: Sendable {
    /// One message for one or more recipients of the same destination.
    public struct Envelope: Hashable, Sendable {
        public var from: String
        public var recipients: [String]
        /// The message (CRLF lines, not yet dot-stuffed).
        public var data: [UInt8]

        public init(from: String, recipients: [String], data: [UInt8]) {
            self.from = from
            self.recipients = recipients
            self.data = data
        }
    }

    /// What the driver must do.
    public enum Action: Hashable, Sendable {
        /// Write these bytes.
        case send([UInt8])
        /// Start TLS on the connection, then call ``tlsEstablished()`` (or ``tlsFailed()``).
        case startTLS
        /// A message is finished: one outcome per recipient, in envelope order.
        case finished(envelope: Int, outcomes: [SMTPOutcome])
        /// Close the connection.
        case close
    }

    enum Expect: Hashable, Sendable {
        case mail
        case rcpt(Int)
        case data
        case dataEnd
    }

    struct Transaction: Hashable, Sendable {
        var index: Int
        var envelope: Envelope
        var outcomes: [SMTPOutcome?]
        var expecting: [Expect]
        var mailFailure: SMTPReply?
        var dataSent = false
    }

    enum State: Hashable, Sendable {
        case greeting
        case ehlo
        case helo
        case startTLS
        case tlsHandshake
        case ready
        case transaction(Transaction)
        case rset
        case quit
        case closed
    }

    private(set) var state: State = .greeting
    private var queue: [(Int, Envelope)] = []
    private var nextIndex = 0
    /// Extensions the server announced (upper-case keywords).
    public private(set) var extensions: [String: String] = [:]
    private var secured = false
    private var quitWhenIdle = false
    let hostname: String
    let tlsAvailable: Bool

    /// A session that says `EHLO hostname` and uses STARTTLS when both sides can.
    public init(hostname: String, tlsAvailable: Bool) {
        self.hostname = hostname
        self.tlsAvailable = tlsAvailable
    }

    /// Whether STARTTLS succeeded on this connection.
    public var isSecured: Bool { secured }

    /// Queues a message; returns its index and the actions to take now.
    public mutating func enqueue(_ envelope: Envelope) -> (index: Int, actions: [Action]) {
        let index = nextIndex
        nextIndex += 1
        queue.append((index, envelope))
        return (index, state == .ready ? startNext() : [])
    }

    /// Sends QUIT once the queued messages are done.
    public mutating func quit() -> [Action] {
        quitWhenIdle = true
        if state == .ready { return sendQuit() }
        return []
    }

    /// Messages waiting and in progress.
    public var pendingCount: Int {
        if case .transaction = state { return queue.count + 1 }
        return queue.count
    }

    /// Whether a new message can start at once.
    public var isIdle: Bool { state == .ready && queue.isEmpty }

    // MARK: Events

    /// A reply arrived.
    public mutating func received(_ reply: SMTPReply) -> [Action] {
        switch state {
        case .greeting:
            guard reply.code == 220 else { return failAll("greeting: \(reply)", permanent: reply.isPermanent ? reply : nil) }
            state = .ehlo
            return [.send(line("EHLO \(hostname)"))]
        case .ehlo:
            if reply.code == 250 {
                extensions = reply.extensions
                if !secured && tlsAvailable && extensions["STARTTLS"] != nil {
                    state = .startTLS
                    return [.send(line("STARTTLS"))]
                }
                state = .ready
                return readyActions()
            }
            if reply.isPermanent && !secured {
                state = .helo
                return [.send(line("HELO \(hostname)"))]
            }
            return failAll("EHLO: \(reply)", permanent: nil)
        case .helo:
            guard reply.code == 250 else { return failAll("HELO: \(reply)", permanent: nil) }
            extensions = [:]
            state = .ready
            return readyActions()
        case .startTLS:
            guard reply.code == 220 else {
                guard reply.kind == .failure else { return failAll("protocol error: \(reply) in reply to STARTTLS", permanent: nil) }
                // Opportunistic: a refused STARTTLS leaves the session in clear text.
                state = .ready
                return readyActions()
            }
            state = .tlsHandshake
            return [.startTLS]
        case .tlsHandshake:
            return failAll("reply during the TLS handshake: \(reply)", permanent: nil)
        case .ready, .closed:
            return failAll("unexpected reply: \(reply)", permanent: nil)
        case .rset:
            guard reply.code == 250 else { return failAll("RSET: \(reply)", permanent: nil) }
            state = .ready
            return readyActions()
        case .quit:
            state = .closed
            return [.close]
        case .transaction(var transaction):
            guard !transaction.expecting.isEmpty else { return failAll("unexpected reply: \(reply)", permanent: nil) }
            let expected = transaction.expecting.removeFirst()
            return handle(reply, expected: expected, transaction: &transaction)
        }
    }

    /// STARTTLS finished: greet again over TLS.
    public mutating func tlsEstablished() -> [Action] {
        guard state == .tlsHandshake else { return [] }
        secured = true
        extensions = [:]
        state = .ehlo
        return [.send(line("EHLO \(hostname)"))]
    }

    /// The TLS handshake failed; the connection is unusable.
    public mutating func tlsFailed(_ reason: String) -> [Action] { failAll("TLS: \(reason)", permanent: nil) }

    /// The connection closed or timed out: everything unfinished is a soft failure.
    public mutating func connectionClosed(_ reason: String) -> [Action] {
        guard state != .closed else { return [] }
        let wasQuitting = state == .quit
        var actions = failAll(reason, permanent: nil)
        if wasQuitting { actions.removeAll { $0 == .close } }
        return actions.filter { $0 != .close }
    }

    // MARK: Transactions

    private func line(_ text: String) -> [UInt8] { Array((text + "\r\n").utf8) }

    private var pipelining: Bool { extensions["PIPELINING"] != nil }

    private mutating func readyActions() -> [Action] {
        if !queue.isEmpty { return startNext() }
        if quitWhenIdle { return sendQuit() }
        return []
    }

    private mutating func sendQuit() -> [Action] {
        state = .quit
        return [.send(line("QUIT"))]
    }

    private mutating func startNext() -> [Action] {
        guard !queue.isEmpty else { return readyActions() }
        let (index, envelope) = queue.removeFirst()
        // SIZE (RFC 1870): a message larger than the server takes is refused before sending it.
        if let size = extensions["SIZE"].flatMap({ Int($0) }), size > 0, envelope.data.count > size {
            let reply = SMTPReply(code: 552, enhanced: EnhancedStatus(statusClass: 5, subject: 3, detail: 4),
                                  lines: ["message of \(envelope.data.count) bytes is larger than the server's limit of \(size)"])
            return [.finished(envelope: index, outcomes: envelope.recipients.map { _ in .hardFailure(reply) })] + startNext()
        }
        let size = extensions["SIZE"] != nil ? " SIZE=\(envelope.data.count)" : ""
        var transaction = Transaction(index: index, envelope: envelope, outcomes: envelope.recipients.map { _ in nil }, expecting: [.mail])
        if pipelining {
            var bytes = line("MAIL FROM:<\(envelope.from)>\(size)")
            for (recipient, address) in envelope.recipients.enumerated() {
                bytes += line("RCPT TO:<\(address)>")
                transaction.expecting.append(.rcpt(recipient))
            }
            bytes += line("DATA")
            transaction.expecting.append(.data)
            state = .transaction(transaction)
            return [.send(bytes)]
        }
        state = .transaction(transaction)
        return [.send(line("MAIL FROM:<\(envelope.from)>\(size)"))]
    }

    /// One reply inside a transaction, strictly by the step it answers: only a 2xx to the end of the data
    /// delivers. A reply of the wrong kind for its step (a 2xx to DATA, a 3xx to MAIL, RCPT or the end of the
    /// data, a 354 anywhere but after DATA) means the replies and the commands are out of step — crediting
    /// it to this message could mark as delivered a message whose data never went out — so the session ends
    /// and what it had not finished is a soft failure (tried again later).
    private mutating func handle(_ reply: SMTPReply, expected: Expect, transaction: inout Transaction) -> [Action] {
        var actions: [Action] = []
        switch expected {
        case .mail:
            switch reply.kind {
            case .completion: break
            case .failure: transaction.mailFailure = reply
            case .intermediate, .other: return protocolError(reply, step: "MAIL")
            }
            if !pipelining {
                if transaction.mailFailure != nil { return abort(transaction) }
                transaction.expecting = [.rcpt(0)]
                actions.append(.send(line("RCPT TO:<\(transaction.envelope.recipients[0])>")))
            }
        case .rcpt(let index):
            switch reply.kind {
            case .completion: break
            case .failure: transaction.outcomes[index] = SMTPOutcome.classify(reply)
            case .intermediate, .other: return protocolError(reply, step: "RCPT")
            }
            if !pipelining {
                if index + 1 < transaction.envelope.recipients.count {
                    transaction.expecting = [.rcpt(index + 1)]
                    actions.append(.send(line("RCPT TO:<\(transaction.envelope.recipients[index + 1])>")))
                } else if transaction.outcomes.contains(where: { $0 == nil }) {
                    transaction.expecting = [.data]
                    actions.append(.send(line("DATA")))
                } else {
                    return abort(transaction)
                }
            }
        case .data:
            let accepted = transaction.mailFailure == nil && transaction.outcomes.contains { $0 == nil }
            if reply.code == 354 {
                transaction.expecting = [.dataEnd]
                transaction.dataSent = accepted
                // With no recipient accepted, the data is replaced by an empty message the server will refuse.
                actions.append(.send(accepted ? SMTPData.encode(transaction.envelope.data) : line(".")))
            } else if reply.kind == .failure {
                if transaction.mailFailure == nil {
                    for index in transaction.outcomes.indices where transaction.outcomes[index] == nil {
                        transaction.outcomes[index] = SMTPOutcome.classify(reply)
                    }
                }
                return abort(transaction)
            } else {
                return protocolError(reply, step: "DATA")
            }
        case .dataEnd:
            guard reply.kind == .completion || reply.kind == .failure else { return protocolError(reply, step: "the end of the data") }
            guard transaction.dataSent else { return abort(transaction) }
            for index in transaction.outcomes.indices where transaction.outcomes[index] == nil {
                transaction.outcomes[index] = reply.kind == .completion ? .delivered(reply) : SMTPOutcome.classify(reply)
            }
            state = .ready
            return [.finished(envelope: transaction.index, outcomes: transaction.outcomes.map { $0! })] + readyActions()
        }
        state = .transaction(transaction)
        return actions
    }

    /// A reply that does not belong to the command it came after: the session ends, softly.
    private mutating func protocolError(_ reply: SMTPReply, step: String) -> [Action] {
        failAll("protocol error: \(reply) in reply to \(step)", permanent: nil)
    }

    /// Ends a transaction that did not deliver: every recipient without an outcome gets the MAIL refusal
    /// (or a soft failure), then RSET.
    private mutating func abort(_ transaction: Transaction) -> [Action] {
        // `mailFailure` is only ever a 4xx or 5xx, so this never makes a delivery.
        let fallback: SMTPOutcome = transaction.mailFailure.map(SMTPOutcome.classify) ?? .softFailure("transaction aborted")
        let outcomes = transaction.outcomes.map { $0 ?? fallback }
        state = .rset
        return [.finished(envelope: transaction.index, outcomes: outcomes), .send(line("RSET"))]
    }

    /// Ends the session: the message in progress and the queued ones fail (hard when the server refused
    /// the session permanently, soft otherwise), and the connection closes.
    private mutating func failAll(_ reason: String, permanent: SMTPReply?) -> [Action] {
        var actions: [Action] = []
        let outcome: SMTPOutcome = permanent.map(SMTPOutcome.classify) ?? .softFailure(reason)
        if case .transaction(let transaction) = state {
            actions.append(.finished(envelope: transaction.index, outcomes: transaction.outcomes.map { $0 ?? outcome }))
        }
        for (index, envelope) in queue { actions.append(.finished(envelope: index, outcomes: envelope.recipients.map { _ in outcome })) }
        queue.removeAll()
        state = .closed
        actions.append(.close)
        return actions
    }
}

/// The DATA payload: CRLF line ends, every line starting with `.` doubled (RFC 5321 §4.5.2), and the
/// terminating `.` line.
public enum SMTPData {
    public static func encode(_ message: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(message.count + message.count / 64 + 5)
        var atLineStart = true
        var index = 0
        while index < message.count {
            let byte = message[index]
            if atLineStart && byte == UInt8(ascii: ".") { output.append(UInt8(ascii: ".")) }
            if byte == 10 {
                if output.last != 13 { output.append(13) }
                output.append(10)
                atLineStart = true
            } else if byte == 13 {
                output.append(13)
                if index + 1 >= message.count || message[index + 1] != 10 { output.append(10); atLineStart = true }
            } else {
                output.append(byte)
                atLineStart = false
            }
            index += 1
        }
        if !(output.count >= 2 && output[output.count - 2] == 13 && output[output.count - 1] == 10) && !output.isEmpty { output += [13, 10] }
        output += Array(".\r\n".utf8)
        return output
    }
}
