/// The one error type of Herald's domain: a stable code, an HTTP status and a message safe to show a client.
///
/// Every refusal a client can see is one of these; the API renders it as problem+json.
public struct HeraldError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Stable machine-readable code, e.g. `Auth.InvalidToken` (API.md lists the fixed ones).
    public var code: String
    /// HTTP status the API answers with.
    public var status: Int
    /// Human-readable explanation; never contains secrets or internals.
    public var message: String
    /// The request field that failed validation, when there is one (JSON pointer-ish path like `document.Statement[0].Effect`).
    public var field: String?
    /// Seconds the client should wait before retrying (rendered as `Retry-After`).
    public var retryAfter: Int?

    /// Creates an error with every property given.
    public init(code: String, status: Int, message: String, field: String? = nil, retryAfter: Int? = nil) {
        self.code = code
        self.status = status
        self.message = message
        self.field = field
        self.retryAfter = retryAfter
    }

    /// Text for logs.
    public var description: String { "\(code) (\(status)): \(message)" }

    /// Request body or parameter failed validation.
    public static func validation(_ message: String, field: String? = nil) -> HeraldError {
        HeraldError(code: "Validation.Failed", status: 400, message: message, field: field)
    }
    /// The resource does not exist or belongs to another tenant (both answer alike).
    public static func notFound(_ what: String = "resource") -> HeraldError {
        HeraldError(code: "NotFound", status: 404, message: "The \(what) was not found.")
    }
    /// Wrong AccessKey id or secret (never says which).
    public static let invalidCredentials = HeraldError(code: "Auth.InvalidCredentials", status: 401, message: "The AccessKey id or secret is wrong.")
    /// Missing, expired, forged or revoked bearer token.
    public static func invalidToken(_ message: String = "The bearer token is missing, expired or invalid.") -> HeraldError {
        HeraldError(code: "Auth.InvalidToken", status: 401, message: message)
    }
    /// A RAM policy denies the action.
    public static func forbiddenRAM(action: String, resource: String) -> HeraldError {
        HeraldError(code: "Forbidden.RAM", status: 403, message: "Your policies do not allow \(action) on \(resource).")
    }
    /// The client address is outside the tenant's IP allowlist.
    public static func ipProtectionDenied(_ address: String) -> HeraldError {
        HeraldError(code: "IpProtection.Denied", status: 403, message: "Sending from \(address) is not allowed by the IP protection allowlist.")
    }
    /// The tenant is frozen: management works, sending does not.
    public static let accountFrozen = HeraldError(code: "Account.Frozen", status: 403, message: "The account is frozen; sending is suspended.")
    /// The tenant is banned: nothing works.
    public static let accountBanned = HeraldError(code: "Account.Banned", status: 403, message: "The account is banned.")
    /// A per-tenant product limit (count of domains, users, …) would be exceeded.
    public static func limitExceeded(_ message: String) -> HeraldError {
        HeraldError(code: "Limit.Exceeded", status: 409, message: message)
    }
    /// The request conflicts with existing state (duplicate name, resource in use).
    public static func conflict(_ code: String, _ message: String) -> HeraldError {
        HeraldError(code: code, status: 409, message: message)
    }
    /// Too many requests; `retryAfter` seconds until the next is allowed.
    public static func rateLimited(retryAfter: Int) -> HeraldError {
        HeraldError(code: "Throttling", status: 429, message: "Too many requests; retry later.", retryAfter: retryAfter)
    }
}

extension HeraldError {
    /// A send's `from` is not one of the account's sender addresses.
    public static func senderNotFound(_ from: MailAddress) -> HeraldError {
        HeraldError(code: "InvalidMailAddress.NotFound", status: 400, message: "\(from) is not a sender address of this account.", field: "from")
    }

    /// A send's sender is on a domain that is not verified (any more).
    public static func domainNotVerified(_ from: MailAddress) -> HeraldError {
        HeraldError(code: "Domain.NotVerified", status: 409, message: "The domain of \(from) is not verified now.", field: "from")
    }

    /// A send names a tag the account has not created.
    public static func unknownTag(_ tag: String) -> HeraldError {
        .validation("The tag \(tag) does not exist; create it first.", field: "tag")
    }
}
