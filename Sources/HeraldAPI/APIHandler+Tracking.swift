import Foundation
import HeraldCore
import HeraldStore
import OpenAPIRuntime

/// Open and click tracking links (`/t/o/…`, `/t/c/…`): checked without the database, limited per client
/// address like the unsubscribe links; a click redirects only to the URL signed into its token.
extension APIHandler {
    func trackingToken(_ text: String, kind: TrackingLinks.Kind) async throws(HeraldError) -> (tenantID: UUID, messageID: UUID, link: TrackingLinks.Link)? {
        try await checkLinkRate()
        return trackingLinks.decode(text, expecting: kind)
    }

    static var linkNotValid: HTTPBody { HTTPBody(UnsubscribePage.notFound(language: .english)) }

    func trackOpen(_ input: Operations.TrackOpen.Input) async throws -> Operations.TrackOpen.Output {
        guard let token = try await trackingToken(input.path.token, kind: .open),
              try await tracking.record(tenantID: token.tenantID, messageID: token.messageID, url: nil, now: now()) else {
            return .notFound(.init(body: .html(Self.linkNotValid)))
        }
        return .ok(.init(headers: .init(cacheControl: "no-store, private"), body: .imageGif(HTTPBody(TrackingLinks.pixel))))
    }

    func trackClick(_ input: Operations.TrackClick.Input) async throws -> Operations.TrackClick.Output {
        guard let token = try await trackingToken(input.path.token, kind: .click), case .click(let target) = token.link,
              try await tracking.record(tenantID: token.tenantID, messageID: token.messageID, url: target, now: now()) else {
            return .notFound(.init(body: .html(Self.linkNotValid)))
        }
        return .found(.init(headers: .init(location: target, cacheControl: "no-store, private")))
    }
}
