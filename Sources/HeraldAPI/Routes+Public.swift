import Foundation
import HeraldCore
import HeraldStore
import Hummingbird
import NIOCore
import Prometheus

/// Token exchange, JWKS, health, metrics and the OpenAPI document.
struct PublicRoutes {
    let tokens: TokenService
    let keys: SigningKeyRing
    let database: Database
    let registry: PrometheusCollectorRegistry
    let keyLimiter: TokenBucketLimiter
    let ipLimiter: TokenBucketLimiter

    struct TokenRequest: StrictBody {
        static let fields: Set<String> = ["accessKeyId", "accessKeySecret"]
        var accessKeyId: String
        var accessKeySecret: String
    }
    struct Status: Encodable { var status: String }
    struct JWKS: Encodable { var keys: [JWK] }

    func register(_ registrar: RouteRegistrar) {
        let tokens = self.tokens, keys = self.keys, database = self.database, registry = self.registry
        let keyLimiter = self.keyLimiter, ipLimiter = self.ipLimiter

        registrar.on(.post, "v1/auth/token") { request, context in
            if case .limited(let retry) = ipLimiter.acquire(context.clientIP?.description ?? "unknown") {
                throw HeraldError.rateLimited(retryAfter: retry)
            }
            let body = try await JSONBody.decode(TokenRequest.self, from: request, context: context)
            guard body.accessKeyId.utf8.count <= 128, body.accessKeySecret.utf8.count <= 256 else { throw HeraldError.invalidCredentials }
            if case .limited(let retry) = keyLimiter.acquire(body.accessKeyId) {
                throw HeraldError.rateLimited(retryAfter: retry)
            }
            return try JSONBody.response(try await tokens.issue(accessKeyID: body.accessKeyId, secret: body.accessKeySecret))
        }
        registrar.on(.get, ".well-known/jwks.json") { _, _ in
            var response = try JSONBody.response(JWKS(keys: await keys.jwks()))
            response.headers[.cacheControl] = "public, max-age=60"
            return response
        }
        registrar.on(.get, "healthz") { _, _ in try JSONBody.response(Status(status: "ok")) }
        registrar.on(.get, "readyz") { _, _ in
            guard await database.ping() else {
                throw HeraldError(code: "Unavailable", status: 503, message: "The database is not reachable.")
            }
            return try JSONBody.response(Status(status: "ok"))
        }
        registrar.on(.get, "metrics") { _, _ in
            var buffer: [UInt8] = []
            buffer.reserveCapacity(16_384)
            registry.emit(into: &buffer)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(bytes: buffer)))
        }
        registrar.on(.get, "openapi.yaml") { _, _ in
            guard let url = Bundle.module.url(forResource: "Resources/openapi", withExtension: "yaml"), let data = try? Data(contentsOf: url) else {
                throw HeraldError.notFound("OpenAPI document")
            }
            return Response(status: .ok, headers: [.contentType: "application/yaml"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
    }
}

/// Operator routes under `/admin/v1`.
struct AdminRoutes {
    let tenants: TenantStore
    let keys: SigningKeyRing

    struct CreateTenant: StrictBody {
        static let fields: Set<String> = ["name", "kind"]
        var name: String
        var kind: TenantKind?
    }
    struct Reason: StrictBody {
        static let fields: Set<String> = ["reason"]
        var reason: String?
    }
    struct CreatedTenantBody: Encodable {
        var tenantId: UUID
        var name: String
        var accessKeyId: String
        var accessKeySecret: String
    }
    struct Rotated: Encodable {
        var kid: String
        var createdAt: Date
    }

    func register(_ registrar: RouteRegistrar) {
        let tenants = self.tenants, keys = self.keys
        registrar.on(.post, "tenants") { request, context in
            let body = try await JSONBody.decode(CreateTenant.self, from: request, context: context)
            let created = try await tenants.create(name: body.name, kind: body.kind ?? .enterprise, actor: context.auditActor)
            return try JSONBody.response(CreatedTenantBody(tenantId: created.tenant.id, name: created.tenant.name,
                                                           accessKeyId: created.accessKeyID, accessKeySecret: created.accessKeySecret), status: .created)
        }
        registrar.on(.get, "tenants") { request, _ in
            let limit = try QueryParameters.limit(request)
            var status: TenantStatus?
            if let text = request.uri.queryParameters.get("status") {
                guard let value = TenantStatus(rawValue: String(text)) else { throw HeraldError.validation("status must be active, frozen or banned.", field: "status") }
                status = value
            }
            let items = try await tenants.list(status: status, limit: limit, after: try QueryParameters.uuidCursor(request))
            return try JSONBody.response(Page(items: items, nextCursor: items.count == limit ? items.last.map { QueryParameters.encodeCursor($0.id) } : nil))
        }
        registrar.on(.get, "tenants/{id}") { _, context in
            guard let tenant = try await tenants.get(try context.uuidParameter("id", what: "tenant")) else { throw HeraldError.notFound("tenant") }
            return try JSONBody.response(tenant)
        }
        for change in [TenantStore.StatusChange.freeze, .unfreeze, .ban] {
            registrar.on(.post, "tenants/{id}/\(change.rawValue)") { request, context in
                let id = try context.uuidParameter("id", what: "tenant")
                let body = try await JSONBody.decode(Reason.self, from: request, context: context, optional: true)
                return try JSONBody.response(try await tenants.change(id, change, reason: body.reason, actor: context.auditActor))
            }
        }
        registrar.on(.post, "signing-keys/rotate") { _, _ in
            let kid = try await keys.rotate()
            return try JSONBody.response(Rotated(kid: kid, createdAt: Date()))
        }
    }
}
