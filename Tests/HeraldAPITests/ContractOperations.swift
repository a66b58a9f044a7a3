import Foundation
import HTTPTypes
import HeraldAPI
import HeraldAppTestSupport
import HeraldStore
import HeraldTestSupport
import PostgresNIO
import Testing

/// The operations of `OpenAPI/openapi.yaml` as the generated tests (cross-tenant matrix, bad-input sweep) need
/// them, read at test time so that a new route joins them by itself.
struct ContractOperation: Decodable, Sendable, CustomStringConvertible {
    /// A field of a JSON request body: where it is, what it may be.
    struct Field: Decodable, Sendable {
        /// Keys and array positions from the body's root: a string is an object key (`*` for any key of a map), 0 an array element.
        var path: [PathElement]
        /// JSON types the schema allows here (`string`, `integer`, `number`, `boolean`, `array`, `object`, `null`).
        var types: [String]
        var maxLength: Int?

        /// The path as the API's `field` names it: `members[0].vars.name`.
        var display: String {
            path.reduce("") { result, element in
                switch element {
                case .index(let index): result + "[\(index)]"
                case .key(let key): result.isEmpty ? key : result + "." + key
                }
            }
        }
    }

    enum PathElement: Decodable, Sendable {
        case key(String)
        case index(Int)

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let index = try? container.decode(Int.self) { self = .index(index) } else { self = .key(try container.decode(String.self)) }
        }
    }

    /// A path parameter and whether the contract says it is a UUID.
    struct Parameter: Decodable, Sendable {
        var name: String
        var uuid: Bool
    }

    var operationId: String
    var method: String
    var path: String
    /// `tenant` (bearer JWT), `operator` (admin token) or `open`.
    var access: String
    var parameters: [Parameter]
    /// Names of the query parameters.
    var query: [String]
    /// The request body's media types.
    var bodyTypes: [String]
    var bodyRequired: Bool
    /// Fields of the JSON body (empty without one).
    var fields: [Field]

    var takesJSON: Bool { bodyTypes.contains("application/json") }
    var description: String { "\(operationId) (\(method) \(path))" }

    /// Every operation of the contract.
    static func all() throws -> [ContractOperation] {
        let script = #"""
            import json, sys, yaml
            spec = yaml.safe_load(open(sys.argv[1]))

            def resolve(node):
                while isinstance(node, dict) and "$ref" in node:
                    target = spec
                    for part in node["$ref"].split("/")[1:]:
                        target = target[part]
                    node = target
                return node

            def types(node):
                node = resolve(node)
                found = []
                for branch in node.get("oneOf", []) + node.get("anyOf", []) + node.get("allOf", []):
                    found += types(branch)
                kind = node.get("type")
                found += kind if isinstance(kind, list) else ([kind] if kind else [])
                if not found and "properties" in node:
                    found = ["object"]
                return sorted(set(found))

            def fields(node, path, depth, out):
                node = resolve(node)
                if depth > 8:
                    return
                kinds = types(node)
                if path:
                    out.append({"path": path, "types": kinds, "maxLength": node.get("maxLength")})
                branches = [resolve(b) for b in node.get("oneOf", []) + node.get("anyOf", []) + node.get("allOf", [])] + [node]
                for branch in branches:
                    for name, child in branch.get("properties", {}).items():
                        fields(child, path + [name], depth + 1, out)
                    if "items" in branch:
                        fields(branch["items"], path + [0], depth + 1, out)
                    extra = branch.get("additionalProperties")
                    if isinstance(extra, dict):
                        fields(extra, path + ["*"], depth + 1, out)

            operations = []
            for path, item in spec["paths"].items():
                for method, op in item.items():
                    if method not in ("get", "put", "post", "delete", "patch"):
                        continue
                    security = op.get("security", spec.get("security"))
                    schemes = sorted(k for s in security for k in s)
                    access = "open" if schemes == [] else "operator" if schemes == ["adminToken"] else "tenant"
                    parameters, query = [], []
                    for parameter in item.get("parameters", []) + op.get("parameters", []):
                        parameter = resolve(parameter)
                        if parameter["in"] == "query":
                            query.append(parameter["name"])
                        if parameter["in"] == "path":
                            parameters.append({"name": parameter["name"], "uuid": resolve(parameter.get("schema", {})).get("format") == "uuid"})
                    body = resolve(op.get("requestBody", {}))
                    content = body.get("content", {})
                    out = []
                    if "application/json" in content:
                        fields(content["application/json"].get("schema", {}), [], 0, out)
                    # A field reached through two branches (oneOf) is listed once, with the union of its types.
                    merged = {}
                    for field in out:
                        key = json.dumps(field["path"])
                        if key in merged:
                            merged[key]["types"] = sorted(set(merged[key]["types"] + field["types"]))
                            merged[key]["maxLength"] = merged[key]["maxLength"] or field["maxLength"]
                        else:
                            merged[key] = field
                    operations.append({"operationId": op["operationId"], "method": method.upper(), "path": path, "access": access,
                                       "parameters": parameters, "query": query, "bodyTypes": sorted(content.keys()),
                                       "bodyRequired": bool(body.get("required")), "fields": list(merged.values())})
            print(json.dumps(operations))
            """#
        let (status, output) = try runPython(script, [TestDatabases.repositoryRoot + "/OpenAPI/openapi.yaml"])
        guard status == 0 else { throw ContractError(message: "reading openapi.yaml failed: \(output)") }
        return try JSONDecoder().decode([ContractOperation].self, from: Data(output.utf8))
    }

    /// The request path with each parameter replaced by `values[name]`, or nil naming the first parameter without a value.
    func filledPath(_ values: (Parameter) -> String?) -> Result<String, ContractError> {
        var result = path
        for parameter in parameters {
            guard let value = values(parameter) else { return .failure(ContractError(message: "\(self): no value for {\(parameter.name)}")) }
            let encoded = value.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? value
            result = result.replacingOccurrences(of: "{\(parameter.name)}", with: encoded)
        }
        return .success(result)
    }
}

/// A failure of the contract-driven tests' own set-up.
struct ContractError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// Sets `value` at `path` in a JSON value made of dictionaries and arrays, creating what is missing
/// (`*` stands for any key of a map: `XSweep`, valid as a header name and as a variable name).
func jsonSetting(_ root: Any?, _ path: ArraySlice<ContractOperation.PathElement>, to value: Any) -> Any {
    guard let first = path.first else { return value }
    switch first {
    case .key(let key):
        var object = root as? [String: Any] ?? [:]
        let name = key == "*" ? (object.keys.sorted().first ?? "XSweep") : key
        object[name] = jsonSetting(object[name], path.dropFirst(), to: value)
        return object
    case .index:
        var array = root as? [Any] ?? []
        if array.isEmpty {
            array.append(jsonSetting(nil, path.dropFirst(), to: value))
        } else {
            array[0] = jsonSetting(array[0], path.dropFirst(), to: value)
        }
        return array
    }
}

/// Digests of one tenant's rows in every table that has a `tenant_id` column (and its `tenants` row), read
/// past row-level security, in one query: equal digests mean nothing of that tenant was written. The audit
/// log is left out: refused changes are recorded there by design (SPEC §1).
func tenantFingerprint(_ app: TestApp, tenant: String, except: Set<String> = ["audit_log"]) async throws -> [String: String] {
    let id = try #require(UUID(uuidString: tenant)).uuidString.lowercased()
    let logger = app.dependencies.database.logger
    return try await app.dependencies.database.withSystem { connection in
        let rows: PostgresRowSequence = try await connection.query(PostgresQuery(unsafeSQL: """
            SELECT c.table_name::text FROM information_schema.columns c JOIN information_schema.tables t USING (table_schema, table_name)
            WHERE c.table_schema = 'public' AND c.column_name = 'tenant_id' AND t.table_type = 'BASE TABLE' ORDER BY 1
            """), logger: logger)
        var tables: [String] = []
        for try await table in rows.decode(String.self) where !except.contains(table) { tables.append(table) }
        // The id is a parsed UUID, so writing it into the statement is safe.
        let parts = tables.map { table in
            "SELECT '\(table)', count(*)::text || ':' || coalesce(md5(string_agg(md5(t::text), ',' ORDER BY md5(t::text))), '') FROM \(table) t WHERE tenant_id = '\(id)'"
        } + ["SELECT 'tenants', md5(t::text) FROM tenants t WHERE id = '\(id)'"]
        var digests: [String: String] = [:]
        let digestRows: PostgresRowSequence = try await connection.query(PostgresQuery(unsafeSQL: parts.joined(separator: " UNION ALL ")), logger: logger)
        for try await (table, digest) in digestRows.decode((String, String).self) {
            digests[table] = digest
        }
        return digests
    }
}

/// The tables whose digests differ.
func changedTables(_ before: [String: String], _ after: [String: String]) -> [String] {
    Set(before.keys).union(after.keys).filter { before[$0] != after[$0] }.sorted()
}

/// One tenant with one of each object the API manages (domain, senders, tag, approved template, list with a
/// member, webhook with a delivery, user with an access key and a custom policy, suppression, invalid address,
/// a message and a batch task), and the valid request body of every operation that takes one.
struct TenantObjects: Sendable {
    var tenant: String
    var token: String
    var keyID: String
    var secret: String
    /// Object ids by the path collection that names them (`domains`, `senders`, …) and the other path parameters' values.
    var ids: [String: String]

    static func create(_ app: TestApp, _ dns: DNSTestServer, name: String) async throws -> TenantObjects {
        let (tenant, token, keyID, secret) = try await app.sendingTenant(dns, name: name)
        var ids: [String: String] = ["tenants": tenant]
        func created(_ path: String, _ json: Any? = nil, _ key: String = "id") async throws -> String {
            let reply = try await app.request(.post, path, token: token, json: json)
            guard (200..<300).contains(reply.status), let value = reply[key] else { throw ContractError(message: "\(path): \(reply.status) \(reply.body)") }
            return value
        }
        ids["domains"] = try #require((try await app.request(.get, "/v1/domains", token: token).json["items"] as? [[String: Any]])?.first?["id"] as? String)
        ids["senders"] = try await created("/v1/senders", ["address": "news@example.test", "type": "batch"])
        ids["tags"] = try await created("/v1/tags", ["name": "otp"])
        let template = try await created("/v1/templates", ["name": "newsletter", "type": "batch", "subject": "News for ${name}",
                                                           "html": "<p>Hi ${name}</p><a href=\"${unsubscribe}\">Leave</a>", "text": "Leave: ${unsubscribe}"])
        ids["templates"] = template
        _ = try await created("/v1/templates/\(template)/submit")
        #expect(try await app.admin(.post, "/admin/v1/templates/\(template)/approve").status == 200)
        let list = try await created("/v1/lists", ["name": "readers", "alias": "r", "description": "the readers"])
        ids["lists"] = list
        _ = try await app.request(.post, "/v1/lists/\(list)/recipients", token: token, json: [["address": "ann@example.org", "variables": ["name": "Ann"]]])
        ids["recipients"] = "ann@example.org"
        let webhook = try await created("/v1/webhooks", ["url": "http://127.0.0.1:9/hook", "eventTypes": ["message.delivered"]])
        ids["webhooks"] = webhook
        ids["deliveries"] = try await created("/v1/webhooks/\(webhook)/test")
        let user = try await created("/v1/users", ["name": "worker"])
        ids["users"] = user
        ids["access-keys"] = try await created("/v1/users/\(user)/access-keys", nil, "accessKeyId")
        ids["policies"] = try await created("/v1/policies", ["name": "Custom", "description": "reads", "document": Self.policyDocument], "name")
        #expect(try await app.request(.post, "/v1/users/\(user)/policies", token: token, json: ["policy": "Custom"]).status < 300)
        _ = try await created("/v1/suppressions", ["address": "gone@example.org"], "address")
        ids["suppressions"] = "gone@example.org"
        let tenantID = try #require(UUID(uuidString: tenant))
        try await app.dependencies.database.withSystem { connection in
            _ = try await connection.query("INSERT INTO invalid_addresses (tenant_id, address, hard_bounces, listed) VALUES (\(tenantID), 'dead@example.org', 2, true)",
                                           logger: app.dependencies.database.logger)
        }
        ids["invalid-addresses"] = "dead@example.org"
        let sent = try await app.request(.post, "/v1/mail/single", token: token, json: TestApp.mail(to: ["bob@example.org"]))
        ids["messages"] = try #require((sent.json["messages"] as? [[String: Any]])?.first?["id"] as? String, "\(sent.body)")
        ids["tasks"] = try await created("/v1/mail/batch", ["templateId": template, "listId": list, "from": "news@example.test"], "taskId")
        return TenantObjects(tenant: tenant, token: token, keyID: keyID, secret: secret, ids: ids)
    }

    static var policyDocument: [String: Any] { ["Version": "1", "Statement": [["Effect": "Allow", "Action": ["dm:Get*"], "Resource": ["*"]]]] }

    /// The value of a path parameter of `operation`: the id of this tenant's object of the collection the path names,
    /// or nil when there is none.
    func value(of parameter: ContractOperation.Parameter, in operation: ContractOperation) -> String? {
        let segments = operation.path.split(separator: "/").map(String.init)
        guard let index = segments.firstIndex(of: "{\(parameter.name)}") else { return nil }
        switch parameter.name {
        case "accessKeyId": return ids["access-keys"]
        case "policyName": return ids["policies"]
        case "did": return ids["deliveries"]
        case "token": return nil
        default: return index > 0 ? ids[segments[index - 1]] : nil
        }
    }

    /// A valid JSON body for `operation`, or nil when it takes none (or this table does not know it yet: the tests
    /// then fail naming it).
    func body(for operation: ContractOperation) -> Any? {
        let template: [String: Any] = ["name": "sweep", "type": "batch", "subject": "Sweep ${name}",
                                       "html": "<a href=\"${unsubscribe}\">Leave</a>", "text": "Leave: ${unsubscribe}"]
        let bodies: [String: Any] = [
            "createToken": ["accessKeyId": keyID, "accessKeySecret": secret],
            "createUser": ["name": "sweep-user"],
            "updateUser": ["name": "worker-2", "enabled": true],
            "attachPolicyToUser": ["policy": "ReadOnlyAccess"],
            "createPolicy": ["name": "Sweep", "description": "sweep", "document": Self.policyDocument],
            "updatePolicy": ["description": "sweep", "document": Self.policyDocument],
            "updateIpProtection": ["enabled": false, "allow": ["10.0.0.0/8"]],
            "updateGradeCeiling": ["gradeCeiling": 10],
            "createDomain": ["name": "sweep.example.test", "dkimKeyBits": 1024],
            "rotateDomainDkim": ["dkimKeyBits": 1024],
            "updateDomain": ["dkimEd25519": true],
            "createSender": ["address": "sweep@example.test", "type": "batch", "replyTo": "reply@example.org"],
            "updateSender": ["replyTo": "reply@example.org"],
            "setSenderSmtpPassword": ["password": "Sweep-Passw0rd"],
            "createTag": ["name": "sweep"],
            "createTemplate": template,
            "updateTemplate": template,
            "previewTemplate": ["variables": ["name": "Ann"]],
            "createList": ["name": "sweep", "alias": "s", "description": "sweep"],
            "importRecipients": [["address": "sweep@example.org", "variables": ["name": "Sweep"]]],
            "sendSingleMail": ["from": "app@example.test", "to": ["rcpt@example.org"], "subject": "Sweep", "text": "t", "html": "<p>h</p>",
                               "fromAlias": "App", "replyTo": "reply@example.org", "tag": "otp", "clickTracking": false, "headers": ["X-Sweep": "1"]],
            "addSuppression": ["address": "sweep@example.org"],
            "sendBatchMail": ["templateId": ids["templates"] ?? "", "listId": ids["lists"] ?? "", "from": "news@example.test", "tag": "otp",
                              "scheduledAt": "2030-01-01T00:00:00Z"],
            "createWebhook": ["url": "http://127.0.0.1:9/sweep", "eventTypes": ["message.delivered"], "enabled": true],
            "updateWebhook": ["url": "http://127.0.0.1:9/hook", "eventTypes": ["message.delivered"], "enabled": true],
            "updateAccountSettings": ["trackOpensAndClicks": false, "unsubscribeLinkInTriggerMail": false],
            "adminCreateTenant": ["name": "Sweep", "kind": "enterprise"],
            "adminFreezeTenant": ["reason": "sweep"],
            "adminUnfreezeTenant": ["reason": "sweep"],
            "adminBanTenant": ["reason": "sweep"],
            "adminSetTenantGrade": ["grade": 3, "reason": "sweep"],
            "adminSetTenantLimits": ["domains": 6],
            "adminSetContentRules": ["sensitiveWords": ["casino", "lottery"]],
            "adminApproveTemplate": ["reason": "sweep"],
            "adminRejectTemplate": ["reason": "sweep"],
        ]
        return bodies[operation.operationId]
    }
}
