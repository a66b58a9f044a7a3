import AsyncHTTPClient
import Foundation
import HeraldCore
import HeraldStore
import NIOCore
import NIOHTTP1

/// One attempt: the signed POST of a delivery (Standard Webhooks headers) and what it came to.
extension WebhookDispatcher {
    /// One POST and what it came to; nil when it was cut short by cancellation (a hard stop).
    func attempt(_ delivery: ClaimedWebhookDelivery) async -> WebhookAttemptOutcome? {
        let started = ContinuousClock.now
        let attemptedAt = now()
        let id = "msg_" + delivery.id.lowercasedString.replacingOccurrences(of: "-", with: "")
        let timestamp = Int(attemptedAt.timeIntervalSince1970)
        var status: Int?
        var error: String?
        var excerpt: String?
        var retryAfter: String?
        do {
            let client = try await clients.client(for: delivery.url)
            var request = HTTPClientRequest(url: delivery.url)
            request.method = .POST
            request.headers.add(name: "content-type", value: "application/json")
            request.headers.add(name: "user-agent", value: "Herald-Webhooks/1.0")
            request.headers.add(name: "webhook-id", value: id)
            request.headers.add(name: "webhook-timestamp", value: String(timestamp))
            request.headers.add(name: "webhook-signature",
                                value: WebhookSignature.header(id: id, timestamp: timestamp, body: delivery.body, secrets: delivery.secrets))
            request.body = .bytes(ByteBuffer(bytes: delivery.body))
            let response = try await client.execute(request, timeout: .init(settings.timeout))
            status = Int(response.status.code)
            retryAfter = response.headers.first(name: "retry-after")
            var body = ByteBuffer()
            for try await chunk in response.body {
                body.writeImmutableBuffer(chunk)
                if body.readableBytes >= 1024 { break }
            }
            if body.readableBytes > 0 {
                excerpt = String(decoding: body.readableBytesView.prefix(1024), as: UTF8.self)
            }
        } catch let refusal as HeraldError {
            error = refusal.message
        } catch let failure {
            if let failure = failure as? HTTPClientError, failure == .cancelled { return nil }
            error = Self.describe(failure)
        }
        // No answer because the task was cancelled (the DNS lookup or the request cut short): not an attempt.
        if status == nil && Task.isCancelled { return nil }
        let elapsed = ContinuousClock.now - started
        let decision = settings.retry.decide(attempt: delivery.attempts + 1, status: status, retryAfter: retryAfter, now: now())
        if let status, (300..<400).contains(status) { error = "redirects are not followed" }
        metrics?.attempted(decision, after: elapsed)
        let milliseconds = Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
        return WebhookAttemptOutcome(id: delivery.id, endpointID: delivery.endpointID, attemptedAt: attemptedAt, httpStatus: status, error: error,
                                     latencyMs: milliseconds, response: excerpt, decision: decision)
    }

    /// A transport failure in a few words, as the attempt log shows it.
    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout: return "timed out"
            case .connectTimeout: return "connection timed out"
            case .remoteConnectionClosed: return "the connection was closed without an answer"
            default: return "\(error)"
            }
        }
        return "\(error)"
    }
}
