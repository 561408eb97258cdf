import Foundation
import KVBase
import KVFileSystem
import Testing

/// Fault rules, byte flips, truncation and operation counts of ``MemoryFileSystem``.
@Suite("MemoryFileSystem fault injection")
struct MemoryFileSystemFaultTests {
    let fs = MemoryFileSystem()
    let dir = "/db"

    init() throws {
        try fs.createDirectory(dir)
    }

    func path(_ name: String) -> String { joinPath(dir, name) }

    func makeFile(_ name: String, _ contents: [UInt8]) throws {
        let f = try fs.createWritable(path(name))
        try f.append(contents)
        try f.sync()
        try f.close()
    }

    @Test("fail the Nth write with ENOSPC", arguments: [1, 2, 5])
    func failNthWrite(_ n: Int) throws {
        let p = path("000001.log")
        let f = try fs.createWritable(p)
        fs.inject(.init(.write, skip: n - 1, errno: ENOSPC))
        for i in 1..<n {
            try f.append([UInt8(i)])
            try f.flush()
        }
        try f.append([0xEE])
        let error = expectIOError(errno: ENOSPC, path: p) { try f.flush() }
        #expect(error?.description.contains("ENOSPC") == true)
        #expect(try fs.readFile(p) == (1..<n).map { UInt8($0) }, "the failed write changes nothing")
        // The rule fired once (count 1): the next write goes through, with the bytes still buffered.
        try f.flush()
        #expect(try fs.readFile(p) == (1..<n).map { UInt8($0) } + [0xEE])
    }

    @Test("count limits how many matching operations fail")
    func countLimit() throws {
        let p = path("f")
        let f = try fs.createWritable(p)
        fs.inject(.init(.write, skip: 1, count: 2, errno: EIO))
        try f.append([1])
        try f.flush()  // skipped
        try f.append([2])
        expectIOError(errno: EIO, path: p) { try f.flush() }
        expectIOError(errno: EIO, path: p) { try f.flush() }
        try f.flush()  // the rule is used up
        #expect(try fs.readFile(p) == [1, 2])
    }

    @Test("count Int.max fails until clearFaults")
    func untilCleared() throws {
        let p = path("f")
        let f = try fs.createWritable(p)
        fs.inject(.init(.write, count: Int.max, errno: EIO))
        try f.append([1])
        for _ in 0..<10 {
            expectIOError(errno: EIO, path: p) { try f.flush() }
        }
        fs.clearFaults()
        try f.flush()
        #expect(try fs.readFile(p) == [1])
    }

    @Test("pathContains restricts a rule to matching paths")
    func pathFilter() throws {
        let wal = try fs.createWritable(path("000007.log"))
        let table = try fs.createWritable(path("000008.sst"))
        fs.inject(.init(.write, pathContains: ".log", count: Int.max, errno: ENOSPC))
        try table.append([1])
        try table.flush()
        try table.append([2])
        try table.flush()
        try wal.append([3])
        expectIOError(errno: ENOSPC, path: "000007.log") { try wal.flush() }
        #expect(try fs.readFile(path("000008.sst")) == [1, 2])
        #expect(try fs.readFile(path("000007.log")) == [])
    }

    @Test("a skip counts only operations that match the rule's path")
    func skipCountsOnlyMatches() throws {
        let a = try fs.createWritable(path("a.log"))
        let b = try fs.createWritable(path("b.sst"))
        fs.inject(.init(.write, pathContains: "a.log", skip: 1, errno: EIO))
        for _ in 0..<3 {
            try b.append([0])
            try b.flush()
        }
        try a.append([1])
        try a.flush()  // the first matching write is skipped
        try a.append([2])
        expectIOError(errno: EIO, path: "a.log") { try a.flush() }
    }

    @Test("failing syncs: file sync and directory sync")
    func failSync() throws {
        let p = path("000002.log")
        let f = try fs.createWritable(p)
        try fs.syncDirectory(dir)
        try f.append([1, 2])
        fs.inject(.init(.sync, pathContains: "000002.log", errno: EIO))
        expectIOError(errno: EIO, path: p) { try f.sync() }
        // The write before the failed sync reached the OS but is not durable.
        #expect(try fs.readFile(p) == [1, 2])
        fs.simulatePowerLoss()
        #expect(try fs.readFile(p) == [])

        fs.inject(.init(.sync, pathContains: "/db", errno: EIO))
        expectIOError(errno: EIO, path: dir) { try fs.syncDirectory(dir) }
        try fs.syncDirectory(dir)
    }

