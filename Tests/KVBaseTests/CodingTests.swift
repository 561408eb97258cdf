import KVBase
import Testing

private func decodeVarint(_ bytes: [UInt8], at start: Int = 0) -> (value: UInt64?, offset: Int) {
    bytes.withUnsafeBytes { p in
        var offset = start
        let v = p.varint(at: &offset)
        return (v, offset)
    }
}

private func decodeVarint32(_ bytes: [UInt8], at start: Int = 0) -> (value: UInt32?, offset: Int) {
    bytes.withUnsafeBytes { p in
        var offset = start
        let v = p.varint32(at: &offset)
        return (v, offset)
    }
}

private func encodeVarint(_ value: UInt64) -> [UInt8] {
    var out: [UInt8] = []
    out.appendVarint(value)
    return out
}

private func sign(_ x: Int) -> Int { x < 0 ? -1 : (x > 0 ? 1 : 0) }

@Suite("Coding: varints")
struct VarintTests {
    struct Boundary: Sendable, CustomTestStringConvertible {
        let value: UInt64
        let length: Int
        var testDescription: String { "\(value) (\(length) bytes)" }
    }

    /// Every 7-bit group boundary: the largest value of each length and the smallest of the next.
    static let boundaries: [Boundary] = {
        var out = [Boundary(value: 0, length: 1), Boundary(value: 1, length: 1)]
        for groups in 1...9 {
            let firstOfNext = UInt64(1) << (7 * UInt64(groups))
            out.append(Boundary(value: firstOfNext - 1, length: groups))
            out.append(Boundary(value: firstOfNext, length: groups + 1))
        }
        out += [
            Boundary(value: UInt64(UInt32.max), length: 5),
            Boundary(value: UInt64(UInt32.max) + 1, length: 5),
            Boundary(value: UInt64.max, length: 10),
        ]
        return out
    }()

    @Test("named boundaries have the expected lengths")
    func namedBoundaries() {
        let expected: [(UInt64, Int)] = [
            (0, 1), (127, 1), (128, 2), (16383, 2), (16384, 3),
            (UInt64(UInt32.max), 5), (1 << 63, 10), (UInt64.max, 10),
        ]
        for (value, length) in expected {
            #expect(encodeVarint(value).count == length, "value \(value)")
            #expect(varintLength(value) == length, "value \(value)")
        }
    }

    @Test("round trip at every boundary", arguments: boundaries)
    func roundTrip(_ b: Boundary) {
        let bytes = encodeVarint(b.value)
        #expect(bytes.count == b.length)
        #expect(varintLength(b.value) == b.length)
        // Every byte but the last has the continuation bit.
        #expect(bytes.dropLast().allSatisfy { $0 & 0x80 != 0 })
        #expect(bytes.last! & 0x80 == 0)
        let (value, offset) = decodeVarint(bytes)
        #expect(value == b.value)
        #expect(offset == b.length)
        // Decoding in the middle of a larger buffer reads only the varint.
        let framed: [UInt8] = [0xAA, 0xBB] + bytes + [0xCC]
        let (inner, innerOffset) = decodeVarint(framed, at: 2)
        #expect(inner == b.value)
        #expect(innerOffset == 2 + b.length)
    }

    @Test("known encodings")
    func knownEncodings() {
        #expect(encodeVarint(0) == [0x00])
        #expect(encodeVarint(127) == [0x7F])
        #expect(encodeVarint(128) == [0x80, 0x01])
        #expect(encodeVarint(300) == [0xAC, 0x02])
        #expect(encodeVarint(16384) == [0x80, 0x80, 0x01])
        #expect(encodeVarint(UInt64(UInt32.max)) == [0xFF, 0xFF, 0xFF, 0xFF, 0x0F])
        #expect(encodeVarint(1 << 63) == [UInt8](repeating: 0x80, count: 9) + [0x01])
        #expect(encodeVarint(UInt64.max) == [UInt8](repeating: 0xFF, count: 9) + [0x01])
    }

    @Test("random values round trip back to back")
    func randomSequence() {
        let seed = testSeed("Varint.randomSequence")
        var rng = TestRandom(seed: seed)
        var values: [UInt64] = []
        for _ in 0..<2000 {
            // Spread the values over every length: a random value shifted right by a random amount.
            values.append(rng.next() >> UInt64.random(in: 0...63, using: &rng))
        }
        var bytes: [UInt8] = []
        for v in values { bytes.appendVarint(v) }
        #expect(bytes.count == values.reduce(0) { $0 + varintLength($1) }, "seed \(seed)")
        bytes.withUnsafeBytes { p in
            var offset = 0
            for (i, v) in values.enumerated() {
                let decoded = p.varint(at: &offset)
                #expect(decoded == v, "seed \(seed), index \(i)")
            }
            #expect(offset == p.count, "seed \(seed)")
        }
    }

