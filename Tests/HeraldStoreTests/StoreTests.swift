import Foundation
import HeraldCore
import HeraldTestSupport
import Logging
import PostgresNIO
import Synchronization
import Testing
@testable import HeraldStore

@Suite struct SQLScriptTests {
    @Test func splitsOnTopLevelSemicolonsOnly() {
        let script = """
            -- a comment; with a semicolon
            CREATE TABLE a (x text DEFAULT 'semi;colon');
            /* block; comment */ CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$;
            DO $body$ BEGIN PERFORM 1; END $body$;
            SELECT "odd;name" FROM a;

            """
        let statements = SQLScript.split(script)
        #expect(statements.count == 4)
        #expect(statements[0].hasSuffix("DEFAULT 'semi;colon')"))
        #expect(statements[1].contains("$$ SELECT 1; $$"))
        #expect(statements[2].contains("PERFORM 1; END $body$"))
        #expect(statements[3] == "SELECT \"odd;name\" FROM a")
    }

    @Test func everyMigrationSplitsIntoStatements() throws {
        for migration in try TestDatabases.migrations() {
            #expect(!SQLScript.split(migration.sql).isEmpty)
        }
    }
}

@Suite struct DatabaseURLTests {
    @Test func parsesFullURL() throws {
        let url = try DatabaseURL("postgres://herald:p%40ss@db.example:6543/mail?sslmode=require")
        #expect(url.username == "herald")
        #expect(url.password == "p@ss")
        #expect(url.host == "db.example")
        #expect(url.port == 6543)
        #expect(url.database == "mail")
        #expect(url.requireTLS)
    }

    @Test(arguments: ["mysql://a@b/c", "postgres://b/c", "postgres://a@b", "not a url", "postgres://a@b:99999/c", "postgres://a@b/c?sslmode=bogus"])
    func rejects(_ text: String) {
        #expect(throws: HeraldError.self) { try DatabaseURL(text) }
    }
}

@Suite(.serialized) struct MigrationTests {
    @Test func runsOnceAndIsIdempotent() async throws {
        try await withTestDatabase(migrated: false) { database, _ in
            let migrations = try TestDatabases.migrations()
            let migrator = Migrator(migrations: migrations, logger: database.logger)
            let first = try await migrator.migrate(client: database.client)
            #expect(first == migrations.map(\.name))
            let second = try await migrator.migrate(client: database.client)
            #expect(second.isEmpty)
            let recorded = try await database.client.query("SELECT count(*) FROM schema_migrations").decode(Int.self).collectAll()
            #expect(recorded == [migrations.count])
        }
    }

    @Test func concurrentMigratorsApplyEachMigrationOnce() async throws {
        try await withTestDatabase(migrated: false) { database, _ in
            let migrator = Migrator(migrations: try TestDatabases.migrations(), logger: database.logger)
            let results = try await withThrowingTaskGroup(of: [String].self) { group in
                for _ in 0..<3 { group.addTask { try await migrator.migrate(client: database.client) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(results.flatMap { $0 }.count == migrator.migrations.count)
        }
    }

    @Test func editedMigrationIsRefused() async throws {
        try await withTestDatabase { database, _ in
            var migrations = try TestDatabases.migrations()
            migrations[0] = Migration(fileName: migrations[0].name + ".sql", sql: migrations[0].sql + "\n-- edited\n")
            await #expect(throws: HeraldError.self) {
                try await Migrator(migrations: migrations, logger: database.logger).migrate(client: database.client)
            }
        }
    }

    @Test func failingMigrationLeavesNothingBehind() async throws {
        try await withTestDatabase { database, _ in
            let broken = try TestDatabases.migrations() + [Migration(fileName: "9999_broken.sql", sql: "CREATE TABLE half_done (x int); SELECT * FROM no_such_table;")]
            await #expect(throws: HeraldError.self) {
                try await Migrator(migrations: broken, logger: database.logger).migrate(client: database.client)
            }
            let tables = try await database.client.query("SELECT count(*) FROM pg_tables WHERE tablename = 'half_done'").decode(Int.self).collectAll()
            #expect(tables == [0])
        }
    }
}

@Suite struct TenantIsolationTests {
    static let box = SecretBox(masterKey: MasterKey(bytes: Array(repeating: 3, count: 32)))

