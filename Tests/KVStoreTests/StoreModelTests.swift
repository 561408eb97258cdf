import KVBase
import KVEngine
import KVFileSystem
import KVLayout
import KVStore
import KVTestSupport
import Testing

/// Randomized model test: seeded sequences of puts, deletes, single- and multi-shard batches,
/// gets, merged scans (forward, reverse, bounded, prefix), counts, snapshots and reopens
/// against a dictionary.
@Suite("Store model")
struct StoreModelTests {
    static let steps = soakEnabled ? 40_000 : 1500

    /// A key: plain random keys, and keys sharing a few hash tags (one slot per tag).
    static func key(_ r: inout TestRandom) -> [UInt8] {
        if r.chance(30) { return bytes("{tag\(r.next(6))}:\(r.next(60))") }
        return r.key(space: 800)
    }

    @Test(arguments: [1, 4, 16])
    func randomOperationsMatchModel(shards: Int) throws {
        let seed = testSeed("store model \(shards) shards")
        var r = TestRandom(seed: seed)
        let fs = MemoryFileSystem()
        let options = storeOptions(fs)
        var store = try ShardedStore.open(at: "/store", shards: shards, options: options)
        var count = shards
        var model = ModelStore()
        var snaps: [(StoreSnapshot, ModelStore)] = []
        var written: [[UInt8]] = []

        func check(_ ok: Bool, _ what: @autoclosure () -> String, _ step: Int) {
            #expect(ok, "seed \(seed) step \(step): \(what())")
        }
        func bound() -> [UInt8]? {
            r.chance(20) ? nil : Self.key(&r)
        }
        func compareScan(_ scan: StoreScan, _ expected: [([UInt8], [UInt8])], _ what: String, _ step: Int) throws {
            var got: [([UInt8], [UInt8])] = []
            while let e = try scan.nextEntry() { got.append((e.key, e.value)) }
            check(got.count == expected.count, "\(what): \(got.count) entries, expected \(expected.count)", step)
            for (g, e) in zip(got, expected) where g.0 != e.0 || g.1 != e.1 {
                check(false, "\(what): got key \(g.0), expected \(e.0)", step)
                break
            }
        }

        for step in 0..<Self.steps {
            switch r.next(100) {
            case 0..<35:
                let k = Self.key(&r)
                let v = r.value(maxLength: 48)
                try store.put(k, v)
                model.put(k, v)
                written.append(k)
            case 35..<47:
                let k = Self.key(&r)
                try store.delete(k)
                model.delete(k)
            case 47..<55:
                // A batch: within one hash tag (one shard, atomic) or across shards.
                var batch = WriteBatch()
                let tag = r.chance(50) ? r.next(6) : nil
                for _ in 0..<(1 + r.next(12)) {
                    let k = tag.map { bytes("{tag\($0)}:\(r.next(60))") } ?? Self.key(&r)
                    if r.chance(75) {
                        let v = r.value(maxLength: 32)
                        batch.put(k, v)
                        model.put(k, v)
                    } else {
                        batch.delete(k)
                        model.delete(k)
                    }
                }
                try store.write(batch)
            case 55..<70:
                let k = r.chance(70) ? Self.key(&r) : (written.isEmpty ? Self.key(&r) : written[r.next(written.count)])
                check(try store.get(k) == model.get(k), "get \(k)", step)
            case 70..<78:
                let lo = bound()
                var hi = bound()
                if let l = lo, let h = hi, compareBytes(l, h) > 0 { hi = l }
                let reverse = r.chance(50)
                try compareScan(try store.scan(from: lo, to: hi, reverse: reverse), model.range(lo, hi, reverse: reverse), "scan \(String(describing: lo))..<\(String(describing: hi)) reverse \(reverse)", step)
            case 78..<82:
                let prefix: [UInt8] = [bytes("{tag"), bytes("user:profile:1"), bytes("k1"), [UInt8(r.next(256))], bytes("pppp")][r.next(5)]
                let reverse = r.chance(50)
                try compareScan(try store.scan(prefix: prefix, reverse: reverse), model.range(prefix, prefixSuccessor(prefix), reverse: reverse), "prefix scan \(prefix) reverse \(reverse)", step)
            case 82..<84:
                check(try store.count() == model.count, "count", step)
            case 84..<87:
                snaps.append((store.snapshot(), model))
                if snaps.count > 3 { snaps.removeFirst() }
            case 87..<90:
                if !snaps.isEmpty {
                    let (snap, old) = snaps[r.next(snaps.count)]
                    try compareScan(try store.scan(snapshot: snap), old.range(nil, nil), "snapshot scan", step)
                    let k = Self.key(&r)
                    check(try store.get(k, snapshot: snap) == old.get(k), "snapshot get \(k)", step)
                    check(try store.count(snapshot: snap) == old.count, "snapshot count", step)
                }
            case 90..<91:
                snaps.removeAll()
                try store.close()
                store = try ShardedStore.open(at: "/store", shards: r.chance(50) ? count : nil, options: options)
                check(store.shardCount == count, "shard count after reopen", step)
            case 92..<93 where shards > 1:
                // Reshard away and back, checking the contents in between.
                count = count == shards ? [1, 2, 3, 5, 8, 17][r.next(6)] : shards
                // The previous reshard's cleanup may still wait for snapshots taken before its
                // switch (a new reshard is refused until then): release them and let it finish.
                if store.reshardingInProgress {
                    snaps.removeAll()
                    try store.waitForReshard()
                }
                // Snapshots read across the reshard, then are released: removed shards are
                // deleted only once no snapshot reads them.
                for (snap, old) in snaps {
                    check(try contents(store, snapshot: snap) == old, "snapshot before resharding", step)
                }
                try store.setShardCount(count)
                for (snap, old) in snaps {
                    check(try contents(store, snapshot: snap) == old, "snapshot across resharding to \(count)", step)
                }
                snaps.removeAll()
                if r.chance(50) { try store.waitForReshard() }
                check(try contents(store) == model, "contents after resharding to \(count)", step)
            case 91..<92:
                try store.flush()
            default:
                let k = Self.key(&r)
                check(try store.contains(k) == (model.get(k) != nil), "contains \(k)", step)
            }
        }
        snaps.removeAll()
        if count != shards { try store.setShardCount(shards) }
        try store.waitForReshard()
        #expect(try contents(store) == model, "seed \(seed): final contents")
        try store.verify()
        let info = store.shards
        #expect(info.count == shards)
        #expect(info.reduce(0) { $0 + $1.slotCount } == HashSlot.count)
        let stats = try store.stats(countingKeys: true)
        #expect(stats.keys == model.count)
        #expect(stats.shards.map { $0.keys ?? 0 }.reduce(0, +) == model.count)
        try store.close()
    }

