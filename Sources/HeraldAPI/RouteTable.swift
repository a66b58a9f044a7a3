import Foundation
import HTTPTypes
import Hummingbird
import OpenAPIHummingbird
import OpenAPIRuntime
import Synchronization

/// One registered route: method and OpenAPI path.
public struct RouteInfo: Sendable, Hashable, CustomStringConvertible {
    /// HTTP method, upper case.
    public var method: String
    /// Path with `{param}` placeholders, as in OpenAPI/openapi.yaml.
    public var path: String

    /// `METHOD /path`.
    public var description: String { "\(method) \(path)" }

    func matches(path other: [Substring]) -> Bool {
        let segments = path.split(separator: "/")
        guard segments.count == other.count else { return false }
        return zip(segments, other).allSatisfy { $0.hasPrefix("{") || $0 == $1 }
    }
}

/// Every route the application serves, recorded as the generated code registers it: the 405 answer and
/// the test that walks every route against the OpenAPI contract read it.
public final class RouteTable: Sendable {
    private let routes = Mutex<[RouteInfo]>([])

    /// An empty table.
    public init() {}

    /// All routes in registration order.
    public var all: [RouteInfo] { routes.withLock { $0 } }

    func record(_ info: RouteInfo) { routes.withLock { $0.append(info) } }

    /// Methods registered for a concrete request path (for 405 and `Allow`).
    func methods(forPath path: String) -> [String] {
        let segments = path.split(separator: "/")
        return routes.withLock { $0.filter { $0.matches(path: segments) }.map(\.method) }
    }
}

/// The Hummingbird transport of swift-openapi-hummingbird, recording each route it registers.
struct RecordingTransport: ServerTransport {
    let router: Router<HeraldRequestContext>
    let table: RouteTable

    func register(_ handler: @escaping @Sendable (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?),
                  method: HTTPRequest.Method, path: String) throws {
        table.record(RouteInfo(method: method.rawValue, path: path))
        // The transport hands every request a body; an empty one (``RequestBodyMiddleware`` marks it with
        // Content-Length: 0) is an absent body to the generated decoders, so optional bodies may be left out.
        router.register({ request, body, metadata in
            if case .known(0) = body?.length {
                return try await handler(request, nil, metadata)
            }
            return try await handler(request, body, metadata)
        }, method: method, path: path)
    }
}
