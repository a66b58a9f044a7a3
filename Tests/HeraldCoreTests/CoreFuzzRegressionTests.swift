import Foundation
import HeraldCore
import Testing

/// What the libFuzzer targets mail-header and csv-import (ops/fuzz) found, kept as unit tests; each input is
/// also in the target's corpus under Fuzz/.
@Suite struct CoreFuzzRegressionTests {
    /// mail-header: a field whose first line is empty (`From:` then a folded line) came out with a leading space,
    /// and a blank continuation line left a trailing one.
    @Test func foldedHeaderFieldsAreJoinedWithoutSpaceAtTheEnds() {
        let message = Array("From:\r\n \"a\" <sender@tenant.example>\r\nSubject: a long\r\n \t\r\n folded subject\r\nX-Blank: x\r\n  \r\n\r\nbody\r\n".utf8)
        let fields = MIME.headerFields(message)
        #expect(fields.map(\.name) == ["from", "subject", "x-blank"])
        #expect(fields.first { $0.name == "from" }?.value == "\"a\" <sender@tenant.example>")
        #expect(fields.first { $0.name == "subject" }?.value == "a long folded subject")
        #expect(fields.first { $0.name == "x-blank" }?.value == "x")
        #expect(fields.allSatisfy { $0.value == $0.value.trimmingCharacters(in: .whitespaces) })
    }

    /// csv-import: CSV.quote compared Characters, and `"\r\n"` is one Character, as is a comma or a quote with a
    /// combining mark after it: such a field was written unquoted, and the reader (which reads bytes) split it.
    @Test func quotingLooksAtBytesNotCharacters() throws {
        for field in [",\u{301}", "\"\u{301}x", "a\r\nb", "x\"\u{301}\"", "plain", "", "é,ü"] {
            let written = "address,v\r\nann@example.org," + CSV.quote(field) + "\r\n"
            let records = try CSV.parse(Array(written.utf8))
            #expect(records.map(\.fields) == [["address", "v"], ["ann@example.org", field]], "\(field.debugDescription) written as \(CSV.quote(field).debugDescription)")
        }
        #expect(CSV.quote(",\u{301}") == "\",\u{301}\"")
    }
}
