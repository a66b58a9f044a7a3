import Foundation
import HeraldCore
import HeraldStore
import Hummingbird
import Logging

/// Issues tokens for AccessKeys and turns bearer tokens back into principals.
public struct TokenService: Sendable {
    let auth: AuthStore
    let keys: SigningKeyRing
    /// Token lifetime (SPEC: 15 minutes).
    let lifetime: Duration
    let now: @Sendable () -> Date

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
        let claims = TokenClaims(sub: owner.userID.uuidString.lowercased(), tid: owner.tenantID.uuidString.lowercased(),
                                 akid: accessKeyID, iat: issuedAt, exp: expires)
        let token = AccessTokenCodec.issue(claims, with: try await keys.currentKey())
        return IssuedToken(token: token, expiresAt: Date(timeIntervalSince1970: TimeInterval(expires)))
    }

    /// Verifies a bearer token and loads the caller as they are now (disabled users and deleted keys fail at once).
    public func principal(bearer token: String) async throws -> Principal {
        let kid = Self.kid(of: token)
        let publicKeys = await keys.publicKeys(ensuring: kid)
        let claims = try AccessTokenCodec.verify(token, publicKeys: publicKeys, now: Int(now().timeIntervalSince1970))
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

/// Authenticates `/v1` requests with a bearer token; a banned tenant is refused everything.
struct TenantAuthMiddleware: RouterMiddleware {
    typealias Context = HeraldRequestContext
    let tokens: TokenService
    /// Requests per tenant (SPEC §11), per process.
    let limiter: TokenBucketLimiter

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization], header.count > 7, header.prefix(7).lowercased() == "bearer " else {
            throw HeraldError.invalidToken("Send Authorization: Bearer <token> (get one from POST /v1/auth/token).")
        }
        let principal = try await tokens.principal(bearer: String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces))
        if principal.tenantStatus == .banned { throw HeraldError.accountBanned }
        let remaining: Int
        switch limiter.acquire(principal.tenantID.uuidString) {
        case .allowed(let left): remaining = left
        case .limited(let retryAfter): throw HeraldError.rateLimited(retryAfter: retryAfter)
        }
        var context = context
        context.principal = principal
        context.logger[metadataKey: "tenant_id"] = .string(principal.tenantID.uuidString.lowercased())
        var response = try await next(request, context)
        response.headers[.rateLimitLimit] = String(limiter.limit)
        response.headers[.rateLimitRemaining] = String(remaining)
        return response
    }
}

/// Authenticates `/admin/v1` with the operator token, compared in constant time.
struct AdminAuthMiddleware: RouterMiddleware {
    typealias Context = HeraldRequestContext
    let adminToken: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let header = request.headers[.authorization] ?? ""
        let given = header.prefix(7).lowercased() == "bearer " ? String(header.dropFirst(7)) : ""
        guard !adminToken.isEmpty, constantTimeEquals(Array(given.utf8), Array(adminToken.utf8)) else {
            throw HeraldError.invalidToken("The operator token is missing or wrong.")
        }
        return try await next(request, context)
    }
}
