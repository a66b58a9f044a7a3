import Foundation
import HTTPTypes
import HeraldAPI
import HeraldAppTestSupport
import HeraldCore
import HeraldStore
import PostgresNIO
import Testing

@Suite struct RecipientListTests {
    @Test func csvImportOfTenThousandRowsWithBadOnesCapacityAndIsolation() async throws {
        try await TestApp.run { app in
            let (tenant, token) = try await app.rootToken()
            let (_, other) = try await app.rootToken("Other")
            try await app.setGrade(tenant: tenant, 5)
            let list = try await app.request(.post, "/v1/lists", token: token, json: ["name": "newsletter", "alias": "News", "description": "Weekly"])
            #expect(list.status == 201, "\(list.body)")
            let id = list["id"] ?? ""

            var csv = "address,name,city\n"
            var bad: [Int] = []
            for index in 0..<10_000 {
                if index % 270 == 5 && bad.count < 37 {
                    csv += "not-an-address-\(index),Name \(index),X\n"
                    bad.append(index + 2)
                } else {
                    csv += "user\(index)@example.com,\"Name, \(index)\",City \(index % 7)\n"
                }
            }
            let imported = try await app.request(.post, "/v1/lists/\(id)/recipients", token: token, raw: csv, contentType: "text/csv")
            #expect(imported.status == 200, "\(imported.body.prefix(300))")
            #expect(imported.json["imported"] as? Int == 9_963)
            let rejected = imported.json["rejected"] as? [[String: Any]] ?? []
            #expect(rejected.count == 37)
            #expect(rejected.compactMap { $0["row"] as? Int } == bad)
            #expect(rejected.allSatisfy { $0["reason"] as? String == "invalid address" })
            #expect(imported.json["members"] as? Int == 9_963)
            #expect(try await app.request(.get, "/v1/lists/\(id)", token: token).json["memberCount"] as? Int == 9_963)

            // 38 more new addresses: 37 fit, the 10,001st member is refused.
            let more = (0..<38).map { ["address": "more\($0)@example.com", "variables": ["name": "M\($0)"]] as [String: Any] }
            let full = try await app.request(.post, "/v1/lists/\(id)/recipients", token: token, json: more)
            #expect(full.json["imported"] as? Int == 37, "\(full.body)")
            #expect((full.json["rejected"] as? [[String: Any]])?.first?["row"] as? Int == 38)
            #expect(((full.json["rejected"] as? [[String: Any]])?.first?["reason"] as? String)?.contains("full") == true)
            #expect(full.json["members"] as? Int == 10_000)
            // Updating an existing member still works on a full list.
            let update = try await app.request(.post, "/v1/lists/\(id)/recipients", token: token,
                                               json: [["address": "USER7@example.com", "variables": ["name": "Seven"]]])
            #expect(update.json["imported"] as? Int == 1 && update.json["members"] as? Int == 10_000, "\(update.body)")

            // Another tenant sees nothing.
            expectProblem(try await app.request(.get, "/v1/lists/\(id)", token: other), 404, "NotFound")
            expectProblem(try await app.request(.get, "/v1/lists/\(id)/recipients", token: other), 404, "NotFound")
            expectProblem(try await app.request(.get, "/v1/lists/\(id)/recipients/export", token: other), 404, "NotFound")
            expectProblem(try await app.request(.post, "/v1/lists/\(id)/recipients", token: other, json: [["address": "x@example.com"]]), 404, "NotFound")
            #expect((try await app.request(.get, "/v1/lists", token: other).json["items"] as? [Any])?.count == 0)

            // Paginated listing and the CSV export.
            let page = try await app.request(.get, "/v1/lists/\(id)/recipients?limit=2", token: token)
            let items = page.json["items"] as? [[String: Any]] ?? []
            #expect(items.count == 2 && page["nextCursor"] == items.last?["address"] as? String)
            let next = try await app.request(.get, "/v1/lists/\(id)/recipients?limit=2&cursor=\(page["nextCursor"] ?? "")", token: token)
            #expect(((next.json["items"] as? [[String: Any]])?.first?["address"] as? String ?? "") > (page["nextCursor"] ?? "~"))
            let export = try await app.request(.get, "/v1/lists/\(id)/recipients/export", token: token)
            #expect(export.status == 200 && export.headers[.contentType]?.hasPrefix("text/csv") == true)
            let lines = export.body.split(separator: "\r\n")
            #expect(lines.count == 10_001 && lines[0] == "address,city,name")
            #expect(export.body.contains("user7@example.com,,Seven"))  // an update replaces the variables
            #expect(export.body.contains("user8@example.com,City 1,\"Name, 8\""))

            // Removing a member.
            #expect(try await app.request(.delete, "/v1/lists/\(id)/recipients/user7@example.com", token: token).status == 204)
            expectProblem(try await app.request(.delete, "/v1/lists/\(id)/recipients/user7@example.com", token: token), 404, "NotFound")
            #expect(try await app.request(.get, "/v1/lists/\(id)", token: token).json["memberCount"] as? Int == 9_999)
            #expect(try await app.request(.delete, "/v1/lists/\(id)", token: token).status == 204)
        }
    }

