import Foundation

/// Generates AccessKey ids and secrets in the Alibaba Cloud shape (`LTAI` + 20 characters, 30-character secret).
public enum AccessKeyGenerator {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)

    /// A new, random AccessKey id.
    public static func newID() -> String {
        "LTAI" + randomString(count: 20)
    }

    /// A new, random AccessKey secret (about 178 bits of entropy).
    public static func newSecret() -> String {
        randomString(count: 30)
    }

    /// Whether `id` has the shape of an AccessKey id (used to reject junk before touching the database).
    public static func isWellFormedID(_ id: String) -> Bool {
        id.utf8.count == 24 && id.hasPrefix("LTAI") && id.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) }
    }

    /// Random characters from the alphanumeric alphabet, without modulo bias, from the system's generator.
    public static func randomString(count: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return randomString(count: count, using: &generator)
    }

    /// Random characters from the alphanumeric alphabet, without modulo bias, from `generator` (for ids that
    /// need not be secret, ``RandomPool/Generator``).
    public static func randomString(count: Int, using generator: inout some RandomNumberGenerator) -> String {
        // One random word gives eight bytes; a byte below 248 (4 × 62) picks a character without bias.
        var characters: [UInt8] = []
        characters.reserveCapacity(count)
        var word: UInt64 = 0, left = 0
        while characters.count < count {
            if left == 0 { word = generator.next(); left = 8 }
            let byte = UInt8(truncatingIfNeeded: word)
            word >>= 8
            left -= 1
            if byte < 248 { characters.append(alphabet[Int(byte) % alphabet.count]) }
        }
        return String(decoding: characters, as: UTF8.self)
    }
}

/// Base64url without padding (RFC 4648 §5), as JWTs and URL tokens use it.
public enum Base64URL {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    private static let values: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (index, byte) in alphabet.enumerated() { table[Int(byte)] = UInt8(index) }
        return table
    }()

    /// Encodes bytes (no padding).
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        let input = Array(bytes)
        var output: [UInt8] = []
        output.reserveCapacity((input.count * 4 + 2) / 3)
        var index = 0
        while index + 2 < input.count {
            let chunk = UInt32(input[index]) << 16 | UInt32(input[index + 1]) << 8 | UInt32(input[index + 2])
            output += [alphabet[Int(chunk >> 18 & 63)], alphabet[Int(chunk >> 12 & 63)], alphabet[Int(chunk >> 6 & 63)], alphabet[Int(chunk & 63)]]
            index += 3
        }
        let rest = input.count - index
        if rest > 0 {
            let chunk = UInt32(input[index]) << 16 | (rest == 2 ? UInt32(input[index + 1]) << 8 : 0)
            output += [alphabet[Int(chunk >> 18 & 63)], alphabet[Int(chunk >> 12 & 63)]]
            if rest == 2 { output.append(alphabet[Int(chunk >> 6 & 63)]) }
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// Decodes, returning nil for anything that is not strict base64url (no padding, no other characters,
    /// no stray bits in the last character).
    public static func decode(_ string: some StringProtocol) -> [UInt8]? {
        let input = Array(string.utf8)
        guard input.count % 4 != 1 else { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(input.count * 3 / 4)
        var accumulator: UInt32 = 0, bits = 0
        for byte in input {
            let value = values[Int(byte)]
            guard value != 0xFF else { return nil }
            accumulator = accumulator << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                output.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
                accumulator &= (1 << UInt32(bits)) - 1
            }
        }
        guard accumulator == 0 else { return nil }
        return output
    }
}
