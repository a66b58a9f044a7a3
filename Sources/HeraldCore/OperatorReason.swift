/// The free-text reason an operator gives for a tenant change (freeze, unfreeze, ban, grade): it is stored with
/// the change and sent in the `account.*` webhook event, so it is as bounded as the contract says.
public enum OperatorReason {
    /// The contract's `maxLength` of `reason`.
    public static let maxLength = 500

    /// Answers the reason, or refuses one longer than ``maxLength`` characters.
    public static func validate(_ reason: String?) throws(HeraldError) -> String? {
        guard let reason else { return nil }
        guard reason.count <= maxLength else { throw .validation("reason must be at most \(maxLength) characters.", field: "reason") }
        return reason
    }
}
