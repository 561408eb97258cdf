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

/// A shard pinned at one sequence number, read in key order for a full sync.
public final class ShardSnapshotReader: @unchecked Sendable {
    /// The sequence number the snapshot shows: the follower continues from the next one.
    public let sequence: UInt64
    let snapshot: Snapshot
    let db: Database
    private var iterator: DBIterator?
    private var done = false

    init(db: Database) {
        self.db = db
        snapshot = db.snapshot()
        sequence = snapshot.sequence
    }

    /// The next records (engine key, engine value), about `maxBytes` of them; empty when done.
    /// Not thread-safe: one caller at a time.
    public func next(maxBytes: Int) throws -> [(key: [UInt8], value: [UInt8])] {
        if done { return [] }
        if iterator == nil {
            let it = try db.makeIteratorTyped(snapshot: snapshot)
            try it.seekToFirstTyped()
            iterator = it
        }
        let it = iterator!
        var out: [(key: [UInt8], value: [UInt8])] = []
        var bytes = 0
        while it.isValid && bytes < maxBytes {
            let k = Array(it.keyView), v = Array(it.valueView)
            bytes += k.count + v.count + 8
            out.append((k, v))
            try it.nextTyped()
        }
        if !it.isValid { done = true }
        return out
    }

    /// Releases the snapshot (also done when the reader is freed).
    public func release() {
        snapshot.release()
    }

    deinit { snapshot.release() }
}

extension ShardedStore {
    // MARK: leader side

    /// The layout followers must mirror.
    public var replicationLayout: ReplicationLayout {
        state.withLock { s in
            ReplicationLayout(shardCount: s.routing.shards.count, owners: s.routing.owners, generation: s.descriptor.generation)
        }
    }

    /// Makes the replication log keep committed groups from now on (a follower has asked for
    /// them); until then it keeps nothing. Idempotent.
    public func activateReplicationLog() {
        replicationLog.activate {
            let shards = state.withLock { $0.shards.compactMap { $0 } }
            return shards.map { (shard: $0.id, sequence: $0.db.lastSequence) }
        }
    }

    /// The last committed sequence number of every shard owning slots, by shard id.
    public var shardSequences: [UInt64] {
        state.withLock { $0.routing.shards.map(\.db) }.map(\.lastSequence)
    }

    /// Pins shard `id` for a full sync.
    public func replicationSnapshot(shard id: Int) throws -> ShardSnapshotReader {
        let routing = try currentRouting()
        guard id >= 0 && id < routing.shards.count else { throw KVError.invalidArgument("no shard \(id)") }
        return ShardSnapshotReader(db: routing.shards[id].db)
    }

    // MARK: follower side

    static let appliedPrefix: [UInt8] = [EngineKey.reservedByte, EngineKey.metaTag] + Array("repl.applied.".utf8)

    static func appliedKey(_ leaderShard: Int) -> [UInt8] {
        appliedPrefix + [UInt8(truncatingIfNeeded: leaderShard >> 8), UInt8(truncatingIfNeeded: leaderShard)]
    }

    /// `applied := version:1 (=1) | sequence fixed64 | replid-length:1 | replid | masked CRC32C fixed32`
    static func encodeApplied(replid: String, sequence: UInt64) -> [UInt8] {
        var v: [UInt8] = [1]
        v.appendFixed64(sequence)
        let id = Array(replid.utf8.prefix(255))
        v.append(UInt8(id.count))
        v += id
        v.appendFixed32(CRC32C.mask(CRC32C.checksum(v)))
        return v
    }

    static func decodeApplied(_ v: [UInt8], file: String) throws(KVError) -> (replid: String, sequence: UInt64) {
        guard v.count >= 14, v[0] == 1 else {
            throw .corruption(file: file, offset: 0, reason: "replication position record has an unknown format")
        }
        let n = Int(v[9])
        guard v.count == 14 + n else { throw .corruption(file: file, offset: 0, reason: "replication position record is truncated") }
        let crc = v.withUnsafeBytes { $0.fixed32(at: 10 + n) }
        guard crc == CRC32C.mask(CRC32C.checksum(Array(v[0..<(10 + n)]))) else {
            throw .corruption(file: file, offset: 0, reason: "replication position record fails its checksum")
        }
        return (String(decoding: v[10..<(10 + n)], as: UTF8.self), v.withUnsafeBytes { $0.fixed64(at: 1) })
    }

