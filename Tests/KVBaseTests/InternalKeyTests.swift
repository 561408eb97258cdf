import KVBase
import Testing

private struct Version: Equatable, CustomStringConvertible {
    let userKey: [UInt8]
    let sequence: SequenceNumber
    let kind: ValueKind
    var encoded: [UInt8] { InternalKey.make(userKey, sequence, kind) }
    var description: String { "(\(userKey), \(sequence), \(kind))" }

    /// The documented order, written out independently of the encoding.
    static func precedes(_ a: Version, _ b: Version) -> Bool {
        if a.userKey != b.userKey { return a.userKey.lexicographicallyPrecedes(b.userKey) }
        if a.sequence != b.sequence { return a.sequence > b.sequence }
        return a.kind.rawValue > b.kind.rawValue
    }
}

@Suite("InternalKey")
struct InternalKeyTests {
    @Test("trailer packs sequence << 8 | kind")
    func trailerPacking() {
        #expect(packTrailer(0, .deletion) == 0)
        #expect(packTrailer(0, .value) == 1)
        #expect(packTrailer(1, .deletion) == 0x100)
        #expect(packTrailer(0x1234, .value) == 0x12_3401)
        #expect(packTrailer(maxSequenceNumber, .value) == 0xFFFF_FFFF_FFFF_FF01)
        #expect(maxSequenceNumber == (1 << 56) - 1)
        #expect(internalKeyTrailerSize == 8)
    }

    @Test("encoding is the user key followed by a little-endian fixed64 trailer")
    func layout() {
        let key = InternalKey.make(Array("abc".utf8), 0x0102, .value)
        #expect(key == Array("abc".utf8) + [0x01, 0x02, 0x01, 0, 0, 0, 0, 0])
        let empty = InternalKey.make([], 7, .deletion)
        #expect(empty == [0x00, 0x07, 0, 0, 0, 0, 0, 0])
        let viaPointer = Array("abc".utf8).withUnsafeBytes { InternalKey.make($0, 0x0102, .value) }
        #expect(viaPointer == key)
    }

    @Test("accessors read back user key, trailer, sequence and kind", arguments: [
        ([], 0, ValueKind.deletion),
        ([0x61], 1, .value),
        ([0x00, 0xFF, 0x10], 123_456_789, .deletion),
        (Array("user-key".utf8), maxSequenceNumber, .value),
    ] as [([UInt8], SequenceNumber, ValueKind)])
    func accessors(_ userKey: [UInt8], _ sequence: SequenceNumber, _ kind: ValueKind) {
        let ikey = InternalKey.make(userKey, sequence, kind)
        #expect(ikey.count == userKey.count + 8)
        ikey.withUnsafeBytes { p in
            #expect(Array(InternalKey.userKey(p)) == userKey)
            #expect(InternalKey.trailer(p) == packTrailer(sequence, kind))
            #expect(InternalKey.sequence(p) == sequence)
            #expect(InternalKey.kind(p) == kind)
            #expect(InternalKey.isValid(p))
        }
    }

    @Test("isValid needs 8 bytes and a known kind")
    func validity() {
        func valid(_ bytes: [UInt8]) -> Bool { bytes.withUnsafeBytes { InternalKey.isValid($0) } }
        #expect(!valid([]))
        #expect(!valid([1, 0, 0, 0, 0, 0, 0]))
        #expect(valid([1, 0, 0, 0, 0, 0, 0, 0]))
        #expect(valid([0, 0, 0, 0, 0, 0, 0, 0]))
        #expect(!valid([2, 0, 0, 0, 0, 0, 0, 0]))
        #expect(!valid(Array("k".utf8) + [0xFF, 1, 0, 0, 0, 0, 0, 0]))
        (Array("k".utf8) + [0x02, 0, 0, 0, 0, 0, 0, 0]).withUnsafeBytes { p in
            #expect(InternalKey.kind(p) == nil)
            #expect(InternalKey.sequence(p) == 0)
        }
    }

