import KVEngine
import KVFileSystem
import KVLayout
import KVReplication
import KVStore
import Testing

/// A leader transaction spanning shards reaches a follower as one unit: a stream holding its
/// part waits (applying nothing of the part) until every participant's part is in a pull,
/// then they are applied together; transaction records are never stored on the follower;
/// a stream stopped past the stall limit applies its part alone.
@Suite("Transaction grouping")
struct TransactionGroupingTests {
    struct Leader {
        let store: ShardedStore
        let backlog: ReplicationBacklog
    }

    func leader(shards: Int) throws -> Leader {
        let backlog = ReplicationBacklog()
        let store = try ShardedStore.open(at: "/leader", shards: shards, options: storeOptions(MemoryFileSystem()), commitFeed: backlog)
        backlog.activate(store: store)
        return Leader(store: store, backlog: backlog)
    }

    /// The groups the backlog holds after `applied`, in frame order.
    func groups(_ l: Leader, after applied: [UInt64]) throws -> [PulledGroup] {
        let wire = l.backlog.frames(shards: l.store.shardCount, from: applied.map { $0 + 1 }, budget: 1 << 20)
        return try ReplicationFrame.decodeAll(wire).compactMap { f in
            guard case .group(let s, let first, let last, let batch) = f else { return nil }
            return PulledGroup(shard: s, first: first, last: last, batch: batch)
        }
    }

    /// A key of each shard of `store`.
    func keyPerShard(_ store: ShardedStore, _ tag: String) -> [[UInt8]] {
        var found: [Int: [UInt8]] = [:]
        var i = 0
        while found.count < store.shardCount {
            let k = bytes("\(tag)\(i)")
            if found[store.shard(for: k)] == nil { found[store.shard(for: k)] = k }
            i += 1
        }
        return found.keys.sorted().map { found[$0]! }
    }

    func contents(_ store: ShardedStore) throws -> [[UInt8]: [UInt8]] {
        var m: [[UInt8]: [UInt8]] = [:]
        let scan = try store.scan()
        while let (k, v) = try scan.nextEntry() { m[k] = v }
        return m
    }

    @Test(arguments: [1, 2, 3])
    func partsWaitForEachOtherThenApplyTogether(followerShards: Int) throws {
        let l = try leader(shards: 3)
        defer { try? l.store.close() }
        let followerFS = MemoryFileSystem()
        var follower = try ShardedStore.open(at: "/f", shards: followerShards, options: storeOptions(followerFS),
                                             followingLeader: true)
        defer { try? follower.close() }
        let applier = ReplicaApplier(store: follower)
        let grouping = TransactionGrouping()
        let keys = keyPerShard(l.store, "t")
        try l.store.put(keys[0], bytes("before"))
        try l.store.transaction { for k in keys { try l.store.put(k, bytes("txn")) } }
        try l.store.put(keys[2], bytes("after"))
        var applied = l.store.shardSequences.map { _ in UInt64(0) }
        let all = try groups(l, after: applied)
        // Shard 0's groups and shard 1's only: shard 0 stops at its part, nothing of it shows.
        let partial = all.filter { $0.shard != 2 }
        try grouping.apply(partial, applier: applier, replid: "r", leaderOwners: l.store.replicationLayout.owners, applied: &applied,
                           now: 0)
        #expect(try follower.get(keys[0]) == bytes("before"), "the put before the transaction is applied")
        #expect(try follower.get(keys[1]) == nil && follower.get(keys[2]) == nil, "no part of the transaction")
        // Everything: the parts apply together, then what follows.
        try grouping.apply(try groups(l, after: applied), applier: applier, replid: "r",
                           leaderOwners: l.store.replicationLayout.owners, applied: &applied, now: 1)
        #expect(applied == l.store.shardSequences)
        #expect(try contents(follower) == contents(l.store))
        #expect(try follower.get(keys[2]) == bytes("after"))
        // The leader's transaction records are not kept on the follower (its own, written to
        // apply the parts across its shards, are gone once it closed).
        try follower.close()
        follower = try ShardedStore.open(at: "/f", options: storeOptions(followerFS), followingLeader: true)
        for shard in 0..<follower.shardCount { #expect(try transactionRecords(follower, shard: shard) == 0) }
    }

    @Test func aStreamStoppedTooLongAppliesItsPartAlone() throws {
        let l = try leader(shards: 2)
        defer { try? l.store.close() }
        let follower = try ShardedStore.open(at: "/f", shards: 2, options: storeOptions(MemoryFileSystem()), followingLeader: true)
        defer { try? follower.close() }
        let applier = ReplicaApplier(store: follower)
        let grouping = TransactionGrouping()
        let keys = keyPerShard(l.store, "s")
        try l.store.transaction { for k in keys { try l.store.put(k, bytes("txn")) } }
        var applied: [UInt64] = [0, 0]
        let only0 = try groups(l, after: applied).filter { $0.shard == 0 }
        let owners = l.store.replicationLayout.owners
        #expect(try grouping.apply(only0, applier: applier, replid: "r", leaderOwners: owners, applied: &applied, now: 0) == 0)
        #expect(try grouping.apply(only0, applier: applier, replid: "r", leaderOwners: owners, applied: &applied, now: 1000) == 0)
        #expect(try follower.get(keys[0]) == nil)
        let n = try grouping.apply(only0, applier: applier, replid: "r", leaderOwners: owners, applied: &applied,
                                   now: TransactionGrouping.stallLimitMillis)
        #expect(n == 1)
        #expect(try follower.get(keys[0]) == bytes("txn"))
    }

    /// Transaction records among every record of a follower shard.
    func transactionRecords(_ store: ShardedStore, shard: Int) throws -> Int {
        let reader = try ShardSnapshotReader(store: store, shard: shard)
        defer { reader.release() }
        var n = 0
        while true {
            let records = try reader.next(maxBytes: 64 << 10)
            if records.isEmpty { return n }
            n += records.filter { $0.key.starts(with: TransactionRecord.keyPrefix) }.count
        }
    }
}
