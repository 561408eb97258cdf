#if canImport(Glibc)
import Glibc
#endif
import KVBase
import KVFileSystem
import KVTestSupport
import Testing

@testable import KVEngine

/// Random I/O faults — EIO or ENOSPC on the Nth write, fsync, rename, read, create or remove,
/// once or until cleared, on any file or on one kind — while a workload runs. The engine must
/// latch the first write-path failure (every later write fails; none succeeds after a hole in
/// the log), keep answering reads with the right data, and after the fault clears, a reopen
/// (after a clean close, a process crash, or — with `always` — a power loss) must hold every
/// acknowledged write, with each failed write either applied whole or not at all.
@Suite("Fault injection")
struct FaultInjectionTests {
    enum End: String, CaseIterable, Sendable {
        case close, processCrash, powerLoss
    }

    /// The state a key may be in: the acknowledged value, or one of the failed writes' values.
    struct Expected {
        var definite: [[UInt8]: [UInt8]] = [:]
        var possible: [[UInt8]: [[UInt8]?]] = [:]

        func allows(_ k: [UInt8], _ v: [UInt8]?) -> Bool {
            v == definite[k] || (possible[k]?.contains(where: { $0 == v }) ?? false)
        }

        var keys: Set<[UInt8]> { Set(definite.keys).union(possible.keys) }
    }

    static func options(_ fs: MemoryFileSystem, durability: Durability) -> Options {
        var o = memoryOptions(fs, durability: durability)
        o.writeBufferSize = 4 << 10
        o.blockSize = 512
        o.blockCacheCapacity = 32 << 10
        o.level0CompactionTrigger = 2
        return o
    }

    /// Reads every key the test knows; each read is right or fails with an I/O error (when
    /// reads are being failed). Returns the number of reads that failed.
    static func checkReads(_ db: Database, _ e: Expected, readsMayFail: Bool, _ context: String) -> Int {
        var failed = 0
        for k in e.keys {
            do {
                let v = try db.get(k)
                #expect(e.allows(k, v), "\(context): get \(String(decoding: k, as: UTF8.self)) returned \(v.map { String(decoding: $0, as: UTF8.self) } ?? "nil")")
            } catch {
                failed += 1
                #expect(readsMayFail, "\(context): a read failed while reads work: \(error)")
            }
        }
        return failed
    }

