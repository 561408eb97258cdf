import KVBase
import Testing
@testable import KVTable

@Suite("Bloom filter")
struct BloomFilterTests {
    static func key(_ i: Int) -> [UInt8] {
        var k: [UInt8] = []
        k.appendFixed32(UInt32(i))
        return k
    }

    /// LevelDB's filter, as tables of earlier versions hold it (the legacy encoding).
    static func legacyFilter(_ keys: [[UInt8]], bitsPerKey: Int) -> [UInt8] {
        let k = min(30, max(1, Int((Double(bitsPerKey) * 0.693_147_180_559_945_3).rounded())))
        let bytes = (max(keys.count * bitsPerKey, 64) + 7) / 8
        let totalBits = UInt64(bytes * 8)
        var out = [UInt8](repeating: 0, count: bytes + 1)
        out[bytes] = UInt8(k)
        for key in keys {
            var h = key.withUnsafeBytes { bloomHash($0) }
            let delta = (h >> 17) | (h << 15)
            for _ in 0..<k {
                let bit = Int(UInt64(h) % totalBits)
                out[bit >> 3] |= UInt8(1) << UInt8(bit & 7)
                h &+= delta
            }
        }
        return out
    }

    @Test("local probe count follows the bits-per-key table (6 at 10 bits per key)")
    func probes() {
        #expect(BloomFilterBuilder.localProbes(bitsPerKey: 10) == 6)
        #expect(BloomFilterBuilder.localProbes(bitsPerKey: 1) == 1)
        #expect(BloomFilterBuilder.localProbes(bitsPerKey: 20) == 11)
        #expect(BloomFilterBuilder.localProbes(bitsPerKey: 64) <= 24)
        #expect(BloomFilterBuilder.localProbes(bitsPerKey: 1000) == 24)
    }

    @Test("keyHash64 keeps its values (the local filter's on-disk format depends on them)")
    func keyHashVectors() {
        func h(_ bytes: [UInt8]) -> UInt64 { bytes.withUnsafeBytes { keyHash64($0) } }
        #expect(h([]) == Self.pinnedHashes[0])
        #expect(h(Array("a".utf8)) == Self.pinnedHashes[1])
        #expect(h(Array("key:000000000042".utf8)) == Self.pinnedHashes[2])
        #expect(h(Array("0123456789abcdefXYZ".utf8)) == Self.pinnedHashes[3])
    }

    static let pinnedHashes: [UInt64] = [
        0x9CA0_66F1_A4AB_2EEA, 0x5D27_4472_6D37_F45E, 0x3460_78E4_5737_166E, 0xB3ED_F7F6_C682_E42E,
    ]

    @Test("a local filter sets all its bits for a key in one 64-byte line")
    func oneLinePerKey() {
        var builder = BloomFilterBuilder(bitsPerKey: 10)
        let key = Array("one key".utf8)
        key.withUnsafeBytes { builder.add($0) }
        for i in 0..<200 { Self.key(i).withUnsafeBytes { builder.add($0) } }
        let lines = (201 * 10 + 511) / 512
        let bytes = builder.finish()
        #expect(bytes.count == lines * 64 + 2)
        #expect(bytes[lines * 64] == 6)
        #expect(bytes[lines * 64 + 1] == 0x81)
        // A filter of that one key alone: exactly one line has bits set.
        var single = BloomFilterBuilder(bitsPerKey: 1000)
        key.withUnsafeBytes { single.add($0) }
        let one = single.finish()
        let count = (one.count - 2) / 64
        let used = (0..<count).filter { l in one[(l * 64)..<(l * 64 + 64)].contains { $0 != 0 } }
        #expect(used.count == 1)
        #expect(one[..<(count * 64)].reduce(0) { $0 + $1.nonzeroBitCount } <= 24)
    }

