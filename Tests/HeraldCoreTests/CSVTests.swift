import HeraldCore
import Testing

@Suite struct CSVTests {
    @Test func parsesQuotesCRLFAndBOM() throws {
        let text = "\u{FEFF}address,name,note\r\na@example.com,\"Doe, Jane\",\"said \"\"hi\"\"\nthen left\"\r\n\r\nb@example.com,Bob,\n"
        let records = try CSV.parse(Array(text.utf8))
        #expect(records == [
            CSV.Record(line: 1, fields: ["address", "name", "note"]),
            CSV.Record(line: 2, fields: ["a@example.com", "Doe, Jane", "said \"hi\"\nthen left"]),
            CSV.Record(line: 5, fields: ["b@example.com", "Bob", ""]),
        ])
        #expect(try CSV.parse(Array("x,y".utf8)) == [CSV.Record(line: 1, fields: ["x", "y"])])
        #expect(throws: HeraldError.self) { try CSV.parse(Array("a,\"open\nb".utf8)) }
        #expect(CSV.quote("plain") == "plain")
        #expect(CSV.quote("a,\"b\"") == "\"a,\"\"b\"\"\"")
    }

    @Test func importRowsAreCheckedOneByOne() throws {
        let csv = "name,Address,code\nJane,jane@example.com,1\nBad,not-an-address,2\nShort,x@example.com\nJ2,JANE@example.com,3\n"
        let (candidates, rejected) = try RecipientImport.fromCSV(Array(csv.utf8))
        #expect(candidates.map(\.address) == ["jane@example.com", "jane@example.com"])
        #expect(candidates[0].variables == ["name": "Jane", "code": "1"])
        #expect(rejected == [RecipientImport.Rejection(row: 3, reason: "invalid address"),
                             RecipientImport.Rejection(row: 4, reason: "expected 3 fields, found 2")])
        let merged = RecipientImport.merged(candidates)
        #expect(merged.count == 1 && merged[0].variables["code"] == "3" && merged[0].row == 2)
        #expect(throws: HeraldError.self) { try RecipientImport.fromCSV(Array("email,name\nx@example.com,X\n".utf8)) }
        #expect(throws: HeraldError.self) { try RecipientImport.fromCSV(Array("address,bad name\nx@example.com,X\n".utf8)) }
        #expect(throws: HeraldError.self) { try RecipientImport.fromCSV([]) }
        if case .failure(let rejection) = RecipientImport.check(row: 9, address: "a@example.com", variables: ["v": String(repeating: "x", count: 5000)]) {
            #expect(rejection.row == 9)
        } else {
            Issue.record("oversized variables accepted")
        }
    }
}
