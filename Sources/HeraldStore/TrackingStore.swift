import Foundation
import HeraldCore
import Logging
import PostgresNIO

/// Opens and clicks: each one is a `message.opened` / `message.clicked` event (with `first` on the first of
/// its kind for the message, which the statistics count as unique), written with the message's first-open
/// or first-click time by one statement (`herald_track`, migration 0018).
public struct TrackingStore: Sendable {
    let database: Database

    public init(database: Database) {
        self.database = database
    }

    /// Records an open (`url` nil) or a click; answers false when the tenant has no such message.
    public func record(tenantID: UUID, messageID: UUID, url: String?, now: Date) async throws -> Bool {
        try await database.client.query("SELECT herald_track(\(tenantID), \(messageID), \(url), \(now))", logger: database.logger)
            .decode(Bool.self).first { _ in true } ?? false
    }
}
