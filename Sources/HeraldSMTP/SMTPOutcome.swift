/// What the SMTP conversation said about one recipient of one envelope: the class of the server's answer
/// (SPEC §4 result classes), nothing more. HeraldDelivery turns it into a `DeliveryResult` (HeraldCore),
/// once, with the retry time and the invalid-address rule; this module knows neither.
public enum SMTPOutcome: Hashable, Sendable {
    /// 2xx after the data: the next hop has it.
    case delivered(SMTPReply)
    /// 4xx, a dropped connection or a timeout: try again later.
    case softFailure(String)
    /// 5xx: do not retry.
    case hardFailure(SMTPReply)
    /// 5.7.x, or a rejection whose wording is about spam, policy or reputation.
    case spamRejected(SMTPReply)

    /// The class of a reply to the end of the data (or of a failed reply): only a 2xx is a delivery; a 3xx
    /// there is out of step with the conversation and is tried again, never taken for a delivery.
    public static func classify(_ reply: SMTPReply) -> SMTPOutcome {
        switch reply.kind {
        case .completion: return .delivered(reply)
        case .intermediate, .other: return .softFailure("unexpected reply: \(reply)")
        case .failure: break
        }
        if reply.isTransient { return .softFailure(reply.description) }
        if reply.enhanced?.statusClass == 5 && reply.enhanced?.subject == 7 { return .spamRejected(reply) }
        let text = reply.lines.joined(separator: " ").lowercased()
        let spamWords = ["spam", "blocked", "blacklist", "blocklist", "denylist", "reputation", "policy", "dnsbl", "rbl", "junk", "abuse"]
        if spamWords.contains(where: { text.contains($0) }) { return .spamRejected(reply) }
        return .hardFailure(reply)
    }

    /// What the server said (or why there was no answer), as logs and events show it.
    public var response: String {
        switch self {
        case .delivered(let reply), .hardFailure(let reply), .spamRejected(let reply): reply.description
        case .softFailure(let reason): reason
        }
    }
}
