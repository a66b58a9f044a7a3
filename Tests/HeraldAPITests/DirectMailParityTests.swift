import Foundation
import HTTPTypes
import HeraldAPI
import HeraldAppTestSupport
import HeraldCore
import HeraldDNS
import HeraldDelivery
import HeraldTestSupport
import PostgresNIO
import Testing

/// What a customer moving from Direct Mail still needed (issue #18): Reply-To end to end, and the rest of the
/// API — with the official SDK (`alibabacloud-dm20151123`) in both signature schemes.
@Suite struct DirectMailParityTests {
    /// Python: `call(action, params)` signs and sends any action with the SDK's own client (as its generated
    /// methods do), for actions the SDK version has no method for and for the table sweep.
    static let generic = """
        from alibabacloud_tea_openapi import utils_models as util_models
        from darabonba.runtime import RuntimeOptions
        def call(action, params):
            p = util_models.Params(action=action, version="2015-11-23", protocol="HTTP", pathname="/", method="POST", auth_type="AK",
                                   style="RPC", req_body_type="formData", body_type="json")
            return client.call_api(p, util_models.OpenApiRequest(query=params), RuntimeOptions())
        def attempt_call(action, params):
            try:
                print("ok", json.dumps(call(action, params)["body"], sort_keys=True))
            except Exception as e:
                print("error", getattr(e, "code", type(e).__name__), str(getattr(e, "message", ""))[:300].replace("\\n", " "))
        """

    static func lines(_ output: String) -> [String] { output.split(separator: "\n").map(String.init) }

    static func json(_ line: String) throws -> [String: Any] {
        #expect(line.hasPrefix("ok "), "\(line)")
        return try #require(try JSONSerialization.jsonObject(with: Data(line.dropFirst(3).utf8)) as? [String: Any], "\(line)")
    }

    /// The rows of docs/directmail.md's table: action and status (works / refused).
    static func table() throws -> [(action: String, status: String)] {
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../docs/directmail.md").standardized
        let text = try String(contentsOf: docs, encoding: .utf8)
        return text.split(separator: "\n").compactMap { line in
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 3, cells[0].hasPrefix("`"), cells[0].hasSuffix("`") else { return nil }
            return (String(cells[0].dropFirst().dropLast()), cells[1])
        }
    }

