/// DNS messages (RFC 1035, EDNS0 of RFC 6891) as pure values: encoding with name compression and a
/// decoder that checks every length and pointer, so a hostile or broken answer is an error, never a crash.

/// A record type. Known types have names; any other value round-trips.
public struct DNSRecordType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let a = DNSRecordType(rawValue: 1)
    public static let ns = DNSRecordType(rawValue: 2)
    public static let cname = DNSRecordType(rawValue: 5)
    public static let soa = DNSRecordType(rawValue: 6)
    public static let mx = DNSRecordType(rawValue: 15)
    public static let txt = DNSRecordType(rawValue: 16)
    public static let aaaa = DNSRecordType(rawValue: 28)
    public static let opt = DNSRecordType(rawValue: 41)

    public var description: String {
        switch self {
        case .a: "A"
        case .ns: "NS"
        case .cname: "CNAME"
        case .soa: "SOA"
        case .mx: "MX"
        case .txt: "TXT"
        case .aaaa: "AAAA"
        case .opt: "OPT"
        default: "TYPE\(rawValue)"
        }
    }
}

/// The response code of a message (the low four bits; extended codes are not used here).
public struct DNSResponseCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let noError = DNSResponseCode(rawValue: 0)
    public static let formatError = DNSResponseCode(rawValue: 1)
    public static let serverFailure = DNSResponseCode(rawValue: 2)
    public static let nameError = DNSResponseCode(rawValue: 3)
    public static let notImplemented = DNSResponseCode(rawValue: 4)
    public static let refused = DNSResponseCode(rawValue: 5)

    public var description: String {
        switch self {
        case .noError: "NOERROR"
        case .formatError: "FORMERR"
        case .serverFailure: "SERVFAIL"
        case .nameError: "NXDOMAIN"
        case .notImplemented: "NOTIMP"
        case .refused: "REFUSED"
        default: "RCODE\(rawValue)"
        }
    }
}

/// The data of a resource record.
public enum DNSRecordData: Hashable, Sendable {
    /// IPv4 address, 4 bytes.
    case a([UInt8])
    /// IPv6 address, 16 bytes.
    case aaaa([UInt8])
    /// Canonical name.
    case cname(String)
    /// Name server.
    case ns(String)
    /// Mail exchanger.
    case mx(preference: UInt16, exchange: String)
    /// Character strings, each at most 255 bytes (a long TXT value is split over several).
    case txt([[UInt8]])
    /// Start of authority (its `minimum` bounds negative caching).
    case soa(mname: String, rname: String, serial: UInt32, refresh: UInt32, retry: UInt32, expire: UInt32, minimum: UInt32)
    /// Anything else, as raw bytes.
    case other([UInt8])
}

/// One resource record.
public struct DNSResourceRecord: Hashable, Sendable {
    /// Owner name, lower case, without the trailing dot.
    public var name: String
    public var type: DNSRecordType
    /// Class (1 = IN; for OPT the requester's UDP payload size).
    public var recordClass: UInt16
    /// Time to live in seconds (for OPT the extended flags).
    public var ttl: UInt32
    public var data: DNSRecordData

    public init(name: String, type: DNSRecordType, recordClass: UInt16 = 1, ttl: UInt32, data: DNSRecordData) {
        self.name = DNSName.normalize(name)
        self.type = type
        self.recordClass = recordClass
        self.ttl = ttl
        self.data = data
    }

    /// A TXT record's strings joined as one value (RFC 7208 §3.3 and RFC 6376 §3.6.2.2 join without spaces).
    public var textValue: String? {
        guard case .txt(let strings) = data else { return nil }
        return String(decoding: strings.joined(), as: UTF8.self)
    }
}

/// A question.
public struct DNSQuestion: Hashable, Sendable {
    public var name: String
    public var type: DNSRecordType
    public var questionClass: UInt16

    public init(name: String, type: DNSRecordType, questionClass: UInt16 = 1) {
        self.name = DNSName.normalize(name)
        self.type = type
        self.questionClass = questionClass
    }
}

/// Why a message could not be encoded or decoded.
public enum DNSMessageError: Error, Hashable, Sendable {
    /// The bytes end before the message does.
    case truncated
    /// A label longer than 63 bytes or a name longer than 255.
    case nameTooLong
    /// A compression pointer that does not point backwards, or too many of them.
    case badPointer
    /// A label type this decoder does not know (the reserved 0b01/0b10 prefixes).
    case badLabel
    /// A record's data does not match its type.
    case badRecordData(DNSRecordType)
}

/// A DNS message.
public struct DNSMessage: Hashable, Sendable {
    public var id: UInt16
    /// Response (true) or query.
    public var isResponse: Bool
    public var opcode: UInt8
    public var isAuthoritative: Bool
    /// TC: the answer did not fit (retry over TCP).
    public var isTruncated: Bool
    public var recursionDesired: Bool
    public var recursionAvailable: Bool
    public var responseCode: DNSResponseCode
    public var questions: [DNSQuestion]
    public var answers: [DNSResourceRecord]
    public var authorities: [DNSResourceRecord]
    public var additionals: [DNSResourceRecord]

