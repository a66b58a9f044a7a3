import Foundation
import HTTPTypes
import HeraldAPI
import HeraldTestSupport
import Testing

/// The OpenAPI document is the contract: every served route is in it with the same RAM action,
/// and every operation in it is served. The served copy is the same file.
@Suite struct ContractTests {
    static func operations() throws -> [String: String] {
        let script = """
            import json, sys, yaml
            spec = yaml.safe_load(open(sys.argv[1]))
            out = {}
            for path, item in spec["paths"].items():
                for method, op in item.items():
                    if method in ("get", "put", "post", "delete", "patch", "head"):
                        out[method.upper() + " " + path] = op.get("x-dm-action", "none")
            print(json.dumps(out))
            """
        let (status, output) = try runPython(script, [TestDatabases.repositoryRoot + "/OpenAPI/openapi.yaml"])
        #expect(status == 0, "\(output)")
        return try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: String] ?? [:]
    }

    @Test func everyRouteIsInTheContractWithItsAction() async throws {
        try await TestApp.run { app in
            let spec = try Self.operations()
            let served = Dictionary(app.routes.all.map { ("\($0.method) \($0.path)", $0.action ?? "none") }, uniquingKeysWith: { a, _ in a })
            for (route, action) in served.sorted(by: { $0.key < $1.key }) {
                #expect(spec[route] == action, "\(route): served with \(action), contract says \(spec[route] ?? "nothing")")
            }
            for route in spec.keys.sorted() {
                #expect(served[route] != nil, "\(route) is in openapi.yaml but not served")
            }
            // Tenant routes all declare a dm: action.
            #expect(app.routes.all.filter { $0.path.hasPrefix("/v1/") && $0.path != "/v1/auth/token" }.allSatisfy { $0.action?.hasPrefix("dm:") == true })
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
        }
    }
}
