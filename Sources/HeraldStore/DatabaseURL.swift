import Foundation
import HeraldCore
import NIOSSL
import PostgresNIO

/// A parsed `DATABASE_URL` (`postgres://user:password@host:port/database?sslmode=disable&host=/socket/dir`).
/// As with libpq, it may list several servers (`postgres://u:p@h1:5432,h2:5433/db?target_session_attrs=read-write`):
/// Herald then connects through a ``PrimaryRouter`` to the one that takes writes.
public struct DatabaseURL: Sendable, Equatable {
    /// One server of the URL.
    public struct Endpoint: Sendable, Equatable, CustomStringConvertible {
        public var host: String
        public var port: Int

        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }

        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    /// libpq's `target_session_attrs`: which of the servers Herald may use.
    public enum TargetSession: String, Sendable, Equatable {
        /// The first that answers (libpq's default).
        case any
        /// One that takes writes (`SHOW transaction_read_only` is off).
        case readWrite = "read-write"
        /// One that is not a standby (`pg_is_in_recovery()` is false).
        case primary
    }

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
    /// Every server of the URL, in its order (`host` and `port` are the first).
    public var endpoints: [Endpoint]
    /// Which server to use (`target_session_attrs`).
    public var targetSession: TargetSession
    /// The socket of the ``PrimaryRouter`` the pool connects through instead (see ``routed(through:)``).
    public var routerSocket: String?
    /// `pgbouncer=true`: the URL is a pgbouncer in transaction mode, so Herald prepares no statements
    /// (``Database/preparedStatements``); LISTEN and migrations need `HERALD_DIRECT_DATABASE_URL`.
    public var pgbouncer: Bool

    /// Parses the URL; a malformed one is a configuration error naming the problem.
    public init(_ string: String) throws(HeraldError) {
        func invalid(_ why: String) -> HeraldError {
            HeraldError(code: "Config.Invalid", kind: .internal, message: "DATABASE_URL is invalid: \(why)")
        }
        // Several servers (`h1:p1,h2:p2`) are split off first: URLComponents takes one host.
        var text = string
        var listed: [Endpoint]?
        if let schemeEnd = text.range(of: "://") {
            let rest = text[schemeEnd.upperBound...]
            let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
            let authority = rest[..<authorityEnd]
            let at = authority.lastIndex(of: "@")
            let hostList = at.map { authority[authority.index(after: $0)...] } ?? authority
            if hostList.contains(",") {
                listed = try hostList.split(separator: ",", omittingEmptySubsequences: false).map { item throws(HeraldError) -> Endpoint in
                    try Self.endpoint(String(item), invalid: invalid)
                }
                text.replaceSubrange(hostList.startIndex..<hostList.endIndex, with: hostList.split(separator: ",")[0])
            }
        }
        guard let components = URLComponents(string: text), let scheme = components.scheme,
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
        endpoints = listed ?? [Endpoint(host: host, port: port)]
        switch query["target_session_attrs"] ?? "any" {
        case "any": targetSession = .any
        case "read-write": targetSession = .readWrite
        case "primary": targetSession = .primary
        case let other: throw invalid("unsupported target_session_attrs \(other) (Herald writes: use read-write, primary or any)")
        }
        if endpoints.count > 1 && socketDirectory != nil { throw invalid("several hosts and a socket directory") }
        switch query["pgbouncer"] ?? "false" {
        case "true", "1": pgbouncer = true
        case "false", "0": pgbouncer = false
        case let other: throw invalid("pgbouncer must be true or false, not \(other)")
        }
    }

    /// `host[:port]` or `[v6]:port` of a list of servers.
    private static func endpoint(_ text: String, invalid: (String) -> HeraldError) throws(HeraldError) -> Endpoint {
        var host = text, port = 5432
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw invalid("unclosed [ in host \(text)") }
            host = String(text[text.index(after: text.startIndex)..<close])
            let after = text[text.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let value = Int(after.dropFirst()) else { throw invalid("bad port in \(text)") }
                port = value
            }
        } else if let colon = text.lastIndex(of: ":") {
            host = String(text[..<colon])
            guard let value = Int(text[text.index(after: colon)...]) else { throw invalid("bad port in \(text)") }
            port = value
        }
        guard !host.isEmpty else { throw invalid("an empty host in the list") }
        guard (1...65535).contains(port) else { throw invalid("port out of range in \(text)") }
        return Endpoint(host: host, port: port)
    }

    /// Whether the pool needs a ``PrimaryRouter``: several servers, or a server that must take writes.
    public var needsRouter: Bool { socketDirectory == nil && (endpoints.count > 1 || targetSession != .any) }

    /// The same URL with its connections made through a router's Unix socket (which speaks to the
    /// servers itself, with TLS when required).
    public func routed(through socket: String) -> DatabaseURL {
        var copy = self
        copy.routerSocket = socket
        return copy
    }

    /// The configuration of a direct connection to one of the servers (the router's probes).
    public func connectionConfiguration(to endpoint: Endpoint) throws -> PostgresConnection.Configuration {
        var configuration = PostgresConnection.Configuration(
            host: endpoint.host, port: endpoint.port, username: username, password: password, database: database,
            tls: requireTLS ? .require(try NIOSSLContext(configuration: .clientDefault)) : .disable)
        configuration.options.connectTimeout = .seconds(2)
        return configuration
    }

    /// The same server and credentials, another database (tests clone databases this way).
    public func with(database: String) -> DatabaseURL {
        var copy = self
        copy.database = database
        return copy
    }

    /// The configuration of one direct connection to this URL (the principal cache's `LISTEN`).
    public func connectionConfiguration() throws -> PostgresConnection.Configuration {
        if let routerSocket {
            return .init(unixSocketPath: routerSocket, username: username, password: password, database: database)
        }
        if let socketDirectory {
            return .init(unixSocketPath: "\(socketDirectory)/.s.PGSQL.\(port)", username: username, password: password, database: database)
        }
        return .init(host: host, port: port, username: username, password: password, database: database,
                     tls: requireTLS ? .require(try NIOSSLContext(configuration: .clientDefault)) : .disable)
    }

    /// PostgresNIO client configuration for this URL.
    public func clientConfiguration(maximumConnections: Int = 20) throws -> PostgresClient.Configuration {
        var configuration: PostgresClient.Configuration
        if let routerSocket {
            configuration = .init(unixSocketPath: routerSocket, username: username, password: password, database: database)
        } else if let socketDirectory {
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
