import KVBase
@testable import KVIndex
import KVLayout
import KVTestSupport
import Testing

/// Byte layouts of index entries and index metadata records.
@Suite("Index encodings")
struct IndexEncodingTests {
    static func encoded(_ d: Double) -> [UInt8] {
        var out: [UInt8] = []
        IndexKeys.appendValue(.number(d), to: &out)
        return out
    }

    @Test func sortableNumbersKeepNumericOrder() {
        let seed = testSeed("sortableNumbersKeepNumericOrder")
        var r = TestRandom(seed: seed)
        var values: [Double] = [
            0, -0.0, 1, -1, 0.5, -0.5, 1e-300, -1e-300, .leastNonzeroMagnitude, -.leastNonzeroMagnitude,
            .leastNormalMagnitude, -.leastNormalMagnitude, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
            1e300, -1e300, 2, 3, 1.0000000000000002, 0.9999999999999999, -1.0000000000000002, 123.456, -123.456,
            Double(Int64.max), Double(Int64.min), 9007199254740994, -9007199254740994,
        ]
        for _ in 0..<(soakEnabled ? 200_000 : 5_000) {
            var d: Double
            repeat { d = Double(bitPattern: r.rng.next()) } while !d.isFinite
            values.append(d)
            values.append(Double(Int(truncatingIfNeeded: r.rng.next()) % 1000) / Double(1 + r.next(16)))
        }
        let sorted = values.sorted()
        for (a, b) in zip(sorted, sorted.dropFirst()) {
            let c = compareBytes(Self.encoded(a), Self.encoded(b))
            if a < b {
                #expect(c < 0, "seed \(seed): \(a) < \(b) but encodings compare \(c)")
            } else {
                #expect(c == 0, "seed \(seed): \(a) == \(b) but encodings differ")
            }
        }
        for d in values {
            let back = IndexKeys.double(fromSortable: IndexKeys.sortableBits(d))
            #expect(back == d && (d == 0 ? back.sign == .plus : back.sign == d.sign), "\(d) decoded as \(back)")
        }
        #expect(Self.encoded(-0.0) == Self.encoded(0.0))
        #expect(Self.encoded(0.0).count == 9)
    }

    @Test func entriesSortByValueThenKeyAndDecode() {
        let id: UInt32 = 0x0102_0304
        let e1 = IndexKeys.entry(index: id, value: .string(Array("ab".utf8)), user: [0x7A])
        let e2 = IndexKeys.entry(index: id, value: .string(Array("ab\u{0}".utf8)), user: [0x00])
        let e3 = IndexKeys.entry(index: id, value: .string(Array("abc".utf8)), user: [0x00])
        let e4 = IndexKeys.entry(index: id, value: .string(Array("abc".utf8)), user: [0x00, 0x00])
        let e5 = IndexKeys.entry(index: id, value: .string(Array("abc".utf8)), user: [0x01])
        #expect([e1, e2, e3, e4, e5].sorted { $0.lexicographicallyPrecedes($1) } == [e1, e2, e3, e4, e5])
        #expect(Array(e1.prefix(6)) == [0xFF, 0x02, 0x01, 0x02, 0x03, 0x04])
        for (e, v, u) in [(e2, "ab\u{0}", [UInt8(0)]), (e4, "abc", [0, 0])] {
            let d = e.withUnsafeBytes { IndexKeys.decode($0) }
            #expect(d?.index == id && d?.value == .string(Array(v.utf8)) && d?.user == u)
            #expect(e.withUnsafeBytes { IndexKeys.userKey(ofEntry: $0) } == u)
        }
        let n = IndexKeys.entry(index: 7, value: .number(-2.5), user: Array("{tag}x".utf8))
        #expect(n.withUnsafeBytes { IndexKeys.decode($0) }?.value == .number(-2.5))
        #expect(n.withUnsafeBytes { IndexKeys.userKey(ofEntry: $0) }.map { HashSlot.slot(of: $0) } == HashSlot.slot(of: "{tag}y"))
        // Numbers sort before strings of the same index, and indexes apart.
        #expect(compareBytes(IndexKeys.entry(index: 1, value: .number(1e300), user: []), IndexKeys.entry(index: 1, value: .string([]), user: [])) < 0)
        #expect(compareBytes(IndexKeys.entry(index: 1, value: .string([0xFF]), user: [0xFF]), IndexKeys.indexPrefix(2)) < 0)
    }

