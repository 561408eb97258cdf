import KVEngine
import KVFileSystem
import KVReplication
import KVStore
import Testing

/// A follower store kept equal to a leader store through the applier alone (no network): a
/// full sync from shard snapshots, then partial syncs from the backlog's frames, across
/// layouts with different shard counts; positions survive a reopen and are forgotten on
/// promotion.
@Suite("Replica applier")
struct ReplicaApplierTests {
    /// Every user entry of a store.
    func contents(_ store: ShardedStore) throws -> [[UInt8]: [UInt8]] {
        var m: [[UInt8]: [UInt8]] = [:]
        let scan = try store.scan()
        while let (k, v) = try scan.nextEntry() { m[k] = v }
        return m
    }

    /// Full sync of every leader shard into `replica` through snapshot frames.
    func fullSync(_ leader: ShardedStore, _ replica: ReplicaApplier, replid: String) throws -> [UInt64] {
        let layout = leader.replicationLayout
        var applied: [UInt64] = []
        for shard in 0..<layout.shardCount {
            try replica.beginFullSync(leaderShard: shard, leaderOwners: layout.owners)
            let reader = try ShardSnapshotReader(store: leader, shard: shard)
            while true {
                let records = try reader.next(maxBytes: 4 << 10)
                if records.isEmpty { break }
                var wire: [UInt8] = []
                ReplicationFrame.snapshotChunk(shard: shard, records: records).encode(into: &wire)
                guard case .snapshotChunk(_, let decoded) = try ReplicationFrame.decodeAll(wire).first else {
                    Issue.record("snapshot chunk did not round-trip")
                    return []
                }
                try replica.applySnapshotRecords(leaderShard: shard, records: decoded, leaderOwners: layout.owners)
            }
            try replica.finishFullSync(leaderShard: shard, replid: replid, sequence: reader.sequence)
            reader.release()
            applied.append(reader.sequence)
        }
        return applied
    }

    /// Applies everything the backlog holds after `applied`; returns the new positions.
    func partialSync(_ leader: ShardedStore, _ backlog: ReplicationBacklog, _ replica: ReplicaApplier, replid: String,
                     applied: [UInt64]) throws -> [UInt64] {
        let layout = leader.replicationLayout
        var positions = applied
        while true {
            let wire = backlog.frames(shards: layout.shardCount, from: positions.map { $0 + 1 }, budget: 8 << 10)
            if wire.isEmpty { return positions }
            var byShard: [Int: [[UInt8]]] = [:]
            for frame in try ReplicationFrame.decodeAll(wire) {
                guard case .group(let shard, let first, let last, let batch) = frame else {
                    Issue.record("unexpected frame \(frame) in a partial sync")
                    return positions
                }
                #expect(first == positions[shard] + 1)
                byShard[shard, default: []].append(batch)
                positions[shard] = last
            }
            for (shard, batches) in byShard {
                try replica.applyGroups(leaderShard: shard, batches: batches, replid: replid, leaderOwners: layout.owners)
            }
        }
    }

    @Test(arguments: [(2, 2), (2, 3), (3, 1)])
    func followsALeaderAcrossLayouts(_ shards: (leader: Int, follower: Int)) throws {
        let seed = UInt64.random(in: 0...UInt64.max)
        print("ReplicaApplierTests seed \(seed)")
        var rng = SplitMix(seed)
        let backlog = ReplicationBacklog()
        let leader = try ShardedStore.open(at: "/leader", shards: shards.leader, options: storeOptions(MemoryFileSystem()),
                                           commitFeed: backlog)
        defer { try? leader.close() }
        let followerFS = MemoryFileSystem()
        var follower = try ShardedStore.open(at: "/follower", shards: shards.follower, options: storeOptions(followerFS),
                                             followingLeader: true)
        for i in 0..<300 { try leader.put(bytes("k\(i)"), bytes("v\(i)")) }
        backlog.activate(store: leader)
        var replica = ReplicaApplier(store: follower)
        var applied = try fullSync(leader, replica, replid: "r1")
        #expect(try contents(follower) == contents(leader))
        for round in 0..<3 {
            for _ in 0..<400 {
                let k = bytes("k\(rng.next() % 500)")
                if rng.next() % 4 == 0 { try leader.delete(k) } else { try leader.put(k, bytes("r\(round)-\(rng.next() % 1000)")) }
            }
            applied = try partialSync(leader, backlog, replica, replid: "r1", applied: applied)
            #expect(try contents(follower) == contents(leader), "seed \(seed) round \(round)")
        }
        // Positions are durable and read back after a reopen.
        try follower.close()
        follower = try ShardedStore.open(at: "/follower", options: storeOptions(followerFS), followingLeader: true)
        replica = ReplicaApplier(store: follower)
        for shard in 0..<shards.leader {
            #expect(try replica.position(leaderShard: shard) == ReplicationPosition(replid: "r1", sequence: applied[shard]))
        }
        // Promotion forgets them: the next attach takes a full sync.
        try replica.forgetPositions()
        for shard in 0..<shards.leader { #expect(try replica.position(leaderShard: shard) == nil) }
        #expect(try contents(follower) == contents(leader))
        try follower.close()
    }

    @Test func fullSyncReplacesWhatTheFollowerHeld() throws {
        let backlog = ReplicationBacklog()
        let leader = try ShardedStore.open(at: "/leader", shards: 2, options: storeOptions(MemoryFileSystem()), commitFeed: backlog)
        defer { try? leader.close() }
        let follower = try ShardedStore.open(at: "/follower", shards: 2, options: storeOptions(MemoryFileSystem()), followingLeader: true)
        defer { try? follower.close() }
        for i in 0..<100 { try follower.put(bytes("stale\(i)"), bytes("x")) }
        for i in 0..<100 { try leader.put(bytes("k\(i)"), bytes("v\(i)")) }
        _ = try fullSync(leader, ReplicaApplier(store: follower), replid: "r2")
        #expect(try contents(follower) == contents(leader))
    }
}

/// A small seeded generator (SplitMix64), so a failing run can be replayed from its seed.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
