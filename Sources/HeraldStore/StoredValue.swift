import HeraldCore

/// A text column whose CHECK constraint lists the cases of a HeraldCore enum (statuses, kinds): it is read
/// back as that enum, and a value this binary does not know (a database migrated ahead of it) is an error,
/// never a silent default.
struct UnknownStoredValue: Error, CustomStringConvertible {
    var type: String
    var value: String

    var description: String { "the database holds \(type) \"\(value)\", which this version of Herald does not know" }
}

extension RawRepresentable where RawValue == String {
    /// The case named by a stored column.
    static func stored(_ value: String) throws(UnknownStoredValue) -> Self {
        guard let known = Self(rawValue: value) else { throw UnknownStoredValue(type: "\(Self.self)", value: value) }
        return known
    }
}
