import KVBase
import KVEngine

/// One shard as index work reads and writes it: its id (its position in the slot table's
/// shard list), its directory (for error messages) and its engine.
package struct IndexShard: Sendable {
    package let id: Int
    package let path: String
    package let db: Database

    package init(id: Int, path: String, db: Database) {
        self.id = id
        self.path = path
        self.db = db
    }
}

/// A slot table and the shards it routes to: `owners[slot]` is the id of the shard owning
/// `slot`, and `shards[i].id == i`. Index work skips records a shard holds for slots it does
/// not own (a reshard's copies).
package struct IndexLayout: Sendable {
    package let owners: [UInt16]
    package let shards: [IndexShard]

    package init(owners: [UInt16], shards: [IndexShard]) {
        self.owners = owners
        self.shards = shards
    }
}

/// A store snapshot as index reads use it: one engine snapshot per shard (by shard id) and
/// the layout in force when it was taken. Call `release` when done.
package struct IndexSnapshot: Sendable {
    package let layout: IndexLayout
    package let snapshots: [Snapshot]
    package let release: @Sendable () -> Void

    package init(layout: IndexLayout, snapshots: [Snapshot], release: @escaping @Sendable () -> Void) {
        self.layout = layout
        self.snapshots = snapshots
        self.release = release
    }
}

/// What index maintenance, queries and back-fills need of the store that holds the indexes:
/// its shards, its key locks, and its lifecycle. Implemented by `ShardedStore`.
///
/// Lock order: the store's mutex before any index mutex. ``ifOpen(_:)`` and
/// ``excludingReshard(_:_:)`` run their bodies under the store's mutex, and the store calls
/// the index types' reshard checks under it; index types never call the host while holding
/// a mutex of their own.
package protocol IndexHost: AnyObject, Sendable {
    /// The store directory (error messages).
    var path: String { get }
    /// The store clock, milliseconds since the Unix epoch: rows expiring at or before it are
    /// expired.
    var now: Int64 { get }
    /// The layout in force; throws ``KVError/closed`` once the store is closing.
    func indexLayout() throws(KVError) -> IndexLayout
    /// The layout in force, even while the store is closing (opening, statistics at close).
    func lastIndexLayout() -> IndexLayout
    /// A snapshot of every shard under one layout (see `ShardedStore.snapshot()`).
    func indexSnapshot() -> IndexSnapshot
    /// Runs `body` holding the write locks of the keys of `slots`: no row write to those
    /// keys runs meanwhile.
    func withKeyLocks<R, E: Error>(slots: [Int], _ body: () throws(E) -> R) throws(E) -> R
    /// Runs `body` holding every key lock: no row write is in flight, and every write that
    /// read the index catalog before this call has committed.
    func withAllKeyLocks(_ body: () -> Void)
    /// Runs `body` under the store's mutex unless the store is closing; nil when it is.
    func ifOpen<R>(_ body: () -> R) -> R?
    /// Runs `body` with the layout in force, under the store's mutex, when the store is open
    /// and no reshard (or its cleanup) runs; no reshard can start while `body` runs.
    ///
    /// - Throws: ``KVError/closed``; ``KVError/invalidState(_:)`` saying the store is
    ///   resharding and that `verb` of the index must wait for the end of the reshard.
    func excludingReshard<R>(_ verb: String, _ body: (IndexLayout) throws(KVError) -> R) throws(KVError) -> R
    /// Whether background index work must stop now: the store is closing or was halted.
    var isStopping: Bool { get }
    /// Halts the store as a crash would: no further I/O (crash-test hooks).
    func halt()
}
