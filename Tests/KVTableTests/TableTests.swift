import KVBase
import KVCache
import KVFileSystem
import Testing
@testable import KVTable

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct TableConfig: Sendable, CustomTestStringConvertible {
    var order: KeyOrder
    var compression: CompressionType
    var blockSize: Int
    var restartInterval: Int

    var options: TableOptions {
        TableOptions(blockSize: blockSize, restartInterval: restartInterval, compression: compression, bloomBitsPerKey: 10, keyOrder: order)
    }

    var testDescription: String { "\(order.testDescription)/\(compression)/block \(blockSize)/restart \(restartInterval)" }

    static let all: [TableConfig] = {
        var out: [TableConfig] = []
        for order in [KeyOrder.bytewise, .internalKey] {
            for compression in [CompressionType.none, .lz4] {
                out.append(TableConfig(order: order, compression: compression, blockSize: 64, restartInterval: 2))
                out.append(TableConfig(order: order, compression: compression, blockSize: 4096, restartInterval: 16))
            }
        }
        return out
    }()
}

@Suite("Table builder and reader")
struct TableTests {
    @Test("model harness on whole tables", arguments: TableConfig.all)
    func harness(config: TableConfig) throws {
        let seed = testSeed(0x7AB1E &+ UInt64(config.blockSize) &+ (config.order == .bytewise ? 0 : 7) &+ UInt64(config.compression.rawValue))
        print("TableTests.harness(\(config.testDescription)) seed \(seed)")
        var rnd = TestRandom(seed: seed)
        let fs = MemoryFileSystem()
        let cache = ShardedLRUCache<BlockCacheKey, Block>(capacity: 64 * 1024, shardCount: 4)
        for (n, count) in [0, 1, 5, 100, 1500].enumerated() {
            let entries = randomEntries(&rnd, count: count, order: config.order, compressible: rnd.oneIn(2))
            let path = "/t\(n).sst"
            let written = try writeTable(fs, path, entries, config.options)
            #expect(written.entries == UInt64(entries.count))
            for useCache in [false, true] {
                let table = try openTable(fs, path, config.options, fileNumber: UInt64(n), cache: useCache ? cache : nil)
                #expect(table.properties == written, "seed \(seed)")
                let it = table.makeIterator()
                #expect(try scanForward(it) == entries, "seed \(seed) count \(count)")
                #expect(try scanBackward(it) == entries, "seed \(seed) count \(count)")
                let mismatch = try runModelHarness(it, entries, config.order, seed: seed &+ UInt64(n), operations: 800)
                #expect(mismatch == nil, "\(mismatch ?? "")")
                try table.verify()
                // get == first entry at or after the key (for keys the filter admits).
                for _ in 0..<50 {
                    let target = randomTarget(&rnd, entries, config.order)
                    let i = lowerBound(entries, target, config.order)
                    let got = try table.get(target)
                    if let got {
                        #expect(i < entries.count && got.key == entries[i].key && got.value == entries[i].value, "seed \(seed)")
                    } else {
                        let user = config.order == .internalKey ? Array(target.dropLast(8)) : target
                        let present = entries.contains {
                            (config.order == .internalKey ? Array($0.key.dropLast(8)) : $0.key) == user
                        }
                        #expect(!present || i == entries.count, "seed \(seed): get missed an existing key")
                    }
                }
                for e in entries.prefix(50) {
                    let got = try table.get(e.key)
                    #expect(got?.key == e.key && got?.value == e.value, "seed \(seed)")
                }
            }
        }
    }