    /// docs/directmail.md lists every action of the 2015-11-23 API (all of the SDK's, and SetMaxQuotaLevel),
    /// and the endpoint answers each as the table says: a refused one with `InvalidAction.Unsupported`, a working
    /// one with anything but that or `InvalidAction.NotFound` (called without parameters, most answer
    /// MissingParameter).
    @Test(arguments: [nil, "v2"] as [String?])
    func theTableMatchesWhatTheEndpointAnswers(algorithm: String?) async throws {
        let rows = try Self.table()
        #expect(Set(rows.map(\.status)) == ["works", "refused"], "\(rows.filter { $0.status != "works" && $0.status != "refused" })")
        #expect(Set(rows.map(\.action)).count == rows.count, "each action once")
        try await DNSTestServer.with(zone: [:]) { dns in
            try await TestApp.run(dnsPort: dns.port) { app in
                let (_, _, keyID, secret) = try await app.sendingTenant(dns)
                let actions = rows.map(\.action).map { "\"\($0)\"" }.joined(separator: ", ")
                let output = try await DirectMailCompatTests.sdk(app, keyID: keyID, secret: secret, algorithm: algorithm, Self.generic + "\n" + """
                    import re, inspect, alibabacloud_dm20151123.client as sdk_client
                    known = sorted(set(re.findall(r"action\\s*=\\s*'([A-Za-z0-9]+)'", inspect.getsource(sdk_client))))
                    print("sdk", " ".join(known))
                    for action in [\(actions)]:
                        print("action", action)
                        attempt_call(action, {})
                    """)
                let lines = Self.lines(output)
                let sdkActions = Set(try #require(lines.first { $0.hasPrefix("sdk ") }).split(separator: " ").dropFirst().map(String.init))
                #expect(sdkActions.count >= 80, "\(sdkActions.count) actions in the SDK")
                #expect(sdkActions.subtracting(rows.map(\.action)).isEmpty, "missing from docs/directmail.md: \(sdkActions.subtracting(rows.map(\.action)).sorted())")
                for (action, status) in rows {
                    guard let index = lines.firstIndex(of: "action \(action)"), index + 1 < lines.count else {
                        Issue.record("no answer to \(action): \(output.suffix(500))")
                        continue
                    }
                    let answer = lines[index + 1]
                    if status == "refused" {
                        #expect(answer.hasPrefix("error InvalidAction.Unsupported"), "\(action) is refused in the table: \(answer)")
                    } else {
                        #expect(!answer.hasPrefix("error InvalidAction."), "\(action) works in the table: \(answer)")
                        #expect(!answer.hasPrefix("error InternalError") && !answer.contains("SignatureDoesNotMatch"), "\(action): \(answer)")
                    }
                }
            }
        }
    }

    /// Reply-To end to end over the compatibility endpoint: SingleSendMail's `ReplyToAddress=true` puts the sender's
    /// confirmed reply-to on the mail, with `ReplyAddressAlias` as its name; `false` none; a `ReplyAddress` other than
    /// the confirmed one and `ReplyToAddress=true` without one are refused; BatchSendMail's `ReplyAddress` and
    /// `ClickTrace` reach every message of the task; `AddressType=0` is refused clearly. REST batch sends carry it too.
    @Test(arguments: [nil, "v2"] as [String?])
    func replyToReachesTheMailOnEveryPath(algorithm: String?) async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await SMTPTestServer.with { peer in
                try await TestApp.run(dnsPort: dns.port) { app in
                    let (tenant, token, keyID, secret) = try await app.sendingTenant(dns)
                    try await app.setGrade(tenant: tenant, 3)
                    let (batch, _) = try await UnsubscribeTests.batchSetup(app, token: token)
                    let tenantID = try #require(UUID(uuidString: tenant))
                    let send = """
                        def single(to, **extra):
                            return lambda: client.single_send_mail(models.SingleSendMailRequest(account_name="app@example.test", address_type=extra.pop("address_type", 1),
                                to_address=to, subject="Hello", text_body="Hi", **extra))
                        """
                    // No reply-to confirmed yet: ReplyToAddress=true is refused, false sends without one.
                    let before = Self.lines(try await DirectMailCompatTests.sdk(app, keyID: keyID, secret: secret, algorithm: algorithm, send + "\n" + """
                        attempt(single("ann@example.org", reply_to_address=True))
                        attempt(single("ann@example.org", reply_to_address=False, address_type=0))
                        """))
                    #expect(before.count == 2 && before[0].hasPrefix("error InvalidReplyAddress.NotVerified"), "\(before)")
                    #expect(before.count == 2 && before[1].hasPrefix("error InvalidAddressType.Unsupported"), "\(before)")
                    try await AcceptTrustTests.system(app, """
                        UPDATE senders SET reply_to = 'help@example.test', reply_to_status = 'verified' WHERE tenant_id = \(tenantID)
                        """)
                    let after = Self.lines(try await DirectMailCompatTests.sdk(app, keyID: keyID, secret: secret, algorithm: algorithm, send + "\n" + """
                        attempt(single("sam@example.org", reply_to_address=True, reply_address_alias="Help Desk"))
                        attempt(single("tom@example.org", reply_to_address=False))
                        attempt(single("uma@example.org", reply_to_address=False, reply_address="HELP@example.test"))
                        attempt(single("vic@example.org", reply_to_address=True, reply_address="other@example.test"))
                        attempt(lambda: client.batch_send_mail(models.BatchSendMailRequest(account_name="news@example.test", address_type=1,
                            template_name="newsletter", receivers_name="readers", reply_address="help@example.test", reply_address_alias="Hilfe für Sie",
                            click_trace="0")))
                        attempt(lambda: client.batch_send_mail(models.BatchSendMailRequest(account_name="news@example.test", address_type=1,
                            template_name="newsletter", receivers_name="readers", reply_address="nobody@example.test")))
                        """))
                    #expect(after.count == 6, "\(after)")
                    guard after.count == 6 else { return }
                    #expect(after[0].hasPrefix("ok ") && after[1].hasPrefix("ok ") && after[2].hasPrefix("ok "), "\(after)")
                    #expect(after[3].hasPrefix("error InvalidReplyAddress.NotVerified"), "\(after[3])")
                    #expect(after[4].hasPrefix("ok "), "\(after[4])")
                    #expect(after[5].hasPrefix("error InvalidReplyAddress.NotVerified"), "\(after[5])")
                    // The REST batch send names its Reply-To too; a stranger's address is refused there as well.
                    var rest = batch
                    rest["replyTo"] = "evil@example.org"
                    expectProblem(try await app.request(.post, "/v1/mail/batch", token: token, json: rest), 400, "InvalidReplyAddress.NotVerified")
                    let expander = TaskExpander(store: app.dependencies.batches, unsubscribeLinks: app.dependencies.unsubscribeLinks, now: app.clock.now)
                    #expect(try await expander.runOnce())
                    let batchRows = try await AcceptTrustTests.strings(app, """
                        SELECT reply_to || ' ' || tracking::text FROM messages WHERE tenant_id = \(tenantID) AND kind = 'batch' ORDER BY to_address
                        """)
                    #expect(batchRows == Array(repeating: "=?UTF-8?B?SGlsZmUgZsO8ciBTaWU=?= <help@example.test> false", count: 3), "\(batchRows)")
                    // SenderStatisticsByTagNameAndBatchID with the batch's EnvId: its three messages (an older SDK's field).
                    let envID = try #require(try Self.json(after[4])["EnvId"] as? String)
                    let byBatch = Self.lines(try await DirectMailCompatTests.sdk(app, keyID: keyID, secret: secret, algorithm: algorithm, Self.generic + "\n" + """
                        attempt_call("SenderStatisticsByTagNameAndBatchID", {"StartTime": "DAY", "EndTime": "DAY", "BatchID": "\(envID)"})
                        attempt_call("SenderStatisticsByTagNameAndBatchID", {"StartTime": "DAY", "EndTime": "DAY", "BatchID": "nope"})
                        """.replacingOccurrences(of: "DAY", with: DirectMailCompatTests.day(app.clock.now()))))
                    let stat = (try Self.json(byBatch.first ?? "")["data"] as? [String: Any])?["stat"] as? [[String: Any]]
                    #expect(stat?.map { $0["requestCount"] as? Int } == [3], "\(byBatch)")
                    #expect(byBatch.dropFirst().first?.hasPrefix("error InvalidParameter") == true, "\(byBatch)")

                    let worker = try app.deliveryWorker(dns: dns, smtp: peer)
                    #expect(try await worker.runOnce() == 6)
                    func replyTo(_ recipient: String) -> [String] {
                        peer.received.filter { $0.to.contains(recipient) }.flatMap { message in
                            message.data.components(separatedBy: "\r\n").filter { $0.lowercased().hasPrefix("reply-to:") }
                        }
                    }
                    #expect(replyTo("sam@example.org") == ["Reply-To: \"Help Desk\" <help@example.test>"], "\(replyTo("sam@example.org"))")
                    #expect(replyTo("tom@example.org") == [], "ReplyToAddress=false: none")
                    #expect(replyTo("uma@example.org") == ["Reply-To: <help@example.test>"], "\(replyTo("uma@example.org"))")
                    #expect(replyTo("ann@example.org") == ["Reply-To: =?UTF-8?B?SGlsZmUgZsO8ciBTaWU=?= <help@example.test>"], "the batch's: \(replyTo("ann@example.org"))")
                }
            }
        }
    }

    /// The newly answered actions, on the REST services: templates (created and modified into review, described,
    /// found, deleted), ModifyMailAddress, DescDomain, the IP filter entries, SetMaxQuotaLevel (an older SDK's
    /// action, signed by the SDK's generic call), invalid addresses and the open/click track list.
    @Test(arguments: [nil, "v2"] as [String?])
    func theRestOfTheAPIWorksWithTheSDK(algorithm: String?) async throws {
        try await DNSTestServer.with(zone: [:]) { dns in
            try await TestApp.run(dnsPort: dns.port) { app in
                let (tenant, token, keyID, secret) = try await app.sendingTenant(dns)
                let tenantID = try #require(UUID(uuidString: tenant))
                let senderID = try #require(try await AcceptTrustTests.strings(app, "SELECT id::text FROM senders WHERE tenant_id = \(tenantID)").first)
                let domainID = try #require(try await AcceptTrustTests.strings(app, "SELECT id::text FROM domains WHERE tenant_id = \(tenantID)").first)
                try await AcceptTrustTests.system(app, """
                    INSERT INTO invalid_addresses (tenant_id, address, hard_bounces, listed, updated_at)
                    VALUES (\(tenantID), 'gone@example.org', 2, true, now()), (\(tenantID), 'maybe@example.org', 1, false, now())
                    """)
                let day = DirectMailCompatTests.day(app.clock.now())
                let output = try await DirectMailCompatTests.sdk(app, keyID: keyID, secret: secret, algorithm: algorithm, Self.generic + "\n" + """
                    created = client.create_template(models.CreateTemplateRequest(template_name="welcome", template_subject="Welcome ${name}",
                                                                                   template_text="<p>Hello ${name}</p>", template_type=0))
                    template = created.body.template_id
                    print("ok", json.dumps(created.body.to_map(), sort_keys=True))
                    attempt(lambda: client.desc_template(models.DescTemplateRequest(template_id=template)))
                    attempt(lambda: client.modify_template(models.ModifyTemplateRequest(template_id=template, template_subject="Hi ${name}")))
                    attempt(lambda: client.query_template_by_param(models.QueryTemplateByParamRequest(key_word="welc")))
                    attempt(lambda: client.delete_template(models.DeleteTemplateRequest(template_id=template)))
                    attempt(lambda: client.desc_template(models.DescTemplateRequest(template_id=template)))
                    attempt(lambda: client.modify_mail_address(models.ModifyMailAddressRequest(mail_address_id="SENDER", reply_address="help@example.test",
                                                                                               password="Sm7p-Passw0rd-long")))
                    attempt(lambda: client.modify_mail_address(models.ModifyMailAddressRequest(mail_address_id="SENDER", password="short")))
                    attempt(lambda: client.desc_domain(models.DescDomainRequest(domain_id="DOMAIN")))
                    attempt(lambda: client.add_ipfilter(models.AddIpfilterRequest(ip_address="203.0.113.0/24")))
                    attempt(lambda: client.add_ipfilter(models.AddIpfilterRequest(ip_address="2001:db8::1")))
                    attempt(lambda: client.add_ipfilter(models.AddIpfilterRequest(ip_address="not-an-ip")))
                    attempt(lambda: client.get_ipfilter_list(models.GetIpfilterListRequest()))
                    attempt(lambda: client.delete_ipfilter_by_edm_id(models.DeleteIpfilterByEdmIdRequest(id="203.0.113.0/24")))
                    attempt(lambda: client.delete_ipfilter_by_edm_id(models.DeleteIpfilterByEdmIdRequest(id="198.51.100.7")))
                    attempt(lambda: client.get_ipfilter_list(models.GetIpfilterListRequest()))
                    attempt_call("SetMaxQuotaLevel", {"MaxQuotaLevel": "12"})
                    attempt_call("SetMaxQuotaLevel", {"MaxQuotaLevel": "17"})
                    attempt(lambda: client.desc_account_summary(models.DescAccountSummaryRequest()))
                    attempt(lambda: client.query_invalid_address(models.QueryInvalidAddressRequest(key_word="example", length=10)))
                    attempt(lambda: client.delete_invalid_address(models.DeleteInvalidAddressRequest(to_address="gone@example.org")))
                    attempt(lambda: client.query_invalid_address(models.QueryInvalidAddressRequest()))
                    attempt(lambda: client.get_track_list(models.GetTrackListRequest(start_time="DAY", end_time="DAY", account_name="app@example.test")))
                    attempt(lambda: client.get_track_list_by_mail_from_and_tag_name(models.GetTrackListByMailFromAndTagNameRequest(
                        start_time="DAY", end_time="DAY", account_name="app@example.test", page_size=1)))
                    attempt(lambda: client.check_reply_to_mail_address(models.CheckReplyToMailAddressRequest(mail_address_id="SENDER")))
                    """.replacingOccurrences(of: "SENDER", with: senderID).replacingOccurrences(of: "DOMAIN", with: domainID)
                        .replacingOccurrences(of: "DAY", with: day))
                let lines = Self.lines(output)
                #expect(lines.count == 25, "\(output)")
                guard lines.count == 25 else { return }
                let templateID = try #require(try Self.json(lines[0])["TemplateId"] as? String)
                let described = try Self.json(lines[1])
                #expect(described["TemplateName"] as? String == "welcome" && described["TemplateStatus"] as? String == "0"
                        && described["TemplateType"] as? String == "0" && described["TemplateText"] as? String == "<p>Hello ${name}</p>",
                        "created into review: \(described)")
                #expect(lines[2].hasPrefix("ok "), "\(lines[2])")
                let found = try #require((try Self.json(lines[3])["data"] as? [String: Any])?["template"] as? [[String: Any]])
                #expect(found.map { $0["TemplateId"] as? String } == [templateID], "\(found)")
                #expect(lines[4].hasPrefix("ok ") && lines[5].hasPrefix("error "), "deleted: \(lines[4]) \(lines[5])")
                #expect(lines[6].hasPrefix("ok "), "\(lines[6])")
                #expect(lines[7].hasPrefix("error "), "a short SMTP password is refused: \(lines[7])")
                let sender = try await app.request(.get, "/v1/senders/\(senderID)", token: token)
                #expect(sender["replyTo"] == "help@example.test" && sender["replyToStatus"] == "pending" && sender.json["smtpPasswordSet"] as? Bool == true,
                        "\(sender.body)")
                let domain = try Self.json(lines[8])
                #expect(domain["DomainName"] as? String == "example.test" && domain["DomainStatus"] as? String == "0"
                        && (domain["SpfRecord"] as? String ?? "").hasPrefix("v=spf1") && (domain["DkimPublicKey"] as? String ?? "").contains("p="),
                        "\(domain)")
                #expect(try Self.json(lines[9])["IpFilterId"] as? String == "203.0.113.0/24")
                #expect(lines[10].hasPrefix("ok ") && lines[11].hasPrefix("error InvalidParameter"), "\(lines[10]) \(lines[11])")
                let filters = try #require((try Self.json(lines[12])["data"] as? [String: Any])?["ipfilters"] as? [[String: Any]])
                #expect(filters.compactMap { $0["IpAddress"] as? String } == ["203.0.113.0/24", "2001:db8::1/128"], "\(filters)")
                #expect(lines[13].hasPrefix("ok ") && lines[14].hasPrefix("error InvalidIpfilter.NotFound"), "\(lines[13]) \(lines[14])")
                #expect(((try Self.json(lines[15])["data"] as? [String: Any])?["ipfilters"] as? [[String: Any]])?.count == 1)
                let protection = try await app.request(.get, "/v1/ip-protection", token: token)
                #expect(protection.json["enabled"] as? Bool == false && protection.body.contains("2001:db8::1/128"), "the switch stays off: \(protection.body)")
                #expect(try Self.json(lines[16])["MaxQuotaLevel"] as? Int == 12, "\(lines[16])")
                #expect(lines[17].hasPrefix("error "), "a ceiling past 16: \(lines[17])")
                #expect(try Self.json(lines[18])["MaxQuotaLevel"] as? Int == 12, "\(lines[18])")
                let invalid = try #require((try Self.json(lines[19])["data"] as? [String: Any])?["mailDetail"] as? [[String: Any]])
                #expect(invalid.map { $0["ToAddress"] as? String } == ["gone@example.org"], "only the listed one: \(invalid)")
                #expect(lines[20].hasPrefix("ok "), "\(lines[20])")
                #expect(try Self.json(lines[21])["TotalCount"] as? Int == 0, "\(lines[21])")
                let audit = try await app.request(.get, "/v1/audit-log", token: token)
                #expect(audit.body.contains("dm:RemoveInvalidAddress") && audit.body.contains("dm:UpdateGradeCeiling") && audit.body.contains("dm:CreateTemplate"),
                        "\(audit.body.prefix(600))")
                let track = try Self.json(lines[22])
                let days = (track["data"] as? [String: Any])?["stat"] as? [[String: Any]]
                #expect(track["Total"] as? Int == 1 && days?.first?["CreateTime"] as? String == day && days?.first?["RcptOpenRate"] as? String == "0.00%",
                        "every day of the range, rates of the delivered: \(track)")
                #expect(((try Self.json(lines[23])["TrackList"] as? [String: Any])?["Stat"] as? [[String: Any]])?.count == 1, "\(lines[23])")
                // The reply-to set by ModifyMailAddress is pending: a new confirmation link is mailed (and counted).
                #expect(lines[24].hasPrefix("ok "), "\(lines[24])")
                #expect(try await app.count("SELECT count(*)::int FROM messages WHERE kind = 'system' AND to_address = 'help@example.test'") == 2,
                        "the link of ModifyMailAddress and the one CheckReplyToMailAddress asked for")
            }
        }
    }
}
