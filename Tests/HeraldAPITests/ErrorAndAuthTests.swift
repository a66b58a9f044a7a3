import Foundation
import HTTPTypes
import HeraldAppTestSupport
import HeraldCore
import Hummingbird
import Testing

@Suite struct ErrorTests {
    @Test func everyBadInputIsProblemJSONAndChangesNothing() async throws {
        try await TestApp.run { app in
            let (_, root) = try await app.rootToken()
            func userCount() async throws -> Int {
                (try await app.request(.get, "/v1/users", token: root).json["items"] as? [Any])?.count ?? -1
            }
            let before = try await userCount()
            expectProblem(try await app.request(.get, "/v1/no-such-route", token: root), 404, "NotFound")
            expectProblem(try await app.request(.get, "/nothing/here"), 404, "NotFound")
            let wrongMethod = try await app.request(.put, "/v1/users", token: root, json: ["name": "x"])
            expectProblem(wrongMethod, 405, "MethodNotAllowed")
            #expect(wrongMethod.headers[.allow]?.contains("POST") == true)
            expectProblem(try await app.request(.post, "/v1/users", token: root, raw: "{\"name\": "), 400, "Validation.Failed")
            expectProblem(try await app.request(.post, "/v1/users", token: root, raw: "[1,2]"), 400, "Validation.Failed")
            let missing = try await app.request(.post, "/v1/users", token: root, json: [String: String]())
            expectProblem(missing, 400, "Validation.Failed")
            #expect(missing["field"] == "name")
            let wrongType = try await app.request(.post, "/v1/users", token: root, json: ["name": 42])
            expectProblem(wrongType, 400, "Validation.Failed")
            #expect(wrongType["field"] == "name")
            let unknownField = try await app.request(.post, "/v1/users", token: root, json: ["name": "typo", "enabeld": false])
            expectProblem(unknownField, 400, "Validation.Failed")
            #expect(unknownField["field"] == "enabeld")
            let badName = try await app.request(.post, "/v1/users", token: root, json: ["name": "has spaces and ✓"])
            expectProblem(badName, 400, "Validation.Failed")
            #expect(badName["field"] == "name")
            expectProblem(try await app.request(.post, "/v1/users", token: root, raw: "name=x", contentType: "application/x-www-form-urlencoded"),
                          415, "UnsupportedMediaType")
            expectProblem(try await app.request(.post, "/v1/users", token: root, raw: "{\"name\":\"" + String(repeating: "a", count: 300_000) + "\"}"),
                          413, "PayloadTooLarge")
            let badPolicy = try await app.request(.post, "/v1/policies", token: root,
                                                  json: ["name": "P", "document": ["Statement": [["Effect": "Allow", "Action": ["ecs:Run"], "Resource": "*"]]]])
            expectProblem(badPolicy, 400, "Validation.Failed")
            #expect(badPolicy["field"] == "document.Statement[0].Action[0]")
            // Unknown keys are refused at any depth: a Condition the evaluator would ignore must not pass silently.
            let nestedUnknown = try await app.request(.post, "/v1/policies", token: root, json: [
                "name": "P", "document": ["Statement": [["Effect": "Allow", "Action": "dm:*", "Resource": "*", "Condition": ["IpAddress": "1.2.3.4"]]]],
            ])
            expectProblem(nestedUnknown, 400, "Validation.Failed")
            #expect(nestedUnknown["field"] == "document.Statement[0].Condition", "\(nestedUnknown.body)")
            let noBody = try await app.request(.post, "/v1/policies", token: root, raw: "")
            expectProblem(noBody, 400, "Validation.Failed")
            let badLimitType = try await app.request(.get, "/v1/users?limit=ten", token: root)
            expectProblem(badLimitType, 400, "Validation.Failed")
            #expect(badLimitType["field"] == "limit", "\(badLimitType.body)")
            let badEffect = try await app.request(.post, "/v1/policies", token: root,
                                                  json: ["name": "P", "document": ["Statement": [["Effect": "Maybe", "Action": "dm:*", "Resource": "*"]]]])
            expectProblem(badEffect, 400, "Validation.Failed")
            let badCIDR = try await app.request(.put, "/v1/ip-protection", token: root, json: ["enabled": true, "allow": ["10.0.0.0/8", "300.1.1.1"]])
            expectProblem(badCIDR, 400, "Validation.Failed")
            #expect(badCIDR["field"] == "allow[1]")
            expectProblem(try await app.request(.get, "/v1/users?limit=0", token: root), 400, "Validation.Failed")
            expectProblem(try await app.request(.get, "/v1/users?cursor=%%%", token: root), 400, "Validation.Failed")
            expectProblem(try await app.request(.get, "/v1/audit-log?from=yesterday", token: root), 400, "Validation.Failed")
            expectProblem(try await app.request(.get, "/v1/users/not-a-uuid", token: root), 404, "NotFound")
            #expect(try await userCount() == before)
            #expect((try await app.request(.get, "/v1/policies", token: root).json["items"] as? [Any])?.count == 2)
            // IP protection unchanged by the refused PUT.
            #expect(try await app.request(.get, "/v1/ip-protection", token: root).json["enabled"] as? Bool == false)
            // Every response, success included, carries a request id; a sane given one is echoed.
            let ok = try await app.request(.get, "/healthz", headers: [HTTPField.Name("X-Request-Id")!: "trace-123"])
            #expect(ok.headers[HTTPField.Name("X-Request-Id")!] == "trace-123")
            // Made ones are 20 characters of [0-9A-Za-z], each new.
            var made = Set<String>()
            for _ in 0..<20 {
                let id = try await app.request(.get, "/healthz").headers[HTTPField.Name("X-Request-Id")!] ?? ""
                #expect(id.utf8.count == 20 && id.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) }, "\(id)")
                made.insert(id)
            }
            #expect(made.count == 20)
        }
    }

