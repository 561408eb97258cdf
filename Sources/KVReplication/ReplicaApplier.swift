import KVBase
import KVEngine
import KVLayout
import KVStore

/// The follower side of replication against its own store: applies the leader's write
/// groups and snapshots, and keeps the follower's position in each leader shard's history.
///
/// **Routing.** Records are routed by their slot, so the follower's shard layout need not
/// match the leader's. Records of slots the leader shard does not own in the leader's slot
/// table (a reshard's copies and leftovers there) are skipped. Shard-local records (metadata,
/// which carry no slot) go to the leader shard's *home shard* here, `leaderShard % shards`;
/// index metadata goes to every shard when the two layouts' shard counts differ, since each
/// follower shard answers index queries for its own rows and so needs the definitions.
///
/// **Crash safety.** Groups are applied as one batch together with the new position
/// (``ReplicationPosition``), so after a crash the store holds both or neither. A full sync
/// deletes the shard's slots' records and its position first and records the position last,
/// durably: an interrupted full sync starts over.
///
/// Thread safety: one applier per link; calls for one leader shard must not overlap.
public struct ReplicaApplier: Sendable {
    /// The follower's store.
    public let store: ShardedStore

    /// An applier writing into `store`.
    public init(store: ShardedStore) {
        self.store = store
    }

    /// The follower shard that keeps the position of leader shard `leaderShard`.
    func homeShard(_ leaderShard: Int, _ routing: Routing) -> Shard {
        routing.shards[leaderShard % routing.shards.count]
    }

    /// A slot owned by `shard` in `routing` (to route shard-local records through the store).
    func anySlot(of shard: Int, _ routing: Routing) -> Int {
        routing.owners.firstIndex(of: UInt16(shard)) ?? 0
    }

    /// Whether replicated index metadata goes to every shard (the layouts' shard counts
    /// differ) rather than to each leader shard's home shard.
    func broadcastsIndexMetadata(_ leaderOwners: [UInt16], _ routing: Routing) -> Bool {
        Int(leaderOwners.max() ?? 0) + 1 != routing.shards.count
    }

    /// The slots (one per target shard) a shard-local record of leader shard `leaderShard`
    /// goes to: its home shard's, or, for index metadata when `broadcast`, one of every shard's.
    func metaSlots(_ key: UnsafeRawBufferPointer, leaderShard: Int, broadcast: Bool, _ routing: Routing) -> [Int] {
        if broadcast && ShardedStore.isIndexMetadata(key) {
            return routing.shards.map { anySlot(of: $0.id, routing) }
        }
        return [anySlot(of: homeShard(leaderShard, routing).id, routing)]
    }

    /// The target slots of a replicated record of leader shard `leaderShard`: empty when the
    /// record is skipped. Sets `sawMeta` for a shard-local record.
    func targets(
        _ key: UnsafeRawBufferPointer, leaderShard: Int, leaderOwners: [UInt16], broadcast: Bool, _ routing: Routing,
        sawMeta: inout Bool
    ) -> [Int] {
        if let s = EngineKey.slot(of: key) {
            if s < leaderOwners.count && Int(leaderOwners[s]) != leaderShard { return [] }
            return [s]
        }
        sawMeta = true
        return metaSlots(key, leaderShard: leaderShard, broadcast: broadcast, routing)
    }

    /// Where this follower stands for leader shard `leaderShard`, or nil if it never synced it.
    public func position(leaderShard: Int) throws -> ReplicationPosition? {
        let routing = try store.currentRouting()
        let home = homeShard(leaderShard, routing)
        guard let v = try home.db.get(ReplicationPosition.key(leaderShard: leaderShard)) else { return nil }
        return try ReplicationPosition.decode(v, file: home.path)
    }

