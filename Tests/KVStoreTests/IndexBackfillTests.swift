import KVBase
import KVEngine
import KVFileSystem
import KVIndex
import KVLayout
@testable import KVStore
import KVTestSupport
import Synchronization
import Testing

/// Back-fill of an index over existing rows while writes continue.
@Suite("Index back-fill")
struct IndexBackfillTests {
    static let byCategory = IndexDefinition(name: "by_cat", field: "category", type: .string, keyPrefix: "p:")
    static let byPrice = IndexDefinition(name: "by_price", field: "price", type: .number)

    static func key(_ r: inout TestRandom, space: Int) -> [UInt8] {
        r.chance(90) ? Array("p:\(r.next(space))".utf8) : Array("q:\(r.next(space / 10 + 1))".utf8)
    }

    /// One random write: a put (sometimes expiring), a field change or a delete.
    static func randomWrite(_ store: ShardedStore, _ r: inout TestRandom, _ g: inout ProductValues, space: Int) throws {
        let k = key(&r, space: space)
        switch r.next(10) {
        case 0..<6: try store.put(k, g.value())
        case 6: try store.put(k, g.value(), expiresAt: store.now + 86_400_000 + Int64(r.next(100_000)))
        case 7: try store.modify([k]) { rows in rows[0] = rows[0].map { StoredEntry(value: Array("{\"category\":\"moved\",\"price\":1}".utf8), expiresAt: $0.expiresAt) } }
        default: try store.delete(k)
        }
    }

    @Test(arguments: [1, 3])
    func backfillUnderConcurrentWrites(shards: Int) throws {
        let seed = testSeed("backfill under writes \(shards) shards")
        var r = TestRandom(seed: seed)
        var g = ProductValues(r: TestRandom(seed: seed &+ 1))
        let fs = MemoryFileSystem()
        let store = try ShardedStore.open(at: "/s", shards: shards, options: storeOptions(fs))
        let space = soakEnabled ? 40_000 : 3_000
        var batch = WriteBatch()
        for i in 0..<space {
            batch.put(Array("p:\(i)".utf8), g.value())
            if batch.count == 500 {
                try store.write(batch)
                batch.removeAll()
            }
        }
        try store.write(batch)

        // Writes from inside the back-fill (between its batches) and from another thread.
        struct HookState {
            var r: TestRandom
            var g: ProductValues
            var progress: [String: [Int]] = [:]
            var failures: [String] = []
        }
        let hook = Mutex(HookState(r: TestRandom(seed: r.rng.next()), g: ProductValues(r: TestRandom(seed: r.rng.next()))))
        store.setIndexHook { [weak store] step in
            guard let store, case .filled = step else { return false }
            hook.withLock { h in
                for info in store.indexes() where info.state == .building { h.progress[info.name, default: []].append(info.progress) }
                do {
                    for _ in 0..<h.r.next(4) { try Self.randomWrite(store, &h.r, &h.g, space: space) }
                } catch {
                    h.failures.append("\(error)")
                }
            }
            return false
        }
        let stop = Atomic<Bool>(false)
        let writerSeed = r.rng.next()
        let writes = Atomic<Int>(0)
        let writer = BackgroundTask {
            var wr = TestRandom(seed: writerSeed)
            var wg = ProductValues(r: TestRandom(seed: writerSeed &+ 1))
            while !stop.load(ordering: .relaxed) {
                do {
                    try Self.randomWrite(store, &wr, &wg, space: space)
                    writes.add(1, ordering: .relaxed)
                } catch {
                    Issue.record("writer: \(error)")
                    return
                }
            }
        }
        // The writer is running before the indexes are created.
        while writes.load(ordering: .relaxed) < 20 { pause(milliseconds: 1) }
        try store.createIndex(Self.byCategory)
        try store.createIndex(Self.byPrice)
        var samples: [Int] = []
        while true {
            let info = try store.indexInfo("by_cat")
            if info.state != .building { break }
            samples.append(info.progress)
            pause(milliseconds: 2)
        }
        try store.waitForIndexes()
        let writesDuringBuild = writes.load(ordering: .relaxed)
        stop.store(true, ordering: .relaxed)
        writer.join()
        store.setIndexHook(nil)
        let h = hook.withLock { $0 }
        #expect(h.failures.isEmpty, "seed \(seed): \(h.failures)")
        for (name, p) in h.progress {
            #expect(p == p.sorted() && p.allSatisfy { $0 >= 0 && $0 <= 99 }, "seed \(seed): progress of \(name): \(p)")
        }
        #expect(samples == samples.sorted() && samples.allSatisfy { $0 < 100 }, "seed \(seed): \(samples)")
        #expect(h.progress["by_cat"]?.isEmpty == false)
        for name in ["by_cat", "by_price"] {
            let info = try store.indexInfo(name)
            #expect(info.state == .ready && info.progress == 100)
            #expect(info.entries == (try IndexOracle.entryCount(store, id: store.indexID(name)!)), "seed \(seed): entries of \(name)")
        }
        #expect(writesDuringBuild > 20)

        // The rows as stored are the truth; every query agrees with a filter over them.
        let rows = try IndexOracle.storedRows(store)
        #expect(try IndexOracle.integrityProblems(store) == [], "seed \(seed)")
        let now = store.now
        for category in ProductValues.categories + ["moved"] {
            let q = IndexQuery.equals(.string(Array(category.utf8)))
            #expect(try store.query(index: "by_cat", q) == IndexOracle.expected(Self.byCategory, q, rows: rows, now: now), "seed \(seed) \(category)")
        }
        for _ in 0..<50 {
            let a = g.price(), b = g.price()
            let q = IndexQuery.range(lo: min(a, b), hi: max(a, b))
            let limit = r.chance(50) ? nil : r.next(50)
            #expect(try store.query(index: "by_price", q, limit: limit) == IndexOracle.expected(Self.byPrice, q, rows: rows, now: now, limit: limit), "seed \(seed) \(q)")
        }
        try store.close()
    }

    @Test func dropStopsARunningBackfill() throws {
        let fs = MemoryFileSystem()
        let store = try ShardedStore.open(at: "/s", shards: 2, options: storeOptions(fs))
        var g = ProductValues(r: TestRandom(seed: 7))
        for i in 0..<2_000 { try store.put(Array("p:\(i)".utf8), g.value()) }
        let gate = Gate()
        store.setIndexHook { step in
            if case .filled(_, 3) = step { gate.wait() }
            return false
        }
        try store.createIndex(Self.byCategory)
        gate.waitUntilBlocked()
        let id = store.indexID("by_cat")!
        let dropping = BackgroundTask { #expect(throws: Never.self) { try store.dropIndex("by_cat") } }
        pause(milliseconds: 20)
        gate.open()
        dropping.join()
        try store.waitForIndexes()
        #expect(store.indexes().isEmpty)
        #expect(try IndexOracle.entryCount(store, id: id) == 0)
        try store.close()
        let again = try ShardedStore.open(at: "/s", options: storeOptions(fs))
        try again.waitForIndexes()
        #expect(again.indexes().isEmpty)
        try again.close()
    }
}
