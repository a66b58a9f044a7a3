import Foundation
@testable import HeraldCore
import Testing

/// The checks of an SMTP-submitted message's header section: the RFC 5322 address parser, the From/Sender
/// rule against the authenticated address (every known bypass), control characters and UTF-8, duplicate
/// fields, and the fields removed before the message is stored.
@Suite struct SubmissionHeaderTests {
    static let sender = "sender@tenant.example"

    /// A message with these header lines (CRLF-joined, as the SMTP server hands them over) and a short body.
    static func message(_ lines: [String], body: String = "Hello\r\n") -> [UInt8] {
        Array((lines.joined(separator: "\r\n") + "\r\n\r\n" + body).utf8)
    }

    static func refusal(_ raw: [UInt8]) -> HeraldError? {
        do {
            _ = try SendRules.validateSubmission(from: sender, to: ["ann@example.org"], raw: raw)
            return nil
        } catch {
            return error
        }
    }

    @Test func parsesAddressListsWithQuotesCommentsAndGroups() throws {
        let parsed = try HeaderAddressParser.parse(
            #""Doe, John" <j@x.example> (work), Team: a@b.example, "C (c)" <c@d.example>;, (lead) e@f.example, Empty:;"#)
        #expect(parsed == [
            .mailbox(HeaderMailbox(displayName: "Doe, John", address: "j@x.example", comments: ["work"])),
            .group(name: "Team", members: [HeaderMailbox(address: "a@b.example"), HeaderMailbox(displayName: "C (c)", address: "c@d.example")]),
            .mailbox(HeaderMailbox(address: "e@f.example", comments: ["lead"])),
            .group(name: "Empty", members: []),
        ])
        #expect(try HeaderAddressParser.parse("John Q. Public <jqp@x.example>") == [.mailbox(HeaderMailbox(displayName: "John Q. Public", address: "jqp@x.example"))])
        #expect(try HeaderAddressParser.parse(#""a b"@x.example"#) == [.mailbox(HeaderMailbox(address: #""a b"@x.example"#))])
        #expect(try HeaderAddressParser.parse("Jürgen <jürgen@bücher.example>") == [.mailbox(HeaderMailbox(displayName: "Jürgen", address: "jürgen@bücher.example"))])
        #expect(try HeaderAddressParser.parse("a@b.example ((nested) comment)") == [.mailbox(HeaderMailbox(address: "a@b.example", comments: ["(nested) comment"]))])
    }

    @Test(arguments: ["", " ", "a@b.example,", ",a@b.example", "a@b.example,,c@d.example", "<a@b.example", "\"open <a@b.example>",
                      "(open a@b.example", "<@relay.example:a@b.example>", "a@[10.0.0.1]", "a..b@c.example", "a@b..example", "a @ b . example",
                      "a@b.example <c@d.example>", "Name", "<>", "Group: a@b.example", "Group: Inner: a@b.example;;", "a@", "@b.example"])
    func refusesMalformedOrObsoleteLists(_ text: String) {
        #expect(throws: HeaderAddressError.self, "\(text)") { try HeaderAddressParser.parse(text) }
    }

    @Test(arguments: [
        "From: sender@tenant.example",
        "From: <sender@tenant.example>",
        "From: Acme Billing <sender@tenant.example>",
        "From: \"Acme, Billing\" <Sender@Tenant.Example>",
        "From: \"Acme (Billing)\" <sender@tenant.example> (our billing desk)",
        "From: John Q. Public <sender@tenant.example>",
        "From: Acme\r\n Billing\r\n\t<sender@tenant.example>",
        "From : sender@tenant.example",
        "FROM: \"help@tenant.example\" <sender@tenant.example>",
        "From: =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <sender@tenant.example>",
        "From: =?gb2312?B?1cXI/Q==?= <sender@tenant.example>",
        "From: \"Support @ Acme\" <sender@tenant.example>",
    ])
    func acceptsTheAuthenticatedAddressHoweverWritten(_ from: String) throws {
        let send = try SendRules.validateSubmission(from: Self.sender, to: ["ann@example.org"],
                                                     raw: Self.message([from, "To: ann@example.org", "Subject: Hi"]))
        #expect(send.from.description == Self.sender && send.subject == "Hi")
        #expect(send.replyTo == .senderDefault, "no Reply-To field: the sender's confirmed one, if any")
    }

    @Test func aReplyToFieldAsksForItsAddress() throws {
        let send = try SendRules.validateSubmission(from: Self.sender, to: ["ann@example.org"],
                                                     raw: Self.message(["From: \(Self.sender)", "Reply-To: \"Help Desk\" <Help@Tenant.example>", "Subject: Hi"]))
        #expect(send.replyTo == .address(try MailAddress("help@tenant.example")))
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var lines: [String]
        var code: String
        var field: String
        var testDescription: String { lines.joined(separator: " | ") }
    }

    static let refused: [Case] = [
        // The bypasses of the old check (the last <…> of the first From field, comments included).
        Case(lines: ["From: ceo@bank.example (<sender@tenant.example>)"], code: "InvalidMailAddress.Mismatch", field: "From"),
        Case(lines: ["From: ceo@bank.example, <sender@tenant.example>"], code: "InvalidMailAddress.Mismatch", field: "From"),
        Case(lines: ["From: <sender@tenant.example>, ceo@bank.example"], code: "InvalidMailAddress.Mismatch", field: "From"),
        Case(lines: ["From: sender@tenant.example", "From: ceo@bank.example"], code: "InvalidHeader.Duplicate", field: "from"),
        Case(lines: ["From: sender@tenant.example", "from : ceo@bank.example"], code: "InvalidHeader.Duplicate", field: "from"),
        // Another domain's address shown beside the right one.
        Case(lines: ["From: \"ceo@bank.example\" <sender@tenant.example>"], code: "InvalidMailAddress.Mismatch", field: "From"),
        Case(lines: ["From: ceo@bank.example <sender@tenant.example>"], code: "InvalidHeader.Malformed", field: "From"),
        Case(lines: ["From: (ceo@bank.example) <sender@tenant.example>"], code: "InvalidMailAddress.Mismatch", field: "From"),
        Case(lines: ["From: =?utf-8?b?Y2VvQGJhbmsuZXhhbXBsZQ==?= <sender@tenant.example>"], code: "InvalidMailAddress.Mismatch", field: "From"),
        Case(lines: ["From: =?iso-8859-1?q?ceo=40bank.example?= <sender@tenant.example>"], code: "InvalidMailAddress.Mismatch", field: "From"),
        Case(lines: ["From: \"ceo\u{FF20}bank.example\" <sender@tenant.example>"], code: "InvalidMailAddress.Mismatch", field: "From"),
        Case(lines: ["From: =?utf-16?b?AGMAZQBv?= <sender@tenant.example>"], code: "InvalidMailAddress.Mismatch", field: "From"),
        // Not the address, or not one mailbox.
        Case(lines: ["From: ceo@bank.example"], code: "InvalidMailAddress.Mismatch", field: "From"),
        Case(lines: ["From: sender@tenant.example.evil.example"], code: "InvalidMailAddress.Mismatch", field: "From"),
        Case(lines: ["From: Undisclosed: sender@tenant.example;"], code: "InvalidMailAddress.Mismatch", field: "From"),
        Case(lines: ["From: <@relay.example:sender@tenant.example>"], code: "InvalidHeader.Malformed", field: "From"),
        Case(lines: ["From: \"unclosed <sender@tenant.example>"], code: "InvalidHeader.Malformed", field: "From"),
        Case(lines: ["From: sender@tenant.example,"], code: "InvalidHeader.Malformed", field: "From"),
        Case(lines: ["Subject: no From"], code: "InvalidHeader.Missing", field: "From"),
        Case(lines: ["From: sender@tenant.example", "Sender: ceo@bank.example"], code: "InvalidMailAddress.Mismatch", field: "Sender"),
        Case(lines: ["From: sender@tenant.example", "Sender: sender@tenant.example", "Sender: ceo@bank.example"], code: "InvalidHeader.Duplicate",
             field: "sender"),
        Case(lines: ["From: sender@tenant.example", "Reply-To: not an address"], code: "InvalidHeader.Malformed", field: "Reply-To"),
        Case(lines: ["From: sender@tenant.example", "Reply-To: a@b.example", "Reply-To: c@d.example"], code: "InvalidHeader.Duplicate",
             field: "reply-to"),
        // Replies go to one mailbox, which the accepting transaction checks is the sender's confirmed reply-to.
        Case(lines: ["From: sender@tenant.example", "Reply-To: help@tenant.example, ceo@bank.example"], code: "InvalidReplyAddress.NotVerified",
             field: "Reply-To"),
        Case(lines: ["From: sender@tenant.example", "Reply-To: Team: help@tenant.example;"], code: "InvalidReplyAddress.NotVerified",
             field: "Reply-To"),
        Case(lines: ["From: sender@tenant.example", "Subject: one", "Subject: two"], code: "InvalidHeader.Duplicate", field: "subject"),
        // Header sections that readers split differently.
        Case(lines: [" From: sender@tenant.example"], code: "InvalidHeader.Malformed", field: "header"),
        Case(lines: ["From: sender@tenant.example", "no colon here"], code: "InvalidHeader.Malformed", field: "header"),
        Case(lines: ["From: sender@tenant.example", "Bad Name: x"], code: "InvalidHeader.Malformed", field: "header"),
        // Control characters (the NUL used to abort the shared accept transaction).
        Case(lines: ["From: sender@tenant.example", "Subject: x\0"], code: "Validation.Failed", field: "Subject"),
        Case(lines: ["From: sender@tenant.example", "Subject: x\rFrom: ceo@bank.example"], code: "Validation.Failed", field: "Subject"),
        Case(lines: ["From: sender@tenant.example", "X-Note: bell\u{7}"], code: "Validation.Failed", field: "X-Note"),
        Case(lines: ["From: sender@tenant.example", "Subject: folded", " on\u{7F}"], code: "Validation.Failed", field: "Subject"),
        Case(lines: ["From: sender@tenant.example\0"], code: "Validation.Failed", field: "From"),
    ]

    @Test(arguments: refused)
    func refusesWithAStableCode(_ refused: Case) throws {
        let error = try #require(Self.refusal(Self.message(refused.lines + ["To: ann@example.org"])))
        #expect(error.code == refused.code && error.field == refused.field, "\(error)")
        #expect(error.kind == .invalid)
    }

    @Test func refusesHeadersThatAreNotUTF8() throws {
        var raw = Array("From: sender@tenant.example\r\nSubject: caf".utf8) + [0xE9] + Array("\r\n\r\nbody\r\n".utf8)
        let error = try #require(Self.refusal(raw))
        #expect(error.code == "Validation.Failed" && error.field == "Subject", "\(error)")
        raw = Self.message(["From: sender@tenant.example", "Subject: Grüße"], body: "Latin-1 in the body is the body's business: \u{E9}\r\n")
        #expect(try SendRules.validateSubmission(from: Self.sender, to: ["ann@example.org"], raw: raw).subject == "Grüße")
        // Bytes that are not UTF-8 in the body are not looked at.
        let body = Array("From: sender@tenant.example\r\n\r\n".utf8) + [0xE9, 0x00, 13, 10]
        #expect(Self.refusal(body) == nil)
    }

    @Test func removesBccAndHeraldsOwnFieldsBeforeStoring() throws {
        let raw = Self.message(["From: sender@tenant.example", "To: ann@example.org", "Bcc: boss@example.org,", " spy@example.org",
                                "X-Herald-Message-Id: 00000000-0000-0000-0000-000000000000", "Subject: Hi", "resent-bcc: x@example.org",
                                "X-Herald-Tag: invoices"], body: "Bcc: stays in the body\r\n")
        let send = try SendRules.validateSubmission(from: Self.sender, to: ["ann@example.org"], raw: raw)
        let stored = String(decoding: try #require(send.raw), as: UTF8.self)
        #expect(stored == "From: sender@tenant.example\r\nTo: ann@example.org\r\nSubject: Hi\r\nX-Herald-Tag: invoices\r\n\r\nBcc: stays in the body\r\n",
                "\(stored)")
        #expect(send.tag == "invoices")
        // A message with nothing to remove is stored byte for byte.
        let clean = Self.message(["From: sender@tenant.example", "Subject: Hi"])
        #expect(try SendRules.validateSubmission(from: Self.sender, to: ["ann@example.org"], raw: clean).raw == clean)
    }

    @Test func displayNameDomains() {
        #expect(HeaderAddressParser.addressDomains(in: "ceo@Bank.Example.") == ["bank.example"])
        #expect(HeaderAddressParser.addressDomains(in: "Support @ Acme") == [])
        #expect(HeaderAddressParser.addressDomains(in: "=?UTF-8?B?Y2VvQGJhbmsuZXhhbXBsZQ?=") == ["bank.example"])
        #expect(HeaderAddressParser.decodeEncodedWords("=?utf-8?q?J=C3=BCrgen_M?= x") == "Jürgen M x")
        #expect(HeaderAddressParser.addressDomains(in: "=?utf-32?b?AAAAYw==?=") == nil)
    }
}