    @Test func quotaCapsListsAndBadInput() async throws {
        try await TestApp.run { app in
            let (_, token) = try await app.rootToken()
            // A new tenant (grade 2, 2,000 a day) cannot hold more members than it may send in a day.
            let list = try await app.request(.post, "/v1/lists", token: token, json: ["name": "small"])
            let id = list["id"] ?? ""
            let rows = (0..<2_001).map { ["address": "a\($0)@example.com"] }
            let capped = try await app.request(.post, "/v1/lists/\(id)/recipients", token: token, json: rows)
            #expect(capped.json["imported"] as? Int == 2_000 && (capped.json["rejected"] as? [Any])?.count == 1, "\(capped.body.prefix(200))")

            // JSON rows: duplicates merged (the later wins), bad rows reported by position.
            let second = try await app.request(.post, "/v1/lists", token: token, json: ["name": "second"])
            let mixed = try await app.request(.post, "/v1/lists/\(second["id"] ?? "")/recipients", token: token, json: [
                ["address": "x@example.com", "variables": ["v": "1"]],
                ["address": "bad"],
                ["address": "X@Example.com", "variables": ["v": "2"]],
                ["address": "y@example.com", "variables": ["not valid": "1"]],
            ])
            #expect(mixed.json["imported"] as? Int == 1 && mixed.json["members"] as? Int == 1, "\(mixed.body)")
            #expect((mixed.json["rejected"] as? [[String: Any]])?.map { $0["row"] as? Int } == [2, 4])
            let members = try await app.request(.get, "/v1/lists/\(second["id"] ?? "")/recipients", token: token)
            #expect(((members.json["items"] as? [[String: Any]])?.first?["variables"] as? [String: String]) == ["v": "2"])

            // Whole-request refusals change nothing.
            let noHeader = try await app.request(.post, "/v1/lists/\(second["id"] ?? "")/recipients", token: token, raw: "email\nz@example.com\n",
                                                 contentType: "text/csv")
            expectProblem(noHeader, 400, "Validation.Failed")
            #expect(noHeader["field"] == "header")
            expectProblem(try await app.request(.post, "/v1/lists/\(second["id"] ?? "")/recipients", token: token, raw: "address\n\"open\n",
                                                 contentType: "text/csv"), 400, "Validation.Failed")
            expectProblem(try await app.request(.post, "/v1/lists", token: token, raw: "name\nx\n", contentType: "text/csv"), 415, "UnsupportedMediaType")
            let huge = "address\n" + String(repeating: "padding-padding-padding@example.com\n", count: 250_000)
            expectProblem(try await app.request(.post, "/v1/lists/\(second["id"] ?? "")/recipients", token: token, raw: huge, contentType: "text/csv"),
                          413, "PayloadTooLarge")
            #expect(try await app.request(.get, "/v1/lists/\(second["id"] ?? "")", token: token).json["memberCount"] as? Int == 1)

            // Limits and names.
            for index in 3...10 { #expect(try await app.request(.post, "/v1/lists", token: token, json: ["name": "l\(index)"]).status == 201) }
            expectProblem(try await app.request(.post, "/v1/lists", token: token, json: ["name": "l11"]), 409, "Limit.Exceeded")
            let (_, fresh) = try await app.rootToken("Fresh")
            #expect(try await app.request(.post, "/v1/lists", token: fresh, json: ["name": "small"]).status == 201)
            expectProblem(try await app.request(.post, "/v1/lists", token: fresh, json: ["name": "small"]), 409, "List.AlreadyExists")
            let badName = try await app.request(.post, "/v1/lists", token: fresh, json: ["name": ""])
            expectProblem(badName, 400, "Validation.Failed")
            #expect(badName["field"] == "name")
        }
    }
}
