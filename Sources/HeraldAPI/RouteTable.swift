import HeraldCore
import Hummingbird
import Synchronization

/// One registered route: method, OpenAPI-style path, and the RAM action it requires.
public struct RouteInfo: Sendable, Hashable, CustomStringConvertible {
    /// HTTP method, upper case.
    public var method: String
    /// Path with `{param}` placeholders, as in OpenAPI/openapi.yaml.
    public var path: String
    /// The Direct Mail action name (`dm:CreateUser`), or nil for public and operator routes.
    public var action: String?

    /// `METHOD /path`.
    public var description: String { "\(method) \(path)" }

    func matches(path other: [Substring]) -> Bool {
        let segments = path.split(separator: "/")
        guard segments.count == other.count else { return false }
        return zip(segments, other).allSatisfy { $0.hasPrefix("{") || $0 == $1 }
    }
}

/// Every route the application serves, recorded as it is registered: the 405 answer, the docs and the
/// test that walks every route against the OpenAPI contract all read it.
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

/// Registers routes on a router group while recording them in the table.
struct RouteRegistrar {
    let router: RouterGroup<HeraldRequestContext>
    let table: RouteTable
    let prefix: String

    /// Adds a route; `path` uses `{param}` placeholders relative to the group's prefix.
    func on(_ method: HTTPRequest.Method, _ path: String, action: String? = nil,
            _ handler: @escaping @Sendable (Request, HeraldRequestContext) async throws -> Response) {
        let full = path.isEmpty ? prefix : prefix + "/" + path
        table.record(RouteInfo(method: method.rawValue, path: full, action: action))
        let hummingbirdPath = path.split(separator: "/").map { $0.hasPrefix("{") ? ":" + $0.dropFirst().dropLast() : String($0) }.joined(separator: "/")
        router.on(RouterPath(hummingbirdPath), method: method, use: handler)
    }
}
