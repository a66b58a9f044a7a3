/// Refuses text PostgreSQL cannot store, or should not, before any of it reaches a query: a NUL aborts the
/// transaction it is in (on the send path the group-commit transaction shared by many tenants), a lone UTF-16
/// surrogate is not a character at all, and the other C0 control characters have no business in mail
/// metadata. One forward pass over the raw JSON bytes, with no parse into Foundation objects, so it costs the
/// same on an 8 MiB import as the decoder's own read; it names the JSON path of the first bad string.
///
/// It does not judge the JSON otherwise: malformed JSON is the decoder's to refuse, and this pass stops
/// trusting its path bookkeeping then (the decoder answers first in practice, as the bytes stay the same).
public enum JSONTextCheck {
    /// Checks every string (keys and values, at any depth) of a JSON document.
    public static func validate(json bytes: some Collection<UInt8>) throws(HeraldError) {
        func scan(_ buffer: UnsafeBufferPointer<UInt8>) -> Finding? {
            var scanner = Scanner(buffer)
            return scanner.run()
        }
        let finding: Finding? = bytes.withContiguousStorageIfAvailable(scan) ?? Array(bytes).withUnsafeBufferPointer(scan)
        if let finding {
            throw .validation("\(finding.path ?? "The body") contains \(finding.what), which is not allowed in text.", field: finding.path)
        }
    }

