import Foundation
import HeraldCore
import HeraldTestSupport
import Logging
import PostgresNIO
import Testing
@testable import HeraldStore

/// The principal cache: what it keeps, what a change or a lost listener drops, and the race between a
/// read and a change.
@Suite struct TenantCacheTests {
    static func principal(_ tenantID: UUID = UUID(), user: UUID = UUID(), key: String = "LTAIkey") -> Principal {
        Principal(tenantID: tenantID, tenantStatus: .active, userID: user, isRoot: false, accessKeyID: key, policies: [])
    }

    static func key(_ principal: Principal) -> PrincipalKey {
        PrincipalKey(tenantID: principal.tenantID, userID: principal.userID, accessKeyID: principal.accessKeyID)
    }

    static func lookup(_ cache: PrincipalCache, _ principal: Principal) -> (Principal?, PrincipalCache.Ticket?) {
        cache.lookup(key(principal))
    }

    @Test func servesOnlyWhileLiveAndDropsATenantOnItsChange() throws {
        let cache = PrincipalCache()
        let ann = Self.principal(), ben = Self.principal()
        // Not listening: nothing is served and nothing is kept.
        #expect(Self.lookup(cache, ann).0 == nil && Self.lookup(cache, ann).1 == nil)
        cache.reset(live: true)
        for principal in [ann, ben] {
            let ticket = try #require(Self.lookup(cache, principal).1)
            cache.store(principal, for: Self.key(principal), ticket: ticket)
        }
        #expect(Self.lookup(cache, ann).0?.userID == ann.userID && cache.count == 2)
        cache.invalidate(tenantID: ann.tenantID)
        #expect(Self.lookup(cache, ann).0 == nil)
        #expect(Self.lookup(cache, ben).0?.userID == ben.userID, "another tenant's change leaves this one")
        // The listener lost: everything goes, and nothing is served until it listens again.
        cache.reset(live: false)
        #expect(cache.count == 0 && Self.lookup(cache, ben).0 == nil && Self.lookup(cache, ben).1 == nil)
    }

    @Test func aReadThatRacedAChangeIsNotKept() throws {
        let cache = PrincipalCache()
        cache.reset(live: true)
        let ann = Self.principal()
        // Read started, then the change was announced, then the read finished: the old read is not kept.
        var ticket = try #require(Self.lookup(cache, ann).1)
        cache.invalidate(tenantID: ann.tenantID)
        cache.store(ann, for: Self.key(ann), ticket: ticket)
        #expect(Self.lookup(cache, ann).0 == nil)
        // The same across a reconnection.
        ticket = try #require(Self.lookup(cache, ann).1)
        cache.reset(live: true)
        cache.store(ann, for: Self.key(ann), ticket: ticket)
        #expect(Self.lookup(cache, ann).0 == nil)
        // A change to another tenant does not spoil the read.
        ticket = try #require(Self.lookup(cache, ann).1)
        cache.invalidate(tenantID: UUID())
        cache.store(ann, for: Self.key(ann), ticket: ticket)
        #expect(Self.lookup(cache, ann).0?.userID == ann.userID)
    }