    @Test func rowLevelSecurityHidesOtherTenantsEvenWithoutAFilter() async throws {
        try await withTestDatabase { database, _ in
            let tenants = TenantStore(database: database, secrets: Self.box)
            let identity = IdentityStore(database: database, secrets: Self.box)
            let a = try await tenants.create(name: "A", actor: .cli)
            let b = try await tenants.create(name: "B", actor: .cli)
            _ = try await identity.createUser(tenantID: b.tenant.id, name: "b-user", actor: .cli)

            // Tenant A's transaction, queries with their tenant filter removed:
            let seen = try await database.withTenant(a.tenant.id) { connection in
                (try await connection.query("SELECT count(*) FROM users", logger: TestDatabases.logger).decode(Int.self).collectAll(),
                 try await connection.query("SELECT count(*) FROM access_keys", logger: TestDatabases.logger).decode(Int.self).collectAll(),
                 try await connection.query("SELECT count(*) FROM tenants", logger: TestDatabases.logger).decode(Int.self).collectAll(),
                 try await connection.query("SELECT count(*) FROM audit_log", logger: TestDatabases.logger).decode(Int.self).collectAll(),
                 try await connection.query("SELECT count(*) FROM signing_keys", logger: TestDatabases.logger).decode(Int.self).collectAll())
            }
            #expect(seen.0 == [1])  // only A's root user
            #expect(seen.1 == [1])  // only A's root key
            #expect(seen.2 == [1])
            #expect(seen.3 == [1])  // A's creation entry
            #expect(seen.4 == [0])  // service keys are not tenant data

            // A transaction that set no tenant sees nothing at all.
            let bare = try await database.client.query("SELECT count(*) FROM users").decode(Int.self).collectAll()
            #expect(bare == [0])

            // Writing a row for another tenant from A's transaction is refused by the policy.
            await #expect(throws: (any Error).self) {
                try await database.withTenant(a.tenant.id) { connection in
                    try await connection.query("INSERT INTO users (id, tenant_id, name) VALUES (\(UUID()), \(b.tenant.id), 'sneaky')", logger: TestDatabases.logger)
                }
            }
            // The service role is not a superuser (superusers bypass RLS).
            let superuser = try await database.client.query("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").decode(Bool.self).collectAll()
            #expect(superuser == [false])
        }
    }

    @Test func principalLookupDoesNotLeakItsTenantToTheNextStatement() async throws {
        try await withTestDatabase { database, _ in
            let tenants = TenantStore(database: database, secrets: Self.box)
            let created = try await tenants.create(name: "A", actor: .cli)
            let owner = try await AuthStore(database: database, secrets: Self.box).verify(accessKeyID: created.accessKeyID, secret: created.accessKeySecret)
            let counts = try await database.client.withConnection { connection in
                let principal = try await connection.query(
                    "SELECT o_enabled FROM herald_principal(\(owner.tenantID), \(owner.userID), \(created.accessKeyID))", logger: TestDatabases.logger
                ).decode(Bool.self).collectAll()
                let after = try await connection.query("SELECT count(*) FROM users", logger: TestDatabases.logger).decode(Int.self).collectAll()
                return (principal, after)
            }
            #expect(counts.0 == [true])
            #expect(counts.1 == [0])
            let principal = try await AuthStore(database: database, secrets: Self.box).principal(
                tenantID: owner.tenantID, userID: owner.userID, accessKeyID: created.accessKeyID)
            #expect(principal?.isRoot == true)
            // The wrong key for the user, or another tenant's id, finds nothing.
            #expect(try await AuthStore(database: database, secrets: Self.box).principal(tenantID: UUID(), userID: owner.userID, accessKeyID: created.accessKeyID) == nil)
        }
    }

