/// How long a tenant's history is kept (issue #17, item 5): message records with their bodies, counted
/// from the day a message became final, and events, counted from the day they happened. The database
/// drops whole partitions of expiry days (migration 0032), so a row lives its retention plus at most its
/// partition's width (1 day for messages, 7 for events).
public struct Retention: Sendable, Equatable {
    public static let defaultMessageDays = 30
    public static let defaultEventDays = 180
    /// The bounds of either setting (the database's tenants_retention_check says the same).
    public static let days = 1...400

    public var messageDays: Int
    public var eventDays: Int

    public init(messageDays: Int = Retention.defaultMessageDays, eventDays: Int = Retention.defaultEventDays) {
        self.messageDays = messageDays
        self.eventDays = eventDays
    }

    /// The settings with the given changes (nil: unchanged), or a validation error naming the field.
    public func changed(messageDays: Int?, eventDays: Int?) throws(HeraldError) -> Retention {
        for (name, value) in [("messageRetentionDays", messageDays), ("eventRetentionDays", eventDays)] {
            if let value, !Self.days.contains(value) {
                throw HeraldError.validation("\(name) must be between \(Self.days.lowerBound) and \(Self.days.upperBound) days (got \(value)).", field: name)
            }
        }
        return Retention(messageDays: messageDays ?? self.messageDays, eventDays: eventDays ?? self.eventDays)
    }
}
