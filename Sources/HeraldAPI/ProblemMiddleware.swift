import Foundation
import HeraldStore
import HTTPTypes
import HeraldCore
import Hummingbird
import Logging
import NIOCore
import OpenAPIRuntime

/// An RFC 9457 problem document.
struct Problem: Codable, Sendable {
    var type: String
    var title: String
    var status: Int
    var detail: String
    var code: String
    var requestId: String
    var field: String?
}

/// The outermost middleware: assigns the request id and client address, and turns every error into
/// `application/problem+json` with a stable code. Internals are logged, never sent.
struct ProblemMiddleware: RouterMiddleware {
    typealias Context = HeraldRequestContext
    let routes: RouteTable
    let trustedProxies: [IPNetwork]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.requestID = Self.requestID(from: request)
        context.clientIP = ClientAddress.resolve(peer: context.remoteAddress?.ipAddress.flatMap(IPAddress.init),
                                                 forwardedFor: request.headers[values: .xForwardedFor], trusted: trustedProxies)
        context.logger[metadataKey: "request_id"] = .string(context.requestID)
        var response: Response
        do {
            response = try await RequestScope.$context.withValue(context) { try await next(request, context) }
        } catch {
            response = render(error, request: request, context: context)
        }
        response.headers[.xRequestID] = context.requestID
        return response
    }

    /// RFC 9110 reason phrases of the statuses Herald answers with (the problem `title`).
    static let reasonPhrases: [Int: String] = [
        400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
        406: "Not Acceptable", 409: "Conflict", 413: "Content Too Large", 415: "Unsupported Media Type",
        422: "Unprocessable Content", 429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable",
    ]

    static func requestID(from request: Request) -> String {
        if let given = request.headers[.xRequestID], (1...64).contains(given.utf8.count),
           given.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || $0 == 45 || $0 == 95 || $0 == 46 }) {
            return given
        }
        // From RandomPool: a request id is random, not counted (it tells a tenant nothing of other requests),
        // and drawing it from the system cost three `getrandom` calls per request.
        var generator = RandomPool.Generator()
        return AccessKeyGenerator.randomString(count: 20, using: &generator)
    }

    func render(_ error: any Error, request: Request, context: Context) -> Response {
        var headers: HTTPFields = [:]
        let herald: HeraldError
        // An HTTP error of the server itself keeps its own status (whatever kind it is rendered as).
        var passedThrough: Int?
        switch error {
        case _ where HeraldError.unwrapping(error) != nil:
            herald = HeraldError.unwrapping(error)!
        case let error as HTTPError where error.status == .notFound:
            let allowed = routes.methods(forPath: request.uri.path)
            if allowed.isEmpty {
                herald = .notFound("route \(request.uri.path)")
            } else {
                herald = HeraldError(code: "MethodNotAllowed", kind: .methodNotAllowed, message: "\(request.method.rawValue) is not allowed here; use \(allowed.joined(separator: ", ")).")
                headers[.allow] = allowed.joined(separator: ", ")
            }
        case let error as HTTPError where error.status == .contentTooLarge:
            herald = HeraldError(code: "PayloadTooLarge", kind: .tooLarge, message: "The request body is too large.")
        case let error as HTTPError where (400..<500).contains(error.status.code):
            herald = HeraldError(code: "HTTP.\(error.status.code)", kind: .invalid, message: error.body ?? error.status.reasonPhrase)
            passedThrough = error.status.code
        default:
            context.logger.error("unhandled error", metadata: ["error": "\(String(reflecting: error))"])
            herald = HeraldError(code: "Internal", kind: .internal, message: "An internal error occurred; quote the request id when reporting it.")
        }
        if let retryAfter = herald.retryAfter {
            headers[.retryAfter] = String(retryAfter)
            if herald.kind != .unavailable {
                headers[.rateLimitRemaining] = "0"
                headers[.rateLimitReset] = String(retryAfter)
            }
        }
        if herald.kind == .unauthenticated { headers[.wwwAuthenticate] = "Bearer" }
        headers[.contentType] = "application/problem+json"
        let code = passedThrough ?? herald.kind.httpStatus
        let status = HTTPResponse.Status(code: code, reasonPhrase: Self.reasonPhrases[code] ?? "Error")
        let problem = Problem(type: "/problems/\(herald.code)", title: status.reasonPhrase, status: code,
                              detail: herald.message, code: herald.code, requestId: context.requestID, field: herald.field)
        let body = (try? JSONBody.encoder.encode(problem)) ?? Data()
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

/// The request's context for code that Hummingbird does not hand it to: the generated OpenAPI handlers
/// and middleware run inside the task that ``ProblemMiddleware`` (and, once authenticated,
/// ``AccessMiddleware``) bind it in.
enum RequestScope {
    @TaskLocal static var context: HeraldRequestContext?

    /// The current request's context; every operation runs behind ``ProblemMiddleware``, so a missing one is a bug.
    static func current() throws(HeraldError) -> HeraldRequestContext {
        guard let context else { throw HeraldError(code: "Internal", kind: .internal, message: "No request context.") }
        return context
    }

    /// The authenticated tenant principal of the current request.
    static func principal() throws(HeraldError) -> Principal { try current().requirePrincipal() }
}

extension HeraldError {
    /// The error a client is shown for an error thrown while serving a request, or nil for an internal failure
    /// (logged, answered 500). Generated code wraps everything in `ServerError`: what a handler or middleware
    /// threw is unwrapped; a request that failed before its handler ran did not match the contract and is
    /// answered with the generator's status (400, or 415 for a wrong content type) and the failing field.
    static func unwrapping(_ error: any Error) -> HeraldError? {
        if Database.isUnavailable(error) || (error as? ServerError).map({ Database.isUnavailable($0.underlyingError) }) == true {
            return .databaseUnavailable
        }
        switch error {
        case let error as HeraldError:
            return error
        case let error as ServerError:
            if let inner = error.underlyingError as? HeraldError { return inner }
            guard error.operationInput == nil, error.operationOutput == nil else { return nil }
            if let decoding = error.underlyingError as? DecodingError {
                if decoding.codingPath.isEmpty, error.request.method == .get || error.request.method == .delete || error.request.method == .head {
                    // The URI decoder of query parameters reports no coding path; name what it could.
                    return .validation("A query parameter has the wrong type: \(decoding.detail)", field: error.request.queryParameterNames.count == 1 ? error.request.queryParameterNames[0] : nil)
                }
                return JSONBody.describe(decoding)
            }
            switch error.httpStatus.code {
            case 415: return HeraldError(code: "UnsupportedMediaType", kind: .unsupportedMediaType, message: "Send the body as application/json.")
            case 406: return HeraldError(code: "NotAcceptable", kind: .notAcceptable, message: error.causeDescription)
            case 400..<500: return .validation(error.causeDescription)
            default: return nil
            }
        default:
            return nil
        }
    }
}

extension DecodingError {
    var codingPath: [any CodingKey] {
        switch self {
        case .keyNotFound(_, let context), .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            context.codingPath
        @unknown default:
            []
        }
    }

    var detail: String {
        switch self {
        case .keyNotFound(_, let context), .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            context.debugDescription
        @unknown default:
            "invalid"
        }
    }
}

extension HTTPRequest {
    /// Names of the query parameters of the request target.
    var queryParameterNames: [String] {
        guard let query = path?.split(separator: "?", maxSplits: 1).dropFirst().first else { return [] }
        return query.split(separator: "&").compactMap { $0.split(separator: "=", maxSplits: 1).first.map(String.init) }
    }
}

/// Finds the client address: the TCP peer, unless the peer is a trusted proxy, in which case the
/// right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
public enum ClientAddress {
    /// Resolves the client address.
    public static func resolve(peer: IPAddress?, forwardedFor: [String], trusted: [IPNetwork]) -> IPAddress? {
        guard var current = peer else { return nil }
        guard !trusted.isEmpty else { return current }
        let chain = forwardedFor.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        for hop in chain.reversed() {
            guard trusted.contains(where: { $0.contains(current) }) else { break }
            guard let address = IPAddress(hop) else { break }
            current = address
        }
        return current
    }
}

extension HTTPField.Name {
    static let xRequestID = HTTPField.Name("X-Request-Id")!
    static let xForwardedFor = HTTPField.Name("X-Forwarded-For")!
    static let rateLimitLimit = HTTPField.Name("RateLimit-Limit")!
    static let rateLimitRemaining = HTTPField.Name("RateLimit-Remaining")!
    static let rateLimitReset = HTTPField.Name("RateLimit-Reset")!
    static let idempotencyKey = HTTPField.Name("Idempotency-Key")!
}

extension HeraldError.Kind {
    /// The HTTP status the API answers an error of this kind with (the one place it is chosen).
    var httpStatus: Int {
        switch self {
        case .invalid: 400
        case .unauthenticated: 401
        case .forbidden: 403
        case .notFound: 404
        case .methodNotAllowed: 405
        case .notAcceptable: 406
        case .conflict: 409
        case .tooLarge: 413
        case .unsupportedMediaType: 415
        case .throttled: 429
        case .internal: 500
        case .unavailable: 503
        }
    }
}
