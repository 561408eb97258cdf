import KVBase
import KVFileSystem
import KVLog
import KVTestSupport
import Testing

@testable import KVEngine

/// Damage to every file a database writes — WAL, tables (blocks and footer), MANIFEST, CURRENT,
/// WARM — by flipped bytes, truncation and deletion, on copies of one fixture database. The
/// engine must either refuse to open (or fail the read) with an error naming the damaged file,
/// or give exactly the right data: never a wrong value, never a silently missing key. The one
/// tolerated loss is a WAL's damaged last records under `.tolerateTornTail` (a torn write),
/// which must leave the state after a prefix of the logged batches.
@Suite("Database corruption")
struct CorruptionRecoveryTests {
    /// A closed database with several tables, a manifest with many edits, a WAL holding the
    /// last batches (not flushed) and a cache-warm list.
    struct Fixture: Sendable {
        let fs: MemoryFileSystem
        let model: ModelStore
        /// The state before and after each batch in the WAL (`walStates.last == model`).
        let walStates: [ModelStore]
        /// Every value each key ever had.
        let history: [[UInt8]: Set<[UInt8]>]
    }

    static func options(_ fs: MemoryFileSystem, recovery: RecoveryMode = .tolerateTornTail) -> Options {
        var o = memoryOptions(fs)
        o.writeBufferSize = 4 << 10
        o.blockSize = 512
        o.blockCacheCapacity = 64 << 10
        o.walRecovery = recovery
        return o
    }

    static let fixture: Fixture = {
        let fs = MemoryFileSystem()
        var model = ModelStore()
        var history: [[UInt8]: Set<[UInt8]>] = [:]
        var r = TestRandom(seed: 0x5EED_C0DE)
        do {
            let db = try Database.open(at: "/db", options: options(fs))
            func put(_ k: [UInt8], _ v: [UInt8]) throws {
                try db.put(k, v)
                model.put(k, v)
                history[k, default: []].insert(v)
            }
            for i in 0..<900 {
                let k = bytes("key\(r.next(160))")
                if i % 9 == 8 {
                    try db.delete(k)
                    model.delete(k)
                } else {
                    try put(k, bytes("v\(i)-") + r.value(maxLength: 40))
                }
                if i == 500 { try db.compactRange(nil, nil) }
            }
            try db.flush()
            // The last batches stay in the WAL only.
            var walStates = [model]
            for b in 0..<12 {
                var batch = WriteBatch()
                for j in 0..<(1 + r.next(3)) {
                    let k = bytes("key\(r.next(160))")
                    if j == 2 {
                        batch.delete(k)
                        model.delete(k)
                    } else {
                        let v = bytes("wal\(b).\(j)-") + r.value(maxLength: 20)
                        batch.put(k, v)
                        model.put(k, v)
                        history[k, default: []].insert(v)
                    }
                }
                try db.write(batch, durability: .always)
                walStates.append(model)
            }
            // Warm the block cache so that close records a WARM list.
            for i in 0..<160 { _ = try db.get(bytes("key\(i)")) }
            try db.close()
            return Fixture(fs: fs, model: model, walStates: walStates, history: history)
        } catch {
            fatalError("building the fixture failed: \(error)")
        }
    }()

    /// A copy of a directory tree of `source` (every file synced, every entry durable).
    static func copy(_ source: MemoryFileSystem, _ dir: String = "/db", into fs: MemoryFileSystem = MemoryFileSystem()) throws -> MemoryFileSystem {
        try fs.createDirectory(dir)
        for name in try source.listDirectory(dir) where name != "LOCK" {
            let path = joinPath(dir, name)
            if (try? source.listDirectory(path)) != nil {
                _ = try copy(source, path, into: fs)
                continue
            }
            let f = try fs.createWritable(path)
            try f.append(try source.readFile(path))
            try f.sync()
            try f.close()
        }
        try fs.syncDirectory(dir)
        return fs
    }

