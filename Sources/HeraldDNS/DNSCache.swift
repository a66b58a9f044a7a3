import Foundation
import Synchronization

/// A small cache of answers that honours their TTLs: positive answers live for the smallest TTL of their
/// records, negative ones (NXDOMAIN, no data) for the SOA minimum of the authority section (RFC 2308),
/// both capped. When full, expired entries go first, then the ones closest to expiring.
public final class DNSCache: Sendable {
    struct Key: Hashable {
        var name: String
        var type: DNSRecordType
    }

    struct Entry {
        var answer: DNSAnswer
        var expires: Date
    }

    private let entries = Mutex<[Key: Entry]>([:])
    let capacity: Int
    let maximumTTL: UInt32
    let negativeTTL: UInt32
    let now: @Sendable () -> Date

    /// A cache of at most `capacity` answers; no answer is kept longer than `maximumTTL` seconds, and a
    /// negative answer without an SOA for `negativeTTL`.
    public init(capacity: Int = 4096, maximumTTL: UInt32 = 3600, negativeTTL: UInt32 = 60, now: @escaping @Sendable () -> Date = Date.init) {
        self.capacity = max(1, capacity)
        self.maximumTTL = maximumTTL
        self.negativeTTL = negativeTTL
        self.now = now
    }

    /// The cached answer, with its TTLs counted down, if it has not expired.
    public func lookup(_ name: String, _ type: DNSRecordType) -> DNSAnswer? {
        let key = Key(name: DNSName.normalize(name), type: type)
        let now = self.now()
        return entries.withLock { entries -> DNSAnswer? in
            guard let entry = entries[key] else { return nil }
            guard entry.expires > now else {
                entries[key] = nil
                return nil
            }
            var answer = entry.answer
            let remaining = UInt32(max(0, entry.expires.timeIntervalSince(now)).rounded(.up))
            answer.records = answer.records.map { record in
                var record = record
                record.ttl = min(record.ttl, remaining)
                return record
            }
            return answer
        }
    }

    /// Stores an answer for as long as its TTLs allow. Server failures are never cached.
    public func store(_ answer: DNSAnswer) {
        guard answer.responseCode == .noError || answer.responseCode == .nameError else { return }
        let ttl = min(maximumTTL, answer.cacheTTL(negativeDefault: negativeTTL))
        guard ttl > 0 else { return }
        let key = Key(name: answer.name, type: answer.type)
        let now = self.now()
        let expires = now.addingTimeInterval(TimeInterval(ttl))
        entries.withLock { entries in
            if entries[key] == nil && entries.count >= capacity {
                let expired = entries.filter { $0.value.expires <= now }.map(\.key)
                for key in expired { entries[key] = nil }
                if entries.count >= capacity, let soonest = entries.min(by: { $0.value.expires < $1.value.expires })?.key {
                    entries[soonest] = nil
                }
            }
            entries[key] = Entry(answer: answer, expires: expires)
        }
    }

    /// Number of entries (expired ones included until they are touched).
    public var count: Int { entries.withLock { $0.count } }
}
