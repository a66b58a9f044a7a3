import HeraldCore
import HeraldStore

/// The hot route's JSON, by hand: `POST /v1/mail/single`'s body read straight into a ``SingleSendRequest``
/// and its answer written straight from a ``SendResult`` — what the generated code does through
/// Foundation's coders and the OpenAPI runtime, which took a fifth of the process's CPU per send
/// (profile of `ops/bench send`, issue #16).
///
/// Both sides only take what they are sure of and answer nil for anything else: then the route runs the
/// generated code as before, so every refusal (a wrong type, an unknown field, a null, broken JSON…) keeps
/// exactly the error it had. `SingleSendJSONTests` checks both against the generated coders.
enum SingleSendJSON {
    /// The body as a send, or nil: not a plain JSON object of the contract's `SingleSend` fields with their
    /// types (no null, no number, no repeated key, valid UTF-8) — for the generated decoder to judge.
    static func parse(_ bytes: some Collection<UInt8>) -> SingleSendRequest? {
        var reader = Reader(bytes: Array(bytes))
        return reader.send()
    }

    /// The answer's JSON as the generated encoder writes it (keys sorted, `/` unescaped), or nil when a value
    /// is not plain printable ASCII (left to the generated encoder, which escapes exactly as it always did).
    static func encode(_ result: SendResult) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(96 + result.messages.count * 110)
        func append(_ text: String) { out.append(contentsOf: text.utf8) }
        func plain(_ text: String) -> Bool { text.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F && $0 != 0x22 && $0 != 0x5C } }
        append("{\"messages\":[")
        for (index, message) in result.messages.enumerated() {
            guard plain(message.to) else { return nil }
            if index > 0 { out.append(UInt8(ascii: ",")) }
            append("{\"id\":\"")
            append(message.id.lowercased)
            append("\"")
            // The contract's reasons only, as the generated answer does (another string is left out).
            if let reason = message.reason, Components.Schemas.SendResult.MessagesPayloadPayload.ReasonPayload(rawValue: reason) != nil {
                guard plain(reason) else { return nil }
                append(",\"reason\":\"")
                append(reason)
                append("\"")
            }
            append(",\"status\":\"")
            append(message.status == .queued ? "queued" : "dropped")
            append("\",\"to\":\"")
            append(message.to)
            append("\"}")
        }
        append("],\"requestId\":\"")
        append(result.requestId.lowercased)
        append("\"}")
        return out
    }

    /// A strict reader of one JSON object; every method answers nil at the first thing it does not take.
    struct Reader {
        let bytes: [UInt8]
        var index = 0

        mutating func send() -> SingleSendRequest? {
            var from: String?, to: [String]?, subject: String?
            var request = SingleSendRequest(from: "", to: [], subject: "")
            var seen = Set<String>()
            guard take(UInt8(ascii: "{")) else { return nil }
            if !take(UInt8(ascii: "}")) {
                repeat {
                    guard let key = string(), seen.insert(key).inserted, take(UInt8(ascii: ":")) else { return nil }
                    switch key {
                    case "from": guard let value = string() else { return nil }; from = value
                    case "to": guard let value = strings() else { return nil }; to = value
                    case "subject": guard let value = string() else { return nil }; subject = value
                    case "fromAlias": guard let value = string() else { return nil }; request.fromAlias = value
                    case "html": guard let value = string() else { return nil }; request.html = value
                    case "text": guard let value = string() else { return nil }; request.text = value
                    case "replyTo": guard let value = string() else { return nil }; request.replyTo = value
                    case "replyToName": guard let value = string() else { return nil }; request.replyToName = value
                    case "tag": guard let value = string() else { return nil }; request.tag = value
                    case "clickTracking": guard let value = boolean() else { return nil }; request.tracking = value
                    case "headers": guard let value = stringMap() else { return nil }; request.headers = value
                    default: return nil
                    }
                } while take(UInt8(ascii: ","))
                guard take(UInt8(ascii: "}")) else { return nil }
            }
            skipSpace()
            guard index == bytes.count, let from, let to, let subject else { return nil }
            request.from = from
            request.to = to
            request.subject = subject
            return request
        }

        mutating func skipSpace() {
            while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x0D || bytes[index] == 0x09 { index += 1 }
        }

        /// Takes `byte` (after white space) if it comes next.
        mutating func take(_ byte: UInt8) -> Bool {
            skipSpace()
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }

        mutating func boolean() -> Bool? {
            skipSpace()
            for (word, value) in [("true", true), ("false", false)] where bytes[index...].starts(with: word.utf8) {
                index += word.utf8.count
                return value
            }
            return nil
        }

        mutating func strings() -> [String]? {
            guard take(UInt8(ascii: "[")) else { return nil }
            var values: [String] = []
            if take(UInt8(ascii: "]")) { return values }
            repeat {
                guard let value = string() else { return nil }
                values.append(value)
            } while take(UInt8(ascii: ","))
            return take(UInt8(ascii: "]")) ? values : nil
        }

        mutating func stringMap() -> [String: String]? {
            guard take(UInt8(ascii: "{")) else { return nil }
            var values: [String: String] = [:]
            if take(UInt8(ascii: "}")) { return values }
            repeat {
                guard let key = string(), values[key] == nil, take(UInt8(ascii: ":")), let value = string() else { return nil }
                values[key] = value
            } while take(UInt8(ascii: ","))
            return take(UInt8(ascii: "}")) ? values : nil
        }

        /// A JSON string: its escapes undone, its UTF-8 checked; nil for a raw control character.
        mutating func string() -> String? {
            guard take(UInt8(ascii: "\"")) else { return nil }
            let start = index
            // The common case: no escape, the bytes are the text.
            while index < bytes.count, bytes[index] != 0x22, bytes[index] != 0x5C, bytes[index] >= 0x20 { index += 1 }
            guard index < bytes.count, bytes[index] >= 0x20 else { return nil }
            if bytes[index] == 0x22 {
                index += 1
                return String(validating: bytes[start..<index - 1], as: UTF8.self)
            }
            var text = Array(bytes[start..<index])
            while index < bytes.count {
                let byte = bytes[index]
                index += 1
                switch byte {
                case 0x22: return String(validating: text, as: UTF8.self)
                case 0x5C:
                    guard index < bytes.count else { return nil }
                    let escape = bytes[index]
                    index += 1
                    switch escape {
                    case 0x22, 0x5C, 0x2F: text.append(escape)
                    case UInt8(ascii: "b"): text.append(0x08)
                    case UInt8(ascii: "f"): text.append(0x0C)
                    case UInt8(ascii: "n"): text.append(0x0A)
                    case UInt8(ascii: "r"): text.append(0x0D)
                    case UInt8(ascii: "t"): text.append(0x09)
                    case UInt8(ascii: "u"):
                        guard var scalar = hex4() else { return nil }
                        if (0xD800..<0xDC00).contains(scalar) {
                            // A high surrogate: its low one must follow as \uXXXX.
                            guard index + 1 < bytes.count, bytes[index] == 0x5C, bytes[index + 1] == UInt8(ascii: "u") else { return nil }
                            index += 2
                            guard let low = hex4(), (0xDC00..<0xE000).contains(low) else { return nil }
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        }
                        guard let unicode = Unicode.Scalar(scalar) else { return nil }
                        text.append(contentsOf: String(Character(unicode)).utf8)
                    default: return nil
                    }
                case 0..<0x20: return nil
                default: text.append(byte)
                }
            }
            return nil
        }

        mutating func hex4() -> UInt32? {
            guard index + 4 <= bytes.count else { return nil }
            var value: UInt32 = 0
            for byte in bytes[index..<index + 4] {
                let digit: UInt8
                switch byte {
                case 0x30...0x39: digit = byte - 0x30
                case 0x41...0x46: digit = byte - 0x41 + 10
                case 0x61...0x66: digit = byte - 0x61 + 10
                default: return nil
                }
                value = value << 4 | UInt32(digit)
            }
            index += 4
            return value
        }
    }
}
