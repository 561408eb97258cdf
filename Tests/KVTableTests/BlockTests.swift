import KVBase
import Testing
@testable import KVTable

@Suite("Block builder and reader")
struct BlockTests {
    @Test("round trip", arguments: [1, 2, 16])
    func roundTrip(restartInterval: Int) throws {
        let seed = testSeed(0xB10C + UInt64(restartInterval))
        print("BlockTests.roundTrip seed \(seed)")
        var rnd = TestRandom(seed: seed)
        for count in [1, 2, 15, 16, 17, 200] {
            let entries = randomEntries(&rnd, count: count, order: .bytewise, maxKey: 20, maxValue: 30)
            let block = try makeBlock(entries, restartInterval: restartInterval)
            let it = block.makeIterator(order: .bytewise)
            #expect(try scanForward(it) == entries, "seed \(seed) count \(count)")
            #expect(try scanBackward(it) == entries, "seed \(seed) count \(count)")
        }
    }

    @Test("keys sharing long prefixes")
    func longSharedPrefixes() throws {
        let seed = testSeed(0x5EED_0001)
        print("BlockTests.longSharedPrefixes seed \(seed)")
        var rnd = TestRandom(seed: seed)
        let entries = randomEntries(&rnd, count: 300, order: .bytewise, maxKey: 6, longPrefix: 1000)
        for interval in [1, 16] {
            let block = try makeBlock(entries, restartInterval: interval)
            let it = block.makeIterator(order: .bytewise)
            #expect(try scanForward(it) == entries, "seed \(seed)")
            #expect(try scanBackward(it) == entries, "seed \(seed)")
            #expect(try runModelHarness(it, entries, .bytewise, seed: seed, operations: 500) == nil)
        }
        // Prefix compression keeps the block far below the sum of the key lengths.
        let block = try makeBlock(entries, restartInterval: 16)
        #expect(block.size < entries.reduce(0) { $0 + $1.key.count } / 4)
    }

    @Test("empty block")
    func emptyBlock() throws {
        var builder = BlockBuilder(restartInterval: 16)
        builder.finish()
        #expect(builder.buffer == [0, 0, 0, 0, 1, 0, 0, 0])
        let it = try Block.make(copying: builder.buffer).makeIterator(order: .bytewise)
        try it.seekToFirst()
        #expect(!it.isValid)
        try it.seekToLast()
        #expect(!it.isValid)
        try it.seek([1, 2, 3])
        #expect(!it.isValid)
    }

    @Test("one entry, empty key and value")
    func oneEntry() throws {
        for entry in [Entry(key: [], value: []), Entry(key: [7], value: [1, 2, 3])] {
            let it = try makeBlock([entry], restartInterval: 16).makeIterator(order: .bytewise)
            try it.seekToFirst()
            #expect(it.isValid && Array(it.key) == entry.key && Array(it.value) == entry.value)
            try it.next()
            #expect(!it.isValid)
            try it.seekToLast()
            #expect(it.isValid && Array(it.key) == entry.key)
            try it.prev()
            #expect(!it.isValid)
            try it.seek([])
            #expect(it.isValid && Array(it.key) == entry.key)
            try it.seek([0xFF])
            #expect(!it.isValid)
        }
    }

    @Test("huge keys and values")
    func hugeKeysAndValues() throws {
        let seed = testSeed(0x4B1C)
        print("BlockTests.hugeKeysAndValues seed \(seed)")
        var rnd = TestRandom(seed: seed)
        var entries: [Entry] = []
        for i in 0..<4 {
            var key = rnd.bytes(64 * 1024)
            key[0] = UInt8(i)
            entries.append(Entry(key: key, value: rnd.bytes(i == 2 ? 3 * 1024 * 1024 : 100)))
        }
        entries.append(Entry(key: [9], value: rnd.bytes(5 * 1024 * 1024 + 3)))
        for interval in [1, 16] {
            let block = try makeBlock(entries, restartInterval: interval)
            let it = block.makeIterator(order: .bytewise)
            #expect(try scanForward(it) == entries, "seed \(seed)")
            #expect(try scanBackward(it) == entries, "seed \(seed)")
            try it.seek(entries[2].key)
            #expect(it.isValid && Array(it.value) == entries[2].value)
        }
    }

