import Foundation

/// The server side of an SMTP session (RFC 5321) as a pure state machine, like the client's: the channel
/// handler feeds it lines and the answers of its delegate and performs the actions it returns. It speaks
/// EHLO/HELO, MAIL (with SIZE), RCPT, DATA (dot-unstuffing, a size limit), RSET, NOOP, VRFY, HELP, QUIT and,
/// when the server has a certificate, STARTTLS; PIPELINING works because lines are taken strictly in
/// order. Whether a recipient or a message is accepted is the delegate's decision, asked through
/// ``Action/checkRecipient(_:)`` and ``Action/deliver(_:)``.
public struct SMTPServerStateMachine: Sendable {
    public struct Settings: Sendable {
        /// The name in the greeting and the EHLO reply.
        public var hostname: String
        /// Largest message accepted (SIZE), bytes.
        public var maxMessageSize: Int
        /// Recipients per message.
        public var maxRecipients: Int
        /// Longest command line (RFC 5321 §4.5.3.1.4 says 512; some slack for parameters).
        public var maxCommandLength: Int
        /// Bad commands before the server hangs up.
        public var maxErrors: Int
        /// Whether STARTTLS is offered.
        public var tlsAvailable: Bool
        /// Whether AUTH (PLAIN, LOGIN) is offered.
        public var authAvailable = false
        /// Whether AUTH needs TLS first (STARTTLS or implicit TLS); only tests and loopback set this off.
        public var authRequiresTLS = true
        /// Submission: MAIL needs AUTH first, and its address must be the authenticated one.
        public var requireAuth = false
        /// The connection is TLS from the start (implicit TLS, port 465).
        public var startsSecured = false

        public init(hostname: String, maxMessageSize: Int = 1 << 20, maxRecipients: Int = 100, maxCommandLength: Int = 2048,
                    maxErrors: Int = 10, tlsAvailable: Bool = false) {
            self.hostname = hostname
            self.maxMessageSize = maxMessageSize
            self.maxRecipients = maxRecipients
            self.maxCommandLength = maxCommandLength
            self.maxErrors = maxErrors
            self.tlsAvailable = tlsAvailable
        }
    }

    /// A received message.
    public struct Envelope: Hashable, Sendable {
        /// The reverse path; empty for the null sender (`MAIL FROM:<>`).
        public var from: String
        public var recipients: [String]
        /// The message as received, CRLF lines, dots unstuffed, without the final dot.
        public var data: [UInt8]
        /// The EHLO/HELO name the client gave.
        public var clientName: String
        /// Who authenticated (AUTH), if anybody.
        public var authenticatedAs: String?
        /// What the delegate's answer to AUTH carried (e.g. which sender and password), if anything.
        public var credential: String? = nil
    }

    /// What the driver must do.
    public enum Action: Hashable, Sendable {
        /// Write this reply.
        case reply(SMTPReply)
        /// Write this reply, then close the connection.
        case replyAndClose(SMTPReply)
        /// Ask the delegate about a recipient and hand its answer to ``recipientChecked(_:)``.
        case checkRecipient(String)
        /// Hand the message to the delegate and its answer to ``delivered(_:)``.
        case deliver(Envelope)
        /// Write this reply (220), then start TLS; bytes that arrived after the STARTTLS line must be dropped.
        case startTLS(SMTPReply)
        /// Ask the delegate whether these credentials are good and hand its answer to ``authenticated(_:credential:)``.
        case authenticate(username: String, password: String)
        /// Ask the delegate whether the login still holds for MAIL FROM this address and hand its answer to
        /// ``senderChecked(_:)`` (only for a login whose answer carried a credential).
        case checkSender(String)
        /// Nothing to do (a data line taken in).
        case none
    }