    @Test("truncated varints return nil and leave the offset alone", arguments: boundaries.filter { $0.length > 1 })
    func truncated(_ b: Boundary) {
        let bytes = encodeVarint(b.value)
        for cut in 0..<bytes.count {
            let (value, offset) = decodeVarint(Array(bytes[..<cut]))
            #expect(value == nil, "cut at \(cut)")
            #expect(offset == 0, "cut at \(cut)")
            let (value32, offset32) = decodeVarint32(Array(bytes[..<cut]))
            #expect(value32 == nil, "cut at \(cut)")
            #expect(offset32 == 0, "cut at \(cut)")
        }
    }

    @Test("decoding never reads past the end of its buffer")
    func staysInBounds() {
        // The byte after the view would complete the varint; the decoder must not see it.
        let backing: [UInt8] = [0x80, 0x80, 0x01, 0x00]
        backing.withUnsafeBytes { whole in
            for end in 0...2 {
                let view = UnsafeRawBufferPointer(rebasing: whole[0..<end])
                var offset = 0
                #expect(view.varint(at: &offset) == nil, "view of \(end) bytes")
                #expect(offset == 0)
                #expect(view.varint32(at: &offset) == nil, "view of \(end) bytes")
                #expect(offset == 0)
            }
            let full = UnsafeRawBufferPointer(rebasing: whole[0..<3])
            var offset = 0
            #expect(full.varint(at: &offset) == 16384)
            #expect(offset == 3)
        }
        // Starting at the end is a truncated varint too.
        #expect(decodeVarint([0x01], at: 1).value == nil)
        #expect(decodeVarint([], at: 0).value == nil)
    }

    @Test("varints longer than 10 bytes return nil")
    func overLong() {
        // 10 continuation bytes, then a terminator: 11 bytes.
        let eleven = [UInt8](repeating: 0x80, count: 10) + [0x00]
        #expect(decodeVarint(eleven).value == nil)
        #expect(decodeVarint(eleven).offset == 0)
        let elevenWithValue = [UInt8](repeating: 0xFF, count: 10) + [0x01]
        #expect(decodeVarint(elevenWithValue).value == nil)
        // 10 continuation bytes and nothing after them.
        #expect(decodeVarint([UInt8](repeating: 0x80, count: 10)).value == nil)
        // A long run of continuation bytes stops at 10 without walking the rest.
        #expect(decodeVarint([UInt8](repeating: 0xFF, count: 64)).value == nil)
        // The longest legal varint still decodes.
        #expect(decodeVarint([UInt8](repeating: 0xFF, count: 9) + [0x01]).value == UInt64.max)
    }

    @Test("varint32 accepts up to UInt32.max and rejects anything larger")
    func varint32Range() {
        for v: UInt32 in [0, 1, 127, 128, 16383, 16384, 1 << 21, 1 << 28, UInt32.max - 1, UInt32.max] {
            let (value, offset) = decodeVarint32(encodeVarint(UInt64(v)))
            #expect(value == v)
            #expect(offset == varintLength(UInt64(v)))
        }
        for v: UInt64 in [UInt64(UInt32.max) + 1, 1 << 35, 1 << 63, UInt64.max] {
            let (value, offset) = decodeVarint32(encodeVarint(v) + [0x05])
            #expect(value == nil, "value \(v)")
            #expect(offset == 0, "a rejected varint32 must not advance the offset (value \(v))")
        }
    }
}

@Suite("Coding: fixed-width integers and length prefixes")
struct FixedCodingTests {
    @Test("fixed32 is 4 little-endian bytes")
    func fixed32Layout() {
        var out: [UInt8] = []
        out.appendFixed32(0x0403_0201)
        #expect(out == [0x01, 0x02, 0x03, 0x04])
        out.appendFixed32(0)
        out.appendFixed32(UInt32.max)
        #expect(out == [0x01, 0x02, 0x03, 0x04, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF])
        out.withUnsafeBytes { p in
            #expect(p.fixed32(at: 0) == 0x0403_0201)
            #expect(p.fixed32(at: 4) == 0)
            #expect(p.fixed32(at: 8) == UInt32.max)
            // Unaligned reads.
            #expect(p.fixed32(at: 1) == 0x0004_0302)
            #expect(p.fixed32(at: 3) == 0x0000_0004)
        }
    }

