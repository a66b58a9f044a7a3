import Testing
@testable import HeraldCore

/// `constantTimeEquals` compares whole inputs: lengths at full width, every byte of the longer one.
@Suite struct ConstantTimeTests {
    @Test func lengthsThatDifferByMultiplesOf256AreNotEqual() {
        // A length folded into one byte made these equal: 0 ^ 256 truncates to 0 and the padding bytes are 0.
        #expect(!constantTimeEquals([UInt8](), [UInt8](repeating: 0, count: 256)))
        #expect(!constantTimeEquals([UInt8](repeating: 0, count: 256), [UInt8]()))
        #expect(!constantTimeEquals([UInt8]([7]), [7] + [UInt8](repeating: 0, count: 256)))
        #expect(!constantTimeEquals([UInt8](repeating: 0, count: 512), [UInt8](repeating: 0, count: 1024)))
    }

    @Test func equalPrefixesOfDifferentLengthsAreNotEqual() {
        let secret = Array("0123456789abcdef0123456789abcdef".utf8)
        for length in [0, 1, 16, 31] {
            #expect(!constantTimeEquals(secret.prefix(length), secret), "prefix of \(length)")
            #expect(!constantTimeEquals(secret, secret.prefix(length)), "prefix of \(length), other way round")
        }
        #expect(!constantTimeEquals(secret, secret + [0]))
        #expect(!constantTimeEquals(Array("abc".utf8), Array("abcd".utf8)))
    }

    @Test func emptyInputs() {
        #expect(constantTimeEquals([UInt8](), [UInt8]()))
        #expect(!constantTimeEquals([UInt8](), [UInt8]([0])))
        #expect(!constantTimeEquals([UInt8]([0]), [UInt8]()))
    }

    @Test func contentDifferencesAnywhereAndSlices() {
        let a = Array("correct horse battery staple".utf8)
        #expect(constantTimeEquals(a, a))
        for index in a.indices {
            var b = a
            b[index] ^= 0x01
            #expect(!constantTimeEquals(a, b), "difference at \(index)")
        }
        // Slices whose indices do not start at 0 compare by content.
        let framed = [0xFF] + a + [0xFF]
        #expect(constantTimeEquals(framed[1..<(framed.count - 1)], a))
        #expect(!constantTimeEquals(framed[1..<(framed.count - 2)], a))
    }
}