    /// Checks an uploaded text body (the CSV recipient import): valid UTF-8 without NUL.
    public static func validate(text bytes: some Collection<UInt8>, field: String = "body") throws(HeraldError) {
        // The standard library's decoder validates (a lossy decode would repair the bytes silently).
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        var line = 1
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar):
                if scalar == "\n" { line += 1 }
                if scalar == "\0" { throw .validation("Line \(line) contains a NUL character, which is not allowed in text.", field: field) }
            case .emptyInput: return
            case .error: throw .validation("Line \(line) is not valid UTF-8.", field: field)
            }
        }
    }

    /// Checks one percent-encoded part of a request target (the path, or a query parameter's value): once decoded,
    /// valid UTF-8 without NUL or other C0 control characters (TAB, CR and LF included: none belongs in an id, an
    /// address or a filter).
    public static func validate(percentEncoded text: Substring, field: String) throws(HeraldError) {
        guard text.utf8.contains(where: { $0 == UInt8(ascii: "%") || $0 < 0x20 }) else { return }  // the common case: nothing encoded
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            // A malformed escape is left as it is: the router and the decoders refuse it in their own way.
            guard let high = iterator.next(), let low = iterator.next(), let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) else {
                bytes.append(byte)
                continue
            }
            bytes.append(value)
        }
        guard !bytes.contains(where: { $0 < 0x20 }) else {
            throw .validation("\(field) contains a NUL or another control character, which is not allowed.", field: field)
        }
        guard String(validating: bytes, as: UTF8.self) != nil else { throw .validation("\(field) is not valid UTF-8.", field: field) }
    }

    /// What was found where.
    struct Finding {
        var path: String?
        var what: String
    }

    /// One container the scanner is inside.
    private enum Frame {
        case object(key: String?, expectingKey: Bool)
        case array(index: Int)
    }

    private struct Scanner {
        let bytes: UnsafeBufferPointer<UInt8>
        var position = 0
        var stack: [Frame] = []

        init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

        mutating func run() -> Finding? {
            while position < bytes.count {
                let byte = bytes[position]
                position += 1
                switch byte {
                case UInt8(ascii: "{"): stack.append(.object(key: nil, expectingKey: true))
                case UInt8(ascii: "["): stack.append(.array(index: 0))
                case UInt8(ascii: "}"), UInt8(ascii: "]"): if !stack.isEmpty { stack.removeLast() }
                case UInt8(ascii: ","):
                    switch stack.last {
                    case .array(let index): stack[stack.count - 1] = .array(index: index + 1)
                    case .object(let key, _): stack[stack.count - 1] = .object(key: key, expectingKey: true)
                    case nil: break
                    }
                case UInt8(ascii: "\""):
                    let isKey = if case .object(_, true) = stack.last { true } else { false }
                    // While a key is read, the object's path is its own (the previous key no longer applies).
                    if isKey { stack[stack.count - 1] = .object(key: nil, expectingKey: true) }
                    switch string(collectingKey: isKey) {
                    case .failure(let failure):
                        return Finding(path: path(appendingKey: isKey ? failure.partialKey : nil), what: failure.what)
                    case .success(let key):
                        if isKey { stack[stack.count - 1] = .object(key: key, expectingKey: false) }
                    }
                default: break
                }
            }
            return nil
        }

        /// Reads a string whose opening quote was just consumed; collects its text when it is a key (for the path).
        mutating func string(collectingKey: Bool) -> Result<String, Failure> {
            var key: [UInt8] = []
            func refuse(_ what: String) -> Result<String, Failure> {
                .failure(Failure(what, partialKey: collectingKey ? String(decoding: key, as: UTF8.self) : nil))
            }
            var pendingHigh = false  // the previous escape was a high surrogate, which must be followed by its low half
            var high: UInt32 = 0
            while position < bytes.count {
                let byte = bytes[position]
                position += 1
                if pendingHigh, byte != UInt8(ascii: "\\") { return refuse(loneHigh) }
                switch byte {
                case UInt8(ascii: "\""):
                    if pendingHigh { return refuse(loneHigh) }
                    return .success(collectingKey ? String(decoding: key, as: UTF8.self) : "")
                case UInt8(ascii: "\\"):
                    guard position < bytes.count else { return .success("") }
                    let escape = bytes[position]
                    position += 1
                    if pendingHigh, escape != UInt8(ascii: "u") { return refuse(loneHigh) }
                    switch escape {
                    case UInt8(ascii: "u"):
                        guard let unit = hex4() else { return .success("") }  // malformed: the decoder's to refuse
                        if pendingHigh, !(0xDC00...0xDFFF).contains(unit) { return refuse(loneHigh) }
                        switch unit {
                        case 0xD800...0xDBFF:
                            if pendingHigh { return refuse(loneHigh) }
                            pendingHigh = true
                            high = UInt32(unit)
                        case 0xDC00...0xDFFF:
                            if !pendingHigh { return refuse("a lone surrogate (\\udc00-\\udfff without its high half)") }
                            pendingHigh = false
                            if collectingKey, let scalar = Unicode.Scalar(0x10000 + ((high - 0xD800) << 10) + (UInt32(unit) - 0xDC00)) {
                                key.append(contentsOf: Array(String(Character(scalar)).utf8))
                            }
                        case 0x00:
                            return refuse("a NUL character (\\u0000)")
                        case 0x01...0x1F where unit != 0x09 && unit != 0x0A && unit != 0x0D:
                            return refuse("a control character (\\u\(hexDigits(unit)))")
                        default:
                            if collectingKey, let scalar = Unicode.Scalar(unit) { key.append(contentsOf: Array(String(Character(scalar)).utf8)) }
                        }
                    case UInt8(ascii: "b"): return refuse("a control character (\\b)")
                    case UInt8(ascii: "f"): return refuse("a control character (\\f)")
                    default:
                        if collectingKey { key.append(escape == UInt8(ascii: "n") ? 0x0A : escape == UInt8(ascii: "t") ? 0x09 : escape == UInt8(ascii: "r") ? 0x0D : escape) }
                    }
                case 0x00:
                    return refuse("a NUL character")
                case 0x01...0x1F where byte != 0x09 && byte != 0x0A && byte != 0x0D:
                    return refuse("a control character (\\u\(hexDigits(UInt16(byte))))")
                default:
                    if collectingKey { key.append(byte) }
                }
            }
            return .success("")
        }

        let loneHigh = "a lone surrogate (\\ud800-\\udbff without its low half)"

        /// Four hex digits after `\u`, or nil when they are not there.
        mutating func hex4() -> UInt16? {
            guard position + 4 <= bytes.count else { return nil }
            var value: UInt16 = 0
            for _ in 0..<4 {
                let byte = bytes[position]
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: return nil
                }
                value = value << 4 | UInt16(digit)
                position += 1
            }
            return value
        }

        func hexDigits(_ value: UInt16) -> String {
            let digits = String(value, radix: 16)
            return String(repeating: "0", count: 4 - digits.count) + digits
        }

        /// The JSON path of the string being read: `members[3].vars.name`; nil at the top level.
        func path(appendingKey extra: String?) -> String? {
            var result = ""
            for frame in stack {
                switch frame {
                case .object(let key, _):
                    guard let key else { continue }
                    result += result.isEmpty ? key : "." + key
                case .array(let index):
                    result += "[\(index)]"
                }
            }
            if let extra, !extra.isEmpty { result += result.isEmpty ? extra : "." + extra }
            return result.isEmpty ? nil : result
        }
    }

    /// Why a string was refused.
    private struct Failure: Error {
        var what: String
        /// The part of a refused key read before the bad character, to name the path with.
        var partialKey: String?
        init(_ what: String, partialKey: String?) {
            self.what = what
            self.partialKey = partialKey
        }
    }
}