    public init(id: UInt16, isResponse: Bool = false, opcode: UInt8 = 0, isAuthoritative: Bool = false, isTruncated: Bool = false,
                recursionDesired: Bool = true, recursionAvailable: Bool = false, responseCode: DNSResponseCode = .noError,
                questions: [DNSQuestion] = [], answers: [DNSResourceRecord] = [], authorities: [DNSResourceRecord] = [],
                additionals: [DNSResourceRecord] = []) {
        self.id = id
        self.isResponse = isResponse
        self.opcode = opcode
        self.isAuthoritative = isAuthoritative
        self.isTruncated = isTruncated
        self.recursionDesired = recursionDesired
        self.recursionAvailable = recursionAvailable
        self.responseCode = responseCode
        self.questions = questions
        self.answers = answers
        self.authorities = authorities
        self.additionals = additionals
    }

    /// A recursive query for one name and type, advertising EDNS0 with `udpPayloadSize`.
    public static func query(id: UInt16, name: String, type: DNSRecordType, udpPayloadSize: UInt16 = 1232) -> DNSMessage {
        DNSMessage(id: id, questions: [DNSQuestion(name: name, type: type)],
                   additionals: [DNSResourceRecord(name: "", type: .opt, recordClass: udpPayloadSize, ttl: 0, data: .other([]))])
    }

    // MARK: Encoding

    /// The wire form, with names compressed.
    public func encode() throws(DNSMessageError) -> [UInt8] {
        var writer = Writer()
        writer.u16(id)
        var flags: UInt16 = 0
        if isResponse { flags |= 0x8000 }
        flags |= UInt16(opcode & 0x0F) << 11
        if isAuthoritative { flags |= 0x0400 }
        if isTruncated { flags |= 0x0200 }
        if recursionDesired { flags |= 0x0100 }
        if recursionAvailable { flags |= 0x0080 }
        flags |= UInt16(responseCode.rawValue & 0x0F)
        writer.u16(flags)
        for count in [questions.count, answers.count, authorities.count, additionals.count] { writer.u16(UInt16(count)) }
        for question in questions {
            try writer.name(question.name)
            writer.u16(question.type.rawValue)
            writer.u16(question.questionClass)
        }
        for record in answers + authorities + additionals { try writer.record(record) }
        return writer.bytes
    }

    private struct Writer {
        var bytes: [UInt8] = []
        /// Offsets of names already written, by their lower-case suffix, for compression pointers.
        var offsets: [String: Int] = [:]

        mutating func u16(_ value: UInt16) { bytes += [UInt8(value >> 8), UInt8(value & 0xFF)] }
        mutating func u32(_ value: UInt32) { u16(UInt16(value >> 16)); u16(UInt16(value & 0xFFFF)) }

        mutating func name(_ name: String, compress: Bool = true) throws(DNSMessageError) {
            let labels = DNSName.normalize(name).split(separator: ".", omittingEmptySubsequences: false).filter { !$0.isEmpty }
            guard labels.reduce(1, { $0 + $1.utf8.count + 1 }) <= 255 else { throw .nameTooLong }
            for index in labels.indices {
                let suffix = labels[index...].joined(separator: ".")
                if compress, let offset = offsets[suffix] {
                    u16(0xC000 | UInt16(offset))
                    return
                }
                if bytes.count < 0x3FFF { offsets[suffix] = bytes.count }
                let label = Array(labels[index].utf8)
                guard label.count <= 63 else { throw .nameTooLong }
                bytes.append(UInt8(label.count))
                bytes += label
            }
            bytes.append(0)
        }

        mutating func record(_ record: DNSResourceRecord) throws(DNSMessageError) {
            try name(record.name)
            u16(record.type.rawValue)
            u16(record.recordClass)
            u32(record.ttl)
            let lengthAt = bytes.count
            u16(0)
            switch record.data {
            case .a(let address), .aaaa(let address), .other(let address):
                bytes += address
            case .cname(let target), .ns(let target):
                try name(target)
            case .mx(let preference, let exchange):
                u16(preference)
                try name(exchange)
            case .txt(let strings):
                for string in strings {
                    guard string.count <= 255 else { throw .badRecordData(.txt) }
                    bytes.append(UInt8(string.count))
                    bytes += string
                }
            case .soa(let mname, let rname, let serial, let refresh, let retry, let expire, let minimum):
                try name(mname)
                try name(rname)
                for value in [serial, refresh, retry, expire, minimum] { u32(value) }
            }
            let length = bytes.count - lengthAt - 2
            guard length <= 0xFFFF else { throw .badRecordData(record.type) }
            bytes[lengthAt] = UInt8(length >> 8)
            bytes[lengthAt + 1] = UInt8(length & 0xFF)
        }
    }

    // MARK: Decoding

