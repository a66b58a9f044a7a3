// Fuzz target csv-import: RecipientImport.fromCSV (the text/csv upload of a recipient list) and CSV.parse.
//
// Beyond "no crash": records start on increasing lines within the text; writing the records back with
// CSV.quote and parsing that gives the same fields (what the export writes, the import reads); every row after
// the header is either a candidate or a rejection, candidates carry valid normalised addresses and variables
// within the size limit, and merging leaves each address once.
@testable import HeraldCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCSVImport(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = FuzzInput(data, size).bytes
    guard let records = try? CSV.parse(bytes) else { return 0 }
    let lines = bytes.reduce(1) { $0 + ($1 == 10 ? 1 : 0) }
    var previous = 0
    for record in records {
        fuzzCheck(record.line > previous && record.line <= lines, "record on line \(record.line) after \(previous) of \(lines)")
        fuzzCheck(!(record.fields.count == 1 && record.fields[0].isEmpty), "a blank record")
        previous = record.line
    }
    // A byte-order mark in front, as a spreadsheet writes one: a first field that itself starts with one keeps it.
    let written = [0xEF, 0xBB, 0xBF] + Array(records.map { $0.fields.map(CSV.quote).joined(separator: ",") }.joined(separator: "\r\n").utf8)
    let reread = try? CSV.parse(written)
    fuzzCheck(reread?.map(\.fields) == records.map(\.fields), "CSV.quote'd records read back differently")

    guard let (candidates, rejected) = try? RecipientImport.fromCSV(bytes) else { return 0 }
    fuzzCheck(candidates.count + rejected.count == records.count - 1, "\(records.count - 1) rows gave \(candidates.count) + \(rejected.count)")
    let rows = Set(records.dropFirst().map(\.line))
    for candidate in candidates {
        fuzzCheck(rows.contains(candidate.row), "candidate row \(candidate.row)")
        fuzzCheck((try? MailAddress(candidate.address))?.description == candidate.address, "candidate address \(candidate.address.debugDescription)")
        fuzzCheck(candidate.variables.keys.allSatisfy(RecipientImport.isVariableName), "a bad variable name")
        fuzzCheck(candidate.variables.reduce(2) { $0 + $1.key.utf8.count + $1.value.utf8.count + 6 } <= RecipientImport.maxVariablesSize,
                  "variables over the limit")
    }
    fuzzCheck(rejected.allSatisfy { rows.contains($0.row) && !$0.reason.isEmpty }, "a rejection without its row or reason")
    let merged = RecipientImport.merged(candidates)
    fuzzCheck(Set(merged.map(\.address)).count == merged.count && Set(merged.map(\.address)) == Set(candidates.map(\.address)),
              "merging lost or repeated an address")
    return 0
}
