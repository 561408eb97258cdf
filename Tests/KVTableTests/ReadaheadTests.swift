import KVBase
import KVCache
import KVFileSystem
import Testing
@testable import KVTable

/// Iterator readahead: a forward walk over many blocks reads the file in a few large reads,
/// returns exactly the table's entries, and every other access pattern is unchanged.
@Suite("Table readahead")
struct ReadaheadTests {
    static func table(seed: UInt64, compression: CompressionType) throws -> (MemoryFileSystem, [Entry], TableOptions, TableProperties) {
        var rnd = TestRandom(seed: seed)
        let entries = randomEntries(&rnd, count: 3000, order: .internalKey, maxKey: 14, maxValue: 60, compressible: true)
        let options = TableOptions(blockSize: 256, restartInterval: 4, compression: compression)
        let fs = MemoryFileSystem()
        let props = try writeTable(fs, "/r.sst", entries, options)
        return (fs, entries, options, props)
    }

    @Test("a forward walk needs far fewer reads than blocks", arguments: [CompressionType.lz4, .none])
    func fewReads(compression: CompressionType) throws {
        let seed = testSeed(0x2EAD)
        print("ReadaheadTests.fewReads seed \(seed)")
        let (fs, entries, options, props) = try Self.table(seed: seed, compression: compression)
        #expect(props.dataBlocks >= 200, "seed \(seed): only \(props.dataBlocks) blocks")
        let table = try openTable(fs, "/r.sst", options)
        // Allow 24 reads in all: without readahead the walk needs one per block.
        fs.inject(.init(.read, pathContains: "r.sst", skip: 24, count: Int.max))
        #expect(try scanForward(table.makeIterator(fillCache: false)) == entries, "seed \(seed)")
        fs.clearFaults()
        // Backward walks, seeks and gets read block by block and still agree.
        #expect(try scanBackward(table.makeIterator()) == entries, "seed \(seed)")
        let failure = try runModelHarness(table.makeIterator(), entries, .internalKey, seed: seed, operations: 3000)
        #expect(failure == nil, "seed \(seed): \(failure ?? "")")
    }

    @Test("a damaged block met by readahead is reported with the table's path")
    func damageInsideReadahead() throws {
        let seed = testSeed(0x2EAE)
        print("ReadaheadTests.damageInsideReadahead seed \(seed)")
        let (fs, entries, options, _) = try Self.table(seed: seed, compression: .lz4)
        let size = Int(try fs.fileSize("/r.sst"))
        // Somewhere in the middle of the data blocks: only readahead reads it on a forward walk.
        fs.flipBytes("/r.sst", at: size / 3, mask: 0x10)
        let table = try openTable(fs, "/r.sst", options)
        var seen = 0
        do {
            let it = table.makeIterator()
            try it.seekToFirst()
            while it.isValid {
                #expect(seen < entries.count && Array(it.key) == entries[seen].key && Array(it.value) == entries[seen].value, "seed \(seed): wrong entry \(seen)")
                seen += 1
                try it.next()
            }
            Issue.record("seed \(seed): the walk ended without an error after \(seen) entries")
        } catch {
            if case KVError.corruption(let file, let offset, _) = error {
                #expect(file == "/r.sst")
                #expect(offset > 0 && offset <= UInt64(size / 3), "seed \(seed): offset \(offset) for a flip at \(size / 3)")
            } else {
                Issue.record("seed \(seed): \(error)")
            }
        }
        #expect(seen > 0)
    }
}
