import Foundation

/// A throw-away self-signed certificate (P-256, made by the openssl command) in a temporary directory.
public struct SelfSignedCertificate: Sendable {
    public let directory: String
    public var certificatePath: String { directory + "/cert.pem" }
    public var keyPath: String { directory + "/key.pem" }

    /// Makes one for `commonName`, runs `body` with it and removes the files.
    public static func with<R: Sendable>(commonName: String, _ body: (SelfSignedCertificate) async throws -> R) async throws -> R {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tls-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (status, output) = try await runPythonDetached("""
            import subprocess, sys
            d, name = sys.argv[1], sys.argv[2]
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
                            "-subj", "/CN=" + name, "-keyout", d + "/key.pem", "-out", d + "/cert.pem"], check=True, capture_output=True)
            """, [directory, commonName])
        guard status == 0 else { throw TestSupportError("openssl could not make a certificate: \(output)") }
        return try await body(SelfSignedCertificate(directory: directory))
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago (for a child process to listen on).
public func freeLocalPort() async throws -> Int {
    let (status, output) = try await runPythonDetached("""
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])
        """, [])
    guard status == 0, let port = Int(output.trimmingCharacters(in: .whitespacesAndNewlines)) else { throw TestSupportError("no free port: \(output)") }
    return port
}