    /// Applies write groups shipped by leader shard `leaderShard`, consecutive and in order,
    /// as one batch that also records the last one's sequence as applied under `replid`.
    public func applyGroups(leaderShard: Int, batches: [[UInt8]], replid: String, leaderOwners: [UInt16]) throws {
        guard !batches.isEmpty else { return }
        let routing = try store.currentRouting()
        var out = RoutedBatch()
        var sawMeta = false
        try route(leaderShard: leaderShard, batches: batches, replid: replid, leaderOwners: leaderOwners, routing, into: &out,
                  sawMeta: &sawMeta)
        try store.applyRecords(out, durability: nil)
        if sawMeta { try store.reloadReplicatedMetadata() }
    }

    /// Applies the groups holding the parts of one leader transaction spanning shards — one
    /// group per leader shard, each consecutive to what was applied of its shard — as one
    /// unit, with every shard's new position: all or none, after a crash too, and never half
    /// visible to this follower's readers (``ShardedStore/applyAtomically(_:durability:)``).
    public func applyJointly(_ parts: [(leaderShard: Int, batch: [UInt8])], replid: String, leaderOwners: [UInt16]) throws {
        guard !parts.isEmpty else { return }
        let routing = try store.currentRouting()
        var out = RoutedBatch()
        var sawMeta = false
        for part in parts {
            try route(leaderShard: part.leaderShard, batches: [part.batch], replid: replid, leaderOwners: leaderOwners, routing,
                      into: &out, sawMeta: &sawMeta)
        }
        try store.applyAtomically(out, durability: nil)
        if sawMeta { try store.reloadReplicatedMetadata() }
    }

    /// Adds the records of consecutive groups of leader shard `leaderShard`, routed here, and
    /// the shard's new position (the last group's last sequence) to `out`.
    func route(
        leaderShard: Int, batches: [[UInt8]], replid: String, leaderOwners: [UInt16], _ routing: Routing, into out: inout RoutedBatch,
        sawMeta: inout Bool
    ) throws {
        let homeSlot = anySlot(of: homeShard(leaderShard, routing).id, routing)
        let broadcast = broadcastsIndexMetadata(leaderOwners, routing)
        var lastSequence: UInt64 = 0
        for batch in batches {
            guard batch.count >= WriteBatch.headerSize else { throw KVError.invalidArgument("replicated batch too short") }
            let first = batch.withUnsafeBytes { $0.fixed64(at: 0) }
            let count = UInt64(batch.withUnsafeBytes { $0.fixed32(at: 8) })
            lastSequence = first + count - 1
            try batch.withUnsafeBytes { p in
                try WriteBatch.decode(p, file: "replicated batch", offset: first) { (kind, key, value) throws(KVError) in
                    // A leader transaction's intent and markers: what they stand for is applied
                    // here as one unit (``TransactionGrouping``); the records are not kept.
                    if TransactionRecord.isKey(key) { return }
                    for slot in targets(key, leaderShard: leaderShard, leaderOwners: leaderOwners, broadcast: broadcast, routing,
                                        sawMeta: &sawMeta) {
                        if kind == .value { out.put(key, value, slot: slot) } else { out.delete(key, slot: slot) }
                    }
                }
            }
        }
        out.put(ReplicationPosition.key(leaderShard: leaderShard),
                ReplicationPosition(replid: replid, sequence: lastSequence).encoded(), slot: homeSlot)
    }

    /// The transaction record (intent or part marker) a replicated group carries, if any: the
    /// group is then one part of a leader transaction spanning shards.
    public static func transaction(in batch: [UInt8]) throws -> TransactionRecord? {
        guard batch.count >= WriteBatch.headerSize else { throw KVError.invalidArgument("replicated batch too short") }
        var found: TransactionRecord?
        try batch.withUnsafeBytes { p in
            try WriteBatch.decode(p, file: "replicated batch", offset: 0) { (kind, key, value) throws(KVError) in
                if found == nil && kind == .value && TransactionRecord.isKey(key) {
                    found = try TransactionRecord.decode(key: key, value: value, file: "replicated batch")
                }
            }
        }
        return found
    }

