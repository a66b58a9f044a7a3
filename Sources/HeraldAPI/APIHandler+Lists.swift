import Foundation
import HeraldCore
import HeraldStore
import OpenAPIRuntime

/// Recipient lists and their members.
extension APIHandler {
    /// Largest CSV or JSON import body (``RequestBodyMiddleware`` enforces it on that route).
    static let maxImportBody = 8 * 1024 * 1024

    func createList(_ input: Operations.CreateList.Input) async throws -> Operations.CreateList.Output {
        guard case .json(let body) = input.body else { throw HeraldError.validation("Send name.") }
        let (tenant, actor) = try caller()
        let list = try await lists.create(tenantID: tenant, name: body.name, alias: body.alias, description: body.description, actor: actor)
        return .created(.init(body: .json(.init(list))))
    }

    func listLists(_ input: Operations.ListLists.Input) async throws -> Operations.ListLists.Output {
        .ok(.init(body: .json(.init(items: try await lists.list(tenantID: try caller().tenant).map(Components.Schemas.RecipientList.init)))))
    }

    func getList(_ input: Operations.GetList.Input) async throws -> Operations.GetList.Output {
        .ok(.init(body: .json(.init(try await lists.get(tenantID: try caller().tenant, id: try uuidPath(input.path.id, what: "list"))))))
    }

    func deleteList(_ input: Operations.DeleteList.Input) async throws -> Operations.DeleteList.Output {
        let (tenant, actor) = try caller()
        try await lists.delete(tenantID: tenant, id: try uuidPath(input.path.id, what: "list"), actor: actor)
        return .noContent(.init())
    }

    func importRecipients(_ input: Operations.ImportRecipients.Input) async throws -> Operations.ImportRecipients.Output {
        let (tenant, actor) = try caller()
        let listID = try uuidPath(input.path.id, what: "list")
        var candidates: [RecipientImport.Candidate] = []
        var rejected: [RecipientImport.Rejection] = []
        switch input.body {
        case .json(let rows):
            for (index, row) in rows.enumerated() {
                switch RecipientImport.check(row: index + 1, address: row.address, variables: row.variables?.additionalProperties ?? [:]) {
                case .success(let candidate): candidates.append(candidate)
                case .failure(let rejection): rejected.append(rejection)
                }
            }
        case .csv(let body):
            let bytes = try await [UInt8](collecting: body, upTo: Self.maxImportBody)
            // NUL or broken UTF-8 would abort the import's transaction in PostgreSQL (or be stored repaired).
            try JSONTextCheck.validate(text: bytes)
            (candidates, rejected) = try RecipientImport.fromCSV(bytes)
        }
        let result = try await lists.importMembers(tenantID: tenant, listID: listID, candidates: candidates, rejected: rejected, actor: actor)
        return .ok(.init(body: .json(.init(imported: result.imported,
                                           rejected: result.rejected.map { .init(row: $0.row, reason: $0.reason) },
                                           members: result.members))))
    }

    func listRecipients(_ input: Operations.ListRecipients.Input) async throws -> Operations.ListRecipients.Output {
        let limit = try QueryParameters.limit(input.query.limit)
        let members = try await lists.members(tenantID: try caller().tenant, listID: try uuidPath(input.path.id, what: "list"), limit: limit,
                                              after: input.query.cursor)
        return .ok(.init(body: .json(.init(items: members.map { .init(address: $0.address, variables: .init(additionalProperties: $0.variables),
                                                                       createdAt: $0.createdAt) },
                                           nextCursor: members.count == limit ? members.last?.address : nil))))
    }

    func exportRecipients(_ input: Operations.ExportRecipients.Input) async throws -> Operations.ExportRecipients.Output {
        let csv = try await lists.exportCSV(tenantID: try caller().tenant, listID: try uuidPath(input.path.id, what: "list"))
        return .ok(.init(body: .csv(HTTPBody(csv))))
    }

    func deleteRecipient(_ input: Operations.DeleteRecipient.Input) async throws -> Operations.DeleteRecipient.Output {
        let (tenant, actor) = try caller()
        try await lists.deleteMember(tenantID: tenant, listID: try uuidPath(input.path.id, what: "list"), address: input.path.address, actor: actor)
        return .noContent(.init())
    }
}

extension Components.Schemas.RecipientList {
    init(_ list: RecipientListRecord) {
        self.init(id: list.id.lowercased, name: list.name, alias: list.alias, description: list.description, memberCount: list.memberCount,
                  createdAt: list.createdAt, updatedAt: list.updatedAt)
    }
}
