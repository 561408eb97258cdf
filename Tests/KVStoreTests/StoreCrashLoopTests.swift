import Dispatch
import KVBase
import KVEngine
import KVFileSystem
import KVLayout
import KVStore
import KVTestSupport
import Synchronization
import Testing

/// The embedded counterpart of `Tools/crashloop`: client threads write rows to a
/// ``ShardedStore`` on the in-memory file system with `always` durability (puts, puts with
/// expiry, deletes, batches across shards and within one hash tag, read-modify-writes,
/// active expiry, and now and then a reshard from another thread) while, at a random moment,
/// the process dies. Then the store is reopened and compared with what the threads were told.
///
/// The death: every file operation starts failing (nothing reaches the "disk" any more), the
/// store's threads are halted, and the file system then loses what a dead process or a power
/// failure loses (buffered appends; or everything not synced, optionally with torn tails).
/// With `always` durability every acknowledged write must survive all three. Each thread owns
/// its keys, so the expected state of every key is exact; the one write a thread had in flight
/// may have happened or not (per key, or all-or-nothing for a batch within one hash tag).
/// The store clock is frozen far in the future (so the wall-clock compaction filter never drops
/// a row the store still shows) and advanced between rounds, so rows also expire.
@Suite("Store crash loop", .serialized)
struct StoreCrashLoopTests {
    enum Crash: String, CaseIterable, Sendable {
        case process, powerLoss, powerLossTorn, cleanClose
    }

    /// A write sent but not acknowledged: each key ends in `before` or `after`.
    struct Pending {
        var what: String
        var before: [[UInt8]: StoredEntry?]
        var after: [[UInt8]: StoredEntry?]
        var atomic: Bool
    }

    struct WorkerState {
        var model: [[UInt8]: StoredEntry] = [:]
        var pending: Pending?
        var acked = 0
        var failures: [String] = []
    }

    /// One client thread and the keys it owns.
    final class Worker: Sendable {
        let id: Int
        let plain: [[UInt8]]
        let groups: [[[UInt8]]]
        let state = Mutex(WorkerState())

        init(id: Int, keys: Int) {
            self.id = id
            plain = (0..<keys).map { bytes("w\(id)/k\($0)") }
            groups = (0..<max(2, keys / 10)).map { g in (0..<4).map { bytes("{w\(id)g\(g)}/m\($0)") } }
        }

        var allKeys: [[UInt8]] { plain + groups.flatMap { $0 } }
    }

    /// What one run of the loop did (for the printed summary).
    struct Totals {
        var rounds = 0
        var acked = 0
        var inFlight = 0
        var applied = 0
        var keysChecked = 0
        var reshards = 0
    }

    /// A flag shared with the worker threads.
    final class Flag: Sendable {
        private let value = Atomic<Bool>(false)
        func set() { value.store(true, ordering: .releasing) }
        var isSet: Bool { value.load(ordering: .acquiring) }
    }

    static let far: Int64 = RowValue.wallClockMillis() + 10 * 365 * 86_400_000

    /// A short rendering for failure messages: the value's tag ("w<thread>.<seq>."), its length
    /// and expiry.
    static func show(_ e: StoredEntry?) -> String {
        guard let e else { return "absent" }
        let tag = String(decoding: e.value.prefix(while: { $0 != 0x7C }).prefix(12), as: UTF8.self)
        return "\(tag)… (\(e.value.count) bytes\(e.expiresAt.map { ", expires \($0 - far)" } ?? ""))"
    }

    static func live(_ e: StoredEntry?, _ now: Int64) -> StoredEntry? {
        guard let e, !(e.expiresAt.map { $0 <= now } ?? false) else { return nil }
        return e
    }

