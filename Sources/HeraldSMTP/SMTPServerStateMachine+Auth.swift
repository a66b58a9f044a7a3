import Foundation

/// AUTH on the server side (RFC 4954): PLAIN (RFC 4616) and LOGIN, with or without an initial response.
/// Whether the credentials are good is the delegate's decision, asked through ``SMTPServerStateMachine/Action/authenticate(username:password:)``.
extension SMTPServerStateMachine {
    /// `AUTH mechanism [initial-response]`.
    mutating func auth(_ argument: Substring) -> Action {
        guard settings.authAvailable else { return error(Self.reply(502, (5, 5, 1), "AUTH not available")) }
        guard state == .ready, authenticatedAs == nil else {
            return error(Self.reply(503, (5, 5, 1), authenticatedAs == nil ? "Say EHLO first, and not inside a transaction" : "Already authenticated"))
        }
        guard authOffered else { return error(Self.reply(538, (5, 7, 11), "Encryption required: use STARTTLS first")) }
        let parts = argument.split(separator: " ", maxSplits: 1)
        let initial = parts.count == 2 ? String(parts[1]) : nil
        switch parts.first?.uppercased() {
        case "PLAIN":
            guard let initial else {
                state = .authPlain
                return .reply(SMTPReply(code: 334, lines: [""]))
            }
            return plain(initial)
        case "LOGIN":
            guard let initial else {
                state = .authLoginUser
                return .reply(SMTPReply(code: 334, lines: ["VXNlcm5hbWU6"]))
            }
            return authResponseLoginUser(initial)
        default:
            return error(Self.reply(504, (5, 5, 4), "Unrecognized authentication type (PLAIN and LOGIN are)"))
        }
    }

    /// The delegate's answer about the credentials: 235 authenticates the connection; `credential` is kept
    /// for the checks at each MAIL.
    public mutating func authenticated(_ reply: SMTPReply, credential: String? = nil) -> Action {
        guard case .authenticating(let user) = state else { return .none }
        state = .ready
        if reply.isPositive {
            authenticatedAs = user
            self.credential = credential
            return .reply(reply)
        }
        return error(reply)
    }

    /// A line of an AUTH exchange.
    mutating func authResponse(_ line: String) -> Action {
        let state = self.state
        self.state = .ready
        if line == "*" { return error(Self.reply(501, (5, 0, 0), "Authentication cancelled")) }
        switch state {
        case .authPlain: return plain(line)
        case .authLoginUser: return authResponseLoginUser(line)
        case .authLoginPassword(let user):
            guard let password = Self.base64Text(line) else { return error(Self.reply(501, (5, 5, 2), "Cannot decode the response")) }
            self.state = .authenticating(user)
            return .authenticate(username: user, password: password)
        default: return .none
        }
    }

    mutating func authResponseLoginUser(_ line: String) -> Action {
        guard let user = Self.base64Text(line), !user.isEmpty else { return error(Self.reply(501, (5, 5, 2), "Cannot decode the response")) }
        state = .authLoginPassword(user)
        return .reply(SMTPReply(code: 334, lines: ["UGFzc3dvcmQ6"]))
    }

    /// RFC 4616: `authzid NUL authcid NUL passwd` in base64; the authorization identity, when given, must be
    /// the authentication identity.
    mutating func plain(_ response: String) -> Action {
        guard let text = Self.base64Text(response) else { return error(Self.reply(501, (5, 5, 2), "Cannot decode the response")) }
        let parts = text.split(separator: "\0", omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[1].isEmpty, parts[0].isEmpty || parts[0] == parts[1] else {
            return error(Self.reply(501, (5, 5, 2), "Malformed PLAIN response"))
        }
        state = .authenticating(String(parts[1]))
        return .authenticate(username: String(parts[1]), password: String(parts[2]))
    }

    static func base64Text(_ text: String) -> String? {
        Data(base64Encoded: text.trimmingCharacters(in: .whitespaces)).flatMap { String(data: $0, encoding: .utf8) }
    }
}
