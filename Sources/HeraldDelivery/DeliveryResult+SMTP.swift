import Foundation
import HeraldCore
import HeraldSMTP

extension DeliveryResult {
    /// The one place where what the SMTP conversation said becomes a delivery result: a soft failure is
    /// deferred by `retry` (or has failed when its window is closed), a hard failure is a bounce, invalid
    /// when its reply is 5.1.x (``InvalidAddressRule``).
    public init(_ outcome: SMTPOutcome, attempts: Int, acceptedAt: Date, retry: RetryPolicy, now: Date,
                random: Double = Double.random(in: -1...1)) {
        switch outcome {
        case .delivered: self = .delivered
        case .softFailure: self = retry.afterSoftFailure(attempts: attempts, acceptedAt: acceptedAt, now: now, random: random)
        case .hardFailure: self = .bounced(response: outcome.response)
        case .spamRejected: self = .spamRejected
        }
    }
}
