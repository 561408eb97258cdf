import KVBase
import KVCache
import KVFileSystem
@testable import KVTable

/// A (key, value) pair of test data.
struct Entry: Equatable {
    var key: [UInt8]
    var value: [UInt8]
}

/// A seeded random source; the seed is printed by each test so a failure replays.
struct TestRandom {
    var rng: SplitMix64

    init(seed: UInt64) { rng = SplitMix64(seed: seed) }

    mutating func next() -> UInt64 { rng.next() }

    mutating func int(_ range: Range<Int>) -> Int {
        range.lowerBound + Int(rng.next() % UInt64(range.count))
    }

    mutating func oneIn(_ n: Int) -> Bool { int(0..<n) == 0 }

    mutating func bytes(_ count: Int, alphabet: Int = 256) -> [UInt8] {
        if alphabet == 256 {
            // Eight bytes per draw: large random values stay cheap in debug builds.
            var out = [UInt8](repeating: 0, count: count)
            out.withUnsafeMutableBytes { buf in
                var i = 0
                while i < count {
                    var word = rng.next()
                    let n = Swift.min(8, count - i)
                    withUnsafeBytes(of: &word) { w in buf.baseAddress!.advanced(by: i).copyMemory(from: w.baseAddress!, byteCount: n) }
                    i += n
                }
            }
            return out
        }
        return (0..<count).map { _ in UInt8(truncatingIfNeeded: int(0..<alphabet)) }
    }

    /// Bytes that compress well (runs and a small alphabet).
    mutating func compressibleBytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        out.withUnsafeMutableBytes { buf in
            var i = 0
            while i < count {
                let r = rng.next()
                let n = Swift.min(count - i, 1 + Int(r % 11))
                buf.baseAddress!.advanced(by: i).initializeMemory(as: UInt8.self, repeating: UInt8(97 + (r >> 8) % 4), count: n)
                i += n
            }
        }
        return out
    }
}

func compare(_ order: KeyOrder, _ a: [UInt8], _ b: [UInt8]) -> Int {
    a.withUnsafeBytes { pa in b.withUnsafeBytes { pb in compareKeys(order, pa, pb) } }
}

/// Sorts `entries` by key under `order` and drops duplicate keys.
func sortedUnique(_ entries: [Entry], _ order: KeyOrder) -> [Entry] {
    let sorted = entries.sorted { compare(order, $0.key, $1.key) < 0 }
    var out: [Entry] = []
    for e in sorted where out.last.map({ compare(order, $0.key, e.key) != 0 }) ?? true {
        out.append(e)
    }
    return out
}

/// Random entries. Keys come from a small alphabet so they share prefixes; internal keys get
/// several versions of the same user key. `longPrefix` puts a long common prefix on every key.
func randomEntries(_ rnd: inout TestRandom, count: Int, order: KeyOrder, maxKey: Int = 12, maxValue: Int = 40, longPrefix: Int = 0, compressible: Bool = false) -> [Entry] {
    let prefix = [UInt8](repeating: 0x70, count: longPrefix)
    var out: [Entry] = []
    for _ in 0..<count {
        let user = prefix + rnd.bytes(rnd.int(0..<(maxKey + 1)), alphabet: 5).map { $0 + 0x61 }
        let key: [UInt8]
        switch order {
        case .bytewise:
            key = user
        case .internalKey:
            key = InternalKey.make(user, SequenceNumber(rnd.int(0..<1000)), rnd.oneIn(4) ? .deletion : .value)
        }
        let length = rnd.int(0..<(maxValue + 1))
        out.append(Entry(key: key, value: compressible ? rnd.compressibleBytes(length) : rnd.bytes(length)))
    }
    return sortedUnique(out, order)
}

/// A random seek target near the keys of `entries`.
func randomTarget(_ rnd: inout TestRandom, _ entries: [Entry], _ order: KeyOrder) -> [UInt8] {
    if !entries.isEmpty && rnd.oneIn(2) {
        var k = entries[rnd.int(0..<entries.count)].key
        if rnd.oneIn(3), order == .bytewise {
            if k.isEmpty || rnd.oneIn(2) { k.append(UInt8(rnd.int(0..<256))) } else { k.removeLast() }
        } else if rnd.oneIn(3), order == .internalKey {
            let user = Array(k.dropLast(8))
            k = InternalKey.make(user, SequenceNumber(rnd.int(0..<1000)), .value)
        }
        return k
    }
    let user = rnd.bytes(rnd.int(0..<14), alphabet: 6).map { $0 + 0x60 }
    return order == .internalKey ? InternalKey.make(user, SequenceNumber(rnd.int(0..<1000)), .value) : user
}

