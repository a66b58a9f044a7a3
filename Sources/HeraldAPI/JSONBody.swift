import Foundation
import HeraldCore
import Hummingbird
import NIOCore

/// JSON in and out, with the error mapping the API promises: wrong content type → 415, too large → 413,
/// malformed or mistyped → 400 `Validation.Failed` naming the field.
enum JSONBody {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }()

    /// Decodes the request body as `T`. With `optional`, an empty body decodes from `{}`.
    static func decode<T: Decodable>(_ type: T.Type, from request: Request, context: HeraldRequestContext, optional: Bool = false) async throws -> T {
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: context.maxUploadSize)
        } catch {
            throw HeraldError(code: "PayloadTooLarge", status: 413, message: "The request body is larger than \(context.maxUploadSize) bytes.")
        }
        if buffer.readableBytes == 0 && optional {
            return try decode(type, bytes: Array("{}".utf8))
        }
        let contentType = request.headers[.contentType]?.lowercased() ?? ""
        let mediaType = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        guard mediaType == "application/json" || (mediaType.hasPrefix("application/") && mediaType.hasSuffix("+json")) else {
            throw HeraldError(code: "UnsupportedMediaType", status: 415, message: "Send the body as application/json.")
        }
        return try decode(type, bytes: Array(buffer: buffer))
    }

    static func decode<T: Decodable>(_ type: T.Type, bytes: [UInt8]) throws(HeraldError) -> T {
        do {
            let value = try decoder.decode(T.self, from: Data(bytes))
            if let strict = T.self as? any StrictBody.Type,
               let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
               let unknown = object.keys.sorted().first(where: { !strict.fields.contains($0) }) {
                throw HeraldError.validation("\(unknown) is not a field of this request.", field: unknown)
            }
            return value
        } catch let error as HeraldError {
            throw error
        } catch let error as DecodingError {
            throw describe(error)
        } catch {
            throw HeraldError.validation("The body is not valid JSON.")
        }
    }

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
            if field == nil { return .validation("The body is not valid JSON.") }
            return .validation("\(field!) is invalid: \(context.debugDescription)", field: field)
        @unknown default:
            return .validation("The body is invalid.")
        }
    }

    /// A JSON response.
    static func response(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try encoder.encode(value)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// A request body whose top-level fields are fixed (`additionalProperties: false` in the contract):
/// an unknown field is refused instead of silently ignored, so a typo cannot pass unnoticed.
protocol StrictBody: Decodable {
    static var fields: Set<String> { get }
}

/// Query-string parsing with validation errors naming the parameter.
enum QueryParameters {
    static func limit(_ request: Request, default defaultValue: Int = 50) throws(HeraldError) -> Int {
        guard let text = request.uri.queryParameters.get("limit") else { return defaultValue }
        guard let value = Int(text), (1...100).contains(value) else { throw .validation("limit must be an integer from 1 to 100.", field: "limit") }
        return value
    }

    static func uuid(_ request: Request, _ name: String) throws(HeraldError) -> UUID? {
        guard let text = request.uri.queryParameters.get(name) else { return nil }
        guard let value = UUID(uuidString: text) else { throw .validation("\(name) must be a UUID.", field: name) }
        return value
    }

    static func date(_ request: Request, _ name: String) throws(HeraldError) -> Date? {
        guard let text = request.uri.queryParameters.get(name) else { return nil }
        let plain = ISO8601DateFormatter()
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        guard let value = plain.date(from: text) ?? fractional.date(from: text) else {
            throw .validation("\(name) must be an RFC 3339 date-time.", field: name)
        }
        return value
    }

    /// Cursor for id-ordered lists: the last id of the previous page.
    static func uuidCursor(_ request: Request) throws(HeraldError) -> UUID? {
        guard let text = request.uri.queryParameters.get("cursor") else { return nil }
        guard let bytes = Base64URL.decode(text), let string = String(bytes: bytes, encoding: .utf8), let id = UUID(uuidString: string) else {
            throw .validation("cursor is invalid.", field: "cursor")
        }
        return id
    }

    static func encodeCursor(_ id: UUID) -> String { Base64URL.encode(Array(id.uuidString.utf8)) }
}

/// A page of results.
struct Page<Item: Encodable & Sendable>: Encodable, Sendable {
    var items: [Item]
    var nextCursor: String?
}

/// Path parameter as a UUID; a malformed id is simply not found.
extension HeraldRequestContext {
    func uuidParameter(_ name: String, what: String) throws(HeraldError) -> UUID {
        guard let text = parameters.get(name), let id = UUID(uuidString: text) else { throw .notFound(what) }
        return id
    }
}
