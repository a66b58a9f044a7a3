import Foundation
import HeraldCore
import HeraldStore

/// The management actions of the compatibility endpoint: domains, sender addresses, tags, receiver lists and
/// their members.
extension DirectMailCompat {
    /// The management actions, on the services of their REST routes and under the same RAM actions.
    func manage(_ action: String, parameters: Parameters, principal: Principal, actor: AuditActor) async throws -> [String: any Sendable] {
        let tenant = principal.tenantID
        func id(_ name: String) throws(HeraldError) -> UUID {
            guard let id = UUID(uuidString: try parameters.require(name)) else {
                throw HeraldError(code: "InvalidParameter", kind: .invalid, message: "\(name) is not a valid id.", field: name)
            }
            return id
        }
        func authorize(_ kind: String?, _ object: UUID?) throws(HeraldError) {
            let resource = kind.flatMap { kind in object.map { principal.resource(kind, $0.lowercasedString) } } ?? principal.tenantResource
            try principal.authorize(action: "dm:" + action, resource: resource)
        }
        /// The object the parameter names, once the signer may act on it.
        func object(_ name: String, _ kind: String) throws(HeraldError) -> UUID {
            let object = try id(name)
            try authorize(kind, object)
            return object
        }
        switch action {
        case "CreateTemplate", "ModifyTemplate", "DeleteTemplate", "DescTemplate":
            return try await template(action, parameters: parameters, principal: principal, actor: actor) { (ram, object) throws(HeraldError) in
                let resource = object.map { principal.resource("template", $0.lowercasedString) } ?? principal.tenantResource
                try principal.authorize(action: ram, resource: resource)
            }
        case "DescDomain":
            let domainID = try object("DomainId", "domain")
            return Self.describe(try await domains.get(tenantID: tenant, id: domainID), settings: domainSettings)
        case "ModifyMailAddress":
            // The reply-to address (a new one is mailed a confirmation link) and/or the SMTP password.
            let senderID = try object("MailAddressId", "sender")
            let reply = parameters.optional("ReplyAddress"), password = parameters.optional("Password")
            guard reply != nil || password != nil else {
                throw HeraldError(code: "MissingParameter", kind: .invalid, message: "Give ReplyAddress, Password or both.", field: "ReplyAddress")
            }
            if let password { try SMTPPassword.validate(password) }
            if let reply { _ = try await senders.setReplyTo(tenantID: tenant, id: senderID, replyTo: reply, actor: actor) }
            if let password { try await senders.setSMTPPassword(tenantID: tenant, id: senderID, password: password, actor: actor) }
        case "CheckReplyToMailAddress":
            // Mails the reply-to address a new confirmation link.
            let senderID = try object("MailAddressId", "sender")
            _ = try await senders.renewReplyToNonce(tenantID: tenant, id: senderID, actor: actor)
        case "CreateDomain":
            try authorize(nil, nil)
            let domain = try await domains.create(tenantID: tenant, name: try parameters.require("DomainName"), keyBits: 2048, actor: actor, now: now())
            return ["DomainId": domain.id.lowercasedString]
        case "CheckDomain":
            let domainID = try object("DomainId", "domain")
            let domain = try await verifier.verify(tenantID: tenant, id: domainID, actor: actor)
            return ["DomainStatus": domain.status == .verified ? 0 : 1]
        case "DeleteDomain":
            let domainID = try object("DomainId", "domain")
            try await domains.delete(tenantID: tenant, id: domainID, actor: actor)
        case "CreateMailAddress":
            try authorize(nil, nil)
            guard let type = MailKind(rawValue: try parameters.require("Sendtype")) else {
                throw HeraldError.validation("Sendtype must be trigger or batch.", field: "Sendtype")
            }
            let reply = parameters.optional("ReplyAddress")
            let (sender, _) = try await senders.create(tenantID: tenant, address: try parameters.require("AccountName"), type: type, replyTo: reply, actor: actor)
            return ["MailAddressId": sender.id.lowercasedString]
        case "DeleteMailAddress":
            let senderID = try object("MailAddressId", "sender")
            try await senders.delete(tenantID: tenant, id: senderID, actor: actor, now: now())
        case "CreateTag":
            try authorize(nil, nil)
            return ["TagId": try await senders.createTag(tenantID: tenant, name: try parameters.require("TagName"), actor: actor).id.lowercasedString]
        case "DeleteTag":
            let tagID = try object("TagId", "tag")
            try await senders.deleteTag(tenantID: tenant, id: tagID, actor: actor)
        case "CreateReceiver":
            try authorize(nil, nil)
            let list = try await lists.create(tenantID: tenant, name: try parameters.require("ReceiversName"),
                                              alias: parameters.optional("ReceiversAlias"),
                                              description: parameters.optional("Desc"), actor: actor)
            return ["ReceiverId": list.id.lowercasedString]
        case "DeleteReceiver":
            let listID = try object("ReceiverId", "list")
            try await lists.delete(tenantID: tenant, id: listID, actor: actor)
        case "SaveReceiverDetail":
            let listID = try object("ReceiverId", "list")
            // Detail: [{"e": address, "u": user name, "n": nickname, "g": gender, "b": birthday, "m": mobile}, …].
            guard let rows = try? JSONSerialization.jsonObject(with: Data(try parameters.require("Detail").utf8)) as? [[String: Any]] else {
                throw HeraldError(code: "InvalidParameter", kind: .invalid, message: "Detail must be a JSON array of objects with e (the address).",
                                  field: "Detail")
            }
            let names = ["u": "UserName", "n": "NickName", "g": "Gender", "b": "Birthday", "m": "Mobile"]
            var candidates: [RecipientImport.Candidate] = [], rejected: [RecipientImport.Rejection] = []
            for (index, row) in rows.enumerated() {
                var variables: [String: String] = [:]
                for (key, value) in row where key != "e" { variables[names[key] ?? key] = "\(value)" }
                switch RecipientImport.check(row: index + 1, address: row["e"] as? String ?? "", variables: variables) {
                case .success(let candidate): candidates.append(candidate)
                case .failure(let rejection): rejected.append(rejection)
                }
            }
            let result = try await lists.importMembers(tenantID: tenant, listID: listID, candidates: candidates, rejected: rejected, actor: actor)
            return ["SuccessCount": result.imported, "ErrorCount": result.rejected.count,
                    "Data": ["Detail": result.rejected.map { ["Email": rows[$0.row - 1]["e"] as? String ?? "", "ErrMessage": $0.reason] as [String: any Sendable] }]]
        case "QueryReceiverDetail":
            let listID = try object("ReceiverId", "list")
            let size = Int(parameters["PageSize"] ?? "10") ?? 0
            guard (1...100).contains(size) else {
                throw HeraldError(code: "InvalidParameter", kind: .invalid, message: "PageSize must be 1 to 100.", field: "PageSize")
            }
            let list = try await lists.get(tenantID: tenant, id: listID)
            let members = try await lists.members(tenantID: tenant, listID: listID, limit: size,
                                                  after: parameters.optional("NextStart"))
            let rows: [[String: any Sendable]] = members.map { member in
                let data = (try? JSONSerialization.data(withJSONObject: member.variables, options: [.sortedKeys])).map { String(decoding: $0, as: UTF8.self) }
                return ["Email": member.address, "Data": data ?? "{}", "CreateTime": Self.detailTime.string(from: member.createdAt),
                        "UtcCreateTime": Int(member.createdAt.timeIntervalSince1970)]
            }
            var reply: [String: any Sendable] = ["TotalCount": list.memberCount, "data": ["detail": rows]]
            if members.count == size, let last = members.last { reply["NextStart"] = last.address }
            return reply
        case "DeleteReceiverDetail":
            let listID = try object("ReceiverId", "list")
            try await lists.deleteMember(tenantID: tenant, listID: listID, address: try parameters.require("Email").lowercased(), actor: actor)
        default:
            throw HeraldError(code: "InvalidAction.NotFound", kind: .notFound, message: "Specified api is not found.")
        }
        return [:]
    }