    @Test func metadataRecordsRoundTripAndDetectDamage() throws {
        let def = IndexMetadata.Definition(
            id: 42, state: .building,
            definition: IndexDefinition(name: "by_cat", field: "dims.w", type: .number, keyPrefix: [0x00, 0xFF, 0x70]))
        let v = IndexMetadata.encode(def)
        guard case .success(.definition(let back)) = IndexMetadata.decode(key: IndexMetadata.definitionKey(42), value: v) else {
            Issue.record("definition did not decode")
            return
        }
        #expect(back == def)
        var noPrefix = def
        noPrefix.definition.keyPrefix = nil
        noPrefix.state = .ready
        if case .success(.definition(let b)) = IndexMetadata.decode(key: IndexMetadata.definitionKey(42), value: IndexMetadata.encode(noPrefix)) {
            #expect(b == noPrefix)
        } else {
            Issue.record("definition without prefix did not decode")
        }
        // Stored under another id, or with any byte flipped: refused.
        if case .success = IndexMetadata.decode(key: IndexMetadata.definitionKey(43), value: v) { Issue.record("id mismatch accepted") }
        for i in v.indices {
            var bad = v
            bad[i] ^= 0x10
            if case .success = IndexMetadata.decode(key: IndexMetadata.definitionKey(42), value: bad) { Issue.record("flip at \(i) accepted") }
        }
        if case .success = IndexMetadata.decode(key: IndexMetadata.definitionKey(42), value: Array(v.dropLast())) { Issue.record("truncation accepted") }
        if case .success(.next(let n)) = IndexMetadata.decode(key: IndexMetadata.nextKey, value: IndexMetadata.encodeNext(9)) {
            #expect(n == 9)
        } else {
            Issue.record("next did not decode")
        }
        let fill = IndexMetadata.Fill(cursor: [1, 2, 0, 3], rowsDone: 12345)
        if case .success(.fill(let id, let f)) = IndexMetadata.decode(key: IndexMetadata.fillKey(5), value: IndexMetadata.encode(fill)) {
            #expect(id == 5 && f == fill)
        } else {
            Issue.record("fill did not decode")
        }
        let stats = IndexMetadata.Stats(entries: 10, queries: 3, results: 300)
        if case .success(.stats(let id, let s)) = IndexMetadata.decode(key: IndexMetadata.statsKey(6), value: IndexMetadata.encode(stats)) {
            #expect(id == 6 && s == stats)
        } else {
            Issue.record("stats did not decode")
        }
        if case .success = IndexMetadata.decode(key: IndexMetadata.namespace + [0x7A], value: IndexMetadata.encodeNext(1)) {
            Issue.record("unknown record accepted")
        }
        // Metadata records are shard-local records, not index entries.
        #expect(IndexMetadata.definitionKey(1).starts(with: [EngineKey.reservedByte, EngineKey.metaTag]))
        #expect(IndexMetadata.definitionKey(1).withUnsafeBytes { IndexKeys.userKey(ofEntry: $0) } == nil)
    }

    @Test func definitionsAreValidated() {
        let good = IndexDefinition(name: "by_cat:v1.2-x", field: "a.b", type: .string, keyPrefix: "p:")
        #expect(throws: Never.self) { try good.validate() }
        for name in ["", String(repeating: "n", count: 65), "has space", "é", "a/b"] {
            #expect(throws: KVError.self) { try IndexDefinition(name: name, field: "f", type: .string).validate() }
        }
        for field in ["", ".", "a.", ".a", "a..b", String(repeating: "f", count: 257)] {
            #expect(throws: KVError.self) { try IndexDefinition(name: "n", field: field, type: .number).validate() }
        }
        #expect(throws: KVError.self) {
            try IndexDefinition(name: "n", field: "f", type: .number, keyPrefix: [UInt8](repeating: 1, count: 1025)).validate()
        }
        #expect(good.covers(key: Array("p:1".utf8)) && !good.covers(key: Array("p".utf8)))
        #expect(IndexDefinition(name: "n", field: "f", type: .number, keyPrefix: []).normalized.keyPrefix == nil)
    }
}
