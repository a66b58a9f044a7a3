import HeraldCore
import HeraldDNS

/// The SSRF guard: resolves a webhook URL's host and refuses it when any of its addresses is one no
/// webhook may reach (``WebhookTargetPolicy/isForbidden(_:)``). The dispatcher then connects to the
/// address that was checked, not to whatever the name resolves to a moment later (no DNS-rebinding
/// window).
public struct WebhookGuard: Sendable {
    public var policy: WebhookTargetPolicy
    public var dns: DNSClient

    public init(policy: WebhookTargetPolicy, dns: DNSClient) {
        self.policy = policy
        self.dns = dns
    }

    /// A URL that passed, with the address to connect to.
    public struct Checked: Sendable, Equatable {
        public var target: WebhookTargetPolicy.Target
        public var address: IPAddress
    }

    /// Checks a URL's form and every address its host resolves to (A and AAAA); answers the address to
    /// use (IPv4 first). Refusals are `Validation.Failed` on `url`.
    public func check(_ url: String) async throws(HeraldError) -> Checked {
        let target = try policy.target(url)
        if let address = target.address {
            if let reason = policy.refusal(address) { throw refused(target.host, reason) }
            return Checked(target: target, address: address)
        }
        var addresses: [IPAddress] = []
        var nameExists = false
        for type in [DNSRecordType.a, .aaaa] {
            do {
                let answer = try await dns.query(target.host, type)
                if !answer.isNXDomain { nameExists = true }
                for record in answer.records {
                    switch record.data {
                    case .a(let bytes), .aaaa(let bytes): if let address = IPAddress(bytes: bytes) { addresses.append(address) }
                    default: break
                    }
                }
            } catch {
                throw HeraldError.validation("The webhook host \(target.host) could not be resolved right now (\(error)); try again.", field: "url")
            }
        }
        guard let first = addresses.first else {
            throw HeraldError.validation(nameExists ? "The webhook host \(target.host) has no address." : "The webhook host \(target.host) does not exist.",
                                         field: "url")
        }
        for address in addresses {
            if let reason = policy.refusal(address) { throw refused(target.host, "\(address), " + reason) }
        }
        return Checked(target: target, address: first)
    }

    func refused(_ host: String, _ reason: String) -> HeraldError {
        HeraldError.validation("Webhooks may not go to \(host): it is \(reason). (The operator can allow private targets with HERALD_WEBHOOK_ALLOW_PRIVATE=1.)",
                               field: "url")
    }
}
