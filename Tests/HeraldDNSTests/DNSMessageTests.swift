import Foundation
import HeraldDNS
import NIOCore
import Testing

@Suite struct DNSMessageTests {
    /// A response written by hand, byte by byte, as a server sends it: compressed names, a TXT record of
    /// two strings, an MX record whose exchange is a pointer into the question.
    static let handWritten: [UInt8] = [
        0x12, 0x34, 0x81, 0x80, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,
        // question: example.com TXT IN (offset 12)
        7, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 3, 0x63, 0x6f, 0x6d, 0, 0x00, 0x10, 0x00, 0x01,
        // answer 1: pointer to 12, TXT, IN, ttl 300, rdlength 9: "abc" "defg"
        0xC0, 0x0C, 0x00, 0x10, 0x00, 0x01, 0x00, 0x00, 0x01, 0x2C, 0x00, 0x09, 3, 0x61, 0x62, 0x63, 4, 0x64, 0x65, 0x66, 0x67,
        // answer 2: pointer to 12, MX, IN, ttl 60, rdlength 7: pref 10, "mx" + pointer to 12
        0xC0, 0x0C, 0x00, 0x0F, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3C, 0x00, 0x07, 0x00, 0x0A, 2, 0x6d, 0x78, 0xC0, 0x0C,
    ]

    @Test func decodesCompressedNamesMultiStringTXTAndMX() throws {
        let message = try DNSMessage.decode(Self.handWritten)
        #expect(message.id == 0x1234 && message.isResponse && message.recursionAvailable && !message.isTruncated)
        #expect(message.questions == [DNSQuestion(name: "example.com", type: .txt)])
        #expect(message.answers.count == 2)
        #expect(message.answers[0].textValue == "abcdefg")
        #expect(message.answers[0].data == .txt([Array("abc".utf8), Array("defg".utf8)]))
        #expect(message.answers[1].data == .mx(preference: 10, exchange: "mx.example.com"))
        #expect(message.answers[1].ttl == 60)
    }

    @Test func encodesCompressedAndRoundTrips() throws {
        let message = DNSMessage(id: 7, isResponse: true, responseCode: .noError,
                                 questions: [DNSQuestion(name: "Mail.Example.COM.", type: .mx)],
                                 answers: [
                                    DNSResourceRecord(name: "mail.example.com", type: .mx, ttl: 10, data: .mx(preference: 5, exchange: "mx1.mail.example.com")),
                                    DNSResourceRecord(name: "mail.example.com", type: .mx, ttl: 10, data: .mx(preference: 10, exchange: "mx2.example.net")),
                                 ],
                                 authorities: [DNSResourceRecord(name: "example.com", type: .soa, ttl: 300,
                                                                 data: .soa(mname: "ns.example.com", rname: "h.example.com", serial: 1, refresh: 2,
                                                                            retry: 3, expire: 4, minimum: 5))])
        let bytes = try message.encode()
        // The first answer's owner name is a pointer to the question's name at offset 12
        // (header 12 bytes, question name 18, type and class 4).
        #expect(Array(bytes[34..<36]) == [0xC0, 0x0C])
        let decoded = try DNSMessage.decode(bytes)
        #expect(decoded == message)
    }

    @Test func queryCarriesEDNS0() throws {
        let bytes = try DNSMessage.query(id: 99, name: "example.com", type: .txt, udpPayloadSize: 1232).encode()
        let decoded = try DNSMessage.decode(bytes)
        #expect(decoded.recursionDesired && !decoded.isResponse)
        #expect(decoded.additionals.count == 1)
        #expect(decoded.additionals[0].type == .opt && decoded.additionals[0].recordClass == 1232)
    }

