import Foundation
import HTTPTypes
import HeraldAppTestSupport
import HeraldCore
import HeraldTestSupport
import Hummingbird
import JWTKit
import Testing

@Suite struct IdentityJourneyTests {
    /// The issue's user story, end to end over HTTP on 127.0.0.1.
    @Test func readOnlySubUserDisableIsolationJWKSAndAudit() async throws {
        try await TestApp.run { app in
            let (tenantA, rootA) = try await app.rootToken("Tenant A")
            // Sub-user with ReadOnlyAccess and its own key.
            let user = try await app.request(.post, "/v1/users", token: rootA, json: ["name": "reporting"])
            #expect(user.status == 201, "\(user.body)")
            let userID = try #require(user["id"])
            #expect(user.json["enabled"] as? Bool == true)
            let attach = try await app.request(.post, "/v1/users/\(userID)/policies", token: rootA, json: ["policy": "ReadOnlyAccess"])
            #expect(attach.status == 200, "\(attach.body)")
            let key = try await app.request(.post, "/v1/users/\(userID)/access-keys", token: rootA)
            #expect(key.status == 201, "\(key.body)")
            let subToken = try await app.token(try #require(key["accessKeyId"]), try #require(key["accessKeySecret"]))

            // ReadOnly: listing works, creating is Forbidden.RAM.
            let list = try await app.request(.get, "/v1/users", token: subToken)
            #expect(list.status == 200, "\(list.body)")
            #expect((list.json["items"] as? [Any])?.count == 2)
            expectProblem(try await app.request(.post, "/v1/users", token: subToken, json: ["name": "sneaky"]), 403, "Forbidden.RAM")

            // Disable the user: its still-unexpired token is refused at once.
            let disable = try await app.request(.patch, "/v1/users/\(userID)", token: rootA, json: ["enabled": false])
            #expect(disable.status == 200, "\(disable.body)")
            expectProblem(try await app.request(.get, "/v1/users", token: subToken), 401, "Auth.InvalidToken")
            // …and its key cannot get a new one.
            expectProblem(try await app.request(.post, "/v1/auth/token", json: ["accessKeyId": key["accessKeyId"]!, "accessKeySecret": key["accessKeySecret"]!]),
                          401, "Auth.InvalidCredentials")

            // Tenant B cannot see tenant A's user: 404 exactly like an id that does not exist.
            let (_, rootB) = try await app.rootToken("Tenant B")
            let foreign = try await app.request(.get, "/v1/users/\(userID)", token: rootB)
            let missing = try await app.request(.get, "/v1/users/\(UUID().uuidString.lowercased())", token: rootB)
            expectProblem(foreign, 404, "NotFound")
            expectProblem(missing, 404, "NotFound")
            #expect(foreign.json["detail"] as? String == missing.json["detail"] as? String)
            expectProblem(try await app.request(.patch, "/v1/users/\(userID)", token: rootB, json: ["enabled": true]), 404, "NotFound")
            expectProblem(try await app.request(.delete, "/v1/users/\(userID)", token: rootB), 404, "NotFound")

            // The JWKS verifies a token with an independent JWT library (JWTKit).
            let jwksReply = try await app.request(.get, "/.well-known/jwks.json")
            #expect(jwksReply.status == 200)
            let keys = try await JWTKeyCollection().add(jwksJSON: jwksReply.body)
            struct Claims: JWTPayload {
                var sub: SubjectClaim
                var tid: String
                var exp: ExpirationClaim
                func verify(using algorithm: some JWTAlgorithm) async throws { try exp.verifyNotExpired() }
            }
            let verified = try await keys.verify(rootA, as: Claims.self)
            #expect(verified.tid == tenantA)

            // The audit log lists what happened, newest first, with who and from where.
            let audit = try await app.request(.get, "/v1/audit-log?limit=100", token: rootA)
            #expect(audit.status == 200, "\(audit.body)")
            let entries = try #require(audit.json["items"] as? [[String: Any]])
            let actions = entries.map { "\($0["action"] ?? "")/\($0["result"] ?? "")" }
            for expected in ["dm:CreateUser/success", "dm:AttachPolicyToUser/success", "dm:CreateAccessKey/success",
                             "dm:CreateUser/Forbidden.RAM", "dm:UpdateUser/success", "admin:CreateTenant/success"] {
                #expect(actions.contains(expected), "missing \(expected) in \(actions)")
            }
            #expect(entries.allSatisfy { ($0["sourceIp"] as? String)?.isEmpty == false })
            let filtered = try await app.request(.get, "/v1/audit-log?action=dm:CreateUser", token: rootA)
            #expect((filtered.json["items"] as? [[String: Any]])?.allSatisfy { $0["action"] as? String == "dm:CreateUser" } == true)
            // Tenant B's log holds nothing of A.
            let auditB = try await app.request(.get, "/v1/audit-log", token: rootB)
            #expect((auditB.json["items"] as? [[String: Any]])?.contains { ($0["resource"] as? String)?.contains(tenantA) == true } == false)
        }
    }

    @Test func tokenVerifiesWithPyJWT() async throws {
        try await TestApp.run { app in
            let (tenant, token) = try await app.rootToken()
            let jwks = try await app.request(.get, "/.well-known/jwks.json").body
            let script = """
                import json, sys, jwt
                token, jwks = sys.argv[1], json.loads(sys.argv[2])
                kid = jwt.get_unverified_header(token)["kid"]
                key = next(jwt.PyJWK(k) for k in jwks["keys"] if k["kid"] == kid)
                print(jwt.decode(token, key.key, algorithms=["EdDSA"])["tid"])
                """
            let (status, output) = try runPython(script, [token, jwks])
            #expect(status == 0, "\(output)")
            #expect(output.trimmingCharacters(in: .whitespacesAndNewlines) == tenant)
        }
    }

    @Test func policiesCustomDenyAndDetach() async throws {
        try await TestApp.run { app in
            let (_, root) = try await app.rootToken()
            let user = try await app.request(.post, "/v1/users", token: root, json: ["name": "ops"])
            let userID = try #require(user["id"])
            let policy: [String: Any] = ["name": "NoDeletes", "document": ["Statement": [
                ["Effect": "Allow", "Action": "dm:*", "Resource": "*"],
                ["Effect": "Deny", "Action": ["dm:Delete*"], "Resource": ["*"]],
            ]]]
            let created = try await app.request(.post, "/v1/policies", token: root, json: policy)
            #expect(created.status == 201, "\(created.body)")
            expectProblem(try await app.request(.post, "/v1/policies", token: root, json: policy), 409, "Policy.AlreadyExists")
            #expect(try await app.request(.post, "/v1/users/\(userID)/policies", token: root, json: ["policy": "NoDeletes"]).status == 200)
            let key = try await app.request(.post, "/v1/users/\(userID)/access-keys", token: root)
            let token = try await app.token(key["accessKeyId"]!, key["accessKeySecret"]!)
            // Allowed by dm:*, and an explicit Deny wins for deletes.
            let other = try await app.request(.post, "/v1/users", token: token, json: ["name": "helper"])
            #expect(other.status == 201, "\(other.body)")
            expectProblem(try await app.request(.delete, "/v1/users/\(other["id"]!)", token: token), 403, "Forbidden.RAM")
            // In use: cannot delete the policy; after detaching, the user has no Allow at all.
            expectProblem(try await app.request(.delete, "/v1/policies/NoDeletes", token: root), 409, "Policy.InUse")
            #expect(try await app.request(.delete, "/v1/users/\(userID)/policies/NoDeletes", token: root).status == 204)
            expectProblem(try await app.request(.get, "/v1/users", token: token), 403, "Forbidden.RAM")
            #expect(try await app.request(.delete, "/v1/policies/NoDeletes", token: root).status == 204)
            expectProblem(try await app.request(.delete, "/v1/policies/FullAccess", token: root), 409, "Policy.BuiltIn")
            let list = try await app.request(.get, "/v1/policies", token: root)
            #expect((list.json["items"] as? [[String: Any]])?.compactMap { $0["name"] as? String } == ["FullAccess", "ReadOnlyAccess"])
            // Deleting the key stops its tokens at once.
            let root2 = try await app.request(.post, "/v1/users/\(userID)/policies", token: root, json: ["policy": "FullAccess"])
            #expect(root2.status == 200)
            #expect(try await app.request(.get, "/v1/users", token: token).status == 200)
            #expect(try await app.request(.delete, "/v1/users/\(userID)/access-keys/\(key["accessKeyId"]!)", token: root).status == 204)
            expectProblem(try await app.request(.get, "/v1/users", token: token), 401, "Auth.InvalidToken")
        }
    }

    @Test func rootUserCannotBeDisabledOrDeleted() async throws {
        try await TestApp.run { app in
            let (_, root) = try await app.rootToken()
            let users = try await app.request(.get, "/v1/users", token: root)
            let rootID = try #require((users.json["items"] as? [[String: Any]])?.first?["id"] as? String)
            expectProblem(try await app.request(.patch, "/v1/users/\(rootID)", token: root, json: ["enabled": false]), 409, "User.Root")
            expectProblem(try await app.request(.delete, "/v1/users/\(rootID)", token: root), 409, "User.Root")
        }
    }
}
