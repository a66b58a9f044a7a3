import Foundation
import HTTPTypes
import HeraldAPI
import HeraldStore
import HeraldTestSupport
import PostgresNIO
import Testing

/// Fixtures the suites of several modules share: a tenant ready to send, a verified domain, a send's
/// body, and direct reads and writes of the test database.
extension TestApp {
    /// A tenant with a verified domain `example.test` and a trigger sender `app@example.test`, with its root
    /// token and key.
    public func sendingTenant(_ dns: DNSTestServer, name: String = "Acme")
        async throws -> (tenant: String, token: String, keyID: String, secret: String) {
        let root = try await createTenant(name)
        let token = try await self.token(root.keyID, root.secret)
        _ = try await verifiedDomain(dns, token: token, name: "example.test")
        let sender = try await request(.post, "/v1/senders", token: token, json: ["address": "app@example.test", "type": "trigger"])
        #expect(sender.status == 201, "\(sender.body)")
        return (root.tenant, token, root.keyID, root.secret)
    }

    /// Registers `name`, publishes its records in the test DNS server and verifies it; returns its id.
    public func verifiedDomain(_ dns: DNSTestServer, token: String, name: String) async throws -> String {
        let created = try await request(.post, "/v1/domains", token: token, json: ["name": name, "dkimKeyBits": 1024])
        try dns.setZone(DNSTestServer.zone(publishing: created.json["records"] as? [[String: Any]] ?? []))
        let verified = try await request(.post, "/v1/domains/\(created["id"] ?? "")/verify", token: token)
        #expect(verified["status"] == "verified", "\(verified.body)")
        return created["id"] ?? ""
    }

    /// The body of a single send from `app@example.test` (the sender of ``sendingTenant(_:name:)``), with `extra` on top.
    public static func mail(to: [String], subject: String = "Your code", extra: [String: Any] = [:]) -> [String: Any] {
        ["from": "app@example.test", "to": to, "subject": subject, "text": "Code: 123456", "html": "<p>Code: <b>123456</b></p>"]
            .merging(extra) { $1 }
    }

    /// Counts rows of a tenant table, bypassing the API.
    public func count(_ table: String, tenant: String) async throws -> Int {
        let id = try #require(UUID(uuidString: tenant))
        return try await dependencies.database.withSystem { connection in
            try await connection.query("SELECT count(*)::int FROM \(unescaped: table) WHERE tenant_id = \(id)", logger: dependencies.database.logger)
                .decode(Int.self).first { _ in true } ?? -1
        }
    }

    /// The integer a `SELECT count(*)::int …` answers, bypassing the API.
    public func count(_ sql: String) async throws -> Int {
        try await dependencies.database.withSystem { connection in
            try await connection.query(PostgresQuery(unsafeSQL: sql), logger: dependencies.database.logger).decode(Int.self).first { _ in true } ?? -1
        }
    }

    /// Sets a tenant's grade directly.
    public func setGrade(tenant: String, _ grade: Int) async throws {
        let id = try #require(UUID(uuidString: tenant))
        _ = try await dependencies.database.withSystem { connection in
            try await connection.query("UPDATE tenants SET grade = \(grade) WHERE id = \(id)", logger: dependencies.database.logger)
        }
    }
}