    @Test("a failed directory sync leaves new entries non-durable")
    func failedDirectorySync() throws {
        try makeFile("000003.sst", [1])
        fs.inject(.init(.sync, pathContains: "/db", errno: EIO))
        expectIOError(errno: EIO, path: "/db") { try fs.syncDirectory(dir) }
        fs.simulatePowerLoss()
        #expect(!fs.fileExists(path("000003.sst")))
    }

    @Test("failing rename leaves both names unchanged")
    func failRename() throws {
        try makeFile("CURRENT", [1])
        try makeFile("CURRENT.tmp", [2])
        fs.inject(.init(.rename, errno: EIO))
        expectIOError(errno: EIO, path: "CURRENT.tmp") { try fs.rename(path("CURRENT.tmp"), path("CURRENT")) }
        #expect(try fs.readFile(path("CURRENT")) == [1])
        #expect(try fs.readFile(path("CURRENT.tmp")) == [2])
        try fs.rename(path("CURRENT.tmp"), path("CURRENT"))
        #expect(try fs.readFile(path("CURRENT")) == [2])
    }

    @Test("writeFileAtomically fails cleanly when its rename fails")
    func atomicWriteFailure() throws {
        try fs.writeFileAtomically(path("CURRENT"), [1])
        fs.inject(.init(.rename, errno: ENOSPC))
        expectIOError(errno: ENOSPC) { try fs.writeFileAtomically(path("CURRENT"), [2]) }
        #expect(try fs.readFile(path("CURRENT")) == [1])
    }

    @Test("failing reads: an I/O error, not a corruption")
    func failRead() throws {
        let p = path("000004.sst")
        try makeFile("000004.sst", [1, 2, 3])
        let r = try fs.openReadable(p)
        fs.inject(.init(.read, skip: 1, errno: EIO))
        #expect(try readAt(r, 0, count: 1) == [1])
        expectIOError(errno: EIO, path: p) { _ = try r.readExactly(at: 0, count: 3) }
        #expect(try r.readAll() == [1, 2, 3])
    }

    @Test("failing create: createWritable and openAppendable of a new file")
    func failCreate() throws {
        fs.inject(.init(.create, count: 2, errno: ENOSPC))
        expectIOError(errno: ENOSPC, path: "a") { _ = try fs.createWritable(path("a")) }
        #expect(!fs.fileExists(path("a")))
        expectIOError(errno: ENOSPC, path: "b") { _ = try fs.openAppendable(path("b")) }
        #expect(!fs.fileExists(path("b")))
        _ = try fs.createWritable(path("a"))
        #expect(fs.fileExists(path("a")))
    }

    @Test("opening an existing file for append is not a create")
    func appendableExistingIsNotCreate() throws {
        try makeFile("MANIFEST", [1])
        fs.inject(.init(.create, count: Int.max, errno: EIO))
        let f = try fs.openAppendable(path("MANIFEST"))
        #expect(f.size == 1)
    }

    @Test("failing remove keeps the file")
    func failRemove() throws {
        try makeFile("000005.log", [1])
        fs.inject(.init(.remove, pathContains: "000005", errno: EIO))
        expectIOError(errno: EIO, path: "000005.log") { try fs.removeFile(path("000005.log")) }
        #expect(fs.fileExists(path("000005.log")))
        try fs.removeFile(path("000005.log"))
        #expect(!fs.fileExists(path("000005.log")))
    }

    @Test("rules target only their operation")
    func rulesAreOperationSpecific() throws {
        fs.inject(.init(.remove, count: Int.max, errno: EIO))
        fs.inject(.init(.rename, count: Int.max, errno: EIO))
        try makeFile("f", [1, 2])
        #expect(try fs.readFile(path("f")) == [1, 2])
        try fs.syncDirectory(dir)
        expectIOError(errno: EIO) { try fs.removeFile(path("f")) }
    }

    @Test("clearFaults restores every operation")
    func clearFaultsRestores() throws {
        for op: MemoryFileSystem.Operation in [.write, .sync, .rename, .read, .create, .remove] {
            fs.inject(.init(op, count: Int.max, errno: EIO))
        }
        expectIOError(errno: EIO) { _ = try fs.createWritable(path("x")) }
        fs.clearFaults()
        try makeFile("x", [1])
        try fs.syncDirectory(dir)
        try fs.rename(path("x"), path("y"))
        #expect(try fs.readFile(path("y")) == [1])
        try fs.removeFile(path("y"))
    }

