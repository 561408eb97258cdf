import KVBase
import KVEngine
import KVFileSystem
import KVIndex
import KVLayout
@testable import KVStore
import KVTestSupport
import Synchronization
import Testing

/// Indexes across resharding: entries move with their rows, new shards get the definitions,
/// and index changes and reshards exclude each other.
@Suite("Index resharding", .serialized)
struct IndexReshardTests {
    static let byCategory = IndexDefinition(name: "by_cat", field: "category", type: .string, keyPrefix: "p:")
    static let byPrice = IndexDefinition(name: "by_price", field: "price", type: .number)
    static let byWidth = IndexDefinition(name: "by_w", field: "dims.w", type: .number)

    static func checkQueries(_ store: ShardedStore, _ model: [[UInt8]: StoredEntry], _ r: inout TestRandom, _ context: String) throws {
        #expect(try IndexOracle.storedRows(store) == model, "\(context): rows")
        #expect(try IndexOracle.integrityProblems(store) == [], "\(context)")
        var g = ProductValues(r: TestRandom(seed: r.rng.next()))
        for info in store.indexes() {
            #expect(info.state == .ready, "\(context)")
            for _ in 0..<15 {
                let q = IndexModelTests.query(info.definition, &r, &g)
                let offset = r.chance(70) ? 0 : r.next(20)
                let limit = r.chance(50) ? nil : r.next(40)
                let want = IndexOracle.expected(info.definition, q, rows: model, now: store.now, offset: offset, limit: limit, withValues: true)
                #expect(try store.query(index: info.name, q, offset: offset, limit: limit, withValues: true) == want, "\(context): \(info.name) \(q)")
            }
            // Everything the index holds, in one merged query.
            let all: IndexQuery = info.type == .number ? .range(lo: nil, hi: nil) : .prefix([])
            #expect(try store.query(index: info.name, all) == IndexOracle.expected(info.definition, all, rows: model, now: store.now), "\(context): \(info.name) all")
        }
    }

    @Test func queriesStayCorrectAcrossReshards() throws {
        let seed = testSeed("index reshard 2-3-1")
        var r = TestRandom(seed: seed)
        var g = ProductValues(r: TestRandom(seed: r.rng.next()))
        let fs = MemoryFileSystem()
        var store = try ShardedStore.open(at: "/s", shards: 2, options: storeOptions(fs))
        store.setSynchronousCleanup(true)
        var model: [[UInt8]: StoredEntry] = [:]
        for i in 0..<(soakEnabled ? 20_000 : 1_500) {
            let k = Array("p:\(i)".utf8)
            let v = g.value()
            try store.put(k, v)
            model[k] = StoredEntry(value: v)
        }
        try store.createIndex(Self.byCategory)
        try store.createIndex(Self.byPrice)
        try store.waitForIndexes()
        try Self.checkQueries(store, model, &r, "seed \(seed) 2 shards")

        // Writes during each reshard, from its hook (not while it holds the gate).
        let shared = Mutex((r: TestRandom(seed: r.rng.next()), g: ProductValues(r: TestRandom(seed: r.rng.next())), model: model, failures: [String]()))
        store.setReshardHook { [weak store] step in
            guard let store, !step.holdsGate else { return false }
            shared.withLock { s in
                for _ in 0..<s.r.next(5) {
                    let k = Array("p:\(s.r.next(2_000))".utf8)
                    do {
                        if s.r.chance(80) {
                            let v = s.g.value()
                            try store.put(k, v)
                            s.model[k] = StoredEntry(value: v)
                        } else {
                            try store.delete(k)
                            s.model[k] = nil
                        }
                    } catch {
                        s.failures.append("\(step): \(error)")
                    }
                }
            }
            return false
        }
        for count in [3, 1] {
            try store.setShardCount(count)
            try store.waitForReshard()
            #expect(store.shardCount == count)
            model = shared.withLock { $0.model }
            try Self.checkQueries(store, model, &r, "seed \(seed) \(count) shards")
            try store.verify()
            // The new layout survives a reopen with its definitions in every shard.
            try store.close()
            store = try ShardedStore.open(at: "/s", options: storeOptions(fs))
            store.setSynchronousCleanup(true)
            try Self.checkQueries(store, model, &r, "seed \(seed) \(count) shards reopened")
            if count == 3 {
                // A new index over three shards, then back to one.
                try store.createIndex(Self.byWidth)
                try store.waitForIndexes()
                try Self.checkQueries(store, model, &r, "seed \(seed) 3 shards, new index")
                store.setReshardHook { [weak store] step in
                    guard let store, !step.holdsGate else { return false }
                    shared.withLock { s in
                        let k = Array("p:\(s.r.next(2_000))".utf8)
                        let v = s.g.value()
                        do {
                            try store.put(k, v)
                            s.model[k] = StoredEntry(value: v)
                        } catch {
                            s.failures.append("\(step): \(error)")
                        }
                    }
                    return false
                }
            }
        }
        #expect(shared.withLock { $0.failures }.isEmpty)
        try store.close()
    }

    @Test func indexChangesAndReshardsExcludeEachOther() throws {
        let fs = MemoryFileSystem()
        let store = try ShardedStore.open(at: "/s", shards: 2, options: storeOptions(fs))
        store.setSynchronousCleanup(true)
        for i in 0..<300 { try store.put("p:\(i)", "{\"price\":\(i)}") }
        try store.createIndex(Self.byPrice)
        try store.waitForIndexes()
        let seen = Mutex<[String]>([])
        store.setReshardHook { [weak store] step in
            guard let store, step == .intentWritten || step == .cleaned else { return false }
            do {
                try store.createIndex(Self.byCategory)
                seen.withLock { $0.append("create allowed at \(step)") }
            } catch let e as KVError {
                seen.withLock { $0.append("\(e)") }
            } catch {}
            do {
                try store.dropIndex("by_price")
                seen.withLock { $0.append("drop allowed at \(step)") }
            } catch let e as KVError {
                seen.withLock { $0.append("\(e)") }
            } catch {}
            return false
        }
        try store.setShardCount(3)
        try store.waitForReshard()
        store.setReshardHook(nil)
        let messages = seen.withLock { $0 }
        #expect(messages.count == 4 && messages.allSatisfy { $0.contains("is resharding") }, "\(messages)")
        #expect(store.indexes().map(\.name) == ["by_price"])
        // After the reshard both work again, and a drop's deletion does not block the next one.
        try store.createIndex(Self.byCategory)
        try store.waitForIndexes()
        try store.dropIndex("by_cat")
        try store.setShardCount(2)
        try store.waitForReshard()
        try store.waitForIndexes()
        #expect(try store.query(index: "by_price", .range(lo: 10, hi: 19)).count == 10)
        try store.close()
    }
}
