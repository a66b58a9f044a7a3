import Foundation
import HTTPTypes
import HeraldAPI
import HeraldAppTestSupport
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

    static func day(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd"
        return formatter.string(from: date)
    }

    @Test(arguments: [nil, "v2"] as [String?])
    func theOfficialSDKSendsSingleMail(algorithm: String?) async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await TestApp.run(dnsPort: dns.port) { app in
                let (tenant, _, keyID, secret) = try await app.sendingTenant(dns)
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
                    attempt(lambda: client.sender_statistics_by_tag_name_and_batch_id(
                        models.SenderStatisticsByTagNameAndBatchIDRequest(start_time="DAY", end_time="DAY", account_name="app@example.test")))
                    attempt(lambda: client.create_user_suppression(models.CreateUserSuppressionRequest(address="Eve@Example.org")))
                    attempt(lambda: client.list_user_suppression(models.ListUserSuppressionRequest(address="eve")))
                    attempt(lambda: client.remove_user_suppression(models.RemoveUserSuppressionRequest(suppression_ids="eve@example.org")))
                    attempt(lambda: client.list_user_suppression(models.ListUserSuppressionRequest()))
                    attempt(lambda: client.sender_statistics_detail_by_param(models.SenderStatisticsDetailByParamRequest(to_address="ben@example.org")))
                    attempt(lambda: client.sender_statistics_detail_by_param(models.SenderStatisticsDetailByParamRequest(status=0)))
                    """.replacingOccurrences(of: "DAY", with: Self.day(app.clock.now())))
                let lines = output.split(separator: "\n").map(String.init)
                #expect(lines.count == 11, "\(output)")
                #expect(lines.first?.hasPrefix("ok ") == true && lines.first?.contains("\"EnvId\"") == true
                        && lines.first?.contains("\"RequestId\"") == true, "\(output)")
                #expect(lines.dropFirst().first?.hasPrefix("error ") == true, "an unknown sender is refused: \(output)")
                #expect(lines.dropFirst(2).first?.hasPrefix("error SignatureDoesNotMatch") == true, "\(output)")
                #expect(lines.dropFirst(3).first?.hasPrefix("error InvalidAccessKeyId.NotFound") == true, "\(output)")
                #expect(try await app.count("messages", tenant: tenant) == 2, "two recipients queued, nothing else")
                // The day's statistics (two requests, none delivered yet) and the suppression list round trip.
                #expect(lines[4].contains("\"requestCount\": 2") && lines[4].contains("\"successCount\": 0")
                        && lines[4].contains("\"CreateTime\": \"\(Self.day(app.clock.now()))\""), "\(lines[4])")
                #expect(lines[5].hasPrefix("ok ") && lines[5].contains("\"SuppressionId\": \"eve@example.org\""), "\(lines[5])")
                #expect(lines[6].contains("\"TotalCount\": 1") && lines[6].contains("\"Address\": \"eve@example.org\""), "\(lines[6])")
                #expect(lines[7].hasPrefix("ok "), "\(lines[7])")
                #expect(lines[8].contains("\"TotalCount\": 0"), "\(lines[8])")
                #expect(lines[9].contains("\"ToAddress\": \"ben@example.org\"") && lines[9].contains("\"Subject\": \"Hello\"")
                        && !lines[9].contains("ann@example.org"), "the detail search by recipient: \(lines[9])")
                #expect(lines[10].hasPrefix("ok ") && !lines[10].contains("ToAddress"), "nothing delivered yet: \(lines[10])")
            }
        }
    }

    /// BatchSendMail by template and list names; a ReadOnly sub-user's key is refused (RAM); DescAccountSummary
    /// shows the grade, quotas and counts; an action Herald does not offer is a clean Direct Mail error with the reason.
    @Test func batchSendMailPoliciesAndUnknownActions() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await TestApp.run(dnsPort: dns.port) { app in
                let (tenant, token, keyID, secret) = try await app.sendingTenant(dns)
                try await app.setGrade(tenant: tenant, 3)
                _ = try await UnsubscribeTests.batchSetup(app, token: token)
                let user = try #require(try await app.request(.post, "/v1/users", token: token, json: ["name": "reporting"])["id"])
                #expect(try await app.request(.post, "/v1/users/\(user)/policies", token: token, json: ["policy": "ReadOnlyAccess"]).status == 200)
                let key = try await app.request(.post, "/v1/users/\(user)/access-keys", token: token)
                let readOnlyID = try #require(key["accessKeyId"]), readOnlySecret = try #require(key["accessKeySecret"])
                let output = try await Self.sdk(app, keyID: keyID, secret: secret, algorithm: nil, """
                    batch = models.BatchSendMailRequest(account_name="news@example.test", address_type=1, template_name="newsletter",
                                                        receivers_name="readers")
                    attempt(lambda: client.batch_send_mail(batch))
                    attempt(lambda: client.batch_send_mail(models.BatchSendMailRequest(account_name="news@example.test", address_type=1,
                                                                                       template_name="nope", receivers_name="readers")))
                    attempt(lambda: make(sys.argv[5], sys.argv[6]).batch_send_mail(batch))
                    attempt(lambda: client.desc_account_summary(models.DescAccountSummaryRequest()))
                    attempt(lambda: client.get_suppression_list_level(models.GetSuppressionListLevelRequest()))
                    reader = make(sys.argv[5], sys.argv[6])
                    attempt(lambda: reader.query_domain_by_param(models.QueryDomainByParamRequest(page_no=1, page_size=10)))
                    attempt(lambda: reader.query_mail_address_by_param(models.QueryMailAddressByParamRequest(sendtype="batch")))
                    attempt(lambda: reader.query_template_by_param(models.QueryTemplateByParamRequest(key_word="news", status=1)))
                    attempt(lambda: reader.query_receiver_by_param(models.QueryReceiverByParamRequest()))
                    attempt(lambda: reader.query_tag_by_param(models.QueryTagByParamRequest(page_size=500)))
                    attempt(lambda: reader.query_task_by_param(models.QueryTaskByParamRequest()))
                    attempt(lambda: client.update_ip_protection(models.UpdateIpProtectionRequest(ip_protection="on")))
                    attempt(lambda: reader.get_ip_protection(models.GetIpProtectionRequest()))
                    attempt(lambda: reader.update_ip_protection(models.UpdateIpProtectionRequest(ip_protection="off")))
                    """.replacingOccurrences(of: "sys.argv[5], sys.argv[6]", with: "\"\(readOnlyID)\", \"\(readOnlySecret)\""))
                let lines = output.split(separator: "\n").map(String.init)
                #expect(lines.count == 14, "\(output)")
                let taskID = try #require(lines.first.flatMap { $0.hasPrefix("ok ") ? $0 : nil }?.split(separator: "\"").dropFirst(3).first, "\(output)")
                let task = try await app.request(.get, "/v1/tasks/\(taskID)", token: token)
                #expect(task.status == 200 && task.body.contains("\"total\":3"), "the batch is a task like a REST one: \(task.body)")
                #expect(lines.dropFirst().first?.hasPrefix("error InvalidTemplate.NotFound") == true, "\(output)")
                #expect(lines.dropFirst(2).first?.hasPrefix("error Forbidden.RAM") == true, "\(output)")
                let audit = try await app.request(.get, "/v1/audit-log", token: token)
                #expect(audit.body.contains("dm:BatchSendMail") && audit.body.contains("Forbidden.RAM"), "the refusal is audited: \(audit.body.prefix(800))")
                let summary = try #require(lines.dropFirst(3).first, "\(output)")
                #expect(summary.hasPrefix("ok ") && summary.contains("\"QuotaLevel\": 3") && summary.contains("\"Domains\": 1")
                        && summary.contains("\"MailAddresses\": 2") && summary.contains("\"Templates\": 1") && summary.contains("\"Receivers\": 1")
                        && summary.contains("\"UserStatus\": 0"), "\(summary)")
                #expect(lines.dropFirst(4).first?.hasPrefix("error InvalidAction.Unsupported") == true, "an action Herald refuses, with its reason: \(output)")
                // The query actions, as the ReadOnly user (dm:Query* is allowed), with Direct Mail's field names.
                func body(_ index: Int) throws -> [String: Any] {
                    let line = try #require(lines.dropFirst(index).first, "\(output)")
                    #expect(line.hasPrefix("ok "), "\(line)")
                    return try #require(try JSONSerialization.jsonObject(with: Data(line.dropFirst(3).utf8)) as? [String: Any])
                }
                func items(_ index: Int, _ key: String) throws -> [[String: Any]] {
                    try #require((try body(index)["data"] as? [String: Any])?[key] as? [[String: Any]], "\(lines[index])")
                }
                #expect(try items(5, "domain").map { $0["DomainName"] as? String } == ["example.test"])
                #expect(try items(5, "domain").first?["DomainStatus"] as? Int == 0)
                #expect(try items(6, "mailAddress").map { $0["AccountName"] as? String } == ["news@example.test"], "only the batch sender")
                #expect(try items(7, "template").map { $0["TemplateName"] as? String } == ["newsletter"])
                #expect(try items(8, "receiver").first?["ReceiversName"] as? String == "readers" && items(8, "receiver").first?["Count"] as? Int == 3)
                #expect(lines.dropFirst(9).first?.hasPrefix("error InvalidParameter") == true, "PageSize over 100: \(output)")
                #expect(try items(10, "task").map { $0["TaskId"] as? String } == [String(taskID)])
                #expect(try items(10, "task").first?["TemplateName"] as? String == "newsletter")
                #expect(lines.dropFirst(11).first?.hasPrefix("ok ") == true, "\(output)")
                #expect(try body(12)["IpProtection"] as? String == "on", "the switch turned on by the root key")
                #expect(lines.dropFirst(13).first?.hasPrefix("error Forbidden.RAM") == true, "ReadOnly cannot switch it: \(output)")
            }
        }
    }

    /// Hand-signed V2 requests (the signature computed here in Python, as Alibaba documents it): a replayed
    /// nonce, a timestamp 20 minutes old, an altered parameter and an unsigned request are refused.
    @Test func replayedNoncesOldTimestampsAndAlteredParametersAreRefused() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await TestApp.run(dnsPort: dns.port) { app in
                let (tenant, _, keyID, secret) = try await app.sendingTenant(dns)
                let port = try #require(app.client.port)
                let (status, output) = try await runPythonDetached("""
                    import base64, datetime, hashlib, hmac, json, sys, urllib.error, urllib.parse, urllib.request, uuid
                    ak, secret, port = sys.argv[1], sys.argv[2], sys.argv[3]
                    def enc(s):
                        return urllib.parse.quote(s, safe="~")
                    def signed(params):
                        canonical = "&".join(enc(k) + "=" + enc(v) for k, v in sorted(params.items()))
                        digest = hmac.new((secret + "&").encode(), ("POST&%2F&" + enc(canonical)).encode(), hashlib.sha1).digest()
                        return dict(params, Signature=base64.b64encode(digest).decode())
                    def post(params):
                        request = urllib.request.Request("http://127.0.0.1:" + port + "/", data=urllib.parse.urlencode(params).encode(),
                                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
                        try:
                            with urllib.request.urlopen(request) as r:
                                return r.status, json.loads(r.read())
                        except urllib.error.HTTPError as e:
                            return e.code, json.loads(e.read())
                    def base(minutes=0):
                        stamp = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")
                        return {"Action": "SingleSendMail", "Version": "2015-11-23", "Format": "JSON", "AccessKeyId": ak,
                                "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0", "SignatureNonce": str(uuid.uuid4()), "Timestamp": stamp,
                                "AccountName": "app@example.test", "AddressType": "1", "ReplyToAddress": "false", "ToAddress": "ann@example.org",
                                "Subject": "Hello 你好", "TextBody": "Hi ~ & = + %"}
                    once = signed(base())
                    for params in [once, once, signed(base(20)), dict(once, ToAddress="eve@example.org"),
                                   {k: v for k, v in base().items() if k != "Signature"},
                                   signed(dict(base(), Subject="x\\x00")), signed(dict(base(), TagName="a\\x00b"))]:
                        code, body = post(params)
                        print(code, body.get("Code", "OK"), "RequestId" in body)
                    """, [keyID, secret, String(port)])
                #expect(status == 0, "\(output)")
                #expect(output == """
                    200 OK True
                    400 SignatureNonceUsed True
                    400 InvalidTimeStamp.Expired True
                    400 SignatureDoesNotMatch True
                    400 MissingParameter True
                    400 Validation.Failed True
                    400 Validation.Failed True

                    """, "\(output)")
                #expect(try await app.count("messages", tenant: tenant) == 1, "only the first request sent anything")
            }
        }
    }

    /// The management actions run on the REST services: domains (create, check through DNS, delete), sender
    /// addresses, tags, receivers and their members (save with Direct Mail's short keys, query, delete).
    @Test func managementActionsMapOntoTheRESTServices() async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await TestApp.run(dnsPort: dns.port) { app in
                let (_, token, keyID, secret) = try await app.sendingTenant(dns)
                let output = try await Self.sdk(app, keyID: keyID, secret: secret, algorithm: nil, """
                    def ok(call):
                        response = call().body.to_map()
                        print("ok", json.dumps(response, sort_keys=True))
                        return response
                    domain = ok(lambda: client.create_domain(models.CreateDomainRequest(domain_name="mgmt.example")))["DomainId"]
                    ok(lambda: client.check_domain(models.CheckDomainRequest(domain_id=domain)))
                    sender = ok(lambda: client.create_mail_address(models.CreateMailAddressRequest(account_name="news@example.test", sendtype="batch")))["MailAddressId"]
                    tag = ok(lambda: client.create_tag(models.CreateTagRequest(tag_name="promo")))["TagId"]
                    receiver = ok(lambda: client.create_receiver(models.CreateReceiverRequest(receivers_name="club", receivers_alias="club@x", desc="Members")))["ReceiverId"]
                    detail = json.dumps([{"e": "ann@example.org", "n": "Ann"}, {"e": "not-an-address"}])
                    ok(lambda: client.save_receiver_detail(models.SaveReceiverDetailRequest(receiver_id=receiver, detail=detail)))
                    ok(lambda: client.query_receiver_detail(models.QueryReceiverDetailRequest(receiver_id=receiver, page_size=10)))
                    ok(lambda: client.delete_receiver_detail(models.DeleteReceiverDetailRequest(receiver_id=receiver, email="ann@example.org")))
                    ok(lambda: client.query_receiver_detail(models.QueryReceiverDetailRequest(receiver_id=receiver)))
                    ok(lambda: client.delete_receiver(models.DeleteReceiverRequest(receiver_id=receiver)))
                    ok(lambda: client.delete_tag(models.DeleteTagRequest(tag_id=tag)))
                    ok(lambda: client.delete_mail_address(models.DeleteMailAddressRequest(mail_address_id=sender)))
                    ok(lambda: client.delete_domain(models.DeleteDomainRequest(domain_id=domain)))
                    attempt(lambda: client.delete_domain(models.DeleteDomainRequest(domain_id=domain)))
                    attempt(lambda: client.check_domain(models.CheckDomainRequest(domain_id="12345")))
                    """)
                let lines = output.split(separator: "\n").map(String.init)
                #expect(lines.count == 15 && lines.prefix(13).allSatisfy { $0.hasPrefix("ok ") }, "\(output)")
                guard lines.count == 15 else { return }
                #expect(lines[1].contains("\"DomainStatus\": 1"), "no DNS records published: \(lines[1])")
                #expect(lines[5].contains("\"SuccessCount\": 1") && lines[5].contains("\"ErrorCount\": 1"), "\(lines[5])")
                #expect(lines[6].contains("\"Email\": \"ann@example.org\"") && lines[6].contains("NickName") && lines[6].contains("\"TotalCount\": 1"),
                        "\(lines[6])")
                #expect(lines[8].contains("\"TotalCount\": 0"), "\(lines[8])")
                #expect(lines[13].hasPrefix("error NotFound") || lines[13].hasPrefix("error Domain.NotFound"), "\(lines[13])")
                #expect(lines[14].hasPrefix("error InvalidParameter"), "\(lines[14])")
                // The REST side agrees: only the first domain and sender are left, no tags or lists.
                let domains = try await app.request(.get, "/v1/domains", token: token)
                #expect(!domains.body.contains("mgmt.example"), "\(domains.body)")
                #expect(try await app.request(.get, "/v1/lists", token: token).body.contains("\"items\":[]"))
                #expect(try await app.request(.get, "/v1/tags", token: token).body.contains("\"items\":[]"))
                #expect(!(try await app.request(.get, "/v1/senders", token: token).body.contains("news@example.test")))
            }
        }
    }
}