    @Test("order: user key ascending, then sequence descending, then kind (value before deletion)")
    func fixedOrder() {
        let a = Array("a".utf8), ab = Array("ab".utf8), b = Array("b".utf8)
        let sorted: [Version] = [
            Version(userKey: [], sequence: 1, kind: .value),
            Version(userKey: a, sequence: 100, kind: .value),
            Version(userKey: a, sequence: 100, kind: .deletion),
            Version(userKey: a, sequence: 99, kind: .value),
            Version(userKey: a, sequence: 0, kind: .deletion),
            Version(userKey: ab, sequence: maxSequenceNumber, kind: .value),
            Version(userKey: ab, sequence: 5, kind: .value),
            Version(userKey: b, sequence: 1000, kind: .deletion),
        ]
        for (i, x) in sorted.enumerated() {
            for (j, y) in sorted.enumerated() {
                let expected = i < j ? -1 : (i > j ? 1 : 0)
                #expect(InternalKey.compare(x.encoded, y.encoded) == expected, "\(x) vs \(y)")
                let viaOrder = x.encoded.withUnsafeBytes { px in
                    y.encoded.withUnsafeBytes { py in KeyOrder.internalKey.compare(px, py) }
                }
                #expect(viaOrder == expected, "\(x) vs \(y)")
            }
        }
    }

    @Test("a lookup key (k, s, value) sorts after newer versions and at or before visible ones")
    func lookupKeyPosition() {
        let k = Array("key".utf8)
        let lookup = InternalKey.make(k, 50, .value)
        #expect(InternalKey.compare(lookup, InternalKey.make(k, 51, .value)) == 1)
        #expect(InternalKey.compare(lookup, InternalKey.make(k, 51, .deletion)) == 1)
        #expect(InternalKey.compare(lookup, InternalKey.make(k, 50, .value)) == 0)
        #expect(InternalKey.compare(lookup, InternalKey.make(k, 50, .deletion)) == -1)
        #expect(InternalKey.compare(lookup, InternalKey.make(k, 49, .value)) == -1)
        #expect(InternalKey.compare(lookup, InternalKey.make(Array("kez".utf8), maxSequenceNumber, .value)) == -1)
    }

    @Test("sorting random versions matches the documented order")
    func randomOrder() {
        let seed = testSeed("InternalKey.randomOrder")
        var rng = TestRandom(seed: seed)
        let alphabet: [UInt8] = [0x00, 0x61, 0x62, 0xFF]
        var versions: [Version] = []
        for _ in 0..<400 {
            let key = (0..<Int.random(in: 0...3, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }
            let sequence = Bool.random(using: &rng)
                ? SequenceNumber.random(in: 0...8, using: &rng)
                : SequenceNumber.random(in: 0...maxSequenceNumber, using: &rng)
            versions.append(Version(userKey: key, sequence: sequence, kind: Bool.random(using: &rng) ? .value : .deletion))
        }
        let byEncoding = versions.sorted { InternalKey.compare($0.encoded, $1.encoded) < 0 }
        let byModel = versions.sorted(by: Version.precedes)
        #expect(byEncoding.map(\.encoded) == byModel.map(\.encoded), "seed \(seed)")
    }

    @Test("bytewise KeyOrder is plain memcmp order, unlike internal-key order")
    func bytewiseOrder() {
        // Bytewise, "a"+trailer(seq 1) < "a"+trailer(seq 2); internally the newer one comes first.
        let older = InternalKey.make(Array("a".utf8), 1, .value)
        let newer = InternalKey.make(Array("a".utf8), 2, .value)
        older.withUnsafeBytes { po in
            newer.withUnsafeBytes { pn in
                #expect(KeyOrder.bytewise.compare(po, pn) == -1)
                #expect(KeyOrder.internalKey.compare(po, pn) == 1)
            }
        }
    }
}

@Suite("EmptyIterator")
struct EmptyIteratorTests {
    @Test("an empty iterator is never valid and positions without error")
    func empty() throws {
        let it = EmptyIterator()
        #expect(!it.isValid)
        try it.seekToFirst()
        try it.seekToLast()
        try it.seek([1, 2, 3])
        #expect(!it.isValid)
    }

    @Test("an error iterator reports its error on every positioning call")
    func error() {
        let failure = KVError.corruption(file: "000007.sst", offset: 42, reason: "bad block")
        let it = EmptyIterator(error: failure)
        #expect(throws: failure) { try it.seekToFirst() }
        #expect(throws: failure) { try it.seekToLast() }
        #expect(throws: failure) { try it.seek(Array("k".utf8)) }
        #expect(!it.isValid)
    }
}