    /// Runs one thread's writes until `stop` is set or a call fails.
    static func runWorker(_ w: Worker, store: ShardedStore, seed: UInt64, clock: Int64, stop: Flag, frozen: Flag) {
        var r = TestRandom(seed: seed)
        var seq = 0
        func value(_ big: Bool = false) -> [UInt8] {
            seq += 1
            return bytes("w\(w.id).\(seq).") + r.value(maxLength: big ? 20_000 : 120)
        }
        while !stop.isSet {
            let model = w.state.withLock { $0.model }
            func cur(_ k: [UInt8]) -> StoredEntry? { live(model[k], clock) }
            var after: [[UInt8]: StoredEntry?] = [:]
            var atomic = false
            var what = ""
            var op: () throws -> Void
            switch r.next(100) {
            case 0..<30:
                let k = w.plain[r.next(w.plain.count)]
                let v = value(r.chance(4))
                after[k] = StoredEntry(value: v)
                what = "put"
                op = { try store.put(k, v) }
            case 30..<40:
                let k = w.plain[r.next(w.plain.count)]
                let e = StoredEntry(value: value(), expiresAt: clock + 1 + Int64(r.next(20_000)))
                after[k] = e
                what = "put with expiry"
                op = { try store.put(k, e.value, expiresAt: e.expiresAt) }
            case 40..<50:
                let k = w.plain[r.next(w.plain.count)]
                after[k] = .some(nil)
                what = "delete"
                op = { try store.delete(k) }
            case 50..<58, 58..<66:
                // A batch across shards (atomic per shard only), or within one hash tag (atomic).
                atomic = r.chance(50)
                let pool = atomic ? w.groups[r.next(w.groups.count)] : w.plain
                var batch = WriteBatch()
                for _ in 0..<(2 + r.next(4)) {
                    let k = pool[r.next(pool.count)]
                    if r.chance(75) {
                        let v = value()
                        batch.put(k, v)
                        after[k] = StoredEntry(value: v)
                    } else {
                        batch.delete(k)
                        after[k] = .some(nil)
                    }
                }
                what = atomic ? "batch in one hash tag" : "batch"
                op = { try store.write(batch) }
            case 66..<76:
                // Append, keeping the expiry (read-modify-write).
                let k = w.plain[r.next(w.plain.count)]
                seq += 1
                let suffix = bytes("|a\(w.id).\(seq)")
                var e = cur(k) ?? StoredEntry(value: [])
                e.value += suffix
                after[k] = e
                what = "append"
                op = {
                    try store.modify([k]) { rows in
                        if rows[0] == nil { rows[0] = StoredEntry(value: suffix) } else { rows[0]!.value += suffix }
                    }
                }
            case 76..<82:
                // Set or clear the expiry of a live row.
                let k = w.plain[r.next(w.plain.count)]
                let t: Int64? = r.chance(60) ? clock + 1 + Int64(r.next(20_000)) : nil
                if var e = cur(k) {
                    e.expiresAt = t
                    after[k] = e
                }
                what = t == nil ? "persist" : "expire"
                op = {
                    try store.modify([k]) { rows in
                        if rows[0] != nil { rows[0]!.expiresAt = t }
                    }
                }
            case 82..<87:
                // Swap two rows of one hash tag: one shard, one atomic batch.
                let g = w.groups[r.next(w.groups.count)]
                let (a, b) = (g[0], g[1 + r.next(3)])
                after[a] = .some(cur(b))
                after[b] = .some(cur(a))
                atomic = true
                what = "swap in one hash tag"
                op = { try store.modify([a, b]) { rows in rows.swapAt(0, 1) } }
            case 87..<89:
                what = "removeExpired"
                op = { try store.removeExpired(limit: 20) }
            default:
                let keys = w.allKeys
                let k = keys[r.next(keys.count)]
                let want = cur(k)
                what = "get"
                op = {
                    let got = try store.getEntry(k)
                    if got != want {
                        w.state.withLock {
                            $0.failures.append("thread \(w.id) get \(String(decoding: k, as: UTF8.self)): \(show(got)), expected \(show(want))")
                        }
                    }
                }
            }
            if !after.isEmpty {
                var before: [[UInt8]: StoredEntry?] = [:]
                for k in after.keys { before[k] = .some(cur(k)) }
                let pending = Pending(what: what, before: before, after: after, atomic: atomic)
                w.state.withLock { $0.pending = pending }
            }
            do {
                try op()
            } catch {
                // Errors are expected once the process is "dead"; before that they are failures.
                if !frozen.isSet {
                    w.state.withLock { $0.failures.append("thread \(w.id) \(what): \(error)") }
                }
                return
            }
            w.state.withLock { s in
                for (k, e) in after { s.model[k] = e ?? nil }
                s.pending = nil
                s.acked += 1
            }
        }
    }

