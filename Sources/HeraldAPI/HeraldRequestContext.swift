import HeraldCore
import Hummingbird
import NIOCore

/// The per-request context: Hummingbird's core storage plus the peer address, the request id and,
/// on tenant routes, the authenticated principal.
public struct HeraldRequestContext: RequestContext, RemoteAddressRequestContext {
    /// Hummingbird's storage (parameters, logger, endpoint path).
    public var coreContext: CoreRequestContextStorage
    /// The TCP peer.
    public let remoteAddress: SocketAddress?
    /// The caller's IP (the peer, or the forwarded client behind a trusted proxy); set by the first middleware.
    public var clientIP: IPAddress?
    /// Request id echoed in `X-Request-Id` and in every problem body.
    public var requestID: String = ""
    /// Set by the tenant authentication middleware.
    public var principal: Principal?

    /// Creates a context for a request arriving on a channel.
    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
    }

    /// Management bodies are small; the send endpoints raise this on their own routes.
    public var maxUploadSize: Int { 256 * 1024 }

    /// The principal; tenant routes run behind the authentication middleware, so a missing one is a bug, answered as 401.
    func requirePrincipal() throws(HeraldError) -> Principal {
        guard let principal else { throw HeraldError.invalidToken() }
        return principal
    }

    /// Who to write into the audit log for this request.
    var auditActor: AuditActor {
        AuditActor(type: principal == nil ? .operator : .user, userID: principal?.userID, accessKeyID: principal?.accessKeyID,
                   sourceIP: clientIP?.description, requestID: requestID)
    }
}
