import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The `herald` executable this package built, run as a separate process (for what only a real process
/// shows: a crash, a restart). Its output goes to a log file that a failing test can print.
public final class HeraldProcess: @unchecked Sendable {
    let process = Process()
    /// Where its standard output and error go.
    public let logFile: URL

    /// Starts `herald arguments…` with `environment` added to the test's own.
    public init(_ arguments: [String], environment: [String: String]) throws {
        let binary = try Self.binary()
        logFile = FileManager.default.temporaryDirectory.appendingPathComponent("herald-process-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
        let log = try FileHandle(forWritingTo: logFile)
        process.executableURL = binary
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    /// The built executable: next to the test bundle (`swift build --build-tests` builds both).
    static func binary() throws -> URL {
        var candidates: [URL] = []
        if let runner = Bundle.main.executableURL { candidates.append(runner.deletingLastPathComponent().appendingPathComponent("herald")) }
        candidates.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("herald"))
        candidates.append(URL(fileURLWithPath: TestDatabases.repositoryRoot + "/.build/debug/herald"))
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            throw TestSupportError("the herald executable was not found (looked at \(candidates.map(\.path))): build it with `swift build --build-tests`")
        }
        return found
    }

    public var isRunning: Bool { process.isRunning }

    /// What it wrote so far.
    public var output: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    /// SIGKILL: no shutdown of any kind, as when a machine dies.
    public func kill() {
        if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    /// SIGTERM and wait: a graceful stop.
    public func stop() {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }

    deinit {
        if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(at: logFile)
    }
}
