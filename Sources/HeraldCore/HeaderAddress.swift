import Foundation

/// One mailbox of an address header field (RFC 5322 §3.4): `Name <local@domain>` or `local@domain`.
public struct HeaderMailbox: Sendable, Equatable {
    /// The display name as written (quoted strings unquoted, encoded words not decoded); nil when none.
    public var displayName: String?
    /// `local@domain` as written (a quoted local part keeps its quotes).
    public var address: String
    /// The text of the comments around the mailbox: some mail programs show them, so they are checked like the name.
    public var comments: [String]

    public init(displayName: String? = nil, address: String, comments: [String] = []) {
        self.displayName = displayName
        self.address = address
        self.comments = comments
    }
}

/// An entry of an address list: a mailbox or a named group of mailboxes.
public enum HeaderAddress: Sendable, Equatable {
    case mailbox(HeaderMailbox)
    case group(name: String, members: [HeaderMailbox])
}

/// Why an address field could not be parsed.
public struct HeaderAddressError: Error, Sendable, Equatable {
    public var reason: String
}

/// A strict RFC 5322 address-list parser (with RFC 6532's UTF-8): comments (nested), quoted strings and
/// quoted pairs, groups, display names with dots (the common obsolete phrase). Other obsolete forms that
/// mail programs read differently — source routes, empty list elements, comments or spaces inside a
/// dot-atom, domain literals — are refused, because a field that two readers parse differently is how
/// a From check is bypassed.
public enum HeaderAddressParser {
    /// The entries of an address list (`From`, `Sender`, `Reply-To`, `To`, …), the value unfolded.
    public static func parse(_ value: String) throws(HeaderAddressError) -> [HeaderAddress] {
        var parser = Parser(Array(value.unicodeScalars))
        return try parser.addressList()
    }

