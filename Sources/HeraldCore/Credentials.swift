import Foundation

/// Generates AccessKey ids and secrets in the Alibaba Cloud shape (`LTAI` + 20 characters, 30-character secret).
public enum AccessKeyGenerator {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")

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

    /// Random characters from the alphanumeric alphabet, without modulo bias.
    public static func randomString(count: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return String((0..<count).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] })
    }
}

/// Base64url without padding (RFC 4648 §5), as JWTs and URL tokens use it.
public enum Base64URL {
    /// Encodes bytes.
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Decodes, returning nil for anything that is not strict base64url.
    public static func decode(_ string: some StringProtocol) -> [UInt8]? {
        guard string.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || $0 == 45 || $0 == 95 }) else {
            return nil
        }
        var s = string.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        let remainder = s.utf8.count % 4
        if remainder == 1 { return nil }
        if remainder > 0 { s += String(repeating: "=", count: 4 - remainder) }
        return Data(base64Encoded: s).map(Array.init)
    }
}
