import Foundation
import HeraldCore
import Testing

@Suite struct JSONTextCheckTests {
    /// The refusal for a JSON text, or nil when it passes.
    static func refusal(_ json: String) -> HeraldError? {
        do {
            try JSONTextCheck.validate(json: Array(json.utf8))
            return nil
        } catch {
            return error
        }
    }

    @Test func refusesNULControlsAndLoneSurrogatesNamingThePath() {
        let cases: [(json: String, field: String?)] = [
            (#"{"subject":"a\u0000b"}"#, "subject"),
            ("{\"subject\":\"a\u{0}b\"}", "subject"),  // raw NUL
            (#"{"headers":{"X-Foo":"\u0001"}}"#, "headers.X-Foo"),
            ("{\"headers\":{\"X-Foo\":\"a\u{1F}\"}}", "headers.X-Foo"),  // raw unit separator
            (#"{"a":1,"members":[{"address":"x"},{},{},{"vars":{"n":"ok","name":"\ud800"}}]}"#, "members[3].vars.name"),
            (#"{"to":["a","b","\udc00x"]}"#, "to[2]"),  // a lone low half
            (#"{"text":"\ud800\u0041"}"#, "text"),  // a high half followed by something else
            (#"{"text":"\ud800\ud800\udc00"}"#, "text"),
            (#"{"text":"\ud800"}"#, "text"),  // at the end of the string
            (#"{"text":"form\ffeed"}"#, "text"),
            (#"{"text":"back\bspace"}"#, "text"),
            (#"["ok","\u001b[31m"]"#, "[1]"),
            (#""\u0000""#, nil),  // a bare string at the top
            (#"{"vars":{"bad\u0000key":"v"}}"#, "vars.bad"),  // a key: the path names what was read of it
            (#"{"first":"x","second":{"deep":[[1,2],[3,{"k":"\u0007"}]]}}"#, "second.deep[1][1].k"),
            (#"{"k\u00e9y":{"v":"\u0000"}}"#, "k\u{e9}y.v"),
            (#"{"\ud83d\ude00":"\u0000"}"#, "\u{1F600}"),
        ]
        for (json, field) in cases {
            let error = Self.refusal(json)
            #expect(error?.code == "Validation.Failed", "\(json)")
            #expect(error?.kind == .invalid, "\(json)")
            #expect(error?.field == field, "\(json): \(String(describing: error))")
        }
    }

    @Test func acceptsEveryOtherText() {
        let fine = [
            #"{"subject":"a\\u0000b"}"#,  // a backslash followed by "u0000": text, not a NUL
            #"{"subject":"\\\\u0000"}"#,
            #"{"text":"tab\there\r\nnew line","html":"<p>\"quoted\"</p>\/"}"#,
            "{\"text\":\"raw\ttab and \u{e9}t\u{e9} and \u{1F600}\"}",
            #"{"emoji":"\ud83d\ude00","cjk":"\u4e2d\u6587","del":"\u007f"}"#,
            #"{"n":[1,2.5,-3e4,true,false,null],"o":{}}"#,
            "",
            "[]",
        ]
        for json in fine {
            #expect(Self.refusal(json) == nil, "\(json)")
        }
    }

    /// A large body (a 60,000-member import, ~5 MB) is read to its end: the last value's NUL is found and named.
    /// How fast is not asserted here (speed lives in `ops/bench`, not in timed unit tests, which fail on a
    /// loaded machine); the check is one pass over the bytes by construction.
    @Test func largeBodiesAreCheckedToTheEnd() throws {
        var rows: [String] = []
        for index in 0..<60_000 { rows.append(#"{"address":"user\#(index)@example.org","variables":{"name":"Name \#(index)","code":"\u00e9\#(index)"}}"#) }
        let clean = "[" + rows.joined(separator: ",") + "]"
        #expect(Self.refusal(clean) == nil)
        let dirty = String(clean.dropLast(4)) + #"\u0000"}}]"#
        #expect(Self.refusal(dirty)?.field == "[59999].variables.code")
    }

    @Test func uploadedTextMustBeUTF8WithoutNUL() throws {
        try JSONTextCheck.validate(text: Array("address,name\nann@example.org,\u{e9}t\u{e9}\n".utf8))
        #expect(throws: HeraldError.self) { try JSONTextCheck.validate(text: Array("address\nann@example.org\0\n".utf8)) }
        #expect(throws: HeraldError.self) { try JSONTextCheck.validate(text: [0x61, 0x0A, 0xC3, 0x28]) }  // a broken two-byte sequence
        #expect(throws: HeraldError.self) { try JSONTextCheck.validate(text: [0xED, 0xA0, 0x80]) }  // a UTF-8 encoded surrogate
        do {
            try JSONTextCheck.validate(text: Array("a\nb\nc\0".utf8))
        } catch {
            #expect(error.message.hasPrefix("Line 3"))
            #expect(error.code == "Validation.Failed")
        }
    }
}
