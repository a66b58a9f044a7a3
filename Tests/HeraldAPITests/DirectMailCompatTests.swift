import Foundation
import HTTPTypes
import HeraldAPI
import HeraldCore
import HeraldDNS
import HeraldTestSupport
import HummingbirdTesting
import PostgresNIO
import Testing

/// The Direct Mail OpenAPI compatibility endpoint against the official Alibaba Cloud SDK
/// (`alibabacloud-dm20151123` from PyPI, installed by ops/test), with both of its signature schemes.
@Suite struct DirectMailCompatTests {
    /// Runs `calls` (Python statements using `client`, `models`, `ak`, `secret`) with a client of the official
    /// SDK pointed at Herald; prints go to the returned output.
    static func sdk(_ app: TestApp, keyID: String, secret: String, algorithm: String?, _ calls: String) async throws -> String {
        let port = try #require(app.client.port)
        let (status, output) = try await runPythonDetached("""
            import sys, json
            from alibabacloud_dm20151123.client import Client
            from alibabacloud_dm20151123 import models
            from alibabacloud_tea_openapi import models as open_api_models
            ak, secret, port, algorithm = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
            def make(ak, secret):
                config = open_api_models.Config(access_key_id=ak, access_key_secret=secret, endpoint="127.0.0.1:" + port, protocol="http")
                if algorithm != "default":
                    config.signature_algorithm = algorithm
                return Client(config)
            client = make(ak, secret)
            def attempt(call):
                try:
                    print("ok", json.dumps(call().body.to_map(), sort_keys=True))
                except Exception as e:
                    print("error", getattr(e, "code", type(e).__name__), getattr(e, "statusCode", ""), str(getattr(e, "data", {}).get("statusCode", "")))
            \(calls)
            """, [keyID, secret, String(port), algorithm ?? "default"])
        #expect(status == 0, "\(output)")
        return output
    }

    @Test(arguments: [nil, "v2"] as [String?])
    func theOfficialSDKSendsSingleMail(algorithm: String?) async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await TestApp.run(dnsPort: dns.port) { app in
                let (tenant, _, keyID, secret) = try await SingleSendTests.sendingTenant(app, dns)
                let output = try await Self.sdk(app, keyID: keyID, secret: secret, algorithm: algorithm, """
                    request = models.SingleSendMailRequest(account_name="app@example.test", address_type=1, reply_to_address=False,
                                                           to_address="ann@example.org,ben@example.org", subject="Hello",
                                                           html_body="<p>Hi</p>", text_body="Hi", from_alias="Acme", tag_name=None)
                    attempt(lambda: client.single_send_mail(request))
                    bad = models.SingleSendMailRequest(account_name="nobody@example.test", address_type=1, reply_to_address=False,
                                                       to_address="ann@example.org", subject="Hello", text_body="Hi")
                    attempt(lambda: client.single_send_mail(bad))
                    wrong = make(ak, "not-the-secret")
                    attempt(lambda: wrong.single_send_mail(request))
                    stranger = make("LTAIxxxxxxxxxxxxxxxxxxxx", secret)
                    attempt(lambda: stranger.single_send_mail(request))
                    """)
                let lines = output.split(separator: "\n").map(String.init)
                #expect(lines.count == 4, "\(output)")
                #expect(lines.first?.hasPrefix("ok ") == true && lines.first?.contains("\"EnvId\"") == true
                        && lines.first?.contains("\"RequestId\"") == true, "\(output)")
                #expect(lines.dropFirst().first?.hasPrefix("error ") == true, "an unknown sender is refused: \(output)")
                #expect(lines.dropFirst(2).first?.hasPrefix("error SignatureDoesNotMatch") == true, "\(output)")
                #expect(lines.dropFirst(3).first?.hasPrefix("error InvalidAccessKeyId.NotFound") == true, "\(output)")
                #expect(try await SingleSendTests.count(app, "messages", tenant: tenant) == 2, "two recipients queued, nothing else")
            }
        }
    }
}
