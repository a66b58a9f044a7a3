import Foundation

/// A `multipart/form-data` body (RFC 7578) as a browser sends a form with a file input: the boundary from the
/// request's Content-Type, then each part's `Content-Disposition: form-data; name="…"; filename="…"`, its
/// Content-Type and its bytes exactly as sent. Pure and bounded: the body's size is the caller's limit (it is read
/// before), the number of parts and the size of each part's header are limited here, and bad input of any kind is
/// a ``HeraldError`` (validation), never a crash.
public struct MultipartForm: Sendable, Equatable {
    /// One part of the form.
    public struct Part: Sendable, Equatable {
        /// The form field's name.
        public var name: String
        /// The file's name as the browser gave it (a file input); nil for a plain field.
        public var filename: String?
        /// The part's Content-Type, as sent (nil when absent).
        public var contentType: String?
        /// The part's bytes.
        public var body: [UInt8]

        public init(name: String, filename: String? = nil, contentType: String? = nil, body: [UInt8]) {
            self.name = name
            self.filename = filename
            self.contentType = contentType
            self.body = body
        }

        /// The bytes as text (broken UTF-8 repaired).
        public var text: String { String(decoding: body, as: UTF8.self) }
    }

    /// What a form may hold.
    public struct Limits: Sendable, Equatable {
        /// Most parts.
        public var parts: Int
        /// Most bytes of one part's header section.
        public var headerBytes: Int

        public init(parts: Int = 32, headerBytes: Int = 8 * 1024) {
            self.parts = parts
            self.headerBytes = headerBytes
        }
    }

    /// The parts in the order they came.
    public var parts: [Part]

    public init(parts: [Part]) {
        self.parts = parts
    }

    /// The first part named `name`.
    public subscript(_ name: String) -> Part? { parts.first { $0.name == name } }

    /// The text of the first part named `name`.
    public func value(_ name: String) -> String? { self[name]?.text }

    /// The boundary of a `multipart/form-data` Content-Type (1 to 70 characters of RFC 2046's `bchars`, not
    /// ending in a space); nil for another media type or a missing or invalid boundary.
    public static func boundary(contentType: String) -> String? {
        let (type, parameters) = Self.headerValue(Array(contentType.utf8))
        guard type == "multipart/form-data", let boundary = parameters["boundary"] else { return nil }
        guard (1...70).contains(boundary.utf8.count), boundary.utf8.last != UInt8(ascii: " "),
              boundary.utf8.allSatisfy(Self.isBoundaryByte) else { return nil }
        return boundary
    }

