import Foundation
import HeraldCore
import Testing

@Suite struct MultipartFormTests {
    static let boundary = "----WebKitFormBoundary7MA4YWxkTrZu0gW"

    static func body(_ parts: [(header: String, content: String)], boundary: String = boundary, preamble: String = "", close: Bool = true) -> [UInt8] {
        var text = preamble
        for part in parts { text += "--\(boundary)\r\n\(part.header)\r\n\r\n\(part.content)\r\n" }
        if close { text += "--\(boundary)--\r\n" }
        return Array(text.utf8)
    }

    @Test func readsTheBoundaryOfAFormOnly() {
        #expect(MultipartForm.boundary(contentType: "multipart/form-data; boundary=\(Self.boundary)") == Self.boundary)
        #expect(MultipartForm.boundary(contentType: "Multipart/Form-Data;boundary=\"a b:c\"") == "a b:c")
        #expect(MultipartForm.boundary(contentType: "multipart/form-data; charset=utf-8; BOUNDARY=x") == "x")
        #expect(MultipartForm.boundary(contentType: "multipart/mixed; boundary=x") == nil)
        #expect(MultipartForm.boundary(contentType: "application/x-www-form-urlencoded") == nil)
        #expect(MultipartForm.boundary(contentType: "multipart/form-data") == nil)
        #expect(MultipartForm.boundary(contentType: "multipart/form-data; boundary=") == nil)
        #expect(MultipartForm.boundary(contentType: "multipart/form-data; boundary=\(String(repeating: "a", count: 71))") == nil)
        #expect(MultipartForm.boundary(contentType: "multipart/form-data; boundary=\"bad\r\nx\"") == nil)
        #expect(MultipartForm.boundary(contentType: "") == nil)
    }

    @Test func readsFieldsAndAFileAsSent() throws {
        let csv = "address,name\r\nann@example.org,\"Ann, A.\"\r\n--not-the-boundary\r\nbad\r\n"
        let body = Self.body([
            ("Content-Disposition: form-data; name=\"csrf\"", "token-1"),
            ("Content-Disposition: form-data; name=\"file\"; filename=\"list; 2026.csv\"\r\nContent-Type: text/csv", csv),
            ("content-disposition: form-data; name=empty", ""),
        ], preamble: "ignored preamble\r\n")
        let form = try MultipartForm.parse(body, boundary: Self.boundary)
        #expect(form.parts.map(\.name) == ["csrf", "file", "empty"])
        #expect(form.value("csrf") == "token-1")
        let file = try #require(form["file"])
        #expect(file.filename == "list; 2026.csv" && file.contentType == "text/csv" && file.text == csv)
        #expect(form["csrf"]?.filename == nil && form.value("empty") == "" && form["missing"] == nil)
    }

    @Test func keepsBinaryBytesAndReadsExtendedNames() throws {
        let bytes: [UInt8] = [0, 255, 13, 10, 45, 45, 13, 13, 10]
        var body = Array("--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.csv\"; filename*=UTF-8''%E5%90%8D.csv\r\n\r\n".utf8)
        body += bytes + Array("\r\n--b--".utf8)
        let form = try MultipartForm.parse(body, boundary: "b")
        #expect(form["f"]?.body == bytes && form["f"]?.filename == "名.csv")
        // A quoted name with an escaped quote; a folded header line.
        let folded = Array("--b\r\nContent-Disposition: form-data;\r\n name=\"a\\\"b\"\r\n\r\nv\r\n--b--\r\n".utf8)
        #expect(try MultipartForm.parse(folded, boundary: "b").value("a\"b") == "v")
    }

    @Test func refusesMalformedBodiesWithoutCrashing() {
        let good = Self.body([("Content-Disposition: form-data; name=\"a\"", "1")])
        #expect(throws: HeraldError.self) { try MultipartForm.parse([], boundary: Self.boundary) }
        #expect(throws: HeraldError.self) { try MultipartForm.parse(good, boundary: "other") }
        #expect(throws: HeraldError.self) { try MultipartForm.parse(good, boundary: "") }
        #expect(throws: HeraldError.self) { try MultipartForm.parse(Self.body([("Content-Disposition: form-data; name=\"a\"", "1")], close: false),
                                                                    boundary: Self.boundary) }
        #expect(throws: HeraldError.self) { try MultipartForm.parse(Self.body([("Content-Type: text/plain", "1")]), boundary: Self.boundary) }
        #expect(throws: HeraldError.self) { try MultipartForm.parse(Self.body([("Content-Disposition: attachment; name=\"a\"", "1")]),
                                                                    boundary: Self.boundary) }
        #expect(throws: HeraldError.self) { try MultipartForm.parse(Self.body([("Content-Disposition: form-data", "1")]), boundary: Self.boundary) }
        // Limits: parts, and the size of a part's header.
        let many = Self.body((0..<5).map { ("Content-Disposition: form-data; name=\"p\($0)\"", "x") })
        #expect(throws: HeraldError.self) { try MultipartForm.parse(many, boundary: Self.boundary, limits: .init(parts: 4)) }
        #expect((try? MultipartForm.parse(many, boundary: Self.boundary, limits: .init(parts: 5)))?.parts.count == 5)
        let big = Self.body([("Content-Disposition: form-data; name=\"a\"\r\nX-Pad: \(String(repeating: "p", count: 200))", "1")])
        #expect(throws: HeraldError.self) { try MultipartForm.parse(big, boundary: Self.boundary, limits: .init(headerBytes: 100)) }
        // Every prefix of a good body, and every single-byte change of it, is answered (parsed or refused).
        for end in 0..<good.count { _ = try? MultipartForm.parse(Array(good[..<end]), boundary: Self.boundary) }
        for index in good.indices {
            for byte: UInt8 in [0, 10, 13, 34, 45, 59, 61, 92, 255] {
                var changed = good
                changed[index] = byte
                _ = try? MultipartForm.parse(changed, boundary: Self.boundary)
            }
        }
        // Random bytes around the boundary.
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("-\r\n\";=\\ abform-datanameContent-Disposition:".utf8) + Array(Self.boundary.utf8)
        for _ in 0..<2_000 {
            let length = Int.random(in: 0..<200, using: &generator)
            let bytes = (0..<length).map { _ in alphabet.randomElement(using: &generator)! }
            _ = try? MultipartForm.parse(bytes, boundary: "-")
            _ = try? MultipartForm.parse(bytes, boundary: Self.boundary)
        }
    }
}
