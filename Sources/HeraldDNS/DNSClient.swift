import Foundation
import Logging
import NIOCore
import NIOPosix

/// Why a lookup failed (as opposed to answering "no such record", which is a ``DNSAnswer``).
public enum DNSError: Error, Hashable, Sendable, CustomStringConvertible {
    /// No answer within the timeout, after every attempt.
    case timeout(name: String, type: DNSRecordType)
    /// The server answered SERVFAIL, REFUSED or another error code.
    case serverFailure(name: String, type: DNSRecordType, code: DNSResponseCode)
    /// The answer could not be parsed or did not match the question.
    case malformedResponse(String)
    /// The name cannot be asked (empty label, too long).
    case invalidName(String)
    /// The server address could not be used.
    case unreachable(String)

    public var description: String {
        switch self {
        case .timeout(let name, let type): "DNS timeout for \(name) \(type)"
        case .serverFailure(let name, let type, let code): "DNS \(code) for \(name) \(type)"
        case .malformedResponse(let reason): "malformed DNS response: \(reason)"
        case .invalidName(let name): "invalid DNS name \(name)"
        case .unreachable(let reason): "DNS server unreachable: \(reason)"
        }
    }
}

/// A stub resolver for one recursive server: UDP with EDNS0, TCP when the answer is truncated, a timeout
/// and retries per query, a fresh source port and random id per attempt, and an optional TTL cache.
/// Delivery asks it for MX/A/AAAA; domain verification for TXT and CNAME.
public struct DNSClient: Sendable {
    /// Where queries go.
    public let server: SocketAddress
    /// Per attempt.
    public let timeout: Duration
    /// UDP attempts before giving up (TCP, after truncation, is tried once).
    public let attempts: Int
    /// Answers are kept here when given.
    public let cache: DNSCache?
    let group: any EventLoopGroup
    let logger: Logger

    /// A client for `server` (see ``DNSServerAddress``).
    public init(server: SocketAddress, timeout: Duration = .seconds(2), attempts: Int = 3, cache: DNSCache? = DNSCache(),
                group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger = Logger(label: "herald.dns")) {
        self.server = server
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.cache = cache
        self.group = group
        self.logger = logger
    }

    /// Looks up `type` records of `name`. NXDOMAIN and "no data" are answers; SERVFAIL, REFUSED and
    /// timeouts throw, so a caller never mistakes "could not check" for "not published".
    /// `useCache: false` asks the server even when a cached answer exists (domain verification, where the
    /// tenant has just published a record), and still refreshes the cache.
    public func query(_ name: String, _ type: DNSRecordType, useCache: Bool = true) async throws -> DNSAnswer {
        let name = DNSName.normalize(name)
        guard !name.isEmpty, name.utf8.count <= 253, !name.split(separator: ".", omittingEmptySubsequences: false).contains(where: { $0.isEmpty || $0.utf8.count > 63 }) else {
            throw DNSError.invalidName(name)
        }
        if useCache, let cached = cache?.lookup(name, type) { return cached }
        let question = DNSQuestion(name: name, type: type)
        var response: DNSMessage?
        for attempt in 1...attempts {
            do {
                response = try await exchangeUDP(question)
                break
            } catch DNSError.timeout(_, _) {
                logger.debug("DNS timeout", metadata: ["name": "\(name)", "type": "\(type)", "attempt": "\(attempt)"])
            }
        }
        guard var message = response else { throw DNSError.timeout(name: name, type: type) }
        if message.isTruncated {
            message = try await exchangeTCP(question)
        }
        guard message.responseCode == .noError || message.responseCode == .nameError else {
            throw DNSError.serverFailure(name: name, type: type, code: message.responseCode)
        }
        let answer = DNSAnswer(question: question, response: message)
        cache?.store(answer)
        return answer
    }

    /// TXT values of `name` (empty when there are none or the name does not exist).
    public func txt(_ name: String) async throws -> [String] { try await query(name, .txt).texts }

    /// Mail exchangers of `domain`, by preference.
    public func mx(_ domain: String) async throws -> [(preference: UInt16, host: String)] { try await query(domain, .mx).mailExchangers }

    // MARK: Transports

    private func makeQuery(_ question: DNSQuestion) throws -> (UInt16, [UInt8]) {
        let id = UInt16.random(in: 0...UInt16.max)
        do {
            return (id, try DNSMessage.query(id: id, name: question.name, type: question.type).encode())
        } catch {
            throw DNSError.invalidName(question.name)
        }
    }

    /// Checks that `bytes` answer `question` with `id`; nil for a stray datagram (ignored, keep waiting).
    private func matching(_ bytes: [UInt8], id: UInt16, question: DNSQuestion) throws -> DNSMessage? {
        guard let message = try? DNSMessage.decode(bytes) else { return nil }
        guard message.id == id, message.isResponse else { return nil }
        guard message.questions.first.map({ $0.name == question.name && $0.type == question.type }) ?? message.isTruncated else {
            return nil
        }
        return message
    }

