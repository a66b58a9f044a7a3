import Foundation
import HeraldCore
import HeraldTestSupport
import PostgresNIO
import Testing
@testable import HeraldStore

/// The vocabulary and the event payloads as the database holds them: the SQL lists of message statuses and
/// event types are the Swift enums, and every event type (message, account and webhook events), written
/// through the store's own statements (and the one payload writer of message events, `herald_message_event`),
/// matches its schema in the contract
/// (`components.schemas.WebhookEvent` of OpenAPI/openapi.yaml).
@Suite struct EventContractTests {
    @Test func sqlVocabularyIsTheSwiftOne() async throws {
        try await withTestDatabase { database, _ in
            let statuses = try await database.client.query("SELECT herald_message_statuses()", logger: database.logger)
                .decode([String].self).collectAll()
            #expect(statuses == [MessageStatus.allCases.map(\.rawValue)])
            let types = try await database.client.query("SELECT herald_event_types()", logger: database.logger).decode([String].self).collectAll()
            #expect(types == [EventType.allCases.map(\.rawValue)])
            // The constraints use them: a status or an event type outside the vocabulary is refused.
            let tenant = UUID()
            try await database.withSystem { connection -> Void in
                _ = try await connection.query("INSERT INTO tenants (id, name) VALUES (\(tenant), 'vocabulary')", logger: database.logger)
            }
            await #expect(throws: PSQLError.self) {
                try await database.withSystem { connection -> Void in
                    _ = try await connection.query("INSERT INTO events (tenant_id, type) VALUES (\(tenant), 'message.lost')", logger: database.logger)
                }
            }
            await #expect(throws: PSQLError.self) {
                try await database.withSystem { connection -> Void in
                    _ = try await connection.query("""
                        INSERT INTO messages (id, tenant_id, request_id, kind, priority, from_address, to_address, subject, status)
                        VALUES (gen_random_uuid(), \(tenant), gen_random_uuid(), 'trigger', 0, 'a@example.com', 'b@example.net', 's', 'lost')
                        """, logger: database.logger)
                }
            }
        }
    }

    @Test func everyEventMatchesTheContract() async throws {
        try await withTestDatabase { database, _ in
            let tenant = UUID(), now = Date()
            let ids = (0..<7).map { _ in UUID() }
            try await database.withSystem { connection -> Void in
                try await connection.query("INSERT INTO tenants (id, name) VALUES (\(tenant), 'contract')", logger: database.logger)
                try await connection.query("""
                    INSERT INTO messages (id, tenant_id, request_id, kind, priority, from_address, to_address, subject, tag, status, next_attempt_at)
                    SELECT i, \(tenant), gen_random_uuid(), 'trigger', 0, 'news@example.com', 'to' || n || '@example.net', 'Hello',
                           CASE WHEN n % 2 = 0 THEN 'welcome' END, 'queued', \(now.addingTimeInterval(-1))
                    FROM unnest(\(ids)::uuid[]) WITH ORDINALITY AS u(i, n)
                    """, logger: database.logger)
            }
            // Delivery results, as the worker hands them over.
            let store = DeliveryStore(database: database)
            let claimed = try await store.claim(worker: "contract", limit: 10, now: now, lease: .seconds(60))
            #expect(Set(claimed.map(\.id)) == Set(ids))
            let results: [DeliveryResult] = [.delivered, .deferred(until: now.addingTimeInterval(60)), .failed, .bounced(response: "550 5.1.1 unknown"),
                                              .spamRejected, .released(until: now), .delivered]
            try await store.record(zip(ids, results).map { DeliveryAttempt(messageID: $0, result: $1, response: "250 2.0.0 ok") },
                                   worker: "contract", now: now)
            #expect(try await store.recordLateBounce(messageID: ids[6], recipient: "to7@example.net", result: .bounced(response: "550 5.1.1 gone"),
                                                     response: "550 5.1.1 gone", now: now))
            // Opens, clicks and unsubscribes (migration 0024's functions), standing changes and a ban's dropped mail.
            try await database.client.query("SELECT herald_track(\(tenant), \(ids[0]), NULL, \(now))", logger: database.logger)
            try await database.client.query("SELECT herald_track(\(tenant), \(ids[0]), 'https://example.com/a', \(now))", logger: database.logger)
            try await database.client.query("SELECT * FROM herald_unsubscribe(\(tenant), \(ids[0]), '*', \(now))", logger: database.logger)
            // A complaint (a feedback-loop report) about a delivered message (its recipient already unsubscribed); a second one is not recorded.
            #expect(try await store.recordComplaint(messageID: ids[0], feedbackType: "abuse", now: now))
            #expect(try await !store.recordComplaint(messageID: ids[0], feedbackType: "abuse", now: now))
            try await database.withSystem { connection -> Void in
                for change in GradeChange.allCases {
                    try await AccountChanges.record(connection, logger: database.logger, tenantID: tenant, change: change, from: 2, to: 3,
                                                    reason: "contract", figures: change == .promoted ? DayFigures(day: 20_000, sent: 10, delivered: 9, invalid: 1, spam: 0) : nil,
                                                    actor: "test", now: now)
                }
                try await AccountChanges.dropMail(connection, logger: database.logger, tenantID: tenant, now: now)
                // Accepted and dropped at acceptance, with the arguments of the accept path and of batch expansion.
                try await connection.query("""
                    INSERT INTO events (tenant_id, message_id, type, data, created_at)
                    VALUES (\(tenant), \(ids[0]), 'message.accepted',
                            herald_message_event(\(ids[0]), 'to1@example.net', 'news@example.com', 'welcome', p_status => 'queued'), \(now)),
                           (\(tenant), \(ids[1]), 'message.dropped',
                            herald_message_event(\(ids[1]), 'to2@example.net', 'news@example.com', NULL, p_status => 'dropped',
                                                 p_reason => 'suppressed', p_task => \(UUID())), \(now))
                    """, logger: database.logger)
            }
            // Webhook events: a test event, and an endpoint disabled because it answered 410 Gone.
            let webhooks = WebhookStore(database: database, secrets: SecretBox(masterKey: MasterKey(bytes: Array(repeating: 5, count: 32))))
            let (endpoint, _) = try await webhooks.create(tenantID: tenant, url: "https://hooks.example.com/herald", eventTypes: ["message.delivered"],
                                                          enabled: true, actor: AuditActor(type: .system), now: now)
            let test = try await webhooks.test(tenantID: tenant, endpointID: endpoint.id, now: now)
            #expect(try await webhooks.claim(worker: "contract", limit: 10, excluding: [], now: now, lease: .seconds(60)).map(\.id) == [test.id])
            try await webhooks.record([WebhookAttemptOutcome(id: test.id, endpointID: endpoint.id, attemptedAt: now, httpStatus: 410, error: nil,
                                                             latencyMs: 3, response: "gone", decision: .gone)], worker: "contract", now: now)
            let bodies = try await database.withSystem { connection in
                try await connection.query("""
                    SELECT json_build_object('type', type, 'timestamp', to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                                             'data', data)::text
                    FROM events WHERE tenant_id = \(tenant) ORDER BY id
                    """, logger: database.logger).decode(String.self).collectAll()
            }
            let written = Set(bodies.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }.compactMap { $0["type"] as? String })
            let expected = Set(EventType.allCases.map(\.rawValue))
            #expect(written == expected, "not written: \(expected.subtracting(written).sorted())")
            let (status, output) = try runPython(Self.validator, [TestDatabases.repositoryRoot + "/OpenAPI/openapi.yaml"],
                                                 input: Array(bodies.joined(separator: "\n").utf8))
            #expect(status == 0 && output.trimmingCharacters(in: .whitespacesAndNewlines) == "ok \(bodies.count)", "\(output)")
        }
    }

    /// Checks each line (a webhook body) against WebhookEvent and its type's data schema, with the small part
    /// of JSON Schema the contract uses (type, required, properties, additionalProperties, enum, formats).
    static let validator = """
        import json, re, sys, uuid, datetime, yaml
        spec = yaml.safe_load(open(sys.argv[1]))
        schemas = spec["components"]["schemas"]
        problems = []
        def check(value, schema, where):
            if "$ref" in schema:
                schema = schemas[schema["$ref"].split("/")[-1]]
            kind = schema.get("type")
            types = {"object": dict, "string": str, "boolean": bool, "array": list}
            if kind == "integer":
                if not isinstance(value, int) or isinstance(value, bool): problems.append(f"{where}: not an integer: {value!r}")
                return
            if kind in types and not isinstance(value, types[kind]):
                problems.append(f"{where}: not a {kind}: {value!r}"); return
            if "enum" in schema and value not in schema["enum"]:
                problems.append(f"{where}: {value!r} not in {schema['enum']}")
            fmt = schema.get("format")
            try:
                if fmt == "uuid": uuid.UUID(value)
                if fmt == "date-time": datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except Exception:
                problems.append(f"{where}: not a {fmt}: {value!r}")
            if kind == "object":
                for name in schema.get("required", []):
                    if name not in value: problems.append(f"{where}: {name} missing")
                properties = schema.get("properties", {})
                for name, item in value.items():
                    if name in properties: check(item, properties[name], where + "." + name)
                    elif schema.get("additionalProperties", True) is False: problems.append(f"{where}: {name} is not in the contract")
        event = schemas["WebhookEvent"]
        count = 0
        for line in sys.stdin.read().splitlines():
            body = json.loads(line)
            count += 1
            check(body, event, body.get("type", "?"))
            data = event["x-herald-event-data"].get(body.get("type"))
            if data is None:
                problems.append(f"{body.get('type')}: no data schema"); continue
            check(body["data"], {"$ref": data["schema"]}, body["type"] + " data")
            for name in data["required"]:
                if name not in body["data"]: problems.append(f"{body['type']} data: {name} missing")
            if any(v is None for v in body["data"].values()): problems.append(f"{body['type']} data: a null value")
        print("\\n".join(problems) if problems else f"ok {count}")
        """
}
