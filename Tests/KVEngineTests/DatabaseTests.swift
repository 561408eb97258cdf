import Foundation
import KVBase
import KVFileSystem
import KVTestSupport
import Testing

@testable import KVEngine

func memoryOptions(_ fs: MemoryFileSystem, durability: Durability = .everysec) -> Options {
    var o = Options()
    o.fileSystem = fs
    o.durability = durability
    return o
}

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

@Suite("Database basics")
struct DatabaseTests {
    @Test func putGetDeleteAndReopen() throws {
        let fs = MemoryFileSystem()
        var db: Database? = try Database.open(at: "/db", options: memoryOptions(fs))
        try db!.put("a", "1")
        try db!.put("b", "2")
        try db!.put(bytes("a\u{0}z"), [0, 1, 0])
        try db!.put(bytes("empty"), [])
        try db!.delete("b")
        try db!.delete("never-existed")
        #expect(try db!.get("a") == bytes("1"))
        #expect(try db!.get("b") == nil)
        #expect(try db!.get(bytes("a\u{0}z")) == [0, 1, 0])
        #expect(try db!.get("empty") == [])
        try db!.close()
        db = nil
        let again = try Database.open(at: "/db", options: memoryOptions(fs))
        #expect(try again.get("a") == bytes("1"))
        #expect(try again.get("b") == nil)
        #expect(try again.get(bytes("a\u{0}z")) == [0, 1, 0])
        #expect(try again.get("empty") == [])
        #expect(again.lastSequence == 6)
        try again.close()
    }

    @Test func atomicBatchAndSnapshots() throws {
        let fs = MemoryFileSystem()
        let db = try Database.open(at: "/db", options: memoryOptions(fs))
        try db.put("x", "old")
        let snap = db.snapshot()
        var batch = WriteBatch()
        batch.put("x", "new")
        batch.put("y", "1")
        batch.delete("x")
        batch.put("x", "newest")
        try db.write(batch, durability: .always)
        #expect(try db.get("x") == bytes("newest"))
        #expect(try db.get("x", snapshot: snap) == bytes("old"))
        #expect(try db.get("y", snapshot: snap) == nil)
        let old = try db.scan(snapshot: snap).map { String(decoding: $0.key, as: UTF8.self) }
        #expect(old == ["x"])
        try db.close()
    }

    @Test func scansForwardReversePrefixAndBounds() throws {
        let fs = MemoryFileSystem()
        let db = try Database.open(at: "/db", options: memoryOptions(fs))
        for k in ["a", "b", "ba", "bb", "c", "d"] { try db.put(k, k.uppercased()) }
        try db.delete("c")
        func keys(_ s: Scan) throws -> [String] {
            let out = s.map { String(decoding: $0.key, as: UTF8.self) }
            try s.check()
            return out
        }
        #expect(try keys(db.scan()) == ["a", "b", "ba", "bb", "d"])
        #expect(try keys(db.scan(reverse: true)) == ["d", "bb", "ba", "b", "a"])
        #expect(try keys(db.scan(from: bytes("b"), to: bytes("c"))) == ["b", "ba", "bb"])
        #expect(try keys(db.scan(from: bytes("b"), to: bytes("c"), reverse: true)) == ["bb", "ba", "b"])
        #expect(try keys(db.scan(prefix: bytes("b"))) == ["b", "ba", "bb"])
        #expect(try keys(db.scan(prefix: bytes("b"), reverse: true)) == ["bb", "ba", "b"])
        #expect(try keys(db.scan(from: bytes("zz"))) == [])
        #expect(try keys(db.scan(to: bytes("a"))) == [])
        // Changing direction mid-way.
        let it = try db.makeIterator()
        try it.seek(bytes("b"))
        #expect(it.key == bytes("b"))
        try it.next()
        try it.next()
        #expect(it.key == bytes("bb"))
        try it.prev()
        #expect(it.key == bytes("ba"))
        try it.prev()
        try it.prev()
        #expect(it.key == bytes("a"))
        try it.next()
        #expect(it.key == bytes("b") && it.value == bytes("B"))
        try db.close()
    }