    @Test func batchWithinOneHashTagGoesToOneShard() throws {
        let fs = MemoryFileSystem()
        let store = try ShardedStore.open(at: "/s", shards: 8, options: storeOptions(fs))
        var batch = WriteBatch()
        for i in 0..<50 { batch.put("{order:17}:line\(i)", "x\(i)") }
        try store.write(batch)
        let owner = store.shard(for: bytes("{order:17}"))
        for (id, db) in store.shardDatabases.enumerated() {
            let n = try db.scan().reduce(0) { n, _ in n + 1 }
            #expect(n == (id == owner ? 50 : 0), "shard \(id)")
        }
        try store.close()
    }

    @Test func multiShardBatchIsSplitAndApplied() throws {
        let fs = MemoryFileSystem()
        let store = try ShardedStore.open(at: "/s", shards: 4, options: storeOptions(fs))
        var batch = WriteBatch()
        for i in 0..<200 { batch.put("k\(i)", "v\(i)") }
        batch.delete("k7")
        batch.put("k8", "later wins")
        batch.delete("k9")
        batch.put("k9", "put again")
        batch.put("k8", "last wins")
        try store.write(batch)
        #expect(try store.count() == 199)
        #expect(try store.get("k9") == bytes("put again"))
        #expect(try store.get("k7") == nil)
        #expect(try store.get("k8") == bytes("last wins"))
        let perShard = try store.stats(countingKeys: true).shards.map { $0.keys ?? 0 }
        #expect(perShard.allSatisfy { $0 > 20 }, "\(perShard)")
        try store.close()
    }
}
