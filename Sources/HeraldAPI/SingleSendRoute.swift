import Foundation
import HTTPTypes
import HeraldCore
import HeraldStore
import Hummingbird
import NIOCore

/// `POST /v1/mail/single` by hand, in front of its generated route: the body read by ``SingleSendJSON``,
/// the same gate as every tenant operation (``AccessMiddleware/asTenant(headers:method:action:template:pathParameters:_:)``),
/// the same handler (``APIHandler/acceptSingle(_:idempotency:)``, so the one accept road), the answer
/// written by hand. Whatever it is not sure of goes on to the generated route unchanged: a body it does
/// not take, an Idempotency-Key (whose body hash is the generated decoder's canonical form), an Accept or
/// Content-Type other than plain JSON.
struct SingleSendRoute: RouterMiddleware {
    typealias Context = HeraldRequestContext
    static let path = "/v1/mail/single"
    let access: AccessMiddleware
    let handler: APIHandler
    let action: String
    let template: String

    init(access: AccessMiddleware, handler: APIHandler) throws {
        guard case .tenant(let action, let template) = OperationAccess.table["sendSingleMail"] else {
            throw HeraldError(code: "Internal", kind: .internal, message: "sendSingleMail has no tenant access rule.")
        }
        self.access = access
        self.handler = handler
        self.action = action
        self.template = template
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method == .post, request.uri.path == Self.path, request.headers[.idempotencyKey] == nil,
              Self.isPlain(request.headers[.accept], allowing: ["*/*", "application/*", "application/json"]),
              let contentType = request.headers[.contentType], Self.isPlain(contentType, allowing: ["application/json"]) else {
            return try await next(request, context)
        }
        var request = request
        // Already collected (and bounded) by RequestBodyMiddleware: this is that buffer.
        let buffer = try await request.collectBody(upTo: context.maxUploadSize)
        guard let send = SingleSendJSON.parse(buffer.readableBytesView) else { return try await next(request, context) }
        context.coreContext.endpointPath.value = Self.path
        let (result, remaining) = try await access.asTenant(headers: request.headers, method: .post, action: action, template: template,
                                                            pathParameters: [:]) {
            try await handler.acceptSingle(send, idempotency: nil)
        }
        let body = try SingleSendJSON.encode(result) ?? Array(JSONBody.encoder.encode(Components.Schemas.SendResult(result)))
        var headers: HTTPFields = [.contentType: "application/json; charset=utf-8"]
        headers[.rateLimitLimit] = String(access.tenantLimiter.limit)
        headers[.rateLimitRemaining] = String(remaining)
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    /// Absent (for Accept), or one of `allowed` with nothing else (a charset parameter aside).
    static func isPlain(_ value: String?, allowing allowed: [String]) -> Bool {
        guard let value else { return true }
        let parts = value.split(separator: ";", omittingEmptySubsequences: false)
        guard allowed.contains(trimmed(parts[0]).lowercased()) else { return false }
        return parts.dropFirst().allSatisfy { trimmed($0).lowercased() == "charset=utf-8" }
    }

    /// Without its leading and trailing spaces and tabs (a header's optional whitespace; no Foundation
    /// `trimmingCharacters`, whose bridging costs every send more than the rest of this check).
    static func trimmed(_ part: Substring) -> Substring {
        var part = part
        while let first = part.utf8.first, first == 32 || first == 9 { part = part.dropFirst() }
        while let last = part.utf8.last, last == 32 || last == 9 { part = part.dropLast() }
        return part
    }
}