/// Index of the first entry whose key is at or after `target`.
func lowerBound(_ entries: [Entry], _ target: [UInt8], _ order: KeyOrder) -> Int {
    var lo = 0
    var hi = entries.count
    while lo < hi {
        let mid = (lo + hi) / 2
        if compare(order, entries[mid].key, target) < 0 { lo = mid + 1 } else { hi = mid }
    }
    return lo
}

/// Builds a finished block holding `entries` and parses it.
func makeBlock(_ entries: [Entry], restartInterval: Int) throws -> Block {
    var builder = BlockBuilder(restartInterval: restartInterval)
    for e in entries { builder.add(e.key, e.value) }
    builder.finish()
    return try Block.make(copying: builder.buffer)
}

/// Writes a table of `entries` into `fs` at `path`.
@discardableResult
func writeTable(_ fs: any FileSystem, _ path: String, _ entries: [Entry], _ options: TableOptions) throws -> TableProperties {
    let builder = TableBuilder(file: try fs.createWritable(path), options: options)
    for e in entries { try builder.add(e.key, e.value) }
    return try builder.finish()
}

/// Opens the table at `path`.
func openTable(_ fs: any FileSystem, _ path: String, _ options: TableOptions, fileNumber: UInt64 = 1, cache: ShardedLRUCache<BlockCacheKey, Block>? = nil) throws -> TableReader {
    try TableReader.open(file: try fs.openReadable(path), fileNumber: fileNumber, options: options, blockCache: cache)
}

/// Every entry of an iterator, walking forward.
func scanForward(_ it: any InternalIterator) throws -> [Entry] {
    var out: [Entry] = []
    try it.seekToFirst()
    while it.isValid {
        out.append(Entry(key: Array(it.key), value: Array(it.value)))
        try it.next()
    }
    return out
}

/// Every entry of an iterator, walking backward (returned in forward order).
func scanBackward(_ it: any InternalIterator) throws -> [Entry] {
    var out: [Entry] = []
    try it.seekToLast()
    while it.isValid {
        out.append(Entry(key: Array(it.key), value: Array(it.value)))
        try it.prev()
    }
    return out.reversed()
}

/// Applies the same seeded random operations to `it` and to a sorted model of `entries`,
/// checking position, key and value after each. Returns a description of the first
/// mismatch, or nil.
func runModelHarness(_ it: any InternalIterator, _ entries: [Entry], _ order: KeyOrder, seed: UInt64, operations: Int) throws -> String? {
    var rnd = TestRandom(seed: seed)
    var pos = entries.count  // == count means invalid
    var log: [String] = []
    for step in 0..<operations {
        let op = rnd.int(0..<10)
        switch op {
        case 0:
            try it.seekToFirst()
            pos = entries.isEmpty ? entries.count : 0
            log.append("seekToFirst")
        case 1:
            try it.seekToLast()
            pos = entries.isEmpty ? entries.count : entries.count - 1
            log.append("seekToLast")
        case 2, 3, 4:
            let target = randomTarget(&rnd, entries, order)
            try it.seek(target)
            pos = lowerBound(entries, target, order)
            log.append("seek(\(target))")
        case 5, 6, 7:
            if pos < entries.count {
                try it.next()
                pos += 1
                log.append("next")
            }
        default:
            if pos < entries.count {
                try it.prev()
                pos = pos == 0 ? entries.count : pos - 1
                log.append("prev")
            }
        }
        let expectValid = pos < entries.count
        let context = "seed \(seed) step \(step) after \(log.suffix(4))"
        if it.isValid != expectValid {
            return "\(context): valid \(it.isValid), model \(expectValid)"
        }
        if expectValid {
            if Array(it.key) != entries[pos].key { return "\(context): key \(Array(it.key)), model \(entries[pos].key)" }
            if Array(it.value) != entries[pos].value { return "\(context): value differs at key \(entries[pos].key)" }
        }
    }
    return nil
}

/// A seed for a test: fixed unless SHALE_TEST_SEED is set in the environment.
func testSeed(_ base: UInt64) -> UInt64 {
    if let s = getenv("SHALE_TEST_SEED"), let v = UInt64(String(cString: s)) { return v }
    return base
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
