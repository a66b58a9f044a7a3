/// What the other live processes hold of one cluster-wide limit, as read under the limit's lock.
public struct OtherShares: Sendable, Equatable {
    /// The sum of their measured demand (per second).
    public var wants: Double
    /// The sum of their live grants (per second), or, of a limit on whole things, of what each grant or
    /// holds, whichever is more (a process whose grant shrank still holds what it has not given back).
    public var granted: Double
    /// How many processes hold a share.
    public var holders: Int

    public init(wants: Double = 0, granted: Double = 0, holders: Int = 0) {
        self.wants = wants
        self.granted = granted
        self.holders = holders
    }

    public static let none = OtherShares()
}

/// How much of a cluster-wide limit one process may use (its *grant*), decided while the limit is locked
/// against every other process's grant, so the live grants never add up to more than the limit.
///
/// - When everybody together wants no more than the limit, each process gets what it wants plus an
///   equal slice of what is left over, one slice per live process of the limit's role (whether it holds a
///   share yet or not): a process that meets a bucket for the first time finds its slice free.
/// - When they want more, the limit is split in proportion to what each wants.
/// - Either way a grant never exceeds what the others leave free; a process that asked for more than
///   that gets the rest when the others next renew (within one renewal interval), as their grants
///   shrink towards their proportions.
/// - A process alone in the installation gets the whole limit, as a single process always did.
public enum LimitShareRule {
    /// The grant (per second) of a process that wants `wants` per second of `limit`, given the others'
    /// shares and the number of live processes (`processes`, this one included).
    public static func grant(limit: Double, wants: Double, others: OtherShares, processes: Int) -> Double {
        let limit = max(0, limit), wants = max(0, wants)
        let free = max(0, limit - others.granted)
        let holders = others.holders + 1
        guard processes > holders || others.holders > 0 else { return free }
        let total = wants + max(0, others.wants)
        let target: Double
        if total <= limit {
            // The rest in equal slices for every process of the role, holder or not yet: a process that meets
            // the key later finds its slice free (slicing among the holders only let the first few take it all).
            let slices = Double(max(holders, processes))
            target = wants + (limit - total) / slices
        } else {
            target = limit * wants / total
        }
        return min(free, max(0, target))
    }

    /// A grant of whole units (connections): ``grant(limit:wants:others:processes:)`` rounded down, so whole
    /// grants still add up to no more than the limit; but a process that wants some and would get none
    /// while a unit is free gets that one, so that a limit smaller than the number of processes is used.
    public static func wholeGrant(limit: Int, wants: Double, others: OtherShares, processes: Int) -> Int {
        let exact = grant(limit: Double(limit), wants: wants, others: others, processes: processes)
        let whole = Int(exact.rounded(.down))
        if whole == 0 && wants > 0 && Double(limit) - others.granted >= 1 { return 1 }
        return whole
    }
}
