import Foundation
import HeraldCore
import HeraldStore
import OpenAPIRuntime

/// The public one-click unsubscribe links (`/u/{token}`, RFC 8058): the token is checked without the
/// database (a forged, altered or truncated one is 404 and nothing is read or written), requests are
/// limited per client address, and POST is idempotent.
extension APIHandler {
    /// Public link routes (`/u/`, `/t/`): requests per client address (`HERALD_LINK_RATE`).
    func checkLinkRate() async throws(HeraldError) {
        let context = try RequestScope.current()
        if case .limited(let retry) = await linkLimiter.acquire(context.clientIP?.description ?? "unknown") {
            throw HeraldError.rateLimited(retryAfter: retry)
        }
    }

    /// The token, once the caller is within its rate; nil when it is not valid.
    func unsubscribeToken(_ text: String) async throws(HeraldError) -> UnsubscribeToken? {
        try await checkLinkRate()
        return unsubscribeLinks.token(text)
    }

    func getUnsubscribePage(_ input: Operations.GetUnsubscribePage.Input) async throws -> Operations.GetUnsubscribePage.Output {
        let language = UnsubscribePage.language(input.headers.acceptLanguage)
        guard let token = try await unsubscribeToken(input.path.token),
              let address = try await unsubscribes.recipient(tenantID: token.tenantID, messageID: token.messageID) else {
            return .notFound(.init(body: .html(HTTPBody(UnsubscribePage.notFound(language: language)))))
        }
        return .ok(.init(body: .html(HTTPBody(UnsubscribePage.confirm(address: address, scope: token.scope, language: language)))))
    }

    func headUnsubscribePage(_ input: Operations.HeadUnsubscribePage.Input) async throws -> Operations.HeadUnsubscribePage.Output {
        guard let token = try await unsubscribeToken(input.path.token),
              try await unsubscribes.recipient(tenantID: token.tenantID, messageID: token.messageID) != nil else { return .notFound(.init()) }
        return .ok(.init())
    }

    func unsubscribe(_ input: Operations.Unsubscribe.Input) async throws -> Operations.Unsubscribe.Output {
        let language = UnsubscribePage.language(input.headers.acceptLanguage)
        guard let token = try await unsubscribeToken(input.path.token),
              let (address, _) = try await unsubscribes.unsubscribe(tenantID: token.tenantID, messageID: token.messageID, scope: token.scope, now: now())
        else {
            return .notFound(.init(body: .html(HTTPBody(UnsubscribePage.notFound(language: language)))))
        }
        return .ok(.init(body: .html(HTTPBody(UnsubscribePage.done(address: address, scope: token.scope, language: language)))))
    }
}
