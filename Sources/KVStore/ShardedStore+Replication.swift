import KVBase
import KVEngine
import KVIndex
import KVLayout

/// The slot table and shard count a follower mirrors.
public struct ReplicationLayout: Sendable, Equatable {
    /// Shards owning slots on the leader.
    public var shardCount: Int
    /// The leader's slot → shard table.
    public var owners: [UInt16]
    /// The leader's descriptor generation: it changes with every reshard.
    public var generation: UInt64
}

/// What replication (module KVReplication) needs of the store: the layout and sequences a
/// leader publishes, the shard engines it reads snapshots of, the routed write path a
/// follower applies through, and the index metadata reload after replicated metadata. Rows,
/// routing and resharding stay the store's; the backlog, frames, positions and apply logic
/// are KVReplication's.
extension ShardedStore {
    /// The layout followers must mirror.
    public var replicationLayout: ReplicationLayout {
        state.withLock { s in
            ReplicationLayout(shardCount: s.routing.shards.count, owners: s.routing.owners, generation: s.descriptor.generation)
        }
    }

    /// The last committed sequence number of every shard owning slots, by shard id.
    public var shardSequences: [UInt64] {
        state.withLock { $0.routing.shards.map(\.db) }.map(\.lastSequence)
    }

    /// The last committed sequence of every open shard (owning slots or not), by shard id.
    package var openShardSequences: [(shard: Int, sequence: UInt64)] {
        state.withLock { $0.shards.compactMap { $0 } }.map { (shard: $0.id, sequence: $0.db.lastSequence) }
    }

    /// Applies `batch` through the store's write path (reshard gate, routing, copy-phase
    /// bookkeeping).
    package func applyRecords(_ batch: RoutedBatch, durability: Durability?) throws(KVError) {
        guard !batch.isEmpty else { return }
        try apply(batch, durability: durability)
    }

    /// Whether `key` is a shard-local index metadata record (replicated to every shard when the
    /// follower's shard count differs from the leader's).
    package static func isIndexMetadata(_ key: UnsafeRawBufferPointer) -> Bool {
        key.starts(with: IndexMetadata.namespace)
    }

    /// Re-reads shard-local metadata that arrived through replication (index definitions).
    package func reloadReplicatedMetadata() throws(KVError) {
        try loadIndexes(lenient: followingLeader.load(ordering: .relaxed))
    }

    /// Switches the store between following a leader and taking writes of its own.
    ///
    /// Following, index metadata is loaded as replication brings it (shards may stand at
    /// different points of the leader's history) and no back-fill or drop runs here. Leaving
    /// (promotion), every index shard 0 defines is made whole in every shard — a shard that
    /// lacked or disagreed with the definition rebuilds its entries by back-fill — and the
    /// index work the metadata calls for starts.
    ///
    /// - Throws: the error that stopped the metadata repair or load (the store stays following).
    public func setFollowingLeader(_ following: Bool) throws {
        if following {
            // Already following (opened so, or a new REPLICAOF target): the catalog is loaded.
            if followingLeader.exchange(true, ordering: .relaxed) { return }
            try loadIndexes(lenient: true)
            return
        }
        guard followingLeader.load(ordering: .relaxed) else { return }
        try repairFollowerIndexMetadata()
        try loadIndexes()
        followingLeader.store(false, ordering: .relaxed)
        startIndexWork()
    }
}