    @Test("point lookups position the index like a binary search of the index block", arguments: [KeyOrder.bytewise, .internalKey])
    func indexSearchMatchesBlockSearch(order: KeyOrder) throws {
        let seed = testSeed(0x1D5E_A2C4 &+ (order == .bytewise ? 0 : 1))
        print("TableTests.indexSearchMatchesBlockSearch(\(order)) seed \(seed)")
        var rnd = TestRandom(seed: seed)
        let fs = MemoryFileSystem()
        // Small blocks make many index entries; the long shared prefix and keys that differ
        // only past 8 more bytes make prefixes tie.
        for (n, longPrefix) in [0, 3, 20].enumerated() {
            let entries = randomEntries(&rnd, count: 2000, order: order, maxKey: 14, maxValue: 8, longPrefix: longPrefix)
            let options = TableOptions(blockSize: 64, restartInterval: 2, compression: .none, bloomBitsPerKey: 0, keyOrder: order)
            try writeTable(fs, "/s\(n).sst", entries, options)
            let table = try openTable(fs, "/s\(n).sst", options)
            #expect(table.indexSearch != nil)
            let prefix = [UInt8](repeating: 0x70, count: longPrefix)
            for i in 0..<3000 {
                var target = randomTarget(&rnd, entries, order)
                if i % 3 == 0 {
                    // Targets around and inside the shared prefix too.
                    let user = Array(prefix.prefix(rnd.int(0..<(longPrefix + 1)))) + rnd.bytes(rnd.int(0..<4), alphabet: 7).map { $0 + 0x6E }
                    target = order == .internalKey ? InternalKey.make(user, SequenceNumber(rnd.int(0..<1000)), .value) : user
                }
                let viaSearch = try target.withUnsafeBytes { (t) throws(KVError) -> [UInt8]? in
                    var c = BlockCursor(block: table.indexBlock, order: order)
                    try table.seekIndex(&c, t)
                    return c.isValid ? Array(c.key) : nil
                }
                let viaBlock = try target.withUnsafeBytes { (t) throws(KVError) -> [UInt8]? in
                    var c = BlockCursor(block: table.indexBlock, order: order)
                    try c.seek(t)
                    return c.isValid ? Array(c.key) : nil
                }
                #expect(viaSearch == viaBlock, "seed \(seed): target \(target)")
            }
        }
    }

    @Test("the index search narrows a lookup to a few entries when the last separator is a short successor", arguments: [KeyOrder.bytewise, .internalKey])
    func indexSearchNarrows(order: KeyOrder) throws {
        let fs = MemoryFileSystem()
        // Keys as kvbench and most servers make them: a long shared prefix, then digits. The
        // table's last index entry is the successor of the last key, "1", which shares nothing.
        func padded(_ n: Int) -> [UInt8] {
            let digits = Array(String(n).utf8)
            return [UInt8](repeating: 0x30, count: 16 - digits.count) + digits
        }
        let entries = (0..<5000).map { i -> Entry in
            let user = padded(i * 7)
            let key = order == .internalKey ? InternalKey.make(user, SequenceNumber(i + 1), .value) : user
            return Entry(key: key, value: Array(repeating: 0x76, count: 20))
        }
        let options = TableOptions(blockSize: 256, restartInterval: 4, compression: .none, bloomBitsPerKey: 0, keyOrder: order)
        try writeTable(fs, "/n.sst", entries, options)
        let table = try openTable(fs, "/n.sst", options)
        let search = try #require(table.indexSearch)
        #expect(search.common.count >= 10, "common prefix \(search.common)")
        var widest = 0
        for i in stride(from: 0, to: 5000 * 7 + 10, by: 13) {
            let user = padded(i)
            let range = user.withUnsafeBytes { search.candidates($0) }
            widest = max(widest, range.hi - range.lo)
            let target = order == .internalKey ? InternalKey.make(user, SequenceNumber(1 << 40), .value) : user
            let i = lowerBound(entries, target, order)
            let got = try table.get(target)
            #expect(got?.key == (i < entries.count ? entries[i].key : nil))
        }
        #expect(widest <= 2, "a lookup compared up to \(widest) index entries in full")
    }

    @Test("empty table")
    func emptyTable() throws {
        let fs = MemoryFileSystem()
        for bloom in [0, 10] {
            let options = TableOptions(bloomBitsPerKey: bloom, keyOrder: .bytewise)
            let props = try writeTable(fs, "/empty.sst", [], options)
            #expect(props.entries == 0 && props.dataBlocks == 0 && props.smallestKey.isEmpty)
            #expect(props.fileSize == (try fs.fileSize("/empty.sst")))
            let table = try openTable(fs, "/empty.sst", options)
            #expect(try scanForward(table.makeIterator()).isEmpty)
            #expect(try scanBackward(table.makeIterator()).isEmpty)
            let it = table.makeIterator()
            try it.seek([1])
            #expect(!it.isValid)
            #expect(try table.get([1]) == nil)
            try table.verify()
            #expect(table.approximateOffset(of: [5]) == 0)
        }
    }

