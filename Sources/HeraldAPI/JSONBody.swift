import Foundation
import HTTPTypes
import HeraldCore
import Hummingbird
import NIOCore

/// JSON errors as the API promises them: malformed or mistyped → 400 `Validation.Failed` naming the field.
enum JSONBody {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    /// Turns a DecodingError into a message and a field path a client can act on.
    static func describe(_ error: DecodingError) -> HeraldError {
        func path(_ codingPath: [any CodingKey]) -> String? {
            let parts = codingPath.map { key in key.intValue.map { "[\($0)]" } ?? key.stringValue }
            guard !parts.isEmpty else { return nil }
            return parts.reduce("") { result, part in part.hasPrefix("[") || result.isEmpty ? result + part : result + "." + part }
        }
        switch error {
        case .keyNotFound(let key, let context):
            let field = path(context.codingPath + [key])
            return .validation("\(field ?? key.stringValue) is required.", field: field)
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            let field = path(context.codingPath)
            return .validation("\(field ?? "The body") has the wrong type.", field: field)
        case .dataCorrupted(let context):
            let field = path(context.codingPath)
            if let underlying = context.underlyingError as? HeraldError { return underlying }
            guard let field else { return .validation("The body is not valid JSON.") }
            // The generated decoders refuse unknown keys of `additionalProperties: false` objects this way.
            if context.debugDescription.hasPrefix("Additional properties are disabled") {
                return .validation("\(field) is not a field of this request.", field: field)
            }
            return .validation("\(field) is invalid: \(context.debugDescription)", field: field)
        @unknown default:
            return .validation("The body is invalid.")
        }
    }
}

/// Checks request bodies before any handler sees them: larger than the route allows → 413, a non-empty
/// body of a media type the route does not take → 415. The body is collected here (bounded), so handlers
/// never stream an unbounded request. Every route takes JSON up to the context's limit; the list import
/// also takes `text/csv`, up to 8 MiB. Every JSON body's strings pass ``JSONTextCheck`` here.
struct RequestBodyMiddleware: RouterMiddleware {
    typealias Context = HeraldRequestContext

    /// What a route's request body may be.
    enum Body {
        /// JSON (`application/json` or `…+json`).
        case json
        /// JSON or `text/csv` (the list import).
        case jsonOrCSV
        /// Read (bounded) and set aside whatever its type: the public link routes (`/u/…`), where the POST
        /// itself is the action (RFC 8058 one-click comes as application/x-www-form-urlencoded or
        /// multipart/form-data).
        case ignored
        /// Left to the route, which reads it itself (the Direct Mail compatibility endpoint's and the console's form bodies).
        case own
    }

    /// Routes with their own rules: what their body may be, and its size limit.
    static func rules(for path: String, default limit: Int) -> (body: Body, limit: Int) {
        let segments = path.split(separator: "/")
        if segments.count == 4, segments[0] == "v1", segments[1] == "lists", segments[3] == "recipients" {
            return (.jsonOrCSV, APIHandler.maxImportBody)
        }
        if segments.first == "u" { return (.ignored, 8_192) }
        if segments.isEmpty { return (.own, DirectMailCompat.maxBody) }
        // The console's CSV upload into a list: read by its route, up to the REST import's limit and the form around it.
        if segments.count == 4, segments[0] == "console", segments[1] == "lists", segments[3] == "import" { return (.own, Console.listImportBody) }
        // The console's forms: read by its routes (at most 16 KB).
        if segments.first == "console" { return (.own, 16 * 1024) }
        return (.json, limit)
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let rules = Self.rules(for: request.uri.path, default: context.maxUploadSize)
        if rules.body == .own { return try await next(request, context) }
        // Path parameters and query values reach queries too (an address, a filter): the same rule as body text.
        try Self.checkTarget(path: request.uri.path, query: request.uri.query)
        guard request.method == .post || request.method == .put || request.method == .patch else { return try await next(request, context) }
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: rules.limit)
        } catch {
            throw HeraldError(code: "PayloadTooLarge", kind: .tooLarge, message: "The request body is larger than \(rules.limit) bytes.")
        }
        if buffer.readableBytes == 0 || rules.body == .ignored {
            // No body: the generated decoder then sees an absent optional body (or a missing required one),
            // whatever Content-Type the client sent along.
            var head = request.head
            head.headerFields[.contentType] = nil
            head.headerFields[.contentLength] = "0"
            request = Request(head: head, body: request.body)
        } else {
            let contentType = request.headers[.contentType]?.lowercased() ?? ""
            let mediaType = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
            guard mediaType == "application/json" || (mediaType.hasPrefix("application/") && mediaType.hasSuffix("+json"))
                    || (rules.body == .jsonOrCSV && mediaType == "text/csv") else {
                throw HeraldError(code: "UnsupportedMediaType", kind: .unsupportedMediaType,
                                  message: rules.body == .jsonOrCSV ? "Send the body as application/json or text/csv." : "Send the body as application/json.")
            }
            // Every JSON body, of every route (tenant, operator and public), is checked here once for text the
            // database must not see (NUL, lone surrogates, control characters), before any decoder or handler runs.
            if mediaType != "text/csv" { try JSONTextCheck.validate(json: buffer.readableBytesView) }
        }
        return try await next(request, context)
    }
}

