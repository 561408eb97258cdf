import KVBase
import KVEngine
import KVFileSystem
import KVIndex
import KVLayout
@testable import KVStore
import KVTestSupport
import Synchronization
import Testing

/// Crashes (process crash, power loss, power loss with torn tails) during writes, back-fills
/// and drops, on the in-memory file system with `always` durability: after reopening, every
/// acknowledged write is present, every index entry has its row and every row that should be
/// indexed has its entry.
@Suite("Index crashes", .serialized)
struct IndexCrashTests {
    enum Crash: String, CaseIterable, Sendable {
        case process, powerLoss, powerLossTorn
    }

    static let rounds = soakEnabled ? 60 : 5
    static let definitions = IndexModelTests.pool

    static func crash(_ store: ShardedStore, _ fs: MemoryFileSystem, _ crash: Crash, _ r: inout TestRandom) {
        store.setIndexHook(nil)
        store.haltForCrashTest()
        switch crash {
        case .process: fs.simulateProcessCrash()
        case .powerLoss: fs.simulatePowerLoss()
        case .powerLossTorn: fs.simulatePowerLoss(tornTailSeed: r.rng.next())
        }
    }

    static func open(_ fs: MemoryFileSystem) throws -> ShardedStore {
        try ShardedStore.open(at: "/s", options: storeOptions(fs, durability: .always))
    }

    /// Checks a recovered store: rows equal the model (the uncertain key may hold either of
    /// its two states), the indexes are the expected ones and ready, entries match rows, and
    /// queries match brute force.
    static func checkRecovered(
        _ store: ShardedStore, rows model: [[UInt8]: StoredEntry], uncertain: ([UInt8], StoredEntry?, StoredEntry?)?,
        indexes: Set<String>, _ context: String, _ r: inout TestRandom
    ) throws {
        try store.waitForIndexes()
        var rows = try IndexOracle.storedRows(store)
        if let (k, before, after) = uncertain {
            #expect(rows[k] == before || rows[k] == after, "\(context): uncertain key \(printable(k))")
            rows[k] = before
        }
        #expect(rows == model, "\(context): \(rows.count) rows recovered, \(model.count) expected")
        #expect(Set(store.indexes().map(\.name)) == indexes, "\(context)")
        #expect(store.indexes().allSatisfy { $0.state == .ready }, "\(context)")
        #expect(try IndexOracle.integrityProblems(store) == [], "\(context)")
        let stored = try IndexOracle.storedRows(store)
        var g = ProductValues(r: TestRandom(seed: r.rng.next()))
        for info in store.indexes() {
            for _ in 0..<5 {
                let q = IndexModelTests.query(info.definition, &r, &g)
                let want = IndexOracle.expected(info.definition, q, rows: stored, now: store.now)
                #expect(try store.query(index: info.name, q) == want, "\(context): \(info.name) \(q)")
            }
        }
    }

    @Test(arguments: Crash.allCases)
    func crashDuringWrites(crash: Crash) throws {
        let seed = testSeed("index crash during writes \(crash.rawValue)")
        var r = TestRandom(seed: seed)
        var failedWrites = 0
        for round in 0..<Self.rounds {
            let fs = MemoryFileSystem()
            var g = ProductValues(r: TestRandom(seed: r.rng.next()))
            let store = try ShardedStore.open(at: "/s", shards: 1 + r.next(4), options: storeOptions(fs, durability: .always))
            var names = Set<String>()
            for def in Self.definitions where r.chance(50) {
                try store.createIndex(def)
                names.insert(def.name)
            }
            try store.waitForIndexes()
            var model: [[UInt8]: StoredEntry] = [:]
            let now = store.now
            let writes = r.next(300)
            for _ in 0..<writes {
                let k = IndexModelTests.key(&r)
                if r.chance(80) {
                    let e = StoredEntry(value: g.value(), expiresAt: r.chance(20) ? now + 3_600_000 + Int64(r.next(1000)) : nil)
                    try store.put(k, e.value, expiresAt: e.expiresAt)
                    model[k] = e
                } else {
                    try store.delete(k)
                    model[k] = nil
                }
            }
            // Every other round ends with a write whose WAL sync fails: not acknowledged, it
            // may or may not survive, but never half of it.
            var uncertain: ([UInt8], StoredEntry?, StoredEntry?)?
            if round % 2 == 0 {
                let k = IndexModelTests.key(&r)
                let e = StoredEntry(value: g.value())
                fs.inject(.init(.sync, pathContains: ".log", skip: 0, count: 1, errno: 5))
                do {
                    try store.put(k, e.value)
                    model[k] = e
                } catch {
                    uncertain = (k, model[k], e)
                    failedWrites += 1
                }
                fs.clearFaults()
            }
            let context = "seed \(seed) round \(round) \(crash.rawValue) after \(writes) writes, indexes \(names.sorted())"
            Self.crash(store, fs, crash, &r)
            let recovered = try Self.open(fs)
            try Self.checkRecovered(recovered, rows: model, uncertain: uncertain, indexes: names, context, &r)
            try recovered.close()
        }
        #expect(failedWrites == (Self.rounds + 1) / 2, "seed \(seed): a write with a failing sync was acknowledged")
    }