    static func file(_ fs: MemoryFileSystem, _ match: (String) -> Bool) throws -> String {
        let names = try fs.listDirectory("/db").filter(match)
        guard let name = names.first else { throw KVError.notFound("no such file in the fixture: \(names)") }
        return "/db/" + name
    }

    enum Outcome: Equatable {
        case refused
        case opened(ModelStore)
    }

    /// Opens the damaged copy and reads everything. An error must name `damaged` (its base
    /// name); reads that succeed must return the stored value (checked against `expected` when
    /// given, else against the key's history).
    static func open(_ fs: MemoryFileSystem, damaged: String, recovery: RecoveryMode = .tolerateTornTail, _ context: String) -> Outcome {
        let name = baseName(damaged)
        func checkError(_ error: any Error, _ during: String) {
            #expect("\(error)".contains(name), "\(context): \(during) failed with an error that does not name \(name): \(error)")
        }
        let db: Database
        do {
            db = try Database.open(at: "/db", options: options(fs, recovery: recovery))
        } catch {
            checkError(error, "open")
            return .refused
        }
        defer { try? db.close() }
        var got = ModelStore()
        do {
            let scan = try db.scan()
            for (k, v) in scan { got.put(k, v) }
            try scan.check()
        } catch {
            checkError(error, "scan")
            // The scan failed part-way: point reads must each be right or fail naming the file.
            for (k, v) in fixture.model.map {
                do {
                    if let g = try db.get(k) {
                        #expect(fixture.history[k]?.contains(g) == true, "\(context): get returned a value never written")
                        #expect(g == v, "\(context): get returned an old value")
                    } else {
                        Issue.record("\(context): a key vanished instead of failing: \(String(decoding: k, as: UTF8.self))")
                    }
                } catch {
                    checkError(error, "get")
                }
            }
            return .refused
        }
        return .opened(got)
    }

    /// Offsets to damage in a file of `size` bytes: all of them when small, else a spread plus
    /// the last 96 (footers and last records).
    static func offsets(_ size: Int, samples: Int) -> [Int] {
        let samples = soakEnabled ? samples * 20 : samples
        if size <= samples { return Array(0..<size) }
        let step = max(1, (size - 96) / samples)
        return Array(Set(Array(stride(from: 0, to: size, by: step)) + Array(max(0, size - 96)..<size))).sorted()
    }

    // MARK: WAL

    @Test(arguments: [RecoveryMode.tolerateTornTail, .strict, .skipCorrupt])
    func walDamageFollowsTheRecoveryMode(mode: RecoveryMode) throws {
        let f = Self.fixture
        let wal = try Self.file(f.fs, { $0.hasSuffix(".log") })
        #expect(try f.fs.listDirectory("/db").filter { $0.hasSuffix(".log") }.count == 1)
        let size = Int(try f.fs.fileSize(wal))
        let batches = f.walStates.count - 1
        var refused = 0, opened = 0
        for o in Self.offsets(size, samples: 90) {
            let fs = try Self.copy(f.fs)
            fs.flipBytes(wal, at: o, mask: 0x20)
            let context = "\(mode) WAL byte \(o) of \(size)"
            switch Self.open(fs, damaged: wal, recovery: mode, context) {
            case .refused:
                refused += 1
                #expect(mode != .skipCorrupt || o < 40, "\(context): skipCorrupt refused damage past the header")
            case .opened(let got):
                opened += 1
                #expect(mode != .strict, "\(context): strict recovery opened a damaged log")
                if mode == .skipCorrupt {
                    for (k, v) in got.map {
                        #expect(f.history[k]?.contains(v) == true, "\(context): a value never written")
                    }
                } else {
                    // Only the damaged last batch may go.
                    let j = f.walStates.lastIndex(of: got)
                    #expect(j == batches || j == batches - 1, "\(context): recovered state is after batch \(j.map(String.init) ?? "none") of \(batches)")
                }
            }
        }
        // Truncations: a prefix of the batches, growing with the length kept.
        var last = 0
        for cut in Self.offsets(size + 1, samples: 40) {
            let fs = try Self.copy(f.fs)
            fs.truncate(wal, to: cut)
            let context = "\(mode) WAL cut to \(cut) of \(size)"
            if case .opened(let got) = Self.open(fs, damaged: wal, recovery: mode, context) {
                let j = f.walStates.lastIndex(of: got)
                #expect(j != nil, "\(context): recovered state is not after any prefix of the batches")
                if let j {
                    #expect(j >= last, "\(context): fewer batches than a shorter cut gave")
                    last = j
                }
                #expect(cut < size || j == batches, "\(context)")
            } else {
                #expect(mode == .strict || cut < 40, "\(context): a truncated log refused")
            }
        }
        print("WAL damage (\(mode)): \(refused) refused, \(opened) opened with a correct state")
    }

