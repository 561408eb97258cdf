import KVBase
import KVEngine
import KVFileSystem
import KVLayout
@testable import KVStore
import KVTestSupport
import Synchronization
import Testing

/// Store transactions: reads of the body's own writes, nothing committed when the body
/// throws, WATCH stamps, isolation from concurrent readers, and all-or-nothing after crashes
/// and failing syncs (model-based, seeded).
@Suite("Store transactions", .serialized)
struct TransactionTests {
    /// Keys in distinct shards of a 4-shard store (one per shard).
    static func keysInDistinctShards(_ store: ShardedStore) -> [[UInt8]] {
        var byShard: [Int: [UInt8]] = [:]
        var i = 0
        while byShard.count < store.shardCount && i < 10_000 {
            let k = bytes("k\(i)")
            if byShard[store.shard(for: k)] == nil { byShard[store.shard(for: k)] = k }
            i += 1
        }
        return byShard.keys.sorted().map { byShard[$0]! }
    }

    @Test func bodySeesItsOwnWritesAndCommitsAcrossShards() throws {
        let fs = MemoryFileSystem()
        let store = try ShardedStore.open(at: "/s", shards: 4, options: storeOptions(fs))
        defer { try? store.close() }
        let keys = Self.keysInDistinctShards(store)
        #expect(keys.count == 4)
        try store.put(keys[0], bytes("old"))
        let seenInside = try store.transaction { () throws -> [UInt8]? in
            for k in keys { try store.put(k, bytes("new")) }
            try store.delete(keys[3])
            _ = try store.modify([keys[1]]) { rows in rows[0] = StoredEntry(value: rows[0]!.value + bytes("+")) }
            // Another thread sees none of it before the commit.
            let outside = Mutex<[UInt8]?>(nil)
            let t = BackgroundTask { outside.withLock { $0 = try? store.get(keys[0]) } }
            t.join()
            #expect(outside.withLock { $0 } == bytes("old"))
            #expect(try store.get(keys[3]) == nil)
            return try store.get(keys[1])
        }
        #expect(seenInside == bytes("new+"))
        #expect(try store.get(keys[0]) == bytes("new"))
        #expect(try store.get(keys[1]) == bytes("new+"))
        #expect(try store.get(keys[2]) == bytes("new"))
        #expect(try store.get(keys[3]) == nil)
        // The intent and markers are deleted at close; a reopen finds nothing to redo.
        try store.close()
        let again = try ShardedStore.open(at: "/s", options: storeOptions(fs))
        defer { try? again.close() }
        #expect(try again.get(keys[2]) == bytes("new"))
        for shard in 0..<4 { #expect(try Self.transactionRecords(again, shard: shard) == 0) }
    }

    @Test func bodyThatThrowsCommitsNothing() throws {
        let store = try ShardedStore.open(at: "/s", shards: 3, options: storeOptions(MemoryFileSystem()))
        defer { try? store.close() }
        let keys = Self.keysInDistinctShards(store)
        struct Stop: Error {}
        #expect(throws: Stop.self) {
            try store.transaction {
                for k in keys { try store.put(k, bytes("x")) }
                throw Stop()
            }
        }
        for k in keys { #expect(try store.get(k) == nil) }
        // Not nestable.
        #expect(throws: KVError.self) { try store.transaction { try store.transaction {} } }
    }

    @Test func watchStampsSeeEveryWriteAndExpiry() throws {
        let store = try ShardedStore.open(at: "/s", shards: 2, options: storeOptions(MemoryFileSystem()))
        defer { try? store.close() }
        store.beginWatching()
        defer { store.endWatching() }
        let k = bytes("watched")
        try store.put(k, bytes("1"))
        var stamp = try store.watchStamp(k)
        #expect(!store.watchedKeyChanged(stamp, k))
        try store.put(bytes("other"), bytes("1"))
        #expect(!store.watchedKeyChanged(stamp, k))
        try store.put(k, bytes("1"))  // the same value again
        #expect(store.watchedKeyChanged(stamp, k))
        stamp = try store.watchStamp(k)
        try store.delete(k)
        #expect(store.watchedKeyChanged(stamp, k))
        stamp = try store.watchStamp(k)
        try store.transaction { try store.put(k, bytes("2")) }
        #expect(store.watchedKeyChanged(stamp, k))
        try store.put(k, bytes("3"), expiresAt: store.now + 1000)
        stamp = try store.watchStamp(k)
        #expect(!store.watchedKeyChanged(stamp, k))
        store.advanceClock(by: 2000)
        #expect(store.watchedKeyChanged(stamp, k))
    }

    /// A writer commits transactions setting one key per shard to the same counter while a
    /// reader checks that a later point read never goes back (the first key's shard commits
    /// first), then, in a second round, that a store snapshot never holds two values. (One
    /// reader at a time: a reader retrying snapshots would starve the other.)
    @Test(arguments: [false, true])
    func readersNeverSeeHalfATransaction(snapshots: Bool) throws {
        let store = try ShardedStore.open(at: "/s", shards: 4, options: storeOptions(MemoryFileSystem()))
        defer { try? store.close() }
        let keys = Self.keysInDistinctShards(store)
        for k in keys { try store.put(k, bytes("0")) }
        // Half-committed transactions last long enough for the reader to run into them.
        store.transactions.partHook.withLock { $0 = { pause(milliseconds: 1) } }
        let stop = Atomic<Bool>(false)
        let problems = Mutex<[String]>([])
        let reads = Atomic<Int>(0)
        let reader = BackgroundTask {
            var n = 0
            while !stop.load(ordering: .relaxed) && n < 1_000_000 {
                n += 1
                do {
                    if snapshots {
                        let snap = store.snapshot()
                        let values = try keys.map { try store.get($0, snapshot: snap) }
                        if Set(values.map { $0 ?? [] }).count != 1 { problems.withLock { $0.append("snapshot saw \(values)") } }
                    } else {
                        let first = Int(String(decoding: try store.get(keys[0]) ?? [], as: UTF8.self)) ?? -1
                        let last = Int(String(decoding: try store.get(keys[3]) ?? [], as: UTF8.self)) ?? -1
                        if last < first { problems.withLock { $0.append("point reads went back: \(first) then \(last)") } }
                    }
                } catch {
                    problems.withLock { $0.append("\(error)") }
                }
            }
            reads.store(n, ordering: .relaxed)
        }
        for i in 1...100 {
            try store.transaction { for k in keys { try store.put(k, bytes(String(i))) } }
        }
        stop.store(true, ordering: .relaxed)
        reader.join()
        #expect(reads.load(ordering: .relaxed) > 100)
        #expect(problems.withLock { Array($0.prefix(5)) } == [])
    }

    enum Crash: String, CaseIterable, Sendable { case process, powerLoss }

    /// Random transactions and plain writes over 2–4 shards with `always` durability; a sync
    /// fails at a random point (the write it belongs to is not acknowledged), then a crash.
    /// After reopening, every acknowledged write is there, and the failed transaction is
    /// there whole or not at all.
    @Test(arguments: Crash.allCases)
    func crashedTransactionsAreWholeOrAbsent(crash: Crash) throws {
        let seed = testSeed("transaction crash \(crash.rawValue)")
        var r = TestRandom(seed: seed)
        let rounds = soakEnabled ? 200 : 24
        var wholeAfterFailure = 0
        for round in 0..<rounds {
            let fs = MemoryFileSystem()
            let store = try ShardedStore.open(at: "/s", shards: 2 + r.next(3), options: storeOptions(fs, durability: .always))
            var model: [[UInt8]: [UInt8]] = [:]
            var failed: [[UInt8]: [UInt8]?]?  // the failed transaction's writes
            let ops = 5 + r.next(40)
            let failAt = r.next(ops)
            for op in 0..<ops {
                var writes: [[UInt8]: [UInt8]?] = [:]
                for _ in 0..<(1 + r.next(8)) {
                    writes[r.key(space: 64)] = r.chance(80) ? bytes("v\(round).\(op).\(r.next(1000))") : .some(nil)
                }
                if op == failAt {
                    fs.inject(.init(.sync, pathContains: ".log", skip: r.next(3), count: 1_000_000, errno: 5))
                }
                do {
                    try store.transaction {
                        for (k, v) in writes { if let v { try store.put(k, v) } else { try store.delete(k) } }
                    }
                    for (k, v) in writes { model[k] = v }
                } catch {
                    failed = writes
                    break
                }
            }
            let context = "seed \(seed) round \(round)"
            store.haltForCrashTest()
            fs.clearFaults()
            switch crash {
            case .process: fs.simulateProcessCrash()
            case .powerLoss: fs.simulatePowerLoss()
            }
            let recovered = try ShardedStore.open(at: "/s", options: storeOptions(fs, durability: .always))
            var found: [[UInt8]: [UInt8]] = [:]
            let scan = try recovered.scan()
            while let (k, v) = try scan.nextEntry() { found[k] = v }
            if let failed {
                let whole = failed.allSatisfy { found[$0.key] == $0.value }
                let absent = failed.allSatisfy { found[$0.key] == model[$0.key] }
                #expect(whole || absent, "\(context): a failed transaction is half there")
                if whole && !absent { wholeAfterFailure += 1 }
                for (k, v) in failed where whole { model[k] = v }
            }
            let differing = Set(found.keys).union(model.keys).filter { found[$0] != model[$0] }
            #expect(differing.isEmpty, "\(context): \(differing.count) keys differ from the model")
            for shard in 0..<recovered.shardCount { #expect(try Self.transactionRecords(recovered, shard: shard) == 0, "\(context)") }
            try recovered.close()
        }
        print("[transaction crash \(crash.rawValue)] \(wholeAfterFailure) failed transactions recovered whole")
    }

    /// Intent and marker records left in a shard.
    static func transactionRecords(_ store: ShardedStore, shard: Int) throws -> Int {
        let it = try store.currentRouting().shards[shard].db.makeIterator()
        try it.seek(TransactionRecord.keyPrefix)
        var n = 0
        while it.isValid && it.keyView.starts(with: TransactionRecord.keyPrefix) {
            n += 1
            try it.next()
        }
        return n
    }

    @Test func recordCodecRoundTripsAndRejectsDamage() throws {
        let r = TransactionRecord(
            id: 7, coordinator: 1, participants: [1, 3], isIntent: true,
            records: [.init(shard: 3, slot: 12000, isPut: true, key: bytes("a"), value: bytes("b")),
                      .init(shard: 3, slot: 5, isPut: false, key: bytes("c"), value: [])])
        let key = TransactionRecord.key(id: 7)
        let v = r.encoded()
        let back = try key.withUnsafeBytes { k in try v.withUnsafeBytes { try TransactionRecord.decode(key: k, value: $0, file: "f") } }
        #expect(back == r)
        for i in 0..<v.count {
            var bad = v
            bad[i] ^= 0x10
            #expect(throws: KVError.self) { try bad.withUnsafeBytes { try TransactionRecord.decode($0, file: "f") } }
        }
        #expect(throws: KVError.self) { try Array(v.prefix(9)).withUnsafeBytes { try TransactionRecord.decode($0, file: "f") } }
    }
}