    /// The follower shard that keeps the position of leader shard `leaderShard`.
    func homeShard(_ leaderShard: Int, _ routing: Routing) -> Shard {
        routing.shards[leaderShard % routing.shards.count]
    }

    /// The slots (one per target shard) a shard-local record of leader shard `leaderShard`
    /// goes to: its home shard's, or — for index metadata when this follower's shard count
    /// differs from the leader's — one of every shard's, since each follower shard answers
    /// index queries for its own rows and so needs the definitions.
    /// `broadcast` is ``broadcastsIndexMetadata(_:_:)`` for the leader's layout.
    func metaSlots(_ key: UnsafeRawBufferPointer, leaderShard: Int, broadcast: Bool, _ routing: Routing) -> [Int] {
        if broadcast && key.starts(with: IndexMetadata.namespace) {
            return routing.shards.map { anySlot(of: $0.id, routing) }
        }
        return [anySlot(of: homeShard(leaderShard, routing).id, routing)]
    }

    /// Whether replicated index metadata goes to every shard (the layouts' shard counts
    /// differ) rather than to each leader shard's home shard.
    func broadcastsIndexMetadata(_ leaderOwners: [UInt16], _ routing: Routing) -> Bool {
        Int(leaderOwners.max() ?? 0) + 1 != routing.shards.count
    }

    /// A slot owned by `shard` in `routing` (to route shard-local records through `apply`).
    func anySlot(of shard: Int, _ routing: Routing) -> Int {
        routing.owners.firstIndex(of: UInt16(shard)) ?? 0
    }

    /// Where this follower stands for leader shard `leaderShard`: the leader's replication id
    /// and the last sequence applied, or nil if it never synced it.
    public func replicationApplied(leaderShard: Int) throws -> (replid: String, sequence: UInt64)? {
        let routing = try currentRouting()
        let home = homeShard(leaderShard, routing)
        guard let v = try withBytes(Self.appliedKey(leaderShard), { (k) throws(KVError) in try home.db.getTyped(k) }) else { return nil }
        return try Self.decodeApplied(v, file: home.path)
    }

    /// Applies write groups shipped by leader shard `leaderShard`, consecutive and in order,
    /// as one batch that also records the last one's sequence as applied: all or none of them
    /// survive a crash. Records are routed by their slot (so the follower's own layout need
    /// not match); records of slots the leader shard does not own in `leaderOwners` (a
    /// reshard's copies and leftovers there) are skipped; shard-local metadata goes to the
    /// home shard of `leaderShard` (index metadata to every shard when the layouts' shard
    /// counts differ: see ``metaSlots(_:leaderShard:broadcast:_:)``).
    public func applyReplicated(leaderShard: Int, batches: [[UInt8]], replid: String, leaderOwners: [UInt16]) throws {
        guard !batches.isEmpty else { return }
        let routing = try currentRouting()
        let homeSlot = anySlot(of: homeShard(leaderShard, routing).id, routing)
        let broadcast = broadcastsIndexMetadata(leaderOwners, routing)
        var out = WriteBatch()
        var slots: [Int] = []
        var sawMeta = false
        var lastSequence: UInt64 = 0
        for batch in batches {
            guard batch.count >= WriteBatch.headerSize else { throw KVError.invalidArgument("replicated batch too short") }
            let first = batch.withUnsafeBytes { $0.fixed64(at: 0) }
            let count = UInt64(batch.withUnsafeBytes { $0.fixed32(at: 8) })
            lastSequence = first + count - 1
            try batch.withUnsafeBytes { p in
                try WriteBatch.decode(p, file: "replicated batch", offset: first) { (kind, key, value) throws(KVError) in
                    let targets: [Int]
                    if let s = EngineKey.slot(of: key) {
                        if s < leaderOwners.count && Int(leaderOwners[s]) != leaderShard { return }
                        targets = [s]
                    } else {
                        sawMeta = true
                        targets = metaSlots(key, leaderShard: leaderShard, broadcast: broadcast, routing)
                    }
                    for slot in targets {
                        if kind == .value { out.put(key, value) } else { out.delete(Array(key)) }
                        slots.append(slot)
                    }
                }
            }
        }
        out.put(Self.appliedKey(leaderShard), Self.encodeApplied(replid: replid, sequence: lastSequence))
        slots.append(homeSlot)
        try apply(out, slots: slots, durability: nil)
        if sawMeta { try reloadReplicatedMetadata() }
    }