    @Test func authFailures() async throws {
        try await TestApp.run { app in
            let created = try await app.createTenant("Acme")
            expectProblem(try await app.request(.get, "/v1/users"), 401, "Auth.InvalidToken")
            expectProblem(try await app.request(.get, "/v1/users", headers: [.authorization: "Basic abc"]), 401, "Auth.InvalidToken")
            expectProblem(try await app.request(.get, "/v1/users", token: "garbage"), 401, "Auth.InvalidToken")
            // Wrong secret and unknown id answer alike.
            let wrong = try await app.request(.post, "/v1/auth/token", json: ["accessKeyId": created.keyID, "accessKeySecret": "nope"])
            let unknown = try await app.request(.post, "/v1/auth/token", json: ["accessKeyId": "LTAI" + String(repeating: "x", count: 20), "accessKeySecret": "nope"])
            expectProblem(wrong, 401, "Auth.InvalidCredentials")
            expectProblem(unknown, 401, "Auth.InvalidCredentials")
            #expect(wrong.json["detail"] as? String == unknown.json["detail"] as? String)
            // alg:none and a forged signature.
            let token = try await app.token(created.keyID, created.secret)
            let parts = token.split(separator: ".").map(String.init)
            let none = Base64URL.encode(Array("{\"alg\":\"none\",\"typ\":\"JWT\"}".utf8))
            expectProblem(try await app.request(.get, "/v1/users", token: "\(none).\(parts[1])."), 401, "Auth.InvalidToken")
            let forgedSig = Base64URL.encode(Array(repeating: 1, count: 64))
            expectProblem(try await app.request(.get, "/v1/users", token: "\(parts[0]).\(parts[1]).\(forgedSig)"), 401, "Auth.InvalidToken")
            let wrongKid = Base64URL.encode(Array("{\"alg\":\"EdDSA\",\"kid\":\"knope\",\"typ\":\"JWT\"}".utf8))
            expectProblem(try await app.request(.get, "/v1/users", token: "\(wrongKid).\(parts[1]).\(parts[2])"), 401, "Auth.InvalidToken")
            // Expiry: 15 minutes (+30 s leeway) later the same token is refused.
            #expect(try await app.request(.get, "/v1/users", token: token).status == 200)
            app.clock.advance(15 * 60 + 31)
            expectProblem(try await app.request(.get, "/v1/users", token: token), 401, "Auth.InvalidToken")
            // Operator API needs the operator token.
            expectProblem(try await app.request(.get, "/admin/v1/tenants"), 401, "Auth.InvalidToken")
            expectProblem(try await app.request(.get, "/admin/v1/tenants", token: token), 401, "Auth.InvalidToken")
        }
    }

    @Test func tokenEndpointIsRateLimited() async throws {
        try await TestApp.run(authRate: 2) { app in
            let created = try await app.createTenant("Acme")
            var statuses: [Int] = []
            var limited: Reply?
            for _ in 0..<10 {
                let reply = try await app.request(.post, "/v1/auth/token", json: ["accessKeyId": created.keyID, "accessKeySecret": "wrong"])
                statuses.append(reply.status)
                if reply.status == 429 { limited = reply }
            }
            #expect(statuses.prefix(6).allSatisfy { $0 == 401 }, "\(statuses)")
            let refusal = try #require(limited)
            expectProblem(refusal, 429, "Throttling")
            #expect(Int(refusal.headers[.retryAfter] ?? "") ?? 0 >= 1)
        }
    }

