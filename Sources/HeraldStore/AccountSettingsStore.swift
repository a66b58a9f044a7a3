import Foundation
import HeraldCore
import Logging
import PostgresNIO

/// A tenant's mail settings: tracking by default, and the unsubscribe link on trigger mail.
public struct AccountSettings: Sendable, Equatable {
    public var trackOpensAndClicks: Bool
    public var unsubscribeLinkInTriggerMail: Bool

    public init(trackOpensAndClicks: Bool, unsubscribeLinkInTriggerMail: Bool) {
        self.trackOpensAndClicks = trackOpensAndClicks
        self.unsubscribeLinkInTriggerMail = unsubscribeLinkInTriggerMail
    }
}

public struct AccountSettingsStore: Sendable {
    let database: Database

    public init(database: Database) {
        self.database = database
    }

    public func get(tenantID: UUID) async throws -> AccountSettings {
        try await database.withTenant(tenantID) { connection in
            guard let (track, unsubscribe) = try await connection.query("""
                SELECT track_opens_clicks, trigger_unsubscribe_link FROM tenants WHERE id = \(tenantID)
                """, logger: database.logger).decode((Bool, Bool).self).first(where: { _ in true }) else { throw HeraldError.notFound("tenant") }
            return AccountSettings(trackOpensAndClicks: track, unsubscribeLinkInTriggerMail: unsubscribe)
        }
    }

    public func set(tenantID: UUID, _ settings: AccountSettings, actor: AuditActor) async throws -> AccountSettings {
        try await database.withTenant(tenantID) { connection in
            try await connection.query("""
                UPDATE tenants SET track_opens_clicks = \(settings.trackOpensAndClicks), trigger_unsubscribe_link = \(settings.unsubscribeLinkInTriggerMail)
                WHERE id = \(tenantID)
                """, logger: database.logger)
            try await AuditLog.record(on: connection, logger: database.logger, tenantID: tenantID, actor: actor, action: "dm:UpdateAccountSettings",
                                      resource: ResourceName.tenantResource(tenantID: tenantID.lowercasedString, kind: "account", name: "settings"),
                                      detail: ["trackOpensAndClicks": "\(settings.trackOpensAndClicks)",
                                               "unsubscribeLinkInTriggerMail": "\(settings.unsubscribeLinkInTriggerMail)"])
            return settings
        }
    }
}
