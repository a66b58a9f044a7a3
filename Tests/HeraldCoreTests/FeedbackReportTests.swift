import Foundation
import HeraldCore
import Testing

/// ARF (RFC 5965) reports as mailbox providers send them, read by ``FeedbackReport``.
@Suite struct FeedbackReportTests {
    static let messageID = UUID(uuidString: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")!

    static func report(type: String = "abuse", original: String, originalType: String = "message/rfc822", encoding: String? = nil,
                       reportType: String = "feedback-report", extra: String = "Original-Rcpt-To: <ann@example.org>\r\n") -> [UInt8] {
        let body = encoding == "base64" ? Data(original.utf8).base64EncodedString(options: [.lineLength76Characters, .endLineWithCarriageReturn, .endLineWithLineFeed])
            : original
        return Array("""
            From: feedback@isp.example\r
            To: fbl@mx.herald.test\r
            Subject: Abuse report\r
            MIME-Version: 1.0\r
            Content-Type: multipart/report; report-type=\(reportType);\r
            \tboundary="=_frontier"\r
            \r
            --=_frontier\r
            Content-Type: text/plain\r
            \r
            This is an email abuse report.\r
            --=_frontier\r
            Content-Type: message/feedback-report\r
            \r
            Feedback-Type: \(type)\r
            User-Agent: ISP-FBL/1.0\r
            Version: 1\r
            Original-Mail-From: <b+token@bounces.example.test>\r
            \(extra)Arrival-Date: Mon, 07 Dec 2026 10:00:00 +0000\r
            \r
            --=_frontier\r
            Content-Type: \(originalType)\r
            \(encoding.map { "Content-Transfer-Encoding: \($0)\r\n" } ?? "")\r
            \(body)\r
            --=_frontier--\r

            """.utf8)
    }

    static let original = "Return-Path: <b+other@bounces.example.test>\r\nFrom: app@example.test\r\nTo: Ann <ann@example.org>\r\n"
        + "X-Herald-Message-Id: \(messageID.uuidString.lowercased())\r\nSubject: Hi\r\n\r\nHello\r\n"

    @Test func readsTheReportAndTheOriginal() throws {
        let report = try #require(FeedbackReport.parse(Self.report(original: Self.original)))
        #expect(report.feedbackType == "abuse" && report.isComplaint)
        #expect(report.heraldMessageID == Self.messageID)
        #expect(report.returnPaths == ["b+token@bounces.example.test", "b+other@bounces.example.test"])
        #expect(report.recipients == ["ann@example.org"], "Original-Rcpt-To, not the original's To as well")
        #expect(report.allows(recipient: "ann@EXAMPLE.org") && !report.allows(recipient: "ben@example.org"))
    }

    @Test func readsHeadersOnlyAndBase64Originals() throws {
        let headers = String(Self.original.prefix { $0 != "\r\n" }) // still the whole header section
        let report = try #require(FeedbackReport.parse(Self.report(original: Self.original, originalType: "text/rfc822-headers", encoding: "base64",
                                                                   extra: "")))
        #expect(report.heraldMessageID == Self.messageID && report.recipients == ["ann@example.org"], "\(headers.count)")
        // A redacted report names no recipient: it stands for the message's own.
        let redacted = try #require(FeedbackReport.parse(Self.report(original: "From: app@example.test\r\nSubject: Hi\r\n\r\n", extra: "")))
        #expect(redacted.recipients.isEmpty && redacted.allows(recipient: "ann@example.org") && redacted.heraldMessageID == nil)
    }

    @Test func onlyAbuseAndFraudAreComplaints() throws {
        for (type, complaint) in [("abuse", true), ("Fraud", true), ("not-spam", false), ("virus", false), ("auth-failure", false), ("other", false)] {
            let report = try #require(FeedbackReport.parse(Self.report(type: type, original: Self.original)))
            #expect(report.isComplaint == complaint, "\(type)")
        }
    }

    @Test func otherMailIsNoReport() {
        // A delivery status notification, a plain message, a report without its feedback part.
        #expect(FeedbackReport.parse(Self.report(original: Self.original, reportType: "delivery-status")) == nil)
        #expect(FeedbackReport.parse(Array("From: a@b.example\r\nSubject: Hi\r\n\r\nFeedback-Type: abuse\r\n".utf8)) == nil)
        let noFeedbackPart = String(decoding: Self.report(original: Self.original), as: UTF8.self)
            .replacingOccurrences(of: "message/feedback-report", with: "text/plain")
        #expect(FeedbackReport.parse(Array(noFeedbackPart.utf8)) == nil)
        #expect(FeedbackReport.parse([]) == nil)
        #expect(FeedbackReport.parse(Array(repeating: 0xFF, count: 4096)) == nil)
    }
}

/// The sensitive-word check and what it reads of a submitted message.
@Suite struct SensitiveWordsTests {
    @Test func findsWordsAnywhereWithoutRegardToCase() throws {
        #expect(SensitiveWords.found(in: ["Big CASINO", "x"], words: ["casino", "lottery"]) == ["casino"])
        #expect(throws: HeraldError.self) { try SensitiveWords.check([("subject", "ok"), ("html", "<b>LoTtErY</b>")], words: ["lottery"]) }
        do {
            try SensitiveWords.check([("subject", "ok"), ("html", "<b>LoTtErY</b>")], words: ["lottery"])
        } catch {
            #expect(error.code == "Content.SensitiveWord" && error.field == "html" && error.message.contains("\"lottery\""))
        }
        try SensitiveWords.check([("subject", "fine")], words: [])
        #expect(try SensitiveWords.normalize([" A ", "a", "", "B"]) == ["a", "b"])
        #expect(throws: HeraldError.self) { try SensitiveWords.normalize(["two\nlines"]) }
        #expect(throws: HeraldError.self) { try SensitiveWords.normalize(Array(repeating: "w", count: SensitiveWords.maxWords + 1)) }
    }

    @Test func readsDecodedSubjectsAndTextParts() {
        let raw = Array(("From: a@b.example\r\nSubject: =?utf-8?B?QmlnIGNhc2lubw==?=\r\nMIME-Version: 1.0\r\n"
            + "Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n--outer\r\n"
            + "Content-Type: multipart/alternative; boundary=inner\r\n\r\n--inner\r\nContent-Type: text/plain; charset=utf-8\r\n"
            + "Content-Transfer-Encoding: base64\r\n\r\n" + Data("Win the lottery".utf8).base64EncodedString() + "\r\n--inner\r\n"
            + "Content-Type: text/html\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<p>jack=\r\npot =C3=A9</p>\r\n--inner--\r\n"
            + "--outer\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            + Data("casino-in-a-pdf".utf8).base64EncodedString() + "\r\n--outer--\r\n").utf8)
        let texts = MIMEText.texts(raw)
        #expect(texts.first == "Big casino")
        #expect(texts.contains("Win the lottery"))
        #expect(texts.contains { $0.contains("<p>jackpot é</p>") }, "\(texts)")
        #expect(!texts.contains { $0.contains("casino-in-a-pdf") }, "attachments are not text")
    }
}