    @Test("errors name the path, the operation and the errno")
    func errorShape() throws {
        let p = path("000009.log")
        let f = try fs.createWritable(p)
        try f.append([1])
        fs.inject(.init(.write, errno: ENOSPC))
        do {
            try f.flush()
            Issue.record("expected a failure")
        } catch {
            guard case .io(let errorPath, let operation, let code) = error else {
                Issue.record("expected .io, got \(error)")
                return
            }
            #expect(errorPath == p)
            #expect(operation.contains("write"))
            #expect(code == ENOSPC)
            #expect(error.description.contains(p))
            #expect(error.description.contains("ENOSPC"))
        }
    }

    @Test("flipBytes XORs exactly one byte")
    func flipBytes() throws {
        let original = (0..<16).map { UInt8($0) }
        try makeFile("000010.sst", original)
        fs.flipBytes(path("000010.sst"), at: 5)
        var expected = original
        expected[5] ^= 0xFF
        #expect(try fs.readFile(path("000010.sst")) == expected)
        fs.flipBytes(path("000010.sst"), at: 0, mask: 0x01)
        expected[0] ^= 0x01
        #expect(try fs.readFile(path("000010.sst")) == expected)
        fs.flipBytes(path("000010.sst"), at: 5)
        expected[5] ^= 0xFF
        #expect(try fs.readFile(path("000010.sst")) == expected)
        // Out of range and missing files are left alone.
        fs.flipBytes(path("000010.sst"), at: 16)
        fs.flipBytes(path("missing"), at: 0)
        #expect(try fs.readFile(path("000010.sst")) == expected)
        #expect(!fs.fileExists(path("missing")))
    }

    @Test("a flipped byte survives power loss once synced")
    func flipIsStored() throws {
        try makeFile("f", [0, 0, 0])
        try fs.syncDirectory(dir)
        fs.flipBytes(path("f"), at: 1, mask: 0x80)
        fs.simulatePowerLoss()
        #expect(try fs.readFile(path("f")) == [0, 0x80, 0])
    }

    @Test("truncate cuts the file, synced bytes included")
    func truncate() throws {
        try makeFile("f", Array(0..<10))
        try fs.syncDirectory(dir)
        fs.truncate(path("f"), to: 4)
        #expect(try fs.readFile(path("f")) == [0, 1, 2, 3])
        #expect(try fs.fileSize(path("f")) == 4)
        fs.truncate(path("f"), to: 100)  // never grows a file
        #expect(try fs.readFile(path("f")) == [0, 1, 2, 3])
        fs.simulatePowerLoss(tornTailSeed: 1)
        #expect(try fs.readFile(path("f")) == [0, 1, 2, 3])
        fs.truncate(path("f"), to: 0)
        #expect(try fs.readFile(path("f")) == [])
        let g = try fs.openAppendable(path("f"))
        #expect(g.size == 0)
    }

    @Test("count(of:) counts attempted operations, failed ones included")
    func operationCounts() throws {
        for op: MemoryFileSystem.Operation in [.write, .sync, .rename, .read, .create, .remove] {
            #expect(fs.count(of: op) == 0)
        }
        let f = try fs.createWritable(path("a"))  // create 1
        try f.append([1])
        try f.flush()  // write 1
        try f.flush()  // nothing buffered: no write
        try f.append([2])
        try f.sync()  // write 2, sync 1
        try f.syncFlushed()  // sync 2
        try fs.syncDirectory(dir)  // sync 3
        fs.inject(.init(.write, errno: EIO))
        try f.append([3])
        expectIOError(errno: EIO) { try f.flush() }  // write 3 (failed)
        try f.close()  // write 4
        let r = try fs.openReadable(path("a"))
        _ = try readAt(r, 0, count: 1)  // read 1
        _ = try r.readAll()  // read 2
        try fs.rename(path("a"), path("b"))  // rename 1
        try fs.removeFile(path("b"))  // remove 1
        _ = try fs.openAppendable(path("c"))  // create 2
        #expect(fs.count(of: .create) == 2)
        #expect(fs.count(of: .write) == 4)
        #expect(fs.count(of: .sync) == 3)
        #expect(fs.count(of: .read) == 2)
        #expect(fs.count(of: .rename) == 1)
        #expect(fs.count(of: .remove) == 1)
    }
}
