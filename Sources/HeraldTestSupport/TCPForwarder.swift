import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A TCP forwarder on 127.0.0.1 in front of `host:port` (Tests/Peers/tcp_forward.py): killing it makes the
/// server behind it vanish for whoever connected through it, as a failed database host does.
public final class TCPForwarder: @unchecked Sendable {
    let peer: PeerProcess
    /// Where it listens.
    public var port: Int { peer.port }

    public init(to host: String, port: Int) throws {
        peer = try PeerProcess(script: "tcp_forward.py", arguments: [host, String(port)])
    }

    /// SIGKILL: every connection through it breaks at once and no new one is taken.
    public func kill() {
        if peer.process.isRunning { Glibc.kill(peer.process.processIdentifier, SIGKILL) }
        peer.process.waitUntilExit()
    }

    deinit { peer.stop() }
}
