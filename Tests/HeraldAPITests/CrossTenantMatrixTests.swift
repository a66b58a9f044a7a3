import Foundation
import HTTPTypes
import HeraldAppTestSupport
import HeraldTestSupport
import Testing

/// SPEC §1: no request can read or change another tenant's data. Every operation of the contract that names an
/// object in its path is called by tenant B (root key, allowed everything) with tenant A's ids.
@Suite struct CrossTenantMatrixTests {
    /// Operations whose path parameter the matrix does not fill, and why. Anything else it cannot fill fails the test.
    static let allowlist: [String: String] = [
        // Public links: the signed token in the path is the whole credential, whoever holds it; forged and altered
        // tokens are covered by UnsubscribeTests, TrackingTests and SenderTests (reply-to confirmation).
        "getUnsubscribePage": "signed public link",
        "unsubscribe": "signed public link",
        "trackOpen": "signed public link",
        "trackClick": "signed public link",
        "confirmReplyTo": "signed public link",
    ]

    @Test func tenantBCannotReachTenantAsObjectsThroughAnyRoute() async throws {
        let operations = try ContractOperation.all().filter { !$0.parameters.isEmpty }
        #expect(operations.count >= 40, "the contract has fewer routes with path parameters than expected: \(operations.count)")
        try await DNSTestServer.with(zone: [:]) { dns in
            try await TestApp.run(dnsPort: dns.port) { app in
                let a = try await TenantObjects.create(app, dns, name: "Alpha")
                let b = try await app.rootToken("Bravo")

                // What A sees of its own objects, through every GET of the contract, and its rows.
                func snapshot() async throws -> [String: String] {
                    var seen: [String: String] = [:]
                    for operation in try ContractOperation.all() where operation.method == "GET" && operation.access == "tenant" {
                        guard case .success(let path) = operation.filledPath({ a.value(of: $0, in: operation) }) else { continue }
                        let reply = try await app.request(.get, path, token: a.token)
                        // The request id differs from one call to the next; everything else must not.
                        let body = reply.body.replacingOccurrences(of: #""requestId":"[A-Za-z0-9._-]*""#, with: "", options: .regularExpression)
                        seen[path] = "\(reply.status) \(body)"
                    }
                    return seen
                }
                let before = try await snapshot()
                let rowsBefore = try await tenantFingerprint(app, tenant: a.tenant)

                var unfilled: [String] = []
                for operation in operations {
                    if Self.allowlist[operation.operationId] != nil { continue }
                    let path: String
                    switch operation.filledPath({ a.value(of: $0, in: operation) }) {
                    case .success(let filled): path = filled
                    case .failure(let error):
                        unfilled.append(error.message)
                        continue
                    }
                    var body: Any?
                    if operation.takesJSON {
                        body = a.body(for: operation)
                        if body == nil, operation.bodyRequired {
                            unfilled.append("\(operation): no valid body in TenantObjects.body(for:)")
                            continue
                        }
                    }
                    let reply = try await app.request(HTTPRequest.Method(operation.method)!, path, token: b.token, json: body)
                    if operation.access == "operator" {
                        // A tenant's token is not the operator's.
                        #expect(reply.status == 401, "\(operation) as tenant B: \(reply.status) \(reply.body)")
                    } else {
                        #expect(reply.status == 404 || reply.status == 403, "\(operation) on A's \(path) as tenant B: \(reply.status) \(reply.body)")
                    }
                    #expect(reply.headers[.contentType] == "application/problem+json" && reply.code != nil, "\(operation): \(reply.body)")
                }
                #expect(unfilled.isEmpty, "routes the cross-tenant matrix cannot fill (give TenantObjects an object for them, or allowlist them with a reason): \(unfilled)")

                let after = try await snapshot()
                for (path, seen) in before.sorted(by: { $0.key < $1.key }) {
                    #expect(after[path] == seen, "A's \(path) changed while B called its routes")
                }
                #expect(changedTables(rowsBefore, try await tenantFingerprint(app, tenant: a.tenant)).isEmpty, "A's rows changed")
                // A still reaches every one of its objects (the snapshot is not a set of 404s).
                for collection in ["domains", "senders", "templates", "lists", "webhooks", "users", "messages", "tasks"] {
                    #expect(before["/v1/\(collection)/\(a.ids[collection] ?? "")"]?.hasPrefix("200 ") == true, "A cannot read its own \(collection)")
                }
            }
        }
    }
}
