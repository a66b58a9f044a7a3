import Foundation

/// The header section of a message submitted over SMTP, field by field with the bytes each occupies, so
/// that fields can be checked as a reader will see them and removed without touching the rest (the DKIM
/// signature is made later, over what remains).
public struct SubmittedHeader: Sendable {
    /// One field: its name in lower case, its value unfolded and trimmed, and its bytes (continuation lines
    /// and the final CRLF included).
    public struct Field: Sendable, Equatable {
        public var name: String
        public var value: String
        public var bytes: Range<Int>
    }

    public var fields: [Field]

    /// Fields a submitting client must not set: Bcc would go to every recipient, and X-Herald-Message-Id is
    /// Herald's own (the delivery worker adds it only where there is none).
    public static let removedFields: Set<String> = ["bcc", "resent-bcc", "x-herald-message-id"]

    /// Fields RFC 5322 §3.6 allows at most once: a second one is read differently by different programs
    /// (which Subject is recorded, which From is signed and shown).
    public static let singleFields: Set<String> = ["date", "from", "sender", "reply-to", "to", "cc", "message-id", "in-reply-to", "references",
                                                  "subject"]

    /// Parses the header section: every line a field (`Name: value`) or its continuation, in UTF-8, without
    /// control characters other than TAB (a NUL or a lone CR would reach the database or a reader's parser).
    public init(_ message: [UInt8]) throws(HeraldError) {
        fields = []
        var start = 0
        var written = "" // the current field's name as written, for messages
        while start < message.count {
            let newline = message[start...].firstIndex(of: 10)
            let end = newline.map { $0 + 1 } ?? message.count
            var line = message[start..<(newline ?? message.count)]
            if line.last == 13 { line = line.dropLast() }
            if line.isEmpty { break }
            if line.first == 32 || line.first == 9 {
                guard !fields.isEmpty else {
                    throw Self.malformed("The header section starts with a continuation line.")
                }
                try Self.check(line, field: written)
                fields[fields.count - 1].value += String(decoding: line, as: UTF8.self)
                fields[fields.count - 1].bytes = fields[fields.count - 1].bytes.lowerBound..<end
            } else {
                guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
                    throw Self.malformed("A header line has no field name and colon (or the blank line before the body is missing).")
                }
                var nameBytes = line[line.startIndex..<colon]
                while nameBytes.last == 32 || nameBytes.last == 9 { nameBytes = nameBytes.dropLast() } // RFC 5322's obsolete "Name :"
                guard !nameBytes.isEmpty, nameBytes.allSatisfy({ (33...126).contains($0) }) else {
                    throw Self.malformed("A header field name must be printable ASCII without spaces.")
                }
                let name = String(decoding: nameBytes, as: UTF8.self)
                written = name
                try Self.check(line, field: name)
                fields.append(Field(name: name.lowercased(), value: String(decoding: line[line.index(after: colon)...], as: UTF8.self),
                                    bytes: start..<end))
            }
            start = end
        }
        for index in fields.indices { fields[index].value = fields[index].value.trimmingCharacters(in: .whitespaces) }
    }

    /// The values of the fields named `name` (lower case).
    public func values(_ name: String) -> [String] {
        fields.filter { $0.name == name }.map(\.value)
    }

    /// `message` without the fields of ``removedFields``.
    public func removingForbiddenFields(from message: [UInt8]) -> [UInt8] {
        let removed = fields.filter { Self.removedFields.contains($0.name) }.map(\.bytes)
        guard !removed.isEmpty else { return message }
        var output: [UInt8] = []
        output.reserveCapacity(message.count)
        var position = 0
        for range in removed {
            output.append(contentsOf: message[position..<range.lowerBound])
            position = range.upperBound
        }
        output.append(contentsOf: message[position...])
        return output
    }

    static func malformed(_ message: String) -> HeraldError {
        HeraldError(code: "InvalidHeader.Malformed", kind: .invalid, message: message, field: "header")
    }

    /// Refuses control characters (TAB aside) and bytes that are not UTF-8 in one line of a field.
    static func check(_ line: ArraySlice<UInt8>, field: String) throws(HeraldError) {
        if line.contains(where: { ($0 < 32 && $0 != 9) || $0 == 127 }) {
            throw .validation("The \(field) field contains a control character.", field: field)
        }
        if line.contains(where: { $0 >= 128 }), String(validating: line, as: UTF8.self) == nil {
            throw .validation("The \(field) field is not valid UTF-8.", field: field)
        }
    }
}
