import Foundation
import HeraldCore
import Logging
import PostgresNIO

/// A tenant's mail settings: tracking by default, the unsubscribe link on trigger mail, and how long its
/// history is kept.
public struct AccountSettings: Sendable, Equatable {
    public var trackOpensAndClicks: Bool
    public var unsubscribeLinkInTriggerMail: Bool
    public var retention: Retention

    public init(trackOpensAndClicks: Bool, unsubscribeLinkInTriggerMail: Bool, retention: Retention = Retention()) {
        self.trackOpensAndClicks = trackOpensAndClicks
        self.unsubscribeLinkInTriggerMail = unsubscribeLinkInTriggerMail
        self.retention = retention
    }
}

public struct AccountSettingsStore: Sendable {
    let database: Database

    public init(database: Database) {
        self.database = database
    }

    public func get(tenantID: UUID) async throws -> AccountSettings {
        try await database.withTenant(tenantID) { connection in
            try await Self.load(connection, tenantID: tenantID, logger: database.logger)
        }
    }

    private static func load(_ connection: PostgresConnection, tenantID: UUID, logger: Logger) async throws -> AccountSettings {
        guard let (track, unsubscribe, messageDays, eventDays) = try await connection.query("""
            SELECT track_opens_clicks, trigger_unsubscribe_link, message_retention_days, event_retention_days FROM tenants WHERE id = \(tenantID)
            """, logger: logger).decode((Bool, Bool, Int, Int).self).first(where: { _ in true }) else { throw HeraldError.notFound("tenant") }
        return AccountSettings(trackOpensAndClicks: track, unsubscribeLinkInTriggerMail: unsubscribe,
                               retention: Retention(messageDays: messageDays, eventDays: eventDays))
    }

    /// Changes the settings; retention days left nil stay as they are. A retention change makes the
    /// history partitions it needs in the same transaction.
    public func set(tenantID: UUID, trackOpensAndClicks: Bool, unsubscribeLinkInTriggerMail: Bool, messageRetentionDays: Int?,
                    eventRetentionDays: Int?, actor: AuditActor) async throws -> AccountSettings {
        try await database.withTenant(tenantID) { connection in
            let current = try await Self.load(connection, tenantID: tenantID, logger: database.logger)
            let retention = try current.retention.changed(messageDays: messageRetentionDays, eventDays: eventRetentionDays)
            let settings = AccountSettings(trackOpensAndClicks: trackOpensAndClicks, unsubscribeLinkInTriggerMail: unsubscribeLinkInTriggerMail,
                                           retention: retention)
            try await connection.query("""
                UPDATE tenants SET track_opens_clicks = \(settings.trackOpensAndClicks), trigger_unsubscribe_link = \(settings.unsubscribeLinkInTriggerMail),
                       message_retention_days = \(retention.messageDays), event_retention_days = \(retention.eventDays)
                WHERE id = \(tenantID)
                """, logger: database.logger)
            if retention != current.retention {
                try await HistoryStore.prepare(connection, logger: database.logger)
            }
            try await AuditLog.record(on: connection, logger: database.logger, tenantID: tenantID, actor: actor, action: "dm:UpdateAccountSettings",
                                      resource: ResourceName.tenantResource(tenantID: tenantID.lowercasedString, kind: "account", name: "settings"),
                                      detail: ["trackOpensAndClicks": "\(settings.trackOpensAndClicks)",
                                               "unsubscribeLinkInTriggerMail": "\(settings.unsubscribeLinkInTriggerMail)",
                                               "messageRetentionDays": "\(retention.messageDays)",
                                               "eventRetentionDays": "\(retention.eventDays)"])
            return settings
        }
    }
}