    enum State: Hashable, Sendable {
        /// Waiting for EHLO/HELO.
        case greeted
        /// Between transactions.
        case ready
        /// After MAIL: the sender and the recipients accepted so far.
        case transaction(from: String, recipients: [String])
        /// Asking the delegate about a recipient.
        case checking(from: String, recipients: [String], candidate: String)
        /// Taking the message's lines.
        case data(from: String, recipients: [String], body: [UInt8], tooBig: Bool)
        /// Waiting for the delegate's answer to the message.
        case delivering
        /// AUTH PLAIN without an initial response: the next line is the response.
        case authPlain
        /// AUTH LOGIN: the next line is the user name, then the password.
        case authLoginUser
        case authLoginPassword(String)
        /// Waiting for the delegate's answer to the credentials of this user.
        case authenticating(String)
        /// Asking the delegate whether the login still holds for this MAIL.
        case checkingSender(String)
        case closed
    }

    var state: State = .greeted
    public let settings: Settings
    var clientName = ""
    var errors = 0
    public private(set) var isSecured = false
    /// Who authenticated on this connection.
    public internal(set) var authenticatedAs: String?
    /// What the delegate's answer to AUTH carried; with one, each MAIL asks the delegate first.
    public internal(set) var credential: String?

    public init(settings: Settings) {
        self.settings = settings
        self.isSecured = settings.startsSecured
    }

    /// Whether AUTH may be used now.
    var authOffered: Bool { settings.authAvailable && (isSecured || !settings.authRequiresTLS) }

    /// The greeting to send when the connection opens.
    public var greeting: SMTPReply {
        Self.reply(220, nil, "\(settings.hostname) ESMTP Herald")
    }

    /// Whether the machine waits for its delegate (lines that arrive meanwhile wait too).
    public var isWaiting: Bool {
        switch state {
        case .checking, .delivering, .authenticating, .checkingSender: return true
        default: return false
        }
    }

    /// The sender of the transaction under way.
    public var currentSender: String? {
        switch state {
        case .transaction(let from, _), .checking(let from, _, _), .data(let from, _, _, _): return from
        default: return nil
        }
    }

    /// Whether the session is in DATA (the driver allows longer lines there).
    public var isReadingData: Bool {
        if case .data = state { return true }
        return false
    }

