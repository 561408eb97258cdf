import Dispatch
import KVBase
import KVCache
import KVFileSystem
import Synchronization
import Testing
@testable import KVTable

@Suite("Adversarial and concurrent table reads")
struct AdversarialTests {
    /// Handles of every data block, read through the index.
    static func dataHandles(_ table: TableReader) throws -> [BlockHandle] {
        let it = table.indexBlock.makeIterator(order: table.keyOrder)
        var out: [BlockHandle] = []
        try it.seekToFirst()
        while it.isValid {
            out.append(try #require(BlockHandle.decodeExactly(it.value)))
            try it.next()
        }
        return out
    }

    /// Rewrites the trailer CRC of the block at `handle` in `bytes` so it matches the block.
    static func fixChecksum(_ bytes: inout [UInt8], _ handle: BlockHandle) {
        let start = Int(handle.offset)
        let end = start + Int(handle.size)
        let crc = CRC32C.mask(bytes[start...end].withUnsafeBytes { CRC32C.checksum($0) })
        withUnsafeBytes(of: crc.littleEndian) { c in
            for i in 0..<4 { bytes[end + 1 + i] = c[i] }
        }
    }

    @Test("blocks with garbage bytes but valid checksums never crash the reader", arguments: [CompressionType.none, .lz4])
    func garbageWithValidChecksums(compression: CompressionType) throws {
        let seed = testSeed(0xBAD5EED &+ UInt64(compression.rawValue))
        print("AdversarialTests.garbageWithValidChecksums(\(compression)) seed \(seed)")
        var rnd = TestRandom(seed: seed)
        let entries = randomEntries(&rnd, count: 200, order: .internalKey, maxValue: 20, compressible: true)
        let options = TableOptions(blockSize: 300, restartInterval: 4, compression: compression)
        let fs = MemoryFileSystem()
        try writeTable(fs, "/g.sst", entries, options)
        let pristine = try fs.readFile("/g.sst")
        let handles = try Self.dataHandles(openTable(fs, "/g.sst", options))
        var errors = 0
        for round in 0..<300 {
            var bytes = pristine
            let handle = handles[rnd.int(0..<handles.count)]
            for _ in 0..<(1 + rnd.int(0..<4)) {
                let at = Int(handle.offset) + rnd.int(0..<Int(handle.size))
                bytes[at] = rnd.oneIn(2) ? UInt8(truncatingIfNeeded: rnd.next()) : bytes[at] ^ (1 << UInt8(rnd.int(0..<8)))
            }
            Self.fixChecksum(&bytes, handle)
            let f = try fs.createWritable("/m.sst")
            try f.append(bytes)
            try f.close()
            do {
                let table = try openTable(fs, "/m.sst", options)
                _ = try? scanForward(table.makeIterator())
                _ = try? scanBackward(table.makeIterator())
                _ = try? runModelHarness(table.makeIterator(), entries, .internalKey, seed: seed &+ UInt64(round), operations: 30)
                for e in entries.prefix(20) { _ = try? table.get(e.key) }
                try table.verify()
            } catch let error as KVError {
                errors += 1
                guard case .corruption(let file, _, _) = error, file == "/m.sst" else {
                    Issue.record("round \(round): unexpected error \(error)")
                    continue
                }
            }
        }
        print("verify rejected \(errors) of 300 mutated tables")
    }

    @Test("long keys through get and iterators")
    func longKeys() throws {
        let seed = testSeed(0x10C6)
        print("AdversarialTests.longKeys seed \(seed)")
        var rnd = TestRandom(seed: seed)
        let entries = randomEntries(&rnd, count: 300, order: .internalKey, maxKey: 8, maxValue: 30, longPrefix: 700)
        let options = TableOptions(blockSize: 2048)
        let fs = MemoryFileSystem()
        try writeTable(fs, "/l.sst", entries, options)
        let table = try openTable(fs, "/l.sst", options, cache: ShardedLRUCache(capacity: 1 << 20))
        for e in entries {
            let got = try table.get(e.key)
            #expect(got?.key == e.key && got?.value == e.value, "seed \(seed)")
        }
        let mismatch = try runModelHarness(table.makeIterator(), entries, .internalKey, seed: seed, operations: 500)
        #expect(mismatch == nil, "\(mismatch ?? "")")
    }

    @Test("many threads read one table through one cache")
    func concurrentReaders() throws {
        let seed = testSeed(0xC0C0)
        print("AdversarialTests.concurrentReaders seed \(seed)")
        var rnd = TestRandom(seed: seed)
        let entries = randomEntries(&rnd, count: 3000, order: .internalKey, maxValue: 60, compressible: true)
        let options = TableOptions(blockSize: 512)
        let fs = MemoryFileSystem()
        try writeTable(fs, "/c.sst", entries, options)
        // A small cache, so blocks are evicted and re-read while other threads hold them.
        let cache = ShardedLRUCache<BlockCacheKey, Block>(capacity: 16 * 1024, shardCount: 4)
        let table = try openTable(fs, "/c.sst", options, cache: cache)
        let failures = Failures()
        DispatchQueue.concurrentPerform(iterations: 4) { t in
            var r = TestRandom(seed: seed &+ UInt64(t))
            do {
                for _ in 0..<400 {
                    let e = entries[r.int(0..<entries.count)]
                    let got = try table.get(e.key)
                    if got?.key != e.key || got?.value != e.value { failures.add("get mismatch") }
                }
                let it = table.makeIterator()
                var i = 0
                try it.seekToFirst()
                while it.isValid {
                    if Array(it.key) != entries[i].key { failures.add("scan mismatch at \(i)") }
                    i += 1
                    try it.next()
                }
                if i != entries.count { failures.add("scan saw \(i) entries") }
            } catch {
                failures.add("\(error)")
            }
        }
        #expect(failures.messages.isEmpty, "seed \(seed): \(failures.messages.prefix(3))")
        #expect(cache.statistics.evictions > 0)
    }
}

/// Collects failure messages from several threads.
final class Failures: Sendable {
    private let state = Mutex<[String]>([])
    func add(_ message: String) { state.withLock { $0.append(message) } }
    var messages: [String] { state.withLock { $0 } }
}
