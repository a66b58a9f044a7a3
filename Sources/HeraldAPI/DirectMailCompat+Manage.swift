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
        default: // DeleteReceiverDetail
            let listID = try object("ReceiverId", "list")
            try await lists.deleteMember(tenantID: tenant, listID: listID, address: try parameters.require("Email").lowercased(), actor: actor)
        }
        return [:]
    }
}
