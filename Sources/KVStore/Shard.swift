import KVEngine
import Synchronization

/// One shard of a store: a ``Database`` in its own sub-directory.
final class Shard: Sendable {
    /// The shard id (its position in the descriptor's directory list).
    let id: Int
    /// The shard's database directory.
    let path: String
    let db: Database
    /// Live store snapshots (and scans) that read this shard. A removed shard's directory is
    /// deleted only once none remain.
    let readers = Atomic<Int>(0)

    init(id: Int, path: String, db: Database) {
        self.id = id
        self.path = path
        self.db = db
    }
}

/// An immutable slot → shard table with the shards it routes to. Replaced whole (under the
/// store mutex) when a reshard switches ownership; readers hold the instance they started with.
///
/// Invariant: `owners[slot] < shards.count` for every slot, and `shards[i].id == i`.
final class Routing: Sendable {
    /// Incremented on every switch; a point read that sees it change retries.
    let generation: UInt64
    let owners: [UInt16]
    let shards: [Shard]

    init(generation: UInt64, owners: [UInt16], shards: [Shard]) {
        self.generation = generation
        self.owners = owners
        self.shards = shards
    }

    /// The shard owning `slot`.
    @inline(__always)
    func shard(forSlot slot: Int) -> Shard {
        shards[Int(owners[slot])]
    }
}