    @Test("legacy (LevelDB) filters of earlier tables are still read: no false negatives, few false positives")
    func legacyFiltersAreRead() {
        let keys = (0..<20_000).map { Self.key($0) }
        let filter = BloomFilter(bytes: Self.legacyFilter(keys, bitsPerKey: 10))
        for k in keys { #expect(k.withUnsafeBytes { filter.mayContain($0) }) }
        var fp = 0
        for i in 0..<20_000 where Self.key(1_000_000_000 + i).withUnsafeBytes({ filter.mayContain($0) }) { fp += 1 }
        #expect(Double(fp) / 20_000 < 0.02, "\(fp) false positives")
    }

    @Test("hash matches LevelDB's util/hash.cc test vectors")
    func hashVectors() {
        func h(_ bytes: [UInt8], _ seed: UInt32) -> UInt32 { bytes.withUnsafeBytes { bloomHash($0, seed: seed) } }
        #expect(h([], 0xBC9F_1D34) == 0xBC9F_1D34)
        #expect(h([0x62], 0xBC9F_1D34) == 0xEF13_45C4)
        #expect(h([0xC3, 0x97], 0xBC9F_1D34) == 0x5B66_3814)
        #expect(h([0xE2, 0x99, 0xA5], 0xBC9F_1D34) == 0x323C_078F)
        #expect(h([0xE1, 0x80, 0xB9, 0x32], 0xBC9F_1D34) == 0xED21_633A)
    }

    @Test("no false negatives, and false positives below 2% at 10 bits per key")
    func falsePositiveRate() {
        let n = 100_000
        var builder = BloomFilterBuilder(bitsPerKey: 10)
        for i in 0..<n { Self.key(i).withUnsafeBytes { builder.add($0) } }
        let filter = BloomFilter(bytes: builder.finish())
        for i in 0..<n {
            let hit = Self.key(i).withUnsafeBytes { filter.mayContain($0) }
            if !hit {
                Issue.record("false negative for key \(i)")
                break
            }
        }
        var falsePositives = 0
        for i in 0..<n {
            if Self.key(1_000_000_000 + i).withUnsafeBytes({ filter.mayContain($0) }) { falsePositives += 1 }
        }
        let rate = Double(falsePositives) / Double(n)
        print("bloom false-positive rate at 10 bits/key over \(n) keys: \(rate * 100)% (\(falsePositives) of \(n)); filter \(filter.size) bytes")
        #expect(rate < 0.02)
    }

    @Test("varying lengths: no false negatives, rate bounded", arguments: [1, 10, 100, 1000, 10_000])
    func varyingLengths(count: Int) {
        var builder = BloomFilterBuilder(bitsPerKey: 10)
        for i in 0..<count { Self.key(i).withUnsafeBytes { builder.add($0) } }
        let filter = BloomFilter(bytes: builder.finish())
        #expect(filter.size <= count * 10 / 8 + 66)
        for i in 0..<count {
            #expect(Self.key(i).withUnsafeBytes { filter.mayContain($0) })
        }
        var fp = 0
        for i in 0..<10_000 where Self.key(i + 1_000_000_000).withUnsafeBytes({ filter.mayContain($0) }) { fp += 1 }
        #expect(Double(fp) / 10_000 < 0.02, "count \(count): \(fp) false positives")
    }

    @Test("degenerate filters match everything")
    func degenerate() {
        let k: [UInt8] = [1, 2, 3]
        #expect(k.withUnsafeBytes { BloomFilter(bytes: []).mayContain($0) })
        #expect(k.withUnsafeBytes { BloomFilter(bytes: [0]).mayContain($0) })
        #expect(k.withUnsafeBytes { BloomFilter(bytes: [0, 0, 31]).mayContain($0) })
        // An empty legacy filter with k = 1 rules everything out.
        #expect(!k.withUnsafeBytes { BloomFilter(bytes: [0, 0, 0, 0, 0, 0, 0, 0, 1]).mayContain($0) })
        // Local filters: an empty line with k = 1 rules everything out; a wrong size, k = 0
        // or k above 24 matches everything.
        let empty = [UInt8](repeating: 0, count: 64)
        #expect(!k.withUnsafeBytes { BloomFilter(bytes: empty + [1, 0x81]).mayContain($0) })
        #expect(k.withUnsafeBytes { BloomFilter(bytes: empty + [0, 1, 0x81]).mayContain($0) })
        #expect(k.withUnsafeBytes { BloomFilter(bytes: [6, 0x81]).mayContain($0) })
        #expect(k.withUnsafeBytes { BloomFilter(bytes: empty + [0, 0x81]).mayContain($0) })
        #expect(k.withUnsafeBytes { BloomFilter(bytes: empty + [25, 0x81]).mayContain($0) })
        // Unknown encodings (last byte 0x80, 0x82, 0xff) match everything.
        for marker: UInt8 in [0x80, 0x82, 0xFF] {
            #expect(k.withUnsafeBytes { BloomFilter(bytes: empty + [1, marker]).mayContain($0) })
        }
    }
}