    @Test func limitsAreTypedErrors() throws {
        let fs = MemoryFileSystem()
        let db = try Database.open(at: "/db", options: memoryOptions(fs))
        let big = [UInt8](repeating: 1, count: KVLimits.maxKeySize + 1)
        #expect(throws: KVError.self) { try db.put(big, []) }
        try db.put([UInt8](repeating: 1, count: KVLimits.maxKeySize), [])
        try db.close()
        #expect(throws: KVError.closed) { try db.put("a", "b") }
        #expect(throws: KVError.closed) { try db.get("a") }
        try db.close()
    }

    @Test func invalidOptionsAreRejected() {
        var o = memoryOptions(MemoryFileSystem())
        o.writeBufferSize = 10
        #expect(throws: KVError.self) { try Database.open(at: "/db", options: o) }
        var missing = memoryOptions(MemoryFileSystem())
        missing.createIfMissing = false
        #expect(throws: KVError.self) { try Database.open(at: "/nope", options: missing) }
        for interval in [0, -3, 1025] {
            var restart = memoryOptions(MemoryFileSystem())
            restart.blockRestartInterval = interval
            #expect(throws: KVError.self) { try Database.open(at: "/db", options: restart) }
        }
    }

    /// Tables written with another restart interval read back the same, and the interval
    /// is the one asked for.
    @Test func blockRestartIntervalIsUsed() throws {
        for interval in [1, 4, 64] {
            let fs = MemoryFileSystem()
            var o = memoryOptions(fs)
            o.blockRestartInterval = interval
            #expect(o.tableOptions.restartInterval == interval)
            let db = try Database.open(at: "/db", options: o)
            for i in 0..<2000 { try db.put("key\(i)", "value\(i)") }
            try db.compactRange(nil, nil)
            for i in stride(from: 0, to: 2000, by: 7) { #expect(try db.get("key\(i)") == Array("value\(i)".utf8)) }
            try db.close()
        }
    }

    @Test func secondOpenInSameProcessIsLocked() throws {
        let fs = MemoryFileSystem()
        let db = try Database.open(at: "/db", options: memoryOptions(fs))
        #expect(throws: KVError.locked(path: "/db/LOCK")) { try Database.open(at: "/db", options: memoryOptions(fs)) }
        try db.close()
        let again = try Database.open(at: "/db", options: memoryOptions(fs))
        try again.close()
    }

    @Test func writeErrorLatches() throws {
        let fs = MemoryFileSystem()
        let db = try Database.open(at: "/db", options: memoryOptions(fs, durability: .always))
        try db.put("a", "1")
        fs.inject(.init(.sync, pathContains: ".log", errno: 28))
        #expect(throws: KVError.self) { try db.put("b", "2") }
        fs.clearFaults()
        // Latched: later writes fail with the original cause even though the disk works again.
        do {
            try db.put("c", "3")
            Issue.record("write after a failed sync should fail")
        } catch let e as KVError {
            guard case .backgroundError(let cause) = e else {
                Issue.record("expected backgroundError, got \(e)")
                return
            }
            #expect(cause.contains("ENOSPC"))
        }
        // Reads keep working.
        #expect(try db.get("a") == bytes("1"))
        try? db.close()
        let again = try Database.open(at: "/db", options: memoryOptions(fs))
        #expect(try again.get("a") == bytes("1"))
        try again.put("d", "4")
        try again.close()
    }

    @Test func groupCommitSharesSyncs() throws {
        let fs = MemoryFileSystem()
        let db = try Database.open(at: "/db", options: memoryOptions(fs, durability: .always))
        fs.setSyncDelay(microseconds: 2000)
        let syncsBefore = fs.count(of: .sync)
        let threads = 8
        let perThread = 200
        let done = DispatchGroup()
        for t in 0..<threads {
            done.enter()
            let thread = Thread {
                for i in 0..<perThread {
                    try! db.put("t\(t)-\(i)", "v\(i)")
                }
                done.leave()
            }
            thread.start()
        }
        done.wait()
        let syncs = fs.count(of: .sync) - syncsBefore
        for t in 0..<threads {
            for i in 0..<perThread { #expect(try db.get("t\(t)-\(i)") == bytes("v\(i)")) }
        }
        #expect(db.lastSequence == SequenceNumber(threads * perThread))
        print("group commit: \(threads * perThread) always-writes took \(syncs) WAL syncs")
        // With 8 writers and a 2 ms fsync, writers queue behind each sync and share the next.
        #expect(syncs * 2 < threads * perThread)
        try db.close()
    }

    @Test func posixDatabaseRoundTrip() throws {
        let dir = NSTemporaryDirectory() + "shale-db-\(UInt64.random(in: 0...UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var o = Options()
        o.durability = .always
        let db = try Database.open(at: dir, options: o)
        for i in 0..<1000 { try db.put("key\(i)", "value\(i)") }
        try db.close()
        let again = try Database.open(at: dir, options: o)
        for i in 0..<1000 { #expect(try again.get("key\(i)") == bytes("value\(i)")) }
        try again.close()
    }

    @Test func secondProcessGetsLockedError() throws {
        let flock = "/usr/bin/flock"
        guard FileManager.default.isExecutableFile(atPath: flock) else {
            print("skipping: \(flock) is missing")
            return
        }
        let dir = NSTemporaryDirectory() + "shale-lock-\(UInt64.random(in: 0...UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let db = try Database.open(at: dir, options: Options())
        // Another process trying to take the database lock fails while we hold it.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: flock)
        p.arguments = ["-n", dir + "/LOCK", "true"]
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 1)
        try db.close()
        // And the other way round: a process holding the lock makes open fail with .locked.
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: flock)
        // -o: flock closes the lock before running sleep, so killing flock frees the lock.
        holder.arguments = ["-o", dir + "/LOCK", "sleep", "5"]
        try holder.run()
        defer {
            if holder.isRunning { kill(holder.processIdentifier, SIGKILL) }
            holder.waitUntilExit()
        }
        var sawLocked = false
        for _ in 0..<200 {
            do {
                let d = try Database.open(at: dir, options: Options())
                try d.close()
                usleep(10_000)
            } catch KVError.locked(let path) {
                #expect(path.hasSuffix("LOCK"))
                sawLocked = true
                break
            }
        }
        #expect(sawLocked)
        kill(holder.processIdentifier, SIGKILL)
        holder.waitUntilExit()
        // The kernel releases the lock when the process is gone; allow it a moment.
        var reopened: Database?
        for _ in 0..<200 where reopened == nil {
            reopened = try? Database.open(at: dir, options: Options())
            if reopened == nil { usleep(10_000) }
        }
        let d = try #require(reopened)
        try d.close()
    }
}

@Suite("Tables and flush")
struct FlushTests {
    func smallOptions(_ fs: MemoryFileSystem) -> Options {
        var o = memoryOptions(fs)
        o.writeBufferSize = 16 << 10
        o.blockSize = 512
        return o
    }

