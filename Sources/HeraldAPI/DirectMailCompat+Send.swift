import Foundation
import HeraldCore
import HeraldDelivery
import HeraldStore

/// The send actions of the compatibility endpoint, on the one accept road of every send (``AcceptService``).
extension DirectMailCompat {

    /// SingleSendMail (the parts of one message to up to 100 comma-separated addresses) and BatchSendMail (a
    /// template to a receivers list, both by name); both answer the `EnvId`. Both take `ReplyAddress` (which must be
    /// the sender's confirmed reply-to) with `ReplyAddressAlias`, and `ClickTrace` (1 on, 0 off); SingleSendMail's
    /// `ReplyToAddress=true` puts the sender's confirmed reply-to on the mail (refused when it has none), `false`
    /// none. `AddressType=0` (a random sender address) is refused: Herald sends from the address named.
    func send(_ action: String, parameters: Parameters, principal: Principal, context: HeraldRequestContext) async throws -> [String: any Sendable] {
        let caller = SendRequest.Caller.principal(principal, client: context.clientIP)
        if let type = parameters.optional("AddressType"), type != "1" {
            throw HeraldError(code: "InvalidAddressType.Unsupported", kind: .invalid,
                              message: type == "0" ? "AddressType=0 (a random sender address) is not offered: Herald sends from the sender address you name; use AddressType=1."
                                  : "AddressType must be 1 (the sender address you name).", field: "AddressType")
        }
        let tracking: Bool?
        switch parameters.optional("ClickTrace") {
        case nil: tracking = nil
        case "1"?: tracking = true
        case "0"?: tracking = false
        default: throw HeraldError(code: "InvalidParameter", kind: .invalid, message: "ClickTrace must be 1 (on) or 0 (off).", field: "ClickTrace")
        }
        if action == "BatchSendMail" {
            let reference = SendRequest.TemplateReference.names(template: try parameters.require("TemplateName"),
                                                                list: try parameters.require("ReceiversName"))
            let batch = BatchSendRequest(from: try parameters.require("AccountName"), tag: parameters.optional("TagName"),
                                         replyTo: parameters.optional("ReplyAddress"), replyToName: parameters.optional("ReplyAddressAlias"),
                                         tracking: tracking)
            let answer = try await accept.accept(SendRequest(caller: caller, content: .template(reference, batch), actor: context.auditActor))
            guard case .task(let id) = answer else { throw HeraldError(code: "InternalError", kind: .internal, message: "The batch send was not answered.") }
            return ["EnvId": id.lowercased]
        }
        let to = try parameters.require("ToAddress").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        var headers: [String: String] = [:]
        if let text = parameters.optional("Headers") {
            guard let decoded = try? JSONDecoder().decode([String: String].self, from: Data(text.utf8)) else {
                throw HeraldError(code: "InvalidHeaders.Malformed", kind: .invalid, message: "Headers must be a JSON object of strings.", field: "Headers")
            }
            headers = decoded
        }
        var senderReplyTo: Bool?
        switch parameters.optional("ReplyToAddress")?.lowercased() {
        case nil: senderReplyTo = nil
        case "true"?: senderReplyTo = true
        case "false"?: senderReplyTo = false
        default: throw HeraldError(code: "InvalidParameter", kind: .invalid, message: "ReplyToAddress must be true or false.", field: "ReplyToAddress")
        }
        let message = SingleSendRequest(
            from: try parameters.require("AccountName"), fromAlias: parameters.optional("FromAlias"), to: to,
            subject: try parameters.require("Subject"), html: parameters.optional("HtmlBody"), text: parameters.optional("TextBody"),
            replyTo: parameters.optional("ReplyAddress"), replyToName: parameters.optional("ReplyAddressAlias"), senderReplyTo: senderReplyTo,
            tag: parameters.optional("TagName"), headers: headers, tracking: tracking)
        guard let result = try await accept.accept(SendRequest(caller: caller, content: .message(message))).result else {
            throw HeraldError(code: "InternalError", kind: .internal, message: "The send was not answered.")
        }
        return ["EnvId": result.requestId.lowercased]
    }
}