    @Test("properties are recorded")
    func properties() throws {
        let fs = MemoryFileSystem()
        let entries = (0..<1000).map { i in
            Entry(key: InternalKey.make(Array("key\(100_000 + i)".utf8), 5, .value), value: Array(repeating: UInt8(i % 7), count: 50))
        }
        let options = TableOptions()
        let props = try writeTable(fs, "/p.sst", entries, options)
        #expect(props.entries == 1000)
        #expect(props.rawKeyBytes == UInt64(entries.reduce(0) { $0 + $1.key.count }))
        #expect(props.rawValueBytes == 50_000)
        #expect(props.smallestKey == entries.first!.key && props.largestKey == entries.last!.key)
        #expect(props.dataBlocks > 1 && props.compressedDataBlocks == props.dataBlocks)
        #expect(props.keyOrder == .internalKey && props.compression == .lz4 && props.bloomBitsPerKey == 10)
        let table = try openTable(fs, "/p.sst", options)
        #expect(table.properties == props)
        #expect(table.smallestKey == props.smallestKey && table.largestKey == props.largestKey)
        // Approximate offsets grow with the key and stay inside the data.
        let a = table.approximateOffset(of: entries[0].key)
        let b = table.approximateOffset(of: entries[500].key)
        let c = table.approximateOffset(of: InternalKey.make(Array("zzz".utf8), 1, .value))
        #expect(a == 0 && a < b && b < c && c < props.fileSize)
    }

    @Test("LZ4: compressible data is stored compressed, random data raw")
    func compression() throws {
        let seed = testSeed(0x1A4)
        print("TableTests.compression seed \(seed)")
        var rnd = TestRandom(seed: seed)
        let fs = MemoryFileSystem()
        let keys = (0..<2000).map { Array("k\(10_000 + $0)".utf8) }
        let compressible = keys.map { Entry(key: $0, value: rnd.compressibleBytes(200)) }
        let random = keys.map { Entry(key: $0, value: rnd.bytes(200)) }
        let lz4 = TableOptions(compression: .lz4, keyOrder: .bytewise)
        let none = TableOptions(compression: .none, keyOrder: .bytewise)

        let c1 = try writeTable(fs, "/c-lz4.sst", compressible, lz4)
        let c0 = try writeTable(fs, "/c-none.sst", compressible, none)
        print("compressible: lz4 \(c1.fileSize) bytes, none \(c0.fileSize) bytes")
        #expect(c1.compressedDataBlocks == c1.dataBlocks && c1.dataBlocks > 0)
        #expect(c0.compressedDataBlocks == 0)
        #expect(c1.fileSize * 2 < c0.fileSize)
        #expect(try scanForward(openTable(fs, "/c-lz4.sst", lz4).makeIterator()) == compressible)

        let r1 = try writeTable(fs, "/r-lz4.sst", random, lz4)
        let r0 = try writeTable(fs, "/r-none.sst", random, none)
        print("random: lz4 \(r1.fileSize) bytes, none \(r0.fileSize) bytes")
        #expect(r1.compressedDataBlocks == 0)
        #expect(r1.dataBlocks == r0.dataBlocks)
        #expect(try scanForward(openTable(fs, "/r-lz4.sst", lz4).makeIterator()) == random)
    }

