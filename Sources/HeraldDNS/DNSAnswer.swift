/// The outcome of one lookup: the response code and the records of the asked type, with CNAME chains
/// in the answer section followed (`records` holds only records of `type` on the chain).
public struct DNSAnswer: Hashable, Sendable {
    /// The name asked for, normalised.
    public var name: String
    /// The type asked for.
    public var type: DNSRecordType
    /// NOERROR, NXDOMAIN, …
    public var responseCode: DNSResponseCode
    /// Records of `type` for `name` or the names its CNAME chain leads to.
    public var records: [DNSResourceRecord]
    /// The CNAME chain followed, in order (empty when there was none).
    public var aliases: [String]
    /// The SOA minimum of the authority section, for negative caching.
    public var negativeTTL: UInt32?

    public init(name: String, type: DNSRecordType, responseCode: DNSResponseCode, records: [DNSResourceRecord],
                aliases: [String] = [], negativeTTL: UInt32? = nil) {
        self.name = DNSName.normalize(name)
        self.type = type
        self.responseCode = responseCode
        self.records = records
        self.aliases = aliases
        self.negativeTTL = negativeTTL
    }

    /// Builds the answer to `question` from a response message.
    public init(question: DNSQuestion, response: DNSMessage) {
        var chain = [question.name]
        var current = question.name
        // Follow CNAMEs in the answer section (bounded, so a loop cannot spin).
        for _ in 0..<16 {
            guard question.type != .cname,
                  let alias = response.answers.first(where: { $0.name == current && $0.type == .cname }),
                  case .cname(let target) = alias.data, !chain.contains(target) else { break }
            chain.append(target)
            current = target
        }
        let records = response.answers.filter { $0.type == question.type && chain.contains($0.name) }
        var negative: UInt32?
        for record in response.authorities {
            if case .soa(_, _, _, _, _, _, let minimum) = record.data { negative = min(minimum, record.ttl) }
        }
        self.init(name: question.name, type: question.type, responseCode: response.responseCode, records: records,
                  aliases: Array(chain.dropFirst()), negativeTTL: negative)
    }

    /// The name does not exist.
    public var isNXDomain: Bool { responseCode == .nameError }
    /// The name exists but has no record of this type.
    public var isNoData: Bool { responseCode == .noError && records.isEmpty }

    /// How long this answer may be cached.
    func cacheTTL(negativeDefault: UInt32) -> UInt32 {
        if records.isEmpty { return negativeTTL ?? negativeDefault }
        return records.map(\.ttl).min() ?? 0
    }

    /// TXT values (each record's strings joined).
    public var texts: [String] { records.compactMap(\.textValue) }

    /// Mail exchangers by preference, then name.
    public var mailExchangers: [(preference: UInt16, host: String)] {
        records.compactMap { record -> (UInt16, String)? in
            guard case .mx(let preference, let exchange) = record.data else { return nil }
            return (preference, exchange)
        }.sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
    }
}