    @Test func flushedDataIsReadFromTablesAndSurvivesReopen() throws {
        let fs = MemoryFileSystem()
        let options = smallOptions(fs)
        let db = try Database.open(at: "/db", options: options)
        for i in 0..<3000 { try db.put("key\(i)", "value-\(i)-" + String(repeating: "x", count: i % 50)) }
        for i in stride(from: 0, to: 3000, by: 3) { try db.delete("key\(i)") }
        try db.flush()
        let stats = db.stats
        #expect(stats.flushes > 0)
        #expect(stats.levelFiles[0] > 0)
        #expect(stats.immutableMemtables == 0)
        for i in 0..<3000 {
            let expected: [UInt8]? = i % 3 == 0 ? nil : bytes("value-\(i)-" + String(repeating: "x", count: i % 50))
            #expect(try db.get("key\(i)") == expected)
        }
        try db.verify()
        try db.close()
        // Only live files remain: one WAL, one manifest, the tables.
        let names = try fs.listDirectory("/db")
        #expect(names.filter { $0.hasSuffix(".log") }.count == 1, "\(names)")
        #expect(names.filter { $0.hasPrefix("MANIFEST-") }.count == 1, "\(names)")
        let again = try Database.open(at: "/db", options: options)
        #expect(try again.scan().map { $0.key }.count == 2000)
        #expect(try again.get("key1") == bytes("value-1-x"))
        #expect(try again.get("key3") == nil)
        try again.close()
    }