    @Test("the block cache serves repeated reads")
    func blockCacheHits() throws {
        let fs = MemoryFileSystem()
        let entries = (0..<500).map { Entry(key: Array("key\(1000 + $0)".utf8), value: Array(repeating: 1, count: 100)) }
        let options = TableOptions(keyOrder: .bytewise)
        try writeTable(fs, "/c.sst", entries, options)
        let cache = ShardedLRUCache<BlockCacheKey, Block>(capacity: 1 << 20)
        let table = try openTable(fs, "/c.sst", options, fileNumber: 9, cache: cache)
        #expect(try table.get(entries[10].key)?.value == entries[10].value)
        let first = cache.statistics
        #expect(first.misses == 1 && first.hits == 0 && first.inserts == 1)
        #expect(table.statistics.blockReads == 1)
        for _ in 0..<5 { #expect(try table.get(entries[11].key)?.value == entries[11].value) }
        let after = cache.statistics
        #expect(after.hits == 5 && after.misses == 1)
        #expect(table.statistics.blockReads == 1)
        // A full scan reads every block once, then hits the cache.
        _ = try scanForward(table.makeIterator())
        let reads = table.statistics.blockReads
        #expect(reads == Int(table.properties.dataBlocks))
        _ = try scanForward(table.makeIterator())
        #expect(table.statistics.blockReads == reads)
        // An iterator that does not fill the cache leaves it alone.
        cache.removeAll()
        _ = try scanForward(table.makeIterator(fillCache: false))
        #expect(cache.count == 0)
        // Warming loads the hottest blocks recorded earlier.
        _ = try table.get(entries[400].key)
        let hot = Set(cache.hottestKeys(limit: 10).map(\.blockOffset))
        cache.removeAll()
        #expect(try table.warmBlockCache(offsets: hot) == hot.count)
        #expect(cache.count == hot.count)
    }

    @Test("get of a missing key that the bloom filter rules out reads no data block")
    func bloomSkipsBlocks() throws {
        let fs = MemoryFileSystem()
        let entries = (0..<2000).map { i in
            Entry(key: InternalKey.make(Array("user\(2 * i + 100_000)".utf8), 9, .value), value: [UInt8(i & 0xFF)])
        }
        let options = TableOptions()
        try writeTable(fs, "/b.sst", entries, options)
        let cache = ShardedLRUCache<BlockCacheKey, Block>(capacity: 1 << 20)
        let table = try openTable(fs, "/b.sst", options, cache: cache)
        var ruledOut = 0
        for i in 0..<2000 {
            let user = Array("user\(2 * i + 100_001)".utf8)
            let before = (table.statistics.blockReads, cache.statistics.misses, cache.statistics.hits)
            let admitted = table.mayContain(userKey: user)
            let got = try table.get(InternalKey.make(user, maxSequenceNumber, .value))
            if !admitted {
                ruledOut += 1
                #expect(got == nil)
                let after = (table.statistics.blockReads, cache.statistics.misses, cache.statistics.hits)
                #expect(after == before, "a ruled-out key touched a data block")
            } else if let got {
                #expect(Array(got.key.dropLast(8)) != user)
            }
        }
        print("bloom ruled out \(ruledOut) of 2000 missing keys")
        #expect(ruledOut > 1900)
        #expect(table.statistics.bloomUseful == ruledOut && table.statistics.bloomChecks == 2000)
        // Every present key passes.
        for e in entries {
            #expect(table.mayContain(userKey: Array(e.key.dropLast(8))))
        }
    }

    @Test("internal-key tables: several versions per user key, lookups by snapshot")
    func internalKeyVersions() throws {
        let fs = MemoryFileSystem()
        var entries: [Entry] = []
        for u in 0..<300 {
            let user = Array("u\(1000 + u)".utf8)
            for seq in stride(from: 50, through: 10, by: -10) {
                entries.append(Entry(key: InternalKey.make(user, SequenceNumber(seq + u), seq == 30 ? .deletion : .value), value: Array("\(u)@\(seq)".utf8)))
            }
        }
        let options = TableOptions(blockSize: 256)
        try writeTable(fs, "/v.sst", entries, options)
        let table = try openTable(fs, "/v.sst", options)
        try table.verify()
        for u in stride(from: 0, to: 300, by: 7) {
            let user = Array("u\(1000 + u)".utf8)
            // Snapshot between versions 30 and 40 sees version 30 (a deletion).
            let got = try table.get(InternalKey.make(user, SequenceNumber(35 + u), .value))
            #expect(got?.key == InternalKey.make(user, SequenceNumber(30 + u), .deletion))
            let newest = try table.get(InternalKey.make(user, maxSequenceNumber, .value))
            #expect(newest?.value == Array("\(u)@50".utf8))
        }
    }

    @Test("huge values round-trip through a table")
    func hugeValues() throws {
        let seed = testSeed(0x416E)
        print("TableTests.hugeValues seed \(seed)")
        var rnd = TestRandom(seed: seed)
        let fs = MemoryFileSystem()
        let entries = [
            Entry(key: [1], value: rnd.bytes(10)),
            Entry(key: [2], value: rnd.compressibleBytes(3 * 1024 * 1024)),
            Entry(key: [3], value: rnd.bytes(2 * 1024 * 1024)),
            Entry(key: [4] + rnd.bytes(60_000), value: rnd.bytes(10)),
        ]
        let options = TableOptions(keyOrder: .bytewise)
        try writeTable(fs, "/h.sst", entries, options)
        let table = try openTable(fs, "/h.sst", options)
        #expect(try scanForward(table.makeIterator()) == entries)
        #expect(try scanBackward(table.makeIterator()) == entries)
        #expect(try table.get([2])?.value == entries[1].value)
        #expect(try table.get(entries[3].key)?.key == entries[3].key)
        try table.verify()
    }

    @Test("key order mismatch, unsupported version, invalid options")
    func refusals() throws {
        let fs = MemoryFileSystem()
        try writeTable(fs, "/o.sst", [Entry(key: [1], value: [2])], TableOptions(keyOrder: .bytewise))
        #expect(throws: KVError.self) { _ = try openTable(fs, "/o.sst", TableOptions(keyOrder: .internalKey)) }
        do {
            _ = try openTable(fs, "/o.sst", TableOptions(keyOrder: .internalKey))
        } catch let error as KVError {
            guard case .invalidArgument = error else {
                Issue.record("expected invalidArgument, got \(error)")
                return
            }
        }
        // Rewrite the footer with version 2 and a matching CRC.
        var bytes = try fs.readFile("/o.sst")
        let footer = bytes.count - 48
        bytes[footer + 32] = 2
        let crc = bytes[footer..<(footer + 36)].withUnsafeBytes { CRC32C.mask(CRC32C.checksum($0)) }
        withUnsafeBytes(of: crc.littleEndian) { c in
            for i in 0..<4 { bytes[footer + 36 + i] = c[i] }
        }
        let f = try fs.createWritable("/v2.sst")
        try f.append(bytes)
        try f.close()
        #expect(throws: KVError.unsupportedFormat(file: "/v2.sst", version: 2)) {
            _ = try openTable(fs, "/v2.sst", TableOptions(keyOrder: .bytewise))
        }
        for bad in [TableOptions(blockSize: 0), TableOptions(restartInterval: 0), TableOptions(bloomBitsPerKey: -1), TableOptions(bloomBitsPerKey: 65)] {
            #expect(throws: KVError.self) { try bad.validate() }
        }
        try TableOptions().validate()
    }