    /// Parses `body`, the form's boundary `boundary`; throws a validation error for anything malformed.
    public static func parse(_ body: [UInt8], boundary: String, limits: Limits = Limits()) throws(HeraldError) -> MultipartForm {
        let invalid = HeraldError.validation("The upload is not a valid multipart/form-data body.", field: "body")
        guard (1...70).contains(boundary.utf8.count), boundary.utf8.allSatisfy(Self.isBoundaryByte) else { throw invalid }
        let dash = UInt8(ascii: "-"), cr: UInt8 = 13, lf: UInt8 = 10
        // Every delimiter after the first is CRLF "--" boundary; the first may open the body (no preamble).
        let delimiter: [UInt8] = [cr, lf, dash, dash] + Array(boundary.utf8)
        var position: Int
        if body.count >= delimiter.count - 2, Self.matches(body, at: 0, delimiter[2...]) {
            position = delimiter.count - 2
        } else if let found = Self.find(delimiter, in: body, from: 0) {
            position = found + delimiter.count
        } else {
            throw invalid
        }
        var parts: [Part] = []
        while true {
            // After a delimiter: "--" closes the body; otherwise optional padding, then CRLF and the next part.
            if position + 1 < body.count, body[position] == dash, body[position + 1] == dash { break }
            while position < body.count, body[position] == UInt8(ascii: " ") || body[position] == 9 { position += 1 }
            guard position + 1 < body.count, body[position] == cr, body[position + 1] == lf else { throw invalid }
            position += 2
            guard parts.count < limits.parts else {
                throw HeraldError.validation("The upload has more than \(limits.parts) parts.", field: "body")
            }
            // The part's header section ends at the first empty line.
            let headerEnd: Int
            if position + 1 < body.count, body[position] == cr, body[position + 1] == lf {
                headerEnd = position
            } else {
                let limit = min(body.count, position + limits.headerBytes + 4)
                guard let end = Self.find([cr, lf, cr, lf], in: body, from: position, before: limit) else {
                    throw HeraldError.validation("A part of the upload has no end to its header (or one larger than \(limits.headerBytes) bytes).",
                                                 field: "body")
                }
                headerEnd = end + 2
            }
            guard headerEnd - position <= limits.headerBytes else {
                throw HeraldError.validation("A part of the upload has a header larger than \(limits.headerBytes) bytes.", field: "body")
            }
            let header = Self.headerFields(body[position..<headerEnd])
            let contentStart = headerEnd + 2
            guard let contentEnd = Self.find(delimiter, in: body, from: contentStart) else { throw invalid }
            guard let disposition = header["content-disposition"] else { throw invalid }
            let (kind, parameters) = Self.headerValue(disposition)
            guard kind == "form-data", let name = parameters["name"] else { throw invalid }
            parts.append(Part(name: name, filename: parameters["filename"],
                              contentType: header["content-type"].map { String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespaces) },
                              body: Array(body[contentStart..<contentEnd])))
            position = contentEnd + delimiter.count
        }
        return MultipartForm(parts: parts)
    }

    // MARK: Reading

    /// RFC 2046 `bchars`: digits, letters, `'()+_,-./:=?` and space.
    static func isBoundaryByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"): true
        default: Array("'()+_,-./:=? ".utf8).contains(byte)
        }
    }

    /// Whether `pattern` is in `bytes` at `index`.
    static func matches(_ bytes: [UInt8], at index: Int, _ pattern: ArraySlice<UInt8>) -> Bool {
        guard index >= 0, index + pattern.count <= bytes.count else { return false }
        var offset = 0
        for byte in pattern {
            if bytes[index + offset] != byte { return false }
            offset += 1
        }
        return true
    }

    /// The first index of `pattern` (which starts with CR and holds no other CR) in `bytes` from `start` on, the
    /// match ending at or before `end`: linear, as a failed comparison stops at the next CR at the latest.
    static func find(_ pattern: [UInt8], in bytes: [UInt8], from start: Int, before end: Int? = nil) -> Int? {
        let end = min(end ?? bytes.count, bytes.count)
        guard let first = pattern.first, start >= 0, pattern.count <= end - start else { return nil }
        var index = start
        let last = end - pattern.count
        while index <= last {
            if bytes[index] == first, Self.matches(bytes, at: index, pattern[...]) { return index }
            index += 1
        }
        return nil
    }

    /// A part's header fields by lower-case name (the first of a name wins; folded lines joined), values as bytes.
    static func headerFields(_ section: ArraySlice<UInt8>) -> [String: [UInt8]] {
        var fields: [String: [UInt8]] = [:]
        var lastName: String?
        var lines: [ArraySlice<UInt8>] = []
        var lineStart = section.startIndex
        var index = section.startIndex
        while index < section.endIndex {
            if section[index] == 10 {
                var lineEnd = index
                if lineEnd > lineStart, section[lineEnd - 1] == 13 { lineEnd -= 1 }
                lines.append(section[lineStart..<lineEnd])
                lineStart = index + 1
            }
            index += 1
        }
        if lineStart < section.endIndex { lines.append(section[lineStart..<section.endIndex]) }
        for line in lines where !line.isEmpty {
            if line.first == 32 || line.first == 9 {
                if let lastName, fields[lastName] != nil { fields[lastName]! += [32] + line.drop(while: { $0 == 32 || $0 == 9 }) }
                continue
            }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { lastName = nil; continue }
            let name = String(decoding: line[line.startIndex..<colon], as: UTF8.self).trimmingCharacters(in: .whitespaces).lowercased()
            if fields[name] == nil {
                fields[name] = Array(line[(colon + 1)...])
                lastName = name
            } else {
                lastName = nil
            }
        }
        return fields
    }

    /// A header value `token; name=value; name="quoted \" value"`: the token in lower case and the parameters by
    /// lower-case name (the first of a name wins). `name*=UTF-8''percent-encoded` (RFC 8187) is read too, and is
    /// preferred to the plain form of the same name.
    static func headerValue(_ bytes: [UInt8]) -> (String, [String: String]) {
        var index = 0
        func skipSpace() { while index < bytes.count, bytes[index] == 32 || bytes[index] == 9 { index += 1 } }
        func token(until stops: Set<UInt8>) -> String {
            let start = index
            while index < bytes.count, !stops.contains(bytes[index]) { index += 1 }
            return String(decoding: bytes[start..<index], as: UTF8.self).trimmingCharacters(in: .whitespaces)
        }
        skipSpace()
        let type = token(until: [UInt8(ascii: ";")]).lowercased()
        var parameters: [String: String] = [:], extended: [String: String] = [:]
        while index < bytes.count {
            index += 1 // the ";"
            skipSpace()
            let name = token(until: [UInt8(ascii: "="), UInt8(ascii: ";")]).lowercased()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "=") else { continue }
            index += 1
            skipSpace()
            var value: String
            if index < bytes.count, bytes[index] == UInt8(ascii: "\"") {
                index += 1
                var raw: [UInt8] = []
                while index < bytes.count, bytes[index] != UInt8(ascii: "\"") {
                    if bytes[index] == UInt8(ascii: "\\"), index + 1 < bytes.count { index += 1 }
                    raw.append(bytes[index])
                    index += 1
                }
                if index < bytes.count { index += 1 } // the closing quote
                value = String(decoding: raw, as: UTF8.self)
                while index < bytes.count, bytes[index] != UInt8(ascii: ";") { index += 1 }
            } else {
                value = token(until: [UInt8(ascii: ";")])
            }
            guard !name.isEmpty else { continue }
            if name.hasSuffix("*") {
                // charset'language'percent-encoded: only UTF-8 (and its ASCII subset) is read.
                let pieces = value.split(separator: "'", maxSplits: 2, omittingEmptySubsequences: false)
                if pieces.count == 3, ["utf-8", "us-ascii"].contains(pieces[0].lowercased()), let decoded = String(pieces[2]).removingPercentEncoding {
                    value = decoded
                    let plain = String(name.dropLast())
                    if extended[plain] == nil { extended[plain] = value }
                }
            } else if parameters[name] == nil {
                parameters[name] = value
            }
        }
        return (type, parameters.merging(extended) { _, preferred in preferred })
    }
}