    /// DescDomain: the domain's records to publish, with their last check (0 checked, 1 not), by Direct Mail's names.
    static func describe(_ domain: DomainRecord, settings: SendingDomain.Settings) -> [String: any Sendable] {
        let records = domain.records(settings: settings)
        func first(_ purpose: SendingDomain.Purpose) -> (record: SendingDomain.Record, check: SendingDomain.Check?)? {
            records.first { $0.record.purpose == purpose }
        }
        func status(_ purpose: SendingDomain.Purpose) -> String { first(purpose)?.check?.status == .ok ? "0" : "1" }
        func found(_ purpose: SendingDomain.Purpose) -> String { first(purpose)?.check?.found.joined(separator: " ") ?? "" }
        func host(_ purpose: SendingDomain.Purpose) -> String {
            guard let host = first(purpose)?.record.host else { return "" }
            return host == domain.name ? "@" : String(host.dropLast(domain.name.count + 1))
        }
        let dkim = first(.dkim)?.record
        return ["DomainId": domain.id.lowercasedString, "DomainName": domain.name, "DomainStatus": domain.status == .verified ? "0" : "1",
                "DomainType": "", "HostRecord": host(.ownership), "DomainVersion": 0, "DefaultDomain": "", "TlDomainName": domain.name,
                "CnameAuthStatus": "1", "CnameConfirmStatus": "1", "CnameRecord": "", "IcpStatus": "1", "TracefRecord": "",
                "SpfAuthStatus": status(.spf), "SpfRecord": first(.spf)?.record.value ?? "", "DnsSpf": found(.spf),
                "DkimAuthStatus": status(.dkim), "DkimRR": dkim.map { String($0.host.dropLast(domain.name.count + 1)) } ?? "",
                "DkimPublicKey": dkim?.value ?? "", "DkimRsaLength": domain.key(.rsa, state: "active")?.bits ?? 0,
                "DmarcAuthStatus": Int(status(.dmarc)) ?? 1, "DmarcHostRecord": host(.dmarc), "DmarcRecord": first(.dmarc)?.record.value ?? "",
                "DnsDmarc": found(.dmarc), "MxAuthStatus": status(.returnPath), "MxRecord": first(.returnPath)?.record.value ?? "",
                "DnsMx": found(.returnPath), "DnsTxt": found(.ownership),
                "CreateTime": createTime.string(from: domain.createdAt)]
    }
}
