import KVBase
import KVCache
import KVFileSystem
import Testing
@testable import KVTable

/// Flipped and truncated table files: every outcome is either a corruption error naming the
/// file or exactly the original data.
@Suite("Table corruption")
struct CorruptionTests {
    enum Outcome {
        case ok
        case detected
    }

    /// Opens, scans both ways and gets every key; returns whether an error was seen. Records an
    /// issue for any error other than a corruption naming `path`, and for any wrong data.
    static func exercise(_ fs: MemoryFileSystem, _ path: String, _ entries: [Entry], _ options: TableOptions, note: String) -> Outcome {
        var detected = false
        func check(_ error: any Error) {
            detected = true
            if case KVError.corruption(let file, _, _) = error, file == path { return }
            Issue.record("\(note): unexpected error \(error)")
        }
        let table: TableReader
        do {
            table = try openTable(fs, path, options, cache: ShardedLRUCache(capacity: 1 << 20, shardCount: 2))
        } catch {
            check(error)
            return .detected
        }
        // Forward: every entry returned must be the original at that position.
        do {
            let it = table.makeIterator()
            try it.seekToFirst()
            var i = 0
            while it.isValid {
                guard i < entries.count, Array(it.key) == entries[i].key, Array(it.value) == entries[i].value else {
                    Issue.record("\(note): forward scan returned different data at \(i)")
                    break
                }
                i += 1
                try it.next()
            }
            if i != entries.count { Issue.record("\(note): forward scan ended early at \(i) without an error") }
        } catch {
            check(error)
        }
        do {
            let it = table.makeIterator(fillCache: false)
            try it.seekToLast()
            var i = entries.count - 1
            while it.isValid {
                guard i >= 0, Array(it.key) == entries[i].key, Array(it.value) == entries[i].value else {
                    Issue.record("\(note): backward scan returned different data at \(i)")
                    break
                }
                i -= 1
                try it.prev()
            }
            if i != -1 { Issue.record("\(note): backward scan ended early at \(i) without an error") }
        } catch {
            check(error)
        }
        for e in entries {
            do {
                let got = try table.get(e.key)
                if got?.key != e.key || got?.value != e.value {
                    Issue.record("\(note): get returned different data")
                }
            } catch {
                check(error)
            }
        }
        do {
            try table.verify()
        } catch {
            check(error)
        }
        return detected ? .detected : .ok
    }

    static func smallTable(compression: CompressionType) -> (fs: MemoryFileSystem, bytes: [UInt8], entries: [Entry], options: TableOptions, seed: UInt64) {
        let seed = testSeed(0xC0FF)
        print("CorruptionTests seed \(seed)")
        var rnd = TestRandom(seed: seed)
        let entries = randomEntries(&rnd, count: 40, order: .internalKey, maxKey: 6, maxValue: 30, compressible: true)
        let options = TableOptions(blockSize: 200, restartInterval: 4, compression: compression)
        let fs = MemoryFileSystem()
        _ = try! writeTable(fs, "/x.sst", entries, options)
        let bytes = try! fs.readFile("/x.sst")
        return (fs, bytes, entries, options, seed)
    }

    @Test("flipping any byte is detected", arguments: [CompressionType.lz4, .none])
    func flipEveryByte(compression: CompressionType) throws {
        let (fs, bytes, entries, options, seed) = Self.smallTable(compression: compression)
        #expect(Self.exercise(fs, "/x.sst", entries, options, note: "pristine") == .ok)
        print("table of \(bytes.count) bytes, \(entries.count) entries")
        var detected = 0
        for offset in 0..<bytes.count {
            for mask: UInt8 in [0x01, 0xFF] {
                fs.flipBytes("/x.sst", at: offset, mask: mask)
                if Self.exercise(fs, "/x.sst", entries, options, note: "seed \(seed): flip \(mask) at \(offset)") == .detected {
                    detected += 1
                } else {
                    Issue.record("seed \(seed): flip \(mask) at \(offset) went unnoticed")
                }
                fs.flipBytes("/x.sst", at: offset, mask: mask)
            }
        }
        print("detected \(detected) of \(2 * bytes.count) flips")
    }

    @Test("every truncation is detected")
    func truncations() throws {
        let (fs, bytes, entries, options, seed) = Self.smallTable(compression: .lz4)
        for length in 0..<bytes.count {
            let f = try fs.createWritable("/t.sst")
            try f.append(Array(bytes[0..<length]))
            try f.close()
            let outcome = Self.exercise(fs, "/t.sst", entries, options, note: "seed \(seed): truncated to \(length)")
            #expect(outcome == .detected, "seed \(seed): truncated to \(length)")
        }
    }

    @Test("read errors surface as I/O errors")
    func readErrors() throws {
        let (fs, _, entries, options, _) = Self.smallTable(compression: .lz4)
        let table = try openTable(fs, "/x.sst", options)
        fs.inject(.init(.read, pathContains: "x.sst", count: Int.max))
        #expect(throws: KVError.self) { _ = try scanForward(table.makeIterator()) }
        #expect(throws: KVError.self) { _ = try table.get(entries[0].key) }
        fs.clearFaults()
        #expect(try scanForward(table.makeIterator()) == entries)
    }
}
