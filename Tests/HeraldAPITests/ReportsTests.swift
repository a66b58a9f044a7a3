import Foundation
import HTTPTypes
import HeraldAPI
import HeraldAppTestSupport
import HeraldCore
import HeraldTestSupport
import PostgresNIO
import Testing

/// Reports customers read (issue #18): invalid addresses and suppressions as CSV, and a tenant's removal of an
/// invalid address audited, capped or forbidden by the operator.
@Suite struct ReportsTests {
    @Test func invalidAddressesAndSuppressionsExportAsCSVAndRemovalsFollowTheOperator() async throws {
        try await TestApp.run { app in
            let (tenantText, token) = try await app.rootToken("Reports")
            let tenant = try #require(UUID(uuidString: tenantText))
            try await AcceptTrustTests.system(app, """
                INSERT INTO invalid_addresses (tenant_id, address, hard_bounces, listed, updated_at)
                VALUES (\(tenant), 'gone@example.org', 2, true, '2026-12-01T10:00:00Z'), (\(tenant), 'q"uote,d@example.org', 1, false, '2026-12-02T10:00:00Z'),
                       (\(tenant), 'third@example.org', 3, true, '2026-12-03T10:00:00Z')
                """)
            _ = try await app.request(.post, "/v1/suppressions", token: token, json: ["address": "eve@example.org"])
            let csvHeaders: HTTPFields = [.accept: "text/csv"]
            let invalid = try await app.request(.get, "/v1/invalid-addresses?format=csv", token: token, contentType: nil, headers: csvHeaders)
            #expect(invalid.status == 200 && invalid.headers[.contentType]?.hasPrefix("text/csv") == true, "\(invalid.status) \(invalid.body)")
            #expect(invalid.body == "address,hardBounces,listed,updatedAt\r\ngone@example.org,2,true,2026-12-01T10:00:00Z\r\n"
                    + "\"q\"\"uote,d@example.org\",1,false,2026-12-02T10:00:00Z\r\nthird@example.org,3,true,2026-12-03T10:00:00Z\r\n", "\(invalid.body)")
            // The CSV reads back with the importer's own parser.
            #expect(try CSV.parse(Array(invalid.body.utf8)).count == 4)
            let suppressions = try await app.request(.get, "/v1/suppressions?format=csv", token: token, contentType: nil, headers: csvHeaders)
            #expect(suppressions.status == 200 && suppressions.body.hasPrefix("address,scope,source,createdAt\r\neve@example.org,*,api,"),
                    "\(suppressions.body)")
            #expect(try await app.request(.get, "/v1/invalid-addresses", token: token).json["items"] != nil, "JSON stays the default")
            expectProblem(try await app.request(.get, "/v1/invalid-addresses?format=xml", token: token), 400, "Validation.Failed")

            // Removals: audited; the operator caps them (1 a month) or forbids them (0).
            #expect(try await app.admin(.put, "/admin/v1/tenants/\(tenantText)/limits", json: ["invalidAddressRemovalsPerMonth": 1]).status == 200)
            #expect(try await app.request(.delete, "/v1/invalid-addresses/gone@example.org", token: token).status == 204)
            expectProblem(try await app.request(.delete, "/v1/invalid-addresses/third@example.org", token: token), 409, "Limit.Exceeded")
            #expect(try await app.admin(.put, "/admin/v1/tenants/\(tenantText)/limits", json: ["invalidAddressRemovalsPerMonth": 0]).status == 200)
            let forbidden = try await app.request(.delete, "/v1/invalid-addresses/third@example.org", token: token)
            expectProblem(forbidden, 403, "InvalidAddress.RemovalForbidden")
            #expect(try await app.count("SELECT count(*)::int FROM invalid_addresses WHERE address = 'third@example.org'") == 1, "still listed")
            let audit = try await app.request(.get, "/v1/audit-log", token: token)
            #expect(audit.body.contains("dm:RemoveInvalidAddress") && audit.body.contains("gone@example.org"), "\(audit.body.prefix(800))")
        }
    }
}