    @Test func refusesHostileInput() {
        // Every prefix of a valid message is truncated, never a crash.
        for length in 0..<Self.handWritten.count {
            #expect(throws: DNSMessageError.self) { try DNSMessage.decode(Array(Self.handWritten.prefix(length))) }
        }
        // A pointer to itself (a loop) and a forward pointer.
        var loop: [UInt8] = [0, 1, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 0x0C, 0, 1, 0, 1]
        #expect(throws: DNSMessageError.badPointer) { try DNSMessage.decode(loop) }
        loop[13] = 0x20
        #expect(throws: DNSMessageError.badPointer) { try DNSMessage.decode(loop) }
        // Reserved label type 0b01.
        let reserved: [UInt8] = [0, 1, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0x41, 0, 0, 1, 0, 1]
        #expect(throws: DNSMessageError.badLabel) { try DNSMessage.decode(reserved) }
        // An A record with 3 bytes of data.
        var shortA: [UInt8] = [0, 1, 0x81, 0x80, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 3, 1, 2, 3]
        #expect(throws: DNSMessageError.badRecordData(.a)) { try DNSMessage.decode(shortA) }
        shortA[22] = 4
        #expect(throws: DNSMessageError.truncated) { try DNSMessage.decode(shortA) }
        // Random bytes never crash the decoder.
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let bytes = (0..<Int.random(in: 0..<80, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            _ = try? DNSMessage.decode(bytes)
        }
    }

    @Test func namesAreValidatedWhenEncoding() {
        let longLabel = String(repeating: "a", count: 64) + ".com"
        #expect(throws: DNSMessageError.nameTooLong) { try DNSMessage.query(id: 1, name: longLabel, type: .a).encode() }
        let longName = Array(repeating: String(repeating: "b", count: 60), count: 5).joined(separator: ".")
        #expect(throws: DNSMessageError.nameTooLong) { try DNSMessage.query(id: 1, name: longName, type: .a).encode() }
    }

    @Test func answersDistinguishNXDomainFromNoDataAndFollowCNAMEs() {
        let question = DNSQuestion(name: "www.example.com", type: .txt)
        let nx = DNSAnswer(question: question, response: DNSMessage(id: 1, isResponse: true, responseCode: .nameError, questions: [question]))
        #expect(nx.isNXDomain && !nx.isNoData)
        let soa = DNSResourceRecord(name: "example.com", type: .soa, ttl: 900,
                                    data: .soa(mname: "ns", rname: "h", serial: 1, refresh: 1, retry: 1, expire: 1, minimum: 120))
        let empty = DNSAnswer(question: question, response: DNSMessage(id: 1, isResponse: true, questions: [question], authorities: [soa]))
        #expect(empty.isNoData && !empty.isNXDomain && empty.negativeTTL == 120)
        let chained = DNSAnswer(question: question, response: DNSMessage(id: 1, isResponse: true, questions: [question], answers: [
            DNSResourceRecord(name: "www.example.com", type: .cname, ttl: 60, data: .cname("edge.cdn.net")),
            DNSResourceRecord(name: "edge.cdn.net", type: .txt, ttl: 30, data: .txt([Array("hello".utf8)])),
            DNSResourceRecord(name: "unrelated.net", type: .txt, ttl: 30, data: .txt([Array("spoof".utf8)])),
        ]))
        #expect(chained.texts == ["hello"])
        #expect(chained.aliases == ["edge.cdn.net"])
    }

    @Test func resolverAddressesParse() throws {
        #expect(try DNSServerAddress.parse("127.0.0.1:5353").port == 5353)
        #expect(try DNSServerAddress.parse("10.0.0.2").port == 53)
        #expect(try DNSServerAddress.parse("[::1]:53").protocol == .inet6)
        #expect(try DNSServerAddress.parse("::1").protocol == .inet6)
        #expect(throws: DNSError.self) { try DNSServerAddress.parse("dns.example.com") }
        #expect(throws: DNSError.self) { try DNSServerAddress.parse("127.0.0.1:99999") }
        let conf = """
            # generated
            search example.com
            nameserver fe80::1%eth0
            nameserver 192.0.2.53
            """
        #expect(DNSServerAddress.firstNameserver(inResolvConf: conf) == "[fe80::1]")
        #expect(DNSServerAddress.firstNameserver(inResolvConf: "nameserver 192.0.2.53\n") == "192.0.2.53")
        #expect(DNSServerAddress.firstNameserver(inResolvConf: "options ndots:1\n") == nil)
    }
}

@Suite struct DNSCacheTests {
    final class Clock: @unchecked Sendable {
        var now = Date(timeIntervalSince1970: 1_000_000)
    }

    @Test func honoursTTLsNegativeCachingAndCapacity() {
        let clock = Clock()
        let cache = DNSCache(capacity: 2, maximumTTL: 600, negativeTTL: 30, now: { clock.now })
        let txt = DNSAnswer(name: "a.test", type: .txt, responseCode: .noError,
                            records: [DNSResourceRecord(name: "a.test", type: .txt, ttl: 100, data: .txt([[0x61]]))])
        cache.store(txt)
        clock.now += 40
        #expect(cache.lookup("A.test.", .txt)?.records.first?.ttl == 60)
        clock.now += 61
        #expect(cache.lookup("a.test", .txt) == nil)

        // NXDOMAIN without an SOA: the default negative TTL.
        cache.store(DNSAnswer(name: "gone.test", type: .mx, responseCode: .nameError, records: []))
        clock.now += 29
        #expect(cache.lookup("gone.test", .mx)?.isNXDomain == true)
        clock.now += 2
        #expect(cache.lookup("gone.test", .mx) == nil)

        // SERVFAIL is never cached; a TTL above the cap is capped.
        cache.store(DNSAnswer(name: "bad.test", type: .a, responseCode: .serverFailure, records: []))
        #expect(cache.lookup("bad.test", .a) == nil)
        cache.store(DNSAnswer(name: "long.test", type: .a, responseCode: .noError,
                              records: [DNSResourceRecord(name: "long.test", type: .a, ttl: 86400, data: .a([1, 2, 3, 4]))]))
        clock.now += 601
        #expect(cache.lookup("long.test", .a) == nil)

        // Full: the entry closest to expiry is evicted.
        for (index, name) in ["x.test", "y.test", "z.test"].enumerated() {
            cache.store(DNSAnswer(name: name, type: .a, responseCode: .noError,
                                  records: [DNSResourceRecord(name: name, type: .a, ttl: UInt32(100 + index * 100), data: .a([1, 2, 3, 4]))]))
        }
        #expect(cache.count == 2)
        #expect(cache.lookup("x.test", .a) == nil)
        #expect(cache.lookup("z.test", .a) != nil)
    }
}