    @Test func tenantRequestsAreRateLimitedWithHeaders() async throws {
        try await TestApp.run(tenantRate: 2) { app in
            let (_, root) = try await app.rootToken()
            let first = try await app.request(.get, "/v1/users", token: root)
            #expect(first.status == 200)
            #expect(first.headers[HTTPField.Name("RateLimit-Limit")!] == "4")
            #expect(first.headers[HTTPField.Name("RateLimit-Remaining")!] == "3")
            var refused: Reply?
            for _ in 0..<8 {
                let reply = try await app.request(.get, "/v1/users", token: root)
                if reply.status == 429 { refused = reply; break }
            }
            let limited = try #require(refused)
            expectProblem(limited, 429, "Throttling")
            #expect(Int(limited.headers[.retryAfter] ?? "") ?? 0 >= 1)
            #expect(limited.headers[HTTPField.Name("RateLimit-Remaining")!] == "0")
            // Another tenant has its own budget.
            let (_, other) = try await app.rootToken("Other")
            #expect(try await app.request(.get, "/v1/users", token: other).status == 200)
        }
    }

    @Test func signingKeyRotationKeepsOldTokensValid() async throws {
        try await TestApp.run { app in
            let created = try await app.createTenant("Acme")
            let oldToken = try await app.token(created.keyID, created.secret)
            let rotated = try await app.admin(.post, "/admin/v1/signing-keys/rotate")
            #expect(rotated.status == 200, "\(rotated.body)")
            let newToken = try await app.token(created.keyID, created.secret)
            let kid = { (token: String) in
                (try? JSONSerialization.jsonObject(with: Data(Base64URL.decode(token.split(separator: ".")[0])!)) as? [String: Any])?["kid"] as? String
            }
            #expect(kid(newToken) == rotated["kid"])
            #expect(kid(oldToken) != kid(newToken))
            #expect(try await app.request(.get, "/v1/users", token: oldToken).status == 200)
            #expect(try await app.request(.get, "/v1/users", token: newToken).status == 200)
            let jwks = try await app.request(.get, "/.well-known/jwks.json")
            let kids = (jwks.json["keys"] as? [[String: Any]])?.compactMap { $0["kid"] as? String } ?? []
            #expect(Set(kids) == Set([kid(oldToken)!, kid(newToken)!]))
        }
    }
}

@Suite struct TenantStatusTests {
    @Test func frozenManagesBannedCannot() async throws {
        try await TestApp.run { app in
            let created = try await app.createTenant("Acme")
            let token = try await app.token(created.keyID, created.secret)
            let frozen = try await app.admin(.post, "/admin/v1/tenants/\(created.tenant)/freeze", json: ["reason": "test"])
            #expect(frozen["status"] == "frozen", "\(frozen.body)")
            #expect(frozen.json["freezeCount"] as? Int == 1)
            #expect(try await app.request(.post, "/v1/users", token: token, json: ["name": "still-works"]).status == 201)
            let unfrozen = try await app.admin(.post, "/admin/v1/tenants/\(created.tenant)/unfreeze")
            #expect(unfrozen["status"] == "active", "\(unfrozen.body)")
            let banned = try await app.admin(.post, "/admin/v1/tenants/\(created.tenant)/ban")
            #expect(banned["status"] == "banned")
            expectProblem(try await app.request(.get, "/v1/users", token: token), 403, "Account.Banned")
            expectProblem(try await app.request(.post, "/v1/auth/token", json: ["accessKeyId": created.keyID, "accessKeySecret": created.secret]),
                          403, "Account.Banned")
            expectProblem(try await app.admin(.post, "/admin/v1/tenants/\(created.tenant)/unfreeze"), 409, "Tenant.Banned")
            let listed = try await app.admin(.get, "/admin/v1/tenants?status=banned")
            #expect((listed.json["items"] as? [[String: Any]])?.count == 1)
            expectProblem(try await app.admin(.get, "/admin/v1/tenants/\(UUID())"), 404, "NotFound")
        }
    }
}

@Suite struct IPProtectionRouteTests {
    @Test func guardRefusesOutsideAllowlist() async throws {
        try await TestApp.run { app in
            let (_, root) = try await app.rootToken()
            // Off by default: allowed.
            let open = try await app.request(.post, "/v1/ip-protection/check", token: root)
            #expect(open.status == 200, "\(open.body)")
            let put = try await app.request(.put, "/v1/ip-protection", token: root, json: ["enabled": true, "allow": ["203.0.113.0/24", "2001:db8::/32"]])
            #expect(put.status == 200, "\(put.body)")
            #expect(put.json["allow"] as? [String] == ["203.0.113.0/24", "2001:db8::/32"])
            expectProblem(try await app.request(.post, "/v1/ip-protection/check", token: root), 403, "IpProtection.Denied")
            // Management is not affected by IP protection.
            #expect(try await app.request(.get, "/v1/users", token: root).status == 200)
            let allowLocal = try await app.request(.put, "/v1/ip-protection", token: root, json: ["enabled": true, "allow": ["127.0.0.1/32"]])
            #expect(allowLocal.status == 200)
            let allowed = try await app.request(.post, "/v1/ip-protection/check", token: root)
            #expect(allowed.status == 200)
            #expect(allowed["clientIp"] == "127.0.0.1")
        }
    }
}