    @Test func randomFaultsLatchServeReadsAndLoseNothing() throws {
        let seed = testSeed("fault injection")
        var r = TestRandom(seed: seed)
        let operations: [MemoryFileSystem.Operation] = [.write, .sync, .rename, .read, .create, .remove]
        let paths: [String?] = [nil, nil, ".log", ".sst", "MANIFEST", "CURRENT"]
        var latched = 0, rounds = 0, refusedOpens = 0
        for round in 0..<(soakEnabled ? 600 : 60) {
            rounds += 1
            let fs = MemoryFileSystem()
            let durability: Durability = r.chance(70) ? .always : .everysec
            let options = Self.options(fs, durability: durability)
            var db = try Database.open(at: "/db", options: options)
            var e = Expected()
            for i in 0..<(50 + r.next(300)) {
                let k = bytes("k\(r.next(200))")
                let v = bytes("pre\(i)-") + r.value(maxLength: 60)
                try db.put(k, v)
                e.definite[k] = v
            }
            if r.chance(50) { try db.flush() }
            let op = operations[r.next(operations.count)]
            let path = paths[r.next(paths.count)]
            let errno: Int32 = r.chance(50) ? 5 : 28
            let persistent = r.chance(40)
            fs.inject(.init(op, pathContains: path, skip: r.next(30), count: persistent ? Int.max : 1, errno: errno))
            let context = "seed \(seed) round \(round): \(op) on \(path ?? "any file") fails with errno \(errno)\(persistent ? " until cleared" : " once") (\(durability))"
            var writeFailed = false
            for i in 0..<400 {
                let k = bytes("k\(r.next(200))")
                switch r.next(20) {
                case 0..<12:
                    var batch = WriteBatch()
                    var effects: [([UInt8], [UInt8]?)] = []
                    for j in 0..<(1 + r.next(3)) {
                        let key = j == 0 ? k : bytes("k\(r.next(200))")
                        if r.chance(80) {
                            let v = bytes("w\(i).\(j)-") + r.value(maxLength: 80)
                            batch.put(key, v)
                            effects.append((key, v))
                        } else {
                            batch.delete(key)
                            effects.append((key, nil))
                        }
                    }
                    do {
                        try db.write(batch)
                        #expect(!writeFailed, "\(context): a write succeeded after an earlier write failed")
                        for (key, v) in effects {
                            e.definite[key] = v
                            e.possible[key] = nil
                        }
                    } catch {
                        writeFailed = true
                        for (key, v) in effects { e.possible[key, default: []].append(v) }
                    }
                case 12..<18:
                    do {
                        let v = try db.get(k)
                        #expect(e.allows(k, v), "\(context): get during the fault returned a wrong value")
                    } catch {
                        #expect(op == .read, "\(context): get failed though reads work: \(error)")
                    }
                case 18:
                    // May fail with the fault (then later writes may fail: latched).
                    try? db.flush()
                default:
                    try? db.compactRange(nil, nil)
                }
            }
            if writeFailed { latched += 1 }
            // Reads go on during the fault (failing only when reads are what fails) ...
            _ = Self.checkReads(db, e, readsMayFail: op == .read, "\(context), fault active")
            fs.clearFaults()
            // ... and are all right once it clears, latched or not.
            _ = Self.checkReads(db, e, readsMayFail: false, "\(context), fault cleared")
            var end = End.allCases[r.next(3)]
            if end == .powerLoss && durability != .always { end = .processCrash }
            switch end {
            case .close:
                try? db.close()
            case .processCrash:
                db.haltForCrashTest()
                fs.simulateProcessCrash()
            case .powerLoss:
                db.haltForCrashTest()
                fs.simulatePowerLoss(tornTailSeed: r.rng.next())
            }
            // Sometimes the disk is still failing at the first reopen: it fails cleanly, and
            // the next one works.
            if r.chance(30) {
                fs.inject(.init(operations[r.next(operations.count)], skip: r.next(8), count: 1, errno: errno))
                do {
                    let d = try Database.open(at: "/db", options: options)
                    try d.close()
                } catch {
                    refusedOpens += 1
                    #expect(error is KVError, "\(context): reopen under a fault failed with \(error)")
                }
                fs.clearFaults()
            }
            db = try Database.open(at: "/db", options: options)
            var got: [[UInt8]: [UInt8]] = [:]
            for (k, v) in try db.scan() { got[k] = v }
            for k in e.keys {
                #expect(e.allows(k, got[k]), "\(context), reopened after \(end): \(String(decoding: k, as: UTF8.self)) is \(got[k].map { String(decoding: $0, as: UTF8.self) } ?? "absent")")
            }
            #expect(Set(got.keys).isSubset(of: e.keys), "\(context): keys nobody wrote")
            try db.verify()
            try db.put("after", "reopen")
            #expect(try db.get("after") == bytes("reopen"))
            try db.close()
        }
        print("fault injection: seed \(seed): \(rounds) rounds, \(latched) latched a write error, \(refusedOpens) reopens refused under a fault")
        #expect(latched > 0)
    }

    /// A failed WAL write latches in `everysec` mode too, from the background syncer: writes
    /// after it fail with the cause, reads go on, and a reopen has every write that reached the
    /// WAL before the failure.
    @Test func syncerFailureLatchesEverysec() throws {
        let fs = MemoryFileSystem()
        let db = try Database.open(at: "/db", options: memoryOptions(fs, durability: .everysec))
        try db.put("a", "1")
        fs.inject(.init(.sync, pathContains: ".log", count: Int.max, errno: 5))
        try db.put("b", "2")
        // The syncer runs once a second; wait (bounded) until it has latched the failure.
        var failure: (any Error)?
        for _ in 0..<300 where failure == nil {
            do {
                try db.put("probe", "x")
                usleep(10_000)
            } catch {
                failure = error
            }
        }
        let error = try #require(failure)
        #expect("\(error)".contains("EIO"), "\(error)")
        #expect(try db.get("a") == bytes("1"))
        #expect(try db.get("b") == bytes("2"))
        fs.clearFaults()
        #expect(throws: KVError.self) { try db.put("c", "3") }
        db.haltForCrashTest()
        fs.simulateProcessCrash()
        let again = try Database.open(at: "/db", options: memoryOptions(fs))
        #expect(try again.get("a") == bytes("1"))
        #expect(try again.get("b") == bytes("2"))
        #expect(try again.get("c") == nil)
        try again.close()
    }
}