    /// One line from the client, without its CRLF. `overlong` says the line was cut at the driver's limit.
    public mutating func receive(line: [UInt8], overlong: Bool = false) -> Action {
        if case .data(let from, let recipients, var body, var tooBig) = state {
            state = .delivering // drops the state's reference, so that the body grows in place
            if line == [UInt8(ascii: ".")] {
                if tooBig {
                    state = .ready
                    return .reply(Self.reply(552, (5, 3, 4), "Message too big (at most \(settings.maxMessageSize) bytes)"))
                }
                state = .delivering
                return .deliver(Envelope(from: from, recipients: recipients, data: body, clientName: clientName, authenticatedAs: authenticatedAs,
                                         credential: credential))
            }
            let content = line.first == UInt8(ascii: ".") ? line.dropFirst() : line[...]
            if overlong || body.count + content.count + 2 > settings.maxMessageSize {
                tooBig = true
                body = []
            } else {
                body.append(contentsOf: content)
                body.append(contentsOf: [13, 10])
            }
            state = .data(from: from, recipients: recipients, body: body, tooBig: tooBig)
            return .none
        }
        guard !overlong, line.count <= settings.maxCommandLength else {
            return error(Self.reply(500, (5, 5, 2), "Line too long"))
        }
        switch state {
        case .authPlain, .authLoginUser, .authLoginPassword:
            return authResponse(String(decoding: line, as: UTF8.self))
        default:
            break
        }
        let text = String(decoding: line, as: UTF8.self)
        let verb = text.prefix { $0 != " " }.uppercased()
        let argument = text.dropFirst(verb.count).drop { $0 == " " }
        switch verb {
        case "EHLO", "HELO":
            guard !argument.isEmpty else { return error(Self.reply(501, (5, 5, 4), "\(verb) needs a domain")) }
            // The name is echoed in the reply: a control character (a bare CR) there would end a reply line early.
            guard !argument.unicodeScalars.contains(where: { $0.value < 32 || $0.value == 127 }) else {
                return error(Self.reply(501, (5, 5, 2), "\(verb) argument has control characters"))
            }
            clientName = String(argument.prefix { $0 != " " })
            state = .ready
            guard verb == "EHLO" else { return .reply(Self.reply(250, nil, settings.hostname)) }
            var lines = ["\(settings.hostname) greets \(clientName)", "PIPELINING", "SIZE \(settings.maxMessageSize)", "8BITMIME",
                         "ENHANCEDSTATUSCODES"]
            if settings.tlsAvailable && !isSecured { lines.append("STARTTLS") }
            if authOffered { lines.append("AUTH PLAIN LOGIN") }
            return .reply(SMTPReply(code: 250, lines: lines))
        case "STARTTLS":
            guard settings.tlsAvailable, !isSecured else { return error(Self.reply(502, (5, 5, 1), "STARTTLS not available")) }
            guard argument.isEmpty else { return error(Self.reply(501, (5, 5, 4), "STARTTLS takes no parameters")) }
            guard state == .ready || state == .greeted else { return error(Self.reply(503, (5, 5, 1), "STARTTLS not inside a transaction")) }
            // RFC 3207 §4.2: the client starts over with EHLO.
            isSecured = true
            state = .greeted
            clientName = ""
            authenticatedAs = nil
            credential = nil
            return .startTLS(Self.reply(220, (2, 0, 0), "Ready to start TLS"))
        case "AUTH":
            return auth(argument)
        case "MAIL":
            guard state == .ready else {
                return error(Self.reply(503, (5, 5, 1), state == .greeted ? "Say EHLO first" : "Nested MAIL command"))
            }
            guard let (path, parameters) = Self.path(argument, keyword: "FROM:") else {
                return error(Self.reply(501, (5, 5, 2), "Syntax: MAIL FROM:<address>"))
            }
            if settings.requireAuth {
                guard let user = authenticatedAs else { return error(Self.reply(530, (5, 7, 0), "Authentication required")) }
                guard path.lowercased() == user.lowercased() else {
                    return error(Self.reply(553, (5, 7, 1), "Sender address rejected: not owned by the authenticated user \(user)"))
                }
            }
            for parameter in parameters {
                let pair = parameter.split(separator: "=", maxSplits: 1)
                if pair.first?.uppercased() == "SIZE", pair.count == 2 {
                    guard let size = Int(pair[1]) else { return error(Self.reply(501, (5, 5, 4), "Bad SIZE")) }
                    if size > settings.maxMessageSize {
                        return .reply(Self.reply(552, (5, 3, 4), "Message too big (at most \(settings.maxMessageSize) bytes)"))
                    }
                }
            }
            if authenticatedAs != nil, credential != nil {
                // The password may have changed since the login (or the sender gone): the delegate looks.
                state = .checkingSender(path)
                return .checkSender(path)
            }
            state = .transaction(from: path, recipients: [])
            return .reply(Self.reply(250, (2, 1, 0), "OK"))
        case "RCPT":
            guard case .transaction(let from, let recipients) = state else {
                return error(Self.reply(503, (5, 5, 1), "Need MAIL before RCPT"))
            }
            guard let (path, _) = Self.path(argument, keyword: "TO:"), !path.isEmpty else {
                return error(Self.reply(501, (5, 5, 2), "Syntax: RCPT TO:<address>"))
            }
            guard recipients.count < settings.maxRecipients else {
                return .reply(Self.reply(452, (4, 5, 3), "Too many recipients"))
            }
            state = .checking(from: from, recipients: recipients, candidate: path)
            return .checkRecipient(path)
        case "DATA":
            guard case .transaction(let from, let recipients) = state else {
                return error(Self.reply(503, (5, 5, 1), "Need MAIL before DATA"))
            }
            guard !recipients.isEmpty else {
                state = .ready
                return error(Self.reply(554, (5, 5, 1), "No valid recipients"))
            }
            state = .data(from: from, recipients: recipients, body: [], tooBig: false)
            return .reply(Self.reply(354, nil, "End data with <CR><LF>.<CR><LF>"))
        case "RSET":
            if state != .greeted { state = .ready }
            return .reply(Self.reply(250, (2, 0, 0), "OK"))
        case "NOOP":
            return .reply(Self.reply(250, (2, 0, 0), "OK"))
        case "VRFY":
            return .reply(Self.reply(252, (2, 5, 2), "Cannot VRFY user, but will accept message and attempt delivery"))
        case "HELP":
            return .reply(Self.reply(214, (2, 0, 0), "See RFC 5321"))
        case "QUIT":
            state = .closed
            return .replyAndClose(Self.reply(221, (2, 0, 0), "Bye"))
        default:
            return error(Self.reply(500, (5, 5, 2), "Command not recognized"))
        }
    }