    @Test("model harness on blocks", arguments: [KeyOrder.bytewise, .internalKey], [1, 16])
    func harness(order: KeyOrder, restartInterval: Int) throws {
        let seed = testSeed(0x4A27 &+ (order == .bytewise ? 0 : 100) &+ UInt64(restartInterval))
        print("BlockTests.harness(\(order), \(restartInterval)) seed \(seed)")
        var rnd = TestRandom(seed: seed)
        for count in [0, 1, 3, 40, 400] {
            let entries = randomEntries(&rnd, count: count, order: order)
            let block = try makeBlock(entries, restartInterval: restartInterval)
            let it = block.makeIterator(order: order)
            let mismatch = try runModelHarness(it, entries, order, seed: seed &+ UInt64(count), operations: 600)
            #expect(mismatch == nil, "\(mismatch ?? "")")
        }
    }

    @Test("malformed blocks throw corruption")
    func malformedBlocks() throws {
        func expectCorrupt(_ bytes: [UInt8], _ note: String) {
            do {
                let block = try Block.make(copying: bytes, file: "t.sst", offset: 77)
                let it = block.makeIterator(order: .bytewise)
                _ = try scanForward(it)
                _ = try scanBackward(it)
                try it.seek([0x61])
                Issue.record("\(note): no error")
            } catch let error as KVError {
                guard case .corruption(let file, let offset, _) = error else {
                    Issue.record("\(note): \(error)")
                    return
                }
                #expect(file == "t.sst" && offset == 77, "\(note)")
            } catch {
                Issue.record("\(note): \(error)")
            }
        }
        expectCorrupt([], "empty")
        expectCorrupt([1, 0, 0], "three bytes")
        expectCorrupt([0, 0, 0, 0, 0, 0, 0, 0], "zero restarts")
        expectCorrupt([0, 0, 0, 0, 9, 0, 0, 0], "too many restarts")
        expectCorrupt([0, 0, 0, 0, 5, 0, 0, 0, 2, 0, 0, 0], "second restart out of range")
        // Entry claiming a value longer than the block.
        expectCorrupt([0, 1, 90, 0x61, 0, 0, 0, 0, 1, 0, 0, 0], "value past end")
        // First entry sharing bytes with a nonexistent previous key.
        expectCorrupt([3, 1, 0, 0x61, 0, 0, 0, 0, 1, 0, 0, 0], "shared without a previous key")
        // Unterminated varint.
        expectCorrupt([0x80, 0x80, 0x80, 0, 0, 0, 0, 1, 0, 0, 0], "bad varint")
        // Internal key shorter than its trailer.
        do {
            let block = try makeBlock([Entry(key: [1, 2, 3], value: [])], restartInterval: 1)
            #expect(throws: KVError.self) { _ = try scanForward(block.makeIterator(order: .internalKey)) }
        }
    }

    @Test("every single-byte mutation of a block is rejected or harmless")
    func blockMutations() throws {
        let seed = testSeed(0xF11B)
        print("BlockTests.blockMutations seed \(seed)")
        var rnd = TestRandom(seed: seed)
        let entries = randomEntries(&rnd, count: 30, order: .internalKey)
        var builder = BlockBuilder(restartInterval: 4)
        for e in entries { builder.add(e.key, e.value) }
        builder.finish()
        let good = builder.buffer
        for i in 0..<good.count {
            for mask: UInt8 in [0x01, 0x80, 0xFF] {
                var bytes = good
                bytes[i] ^= mask
                // No CRC at this level: the bytes may decode to other data, but must never crash.
                do {
                    let it = try Block.make(copying: bytes).makeIterator(order: .internalKey)
                    _ = try scanForward(it)
                    _ = try scanBackward(it)
                    _ = try runModelHarness(it, entries, .internalKey, seed: seed, operations: 20)
                } catch is KVError {
                } catch {
                    Issue.record("unexpected error \(error)")
                }
            }
        }
    }
}

extension KeyOrder: CustomTestStringConvertible {
    public var testDescription: String { self == .bytewise ? "bytewise" : "internalKey" }
}
