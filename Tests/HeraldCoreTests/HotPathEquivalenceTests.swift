import Foundation
import Testing
@testable import HeraldCore

/// The accept path's hand-written fast paths give what the Foundation calls they replace give.
@Suite struct HotPathEquivalenceTests {
    @Test func theQuotaDayIsTheCalendarDay() {
        let zones = ["UTC", "Asia/Shanghai", "America/Los_Angeles", "Pacific/Kiritimati", "Pacific/Pago_Pago", "Europe/Berlin", "Asia/Kolkata"]
            .compactMap(TimeZone.init(identifier:))
        var generator = SystemRandomNumberGenerator()
        var dates = (0..<2_000).map { _ in Date(timeIntervalSince1970: Double.random(in: -2_000_000_000...5_000_000_000, using: &generator)) }
        dates += [Date(timeIntervalSince1970: 0), Date(timeIntervalSince1970: -1), Date(timeIntervalSince1970: 951_782_400), // 2000-02-29
                  Date(timeIntervalSince1970: 1_711_846_799), Date(timeIntervalSince1970: 1_711_846_800)] // around a DST change
        for zone in zones {
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = zone
            for date in dates {
                let parts = calendar.dateComponents([.year, .month, .day], from: date)
                let expected = String(format: "%04d-%02d-%02d", parts.year ?? 0, parts.month ?? 0, parts.day ?? 0)
                let (day, monthStart) = SendRules.quotaDay(date, timeZone: zone)
                #expect(day == expected, "\(date) in \(zone.identifier)")
                #expect(monthStart == String(expected.prefix(8)) + "01")
            }
        }
    }

    @Test func addressesAndDomainsTrimAsBefore() throws {
        for text in ["  Ann@Example.COM\t", "ann@example.com", "\u{00A0}ann@example.com\u{2003}"] {
            #expect(try MailAddress(text).description == "ann@example.com")
        }
        #expect(try SendingDomain.normalize(" Mail.Example.com. ") == "mail.example.com")
        for bad in ["example", "-a.example.com", "a-.example.com", "a_b.example.com", "example.123", "exämple.com", "a..b.com", ""] {
            #expect(throws: HeraldError.self) { try SendingDomain.normalize(bad) }
        }
        #expect(try SendingDomain.normalize("_spf.example.com", allowUnderscore: true) == "_spf.example.com")
    }

    @Test func randomIdentifiersKeepTheirShape() {
        let alphabet = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
        let strings = (0..<500).map { _ in AccessKeyGenerator.randomString(count: 30) }
        #expect(strings.allSatisfy { $0.count == 30 && $0.allSatisfy(alphabet.contains) })
        #expect(Set(strings).count == strings.count)
        // Every character of the alphabet turns up (a bias or a short alphabet would show).
        #expect(Set(strings.joined()) == alphabet)
        let now = Date()
        let ids = (0..<1_000).map { _ in UUIDv7.make(at: now) }
        #expect(Set(ids).count == ids.count)
        #expect(ids.allSatisfy { $0.uuid.6 >> 4 == 7 && $0.uuid.8 >> 6 == 2 })
        // Their text, made by hand, is Foundation's in lower case.
        for id in ids.prefix(200) + [UUID(), UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)),
                                     UUID(uuid: (255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255))] {
            #expect(id.lowercasedString == id.uuidString.lowercased())
        }
        // The first 48 bits are the time in milliseconds.
        let millis = UInt64(now.timeIntervalSince1970 * 1000)
        let stamp = (0..<6).map { UInt8(truncatingIfNeeded: millis >> (40 - 8 * UInt64($0))) }
        #expect(ids.allSatisfy { id in withUnsafeBytes(of: id.uuid) { Array($0.prefix(6)) } == stamp })
        // The pool's words stay distinct across its refills (512 words each), and every bit varies.
        let words = (0..<2_000).map { _ in RandomPool.next() }
        #expect(Set(words).count == words.count)
        #expect(words.reduce(0, |) == .max && words.reduce(.max, &) == 0)
    }
}
