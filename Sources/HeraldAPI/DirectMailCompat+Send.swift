import Foundation
import HeraldCore
import HeraldDelivery
import HeraldStore

/// The send actions of the compatibility endpoint, on the one accept road of every send (``AcceptService``).
extension DirectMailCompat {

    /// SingleSendMail (the parts of one message to up to 100 comma-separated addresses) and BatchSendMail (a
    /// template to a receivers list, both by name); both answer the `EnvId`.
    func send(_ action: String, parameters: Parameters, principal: Principal, context: HeraldRequestContext) async throws -> [String: any Sendable] {
        let caller = SendRequest.Caller.principal(principal, client: context.clientIP)
        if action == "BatchSendMail" {
            let reference = SendRequest.TemplateReference.names(template: try parameters.require("TemplateName"),
                                                                list: try parameters.require("ReceiversName"))
            let answer = try await accept.accept(SendRequest(
                caller: caller, content: .template(reference, from: try parameters.require("AccountName"), tag: parameters.optional("TagName"),
                                                   scheduledAt: nil),
                actor: context.auditActor))
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
        let message = SingleSendRequest(
            from: try parameters.require("AccountName"), fromAlias: parameters.optional("FromAlias"), to: to,
            subject: try parameters.require("Subject"), html: parameters.optional("HtmlBody"), text: parameters.optional("TextBody"), replyTo: nil,
            tag: parameters.optional("TagName"), headers: headers, tracking: parameters["ClickTrace"].map { $0 == "1" })
        guard let result = try await accept.accept(SendRequest(caller: caller, content: .message(message))).result else {
            throw HeraldError(code: "InternalError", kind: .internal, message: "The send was not answered.")
        }
        return ["EnvId": result.requestId.lowercased]
    }
}
