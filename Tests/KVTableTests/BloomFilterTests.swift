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

    @Test("probe count is round(bits * ln 2) clamped to 1...30")
    func probes() {
        #expect(BloomFilterBuilder.probes(bitsPerKey: 10) == 7)
        #expect(BloomFilterBuilder.probes(bitsPerKey: 1) == 1)
        #expect(BloomFilterBuilder.probes(bitsPerKey: 64) == 30)
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
        print("bloom false-positive rate at 10 bits/key over \(n) keys: \(rate * 100)% (\(falsePositives) of \(n)); filter \(filter.bytes.count) bytes")
        #expect(rate < 0.02)
    }

    @Test("varying lengths: no false negatives, rate bounded", arguments: [1, 10, 100, 1000, 10_000])
    func varyingLengths(count: Int) {
        var builder = BloomFilterBuilder(bitsPerKey: 10)
        for i in 0..<count { Self.key(i).withUnsafeBytes { builder.add($0) } }
        let filter = BloomFilter(bytes: builder.finish())
        #expect(filter.bytes.count <= count * 10 / 8 + 40)
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
        // An empty filter with k = 1 rules everything out.
        #expect(!k.withUnsafeBytes { BloomFilter(bytes: [0, 0, 0, 0, 0, 0, 0, 0, 1]).mayContain($0) })
    }
}
