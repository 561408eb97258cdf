import Foundation
import KVBase
import KVFileSystem
import Testing

/// What ``MemoryFileSystem`` keeps across a simulated process crash and power loss.
@Suite("MemoryFileSystem crash model")
struct MemoryFileSystemCrashTests {
    let fs = MemoryFileSystem()
    let dir = "/db"

    init() throws {
        try fs.createDirectory(dir)
    }

    func path(_ name: String) -> String { joinPath(dir, name) }

    // MARK: process crash

    @Test("a process crash keeps flushed bytes and loses buffered ones")
    func processCrashKeepsFlushed() throws {
        let f = try fs.createWritable(path("000001.log"))
        try f.append([1, 2, 3])
        try f.flush()
        try f.append([4, 5])  // still in the handle's buffer
        fs.simulateProcessCrash()
        // Nothing was synced, but a process crash loses only what the OS never saw.
        #expect(fs.fileExists(path("000001.log")))
        #expect(try fs.readFile(path("000001.log")) == [1, 2, 3])
    }

    @Test("handles opened before a process crash fail with EIO")
    func processCrashInvalidatesHandles() throws {
        let p = path("000001.log")
        let f = try fs.createWritable(p)
        try f.append([1])
        try f.flush()
        let r = try fs.openReadable(p)
        fs.simulateProcessCrash()

        try f.append([2])  // buffered in the dead handle
        expectIOError(errno: EIO, path: p) { try f.flush() }
        expectIOError(errno: EIO, path: p) { try f.sync() }
        expectIOError(errno: EIO, path: p) { try f.syncFlushed() }
        expectIOError(errno: EIO, path: p) { _ = try readAt(r, 0, count: 1) }
        #expect(try fs.readFile(p) == [1], "a dead handle must not change the file")

        // New handles work.
        let g = try fs.openAppendable(p)
        try g.append([3])
        try g.sync()
        #expect(try fs.readFile(p) == [1, 3])
    }

    @Test("a process crash releases locks; a stale unlock does not release a new holder")
    func processCrashReleasesLocks() throws {
        let p = path("LOCK")
        let old = try fs.lockFile(p)
        fs.simulateProcessCrash()
        let new = try fs.lockFile(p)
        old.unlock()
        #expect(throws: KVError.locked(path: p)) { _ = try fs.lockFile(p) }
        new.unlock()
        let again = try fs.lockFile(p)
        again.unlock()
    }

    // MARK: power loss

    @Test("power loss keeps only synced bytes")
    func powerLossKeepsSynced() throws {
        let p = path("000001.log")
        let f = try fs.createWritable(p)
        try fs.syncDirectory(dir)
        try f.append([1, 2, 3])
        try f.sync()
        try f.append([4, 5])
        try f.flush()
        try f.append([6])
        #expect(try fs.readFile(p) == [1, 2, 3, 4, 5])
        fs.simulatePowerLoss()
        #expect(try fs.readFile(p) == [1, 2, 3])
        expectIOError(errno: EIO, path: p) { try f.sync() }
    }

    @Test("syncFlushed makes flushed bytes durable but not buffered ones")
    func syncFlushedDurability() throws {
        let p = path("000002.log")
        let f = try fs.createWritable(p)
        try fs.syncDirectory(dir)
        try f.append([1, 2])
        try f.flush()
        try f.append([3])
        try f.syncFlushed()
        fs.simulatePowerLoss()
        #expect(try fs.readFile(p) == [1, 2])
    }

    @Test("power loss drops a file whose directory entry was never synced")
    func powerLossDropsUnsyncedEntry() throws {
        let p = path("000003.sst")
        let f = try fs.createWritable(p)
        try f.append([1, 2, 3])
        try f.sync()  // the data is durable, the name is not
        try f.close()
        fs.simulatePowerLoss()
        #expect(!fs.fileExists(p))
        #expect(try fs.listDirectory(dir) == [])
        #expect(fs.fileExists(dir), "directories are durable once created")
    }

