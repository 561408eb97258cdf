import KVBase
import KVEngine
import KVFileSystem
import KVStore
import KVTestSupport
import Synchronization
import Testing

/// Crashes at random points of a reshard, on the in-memory file system: the store must
/// recover on reopen with every acknowledged write present (all writes use `.always`), no
/// key lost, duplicated or resurrected, and every shard holding only its own slots.
@Suite("Reshard crashes", .serialized)
struct ReshardCrashTests {
    enum Crash: String, CaseIterable, Sendable {
        case process, powerLoss, powerLossTorn
    }

    static let rounds = soakEnabled ? 150 : 8
    static let counts = [1, 2, 3, 4, 5, 7, 8]

    /// What the hook sees and does; the reshard runs on the test thread, so the hook (and the
    /// writes it makes) run there too.
    struct HookState {
        var rng: TestRandom
        var model: ModelStore
        var calls = 0
        var crashAt: Int
        var steps: [String] = []
        var switched = false
        var failures: [String] = []
    }

    static func preload(_ store: ShardedStore, _ r: inout TestRandom, _ model: inout ModelStore) throws {
        var batch = WriteBatch()
        for _ in 0..<(200 + r.next(400)) {
            let k = r.key(space: 1500)
            let v = r.value(maxLength: 40)
            batch.put(k, v)
            model.put(k, v)
            if batch.count == 100 {
                try store.write(batch, durability: .always)
                batch.removeAll()
            }
        }
        try store.write(batch, durability: .always)
    }

    static func pickCounts(_ r: inout TestRandom) -> (Int, Int) {
        let from = counts[r.next(counts.count)]
        var to = counts[r.next(counts.count)]
        if to == from { to = from == 8 ? 3 : from + 1 }
        return (from, to)
    }

    /// Reopens after a crash and checks the recovered store against `model`.
    static func checkRecovered(_ fs: MemoryFileSystem, _ model: ModelStore, counts: Set<Int>, _ context: String) throws {
        let store = try ShardedStore.open(at: "/s", options: storeOptions(fs, durability: .always))
        try store.waitForReshard()
        #expect(counts.contains(store.shardCount), "\(context): \(store.shardCount) shards, expected one of \(counts)")
        let got = try contents(store)
        #expect(got == model, "\(context): recovered \(got.count) keys, expected \(model.count)")
        try store.verify()
        let dirs = try fs.listDirectory("/s").filter { $0.hasPrefix("shard-") }
        #expect(dirs == (0..<store.shardCount).map(StoreDescriptor.directoryName), "\(context): directories \(dirs)")
        #expect(try StoreDescriptor.read(fs: fs, directory: "/s")?.phase == .stable, "\(context)")
        // The recovered store reshards and keeps working.
        let next = store.shardCount == 3 ? 6 : 3
        try store.setShardCount(next)
        try store.waitForReshard()
        #expect(try contents(store) == model, "\(context): after a further reshard to \(next)")
        try store.close()
    }

