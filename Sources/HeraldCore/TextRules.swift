/// What text may be stored: PostgreSQL's text type refuses NUL, and control characters in a subject,
/// alias or header value are a header-injection or display trick. Every text that reaches the database
/// from a client passes one of these first, so that a bad value is one client's 400, never a failed
/// transaction shared with other tenants' requests.
public enum TextRules {
    /// Whether `scalar` is a C0 or C1 control character, or DEL.
    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
    }

    /// Refuses a single-line text (subject, alias, header value, name) holding any control character but TAB.
    public static func checkLine(_ text: String, field: String) throws(HeraldError) {
        if text.unicodeScalars.contains(where: { isControl($0) && $0 != "\t" }) {
            throw .validation("\(field) must not contain control characters.", field: field)
        }
    }

    /// Refuses a multi-line text (a body) holding NUL or a C0 control character other than TAB, CR, LF and FF.
    public static func checkBody(_ text: String, field: String) throws(HeraldError) {
        // TAB, LF, FF and CR are the C0 characters a body may hold.
        if text.utf8.contains(where: { $0 < 0x20 && $0 != 0x09 && $0 != 0x0A && $0 != 0x0C && $0 != 0x0D }) {
            throw .validation("\(field) must not contain NUL or control characters other than tab and line breaks.", field: field)
        }
    }
}
