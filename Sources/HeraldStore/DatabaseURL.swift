import Foundation
import HeraldCore
import NIOSSL
import PostgresNIO

/// A parsed `DATABASE_URL` (`postgres://user:password@host:port/database?sslmode=disable&host=/socket/dir`).
public struct DatabaseURL: Sendable, Equatable {
    /// User name.
    public var username: String
    /// Password, if any.
    public var password: String?
    /// TCP host (ignored when `socketDirectory` is set).
    public var host: String
    /// TCP port.
    public var port: Int
    /// Database name.
    public var database: String
    /// Directory of the server's Unix socket (libpq's `host=/dir` query form).
    public var socketDirectory: String?
    /// Whether TLS is required (`sslmode=require` or stricter).
    public var requireTLS: Bool

    /// Parses the URL; a malformed one is a configuration error naming the problem.
    public init(_ string: String) throws(HeraldError) {
        func invalid(_ why: String) -> HeraldError {
            HeraldError(code: "Config.Invalid", kind: .internal, message: "DATABASE_URL is invalid: \(why)")
        }
        guard let components = URLComponents(string: string), let scheme = components.scheme,
              scheme == "postgres" || scheme == "postgresql" else {
            throw invalid("expected postgres://user:password@host:port/database")
        }
        guard let user = components.percentEncodedUser.flatMap({ $0.removingPercentEncoding }), !user.isEmpty else {
            throw invalid("no user name")
        }
        username = user
        password = components.percentEncodedPassword.flatMap { $0.removingPercentEncoding }
        host = components.host ?? "127.0.0.1"
        if host.isEmpty { host = "127.0.0.1" }
        port = components.port ?? 5432
        guard (1...65535).contains(port) else { throw invalid("port out of range") }
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        guard !path.isEmpty else { throw invalid("no database name") }
        database = path.removingPercentEncoding ?? path
        let query = Dictionary((components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { _, b in b })
        socketDirectory = query["host"].flatMap { $0.hasPrefix("/") ? $0 : nil }
        switch query["sslmode"] ?? "disable" {
        case "disable", "allow", "prefer": requireTLS = false
        case "require", "verify-ca", "verify-full": requireTLS = true
        case let other: throw invalid("unsupported sslmode \(other)")
        }
    }

    /// The same server and credentials, another database (tests clone databases this way).
    public func with(database: String) -> DatabaseURL {
        var copy = self
        copy.database = database
        return copy
    }

    /// The configuration of one direct connection to this URL (the principal cache's `LISTEN`).
    public func connectionConfiguration() throws -> PostgresConnection.Configuration {
        if let socketDirectory {
            return .init(unixSocketPath: "\(socketDirectory)/.s.PGSQL.\(port)", username: username, password: password, database: database)
        }
        return .init(host: host, port: port, username: username, password: password, database: database,
                     tls: requireTLS ? .require(try NIOSSLContext(configuration: .clientDefault)) : .disable)
    }

    /// PostgresNIO client configuration for this URL.
    public func clientConfiguration(maximumConnections: Int = 20) throws -> PostgresClient.Configuration {
        var configuration: PostgresClient.Configuration
        if let socketDirectory {
            configuration = .init(unixSocketPath: "\(socketDirectory)/.s.PGSQL.\(port)", username: username, password: password, database: database)
        } else {
            configuration = .init(host: host, port: port, username: username, password: password, database: database,
                                  tls: requireTLS ? .require(.clientDefault) : .disable)
        }
        configuration.options.maximumConnections = maximumConnections
        configuration.options.minimumConnections = 0
        return configuration
    }
}