/// scrypt on its own bounded pool of threads.
@Suite struct PasswordHasherTests {
    @Test func hashesOnItsOwnThreadsAtMostThreadsAtOnce() async throws {
        let pool = PasswordHasher(threads: 2)
        let hash = try await pool.hash("Correct-Horse-42")
        #expect(await pool.verify("Correct-Horse-42", against: hash))
        #expect(await !pool.verify("Correct-Horse-43", against: hash))
        let onPool = await pool.run { Thread.current.threadDictionary[PasswordHasher.threadMark] as? Bool == true }
        #expect(onPool, "the work runs on one of the pool's threads")
        // Eight logins at once: two hash, the others wait their turn (against a cheap hash: N = 2^10, so that
        // the suite's other tests are not starved of CPU by a debug build's scrypt).
        let cheap = try SMTPPassword.hash("Correct-Horse-42", salt: Array(repeating: 7, count: 16), logN: 10, blockSize: 8, parallelism: 1)
        let results = await withTaskGroup(of: Bool.self) { group in
            for index in 0..<8 { group.addTask { await pool.verify(index.isMultiple(of: 2) ? "Correct-Horse-42" : "wrong", against: cheap) } }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(results.filter { $0 }.count == 4)
        #expect(pool.peakConcurrency == 2)
    }

    @Test func unknownUsersAreCheckedAgainstAWellFormedHash() throws {
        let real = try SMTPPassword.hash("Correct-Horse-42")
        // The same scheme and cost as a real hash, so verifying against it runs scrypt in full (and never matches).
        #expect(SMTPPassword.unknownUserHash.split(separator: "$").prefix(4) == real.split(separator: "$").prefix(4))
        #expect(SMTPPassword.unknownUserHash.split(separator: "$").count == 6)
        #expect(!SMTPPassword.verify("Correct-Horse-42", against: SMTPPassword.unknownUserHash))
        #expect(SMTPPassword.fingerprint(of: real) != SMTPPassword.fingerprint(of: try SMTPPassword.hash("Correct-Horse-42")))
    }
}
