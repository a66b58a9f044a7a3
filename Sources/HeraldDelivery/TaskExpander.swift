import Foundation
import HeraldCore
import HeraldStore
import Logging
import ServiceLifecycle

/// Expands batch tasks into messages, a chunk per transaction, until each is done.
public struct TaskExpander: Sendable {
    public var store: BatchStore
    /// Builds the unsubscribe link and fields of a message.
    public var unsubscribeLinks: UnsubscribeLinks
    public var chunk = 1_000
    public var lease: Duration = .seconds(300)
    public var now: @Sendable () -> Date

    public init(store: BatchStore, unsubscribeLinks: UnsubscribeLinks, now: @escaping @Sendable () -> Date = Date.init) {
        self.store = store
        self.unsubscribeLinks = unsubscribeLinks
        self.now = now
    }

    /// Expands one due task to the end; answers whether there was one.
    public func runOnce() async throws -> Bool {
        guard let task = try await store.claim(now: now(), lease: lease) else { return false }
        while try await !store.expandChunk(task, chunk: chunk, now: now(), unsubscribeLinks: unsubscribeLinks) {}
        return true
    }
}

/// Runs the expander until shutdown.
public struct TaskExpansionService: Service {
    let expander: TaskExpander
    let logger: Logger

    public init(expander: TaskExpander, logger: Logger) {
        self.expander = expander
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            var worked = false
            do {
                worked = try await expander.runOnce()
            } catch {
                logger.error("batch expansion failed", metadata: ["error": "\(error)"])
            }
            if !worked { try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) } }
        }
    }
}