    private func exchangeUDP(_ question: DNSQuestion) async throws -> DNSMessage {
        let (id, query) = try makeQuery(question)
        let bindHost = server.protocol == .inet6 ? "::" : "0.0.0.0"
        let server = self.server
        let channel = try await DatagramBootstrap(group: group).bind(host: bindHost, port: 0) { channel in
            channel.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>(wrappingChannelSynchronously: channel)
            }
        }
        return try await withTimeout(question) {
            try await channel.executeThenClose { inbound, outbound in
                try await outbound.write(AddressedEnvelope(remoteAddress: server, data: ByteBuffer(bytes: query)))
                for try await envelope in inbound where envelope.remoteAddress == server {
                    if let message = try matching(Array(buffer: envelope.data), id: id, question: question) { return message }
                }
                throw DNSError.timeout(name: question.name, type: question.type)
            }
        }
    }

    private func exchangeTCP(_ question: DNSQuestion) async throws -> DNSMessage {
        let (id, query) = try makeQuery(question)
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(.nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000))
                .connect(to: server) { channel in
                    channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
                }
        } catch {
            throw DNSError.unreachable("\(server): \(error)")
        }
        return try await withTimeout(question) {
            try await channel.executeThenClose { inbound, outbound in
                var framed = ByteBuffer()
                framed.writeInteger(UInt16(query.count))
                framed.writeBytes(query)
                try await outbound.write(framed)
                var received = ByteBuffer()
                for try await chunk in inbound {
                    var chunk = chunk
                    received.writeBuffer(&chunk)
                    guard let length = received.getInteger(at: received.readerIndex, as: UInt16.self),
                          received.readableBytes >= 2 + Int(length) else { continue }
                    let bytes = received.getBytes(at: received.readerIndex + 2, length: Int(length)) ?? []
                    guard let message = try matching(bytes, id: id, question: question) else {
                        throw DNSError.malformedResponse("the TCP answer does not match the question")
                    }
                    return message
                }
                throw DNSError.malformedResponse("the server closed the TCP connection before answering")
            }
        }
    }

    private func withTimeout<R: Sendable>(_ question: DNSQuestion, _ body: @escaping @Sendable () async throws -> R) async throws -> R {
        try await withThrowingTaskGroup(of: R.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw DNSError.timeout(name: question.name, type: question.type)
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }
}

/// Where the resolver is: `HERALD_DNS_SERVER` (`host`, `host:port`, `[v6]:port`), else the first
/// `nameserver` of /etc/resolv.conf, else 127.0.0.1:53.
public enum DNSServerAddress {
    /// Parses `host`, `host:port`, `v6` or `[v6]:port` into a socket address (numeric hosts only).
    public static func parse(_ text: String) throws -> SocketAddress {
        let text = text.trimmingCharacters(in: .whitespaces)
        var host = text
        var port = 53
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw DNSError.unreachable("bad server address \(text)") }
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            if rest.hasPrefix(":") {
                guard let value = Int(rest.dropFirst()), (1...65535).contains(value) else { throw DNSError.unreachable("bad port in \(text)") }
                port = value
            } else if !rest.isEmpty {
                throw DNSError.unreachable("bad server address \(text)")
            }
        } else if text.filter({ $0 == ":" }).count == 1, let colon = text.firstIndex(of: ":") {
            host = String(text[..<colon])
            guard let value = Int(text[text.index(after: colon)...]), (1...65535).contains(value) else { throw DNSError.unreachable("bad port in \(text)") }
            port = value
        }
        do {
            return try SocketAddress(ipAddress: host, port: port)
        } catch {
            throw DNSError.unreachable("\(host) is not an IP address")
        }
    }

    /// The first usable `nameserver` line of a resolv.conf text.
    public static func firstNameserver(inResolvConf text: String) -> String? {
        for line in text.split(whereSeparator: \.isNewline) {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 2, fields[0] == "nameserver" else { continue }
            // Drop a zone index (fe80::1%eth0): the socket address cannot carry it here.
            let address = String(fields[1].split(separator: "%").first ?? fields[1])
            if (try? parse(address.contains(":") ? "[\(address)]" : address)) != nil { return address.contains(":") ? "[\(address)]" : address }
        }
        return nil
    }

    /// The configured server: `configured` when given, else resolv.conf's first nameserver, else 127.0.0.1.
    public static func resolve(configured: String?, resolvConfPath: String = "/etc/resolv.conf") throws -> SocketAddress {
        if let configured, !configured.isEmpty { return try parse(configured) }
        if let text = try? String(contentsOfFile: resolvConfPath, encoding: .utf8), let first = firstNameserver(inResolvConf: text) {
            return try parse(first)
        }
        return try parse("127.0.0.1")
    }
}