    /// Decodes RFC 2047 encoded words (`=?charset?B|Q?text?=`) for checking what a reader will see; charsets
    /// other than UTF-8 are read byte by byte (ASCII stays ASCII in every charset mail uses, except UTF-16/32,
    /// which answer nil: such a name cannot be checked).
    public static func decodeEncodedWords(_ text: String) -> String? {
        var output = ""
        var rest = Substring(text)
        while let start = rest.range(of: "=?") {
            output += rest[..<start.lowerBound]
            let after = rest[start.upperBound...]
            let parts = after.split(separator: "?", maxSplits: 3, omittingEmptySubsequences: false)
            guard parts.count == 4, parts[3].hasPrefix("="), ["B", "Q"].contains(parts[1].uppercased()) else {
                output += "=?"
                rest = after
                continue
            }
            let charset = parts[0].lowercased().split(separator: "*").first.map(String.init) ?? ""
            if charset.hasPrefix("utf-16") || charset.hasPrefix("utf-32") || charset.hasPrefix("ucs") { return nil }
            var bytes: [UInt8]
            if parts[1].uppercased() == "B" {
                var encoded = String(parts[2])
                while encoded.count % 4 != 0 { encoded += "=" }
                bytes = Data(base64Encoded: encoded).map(Array.init) ?? Array(parts[2].utf8)
            } else {
                bytes = []
                var scalars = Array(parts[2].utf8)[...]
                while let byte = scalars.popFirst() {
                    if byte == UInt8(ascii: "_") {
                        bytes.append(32)
                    } else if byte == UInt8(ascii: "="), scalars.count >= 2,
                              let value = UInt8(String(decoding: scalars.prefix(2), as: UTF8.self), radix: 16) {
                        bytes.append(value)
                        scalars = scalars.dropFirst(2)
                    } else {
                        bytes.append(byte)
                    }
                }
            }
            if charset == "utf-8" || charset == "utf8", let decoded = String(validating: bytes, as: UTF8.self) {
                output += decoded
            } else {
                output += String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) }))
            }
            rest = parts[3].dropFirst()
        }
        return output + rest
    }

    /// The domains of the address-like words (`x@y.z`) in a text a reader sees (display name, comments),
    /// after decoding encoded words and folding compatibility forms (a full-width ＠ is an @); nil when the
    /// text cannot be checked.
    public static func addressDomains(in text: String) -> [String]? {
        guard let decoded = decodeEncodedWords(text) else { return nil }
        let folded = decoded.precomposedStringWithCompatibilityMapping.unicodeScalars
        let stops = Set("<>()[]\\\",;: \t\r\n'`".unicodeScalars)
        var domains: [String] = []
        var index = folded.startIndex
        while let at = folded[index...].firstIndex(of: "@") {
            let domain = String(String.UnicodeScalarView(folded[folded.index(after: at)...].prefix { !stops.contains($0) && $0 != "@" }))
            let trimmed = domain.trimmingCharacters(in: CharacterSet(charactersIn: ".")).lowercased()
            if trimmed.contains(".") { domains.append(trimmed) }
            index = folded.index(after: at)
        }
        return domains
    }

    struct Parser {
        let text: [Unicode.Scalar]
        var position = 0
        /// Comments seen since the last mailbox was finished.
        var comments: [String] = []

        init(_ text: [Unicode.Scalar]) {
            self.text = text
        }

        var current: Unicode.Scalar? { position < text.count ? text[position] : nil }

        static let atextASCII = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~".unicodeScalars)

        static func isAtext(_ scalar: Unicode.Scalar) -> Bool {
            // RFC 6532: UTF-8 beyond ASCII is atext too; control characters are refused earlier, but not here either.
            atextASCII.contains(scalar) || (scalar.value >= 0x80 && scalar.properties.generalCategory != .control)
        }

        func fail(_ reason: String) -> HeaderAddressError { HeaderAddressError(reason: reason) }

        /// Skips folding white space and comments, keeping the comments' text.
        mutating func skipCFWS() throws(HeaderAddressError) {
            while let scalar = current {
                if scalar == " " || scalar == "\t" || scalar == "\r" || scalar == "\n" {
                    position += 1
                } else if scalar == "(" {
                    comments.append(try comment())
                } else {
                    return
                }
            }
        }

        mutating func comment() throws(HeaderAddressError) -> String {
            var depth = 0
            var content = ""
            repeat {
                guard let scalar = current else { throw fail("an unclosed comment") }
                position += 1
                switch scalar {
                case "(":
                    if depth > 0 { content.unicodeScalars.append(scalar) }
                    depth += 1
                case ")":
                    depth -= 1
                    if depth > 0 { content.unicodeScalars.append(scalar) }
                case "\\":
                    guard let escaped = current else { throw fail("an unclosed comment") }
                    position += 1
                    content.unicodeScalars.append(escaped)
                default:
                    content.unicodeScalars.append(scalar)
                }
            } while depth > 0
            return content
        }

        mutating func quotedString() throws(HeaderAddressError) -> String {
            position += 1
            var content = ""
            while true {
                guard let scalar = current else { throw fail("an unclosed quoted string") }
                position += 1
                if scalar == "\"" { return content }
                if scalar == "\\" {
                    guard let escaped = current else { throw fail("an unclosed quoted string") }
                    position += 1
                    content.unicodeScalars.append(escaped)
                } else if scalar != "\r" && scalar != "\n" {
                    content.unicodeScalars.append(scalar)
                }
            }
        }

        mutating func atom() -> String? {
            let start = position
            while let scalar = current, Self.isAtext(scalar) { position += 1 }
            return start == position ? nil : String(String.UnicodeScalarView(text[start..<position]))
        }

        /// `address *("," address)`, at least one, no empty elements.
        mutating func addressList() throws(HeaderAddressError) -> [HeaderAddress] {
            var addresses: [HeaderAddress] = []
            while true {
                comments = [] // the comments before an entry are its own
                try skipCFWS()
                guard current != nil, current != "," else { throw fail(addresses.isEmpty ? "no address" : "an empty list element") }
                addresses.append(try address())
                try skipCFWS()
                guard let scalar = current else { return addresses }
                guard scalar == "," else { throw fail("\"\(scalar)\" where a comma or the end was expected") }
                position += 1
            }
        }

        mutating func address() throws(HeaderAddressError) -> HeaderAddress {
            let start = position, before = comments
            // An addr-spec alone, when what follows it ends the entry; else a display name with <…> or a group.
            if let mailbox = try? addrSpecMailbox(), current == nil || current == "," {
                return .mailbox(mailbox)
            }
            position = start
            comments = before
            let name = try phrase()
            switch current {
            case "<"?:
                return .mailbox(try angleAddress(displayName: name))
            case ":"?:
                guard let name else { throw fail("a group without a name") }
                position += 1
                var members: [HeaderMailbox] = []
                try skipCFWS()
                if current != ";" {
                    while true {
                        members.append(try mailbox())
                        comments = []
                        try skipCFWS()
                        guard current == "," else { break }
                        position += 1
                    }
                }
                guard current == ";" else { throw fail("a group that does not end with \";\"") }
                position += 1
                comments = []
                return .group(name: name, members: members)
            default:
                throw fail("an address that is neither local@domain nor Name <local@domain>")
            }
        }

        /// A mailbox inside a group.
        mutating func mailbox() throws(HeaderAddressError) -> HeaderMailbox {
            let start = position, before = comments
            if let mailbox = try? addrSpecMailbox(), current == nil || current == "," || current == ";" {
                return mailbox
            }
            position = start
            comments = before
            let name = try phrase()
            guard current == "<" else { throw fail("a group member that is not a mailbox") }
            return try angleAddress(displayName: name)
        }

        mutating func addrSpecMailbox() throws(HeaderAddressError) -> HeaderMailbox {
            let address = try addrSpec()
            try skipCFWS()
            defer { comments = [] }
            return HeaderMailbox(displayName: nil, address: address, comments: comments)
        }

        /// Words (atoms and quoted strings) with the obsolete dots between them, one space where white space or
        /// comments separated them (an encoded word with a dot stays whole); nil when there is none.
        mutating func phrase() throws(HeaderAddressError) -> String? {
            var name = ""
            var empty = true
            while true {
                let before = position
                try skipCFWS()
                if !empty && position > before { name += " " }
                if current == "\"" {
                    name += try quotedString()
                } else if let atom = atom() {
                    name += atom
                } else if current == ".", !empty {
                    position += 1
                    name += "."
                    continue
                } else {
                    break
                }
                empty = false
            }
            return empty ? nil : name.trimmingCharacters(in: .whitespaces)
        }

        mutating func angleAddress(displayName: String?) throws(HeaderAddressError) -> HeaderMailbox {
            position += 1
            try skipCFWS()
            guard current != "@" else { throw fail("a source route (obsolete)") }
            guard current != ">" else { throw fail("an empty address <>") }
            let address = try addrSpec()
            guard current == ">" else { throw fail("an address without its closing \">\"") }
            position += 1
            try skipCFWS()
            defer { comments = [] }
            return HeaderMailbox(displayName: displayName, address: address, comments: comments)
        }

        /// `local@domain`: a dot-atom or quoted local part and a dot-atom domain, comments allowed only around them.
        mutating func addrSpec() throws(HeaderAddressError) -> String {
            try skipCFWS()
            let local: String
            if current == "\"" {
                local = "\"" + (try quotedString()).replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
            } else {
                local = try dotAtomText("local part")
            }
            try skipCFWS()
            guard current == "@" else { throw fail("an address without @") }
            position += 1
            try skipCFWS()
            guard current != "[" else { throw fail("a domain literal") }
            let domain = try dotAtomText("domain")
            try skipCFWS()
            return local + "@" + domain
        }

        mutating func dotAtomText(_ what: String) throws(HeaderAddressError) -> String {
            guard var text = atom() else { throw fail("an empty \(what)") }
            while current == "." {
                position += 1
                guard let next = atom() else { throw fail("a \(what) with an empty dot-separated part") }
                text += "." + next
            }
            return text
        }
    }
}