    @Test(arguments: Crash.allCases)
    func crashAtAnyStepRecovers(crash: Crash) throws {
        let seed = testSeed("reshard crash \(crash.rawValue)")
        var r = TestRandom(seed: seed)
        for round in 0..<Self.rounds {
            let fs = MemoryFileSystem()
            let (from, to) = Self.pickCounts(&r)
            let store = try ShardedStore.open(at: "/s", shards: from, options: storeOptions(fs, durability: .always))
            store.setSynchronousCleanup(true)
            var model = ModelStore()
            try Self.preload(store, &r, &model)

            let hookState = Mutex(HookState(rng: TestRandom(seed: r.rng.next()), model: model, crashAt: 1 + r.next(24)))
            store.setReshardHook { [weak store] step in
                guard let store else { return false }
                return hookState.withLock { h in
                    h.calls += 1
                    h.steps.append("\(step)")
                    if step == .switched { h.switched = true }
                    // Writes while the reshard runs (none at the step that holds the gate: they
                    // would wait for this very thread).
                    if !step.holdsGate {
                        for _ in 0..<h.rng.next(6) {
                            let k = h.rng.key(space: 1500)
                            do {
                                if h.rng.chance(75) {
                                    let v = h.rng.value(maxLength: 40)
                                    try store.put(k, v, durability: .always)
                                    h.model.put(k, v)
                                } else {
                                    try store.delete(k, durability: .always)
                                    h.model.delete(k)
                                }
                            } catch {
                                h.failures.append("write at \(step): \(error)")
                            }
                        }
                    }
                    return h.calls == h.crashAt
                }
            }
            var halted = false
            do {
                try store.setShardCount(to)
            } catch {
                halted = true
            }
            let h = hookState.withLock { $0 }
            let context = "seed \(seed) round \(round) \(from)→\(to) crash at call \(h.crashAt) of \(h.calls) (\(h.steps.last ?? "-"))"
            #expect(h.failures.isEmpty, "\(context): \(h.failures)")
            // Halted before the switch, the reshard fails; after it, the (synchronous) cleanup
            // stops and the reshard itself has succeeded.
            #expect(halted == (h.crashAt <= h.calls && (!h.switched || h.steps[h.crashAt - 1] == "switched")), "\(context)")
            store.setReshardHook(nil)
            store.haltForCrashTest()
            switch crash {
            case .process: fs.simulateProcessCrash()
            case .powerLoss: fs.simulatePowerLoss()
            case .powerLossTorn: fs.simulatePowerLoss(tornTailSeed: r.rng.next())
            }
            // Sometimes crash again, in the middle of the recovery.
            if r.chance(40) {
                let recovering = try ShardedStore.openDeferringCleanup(at: "/s", options: storeOptions(fs, durability: .always))
                recovering.setSynchronousCleanup(true)
                let crashAt = 1 + r.next(6)
                let calls = Mutex(0)
                recovering.setReshardHook { _ in
                    calls.withLock { n in
                        n += 1
                        return n == crashAt
                    }
                }
                recovering.resumeCleanup()
                recovering.haltForCrashTest()
                fs.simulatePowerLoss(tornTailSeed: r.rng.next())
            }
            try Self.checkRecovered(fs, h.model, counts: [h.switched ? to : from], context)
        }
    }

    @Test func ioFailureDuringReshardLeavesAConsistentStore() throws {
        let seed = testSeed("reshard I/O failure")
        var r = TestRandom(seed: seed)
        let operations: [MemoryFileSystem.Operation] = [.write, .sync, .create, .rename, .remove]
        for round in 0..<(soakEnabled ? 200 : 16) {
            let (from, to) = Self.pickCounts(&r)
            let op = operations[r.next(operations.count)]
            let preloadSeed = r.rng.next()
            // A dry run measures how many operations of this kind the reshard performs.
            var span = 1
            do {
                let fs = MemoryFileSystem()
                let store = try ShardedStore.open(at: "/s", shards: from, options: storeOptions(fs, durability: .always))
                store.setSynchronousCleanup(true)
                var pr = TestRandom(seed: preloadSeed)
                var m = ModelStore()
                try Self.preload(store, &pr, &m)
                let before = fs.count(of: op)
                try store.setShardCount(to)
                span = max(1, fs.count(of: op) - before)
                try store.close()
            }
            let fs = MemoryFileSystem()
            let store = try ShardedStore.open(at: "/s", shards: from, options: storeOptions(fs, durability: .always))
            store.setSynchronousCleanup(true)
            var pr = TestRandom(seed: preloadSeed)
            var model = ModelStore()
            try Self.preload(store, &pr, &model)
            // Sync failures are aimed at WALs, tables and the store descriptor, not at engine
            // manifests: a failed manifest sync is followed by the engine deleting the table the
            // (possibly persisted) manifest record names, which this test is not about.
            let path: String? = op == .sync ? [".log", ".sst", "STORE"][r.next(3)] : nil
            let skip = r.next(op == .sync ? max(1, span / 3) : span)
            let context = "seed \(seed) round \(round) \(from)→\(to) failing \(op) #\(skip) of \(span) on \(path ?? "any path")"
            fs.inject(.init(op, pathContains: path, skip: skip, count: 1, errno: 5))
            var failed = false
            do { try store.setShardCount(to) } catch { failed = true }
            fs.clearFaults()
            // Without a restart, reads see exactly the data (routing never leaves the owner).
            #expect(try contents(store) == model, "\(context): before restart (reshard \(failed ? "failed" : "succeeded"))")
            store.haltForCrashTest()
            fs.simulateProcessCrash()
            try Self.checkRecovered(fs, model, counts: failed ? [from, to] : [to], context)
        }
    }
}