    /// Starts a full sync of leader shard `leaderShard`: deletes every record this follower
    /// holds in that shard's slots (per `leaderOwners`), its shard-local metadata, and its
    /// position.
    public func beginFullSync(leaderShard: Int, leaderOwners: [UInt16]) throws {
        let routing = try store.currentRouting()
        let broadcast = broadcastsIndexMetadata(leaderOwners, routing)
        let homeID = homeShard(leaderShard, routing).id
        for shard in routing.shards {
            let it = try shard.db.makeIterator()
            try it.seekToFirst()
            var batch = RoutedBatch()
            let home = homeID == shard.id
            while it.isValid {
                let k = it.keyView
                if let s = EngineKey.slot(of: k) {
                    if s < leaderOwners.count && Int(leaderOwners[s]) == leaderShard && Int(routing.owners[s]) == shard.id {
                        batch.delete(k, slot: s)
                    }
                } else if (home && !k.starts(with: ReplicationPosition.keyPrefix)) || (broadcast && ShardedStore.isIndexMetadata(k)) {
                    // Shard-local metadata comes again with the snapshot (index metadata,
                    // when every shard holds it, from whichever leader shard resyncs).
                    batch.delete(k, slot: anySlot(of: shard.id, routing))
                }
                if batch.approximateSize > 1 << 20 {
                    try store.applyRecords(batch, durability: .no)
                    batch = RoutedBatch()
                }
                try it.next()
            }
            if !batch.isEmpty { try store.applyRecords(batch, durability: .no) }
        }
        var b = RoutedBatch()
        b.delete(ReplicationPosition.key(leaderShard: leaderShard), slot: anySlot(of: homeID, routing))
        try store.applyRecords(b, durability: nil)
    }

    /// Loads snapshot records of leader shard `leaderShard` (routed as groups are).
    public func applySnapshotRecords(leaderShard: Int, records: [(key: [UInt8], value: [UInt8])], leaderOwners: [UInt16]) throws {
        let routing = try store.currentRouting()
        let broadcast = broadcastsIndexMetadata(leaderOwners, routing)
        var out = RoutedBatch()
        var sawMeta = false
        for (k, v) in records {
            if k.starts(with: ReplicationPosition.keyPrefix) { continue }
            if k.withUnsafeBytes({ TransactionRecord.isKey($0) }) { continue }
            k.withUnsafeBytes { key in
                for slot in targets(key, leaderShard: leaderShard, leaderOwners: leaderOwners, broadcast: broadcast, routing,
                                    sawMeta: &sawMeta) {
                    out.put(k, v, slot: slot)
                }
            }
        }
        if !out.isEmpty { try store.applyRecords(out, durability: .no) }
        if sawMeta { try store.reloadReplicatedMetadata() }
    }

    /// Ends a full sync of leader shard `leaderShard` at `sequence`, durably.
    public func finishFullSync(leaderShard: Int, replid: String, sequence: UInt64) throws {
        let routing = try store.currentRouting()
        var b = RoutedBatch()
        b.put(ReplicationPosition.key(leaderShard: leaderShard), ReplicationPosition(replid: replid, sequence: sequence).encoded(),
              slot: anySlot(of: homeShard(leaderShard, routing).id, routing))
        try store.applyRecords(b, durability: .always)
        // An index dropped on the leader leaves no record in the snapshot to reload on.
        try store.reloadReplicatedMetadata()
    }

    /// Forgets, durably, where this store stood in every leader's history: the next time it
    /// follows a leader, every shard takes a full sync. Called at promotion: from then on the
    /// store takes writes of its own, so its data is no longer a prefix of any leader's
    /// history, and a partial sync after a later re-attach would keep those writes forever.
    public func forgetPositions() throws {
        let routing = try store.currentRouting()
        for shard in routing.shards {
            let it = try shard.db.makeIterator()
            try it.seek(ReplicationPosition.keyPrefix)
            var batch = RoutedBatch()
            let slot = anySlot(of: shard.id, routing)
            while it.isValid && it.keyView.starts(with: ReplicationPosition.keyPrefix) {
                batch.delete(it.keyView, slot: slot)
                try it.next()
            }
            if !batch.isEmpty { try store.applyRecords(batch, durability: .always) }
        }
    }
}
