import HeraldCore
import HeraldStore
import Hummingbird

/// Registers tenant routes: each declares its RAM action and resource; the wrapper authorizes the
/// principal before the handler runs and writes refused changes to the audit log.
struct TenantRoutes {
    let registrar: RouteRegistrar
    let database: Database

    typealias Handler = @Sendable (Request, HeraldRequestContext, Principal) async throws -> Response
    typealias Resource = @Sendable (Principal, HeraldRequestContext) -> String

    func on(_ method: HTTPRequest.Method, _ path: String, action: String,
            resource: @escaping Resource = { principal, _ in principal.tenantResource }, _ handler: @escaping Handler) {
        let database = self.database
        registrar.on(method, path, action: action) { request, context in
            let principal = try context.requirePrincipal()
            let resourceName = resource(principal, context)
            do {
                try principal.authorize(action: action, resource: resourceName)
                return try await handler(request, context, principal)
            } catch let error as HeraldError where method != .get && method != .head {
                await AuditLog.recordRefusal(database: database, tenantID: principal.tenantID, actor: context.auditActor,
                                             action: action, resource: resourceName, code: error.code)
                throw error
            }
        }
    }

    /// Resource naming the `{id}` user of the path.
    static func user(_ principal: Principal, _ context: HeraldRequestContext) -> String {
        principal.resource("user", context.parameters.get("id") ?? "*")
    }

    /// Resource naming the `{policyName}` policy of the path.
    static func policy(_ principal: Principal, _ context: HeraldRequestContext) -> String {
        principal.resource("policy", context.parameters.get("policyName") ?? "*")
    }
}

extension Response {
    static let noContent = Response(status: .noContent)
}
