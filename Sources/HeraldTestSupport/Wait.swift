import Foundation

/// Waits until `done` answers true, checking every 50 ms; after `seconds` it throws, which fails the test.
public func waitUntil(_ what: String, seconds: Double = 20, _ done: () async throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(seconds)
    while try await !done() {
        guard Date() < deadline else { throw TestSupportError("timed out waiting for \(what)") }
        try await Task.sleep(for: .milliseconds(50))
    }
}