    /// Reopens after the crash and checks every key; adopts what the store shows for writes in
    /// flight. Returns (keys checked, writes in flight, of which applied).
    static func checkRecovered(
        _ store: ShardedStore, _ workers: [Worker], shardCounts: Set<Int>, clock: Int64, _ context: String
    ) throws -> (Int, Int, Int) {
        #expect(shardCounts.contains(store.shardCount), "\(context): \(store.shardCount) shards, expected one of \(shardCounts.sorted())")
        var checked = 0, inFlight = 0, applied = 0
        var known = Set<[UInt8]>()
        var liveKeys = Set<[UInt8]>()
        for w in workers {
            let (model, pending) = w.state.withLock { ($0.model, $0.pending) }
            var observed: [[UInt8]: StoredEntry?] = [:]
            for k in w.allKeys {
                known.insert(k)
                let got = try store.getEntry(k)
                observed[k] = .some(got)
                if got != nil { liveKeys.insert(k) }
                checked += 1
                if let p = pending, let alt = p.after[k] {
                    let before = live(p.before[k] ?? nil, clock), afterState = live(alt, clock)
                    let ok = got == before || got == afterState
                    #expect(ok, "\(context): thread \(w.id) key \(String(decoding: k, as: UTF8.self)) after \(p.what) in flight: \(show(got)), expected \(show(before)) or \(show(afterState))")
                } else {
                    let ok = got == live(model[k], clock)
                    #expect(ok, "\(context): thread \(w.id) key \(String(decoding: k, as: UTF8.self)): \(show(got)), expected \(show(live(model[k], clock)))")
                }
            }
            if let p = pending {
                inFlight += 1
                let flags = p.after.keys.map { k -> (before: Bool, after: Bool) in
                    let got = observed[k] ?? nil
                    return (got == live(p.before[k] ?? nil, clock), got == live(p.after[k] ?? nil, clock))
                }
                if flags.contains(where: { $0.after && !$0.before }) { applied += 1 }
                if p.atomic {
                    #expect(flags.allSatisfy(\.before) || flags.allSatisfy(\.after), "\(context): thread \(w.id) \(p.what) half applied")
                }
            }
            w.state.withLock { s in
                s.pending = nil
                for (k, e) in observed { s.model[k] = e ?? nil }
            }
        }
        // Nothing else is visible: no key nobody wrote, no resurrected key.
        let scanned = try store.scan()
        var scannedKeys = Set<[UInt8]>()
        while let (k, _) = try scanned.nextRow() { scannedKeys.insert(k) }
        #expect(scannedKeys.isSubset(of: known), "\(context): \(scannedKeys.subtracting(known).count) keys nobody wrote")
        #expect(scannedKeys == liveKeys, "\(context): the scan shows \(scannedKeys.count) keys, point reads \(liveKeys.count)")
        #expect(try store.count() == liveKeys.count, "\(context)")
        try store.verify()
        return (checked, inFlight, applied)
    }

