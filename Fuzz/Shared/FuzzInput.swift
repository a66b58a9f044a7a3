// Shared by every fuzz target (ops/fuzz compiles it into each): reading the fuzzer's bytes as the choices
// of one run, and the check that turns a broken invariant into a crash libFuzzer reports.

/// The fuzzer's bytes, read front to back: small choices first (settings, chunk sizes), the rest as data.
struct FuzzInput {
    let bytes: [UInt8]
    var position = 0

    init(_ data: UnsafePointer<UInt8>?, _ size: Int) {
        bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    }

    /// The next byte, or 0 past the end (so that a short input still makes a whole run).
    mutating func byte() -> UInt8 {
        guard position < bytes.count else { return 0 }
        defer { position += 1 }
        return bytes[position]
    }

    /// What has not been read.
    var rest: [UInt8] { position < bytes.count ? Array(bytes[position...]) : [] }

    /// Everything up to the next `separator` (which is consumed), or to the end.
    mutating func field(until separator: UInt8) -> [UInt8] {
        let end = bytes[min(position, bytes.count)...].firstIndex(of: separator) ?? bytes.count
        defer { position = min(end + 1, bytes.count) }
        return Array(bytes[min(position, bytes.count)..<end])
    }
}

/// A broken invariant: crash, so that libFuzzer keeps the input (`fatalError`, unlike `assert`, stays in -O builds).
func fuzzCheck(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !condition() { fatalError("fuzz invariant broken: \(message())") }
}
