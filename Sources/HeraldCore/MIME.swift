import Foundation

/// RFC 5322 / MIME messages as Herald sends them: CRLF line ends, header fields folded under 78
/// characters where possible, non-ASCII display names and subjects as RFC 2047 encoded words, bodies
/// in quoted-printable (lines ≤ 76), text and HTML together as multipart/alternative.
public struct OutgoingMessage: Sendable {
    /// The envelope and header sender.
    public var from: MailAddress
    /// Display name for From (`fromAlias`, ≤ 15 characters in the API).
    public var fromName: String?
    /// The recipient.
    public var to: MailAddress
    /// The Reply-To as a message stores it (``ReplyToRule/resolve(_:name:senderReplyTo:status:)``): an address, or a
    /// mailbox with its display name.
    public var replyTo: String?
    public var subject: String
    public var html: String?
    public var text: String?
    /// `<id@domain>` without the brackets.
    public var messageID: String
    /// Herald's id of the message (`X-Herald-Message-Id`).
    public var heraldMessageID: String
    public var date: Date
    /// Further header fields in order (List-Unsubscribe, a tenant's own `X-…`).
    public var extraHeaders: [(name: String, value: String)]

    public init(from: MailAddress, fromName: String? = nil, to: MailAddress, replyTo: String? = nil, subject: String, html: String?,
                text: String?, messageID: String, heraldMessageID: String, date: Date, extraHeaders: [(name: String, value: String)] = []) {
        self.from = from
        self.fromName = fromName
        self.to = to
        self.replyTo = replyTo
        self.subject = subject
        self.html = html
        self.text = text
        self.messageID = messageID
        self.heraldMessageID = heraldMessageID
        self.date = date
        self.extraHeaders = extraHeaders
    }

    /// Header fields a tenant may not set itself (Herald writes them, or DKIM and routing depend on them).
    public static let reservedHeaders: Set<String> = [
        "from", "to", "cc", "bcc", "subject", "date", "message-id", "reply-to", "sender", "mime-version", "content-type",
        "content-transfer-encoding", "dkim-signature", "return-path", "received", "x-herald-message-id", "list-unsubscribe",
        "list-unsubscribe-post",
    ]

    /// Checks a tenant's extra header: a field name of printable ASCII without `:`, not reserved, and a value
    /// on one line (no CR or LF, at most 998 bytes).
    public static func validateExtraHeader(name: String, value: String, field: String = "headers") throws(HeraldError) {
        guard (1...76).contains(name.utf8.count), name.utf8.allSatisfy({ $0 > 32 && $0 < 127 && $0 != UInt8(ascii: ":") }) else {
            throw .validation("\(name) is not a valid header field name.", field: field)
        }
        guard !reservedHeaders.contains(name.lowercased()) else { throw .validation("The header \(name) is set by Herald.", field: field) }
        guard !value.utf8.contains(where: { $0 == 13 || $0 == 10 }), value.utf8.count <= 998 else {
            throw .validation("The value of header \(name) must be one line of at most 998 bytes.", field: field)
        }
    }

    /// The message as bytes, with `boundary` for the multipart (random when nil).
    public func render(boundary: String? = nil) -> [UInt8] {
        var head: [String] = []
        head.append(MIME.field("Date", MIME.rfc5322Date(date)))
        head.append(MIME.field("From", MIME.mailbox(from, name: fromName)))
        head.append(MIME.field("To", "<\(to)>"))
        if let replyTo { head.append(MIME.field("Reply-To", ReplyToRule.field(replyTo))) }
        head.append(MIME.field("Subject", MIME.encodeIfNeeded(subject)))
        head.append(MIME.field("Message-ID", "<\(messageID)>"))
        head.append(MIME.field("MIME-Version", "1.0"))
        head.append(MIME.field("X-Herald-Message-Id", heraldMessageID))
        for header in extraHeaders { head.append(MIME.field(header.name, header.value)) }
        var body: String
        let parts = [("text/plain", text), ("text/html", html)].compactMap { type, content in content.map { (type, $0) } }
        if parts.count == 2 {
            var generator = RandomPool.Generator()
            let boundary = boundary ?? "herald-" + AccessKeyGenerator.randomString(count: 24, using: &generator)
            head.append(MIME.field("Content-Type", "multipart/alternative; boundary=\"\(boundary)\""))
            body = ""
            for (type, content) in parts {
                body += "--\(boundary)\r\nContent-Type: \(type); charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
                body += MIME.quotedPrintable(content) + "\r\n"
            }
            body += "--\(boundary)--\r\n"
        } else {
            let (type, content) = parts.first ?? ("text/plain", "")
            head.append(MIME.field("Content-Type", "\(type); charset=utf-8"))
            head.append(MIME.field("Content-Transfer-Encoding", "quoted-printable"))
            body = MIME.quotedPrintable(content) + "\r\n"
        }
        return Array((head.joined() + "\r\n" + body).utf8)
    }
}