    @Test func noAccessKeySecretIsStoredInClear() async throws {
        try await withTestDatabase { database, _ in
            let tenants = TenantStore(database: database, secrets: Self.box)
            let identity = IdentityStore(database: database, secrets: Self.box)
            let created = try await tenants.create(name: "Secretive", actor: .cli)
            let user = try await identity.createUser(tenantID: created.tenant.id, name: "u1", actor: .cli)
            let (_, userSecret) = try await identity.createAccessKey(tenantID: created.tenant.id, userID: user.id, actor: .cli)
            let everything = try await database.withSystem { connection in
                var text = ""
                let tables = try await connection.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'", logger: TestDatabases.logger).decode(String.self).collectAll()
                for table in tables {
                    for try await row in try await connection.query(PostgresQuery(unsafeSQL: "SELECT t::text FROM \(table) t"), logger: TestDatabases.logger).decode(String.self) {
                        text += row + "\n"
                    }
                }
                return text
            }
            #expect(everything.contains(created.accessKeyID))
            #expect(!everything.contains(created.accessKeySecret))
            #expect(!everything.contains(userSecret))
            // …and the stored form still verifies.
            let owner = try await AuthStore(database: database, secrets: Self.box).verify(accessKeyID: created.accessKeyID, secret: created.accessKeySecret)
            #expect(owner.tenantID == created.tenant.id)
        }
    }
}

extension AsyncSequence {
    func collectAll() async throws -> [Element] {
        var result: [Element] = []
        for try await element in self { result.append(element) }
        return result
    }
}

@Suite struct RowLevelSecurityCoverageTests {
    /// Every table with a tenant_id column forces row-level security and has a policy, so a table added
    /// by a later migration cannot forget the wall.
    @Test func everyTenantTableForcesRLS() async throws {
        try await withTestDatabase { database, _ in
            let uncovered = try await database.withSystem { connection in
                var names: [String] = []
                for try await name in try await connection.query("""
                    SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
                      AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
                      AND NOT (c.relrowsecurity AND c.relforcerowsecurity AND EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid))
                    """, logger: database.logger).decode(String.self) {
                    names.append(name)
                }
                return names
            }
            #expect(uncovered.isEmpty, "tables without forced RLS: \(uncovered)")
        }
    }
}

@Suite struct SigningKeyRingTests {
    /// A stale key set is reloaded by one request, not by every request that finds it stale (they each took
    /// the ring's advisory lock in turn: 48 reloads in 10 s of a benchmark, 50 ms of waiting each); an
    /// unknown key id still reloads at once, at most every 5 seconds.
    @Test func aStaleSetIsReloadedOnceNotByEveryRequest() async throws {
        try await withTestDatabase { database, _ in
            let clock = Mutex(Date(timeIntervalSince1970: 2_000_000_000))
            let secrets = SecretBox(masterKey: .random())
            let ring = SigningKeyRing(database: database, secrets: secrets, publishAfterRetirement: .seconds(3_600),
                                      now: { clock.withLock { $0 } })
            try await ring.refresh()
            let kid = try await ring.currentKey().kid
            #expect(ring.refreshCount == 1)
            _ = await ring.publicKeys(ensuring: kid)
            #expect(ring.refreshCount == 1, "a fresh set is not reloaded")

            clock.withLock { $0 += 31 }
            await withTaskGroup(of: Int.self) { group in
                for _ in 0..<50 { group.addTask { await ring.publicKeys(ensuring: kid).count } }
                for await count in group { #expect(count == 1, "every request has the keys, reloaded or not") }
            }
            await ring.reloaded()
            #expect(ring.refreshCount == 2, "one reload for 50 requests that found the set stale")

            // A process that has not loaded the set yet: every request waits for the one reload, none is refused.
            let fresh = SigningKeyRing(database: database, secrets: secrets, publishAfterRetirement: .seconds(3_600),
                                       now: { clock.withLock { $0 } })
            await withTaskGroup(of: Int.self) { group in
                for _ in 0..<50 { group.addTask { await fresh.publicKeys(ensuring: kid).count } }
                for await count in group { #expect(count == 1, "the key is known to every first request") }
            }
            #expect(fresh.refreshCount == 1)

            _ = await ring.publicKeys(ensuring: "unknown-kid")
            #expect(ring.refreshCount == 3, "an unknown key id reloads")
            _ = await ring.publicKeys(ensuring: "unknown-kid")
            #expect(ring.refreshCount == 3, "but at most every 5 seconds")
        }
    }
}
