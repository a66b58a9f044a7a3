/// The one error type of Herald's domain: a stable code, what kind of refusal it is, and a message safe to
/// show a client.
///
/// Every refusal a client can see is one of these. HeraldCore says what went wrong, never how a protocol
/// answers it: the API maps the ``Kind`` to an HTTP status and renders problem+json, SMTP submission to a
/// reply code, the Direct Mail compatibility endpoint to its own envelope.
public struct HeraldError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of refusal an error is, by meaning.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// The request is malformed or a value is not allowed.
        case invalid
        /// No (valid) credentials.
        case unauthenticated
        /// Authenticated, but not allowed (policy, IP protection, account state).
        case forbidden
        /// No such resource (or another tenant's: both answer alike).
        case notFound
        /// The method is not one the resource takes.
        case methodNotAllowed
        /// The client accepts no representation the server has.
        case notAcceptable
        /// The request conflicts with the state of things (duplicate, in use, not verified, not approved).
        case conflict
        /// The request is larger than allowed.
        case tooLarge
        /// The body's media type is not one that is read.
        case unsupportedMediaType
        /// A rate or quota is used up for now; it may pass later.
        case throttled
        /// Herald failed (never the client's fault).
        case `internal`
        /// A dependency (the database) is unavailable for now.
        case unavailable

        /// Whether the fault is the server's rather than the request's.
        public var isServerFault: Bool { self == .internal || self == .unavailable }
    }

    /// Stable machine-readable code, e.g. `Auth.InvalidToken` (API.md lists the fixed ones).
    public var code: String
    /// What kind of refusal this is.
    public var kind: Kind
    /// Human-readable explanation; never contains secrets or internals.
    public var message: String
    /// The request field that failed validation, when there is one (JSON pointer-ish path like `document.Statement[0].Effect`).
    public var field: String?
    /// Seconds the client should wait before retrying (rendered as `Retry-After`).
    public var retryAfter: Int?

    /// Creates an error with every property given.
    public init(code: String, kind: Kind, message: String, field: String? = nil, retryAfter: Int? = nil) {
        self.code = code
        self.kind = kind
        self.message = message
        self.field = field
        self.retryAfter = retryAfter
    }

    /// Text for logs.
    public var description: String { "\(code) (\(kind.rawValue)): \(message)" }

    /// Request body or parameter failed validation.
    public static func validation(_ message: String, field: String? = nil) -> HeraldError {
        HeraldError(code: "Validation.Failed", kind: .invalid, message: message, field: field)
    }
    /// The resource does not exist or belongs to another tenant (both answer alike).
    public static func notFound(_ what: String = "resource") -> HeraldError {
        HeraldError(code: "NotFound", kind: .notFound, message: "The \(what) was not found.")
    }
    /// Wrong AccessKey id or secret (never says which).
    public static let invalidCredentials = HeraldError(code: "Auth.InvalidCredentials", kind: .unauthenticated, message: "The AccessKey id or secret is wrong.")
    /// Missing, expired, forged or revoked bearer token.
    public static func invalidToken(_ message: String = "The bearer token is missing, expired or invalid.") -> HeraldError {
        HeraldError(code: "Auth.InvalidToken", kind: .unauthenticated, message: message)
    }
    /// A RAM policy denies the action.
    public static func forbiddenRAM(action: String, resource: String) -> HeraldError {
        HeraldError(code: "Forbidden.RAM", kind: .forbidden, message: "Your policies do not allow \(action) on \(resource).")
    }
    /// The client address is outside the tenant's IP allowlist.
    public static func ipProtectionDenied(_ address: String) -> HeraldError {
        HeraldError(code: "IpProtection.Denied", kind: .forbidden, message: "Sending from \(address) is not allowed by the IP protection allowlist.")
    }
    /// The tenant is frozen: management works, sending does not.
    public static let accountFrozen = HeraldError(code: "Account.Frozen", kind: .forbidden, message: "The account is frozen; sending is suspended.")
    /// The tenant is banned: nothing works.
    public static let accountBanned = HeraldError(code: "Account.Banned", kind: .forbidden, message: "The account is banned.")
    /// The database cannot be reached right now (a failover under way): 503, worth retrying in a moment.
    public static let databaseUnavailable = HeraldError(code: "Unavailable", kind: .unavailable,
                                                        message: "The database is not reachable right now; retry in a moment.", retryAfter: 1)
    /// A per-tenant product limit (count of domains, users, …) would be exceeded.
    public static func limitExceeded(_ message: String) -> HeraldError {
        HeraldError(code: "Limit.Exceeded", kind: .conflict, message: message)
    }
    /// The request conflicts with existing state (duplicate name, resource in use).
    public static func conflict(_ code: String, _ message: String) -> HeraldError {
        HeraldError(code: code, kind: .conflict, message: message)
    }
    /// Too many requests; `retryAfter` seconds until the next is allowed.
    public static func rateLimited(retryAfter: Int) -> HeraldError {
        HeraldError(code: "Throttling", kind: .throttled, message: "Too many requests; retry later.", retryAfter: retryAfter)
    }
}

extension HeraldError {
    /// A send's `from` is not one of the account's sender addresses.
    public static func senderNotFound(_ from: MailAddress) -> HeraldError {
        HeraldError(code: "InvalidMailAddress.NotFound", kind: .invalid, message: "\(from) is not a sender address of this account.", field: "from")
    }

    /// A send's sender is on a domain that is not verified (any more).
    public static func domainNotVerified(_ from: MailAddress) -> HeraldError {
        HeraldError(code: "Domain.NotVerified", kind: .conflict, message: "The domain of \(from) is not verified now.", field: "from")
    }

    /// A send names a tag the account has not created.
    public static func unknownTag(_ tag: String) -> HeraldError {
        .validation("The tag \(tag) does not exist; create it first.", field: "tag")
    }
}
