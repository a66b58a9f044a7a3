import HeraldDNS
import HeraldSMTP

/// Where mail for a recipient domain goes: the smart host when one is set (`HERALD_SMARTHOST`), else
/// the domain's MX hosts by preference, or its own address when it has no MX (implicit MX, RFC 5321
/// §5.1). A null MX (RFC 7505) refuses mail for good; a DNS failure is a soft failure.
public struct MailRouter: Sendable {
    public var dns: DNSClient
    public var smarthost: (host: String, port: Int)?

    public init(dns: DNSClient, smarthost: (host: String, port: Int)?) {
        self.dns = dns
        self.smarthost = smarthost
    }

    public enum Route: Sendable {
        case hosts([(host: String, port: Int)])
        case fail(SMTPOutcome)
    }

    public func route(domain: String) async -> Route {
        if let smarthost { return .hosts([smarthost]) }
        do {
            let answer = try await dns.query(domain, .mx)
            if answer.isNXDomain {
                return .fail(.hardFailure(SMTPReply(code: 550, enhanced: EnhancedStatus(statusClass: 5, subject: 1, detail: 2),
                                                    lines: ["the domain \(domain) does not exist"])))
            }
            let exchangers = answer.mailExchangers
            if exchangers.count == 1 && exchangers[0].host.isEmpty {
                return .fail(.hardFailure(SMTPReply(code: 556, enhanced: EnhancedStatus(statusClass: 5, subject: 1, detail: 10),
                                                    lines: ["\(domain) accepts no mail (null MX)"])))
            }
            if exchangers.isEmpty { return .hosts([(domain, 25)]) }
            return .hosts(exchangers.map { ($0.host, 25) })
        } catch {
            return .fail(.softFailure("MX lookup for \(domain) failed: \(error)"))
        }
    }
}