    /// Regression: a flipped length field of a record followed by valid records was taken for
    /// a torn tail when it lay in the log's last block, silently dropping every later batch —
    /// or, for the file header's length, the whole log.
    @Test(arguments: [4, 23 + 4, 23 + 5])
    func damagedLengthFieldIsNotATornTail(offset: Int) throws {
        let f = Self.fixture
        let fs = try Self.copy(f.fs)
        let wal = try Self.file(fs, { $0.hasSuffix(".log") })
        fs.flipBytes(wal, at: offset, mask: 0x01)
        #expect(Self.open(fs, damaged: wal, "WAL length byte \(offset)") == .refused)
    }

    @Test func deletedWALIsRefused() throws {
        let f = Self.fixture
        let fs = try Self.copy(f.fs)
        let wal = try Self.file(fs, { $0.hasSuffix(".log") })
        try fs.removeFile(wal)
        #expect(Self.open(fs, damaged: wal, "deleted WAL") == .refused)
    }

    // MARK: MANIFEST and CURRENT

    @Test func manifestDamageIsRefusedOrHarmless() throws {
        let f = Self.fixture
        let manifest = try Self.file(f.fs, { $0.hasPrefix("MANIFEST-") })
        let size = Int(try f.fs.fileSize(manifest))
        var refused = 0
        for o in Self.offsets(size, samples: 100) {
            let fs = try Self.copy(f.fs)
            fs.flipBytes(manifest, at: o, mask: 0x04)
            let context = "MANIFEST byte \(o) of \(size)"
            switch Self.open(fs, damaged: manifest, context) {
            case .refused: refused += 1
            case .opened(let got): #expect(got == f.model, "\(context): opened with \(got.count) keys, expected \(f.model.count)")
            }
        }
        for cut in Self.offsets(size, samples: 30) {
            let fs = try Self.copy(f.fs)
            fs.truncate(manifest, to: cut)
            let context = "MANIFEST cut to \(cut) of \(size)"
            if case .opened(let got) = Self.open(fs, damaged: manifest, context) {
                #expect(got == f.model, "\(context): opened with \(got.count) keys, expected \(f.model.count)")
            }
        }
        let fs = try Self.copy(f.fs)
        try fs.removeFile(manifest)
        #expect(Self.open(fs, damaged: manifest, "deleted MANIFEST") == .refused)
        #expect(refused > 0)
    }

    @Test func currentDamageIsRefused() throws {
        let f = Self.fixture
        let current = "/db/CURRENT"
        let size = Int(try f.fs.fileSize(current))
        for o in 0..<size {
            let fs = try Self.copy(f.fs)
            fs.flipBytes(current, at: o, mask: 0x01)
            #expect(Self.open(fs, damaged: current, "CURRENT byte \(o)") == .refused, "CURRENT byte \(o)")
        }
        for cut in 0..<size {
            let fs = try Self.copy(f.fs)
            fs.truncate(current, to: cut)
            #expect(Self.open(fs, damaged: current, "CURRENT cut to \(cut)") == .refused, "CURRENT cut to \(cut)")
        }
        // A missing CURRENT beside tables is damage, not a new database: opening must not
        // start over (and delete the tables as obsolete).
        let fs = try Self.copy(f.fs)
        try fs.removeFile(current)
        #expect(Self.open(fs, damaged: current, "deleted CURRENT") == .refused)
        #expect(try fs.listDirectory("/db").filter { $0.hasSuffix(".sst") } == f.fs.listDirectory("/db").filter { $0.hasSuffix(".sst") })
    }