    /// Starts a full sync of leader shard `leaderShard`: deletes every record this follower
    /// holds in that shard's slots (per `leaderOwners`) and its position.
    public func beginResync(leaderShard: Int, leaderOwners: [UInt16]) throws {
        let routing = try currentRouting()
        let broadcast = broadcastsIndexMetadata(leaderOwners, routing)
        for shard in routing.shards {
            let it = try shard.db.makeIteratorTyped()
            try it.seekToFirstTyped()
            var batch = WriteBatch()
            var slots: [Int] = []
            let home = homeShard(leaderShard, routing).id == shard.id
            while it.isValid {
                let k = it.keyView
                if let s = EngineKey.slot(of: k) {
                    if s < leaderOwners.count && Int(leaderOwners[s]) == leaderShard && Int(routing.owners[s]) == shard.id {
                        batch.delete(Array(k))
                        slots.append(s)
                    }
                } else if (home && !k.starts(with: Self.appliedPrefix)) || (broadcast && k.starts(with: IndexMetadata.namespace)) {
                    // Shard-local metadata comes again with the snapshot (index metadata,
                    // when every shard holds it, from whichever leader shard resyncs).
                    batch.delete(Array(k))
                    slots.append(anySlot(of: shard.id, routing))
                }
                if batch.approximateSize > 1 << 20 {
                    try apply(batch, slots: slots, durability: .no)
                    batch = WriteBatch()
                    slots = []
                }
                try it.nextTyped()
            }
            if !batch.isEmpty { try apply(batch, slots: slots, durability: .no) }
        }
        let home = homeShard(leaderShard, routing)
        var b = WriteBatch()
        b.delete(Self.appliedKey(leaderShard))
        try apply(b, slots: [anySlot(of: home.id, routing)], durability: nil)
    }

    /// Loads snapshot records of leader shard `leaderShard` (routed as in
    /// ``applyReplicated(leaderShard:batch:replid:leaderOwners:)``).
    public func applySnapshotRecords(leaderShard: Int, records: [(key: [UInt8], value: [UInt8])], leaderOwners: [UInt16]) throws {
        let routing = try currentRouting()
        let broadcast = broadcastsIndexMetadata(leaderOwners, routing)
        var out = WriteBatch()
        var slots: [Int] = []
        var sawMeta = false
        for (k, v) in records {
            if k.starts(with: Self.appliedPrefix) { continue }
            let targets: [Int]
            if let s = EngineKey.slot(of: k) {
                if s < leaderOwners.count && Int(leaderOwners[s]) != leaderShard { continue }
                targets = [s]
            } else {
                sawMeta = true
                targets = k.withUnsafeBytes { metaSlots($0, leaderShard: leaderShard, broadcast: broadcast, routing) }
            }
            for slot in targets {
                out.put(k, v)
                slots.append(slot)
            }
        }
        if !out.isEmpty { try apply(out, slots: slots, durability: .no) }
        if sawMeta { try reloadReplicatedMetadata() }
    }

    /// Ends a full sync of leader shard `leaderShard` at `sequence`, durably.
    public func finishResync(leaderShard: Int, replid: String, sequence: UInt64) throws {
        let routing = try currentRouting()
        var b = WriteBatch()
        b.put(Self.appliedKey(leaderShard), Self.encodeApplied(replid: replid, sequence: sequence))
        try apply(b, slots: [anySlot(of: homeShard(leaderShard, routing).id, routing)], durability: .always)
        // An index dropped on the leader leaves no record in the snapshot to reload on.
        try reloadReplicatedMetadata()
    }

    /// Forgets, durably, where this store stood in every leader's history: the next time it
    /// follows a leader, every shard takes a full sync. Called at promotion: from then on the
    /// store takes writes of its own, so its data is no longer a prefix of any leader's
    /// history, and a partial sync after a later re-attach would keep those writes forever.
    public func forgetReplicationPositions() throws {
        let routing = try currentRouting()
        for shard in routing.shards {
            let it = try shard.db.makeIteratorTyped()
            try it.seek(Self.appliedPrefix)
            var batch = WriteBatch()
            while it.isValid && it.keyView.starts(with: Self.appliedPrefix) {
                batch.delete(Array(it.keyView))
                try it.nextTyped()
            }
            if !batch.isEmpty {
                let slot = anySlot(of: shard.id, routing)
                try apply(batch, slots: Array(repeating: slot, count: batch.count), durability: .always)
            }
        }
    }

    /// Re-reads shard-local metadata that arrived through replication (index definitions).
    func reloadReplicatedMetadata() throws(KVError) {
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
