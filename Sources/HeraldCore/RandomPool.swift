import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// System randomness drawn 4 KiB at a time and handed out from a buffer: for the values that must be
/// unpredictable but are drawn on every request or message — UUIDv7 ids, request ids, MIME boundaries — where a system call per
/// draw (`SystemRandomNumberGenerator` makes one per 8 bytes) cost more than the rest of making them.
/// Secrets (keys, AccessKey secrets, passwords' salts) keep drawing from the system directly.
public enum RandomPool {
    private static let pool = Mutex<(bytes: [UInt8], next: Int)>(([], 0))
    #if canImport(Glibc)
    /// The kernel's random source, opened once (Glibc's module does not offer `getrandom`).
    private static let urandom = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
    #endif

    /// ``RandomPool`` as a generator, for the standard library's and ``AccessKeyGenerator``'s random APIs.
    public struct Generator: RandomNumberGenerator {
        public init() {}
        public mutating func next() -> UInt64 { RandomPool.next() }
    }

    /// The next random 64-bit word.
    public static func next() -> UInt64 {
        pool.withLock { pool in
            if pool.next + 8 > pool.bytes.count {
                pool.bytes = systemBytes(4096)
                pool.next = 0
            }
            var word: UInt64 = 0
            for index in pool.next..<pool.next + 8 { word = word << 8 | UInt64(pool.bytes[index]) }
            pool.next += 8
            return word
        }
    }

    /// `count` bytes of system randomness, read at once.
    static func systemBytes(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        #if canImport(Glibc)
        if urandom >= 0 {
            bytes.withUnsafeMutableBytes { buffer in
                while filled < count {
                    let got = read(urandom, buffer.baseAddress! + filled, count - filled)
                    guard got > 0 else { break }
                    filled += got
                }
            }
        }
        #endif
        // Where /dev/urandom is not there (or failed), the standard generator fills the rest.
        var generator = SystemRandomNumberGenerator()
        while filled < count {
            bytes[filled] = UInt8(truncatingIfNeeded: generator.next())
            filled += 1
        }
        return bytes
    }
}
