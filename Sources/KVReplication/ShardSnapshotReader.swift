import KVBase
import KVEngine
import KVLayout
import KVStore
import Synchronization

/// One leader shard pinned at one sequence number, read in key order for a follower's full
/// sync: the records (engine key, engine value) as the shard's engine holds them.
public final class ShardSnapshotReader: Sendable {
    /// The sequence number the snapshot shows: the follower continues from the next one.
    public let sequence: UInt64
    private let snapshot: Snapshot
    private let db: Database
    private struct Cursor: ~Copyable {
        var iterator: DBIterator?
        var done = false
    }
    private let cursor = Mutex(Cursor())
    /// When set, only rows (``EngineKey/Kind/row``) of the slots marked true are read.
    private let slots: [Bool]?

    /// Pins shard `shard` (by id, among the shards owning slots) of `store`.
    /// - Parameter slots: nil for every record; else a table of 16,384 flags: only user rows
    ///   of the flagged slots are read (a cluster slot move's snapshot).
    /// - Throws: ``KVError/invalidArgument(_:)`` when there is no such shard; ``KVError/closed``.
    public init(store: ShardedStore, shard: Int, slots: [Bool]? = nil) throws(KVError) {
        self.slots = slots
        let routing = try store.currentRouting()
        guard shard >= 0 && shard < routing.shards.count else { throw .invalidArgument("no shard \(shard)") }
        db = routing.shards[shard].db
        snapshot = db.snapshot()
        sequence = snapshot.sequence
    }

    /// The next records, about `maxBytes` of them; empty when the snapshot is exhausted.
    /// Calls are serialized.
    public func next(maxBytes: Int) throws(KVError) -> [(key: [UInt8], value: [UInt8])] {
        try cursor.withLock { (c) throws(KVError) -> [(key: [UInt8], value: [UInt8])] in
            if c.done { return [] }
            if c.iterator == nil {
                let it = try db.makeIterator(snapshot: snapshot)
                try it.seekToFirst()
                c.iterator = it
            }
            let it = c.iterator!
            var out: [(key: [UInt8], value: [UInt8])] = []
            var bytes = 0
            while it.isValid && bytes < maxBytes {
                if let slots {
                    let k = it.keyView
                    // Rows and collection elements: the receiver makes its own index and
                    // expiry entries.
                    let kind = EngineKey.kind(k)
                    guard kind == .row || kind == .reserved(EngineKey.elementTag), let slot = EngineKey.slot(of: k), slots[slot] else {
                        try it.next()
                        continue
                    }
                }
                let k = Array(it.keyView), v = Array(it.valueView)
                bytes += k.count + v.count + 8
                out.append((k, v))
                try it.next()
            }
            if !it.isValid {
                c.done = true
                c.iterator = nil
            }
            return out
        }
    }

    /// Releases the snapshot (also done when the reader is freed); releasing twice is harmless.
    public func release() {
        snapshot.release()
    }

    deinit { snapshot.release() }
}
