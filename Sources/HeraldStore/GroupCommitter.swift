/// Commits items as they come, a group at a time (group commit): while one commit runs, the next items
/// gather, and the next commit takes them all. So an outcome is written a few milliseconds after it is
/// known, not at the end of its batch, and a burst of outcomes costs one transaction, not one each.
///
/// The delivery worker and the webhook dispatcher both record attempt outcomes this way. `commit` is
/// theirs (a store call, and what to do around it); this type only decides when it runs and with what.
///
/// - With a `key`, the first item of each key is the one that counts: later items with a key already
///   seen (pending or committed) are dropped. Without one, every item is committed.
/// - A commit that throws does not stop the next ones; ``finish()`` rethrows the last failure.
public actor GroupCommitter<Item: Sendable, Key: Hashable & Sendable, Failure: Error> {
    /// Writes one group of items (in the order they were added).
    public typealias Commit = @Sendable ([Item]) async throws(Failure) -> Void

    let commit: Commit
    let key: (@Sendable (Item) -> Key)?
    private var pending: [Item] = []
    private var seen = Set<Key>()
    private var committing: Task<Void, Never>?
    private var failure: Failure?
    /// Commits run so far (tests and metrics).
    public private(set) var commits = 0

    /// A committer in which the first item of each `key` wins.
    public init(key: @escaping @Sendable (Item) -> Key, commit: @escaping Commit) {
        self.init(keyedBy: key, commit: commit)
    }

    private init(keyedBy key: (@Sendable (Item) -> Key)?, commit: @escaping Commit) {
        self.key = key
        self.commit = commit
    }

    /// Queues items for the next commit, and starts one if none is running.
    public func add(_ items: some Sequence<Item>) {
        if let key {
            for item in items where seen.insert(key(item)).inserted { pending.append(item) }
        } else {
            pending.append(contentsOf: items)
        }
        if committing == nil, !pending.isEmpty { committing = Task { await self.commitPending() } }
    }

    /// Queues one item for the next commit.
    public func add(_ item: Item) {
        add(CollectionOfOne(item))
    }

    /// Whether an item with this key was added (committed or still pending).
    public func hasSeen(_ key: Key) -> Bool {
        seen.contains(key)
    }

    /// The keys among `keys` that no item was added for yet.
    public func unseen(among keys: some Sequence<Key>) -> [Key] {
        keys.filter { !seen.contains($0) }
    }

    private func commitPending() async {
        while !pending.isEmpty {
            let group = pending
            pending = []
            commits += 1
            do throws(Failure) {
                try await commit(group)
            } catch {
                failure = error
            }
        }
        committing = nil
    }

    /// Waits until everything added so far is committed; throws the last failed commit's error.
    public func finish() async throws(Failure) {
        while let committing { await committing.value }
        if let failure { throw failure }
    }
}

extension GroupCommitter where Key == Never {
    /// A committer that commits every item added.
    public init(commit: @escaping Commit) {
        self.init(keyedBy: nil, commit: commit)
    }
}
