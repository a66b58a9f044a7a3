import Foundation

/// A test peer run as `python3 script arguments…` that prints `PORT <n>` once it listens and runs until
/// its standard input closes.
struct PeerProcess {
    let process: Process
    let stdin: Pipe
    let port: Int

    init(script: String, arguments: [String], standardError: FileHandle? = nil) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", TestDatabases.repositoryRoot + "/Tests/Peers/" + script] + arguments
        stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        if let standardError { process.standardError = standardError }
        try process.run()
        var line = Data()
        while !line.contains(0x0A) {
            let chunk = stdout.fileHandleForReading.availableData
            guard !chunk.isEmpty else { break }
            line += chunk
        }
        let text = String(decoding: line, as: UTF8.self)
        guard text.hasPrefix("PORT "), let port = Int(text.dropFirst(5).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            process.terminate()
            throw TestSupportError("the test peer \(script) did not start: \(text)")
        }
        self.port = port
    }

    func stop() {
        try? stdin.fileHandleForWriting.close()
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }
}
