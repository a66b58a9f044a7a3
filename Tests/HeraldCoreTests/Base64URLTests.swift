import Foundation
import HeraldCore
import Testing

@Suite struct Base64URLTests {
    @Test func roundTripsAndMatchesFoundation() {
        var generator = SystemRandomNumberGenerator()
        for length in 0..<70 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let encoded = Base64URL.encode(bytes)
            let foundation = Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
                .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
            #expect(encoded == foundation)
            #expect(Base64URL.decode(encoded) == bytes)
        }
    }

    @Test func refusesWhatIsNotStrictBase64URL() {
        for bad in ["a", "ab=", "a+b/", "ab c", "abc=", "ab\u{e9}c", "AB"] {  // "AB": stray bits in the last character
            #expect(Base64URL.decode(bad) == nil, "\(bad)")
        }
        #expect(Base64URL.decode("AA") == [0])
        #expect(Base64URL.decode("") == [])
    }
}