    @Test("fixed64 is 8 little-endian bytes")
    func fixed64Layout() {
        var out: [UInt8] = [0xEE]
        out.appendFixed64(0x0807_0605_0403_0201)
        #expect(out == [0xEE, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08])
        out.withUnsafeBytes { p in
            #expect(p.fixed64(at: 1) == 0x0807_0605_0403_0201)
        }
        var high: [UInt8] = []
        high.appendFixed64(1 << 63)
        #expect(high == [0, 0, 0, 0, 0, 0, 0, 0x80])
    }

    @Test("random fixed values round trip at every alignment")
    func fixedRoundTrip() {
        let seed = testSeed("Fixed.roundTrip")
        var rng = TestRandom(seed: seed)
        for pad in 0..<8 {
            let a = UInt32.random(in: 0...UInt32.max, using: &rng)
            let b = rng.next()
            var out = [UInt8](repeating: 0xAB, count: pad)
            out.appendFixed32(a)
            out.appendFixed64(b)
            #expect(out.count == pad + 12)
            out.withUnsafeBytes { p in
                #expect(p.fixed32(at: pad) == a, "seed \(seed), pad \(pad)")
                #expect(p.fixed64(at: pad + 4) == b, "seed \(seed), pad \(pad)")
            }
        }
    }

    @Test("length-prefixed bytes: varint length then the bytes")
    func lengthPrefixed() {
        var out: [UInt8] = []
        out.appendLengthPrefixed([1, 2, 3])
        #expect(out == [3, 1, 2, 3])
        let big = [UInt8](repeating: 7, count: 200)
        big.withUnsafeBytes { out.appendLengthPrefixed($0) }
        #expect(out.count == 4 + 2 + 200)
        #expect(Array(out[4..<6]) == [0xC8, 0x01])
        out.appendLengthPrefixed([])
        #expect(out.last == 0)
        out.withUnsafeBytes { p in
            var offset = 4
            #expect(p.varint32(at: &offset) == 200)
            #expect(offset == 6)
        }
    }
}

@Suite("Coding: compareBytes")
struct CompareBytesTests {
    @Test("hand-picked cases", arguments: [
        ([], [], 0),
        ([], [0], -1),
        ([0], [], 1),
        ([1, 2], [1, 2], 0),
        ([1, 2], [1, 2, 0], -1),
        ([1, 2, 0], [1, 2], 1),
        ([0xFF], [0x00, 0xFF], 1),
        ([0x7F], [0x80], -1),
        ([1, 2, 3], [1, 3], -1),
    ] as [([UInt8], [UInt8], Int)])
    func cases(_ a: [UInt8], _ b: [UInt8], _ expected: Int) {
        #expect(compareBytes(a, b) == expected)
    }

    @Test("agrees with Swift lexicographic order on random arrays, prefixes and empties")
    func matchesLexicographic() {
        let seed = testSeed("compareBytes.matchesLexicographic")
        var rng = TestRandom(seed: seed)
        // A tiny alphabet and short lengths make equal arrays and prefixes common.
        let alphabet: [UInt8] = [0x00, 0x01, 0x7F, 0x80, 0xFF]
        func randomArray() -> [UInt8] {
            (0..<Int.random(in: 0...5, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }
        }
        var sawEqual = false, sawPrefix = false, sawEmpty = false
        for round in 0..<5000 {
            let a = randomArray()
            var b = randomArray()
            if round % 4 == 0 { b = a + b }  // a is a prefix of b
            let expected = a == b ? 0 : (a.lexicographicallyPrecedes(b) ? -1 : 1)
            let got = compareBytes(a, b)
            #expect(got == expected, "seed \(seed), a \(a), b \(b)")
            #expect(compareBytes(b, a) == -got, "seed \(seed), a \(a), b \(b)")
            sawEqual = sawEqual || a == b
            sawPrefix = sawPrefix || (a != b && b.starts(with: a))
            sawEmpty = sawEmpty || a.isEmpty || b.isEmpty
        }
        #expect(sawEqual && sawPrefix && sawEmpty, "seed \(seed)")
    }

    @Test("long arrays differing at one position")
    func longArrays() {
        let seed = testSeed("compareBytes.longArrays")
        var rng = TestRandom(seed: seed)
        let base = rng.bytes(4096)
        for _ in 0..<100 {
            let i = Int.random(in: 0..<base.count, using: &rng)
            var other = base
            other[i] &+= UInt8.random(in: 1...255, using: &rng)
            let expected = base[i] < other[i] ? -1 : 1
            #expect(sign(compareBytes(base, other)) == expected, "seed \(seed), index \(i)")
        }
        #expect(compareBytes(base, base) == 0)
    }
}
