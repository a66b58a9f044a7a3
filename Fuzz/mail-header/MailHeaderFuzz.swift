// Fuzz target mail-header: what a tenant's SMTP client submits, as Herald reads it before accepting it:
// SendRules.validateSubmission(from:to:raw:) (the RCPT addresses and the message; the sender is the
// authenticated address), MIME.headerFields, and DeliveryReport.permanentFailure (RFC 3464 reports that come
// back to the return path). Input: the first line holds the RCPT addresses, comma-separated; the rest is the message.
//
// Beyond "no crash": header fields come out trimmed with lower-case names; a refusal is a client error with a
// stable code (never a 500); an accepted submission keeps the authenticated sender, 1 to 100 distinct
// recipients from those given, the message as it came and a bounded subject; a report is only a 5.x.x failure.
// With HERALD_FUZZ_STRICT=1 also the submission rules of issue 14 (exactly one From field, naming the
// sender; no control character but TAB in the header section), which validateSubmission is being taught.
import Foundation
@testable import HeraldCore

private let sender = "sender@tenant.example"
private let strict = ProcessInfo.processInfo.environment["HERALD_FUZZ_STRICT"] == "1"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMailHeader(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let to = String(decoding: input.field(until: 10), as: UTF8.self).split(separator: ",", omittingEmptySubsequences: false).map(String.init)
    let raw = input.rest

    let fields = MIME.headerFields(raw)
    fuzzCheck(fields.count <= raw.count, "more fields than bytes")
    for field in fields {
        fuzzCheck(field.name == field.name.lowercased() && !field.name.contains(":"), "field name \(field.name.debugDescription)")
        fuzzCheck(field.name == field.name.trimmingCharacters(in: .whitespaces) && field.value == field.value.trimmingCharacters(in: .whitespaces),
                  "untrimmed field \(field)")
    }

    do {
        let send = try SendRules.validateSubmission(from: sender, to: to, raw: raw)
        fuzzCheck(send.from == (try? MailAddress(sender)), "the sender changed to \(send.from)")
        fuzzCheck((1...SendRules.ceiling.recipientsPerSend).contains(send.recipients.count), "\(send.recipients.count) recipients")
        fuzzCheck(Set(send.recipients).count == send.recipients.count, "duplicate recipients")
        let given = Set(to.compactMap { try? MailAddress($0) })
        fuzzCheck(send.recipients.allSatisfy(given.contains), "a recipient that was not given")
        fuzzCheck(send.raw == raw, "the message changed")
        fuzzCheck(!send.subject.isEmpty && send.subject.count <= MailTemplate.maxSubject * 4, "subject of \(send.subject.count) characters")
        fuzzCheck(fields.contains { $0.name == "from" }, "accepted without a From field")
        if strict { checkIssue14Rules(fields: fields, raw: raw) }
    } catch {
        fuzzCheck(!error.code.isEmpty && !error.kind.isServerFault, "refused as \(error.kind) \(error.code)")
    }

    if let report = DeliveryReport.permanentFailure(in: raw) {
        fuzzCheck(report.status.hasPrefix("5.") && !report.status.contains(" "), "report status \(report.status.debugDescription)")
        fuzzCheck(report.diagnostic.count <= 1000 || report.diagnostic == "550 \(report.status)", "diagnostic of \(report.diagnostic.count) characters")
    }
    return 0
}

/// Exactly one From field whose only mailbox is the sender, and a header section without control characters
/// (a NUL aborts the PostgreSQL transaction the message is written in, shared with other tenants).
private func checkIssue14Rules(fields: [(name: String, value: String)], raw: [UInt8]) {
    let froms = fields.filter { $0.name == "from" }
    fuzzCheck(froms.count == 1, "accepted with \(froms.count) From fields")
    // Only the sender's domain after any @ (a display name may not hold an address of another domain).
    let value = Array(froms[0].value.lowercased().utf8), domain = Array("@tenant.example".utf8)
    for index in value.indices where value[index] == UInt8(ascii: "@") {
        fuzzCheck(value[index...].starts(with: domain), "accepted a From field with another address: \(froms[0].value.debugDescription)")
    }
    var end = raw.count
    for index in raw.indices where raw[index] == 10 && index + 2 < raw.count {
        if raw[index + 1] == 10 || (raw[index + 1] == 13 && raw[index + 2] == 10) {
            end = index
            break
        }
    }
    fuzzCheck(!raw[..<end].contains { $0 < 32 && $0 != 9 && $0 != 10 && $0 != 13 }, "accepted a header section with a control character")
}