extension RequestBodyMiddleware {
    /// Refuses a request target whose path or query, percent-decoded, holds a NUL, a control character or broken UTF-8.
    static func checkTarget(path: String, query: String?) throws(HeraldError) {
        try JSONTextCheck.validate(percentEncoded: Substring(path), field: "path")
        guard let query, !query.isEmpty else { return }
        for item in query.split(separator: "&") {
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(parts[0])
            // The name is checked as the value's field label would be shown: only a clean name is echoed back.
            try JSONTextCheck.validate(percentEncoded: parts[0], field: "query")
            if parts.count == 2 { try JSONTextCheck.validate(percentEncoded: parts[1], field: name.removingPercentEncoding ?? name) }
        }
    }
}

/// Query parameters, already typed by the generated code, checked against Herald's rules.
enum QueryParameters {
    static func limit(_ value: Int?, default defaultValue: Int = 50) throws(HeraldError) -> Int {
        guard let value else { return defaultValue }
        guard (1...100).contains(value) else { throw .validation("limit must be an integer from 1 to 100.", field: "limit") }
        return value
    }

    static func uuid(_ text: String?, _ name: String) throws(HeraldError) -> UUID? {
        guard let text else { return nil }
        guard let value = UUID(uuidString: text) else { throw .validation("\(name) must be a UUID.", field: name) }
        return value
    }

    /// Cursor for id-ordered lists: the last id of the previous page.
    static func uuidCursor(_ text: String?) throws(HeraldError) -> UUID? {
        guard let text else { return nil }
        guard let bytes = Base64URL.decode(text), let string = String(bytes: bytes, encoding: .utf8), let id = UUID(uuidString: string) else {
            throw .validation("cursor is invalid.", field: "cursor")
        }
        return id
    }

    static func encodeCursor(_ id: UUID) -> String { Base64URL.encode(Array(id.uuidString.utf8)) }

    /// The next-page cursor of an id-ordered page: present when the page is full.
    static func nextCursor(_ ids: [UUID], limit: Int) -> String? {
        ids.count == limit ? ids.last.map(encodeCursor) : nil
    }
}

/// A path parameter naming an object by UUID; a malformed id is simply not found.
func uuidPath(_ text: String, what: String) throws(HeraldError) -> UUID {
    guard let id = UUID(uuidString: text) else { throw .notFound(what) }
    return id
}

/// The OpenAPI runtime writes header values the way it writes URI components (percent-encoded: a
/// `Location` of `https://example.org/?a=1` would go out as `https%3A%2F%2F…`). For the headers Herald's
/// handlers set whose values are free text, the encoding is undone once, which gives back exactly what the
/// handler set.
struct ResponseHeaderMiddleware: RouterMiddleware {
    typealias Context = HeraldRequestContext

    static let decoded: [HTTPField.Name] = [.location, .cacheControl]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        for name in Self.decoded {
            if let value = response.headers[name], value.contains("%"), let original = value.removingPercentEncoding {
                response.headers[name] = original
            }
        }
        return response
    }
}
