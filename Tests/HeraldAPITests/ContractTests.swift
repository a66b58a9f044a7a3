import Foundation
import HTTPTypes
import HeraldAPI
import HeraldAppTestSupport
import HeraldTestSupport
import Testing

/// The OpenAPI document is the contract: every served route is in it with the same RAM action,
/// and every operation in it is served. The served copy is the same file.
@Suite struct ContractTests {
    /// `METHOD /path` → operationId, and operationId → its access rule as the contract states it.
    static func contract() throws -> (routes: [String: String], access: [String: String]) {
        let script = """
            import json, sys, yaml
            spec = yaml.safe_load(open(sys.argv[1]))
            routes, access = {}, {}
            for path, item in spec["paths"].items():
                for method, op in item.items():
                    if method not in ("get", "put", "post", "delete", "patch", "head"):
                        continue
                    oid = op["operationId"]
                    routes[method.upper() + " " + path] = oid
                    security = op.get("security", spec.get("security"))
                    schemes = sorted(k for s in security for k in s)
                    if schemes == []:
                        access[oid] = "open"
                    elif schemes == ["adminToken"]:
                        access[oid] = "operator"
                    elif schemes == ["bearerJWT"]:
                        access[oid] = op["x-dm-action"] + " " + op["x-dm-resource"]
                    else:
                        access[oid] = "unknown security " + str(schemes)
            print(json.dumps({"routes": routes, "access": access}))
            """
        let (status, output) = try runPython(script, [TestDatabases.repositoryRoot + "/OpenAPI/openapi.yaml"])
        #expect(status == 0, "\(output)")
        let object = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: [String: String]] ?? [:]
        return (object["routes"] ?? [:], object["access"] ?? [:])
    }

    @Test func everyOperationIsServedWithTheContractsAccessRule() async throws {
        let contract = try Self.contract()
        try await TestApp.run { app in
            let served = Set(app.routes.all.map(\.description))
            #expect(served == Set(contract.routes.keys), "served routes and openapi.yaml differ: \(served.symmetricDifference(contract.routes.keys).sorted())")
        }
        let table = OperationAccess.contract
        for (operation, rule) in contract.access.sorted(by: { $0.key < $1.key }) {
            #expect(table[operation] == rule, "\(operation): served as \(table[operation] ?? "nothing"), contract says \(rule)")
        }
        #expect(Set(table.keys) == Set(contract.access.keys))
        // Every tenant operation names a Direct Mail action and a resource of the caller's tenant.
        for case .tenant(let action, let resource) in OperationAccess.table.values {
            #expect(action.hasPrefix("dm:") && resource.hasPrefix("acs:dm:*:{tenantId}:"), "\(action) \(resource)")
        }
    }

    @Test func servedDocumentIsTheContractFile() async throws {
        try await TestApp.run { app in
            let reply = try await app.request(.get, "/openapi.yaml")
            #expect(reply.status == 200)
            let file = try String(contentsOfFile: TestDatabases.repositoryRoot + "/OpenAPI/openapi.yaml", encoding: .utf8)
            #expect(reply.body == file, "Sources/HeraldAPI/Resources/openapi.yaml must be a copy of OpenAPI/openapi.yaml (run ops/sync-openapi)")
        }
    }

    @Test func healthReadinessAndMetrics() async throws {
        try await TestApp.run { app in
            #expect(try await app.request(.get, "/healthz").status == 200)
            #expect(try await app.request(.get, "/readyz").status == 200)
            _ = try await app.request(.get, "/v1/users")
            let metrics = try await app.request(.get, "/metrics")
            #expect(metrics.status == 200)
            #expect(metrics.body.contains("herald_http_requests_total"))
            #expect(metrics.body.contains("status=\"401\""))
            #expect(metrics.body.contains("herald_http_request_duration_seconds_bucket"))
            // The database pool.
            #expect(metrics.body.contains("herald_db_pool_max_connections 4"))
            #expect(metrics.body.contains("herald_db_connections_in_use 0"))
            #expect(metrics.body.contains("herald_db_connection_acquire_seconds_count"))
            #expect(metrics.body.contains("herald_db_transactions_total{outcome=\"commit\"}"))
        }
    }
}
