import Foundation
import HTTPTypes
import HeraldAppTestSupport
import HeraldCore
import Testing

@Suite struct LimitOverrideTests {
    @Test func operatorOverridesApplyAtOnceAndOnlyToThatTenant() async throws {
        try await TestApp.run { app in
            let a = try await app.createTenant("A")
            let tokenA = try await app.token(a.keyID, a.secret)
            let (_, tokenB) = try await app.rootToken("B")

            let initial = try await app.admin(.get, "/admin/v1/tenants/\(a.tenant)/limits")
            #expect((initial.json["limits"] as? [String: Any])?["domains"] as? Int == 5, "\(initial.body)")
            #expect((initial.json["limits"] as? [String: Any])?["senderDeletionsPerMonth"] as? Int == 10, "an enterprise tenant's: \(initial.body)")

            let set = try await app.admin(.put, "/admin/v1/tenants/\(a.tenant)/limits", json: ["tags": 1, "templates": 20])
            #expect(set.status == 200, "\(set.body)")
            #expect((set.json["overrides"] as? [String: Int]) == ["tags": 1, "templates": 20])
            #expect((set.json["limits"] as? [String: Any])?["tags"] as? Int == 1)

            #expect(try await app.request(.post, "/v1/tags", token: tokenA, json: ["name": "one"]).status == 201)
            let refused = try await app.request(.post, "/v1/tags", token: tokenA, json: ["name": "two"])
            expectProblem(refused, 409, "Limit.Exceeded")
            #expect(refused.json["detail"].map { "\($0)" }?.contains("limit: tags") == true)
            // Tenant B keeps the installation's limits.
            for index in 1...3 { #expect(try await app.request(.post, "/v1/tags", token: tokenB, json: ["name": "t\(index)"]).status == 201) }

            // Replacing the overrides restores the default for what is not named.
            let reset = try await app.admin(.put, "/admin/v1/tenants/\(a.tenant)/limits", json: [String: Int]())
            #expect((reset.json["overrides"] as? [String: Int]) == [:])
            #expect(try await app.request(.post, "/v1/tags", token: tokenA, json: ["name": "two"]).status == 201)

            let badName = try await app.admin(.put, "/admin/v1/tenants/\(a.tenant)/limits", json: ["domain": 3])
            expectProblem(badName, 400, "Validation.Failed")
            #expect(badName["field"] == "domain")
            let negative = try await app.admin(.put, "/admin/v1/tenants/\(a.tenant)/limits", json: ["domains": -1])
            expectProblem(negative, 400, "Validation.Failed")
            #expect(negative["field"] == "domains")
            expectProblem(try await app.admin(.get, "/admin/v1/tenants/\(UUID())/limits"), 404, "NotFound")
            expectProblem(try await app.request(.get, "/admin/v1/tenants/\(a.tenant)/limits", token: tokenA), 401, "Auth.InvalidToken")

            // The change is in the tenant's audit log.
            let audit = try await app.request(.get, "/v1/audit-log?action=admin:SetTenantLimits", token: tokenA)
            #expect((audit.json["items"] as? [Any])?.count == 2)
        }
    }
}