    @Test("power loss restores a file removed without a directory sync")
    func powerLossRestoresRemovedFile() throws {
        let p = path("000004.log")
        let f = try fs.createWritable(p)
        try f.append([7, 8, 9])
        try f.sync()
        try fs.syncDirectory(dir)
        try fs.removeFile(p)
        #expect(!fs.fileExists(p))
        fs.simulatePowerLoss()
        #expect(try fs.readFile(p) == [7, 8, 9])

        // Removed and synced: gone for good.
        try fs.removeFile(p)
        try fs.syncDirectory(dir)
        fs.simulatePowerLoss()
        #expect(!fs.fileExists(p))
    }

    @Test("power loss undoes a rename that was not synced")
    func powerLossUndoesRename() throws {
        try fs.writeFileAtomically(path("CURRENT"), Array("MANIFEST-1".utf8))
        let tmp = try fs.createWritable(path("CURRENT.tmp"))
        try tmp.append(Array("MANIFEST-2".utf8))
        try tmp.sync()
        try fs.syncDirectory(dir)
        try fs.rename(path("CURRENT.tmp"), path("CURRENT"))
        #expect(try fs.readFile(path("CURRENT")) == Array("MANIFEST-2".utf8))
        fs.simulatePowerLoss()
        #expect(try fs.readFile(path("CURRENT")) == Array("MANIFEST-1".utf8))
        #expect(try fs.readFile(path("CURRENT.tmp")) == Array("MANIFEST-2".utf8))

        // The same rename, made durable.
        try fs.rename(path("CURRENT.tmp"), path("CURRENT"))
        try fs.syncDirectory(dir)
        fs.simulatePowerLoss()
        #expect(try fs.readFile(path("CURRENT")) == Array("MANIFEST-2".utf8))
        #expect(!fs.fileExists(path("CURRENT.tmp")))
    }

    @Test("writeFileAtomically survives power loss")
    func atomicWriteIsDurable() throws {
        try fs.writeFileAtomically(path("CURRENT"), Array("MANIFEST-7\n".utf8))
        fs.simulatePowerLoss(tornTailSeed: 99)
        #expect(try fs.readFile(path("CURRENT")) == Array("MANIFEST-7\n".utf8))
        #expect(try fs.listDirectory(dir) == ["CURRENT"])
    }

    @Test("directory syncs are per directory")
    func directorySyncIsPerDirectory() throws {
        try fs.createDirectory(path("a"))
        try fs.createDirectory(path("b"))
        for d in ["a", "b"] {
            let f = try fs.createWritable(path("\(d)/f"))
            try f.append([1])
            try f.sync()
        }
        try fs.syncDirectory(path("a"))
        fs.simulatePowerLoss()
        #expect(fs.fileExists(path("a/f")))
        #expect(!fs.fileExists(path("b/f")))
    }

    @Test("power loss releases locks and invalidates handles")
    func powerLossInvalidates() throws {
        let p = path("000005.log")
        let f = try fs.createWritable(p)
        try fs.syncDirectory(dir)
        let lock = try fs.lockFile(path("LOCK"))
        fs.simulatePowerLoss()
        try f.append([1])
        expectIOError(errno: EIO, path: p) { try f.flush() }
        let relock = try fs.lockFile(path("LOCK"))
        relock.unlock()
        lock.unlock()
    }

    // MARK: torn tails

