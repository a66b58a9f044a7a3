import Foundation

/// Runs a Python script (`python3 -c`) with arguments and optional standard input; answers its exit
/// status and combined output. The independent implementations the tests check Herald against (PyJWT,
/// dkimpy, …) are reached this way.
public func runPython(_ script: String, _ arguments: [String], input: [UInt8]? = nil) throws -> (Int32, String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", script] + arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    let stdin = Pipe()
    process.standardInput = stdin
    try process.run()
    if let input { try stdin.fileHandleForWriting.write(contentsOf: input) }
    try stdin.fileHandleForWriting.close()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// ``runPython(_:_:input:)`` on a thread of its own, so that a test waiting for Python leaves Swift's
/// cooperative threads free for the servers it talks to in the same process.
public func runPythonDetached(_ script: String, _ arguments: [String], input: [UInt8]? = nil) async throws -> (Int32, String) {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread {
            continuation.resume(with: Result { try runPython(script, arguments, input: input) })
        }
    }
}

/// Python lines for SMTP clients of the tests: `context`, a TLS context that takes the tests' self-signed
/// certificates, and `connect(make)`, which calls `make` until a server that is still starting answers
/// (two minutes at most).
public let pythonSMTPClientPrelude = """
    import smtplib, ssl, sys, time
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    def connect(make):
        deadline = time.time() + 120
        while True:
            try:
                return make()
            except (OSError, smtplib.SMTPServerDisconnected):
                if time.time() > deadline:
                    raise
                time.sleep(0.2)

    """