    @Test("a failed write latches the builder's error")
    func writeFailureLatches() throws {
        let fs = MemoryFileSystem()
        let builder = TableBuilder(file: try fs.createWritable("/f.sst"), options: TableOptions(keyOrder: .bytewise))
        try builder.add([1], [1])
        fs.inject(.init(.sync, pathContains: "f.sst", errno: 28))
        #expect(throws: KVError.io(path: "/f.sst", operation: "sync (injected)", errno: 28)) { try builder.finish() }
        #expect(throws: KVError.self) { try builder.finish() }
        builder.abandon()
    }

    @Test("tables on the POSIX file system")
    func posixFiles() throws {
        let dir = "/tmp/shale-table-test-\(getpid())"
        let fs = POSIXFileSystem()
        try fs.createDirectory(dir)
        defer {
            if let names = try? fs.listDirectory(dir) { for n in names { try? fs.removeFile(joinPath(dir, n)) } }
            try? fs.removeDirectory(dir)
        }
        var rnd = TestRandom(seed: testSeed(0x905))
        let entries = randomEntries(&rnd, count: 3000, order: .internalKey, maxValue: 100, compressible: true)
        let path = joinPath(dir, "000001.sst")
        let props = try writeTable(fs, path, entries, TableOptions())
        #expect(try fs.fileSize(path) == props.fileSize)
        let table = try openTable(fs, path, TableOptions())
        #expect(try scanForward(table.makeIterator()) == entries)
        try table.verify()
    }
}
