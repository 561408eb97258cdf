import Foundation
import KVBase
import KVFileSystem
import Synchronization
import Testing

/// The contract every ``FileSystem`` keeps, run against the POSIX and the in-memory one.
@Suite("FileSystem behaviour")
struct FileSystemBehaviourTests {
    @Test("create, append, flush, read back", arguments: FileSystemKind.allCases)
    func createAppendFlushRead(_ kind: FileSystemKind) throws {
        try withSandbox(kind) { sb in
            let p = sb.path("000001.log")
            let f = try sb.fs.createWritable(p)
            #expect(f.path == p)
            #expect(f.size == 0)
            try f.append(Array("hello ".utf8))
            try f.append([])
            try f.append(Array("world".utf8))
            #expect(f.size == 11)
            // Appends are buffered until flushed.
            #expect(try sb.fs.fileSize(p) == 0)
            try f.flush()
            #expect(try sb.fs.fileSize(p) == 11)
            #expect(try sb.fs.readFile(p) == Array("hello world".utf8))
            try f.append(Array("!".utf8))
            try f.sync()
            #expect(try sb.fs.fileSize(p) == 12)
            try f.syncFlushed()
            try f.close()
            try f.close()  // a second close is harmless
            try f.syncFlushed()  // and so is syncing flushed data after close
            #expect(try sb.fs.readFile(p) == Array("hello world!".utf8))
            #expect(sb.fs.fileExists(p))
        }
    }

    @Test("large and many appends keep every byte in order", arguments: FileSystemKind.allCases)
    func largeAppends(_ kind: FileSystemKind) throws {
        let seed = testSeed("FileSystem.largeAppends(\(kind))")
        var rng = SplitMix64(seed: seed)
        try withSandbox(kind) { sb in
            let p = sb.path("big")
            let f = try sb.fs.createWritable(p)
            var model: [UInt8] = []
            // Sizes around the POSIX 64 KiB buffer: small, just under, exactly, above.
            var sizes = [1, 100, 65_535, 1, 65_536, 70_000, 3, 200_000, 17]
            sizes += (0..<20).map { _ in Int.random(in: 0...5000, using: &rng) }
            for size in sizes {
                let chunk = rng.bytes(size)
                try f.append(chunk)
                model += chunk
                #expect(f.size == UInt64(model.count), "seed \(seed)")
            }
            try f.close()
            #expect(try sb.fs.fileSize(p) == UInt64(model.count), "seed \(seed)")
            #expect(try sb.fs.readFile(p) == model, "seed \(seed)")
        }
    }

    @Test("createWritable truncates an existing file", arguments: FileSystemKind.allCases)
    func createTruncates(_ kind: FileSystemKind) throws {
        try withSandbox(kind) { sb in
            try sb.write("f", [1, 2, 3, 4])
            let f = try sb.fs.createWritable(sb.path("f"))
            try f.append([9])
            try f.close()
            #expect(try sb.fs.readFile(sb.path("f")) == [9])
        }
    }

    @Test("openAppendable continues at the end", arguments: FileSystemKind.allCases)
    func openAppendable(_ kind: FileSystemKind) throws {
        try withSandbox(kind) { sb in
            let p = sb.path("MANIFEST-000001")
            try sb.write("MANIFEST-000001", [1, 2, 3])
            let f = try sb.fs.openAppendable(p)
            #expect(f.size == 3)
            try f.append([4, 5])
            #expect(f.size == 5)
            try f.close()
            #expect(try sb.fs.readFile(p) == [1, 2, 3, 4, 5])

            // A missing file is created.
            let q = sb.path("new")
            let g = try sb.fs.openAppendable(q)
            #expect(g.size == 0)
            try g.append([7])
            try g.close()
            #expect(try sb.fs.readFile(q) == [7])
        }
    }