    @Test func snapshotIteratorSurvivesFlushes() throws {
        let fs = MemoryFileSystem()
        let db = try Database.open(at: "/db", options: smallOptions(fs))
        for i in 0..<500 { try db.put("k\(1000 + i)", "v1") }
        let snap = db.snapshot()
        let it = try db.makeIterator(snapshot: snap)
        try it.seekToFirst()
        for i in 0..<3000 { try db.put("k\(1000 + i % 500)", "v2-\(i)") }
        try db.flush()
        var n = 0
        while it.isValid {
            #expect(it.value == bytes("v1"))
            n += 1
            try it.next()
        }
        #expect(n == 500)
        #expect(try db.get("k1000", snapshot: snap) == bytes("v1"))
        try db.close()
    }

    @Test func flushFailureLatchesAndReopenRecoversEverything() throws {
        let fs = MemoryFileSystem()
        let options = smallOptions(fs)
        let db = try Database.open(at: "/db", options: options)
        for i in 0..<200 { try db.put("a\(i)", "1") }
        fs.inject(.init(.write, pathContains: ".sst", count: Int.max, errno: 28))
        var failed = false
        for i in 0..<5000 {
            do { try db.put("b\(i)", String(repeating: "z", count: 100)) } catch {
                failed = true
                break
            }
        }
        #expect(failed, "a failed flush must stop writes")
        #expect(try db.get("a1") == bytes("1"))
        fs.clearFaults()
        try? db.close()
        let again = try Database.open(at: "/db", options: options)
        for i in 0..<200 { #expect(try again.get("a\(i)") == bytes("1")) }
        try again.verify()
        try again.close()
        // No half-written table is left behind.
        let names = try fs.listDirectory("/db")
        #expect(!names.contains { $0.hasSuffix(".tmp") })
    }

    @Test func corruptTableIsReportedWithFileName() throws {
        let fs = MemoryFileSystem()
        var options = smallOptions(fs)
        options.blockCacheCapacity = 0
        let db = try Database.open(at: "/db", options: options)
        for i in 0..<2000 { try db.put("key\(i)", String(repeating: "v", count: 40)) }
        try db.flush()
        try db.close()
        let table = try #require(try fs.listDirectory("/db").first { $0.hasSuffix(".sst") })
        fs.flipBytes("/db/" + table, at: 10)
        let again = try Database.open(at: "/db", options: options)
        do {
            try again.verify()
            Issue.record("verify should report the flipped byte")
        } catch let e as KVError {
            guard case .corruption(let file, _, _) = e else {
                Issue.record("expected corruption, got \(e)")
                return
            }
            #expect(file.hasSuffix(table))
        }
        // Reads that touch the damaged block fail; they never return wrong data.
        var failures = 0
        for i in 0..<2000 {
            do {
                #expect(try again.get("key\(i)") == [UInt8](repeating: 0x76, count: 40))
            } catch {
                if case .corruption = error { failures += 1 } else { Issue.record("unexpected \(error)") }
            }
        }
        #expect(failures > 0)
        try again.close()
    }
}

@Suite("Regressions")
struct RegressionTests {
    /// A failed manifest sync may still leave the edit on disk; the table it names must not be
    /// deleted by the failing process, or the next open finds the manifest naming a missing
    /// table.
    @Test func failedManifestSyncKeepsTheNewTable() throws {
        let fs = MemoryFileSystem()
        let db = try Database.open(at: "/db", options: memoryOptions(fs))
        for i in 0..<100 { try db.put("k\(i)", "v\(i)") }
        fs.inject(.init(.sync, pathContains: "MANIFEST", count: Int.max, errno: 5))
        #expect(throws: (any Error).self) { try db.flush() }
        db.haltForCrashTest()
        fs.clearFaults()
        fs.simulateProcessCrash()
        let again = try Database.open(at: "/db", options: memoryOptions(fs))
        for i in 0..<100 { #expect(try again.get("k\(i)") == bytes("v\(i)")) }
        try again.verify()
        try again.close()
    }
}
