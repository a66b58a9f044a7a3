import Foundation
import HeraldCore
import HeraldTestSupport
import Testing

@Suite struct MIMETests {
    static func message(html: String? = "<p>Hello <b>Jane</b></p>", text: String? = "Hello Jane", fromName: String? = "Acme News",
                        subject: String = "Welcome aboard") throws -> OutgoingMessage {
        OutgoingMessage(from: try MailAddress("news@mail.example.test"), fromName: fromName, to: try MailAddress("jane@example.org"),
                        replyTo: "help@example.test", subject: subject, html: html, text: text,
                        messageID: "0193.abc@mail.example.test", heraldMessageID: "0193abcd", date: Date(timeIntervalSince1970: 1_795_600_000),
                        extraHeaders: [("List-Unsubscribe", "<https://herald.test/u/TOKEN>"), ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")])
    }

    @Test func rendersHeadersAndMultipart() throws {
        let text = String(decoding: try Self.message().render(boundary: "B0UND"), as: UTF8.self)
        let (head, body) = try #require(text.range(of: "\r\n\r\n").map { (String(text[..<$0.lowerBound]), String(text[$0.upperBound...])) })
        #expect(head.contains("Date: Wed, 25 Nov 2026 09:46:40 +0000"))
        #expect(head.contains("From: \"Acme News\" <news@mail.example.test>"))
        #expect(head.contains("To: <jane@example.org>") && head.contains("Reply-To: <help@example.test>"))
        #expect(head.contains("Message-ID: <0193.abc@mail.example.test>") && head.contains("X-Herald-Message-Id: 0193abcd"))
        #expect(head.contains("Content-Type: multipart/alternative; boundary=\"B0UND\""))
        #expect(head.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"))
        #expect(body.contains("--B0UND\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nHello Jane\r\n"))
        #expect(body.contains("Content-Type: text/html; charset=utf-8"))
        #expect(body.hasSuffix("--B0UND--\r\n"))
        // Every line ends in CRLF and none passes 998 bytes.
        #expect(!text.replacingOccurrences(of: "\r\n", with: "").contains("\n"))
        #expect(text.components(separatedBy: "\r\n").allSatisfy { $0.utf8.count <= 998 })
    }

    @Test func encodesNonASCIINamesAndSubjects() throws {
        let text = String(decoding: try Self.message(fromName: "Ächme Ltd", subject: "Grüße aus 北京 — " + String(repeating: "é", count: 40)).render(),
                          as: UTF8.self)
        #expect(text.contains("From: =?UTF-8?B?w4RjaG1lIEx0ZA==?= <news@mail.example.test>"))
        let subjectLines = text.components(separatedBy: "\r\n").drop { !$0.hasPrefix("Subject:") }.prefix { $0.hasPrefix("Subject:") || $0.hasPrefix(" ") }
        #expect(subjectLines.count > 1 && subjectLines.allSatisfy { $0.utf8.count <= 78 })
        // Decoded back (Python's email package, an independent parser), the subject is what was given.
        let (status, decoded) = try runPython("""
            import sys, email
            from email.header import decode_header, make_header
            message = email.message_from_bytes(sys.stdin.buffer.read())
            print(str(make_header(decode_header(message["Subject"]))))
            print(str(make_header(decode_header(message["From"]))))
            """, [], input: try Self.message(fromName: "Ächme Ltd", subject: "Grüße aus 北京 — " + String(repeating: "é", count: 40)).render())
        #expect(status == 0, "\(decoded)")
        #expect(decoded.hasPrefix("Grüße aus 北京 — " + String(repeating: "é", count: 40) + "\n"), "\(decoded)")
        #expect(decoded.contains("Ächme Ltd <news@mail.example.test>"))
    }

    @Test func quotedPrintable() {
        #expect(MIME.quotedPrintable("a=b\nc \nd") == "a=3Db\r\nc=20\r\nd")
        #expect(MIME.quotedPrintable("é") == "=C3=A9")
        #expect(MIME.quotedPrintable(".hidden\n.") == "=2Ehidden\r\n=2E")
        let long = MIME.quotedPrintable(String(repeating: "x", count: 200))
        #expect(long.components(separatedBy: "\r\n").allSatisfy { $0.utf8.count <= 76 })
        #expect(long.replacingOccurrences(of: "=\r\n", with: "") == String(repeating: "x", count: 200))
    }

    @Test func extraHeadersAreChecked() {
        #expect(throws: Never.self) { try OutgoingMessage.validateExtraHeader(name: "X-Campaign", value: "spring") }
        #expect(throws: HeraldError.self) { try OutgoingMessage.validateExtraHeader(name: "Bcc", value: "x@example.com") }
        #expect(throws: HeraldError.self) { try OutgoingMessage.validateExtraHeader(name: "X-Evil", value: "a\r\nBcc: x@example.com") }
        #expect(throws: HeraldError.self) { try OutgoingMessage.validateExtraHeader(name: "Bad:Name", value: "x") }
        #expect(throws: HeraldError.self) { try OutgoingMessage.validateExtraHeader(name: "DKIM-Signature", value: "x") }
    }
}

@Suite struct DKIMTests {
    @Test func canonicalization() {
        #expect(String(decoding: DKIM.relaxedHeader(Array("SUBJect :  Hello \r\n\t  World  ".utf8)), as: UTF8.self) == "subject:Hello World")
        #expect(String(decoding: DKIM.relaxedBody(ArraySlice(Array("a  b \t\r\nc\r\n\r\n\r\n".utf8))), as: UTF8.self) == "a b\r\nc\r\n")
        #expect(DKIM.relaxedBody(ArraySlice(Array("\r\n\r\n".utf8))).isEmpty)
        #expect(String(decoding: DKIM.relaxedBody(ArraySlice(Array("no newline".utf8))), as: UTF8.self) == "no newline\r\n")
    }

    /// dkimpy (an independent implementation) verifies what we sign, and refuses it once altered.
    @Test(arguments: [1024, 2048])
    func signaturesVerifyWithDkimpy(bits: Int) throws {
        let key = try DKIMKeyPair.generate(bits: bits)
        let messages = [
            try MIMETests.message(),
            try MIMETests.message(html: nil, text: "Only text,   with  spaces  \nand a trailing line\n\n"),
            try MIMETests.message(fromName: "Ächme", subject: "Grüße " + String(repeating: "long subject ", count: 10)),
        ]
        for message in messages {
            let signed = try DKIM.sign(message.render(), domain: "mail.example.test", selector: "herald2026", key: key, at: Date())
            let script = """
                import sys, dkim
                record = ("v=DKIM1; k=rsa; p=" + sys.argv[1]).encode()
                def dns(name, timeout=5):
                    return record if name == b"herald2026._domainkey.mail.example.test." else None
                message = sys.stdin.buffer.read()
                print("ok" if dkim.verify(message, dnsfunc=dns) else "fail")
                tampered = message.replace(b"Hello", b"Hellx").replace(b"Only text", b"Only texx")
                print("ok" if dkim.verify(tampered, dnsfunc=dns) else "fail")
                """
            let (status, output) = try runPython(script, [key.publicKeyBase64], input: signed)
            #expect(status == 0, "\(output)")
            #expect(output == "ok\nfail\n", "\(output)\n\(String(decoding: signed, as: UTF8.self))")
        }
    }

    @Test func rfc5322DatesMatchFoundationsFormatter() {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        #expect(MIME.rfc5322Date(Date(timeIntervalSince1970: 0)) == "Thu, 01 Jan 1970 00:00:00 +0000")
        #expect(MIME.rfc5322Date(Date(timeIntervalSince1970: 951_782_400)) == "Tue, 29 Feb 2000 00:00:00 +0000")
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let date = Date(timeIntervalSince1970: Double(Int.random(in: -2_000_000_000...4_000_000_000, using: &generator)) + 0.75)
            #expect(MIME.rfc5322Date(date) == formatter.string(from: date), "\(date.timeIntervalSince1970)")
        }
    }
}