    /// Parses a message, checking every length and compression pointer.
    public static func decode(_ bytes: [UInt8]) throws(DNSMessageError) -> DNSMessage {
        var reader = Reader(bytes: bytes)
        let id = try reader.u16()
        let flags = try reader.u16()
        let counts = [try reader.u16(), try reader.u16(), try reader.u16(), try reader.u16()]
        var message = DNSMessage(id: id, isResponse: flags & 0x8000 != 0, opcode: UInt8((flags >> 11) & 0x0F),
                                 isAuthoritative: flags & 0x0400 != 0, isTruncated: flags & 0x0200 != 0,
                                 recursionDesired: flags & 0x0100 != 0, recursionAvailable: flags & 0x0080 != 0,
                                 responseCode: DNSResponseCode(rawValue: UInt8(flags & 0x0F)))
        for _ in 0..<counts[0] {
            let name = try reader.name()
            message.questions.append(DNSQuestion(name: name, type: DNSRecordType(rawValue: try reader.u16()), questionClass: try reader.u16()))
        }
        for _ in 0..<counts[1] { message.answers.append(try reader.record()) }
        for _ in 0..<counts[2] { message.authorities.append(try reader.record()) }
        for _ in 0..<counts[3] { message.additionals.append(try reader.record()) }
        return message
    }

    private struct Reader {
        let bytes: [UInt8]
        var position = 0

        mutating func u8() throws(DNSMessageError) -> UInt8 {
            guard position < bytes.count else { throw .truncated }
            defer { position += 1 }
            return bytes[position]
        }

        mutating func u16() throws(DNSMessageError) -> UInt16 { UInt16(try u8()) << 8 | UInt16(try u8()) }
        mutating func u32() throws(DNSMessageError) -> UInt32 { UInt32(try u16()) << 16 | UInt32(try u16()) }

        mutating func take(_ count: Int) throws(DNSMessageError) -> [UInt8] {
            guard count >= 0, position + count <= bytes.count else { throw .truncated }
            defer { position += count }
            return Array(bytes[position..<(position + count)])
        }

        /// A possibly compressed name. Pointers must point strictly backwards, so they cannot loop.
        mutating func name() throws(DNSMessageError) -> String {
            var labels: [String] = []
            var length = 1
            var cursor = position
            var resumeAt: Int?
            var lowestTarget = position
            while true {
                guard cursor < bytes.count else { throw .truncated }
                let byte = bytes[cursor]
                switch byte & 0xC0 {
                case 0x00:
                    if byte == 0 {
                        position = resumeAt ?? (cursor + 1)
                        return labels.joined(separator: ".")
                    }
                    let count = Int(byte)
                    guard cursor + 1 + count <= bytes.count else { throw .truncated }
                    length += count + 1
                    guard length <= 255 else { throw .nameTooLong }
                    labels.append(String(decoding: bytes[(cursor + 1)...(cursor + count)], as: UTF8.self).lowercased())
                    cursor += 1 + count
                case 0xC0:
                    guard cursor + 1 < bytes.count else { throw .truncated }
                    let target = Int(byte & 0x3F) << 8 | Int(bytes[cursor + 1])
                    guard target < lowestTarget else { throw .badPointer }
                    lowestTarget = target
                    if resumeAt == nil { resumeAt = cursor + 2 }
                    cursor = target
                default:
                    throw .badLabel
                }
            }
        }

        mutating func record() throws(DNSMessageError) -> DNSResourceRecord {
            let name = try name()
            let type = DNSRecordType(rawValue: try u16())
            let recordClass = try u16()
            let ttl = try u32()
            let length = Int(try u16())
            let start = position
            guard start + length <= bytes.count else { throw .truncated }
            let data: DNSRecordData
            switch type {
            case .a:
                guard length == 4 else { throw .badRecordData(type) }
                data = .a(try take(4))
            case .aaaa:
                guard length == 16 else { throw .badRecordData(type) }
                data = .aaaa(try take(16))
            case .cname:
                data = .cname(try self.name())
            case .ns:
                data = .ns(try self.name())
            case .mx:
                data = .mx(preference: try u16(), exchange: try self.name())
            case .txt:
                var strings: [[UInt8]] = []
                while position < start + length {
                    let count = Int(try u8())
                    guard position + count <= start + length else { throw .badRecordData(type) }
                    strings.append(try take(count))
                }
                data = .txt(strings)
            case .soa:
                data = .soa(mname: try self.name(), rname: try self.name(), serial: try u32(), refresh: try u32(), retry: try u32(),
                            expire: try u32(), minimum: try u32())
            default:
                data = .other(try take(length))
            }
            guard position == start + length else { throw .badRecordData(type) }
            return DNSResourceRecord(name: name, type: type, recordClass: recordClass, ttl: ttl, data: data)
        }
    }
}

/// Name helpers.
public enum DNSName {
    /// Lower case, without a trailing dot.
    public static func normalize(_ name: String) -> String {
        var name = name.lowercased()
        while name.hasSuffix(".") { name.removeLast() }
        return name
    }
}