    @Test("positional reads, short reads at EOF, reads past EOF", arguments: FileSystemKind.allCases)
    func positionalReads(_ kind: FileSystemKind) throws {
        try withSandbox(kind) { sb in
            let contents = (0..<100).map { UInt8($0) }
            try sb.write("data", contents)
            let r = try sb.fs.openReadable(sb.path("data"))
            #expect(r.size == 100)
            #expect(r.path == sb.path("data"))
            #expect(try readAt(r, 0, count: 10) == Array(contents[0..<10]))
            #expect(try readAt(r, 37, count: 5) == Array(contents[37..<42]))
            #expect(try readAt(r, 95, count: 10) == Array(contents[95..<100]))  // short
            #expect(try readAt(r, 99, count: 1) == [99])
            #expect(try readAt(r, 100, count: 10) == [])  // at EOF
            #expect(try readAt(r, 1000, count: 10) == [])  // past EOF
            #expect(try readAt(r, 0, count: 0) == [])
            #expect(try r.readExactly(at: 90, count: 10) == Array(contents[90..<100]))
            #expect(try r.readExactly(at: 100, count: 0) == [])
            #expect(try r.readAll() == contents)
        }
    }

    @Test("reading an empty file", arguments: FileSystemKind.allCases)
    func emptyFile(_ kind: FileSystemKind) throws {
        try withSandbox(kind) { sb in
            try sb.write("empty", [])
            let r = try sb.fs.openReadable(sb.path("empty"))
            #expect(r.size == 0)
            #expect(try r.readAll() == [])
            #expect(try readAt(r, 0, count: 4) == [])
        }
    }

    @Test("readExactly past the end is a corruption naming the file and offset", arguments: FileSystemKind.allCases)
    func readExactlyShort(_ kind: FileSystemKind) throws {
        try withSandbox(kind) { sb in
            try sb.write("000009.sst", [UInt8](repeating: 1, count: 20))
            let r = try sb.fs.openReadable(sb.path("000009.sst"))
            let error = #expect(throws: KVError.self) { _ = try r.readExactly(at: 15, count: 10) }
            guard case .corruption(let file, let offset, let reason) = error else {
                Issue.record("expected a corruption, got \(String(describing: error))")
                return
            }
            #expect(file == sb.path("000009.sst"))
            #expect(offset == 15)
            #expect(reason.contains("short read"))
            #expect(error?.description.contains("000009.sst") == true)
        }
    }

    @Test("a reader's size is fixed when it is opened", arguments: FileSystemKind.allCases)
    func readerSizeAtOpen(_ kind: FileSystemKind) throws {
        try withSandbox(kind) { sb in
            let f = try sb.fs.createWritable(sb.path("growing"))
            try f.append([1, 2, 3])
            try f.flush()
            let r = try sb.fs.openReadable(sb.path("growing"))
            try f.append([4, 5])
            try f.close()
            #expect(r.size == 3)
            #expect(try r.readAll() == [1, 2, 3])
            #expect(try sb.fs.openReadable(sb.path("growing")).size == 5)
        }
    }

    @Test("listDirectory lists names of files and subdirectories, sorted", arguments: FileSystemKind.allCases)
    func listDirectory(_ kind: FileSystemKind) throws {
        try withSandbox(kind) { sb in
            #expect(try sb.fs.listDirectory(sb.root) == [])
            try sb.write("b.log", [1])
            try sb.write("a.sst", [])
            try sb.fs.createDirectory(sb.path("sub/deeper"))
            try sb.write("sub/inner", [2])
            #expect(try sb.fs.listDirectory(sb.root) == ["a.sst", "b.log", "sub"])
            #expect(try sb.fs.listDirectory(sb.path("sub")) == ["deeper", "inner"])
            #expect(try sb.fs.listDirectory(sb.path("sub/deeper")) == [])
            expectIOError(errno: ENOENT, path: "missing") { _ = try sb.fs.listDirectory(sb.path("missing")) }
        }
    }