/// Encoding helpers.
public enum MIME {
    /// A message's header fields in order, names lower case, folded values unfolded (up to the first empty
    /// line; the body is not read).
    public static func headerFields(_ message: [UInt8]) -> [(name: String, value: String)] {
        var fields: [(name: String, value: String)] = []
        var start = 0
        while start < message.count {
            let end = message[start...].firstIndex(of: 10) ?? message.count
            var line = message[start..<end]
            if line.last == 13 { line = line.dropLast() }
            start = end + 1
            if line.isEmpty { break }
            if line.first == 32 || line.first == 9 {
                // A continuation line: folding whitespace joins it to the field before, with one space, and only
                // between words (an empty first line or a blank continuation must leave no space at either end).
                let continuation = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespaces)
                if !fields.isEmpty, !continuation.isEmpty {
                    let last = fields.count - 1
                    fields[last].value += (fields[last].value.isEmpty ? "" : " ") + continuation
                }
            } else if let colon = line.firstIndex(of: UInt8(ascii: ":")) {
                let name = String(decoding: line[line.startIndex..<colon], as: UTF8.self).trimmingCharacters(in: .whitespaces).lowercased()
                fields.append((name, String(decoding: line[line.index(after: colon)...], as: UTF8.self).trimmingCharacters(in: .whitespaces)))
            }
        }
        return fields
    }

    /// A submitted message with `fields` added on top, each only where the message has no field of that name.
    public static func prepending(_ fields: [(String, String)], to message: [UInt8]) -> [UInt8] {
        let present = Set(headerFields(message).map(\.name))
        var out: [UInt8] = []
        for (name, value) in fields where !present.contains(name.lowercased()) {
            out.append(contentsOf: field(name, value).utf8)
        }
        return out + message
    }

    /// `Name: value\r\n`, folded at spaces to keep lines under 78 characters where the value allows.
    public static func field(_ name: String, _ value: String) -> String {
        var lines: [String] = []
        var line = name + ":"
        for word in value.split(separator: " ", omittingEmptySubsequences: false) {
            if line.utf8.count + 1 + word.utf8.count > 78 && line.utf8.count > name.utf8.count + 1 {
                lines.append(line)
                line = " " + word
            } else {
                line += " " + word
            }
        }
        lines.append(line)
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    /// `Tue, 25 Nov 2026 10:00:00 +0000`, in UTC. Computed directly (days → civil date, after Howard
    /// Hinnant's algorithm): a `DateFormatter` per message cost more than the rest of building it.
    public static func rfc5322Date(_ date: Date) -> String {
        let seconds = Int(date.timeIntervalSince1970.rounded(.down))
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let second = seconds - days * 86_400
        let (year, month, day) = CivilDate.of(daysSinceEpoch: days)
        let weekday = ((days % 7) + 11) % 7  // 1970-01-01 was a Thursday
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : String(value) }
        return "\(weekdayNames[weekday]), \(two(day)) \(monthNames[month - 1]) \(year) \(two(second / 3_600)):\(two(second / 60 % 60)):\(two(second % 60)) +0000"
    }

    private static let weekdayNames = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let monthNames = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// `"Name" <addr>` (a quoted string, or encoded words for non-ASCII), or `<addr>`.
    public static func mailbox(_ address: MailAddress, name: String?) -> String {
        guard let name, !name.isEmpty else { return "<\(address)>" }
        if name.unicodeScalars.allSatisfy({ $0.isASCII && $0.value >= 0x20 && $0.value < 0x7F }) {
            let quoted = name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            return "\"\(quoted)\" <\(address)>"
        }
        return encodedWords(name) + " <\(address)>"
    }

    /// The text as is when it is printable ASCII, else as RFC 2047 encoded words.
    public static func encodeIfNeeded(_ text: String) -> String {
        if text.unicodeScalars.allSatisfy({ $0.isASCII && $0.value >= 0x20 && $0.value < 0x7F }) { return text }
        return encodedWords(text)
    }

    /// `=?UTF-8?B?…?=` words of at most 64 characters, split between characters (never inside one),
    /// separated by spaces (so the field folds between them).
    public static func encodedWords(_ text: String) -> String {
        var words: [String] = []
        var chunk: [UInt8] = []
        for character in text {
            let bytes = Array(String(character).utf8)
            // 12 characters of =?UTF-8?B??=; 39 bytes of UTF-8 become 52 of base64, so a word fits a folded
            // line next to the longest field name Herald encodes ("Subject: ").
            if chunk.count + bytes.count > 39 {
                words.append("=?UTF-8?B?\(Data(chunk).base64EncodedString())?=")
                chunk.removeAll()
            }
            chunk += bytes
        }
        if !chunk.isEmpty || words.isEmpty { words.append("=?UTF-8?B?\(Data(chunk).base64EncodedString())?=") }
        return words.joined(separator: " ")
    }

    /// Quoted-printable (RFC 2045 §6.7) of UTF-8 text: line breaks become CRLF hard breaks, lines are
    /// soft-broken at 76, `=` and non-ASCII are encoded, and so is white space at the end of a line.
    public static func quotedPrintable(_ text: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var output: [UInt8] = []
        output.reserveCapacity(text.utf8.count + text.utf8.count / 8)
        let normalized = text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
        let lines = normalized.split(separator: "\n", omittingEmptySubsequences: false)
        for (lineIndex, line) in lines.enumerated() {
            var length = 0
            let bytes = Array(line.utf8)
            for (index, byte) in bytes.enumerated() {
                let isLast = index == bytes.count - 1
                let literal = (byte >= 33 && byte <= 126 && byte != UInt8(ascii: "=")) || ((byte == 32 || byte == 9) && !isLast)
                // A leading "." is encoded too, so that no line of the body can look like SMTP's end of data.
                let encode = !literal || (length == 0 && byte == UInt8(ascii: "."))
                let width = encode ? 3 : 1
                if length + width > 75 {
                    output += [UInt8(ascii: "="), 13, 10]
                    length = 0
                }
                if encode {
                    output += [UInt8(ascii: "="), hex[Int(byte >> 4)], hex[Int(byte & 15)]]
                } else {
                    output.append(byte)
                }
                length += width
            }
            if lineIndex < lines.count - 1 { output += [13, 10] }
        }
        return String(decoding: output, as: UTF8.self)
    }
}
