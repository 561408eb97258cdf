import KVEngine
import Synchronization

/// A per-shard consistent, read-only view of a ``ShardedStore``; see
/// ``ShardedStore/snapshot()``.
///
/// Holds one engine ``Snapshot`` per shard and the slot table in force when it was taken, so
/// reads through it route as the store did then, even after a reshard. Released when freed
/// or by ``release()``.
public final class StoreSnapshot: Sendable {
    let routing: Routing
    /// The engine snapshot of each shard, by shard id.
    let snapshots: [Snapshot]
    private let released = Atomic<Bool>(false)

    init(routing: Routing, snapshots: [Snapshot]) {
        self.routing = routing
        self.snapshots = snapshots
        for shard in routing.shards { shard.readers.add(1, ordering: .relaxed) }
    }

    /// The number of shards the snapshot reads.
    public var shardCount: Int { routing.shards.count }

    /// The sequence number each shard is pinned at, by shard id.
    public var sequences: [UInt64] { snapshots.map(\.sequence) }

    /// Releases the snapshot early. Do not read through it afterwards.
    public func release() {
        if released.exchange(true, ordering: .acquiringAndReleasing) { return }
        for s in snapshots { s.release() }
        for shard in routing.shards {
            shard.readers.subtract(1, ordering: .releasing)
            shard.events.signal()
        }
    }

    deinit { release() }
}
