import Foundation
import HeraldCore
import HeraldStore
import HTTPTypes
import Hummingbird
import Logging
import OpenAPIRuntime
import Synchronization

/// Issues tokens for AccessKeys and turns bearer tokens back into principals.
public struct TokenService: Sendable {
    /// AccessKeys, nonces and principals (with the process's principal cache).
    public let auth: AuthStore
    let keys: SigningKeyRing
    /// Token lifetime (SPEC: 15 minutes).
    let lifetime: Duration
    let now: @Sendable () -> Date
    let verified = VerifiedTokens()

    /// Creates the service.
    public init(auth: AuthStore, keys: SigningKeyRing, lifetime: Duration, now: @escaping @Sendable () -> Date) {
        self.auth = auth
        self.keys = keys
        self.lifetime = lifetime
        self.now = now
    }

    /// A signed token and its expiry.
    public struct IssuedToken: Codable, Sendable {
        /// The JWT.
        public var token: String
        /// When it expires.
        public var expiresAt: Date
        /// Always `Bearer`.
        public var tokenType = "Bearer"
    }

    /// Exchanges an AccessKey for a token.
    public func issue(accessKeyID: String, secret: String) async throws -> IssuedToken {
        let owner = try await auth.verify(accessKeyID: accessKeyID, secret: secret)
        let issuedAt = Int(now().timeIntervalSince1970)
        let expires = issuedAt + Int(lifetime.components.seconds)
        let claims = TokenClaims(sub: owner.userID.lowercasedString, tid: owner.tenantID.lowercasedString,
                                 akid: accessKeyID, iat: issuedAt, exp: expires)
        let token = AccessTokenCodec.issue(claims, with: try await keys.currentKey())
        return IssuedToken(token: token, expiresAt: Date(timeIntervalSince1970: TimeInterval(expires)))
    }

    /// Verifies a bearer token and loads the caller as they are now (disabled users and deleted keys fail at once).
    /// A token that verified before is taken from ``verified`` while it has not expired and its signing
    /// key is still published: the signature check is most of a request's own CPU, and a client sends
    /// the same token for its 15 minutes.
    public func principal(bearer token: String) async throws -> Principal {
        let seconds = Int(now().timeIntervalSince1970)
        let claims: TokenClaims
        if let (cached, kid) = verified.lookup(token), cached.exp + 30 > seconds, await keys.publicKeys(ensuring: kid)[kid] != nil {
            claims = cached
        } else {
            let kid = Self.kid(of: token)
            let publicKeys = await keys.publicKeys(ensuring: kid)
            claims = try AccessTokenCodec.verify(token, publicKeys: publicKeys, now: seconds)
            if let kid { verified.insert(token, claims: claims, kid: kid) }
        }
        guard let tenantID = UUID(uuidString: claims.tid), let userID = UUID(uuidString: claims.sub),
              let principal = try await auth.principal(tenantID: tenantID, userID: userID, accessKeyID: claims.akid)
        else { throw HeraldError.invalidToken("The token's user or AccessKey is disabled or no longer exists.") }
        return principal
    }

    private static func kid(of token: String) -> String? {
        guard let header = token.split(separator: ".").first, let bytes = Base64URL.decode(header),
              let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else { return nil }
        return object["kid"] as? String
    }
}

/// Authenticates and authorizes every generated operation by its `operationId` (see ``OperationAccess``),
/// before its body is decoded: tenant operations need a bearer token whose principal is active (a banned
/// tenant is refused everything), within the tenant's request rate, and allowed the operation's action on
/// its resource; operator operations need `HERALD_ADMIN_TOKEN`. Refused or failed changes by a tenant are
/// written to the audit log.
struct AccessMiddleware: ServerMiddleware {
    let tokens: TokenService
    let database: Database
    let adminToken: String
    /// Requests per tenant (SPEC §11).
    let tenantLimiter: any RateLimiting