    @Test("createDirectory makes parents and tolerates existing directories", arguments: FileSystemKind.allCases)
    func createDirectory(_ kind: FileSystemKind) throws {
        try withSandbox(kind) { sb in
            try sb.fs.createDirectory(sb.path("x/y/z"))
            try sb.fs.createDirectory(sb.path("x/y/z"))
            try sb.fs.createDirectory(sb.path("x"))
            #expect(sb.fs.fileExists(sb.path("x")))
            #expect(sb.fs.fileExists(sb.path("x/y/z")))
            try sb.write("x/y/z/f", [1])
            #expect(try sb.fs.readFile(sb.path("x/y/z/f")) == [1])
        }
    }

    @Test("rename moves a file and replaces the target", arguments: FileSystemKind.allCases)
    func rename(_ kind: FileSystemKind) throws {
        try withSandbox(kind) { sb in
            try sb.write("CURRENT.tmp", Array("MANIFEST-000002\n".utf8))
            try sb.write("CURRENT", Array("MANIFEST-000001\n".utf8))
            try sb.fs.rename(sb.path("CURRENT.tmp"), sb.path("CURRENT"))
            #expect(!sb.fs.fileExists(sb.path("CURRENT.tmp")))
            #expect(try sb.fs.readFile(sb.path("CURRENT")) == Array("MANIFEST-000002\n".utf8))
            #expect(try sb.fs.listDirectory(sb.root) == ["CURRENT"])

            try sb.fs.createDirectory(sb.path("archive"))
            try sb.fs.rename(sb.path("CURRENT"), sb.path("archive/OLD"))
            #expect(try sb.fs.listDirectory(sb.root) == ["archive"])
            #expect(try sb.fs.readFile(sb.path("archive/OLD")) == Array("MANIFEST-000002\n".utf8))
            expectIOError(errno: ENOENT, path: "nope") { try sb.fs.rename(sb.path("nope"), sb.path("x")) }
        }
    }

    @Test("removeFile, fileExists, fileSize", arguments: FileSystemKind.allCases)
    func removeFile(_ kind: FileSystemKind) throws {
        try withSandbox(kind) { sb in
            let p = sb.path("000003.log")
            #expect(!sb.fs.fileExists(p))
            expectIOError(errno: ENOENT, path: "000003.log") { _ = try sb.fs.fileSize(p) }
            expectIOError(errno: ENOENT, path: "000003.log") { _ = try sb.fs.openReadable(p) }
            try sb.write("000003.log", [UInt8](repeating: 0, count: 1234))
            #expect(sb.fs.fileExists(p))
            #expect(try sb.fs.fileSize(p) == 1234)
            try sb.fs.removeFile(p)
            #expect(!sb.fs.fileExists(p))
            #expect(try sb.fs.listDirectory(sb.root) == [])
            expectIOError(errno: ENOENT, path: "000003.log") { try sb.fs.removeFile(p) }
        }
    }

    @Test("a reader opened before removeFile still reads", arguments: FileSystemKind.allCases)
    func readAfterRemove(_ kind: FileSystemKind) throws {
        try withSandbox(kind) { sb in
            try sb.write("old.sst", [1, 2, 3])
            let r = try sb.fs.openReadable(sb.path("old.sst"))
            try sb.fs.removeFile(sb.path("old.sst"))
            #expect(try r.readAll() == [1, 2, 3])
        }
    }

    @Test("writeFileAtomically writes, replaces and leaves no temporary file", arguments: FileSystemKind.allCases)
    func writeFileAtomically(_ kind: FileSystemKind) throws {
        try withSandbox(kind) { sb in
            let p = sb.path("CURRENT")
            try sb.fs.writeFileAtomically(p, Array("one".utf8))
            #expect(try sb.fs.readFile(p) == Array("one".utf8))
            try sb.fs.writeFileAtomically(p, Array("two, longer".utf8))
            #expect(try sb.fs.readFile(p) == Array("two, longer".utf8))
            try sb.fs.writeFileAtomically(p, [])
            #expect(try sb.fs.readFile(p) == [])
            #expect(try sb.fs.listDirectory(sb.root) == ["CURRENT"])
        }
    }

