import Foundation
import HeraldCore
import HeraldStore
import OpenAPIRuntime
import Prometheus

/// Health, metrics, the contract, JWKS and the token exchange: no credentials.
extension APIHandler {
    func getHealth(_ input: Operations.GetHealth.Input) async throws -> Operations.GetHealth.Output {
        .ok(.init(body: .json(.init(status: .ok))))
    }

    func getReadiness(_ input: Operations.GetReadiness.Input) async throws -> Operations.GetReadiness.Output {
        guard await database.ping() else { throw HeraldError(code: "Unavailable", kind: .unavailable, message: "The database is not reachable.") }
        return .ok(.init(body: .json(.init(status: .ok))))
    }

    func getMetrics(_ input: Operations.GetMetrics.Input) async throws -> Operations.GetMetrics.Output {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(16_384)
        registry.emit(into: &buffer)
        return .ok(.init(body: .plainText(HTTPBody(buffer))))
    }

    func getOpenAPI(_ input: Operations.GetOpenAPI.Input) async throws -> Operations.GetOpenAPI.Output {
        guard let document = Self.openAPIDocument else { throw HeraldError.notFound("OpenAPI document") }
        return .ok(.init(body: .yaml(HTTPBody(document))))
    }

    func getJWKS(_ input: Operations.GetJWKS.Input) async throws -> Operations.GetJWKS.Output {
        .ok(.init(headers: .init(cacheControl: "public, max-age=60"), body: .json(.init(keys: await keys.jwks().map(Components.Schemas.Jwk.init)))))
    }

    func createToken(_ input: Operations.CreateToken.Input) async throws -> Operations.CreateToken.Output {
        let context = try RequestScope.current()
        if case .limited(let retry) = await ipLimiter.acquire(context.clientIP?.description ?? "unknown") {
            throw HeraldError.rateLimited(retryAfter: retry)
        }
        guard case .json(let body) = input.body else { throw HeraldError.validation("Send accessKeyId and accessKeySecret.") }
        guard body.accessKeyId.utf8.count <= 128, body.accessKeySecret.utf8.count <= 256 else { throw HeraldError.invalidCredentials }
        if case .limited(let retry) = await keyLimiter.acquire(body.accessKeyId) {
            throw HeraldError.rateLimited(retryAfter: retry)
        }
        let issued = try await tokens.issue(accessKeyID: body.accessKeyId, secret: body.accessKeySecret)
        return .ok(.init(body: .json(.init(token: issued.token, expiresAt: issued.expiresAt, tokenType: .bearer))))
    }
}
