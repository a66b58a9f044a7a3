// Fuzz target dns-message: DNSMessage.decode on any bytes a resolver (or whoever answers on its port) sends.
// Beyond "no crash" (every read is bounds-checked, so reading past the input would trap): a decoded record's
// data matches its type, and a decoded message that encodes decodes again, to the same message when its names
// are plain, and to a fixed point (the same bytes when encoded once more) always.
import HeraldDNS

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDNSMessage(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    let message: DNSMessage
    do {
        message = try DNSMessage.decode(input.bytes)
    } catch {
        return 0
    }
    let records = message.answers + message.authorities + message.additionals
    fuzzCheck(records.count + message.questions.count <= input.bytes.count, "more entries than bytes")
    for record in records {
        switch (record.type, record.data) {
        case (.a, .a(let address)): fuzzCheck(address.count == 4, "A record of \(address.count) bytes")
        case (.aaaa, .aaaa(let address)): fuzzCheck(address.count == 16, "AAAA record of \(address.count) bytes")
        case (.cname, .cname), (.ns, .ns), (.mx, .mx), (.soa, .soa): break
        case (.txt, .txt(let strings)): fuzzCheck(strings.allSatisfy { $0.count <= 255 }, "TXT string over 255 bytes")
        case (let type, .other): fuzzCheck(![.a, .aaaa, .cname, .ns, .mx, .txt, .soa].contains(type), "\(type) decoded as raw data")
        default: fuzzCheck(false, "\(record.type) record with \(record.data)")
        }
    }
    let encoded: [UInt8]
    do {
        encoded = try message.encode()
    } catch {
        return 0 // e.g. a label that grew past 63 bytes when lower-cased or when invalid UTF-8 became U+FFFD
    }
    let again: DNSMessage
    do {
        again = try DNSMessage.decode(encoded)
    } catch {
        fuzzCheck(false, "the encoding of a decoded message does not decode: \(error)")
        return 0
    }
    fuzzCheck((try? again.encode()) == encoded, "encode(decode(encode(m))) differs from encode(m)")
    if allNamesPlain(message) {
        fuzzCheck(again == message, "decode(encode(m)) differs from m:\n\(message)\n\(again)")
    }
    return 0
}

/// Names that survive encoding as they are: ASCII, no empty label (a label's own dots split it into labels
/// when encoded, which keeps the name as text but not a leading, trailing or doubled dot).
private func allNamesPlain(_ message: DNSMessage) -> Bool {
    func plain(_ name: String) -> Bool {
        name.utf8.allSatisfy { $0 < 0x80 } && !name.hasPrefix(".") && !name.hasSuffix(".") && !name.contains("..")
    }
    var names = message.questions.map(\.name)
    for record in message.answers + message.authorities + message.additionals {
        names.append(record.name)
        switch record.data {
        case .cname(let target), .ns(let target): names.append(target)
        case .mx(_, let exchange): names.append(exchange)
        case .soa(let mname, let rname, _, _, _, _, _): names += [mname, rname]
        default: break
        }
    }
    return names.allSatisfy(plain)
}
