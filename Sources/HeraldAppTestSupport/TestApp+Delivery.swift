import HTTPTypes
import HeraldDNS
import HeraldDelivery
import HeraldSMTP
import HeraldServer
import HeraldTestSupport
import NIOCore
import Testing

extension TestApp {
    /// A delivery worker on this app's stores and clock that sends everything to `smtp` (no return path,
    /// no rate limits: the scheduler role's own settings are not the test's).
    public func deliveryWorker(dns: DNSTestServer, smtp: SMTPTestServer) throws -> DeliveryWorker {
        var worker = DeliveryWorker(store: services.deliveries, domains: services.domains,
                                    router: MailRouter(dns: DNSClient(server: try SocketAddress(ipAddress: "127.0.0.1", port: dns.port)),
                                                       smarthost: ("127.0.0.1", smtp.port)),
                                    smtp: SMTPDelivery(hostname: "herald.test"), worker: "test-worker", now: clock.now)
        worker.tracking = services.trackingLinks
        worker.unsubscribeLinks = services.unsubscribeLinks
        return worker
    }

    /// The DKIM TXT record value the tenant's (first) domain publishes.
    public func dkimRecord(token: String) async throws -> String {
        let domain = try await request(.get, "/v1/domains", token: token)
        return ((domain.json["items"] as? [[String: Any]])?.first?["records"] as? [[String: Any]])?
            .first { $0["purpose"] as? String == "dkim" }?["value"] as? String ?? ""
    }
}

/// The message's DKIM signature verifies with dkimpy (an independent verifier) fed `record`.
public func expectDKIMVerifies(_ data: String, record: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let (status, output) = try runPython("""
        import sys, dkim
        record = sys.argv[1].encode()
        print("ok" if dkim.verify(sys.stdin.buffer.read(), dnsfunc=lambda name, timeout=5: record) else "fail")
        """, [record], input: Array(data.utf8))
    #expect(status == 0 && output == "ok\n", "\(output)", sourceLocation: sourceLocation)
}
