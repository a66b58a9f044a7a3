import Crypto
import Foundation
import HeraldCore
import HeraldStore
import OpenAPIRuntime

/// Sender addresses, their reply-to confirmation and SMTP password; tags.
extension APIHandler {
    func createSender(_ input: Operations.CreateSender.Input) async throws -> Operations.CreateSender.Output {
        guard case .json(let body) = input.body else { throw HeraldError.validation("Send address and type.") }
        let (tenant, actor) = try caller()
        let (sender, _) = try await senders.create(tenantID: tenant, address: body.address, type: body._type == .batch ? .batch : .trigger, replyTo: body.replyTo, actor: actor)
        return .created(.init(body: .json(.init(sender))))
    }

    func listSenders(_ input: Operations.ListSenders.Input) async throws -> Operations.ListSenders.Output {
        .ok(.init(body: .json(.init(items: try await senders.list(tenantID: try caller().tenant).map(Components.Schemas.Sender.init)))))
    }

    func getSender(_ input: Operations.GetSender.Input) async throws -> Operations.GetSender.Output {
        .ok(.init(body: .json(.init(try await senders.get(tenantID: try caller().tenant, id: try uuidPath(input.path.id, what: "sender"))))))
    }

    func updateSender(_ input: Operations.UpdateSender.Input) async throws -> Operations.UpdateSender.Output {
        guard case .json(let body) = input.body else { throw HeraldError.validation("Send replyTo (an address, or null to clear it).") }
        let (tenant, actor) = try caller()
        let (sender, _) = try await senders.setReplyTo(tenantID: tenant, id: try uuidPath(input.path.id, what: "sender"), replyTo: body.replyTo, actor: actor)
        return .ok(.init(body: .json(.init(sender))))
    }

    func deleteSender(_ input: Operations.DeleteSender.Input) async throws -> Operations.DeleteSender.Output {
        let (tenant, actor) = try caller()
        try await senders.delete(tenantID: tenant, id: try uuidPath(input.path.id, what: "sender"), actor: actor, now: now())
        return .noContent(.init())
    }

    func setSenderSmtpPassword(_ input: Operations.SetSenderSmtpPassword.Input) async throws -> Operations.SetSenderSmtpPassword.Output {
        guard case .json(let body) = input.body else { throw HeraldError.validation("Send password.") }
        try SMTPPassword.validate(body.password)
        let (tenant, actor) = try caller()
        let id = try uuidPath(input.path.id, what: "sender")
        try await senders.setSMTPPassword(tenantID: tenant, id: id, password: body.password, actor: actor)
        return .noContent(.init())
    }

    func resendReplyToConfirmation(_ input: Operations.ResendReplyToConfirmation.Input) async throws -> Operations.ResendReplyToConfirmation.Output {
        let (tenant, actor) = try caller()
        let (sender, _) = try await senders.renewReplyToNonce(tenantID: tenant, id: try uuidPath(input.path.id, what: "sender"), actor: actor)
        return .ok(.init(body: .json(.init(sender))))
    }

    func confirmReplyTo(_ input: Operations.ConfirmReplyTo.Input) async throws -> Operations.ConfirmReplyTo.Output {
        guard let token = ReplyToToken.decode(input.path.token, key: replyToKey, now: now()),
              let address = try await senders.confirmReplyTo(token) else {
            return .notFound(.init(body: .html(HTTPBody(Self.page(title: "Link not valid",
                                                                  message: "This confirmation link is unknown, has expired or was replaced by a newer one.")))))
        }
        return .ok(.init(body: .html(HTTPBody(Self.page(title: "Reply-to address confirmed",
                                                        message: "\(address) is confirmed as a reply-to address. You can close this page.")))))
    }

    /// A minimal accessible HTML page (escaped text, no script).
    static func page(title: String, message: String) -> String {
        func escape(_ text: String) -> String {
            text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
        }
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(escape(title))</title></head>
            <body style="font-family: system-ui, sans-serif; max-width: 36rem; margin: 3rem auto; padding: 0 1rem">
            <h1>\(escape(title))</h1><p>\(escape(message))</p></body></html>
            """
    }

    // MARK: Tags

    func createTag(_ input: Operations.CreateTag.Input) async throws -> Operations.CreateTag.Output {
        guard case .json(let body) = input.body else { throw HeraldError.validation("Send name.") }
        let (tenant, actor) = try caller()
        return .created(.init(body: .json(.init(try await senders.createTag(tenantID: tenant, name: body.name, actor: actor)))))
    }

    func listTags(_ input: Operations.ListTags.Input) async throws -> Operations.ListTags.Output {
        .ok(.init(body: .json(.init(items: try await senders.listTags(tenantID: try caller().tenant).map(Components.Schemas.Tag.init)))))
    }

    func deleteTag(_ input: Operations.DeleteTag.Input) async throws -> Operations.DeleteTag.Output {
        let (tenant, actor) = try caller()
        try await senders.deleteTag(tenantID: tenant, id: try uuidPath(input.path.id, what: "tag"), actor: actor)
        return .noContent(.init())
    }
}

extension Components.Schemas.Sender {
    init(_ sender: HeraldStore.SenderRecord) {
        self.init(id: sender.id.lowercased, address: sender.address, _type: sender.type == .batch ? .batch : .trigger,
                  domainId: sender.domainID.lowercased, replyTo: sender.replyTo,
                  replyToStatus: .init(rawValue: sender.replyToStatus.rawValue) ?? .none, smtpPasswordSet: sender.smtpPasswordSet,
                  createdAt: sender.createdAt, updatedAt: sender.updatedAt)
    }
}

extension Components.Schemas.Tag {
    init(_ tag: TagRecord) {
        self.init(id: tag.id.lowercased, name: tag.name, createdAt: tag.createdAt)
    }
}
