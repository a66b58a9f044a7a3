import HeraldCore
import HeraldSMTP

extension SMTPOutcome {
    /// The status a message takes for an outcome of this class (before the worker's retry decision), so
    /// that the tests state outcomes in the vocabulary of message statuses.
    var messageStatus: String {
        switch self {
        case .delivered: MessageStatus.delivered.rawValue
        case .softFailure: MessageStatus.deferred.rawValue
        case .hardFailure: MessageStatus.bounced.rawValue
        case .spamRejected: MessageStatus.spamRejected.rawValue
        }
    }
}