    @Test func entriesExpireAndTheCapacityHolds() throws {
        let expired = PrincipalCache(maxAge: .zero)
        expired.reset(live: true)
        let ann = Self.principal()
        expired.store(ann, for: Self.key(ann), ticket: try #require(Self.lookup(expired, ann).1))
        #expect(Self.lookup(expired, ann).0 == nil)
        let small = PrincipalCache(capacity: 3)
        small.reset(live: true)
        for _ in 0..<10 {
            let principal = Self.principal()
            small.store(principal, for: Self.key(principal), ticket: try #require(Self.lookup(small, principal).1))
        }
        #expect(small.count <= 3)
    }

    /// Against PostgreSQL: every change a principal depends on is heard by a listening process and drops
    /// the tenant's principals there; a listener whose connection is killed empties the cache at once and
    /// serves again only after it listens anew.
    @Test func changesAreHeardAndALostListenerEmptiesTheCache() async throws {
        try await withTestDatabase { database, url in
            let cache = PrincipalCache()
            let secrets = SecretBox(masterKey: .random())
            var auth = AuthStore(database: database, secrets: secrets)
            auth.principals = cache
            var listener = try TenantChangeListener(caches: [cache], url: url, logger: Logger(label: "test"))
            listener.pingInterval = .milliseconds(200)
            let listening = Task { await listener.run() }
            defer { listening.cancel() }
            try await waitUntil("the listener listens") { cache.isLive }

            let tenants = TenantStore(database: database, secrets: secrets)
            let identity = IdentityStore(database: database, secrets: secrets)
            let created = try await tenants.create(name: "Cached", actor: AuditActor(type: .system))
            let tenantID = created.tenant.id
            let user = try await identity.createUser(tenantID: tenantID, name: "app", actor: AuditActor(type: .system))
            let (key, _) = try await identity.createAccessKey(tenantID: tenantID, userID: user.id, actor: AuditActor(type: .system))
            func principal() async throws -> Principal? { try await auth.principal(tenantID: tenantID, userID: user.id, accessKeyID: key.accessKeyId) }

            // Read once from the database, then from memory.
            #expect(try await principal()?.policies.isEmpty == true)
            #expect(cache.count == 1)
            // Each change that a principal reads drops it: a policy attached, IP protection, the user disabled.
            _ = try await identity.attachPolicy(tenantID: tenantID, userID: user.id, name: "ReadOnlyAccess", actor: AuditActor(type: .system))
            try await waitUntil("the attachment is heard") { cache.count == 0 }
            #expect(try await principal()?.policies.count == 1)
            _ = try await identity.setIPProtection(tenantID: tenantID, allowlist: try IPAllowlist.parse(enabled: true, entries: ["10.0.0.0/8"]), actor: AuditActor(type: .system))
            try await waitUntil("IP protection is heard") { cache.count == 0 }
            #expect(try await principal()?.ipAllowlist.enabled == true)
            // A key's last use changes nothing a principal reads: no notification, the entry stays.
            try await database.withSystem { connection -> Void in
                try await connection.query("UPDATE access_keys SET last_used_at = now() WHERE id = \(key.accessKeyId)", logger: database.logger)
            }
            #expect(try await principal() != nil && cache.count == 1)
            _ = try await identity.updateUser(tenantID: tenantID, id: user.id, name: nil, enabled: false, actor: AuditActor(type: .system))
            try await waitUntil("the user's change is heard") { cache.count == 0 }
            #expect(try await principal() == nil, "a disabled user has no principal")

            // The listener's connection killed: the cache empties and serves nothing until it listens again.
            _ = try await identity.updateUser(tenantID: tenantID, id: user.id, name: nil, enabled: true, actor: AuditActor(type: .system))
            try await waitUntil("the enabled user is cached again") { try await principal() != nil && cache.count == 1 }
            let killed = try await database.withSystem { connection in
                try await connection.query("""
                    SELECT count(pg_terminate_backend(pid))::int FROM pg_stat_activity WHERE application_name = \(TenantChangeListener.applicationName) AND datname = current_database()
                    """, logger: database.logger).decode(Int.self).collectAll()
            }
            #expect(killed == [1])
            try await waitUntil("the loss is noticed") { !cache.isLive }
            #expect(cache.count == 0)
            // Changed while nobody listened: read from the database, so refused.
            try await database.withSystem { connection -> Void in
                try await connection.query("UPDATE users SET enabled = false WHERE id = \(user.id)", logger: database.logger)
            }
            #expect(try await principal() == nil)
            try await waitUntil("the listener listens again") { cache.isLive }
            #expect(try await principal() == nil)
        }
    }
}
