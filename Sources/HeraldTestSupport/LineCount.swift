import Foundation

/// Lines in a file (newline characters counted with memchr, nothing decoded): how many records a test
/// peer has written so far. 0 when the file is missing.
func countLines(_ file: URL) -> Int {
    guard let data = try? Data(contentsOf: file) else { return 0 }
    return data.withUnsafeBytes { bytes in
        guard var cursor = bytes.baseAddress else { return 0 }
        let end = cursor + bytes.count
        var lines = 0
        while cursor < end, let newline = memchr(cursor, 0x0A, end - cursor) {
            lines += 1
            cursor = UnsafeRawPointer(newline) + 1
        }
        return lines
    }
}