    @Test(arguments: Crash.allCases)
    func crashDuringBackfill(crash: Crash) throws {
        let seed = testSeed("index crash during back-fill \(crash.rawValue)")
        var r = TestRandom(seed: seed)
        var crashedMidBuild = 0
        for round in 0..<Self.rounds {
            let fs = MemoryFileSystem()
            var g = ProductValues(r: TestRandom(seed: r.rng.next()))
            let shards = 1 + r.next(4)
            let store = try ShardedStore.open(at: "/s", shards: shards, options: storeOptions(fs, durability: .always))
            var model: [[UInt8]: StoredEntry] = [:]
            var batch = WriteBatch()
            for i in 0..<(300 + r.next(900)) {
                let k = Array("p:\(i)".utf8)
                let v = g.value()
                batch.put(k, v)
                model[k] = StoredEntry(value: v)
                if batch.count == 200 {
                    try store.write(batch, durability: .always)
                    batch.removeAll()
                }
            }
            try store.write(batch, durability: .always)

            // The hook writes between back-fill batches and crashes at a random step.
            struct HookState {
                var r: TestRandom
                var g: ProductValues
                var model: [[UInt8]: StoredEntry]
                var calls = 0
                var crashAt: Int
                var steps: [String] = []
                var failures: [String] = []
            }
            let crashAt = 1 + r.next(2 + 2 * shards * 6)
            let hook = Mutex(HookState(r: TestRandom(seed: r.rng.next()), g: ProductValues(r: TestRandom(seed: r.rng.next())), model: model, crashAt: crashAt))
            store.setIndexHook { [weak store] step in
                guard let store else { return false }
                return hook.withLock { h in
                    h.calls += 1
                    h.steps.append("\(step)")
                    if h.calls == h.crashAt { return true }
                    for _ in 0..<h.r.next(4) {
                        let k = IndexModelTests.key(&h.r)
                        do {
                            if h.r.chance(80) {
                                let v = h.g.value()
                                try store.put(k, v, durability: .always)
                                h.model[k] = StoredEntry(value: v)
                            } else {
                                try store.delete(k, durability: .always)
                                h.model[k] = nil
                            }
                        } catch {
                            // The other back-fill may have halted the store meanwhile.
                            if !store.isHalted { h.failures.append("write at \(step): \(error)") }
                        }
                    }
                    return false
                }
            }
            var names = Set<String>()
            for def in Self.definitions where names.isEmpty || r.chance(30) {
                try store.createIndex(def)
                names.insert(def.name)
            }
            try store.waitForIndexes()
            let h = hook.withLock { $0 }
            let context = "seed \(seed) round \(round) \(crash.rawValue) \(shards) shards crash at call \(h.crashAt) of \(h.calls) (\(h.steps.last ?? "-"))"
            #expect(h.failures.isEmpty, "\(context): \(h.failures)")
            if h.crashAt <= h.calls { crashedMidBuild += 1 }
            Self.crash(store, fs, crash, &r)

            // Sometimes crash again while the back-fill resumes.
            if r.chance(40) {
                let resuming = try ShardedStore.openDeferringCleanup(at: "/s", options: storeOptions(fs, durability: .always))
                let again = 1 + r.next(6)
                let calls = Mutex(0)
                resuming.setIndexHook { _ in calls.withLock { n in n += 1; return n == again } }
                resuming.resumeCleanup()
                try resuming.waitForIndexes()
                Self.crash(resuming, fs, .powerLossTorn, &r)
            }
            let recovered = try Self.open(fs)
            try Self.checkRecovered(recovered, rows: h.model, uncertain: nil, indexes: names, context, &r)
            try recovered.close()
        }
        #expect(crashedMidBuild > 0, "seed \(seed): no round crashed during a back-fill")
    }

    @Test(arguments: Crash.allCases)
    func crashDuringDrop(crash: Crash) throws {
        let seed = testSeed("index crash during drop \(crash.rawValue)")
        var r = TestRandom(seed: seed)
        for round in 0..<Self.rounds {
            let fs = MemoryFileSystem()
            var g = ProductValues(r: TestRandom(seed: r.rng.next()))
            let shards = 1 + r.next(4)
            let store = try ShardedStore.open(at: "/s", shards: shards, options: storeOptions(fs, durability: .always))
            var model: [[UInt8]: StoredEntry] = [:]
            for i in 0..<(100 + r.next(400)) {
                let k = Array("p:\(i)".utf8)
                let v = g.value()
                try store.put(k, v)
                model[k] = StoredEntry(value: v)
            }
            for def in Self.definitions { try store.createIndex(def) }
            try store.waitForIndexes()
            let dropped = Self.definitions[r.next(Self.definitions.count)].name
            let id = store.indexID(dropped)!
            let crashAt = 1 + r.next(shards)
            let calls = Mutex(0)
            store.setIndexHook { _ in calls.withLock { n in n += 1; return n == crashAt } }
            try store.dropIndex(dropped)
            try store.waitForIndexes()
            let context = "seed \(seed) round \(round) \(crash.rawValue) \(shards) shards, drop \(dropped) crashing at step \(crashAt)"
            Self.crash(store, fs, crash, &r)
            let recovered = try Self.open(fs)
            try Self.checkRecovered(recovered, rows: model, uncertain: nil, indexes: Set(Self.definitions.map(\.name)).subtracting([dropped]), context, &r)
            #expect(try IndexOracle.entryCount(recovered, id: id) == 0, "\(context)")
            // The name is free again and gets a new id.
            try recovered.createIndex(Self.definitions.first { $0.name == dropped }!)
            try recovered.waitForIndexes()
            #expect(recovered.indexID(dropped)! > id, "\(context)")
            #expect(try IndexOracle.integrityProblems(recovered) == [], "\(context)")
            try recovered.close()
        }
    }
}