    /// The delegate's answer about the recipient asked for: 2xx adds it.
    public mutating func recipientChecked(_ reply: SMTPReply) -> Action {
        guard case .checking(let from, var recipients, let candidate) = state else { return .none }
        if reply.isPositive { recipients.append(candidate) }
        state = .transaction(from: from, recipients: recipients)
        return .reply(reply)
    }

    /// The delegate's answer about MAIL after a login: 2xx opens the transaction; 421 or 535 (the login no
    /// longer holds) ends the session; another refusal leaves it where it was.
    public mutating func senderChecked(_ reply: SMTPReply) -> Action {
        guard case .checkingSender(let from) = state else { return .none }
        if reply.isPositive {
            state = .transaction(from: from, recipients: [])
            return .reply(reply)
        }
        if reply.code == 421 || reply.code == 535 {
            state = .closed
            authenticatedAs = nil
            credential = nil
            return .replyAndClose(reply)
        }
        state = .ready
        return error(reply)
    }

    /// The delegate's answer about the message: the reply to the final dot.
    public mutating func delivered(_ reply: SMTPReply) -> Action {
        guard state == .delivering else { return .none }
        state = .ready
        return .reply(reply)
    }

    /// The connection was idle too long.
    public mutating func timedOut() -> Action {
        state = .closed
        return .replyAndClose(Self.reply(421, (4, 4, 2), "\(settings.hostname) Timeout, closing connection"))
    }

    mutating func error(_ reply: SMTPReply) -> Action {
        errors += 1
        guard errors < settings.maxErrors else {
            state = .closed
            return .replyAndClose(Self.reply(421, (4, 7, 0), "Too many errors, closing connection"))
        }
        return .reply(reply)
    }

    /// `FROM:<path> params` (the keyword case-insensitive, a space after the colon tolerated): the path
    /// without its brackets and any source route, and the parameters.
    static func path(_ argument: Substring, keyword: String) -> (String, [Substring])? {
        guard argument.uppercased().hasPrefix(keyword) else { return nil }
        let rest = argument.dropFirst(keyword.count).drop { $0 == " " }
        guard rest.first == "<", let close = rest.firstIndex(of: ">") else { return nil }
        var path = rest[rest.index(after: rest.startIndex)..<close]
        if path.first == "@", let colon = path.firstIndex(of: ":") { path = path[path.index(after: colon)...] }
        guard !path.contains(where: { $0 == " " || $0 == "<" || $0 == ">" }) else { return nil }
        let parameters = rest[rest.index(after: close)...].split(separator: " ")
        return (String(path), parameters)
    }

    /// A one-line reply with an optional enhanced status.
    public static func reply(_ code: Int, _ enhanced: (Int, Int, Int)?, _ text: String) -> SMTPReply {
        SMTPReply(code: code, enhanced: enhanced.map { EnhancedStatus(statusClass: $0.0, subject: $0.1, detail: $0.2) }, lines: [text])
    }
}
