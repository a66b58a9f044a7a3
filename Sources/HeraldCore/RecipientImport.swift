import Foundation

/// RFC 4180 CSV: comma-separated fields, `"…"` quoting with `""` for a quote, CRLF or LF line ends, a
/// UTF-8 byte-order mark ignored, blank lines skipped.
public enum CSV {
    /// A record and the line it starts on (1-based).
    public struct Record: Equatable, Sendable {
        public var line: Int
        public var fields: [String]
        public init(line: Int, fields: [String]) {
            self.line = line
            self.fields = fields
        }
    }

    /// Parses the whole text; an unterminated quote is an error naming its line.
    public static func parse(_ bytes: [UInt8]) throws(HeraldError) -> [Record] {
        var records: [Record] = []
        var fields: [String] = []
        var field: [UInt8] = []
        var line = 1, recordLine = 1
        var index = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
        var inQuotes = false, quotedField = false
        func endField() {
            fields.append(String(decoding: field, as: UTF8.self))
            field.removeAll(keepingCapacity: true)
            quotedField = false
        }
        func endRecord() {
            endField()
            if !(fields.count == 1 && fields[0].isEmpty) { records.append(Record(line: recordLine, fields: fields)) }
            fields.removeAll(keepingCapacity: true)
        }
        while index < bytes.count {
            let byte = bytes[index]
            if inQuotes {
                if byte == UInt8(ascii: "\"") {
                    if index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "\"") {
                        field.append(byte)
                        index += 1
                    } else {
                        inQuotes = false
                    }
                } else {
                    if byte == UInt8(ascii: "\n") { line += 1 }
                    field.append(byte)
                }
            } else {
                switch byte {
                case UInt8(ascii: "\"") where field.isEmpty && !quotedField:
                    inQuotes = true
                    quotedField = true
                case UInt8(ascii: ","):
                    endField()
                case UInt8(ascii: "\r") where index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "\n"):
                    break
                case UInt8(ascii: "\n"):
                    endRecord()
                    line += 1
                    recordLine = line
                default:
                    field.append(byte)
                }
            }
            index += 1
        }
        guard !inQuotes else { throw .validation("Line \(recordLine): a quoted field is not closed.", field: "body") }
        if !field.isEmpty || !fields.isEmpty || quotedField { endRecord() }
        return records
    }

    /// Quotes a field for output when it needs it.
    /// A document of a header line and rows, CRLF line ends (the form ``parse(_:)`` reads back).
    public static func document(header: [String], rows: [[String]]) -> String {
        var lines = [header.map(quote).joined(separator: ",")]
        lines.reserveCapacity(rows.count + 1)
        for row in rows { lines.append(row.map(quote).joined(separator: ",")) }
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    public static func quote(_ field: String) -> String {
        // Bytes, not Characters: "\r\n" is one Character, and so is a comma or a quote with a combining mark after it,
        // which a Character comparison misses (and the reader, which reads bytes, then splits the field).
        guard field.utf8.contains(where: { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\"") || $0 == 10 || $0 == 13 }) else { return field }
        var quoted: [UInt8] = [UInt8(ascii: "\"")]
        for byte in field.utf8 {
            quoted.append(byte)
            if byte == UInt8(ascii: "\"") { quoted.append(byte) }
        }
        quoted.append(UInt8(ascii: "\""))
        return String(decoding: quoted, as: UTF8.self)
    }
}

/// Recipients to import into a list, checked row by row: good rows are kept, bad ones reported.
public enum RecipientImport {
    /// A row that passed the checks.
    public struct Candidate: Equatable, Sendable {
        /// Row number as the client counts it (CSV: the line; JSON: the 1-based array position).
        public var row: Int
        public var address: String
        public var variables: [String: String]
    }

    /// A row that was refused.
    public struct Rejection: Error, Equatable, Sendable, Codable {
        public var row: Int
        public var reason: String
        public init(row: Int, reason: String) {
            self.row = row
            self.reason = reason
        }
    }

    /// Largest size of one member's variables, as JSON.
    public static let maxVariablesSize = 4096

    static func isVariableName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, name.count <= 64, first.isASCII, first == "_" || CharacterSet.letters.contains(first) else { return false }
        return name.unicodeScalars.allSatisfy { $0.isASCII && ($0 == "_" || CharacterSet.alphanumerics.contains($0)) }
    }

    /// Checks one row.
    public static func check(row: Int, address: String, variables: [String: String]) -> Result<Candidate, Rejection> {
        let parsed: MailAddress
        do {
            parsed = try MailAddress(address)
        } catch {
            return .failure(Rejection(row: row, reason: "invalid address"))
        }
        if let bad = variables.keys.sorted().first(where: { !isVariableName($0) }) {
            return .failure(Rejection(row: row, reason: "invalid variable name \(bad)"))
        }
        let size = variables.reduce(2) { $0 + $1.key.utf8.count + $1.value.utf8.count + 6 }
        guard size <= maxVariablesSize else { return .failure(Rejection(row: row, reason: "variables larger than \(maxVariablesSize) bytes")) }
        return .success(Candidate(row: row, address: parsed.description, variables: variables))
    }

    /// Rows of a CSV upload with a header naming `address` and the variables.
    public static func fromCSV(_ bytes: [UInt8]) throws(HeraldError) -> (candidates: [Candidate], rejected: [Rejection]) {
        let records = try CSV.parse(bytes)
        guard let header = records.first else { throw .validation("The CSV is empty: give a header line address,var1,….", field: "body") }
        let names = header.fields.map { $0.trimmingCharacters(in: .whitespaces) }
        guard let addressColumn = names.firstIndex(where: { $0.lowercased() == "address" }) else {
            throw .validation("The CSV header must name an address column (address,var1,…).", field: "header")
        }
        if let bad = names.enumerated().first(where: { $0.offset != addressColumn && !isVariableName($0.element) }) {
            throw .validation("The CSV header has an invalid variable name \"\(bad.element)\".", field: "header")
        }
        var candidates: [Candidate] = [], rejected: [Rejection] = []
        candidates.reserveCapacity(records.count)
        for record in records.dropFirst() {
            guard record.fields.count == names.count else {
                rejected.append(Rejection(row: record.line, reason: "expected \(names.count) fields, found \(record.fields.count)"))
                continue
            }
            var variables: [String: String] = [:]
            for (index, value) in record.fields.enumerated() where index != addressColumn { variables[names[index]] = value }
            switch check(row: record.line, address: record.fields[addressColumn], variables: variables) {
            case .success(let candidate): candidates.append(candidate)
            case .failure(let rejection): rejected.append(rejection)
            }
        }
        return (candidates, rejected)
    }

    /// Merges duplicate addresses, the later row winning; answers the rows in first-seen order.
    public static func merged(_ candidates: [Candidate]) -> [Candidate] {
        var position: [String: Int] = [:]
        var result: [Candidate] = []
        result.reserveCapacity(candidates.count)
        for candidate in candidates {
            if let index = position[candidate.address] {
                result[index].variables = candidate.variables
            } else {
                position[candidate.address] = result.count
                result.append(candidate)
            }
        }
        return result
    }
}