    @Test("removeDirectory removes only empty directories", arguments: FileSystemKind.allCases)
    func removeDirectory(_ kind: FileSystemKind) throws {
        try withSandbox(kind) { sb in
            try sb.fs.createDirectory(sb.path("withFile"))
            try sb.write("withFile/f", [1])
            expectIOError(errno: ENOTEMPTY, path: "withFile") { try sb.fs.removeDirectory(sb.path("withFile")) }
            #expect(try sb.fs.readFile(sb.path("withFile/f")) == [1])

            try sb.fs.createDirectory(sb.path("withDir/child"))
            expectIOError(errno: ENOTEMPTY, path: "withDir") { try sb.fs.removeDirectory(sb.path("withDir")) }
            #expect(sb.fs.fileExists(sb.path("withDir/child")))

            try sb.fs.removeFile(sb.path("withFile/f"))
            try sb.fs.removeDirectory(sb.path("withFile"))
            #expect(!sb.fs.fileExists(sb.path("withFile")))
            try sb.fs.removeDirectory(sb.path("withDir/child"))
            try sb.fs.removeDirectory(sb.path("withDir"))
            #expect(try sb.fs.listDirectory(sb.root) == [])
            expectIOError(errno: ENOENT, path: "withDir") { try sb.fs.removeDirectory(sb.path("withDir")) }
        }
    }

    @Test("appending to a closed file fails", arguments: FileSystemKind.allCases)
    func appendAfterClose(_ kind: FileSystemKind) throws {
        try withSandbox(kind) { sb in
            let f = try sb.fs.createWritable(sb.path("f"))
            try f.append([1])
            try f.close()
            expectIOError(errno: EBADF, path: "f") { try f.append([2]) }
            #expect(try sb.fs.readFile(sb.path("f")) == [1])
        }
    }

    @Test("creating a file in a missing directory fails with ENOENT", arguments: FileSystemKind.allCases)
    func createInMissingDirectory(_ kind: FileSystemKind) throws {
        try withSandbox(kind) { sb in
            expectIOError(errno: ENOENT, path: "missing/f") { _ = try sb.fs.createWritable(sb.path("missing/f")) }
            #expect(!sb.fs.fileExists(sb.path("missing")))
        }
    }

    @Test("syncDirectory succeeds on a directory and fails on a missing one", arguments: FileSystemKind.allCases)
    func syncDirectory(_ kind: FileSystemKind) throws {
        try withSandbox(kind) { sb in
            try sb.write("f", [1])
            try sb.fs.syncDirectory(sb.root)
            expectIOError(errno: ENOENT, path: "missing") { try sb.fs.syncDirectory(sb.path("missing")) }
        }
    }

    @Test("a second lock of the same path fails until the first is released", arguments: FileSystemKind.allCases)
    func lockTwice(_ kind: FileSystemKind) throws {
        try withSandbox(kind) { sb in
            let p = sb.path("LOCK")
            let first = try sb.fs.lockFile(p)
            #expect(sb.fs.fileExists(p), "the lock file is created")
            #expect(throws: KVError.locked(path: p)) { _ = try sb.fs.lockFile(p) }
            // Another path is independent.
            let other = try sb.fs.lockFile(sb.path("OTHER.LOCK"))
            first.unlock()
            first.unlock()  // unlocking twice is harmless
            let second = try sb.fs.lockFile(p)
            #expect(throws: KVError.locked(path: p)) { _ = try sb.fs.lockFile(p) }
            second.unlock()
            other.unlock()
        }
    }

    @Test("a lock file in a missing directory fails with ENOENT, not .locked", arguments: FileSystemKind.allCases)
    func lockInMissingDirectory(_ kind: FileSystemKind) throws {
        try withSandbox(kind) { sb in
            expectIOError(errno: ENOENT, path: "missing") { _ = try sb.fs.lockFile(sb.path("missing/LOCK")) }
            #expect(!sb.fs.fileExists(sb.path("missing")))
        }
    }