    /// A file system with several files, each with a synced prefix and an unsynced tail.
    static func buildTornFixture(seed: UInt64) throws -> (MemoryFileSystem, [String: (synced: [UInt8], full: [UInt8])]) {
        let fs = MemoryFileSystem()
        var rng = SplitMix64(seed: seed)
        var files: [String: (synced: [UInt8], full: [UInt8])] = [:]
        for d in ["/db", "/db/sub", "/other"] {
            try fs.createDirectory(d)
        }
        for (i, d) in ["/db", "/db", "/db", "/db/sub", "/other", "/other"].enumerated() {
            let p = joinPath(d, "file\(i)")
            let f = try fs.createWritable(p)
            let synced = rng.bytes(Int.random(in: 0...50, using: &rng))
            let tail = rng.bytes(Int.random(in: 1...200, using: &rng))
            try f.append(synced)
            try f.sync()
            try f.append(tail)
            try f.flush()
            files[p] = (synced, synced + tail)
        }
        for d in ["/db", "/db/sub", "/other"] {
            try fs.syncDirectory(d)
        }
        return (fs, files)
    }

    static func contents(_ fs: MemoryFileSystem, _ paths: [String]) throws -> [String: [UInt8]] {
        var out: [String: [UInt8]] = [:]
        for p in paths { out[p] = try fs.readFile(p) }
        return out
    }

    @Test("a torn tail keeps a prefix of the unsynced bytes, between synced and full length")
    func tornTailIsAPrefix() throws {
        let seed = testSeed("MemoryFileSystem.tornTailIsAPrefix")
        var sawPartial = false
        for round in 0..<30 {
            let (fs, files) = try Self.buildTornFixture(seed: seed &+ UInt64(round))
            fs.simulatePowerLoss(tornTailSeed: seed &+ UInt64(round))
            for (p, expected) in files {
                let got = try fs.readFile(p)
                #expect(got.count >= expected.synced.count && got.count <= expected.full.count, "seed \(seed), round \(round), \(p): \(got.count) bytes")
                #expect(Array(expected.full.prefix(got.count)) == got, "seed \(seed), round \(round), \(p)")
                if got.count > expected.synced.count && got.count < expected.full.count { sawPartial = true }
            }
        }
        #expect(sawPartial, "seed \(seed): no torn tail was strictly between the synced and the full length")
    }

    @Test("a torn tail is deterministic per seed")
    func tornTailIsDeterministic() throws {
        let seed = testSeed("MemoryFileSystem.tornTailIsDeterministic")
        var outcomes: Set<[String: [UInt8]]> = []
        for tornSeed in [seed, seed &+ 1] {
            // Two file systems built the same way tear the same way under the same seed.
            let (a, files) = try Self.buildTornFixture(seed: seed)
            let (b, _) = try Self.buildTornFixture(seed: seed)
            a.simulatePowerLoss(tornTailSeed: tornSeed)
            b.simulatePowerLoss(tornTailSeed: tornSeed)
            let ca = try Self.contents(a, Array(files.keys))
            let cb = try Self.contents(b, Array(files.keys))
            #expect(ca == cb, "seed \(seed), torn-tail seed \(tornSeed)")
            outcomes.insert(ca)
        }
        #expect(outcomes.count == 2, "seed \(seed): different torn-tail seeds should tear differently")
    }

    @Test("power loss without a seed keeps exactly the synced bytes")
    func noSeedNoTornTail() throws {
        let seed = testSeed("MemoryFileSystem.noSeedNoTornTail")
        let (fs, files) = try Self.buildTornFixture(seed: seed)
        fs.simulatePowerLoss()
        for (p, expected) in files {
            #expect(try fs.readFile(p) == expected.synced, "seed \(seed), \(p)")
        }
    }

    @Test("after a torn power loss the kept bytes count as synced")
    func tornBytesBecomeDurable() throws {
        let seed = testSeed("MemoryFileSystem.tornBytesBecomeDurable")
        let (fs, files) = try Self.buildTornFixture(seed: seed)
        fs.simulatePowerLoss(tornTailSeed: seed)
        let first = try Self.contents(fs, Array(files.keys))
        fs.simulatePowerLoss(tornTailSeed: seed &+ 1)
        #expect(try Self.contents(fs, Array(files.keys)) == first, "seed \(seed)")
    }
}
