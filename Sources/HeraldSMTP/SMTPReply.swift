/// An SMTP reply (RFC 5321 §4.2): a three-digit code, an optional enhanced status code (RFC 3463) and
/// the text of every line.
public struct SMTPReply: Hashable, Sendable, CustomStringConvertible {
    public var code: Int
    /// `class.subject.detail`, e.g. 5.1.1, when the server sent one.
    public var enhanced: EnhancedStatus?
    /// Text of each line, without the code and separator.
    public var lines: [String]

    public init(code: Int, enhanced: EnhancedStatus? = nil, lines: [String]) {
        self.code = code
        self.enhanced = enhanced
        self.lines = lines
    }

    /// 2xx or 3xx (a server delegate's "yes"; a client tells them apart with ``kind``).
    public var isPositive: Bool { (200..<400).contains(code) }
    /// 4xx: try again later.
    public var isTransient: Bool { (400..<500).contains(code) }
    /// 5xx: do not try again.
    public var isPermanent: Bool { (500..<600).contains(code) }

    /// What a reply says about the command it answers (RFC 5321 §4.2.1), for a client that must tell a
    /// finished command from an intermediate one.
    public enum Kind: Hashable, Sendable {
        /// 2xx: done.
        case completion
        /// 3xx: go on (354 after DATA).
        case intermediate
        /// 4xx or 5xx.
        case failure
        /// Anything else (1xx, or a code no server should send).
        case other
    }

    /// The reply's ``Kind``.
    public var kind: Kind {
        switch code {
        case 200..<300: .completion
        case 300..<400: .intermediate
        case 400..<600: .failure
        default: .other
        }
    }

    /// `250 2.0.0 OK …` on one line, for logs and events.
    public var description: String {
        "\(code) " + (enhanced.map { "\($0) " } ?? "") + lines.joined(separator: " / ")
    }

    /// EHLO keywords (upper case) with their parameters, from a 250 reply's lines after the first.
    public var extensions: [String: String] {
        var result: [String: String] = [:]
        for line in lines.dropFirst() {
            let parts = line.split(separator: " ", maxSplits: 1)
            guard let keyword = parts.first else { continue }
            result[keyword.uppercased()] = parts.count > 1 ? String(parts[1]) : ""
        }
        return result
    }
}

/// An RFC 3463 enhanced status code.
public struct EnhancedStatus: Hashable, Sendable, CustomStringConvertible {
    public var statusClass: Int
    public var subject: Int
    public var detail: Int

    public var description: String { "\(statusClass).\(subject).\(detail)" }

    public init(statusClass: Int, subject: Int, detail: Int) {
        self.statusClass = statusClass
        self.subject = subject
        self.detail = detail
    }

    /// Parses `c.s.d` at the start of a reply's text (class 2, 4 or 5).
    static func parse(_ text: Substring) -> (EnhancedStatus, Substring)? {
        let token = text.prefix { $0 != " " }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let c = Int(parts[0]), [2, 4, 5].contains(c), let s = Int(parts[1]), let d = Int(parts[2]),
              parts[1].count <= 3, parts[2].count <= 3 else { return nil }
        return (EnhancedStatus(statusClass: c, subject: s, detail: d), text.dropFirst(token.count).drop { $0 == " " })
    }
}

/// Why a server's bytes are not SMTP.
public enum SMTPProtocolError: Error, Hashable, Sendable {
    /// A line that does not start with a three-digit code and a separator.
    case malformedReply(String)
    /// Lines of one reply with different codes.
    case inconsistentCodes
    /// A reply line longer than allowed (RFC 5321 §4.5.3.1.5 says 512; we allow some slack).
    case lineTooLong
    /// A reply of more lines than allowed (a server that never ends its reply must not fill our memory).
    case tooManyLines
    /// The server said something we did not ask for, or the conversation went out of order.
    case unexpectedReply(SMTPReply)
}

/// Turns the server's byte stream into replies: lines end in CRLF (a bare LF is tolerated), `ddd-` lines
/// continue a reply and a `ddd ` line ends it.
public struct SMTPReplyParser: Sendable {
    private var buffer: [UInt8] = []
    private var pending: [(Int, Substring)] = []
    /// Longest accepted line (its bytes before the LF), however the bytes were read.
    public var maxLineLength = 4096
    /// Most lines in one reply (RFC 5321 sets no limit; EHLO replies have a dozen or two).
    public var maxLines = 1000

    public init() {}

    /// Adds bytes and returns the replies they complete.
    public mutating func feed(_ bytes: some Sequence<UInt8>) throws(SMTPProtocolError) -> [SMTPReply] {
        append(bytes)
        var replies: [SMTPReply] = []
        while let reply = try next() { replies.append(reply) }
        return replies
    }

    /// Adds bytes; take the replies they complete with ``next()``.
    public mutating func append(_ bytes: some Sequence<UInt8>) {
        buffer.append(contentsOf: bytes)
    }

    /// The next complete reply, if the bytes so far hold one. One at a time, so that a caller can stop
    /// reading where the protocol changes (after the 220 to STARTTLS, the rest is not for this parser).
    public mutating func next() throws(SMTPProtocolError) -> SMTPReply? {
        while let newline = buffer.firstIndex(of: 10) {
            // A line that came whole in one read is held to the limit too, not only one still arriving.
            guard newline <= maxLineLength else { throw .lineTooLong }
            var line = buffer[..<newline]
            if line.last == 13 { line = line.dropLast() }
            let text = String(decoding: line, as: UTF8.self)
            buffer.removeSubrange(...newline)
            if let reply = try accept(line: text) { return reply }
        }
        guard buffer.count <= maxLineLength else { throw .lineTooLong }
        return nil
    }

    private mutating func accept(line: String) throws(SMTPProtocolError) -> SMTPReply? {
        let bytes = Array(line.utf8)
        guard bytes.count >= 3, bytes[0...2].allSatisfy({ $0 >= 48 && $0 <= 57 }), let code = Int(String(line.prefix(3))),
              (200...599).contains(code) else { throw .malformedReply(line) }
        let separator = bytes.count > 3 ? bytes[3] : 32
        guard separator == 32 || separator == UInt8(ascii: "-") else { throw .malformedReply(line) }
        if let first = pending.first, first.0 != code { throw .inconsistentCodes }
        guard pending.count < maxLines else { throw .tooManyLines }
        let text = line.dropFirst(min(4, line.count))
        pending.append((code, text))
        guard separator == 32 else { return nil }
        defer { pending.removeAll() }
        var enhanced: EnhancedStatus?
        var lines: [String] = []
        for (index, (_, text)) in pending.enumerated() {
            if code >= 200, let (status, rest) = EnhancedStatus.parse(text), status.statusClass == code / 100 {
                if index == 0 { enhanced = status }
                lines.append(String(rest))
            } else {
                lines.append(String(text))
            }
        }
        return SMTPReply(code: code, enhanced: enhanced, lines: lines)
    }
}

extension SMTPReply {
    /// The reply as the server writes it: `250-…` lines and a last `250 …` line, the enhanced status on each.
    public var encoded: [UInt8] {
        var out: [UInt8] = []
        let status = enhanced.map { "\($0) " } ?? ""
        for (index, line) in lines.enumerated() {
            out.append(contentsOf: "\(code)\(index == lines.count - 1 ? " " : "-")\(index == 0 || code != 250 ? status : "")\(line)\r\n".utf8)
        }
        if lines.isEmpty { out.append(contentsOf: "\(code) \(status)\r\n".utf8) }
        return out
    }
}