    @Test("positional reads from many threads at once", arguments: FileSystemKind.allCases)
    func concurrentReads(_ kind: FileSystemKind) throws {
        let seed = testSeed("FileSystem.concurrentReads(\(kind))")
        var rng = SplitMix64(seed: seed)
        let contents = rng.bytes(256 * 1024)
        try withSandbox(kind) { sb in
            try sb.write("000011.sst", contents)
            let r = try sb.fs.openReadable(sb.path("000011.sst"))
            let mismatches = Mutex(0)
            DispatchQueue.concurrentPerform(iterations: 8) { worker in
                var local = SplitMix64(seed: seed &+ UInt64(worker))
                for _ in 0..<200 {
                    let offset = Int.random(in: 0..<contents.count, using: &local)
                    let count = Int.random(in: 0...4096, using: &local)
                    let expected = Array(contents[offset..<min(contents.count, offset + count)])
                    if (try? readAt(r, UInt64(offset), count: count)) != expected {
                        mismatches.withLock { $0 += 1 }
                    }
                }
            }
            #expect(mismatches.withLock { $0 } == 0, "seed \(seed)")
        }
    }

    @Test("syncFlushed from another thread while the owner appends", arguments: FileSystemKind.allCases)
    func syncFlushedConcurrently(_ kind: FileSystemKind) throws {
        try withSandbox(kind) { sb in
            let p = sb.path("000012.log")
            let f = try sb.fs.createWritable(p)
            let done = Atomic<Bool>(false)
            let syncErrors = Mutex<[String]>([])
            let syncer = Thread {
                while !done.load(ordering: .acquiring) {
                    do { try f.syncFlushed() } catch { syncErrors.withLock { $0.append("\(error)") } }
                }
            }
            syncer.start()
            var model: [UInt8] = []
            for i in 0..<2000 {
                let chunk = [UInt8](repeating: UInt8(truncatingIfNeeded: i), count: i % 50)
                try f.append(chunk)
                model += chunk
                if i % 7 == 0 { try f.flush() }
            }
            try f.close()
            done.store(true, ordering: .releasing)
            while !syncer.isFinished { Thread.sleep(forTimeInterval: 0.001) }
            #expect(syncErrors.withLock { $0 } == [])
            #expect(try sb.fs.readFile(p) == model)
        }
    }

    @Test("a lock is released when its handle is freed", arguments: FileSystemKind.allCases)
    func lockReleasedOnDeinit(_ kind: FileSystemKind) throws {
        try withSandbox(kind) { sb in
            let p = sb.path("LOCK")
            do {
                let held = try sb.fs.lockFile(p)
                #expect(throws: KVError.locked(path: p)) { _ = try sb.fs.lockFile(p) }
                withExtendedLifetime(held) {}
            }
            let again = try sb.fs.lockFile(p)
            again.unlock()
        }
    }
}

@Suite("Path helpers")
struct PathHelperTests {
    @Test("joinPath", arguments: [("/db", "CURRENT", "/db/CURRENT"), ("/db/", "LOCK", "/db/LOCK"), ("rel", "x", "rel/x")])
    func join(_ dir: String, _ name: String, _ expected: String) {
        #expect(joinPath(dir, name) == expected)
    }

    @Test("parentDirectory", arguments: [("/db/CURRENT", "/db"), ("/CURRENT", "/"), ("CURRENT", "."), ("a/b/c", "a/b")])
    func parent(_ path: String, _ expected: String) {
        #expect(parentDirectory(path) == expected)
    }

    @Test("baseName", arguments: [("/db/CURRENT", "CURRENT"), ("CURRENT", "CURRENT"), ("/a/b/", "")])
    func base(_ path: String, _ expected: String) {
        #expect(baseName(path) == expected)
    }
}