    func intercept(_ request: HTTPRequest, body: HTTPBody?, metadata: ServerRequestMetadata, operationID: String,
                   next: @Sendable (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?))
        async throws -> (HTTPResponse, HTTPBody?) {
        guard let access = OperationAccess.table[operationID] else {
            throw HeraldError(code: "Internal", kind: .internal, message: "Operation \(operationID) has no access rule.")
        }
        switch access {
        case .open:
            return try await next(request, body, metadata)
        case .operator:
            let given = Self.bearer(request.headerFields) ?? ""
            guard !adminToken.isEmpty, constantTimeEquals(Array(given.utf8), Array(adminToken.utf8)) else {
                throw HeraldError.invalidToken("The operator token is missing or wrong.")
            }
            return try await next(request, body, metadata)
        case .tenant(let action, let template):
            let (answer, remaining) = try await asTenant(headers: request.headerFields, method: request.method, action: action,
                                                         template: template, pathParameters: metadata.pathParameters) {
                try await next(request, body, metadata)
            }
            var response = answer.0
            response.headerFields[.rateLimitLimit] = String(tenantLimiter.limit)
            response.headerFields[.rateLimitRemaining] = String(remaining)
            return (response, answer.1)
        }
    }

    /// The gate of a tenant operation, for the generated routes and the hand-written hot one alike: the bearer
    /// token's principal (not banned), the tenant's request rate, the RAM check of `action` on the resource;
    /// then `operation` runs with the principal in ``RequestScope``. A refused write is audited. Answers the
    /// operation's result and the tenant's remaining requests (for the RateLimit-Remaining field).
    func asTenant<Result: Sendable>(headers: HTTPFields, method: HTTPRequest.Method, action: String, template: String,
                                    pathParameters: [String: Substring],
                                    _ operation: () async throws -> Result) async throws -> (Result, remaining: Int) {
        guard let token = Self.bearer(headers) else {
            throw HeraldError.invalidToken("Send Authorization: Bearer <token> (get one from POST /v1/auth/token).")
        }
        let principal = try await tokens.principal(bearer: token)
        if principal.tenantStatus == .banned { throw HeraldError.accountBanned }
        let remaining: Int
        switch await tenantLimiter.acquire(principal.tenantID.lowercasedString) {
        case .allowed(let left): remaining = left
        case .limited(let retryAfter): throw HeraldError.rateLimited(retryAfter: retryAfter)
        }
        var context = try RequestScope.current()
        context.principal = principal
        context.logger[metadataKey: "tenant_id"] = .string(principal.tenantID.lowercasedString)
        let resource = ResourceName.expand(template: template, tenantID: principal.tenantID.lowercasedString, parameters: pathParameters)
        do {
            try principal.authorize(action: action, resource: resource)
            let result = try await RequestScope.$context.withValue(context) { try await operation() }
            return (result, remaining)
        } catch {
            if method != .get && method != .head, let refusal = HeraldError.unwrapping(error) {
                await AuditLog.recordRefusal(database: database, tenantID: principal.tenantID, actor: context.auditActor,
                                             action: action, resource: resource, code: refusal.code)
            }
            throw error
        }
    }

    /// The bearer token of the Authorization header.
    static func bearer(_ headers: HTTPFields) -> String? {
        guard let header = headers[.authorization], header.count > 7, header.prefix(7).lowercased() == "bearer " else {
            return nil
        }
        var value = Substring(header).utf8.dropFirst(7)
        while let first = value.first, first == 32 || first == 9 { value = value.dropFirst() }
        while let last = value.last, last == 32 || last == 9 { value = value.dropLast() }
        return String(Substring(value))
    }
}

/// Tokens whose signature verified, with their claims and signing key, at most `capacity` of them (when
/// full, it starts over: the cost of a miss is one signature check).
final class VerifiedTokens: Sendable {
    private let entries = Mutex<[String: (claims: TokenClaims, kid: String)]>([:])
    let capacity: Int

    init(capacity: Int = 20_000) {
        self.capacity = capacity
    }

    func lookup(_ token: String) -> (TokenClaims, String)? {
        entries.withLock { $0[token] }
    }

    func insert(_ token: String, claims: TokenClaims, kid: String) {
        entries.withLock { entries in
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[token] = (claims, kid)
        }
    }
}
