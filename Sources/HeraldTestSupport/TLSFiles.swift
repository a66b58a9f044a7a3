import Foundation

/// A throw-away self-signed certificate (P-256) in a temporary directory.
public struct SelfSignedCertificate: Sendable {
    public let directory: String
    public var certificatePath: String { directory + "/cert.pem" }
    public var keyPath: String { directory + "/key.pem" }

    /// Makes one for `commonName`, runs `body` with it and removes the files.
    public static func with<R: Sendable>(commonName: String, _ body: (SelfSignedCertificate) async throws -> R) async throws -> R {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tls-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // Made with the `cryptography` package, which ops/test installs (a fresh Debian has no openssl command).
        let (status, output) = try await runPythonDetached("""
            import datetime, sys
            from cryptography import x509
            from cryptography.hazmat.primitives import hashes, serialization
            from cryptography.hazmat.primitives.asymmetric import ec
            from cryptography.x509.oid import NameOID
            d, name = sys.argv[1], sys.argv[2]
            key = ec.generate_private_key(ec.SECP256R1())
            subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
            now = datetime.datetime.now(datetime.timezone.utc)
            cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
                    .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                    .not_valid_after(now + datetime.timedelta(days=1))
                    .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False).sign(key, hashes.SHA256()))
            open(d + "/key.pem", "wb").write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                               serialization.NoEncryption()))
            open(d + "/cert.pem", "wb").write(cert.public_bytes(serialization.Encoding.PEM))
            """, [directory, commonName])
        guard status == 0 else { throw TestSupportError("could not make a certificate: \(output)") }
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
