import Foundation
import HTTPTypes
import HeraldAPI
import HeraldAppTestSupport
import HeraldCore
import HeraldDNS
import HeraldTestSupport
import PostgresNIO
import Testing

/// Every number is configuration (issue #18): the operator overrides a tenant's send limits and its quota table, and
/// the sends, the account and the quota follow at once — for that tenant only.
@Suite struct ConfigurableNumbersTests {
    @Test func theOperatorOverridesATenantsSendLimitsAndQuotaTable() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await TestApp.run(dnsPort: dns.port) { app in
                let (tenant, token, _, _) = try await app.sendingTenant(dns)
                let (_, otherToken, _, _) = try await app.sendingTenant(dns, name: "Other")
                let recipients = (1...4).map { "r\($0)@example.org" }
                let quotas = [1, 5, 500, 5_000, 10_000, 20_000, 40_000, 60_000, 80_000, 100_000, 200_000, 300_000, 500_000, 1_000_000, 2_000_000, 5_000_000]
                let set = try await app.admin(.put, "/admin/v1/tenants/\(tenant)/limits", json: [
                    "recipientsPerSend": 3, "subjectLength": 10, "bodyBytes": 64, "dailyQuotas": quotas,
                ])
                #expect(set.status == 200, "\(set.body)")
                let limits = set.json["limits"] as? [String: Any] ?? [:]
                #expect(limits["recipientsPerSend"] as? Int == 3 && limits["subjectLength"] as? Int == 10 && limits["dailyQuotas"] as? [Int] == quotas,
                        "\(set.body)")
                // A bad table or a limit past what every path carries is refused whole: nothing changes.
                expectProblem(try await app.admin(.put, "/admin/v1/tenants/\(tenant)/limits", json: ["dailyQuotas": [10, 5] + Array(quotas.dropFirst(2))]),
                              400, "Validation.Failed")
                expectProblem(try await app.admin(.put, "/admin/v1/tenants/\(tenant)/limits", json: ["recipientsPerSend": 5_000]), 400, "Validation.Failed")
                #expect(try await app.admin(.get, "/admin/v1/tenants/\(tenant)/limits").json["overrides"] as? [String: Int]
                        == ["recipientsPerSend": 3, "subjectLength": 10, "bodyBytes": 64])

                // The send limits: recipients, subject, body — refused with the field, nothing written.
                let four = try await app.request(.post, "/v1/mail/single", token: token, json: TestApp.mail(to: recipients, subject: "Hi"))
                expectProblem(four, 400, "Validation.Failed")
                #expect(four["field"] == "to" && four.body.contains("At most 3 recipients"), "\(four.body)")
                let subject = try await app.request(.post, "/v1/mail/single", token: token, json: TestApp.mail(to: ["a@example.org"], subject: "Eleven char"))
                #expect(subject["field"] == "subject", "\(subject.body)")
                let body = try await app.request(.post, "/v1/mail/single", token: token, json: [
                    "from": "app@example.test", "to": ["a@example.org"], "subject": "Hi", "text": String(repeating: "x", count: 65),
                ])
                #expect(body["field"] == "html" && body.body.contains("64 bytes"), "\(body.body)")
                #expect(try await app.count("messages", tenant: tenant) == 0)
                // The other tenant keeps the installation's limits.
                #expect(try await app.request(.post, "/v1/mail/single", token: otherToken, json: TestApp.mail(to: recipients, subject: "Eleven char")).status == 200)

                // The quota table: grade 2 is 5 a day for this tenant.
                let account = try await app.request(.get, "/v1/account", token: token)
                let stored = try await AcceptTrustTests.strings(app, "SELECT coalesce(quota_table::text, 'none') FROM tenants WHERE id = \(try #require(UUID(uuidString: tenant)))")
                #expect(account.json["dailyQuota"] as? Int == 5 && account.json["grade"] as? Int == 2, "\(account.body) \(stored)")
                #expect(try await app.request(.get, "/v1/account", token: otherToken).json["dailyQuota"] as? Int == 2_000)
                for batch in [["a@example.org", "b@example.org", "c@example.org"], ["d@example.org", "e@example.org"]] {
                    #expect(try await app.request(.post, "/v1/mail/single", token: token, json: TestApp.mail(to: batch, subject: "Hi")).status == 200)
                }
                expectProblem(try await app.request(.post, "/v1/mail/single", token: token, json: TestApp.mail(to: ["f@example.org"], subject: "Hi")),
                              429, "Quota.Exceeded")
                // Back to the installation's table (null): 2,000 a day again.
                #expect(try await app.admin(.put, "/admin/v1/tenants/\(tenant)/limits", json: ["dailyQuotas": NSNull()]).status == 200)
                #expect(try await app.request(.get, "/v1/account", token: token).json["dailyQuota"] as? Int == 2_000)
                #expect(try await app.request(.post, "/v1/mail/single", token: token, json: TestApp.mail(to: ["f@example.org"], subject: "Hi")).status == 200)
            }
        }
    }
}