    static func run(seed: UInt64, rounds: Int, threads: Int, keys: Int, timeLimit: Duration) throws -> Totals {
        var r = TestRandom(seed: seed)
        let fs = MemoryFileSystem()
        var options = storeOptions(fs, durability: .always)
        options.writeBufferSize = r.chance(50) ? 8 << 10 : 32 << 10
        var store = try ShardedStore.open(at: "/s", shards: 4, options: options)
        var clock = far
        store.freezeClock(at: clock)
        let workers = (0..<threads).map { Worker(id: $0, keys: keys) }
        var totals = Totals()
        let started = ContinuousClock.now
        for round in 0..<rounds where ContinuousClock.now - started < timeLimit {
            let crash = Crash.allCases[r.next(100) < 10 ? 3 : r.next(3)]
            let stop = Flag()
            let frozen = Flag()
            let before = store.shardCount
            let target = [1, 2, 3, 4, 6, 8].filter { $0 != before }[r.next(5)]
            let reshard = r.chance(30)
            let reshardOutcome = Mutex<Bool?>(nil)
            let s = store, c = clock
            let tasks = workers.map { w in
                let ws = r.rng.next()
                return BackgroundTask { runWorker(w, store: s, seed: ws, clock: c, stop: stop, frozen: frozen) }
            }
            var resharder: BackgroundTask?
            if reshard {
                let delay = r.next(20)
                resharder = BackgroundTask {
                    pause(milliseconds: delay)
                    do {
                        try s.setShardCount(target)
                        reshardOutcome.withLock { $0 = true }
                    } catch {
                        reshardOutcome.withLock { $0 = false }
                    }
                }
                totals.reshards += 1
            }
            // Let the threads run for a random number of acknowledged writes (bounded in time).
            let goal = r.next(400)
            let deadline = ContinuousClock.now + .seconds(2)
            while workers.reduce(0, { $0 + $1.state.withLock { $0.acked } }) < goal && ContinuousClock.now < deadline {
                pause(milliseconds: 1)
            }
            let context = "seed \(seed) round \(round) (\(crash), shards \(before)\(reshard ? "→\(target)" : ""))"
            if crash == .cleanClose {
                stop.set()
                for t in tasks { t.join() }
                resharder?.join()
                try store.waitForReshard()
                try store.close()
            } else {
                // The process dies: from here on nothing reaches the disk. The threads run on
                // into the failures (their writes in flight are the uncertain ones) until the
                // halted store refuses them.
                frozen.set()
                for op in [MemoryFileSystem.Operation.write, .sync, .rename, .create, .remove, .read] {
                    fs.inject(.init(op, count: Int.max, errno: 5))
                }
                store.haltForCrashTest()
                stop.set()
                for t in tasks { t.join() }
                resharder?.join()
                fs.clearFaults()
                switch crash {
                case .process: fs.simulateProcessCrash()
                case .powerLoss: fs.simulatePowerLoss()
                default: fs.simulatePowerLoss(tornTailSeed: r.rng.next())
                }
            }
            let outcome = reshardOutcome.withLock { $0 }
            // A reshard that returned switched the count; one that failed or was cut short by the
            // crash may have switched it or not.
            let counts: Set<Int> = !reshard ? [before] : outcome == true ? [target] : [before, target]
            for w in workers {
                let failures = w.state.withLock { $0.failures }
                #expect(failures.isEmpty, "\(context): \(failures)")
            }
            totals.acked += workers.reduce(0) { $0 + $1.state.withLock { s in s.acked } }
            for w in workers { w.state.withLock { $0.acked = 0 } }
            // Time passes between runs: some rows expire.
            clock += Int64(r.next(4_000))
            store = try ShardedStore.open(at: "/s", options: options)
            store.freezeClock(at: clock)
            try store.waitForReshard()
            let (checked, inFlight, applied) = try checkRecovered(store, workers, shardCounts: counts, clock: clock, context)
            totals.keysChecked += checked
            totals.inFlight += inFlight
            totals.applied += applied
            totals.rounds += 1
        }
        try store.close()
        return totals
    }

    @Test func acknowledgedWritesSurviveCrashesAtRandomMoments() throws {
        let seed = testSeed("store crash loop")
        let rounds = soakEnabled ? 400 : 20
        let totals = try Self.run(seed: seed, rounds: rounds, threads: 3, keys: 60, timeLimit: soakEnabled ? .seconds(1800) : .seconds(40))
        print("store crash loop: seed \(seed): \(totals.rounds) rounds, \(totals.acked) acknowledged operations, \(totals.inFlight) in flight at a crash (\(totals.applied) applied), \(totals.keysChecked) key checks, \(totals.reshards) reshards")
        #expect(totals.rounds >= min(rounds, 3))
        #expect(totals.acked > 0)
    }
}