    // MARK: tables

    @Test func tableDamageIsDetectedOnEveryPath() throws {
        let f = Self.fixture
        let all = try f.fs.listDirectory("/db").filter { $0.hasSuffix(".sst") }.map { "/db/" + $0 }
        // A table a compaction replaced just before the fixture closed may still be on disk;
        // open deletes it unread, so damage to it cannot be noticed. Only live tables count:
        // those whose deletion makes open refuse.
        let tables = try all.filter { table in
            let fs = try Self.copy(f.fs)
            try fs.removeFile(table)
            return Self.open(fs, damaged: table, "deleted \(baseName(table))") == .refused
        }
        #expect(tables.count >= 1)
        var failedReads = 0
        for table in tables.prefix(soakEnabled ? tables.count : 2) {
            let size = Int(try f.fs.fileSize(table))
            for o in Self.offsets(size, samples: 50) {
                let fs = try Self.copy(f.fs)
                fs.flipBytes(table, at: o, mask: 0x80)
                let context = "\(baseName(table)) byte \(o) of \(size)"
                switch Self.open(fs, damaged: table, context) {
                case .refused: failedReads += 1
                case .opened(let got):
                    // A flip the reader never looks at (e.g. in an unused handle's padding) is
                    // harmless only if every key still reads right.
                    #expect(got == f.model, "\(context): opened with \(got.count) keys, expected \(f.model.count)")
                }
            }
            for cut in Self.offsets(size, samples: 12) {
                let fs = try Self.copy(f.fs)
                fs.truncate(table, to: cut)
                let context = "\(baseName(table)) cut to \(cut) of \(size)"
                #expect(Self.open(fs, damaged: table, context) == .refused, "\(context)")
            }
        }
        #expect(failedReads > 0)
    }

    // MARK: WARM

    @Test func damagedWarmListIsIgnored() throws {
        let f = Self.fixture
        let warm = "/db/WARM"
        #expect(f.fs.fileExists(warm))
        let size = Int(try f.fs.fileSize(warm))
        var cases: [(String, (MemoryFileSystem) throws -> Void)] = []
        for o in Self.offsets(size, samples: 30) { cases.append(("WARM byte \(o)", { $0.flipBytes(warm, at: o) })) }
        for cut in Self.offsets(size, samples: 10) { cases.append(("WARM cut to \(cut)", { $0.truncate(warm, to: cut) })) }
        cases.append(("WARM deleted", { try $0.removeFile(warm) }))
        // Well-formed lists naming blocks that do not exist: unknown tables, offsets that are
        // not block starts, offsets past the end.
        // WARM := "SHWM" | version fixed32 | count fixed32 | (file fixed64 | offset fixed64)* | crc
        var bogus = Array("SHWM".utf8)
        bogus.appendFixed32(1)
        let entries: [(UInt64, UInt64)] = [(999_999, 0), (1, 3), (5, 1 << 40), (7, 17)]
        bogus.appendFixed32(UInt32(entries.count))
        for (file, offset) in entries {
            bogus.appendFixed64(file)
            bogus.appendFixed64(offset)
        }
        bogus.appendFixed32(CRC32C.mask(CRC32C.checksum(bogus)))
        #expect(throws: Never.self) { try WarmList.decode(bogus, file: warm) }
        cases.append(("WARM naming bogus blocks", { try $0.writeFileAtomically(warm, bogus) }))
        for (context, damage) in cases {
            let fs = try Self.copy(f.fs)
            try damage(fs)
            let db = try Database.open(at: "/db", options: Self.options(fs))
            var got = ModelStore()
            for (k, v) in try db.scan() { got.put(k, v) }
            #expect(got == f.model, "\(context)")
            for (k, v) in f.model.map { #expect(try db.get(k) == v, "\(context)") }
            try db.close()
        }
    }
}
