import KVBase
import KVTestSupport
import Testing

@testable import KVEngine

@Suite("MemTable")
struct MemTableTests {
    func add(_ m: MemTable, _ seq: SequenceNumber, _ kind: ValueKind, _ k: String, _ v: String = "") {
        Array(k.utf8).withUnsafeBytes { kp in Array(v.utf8).withUnsafeBytes { vp in m.add(seq, kind, kp, vp) } }
    }

    func lookup(_ m: MemTable, _ k: String, _ seq: SequenceNumber) -> String? {
        Array(k.utf8).withUnsafeBytes { kp in
            switch m.get(kp, snapshot: seq) {
            case .found(let v): return String(decoding: v, as: UTF8.self)
            case .deleted: return "<deleted>"
            case .notFound: return nil
            }
        }
    }

    /// The point index answers exactly (a key added is found, a key never added is not),
    /// also after it grew far past the size it started with.
    @Test func pointIndexIsExactAcrossGrowth() {
        for (expected, count) in [(4 << 20, 20_000), (16 << 10, 50_000)] {
            let m = MemTable(logNumber: 1, expectedBytes: expected)
            for i in 0..<count { add(m, SequenceNumber(i + 1), i % 7 == 0 ? .deletion : .value, "key:\(i)", "v\(i)") }
            for i in 0..<count {
                let present = Array("key:\(i)".utf8).withUnsafeBytes { m.mayContain($0) }
                #expect(present, "added key key:\(i) not in the index (sized for \(expected) bytes)")
                #expect(lookup(m, "key:\(i)", SequenceNumber(count)) == (i % 7 == 0 ? "<deleted>" : "v\(i)"))
            }
            for i in count..<(2 * count) {
                let present = Array("key:\(i)".utf8).withUnsafeBytes { m.mayContain($0) }
                #expect(!present, "key:\(i) was never added")
            }
            #expect(lookup(m, "key:\(count + 1)", SequenceNumber(count)) == nil)
        }
    }

    /// Point reads through the index agree with a walk of the skiplist at every snapshot,
    /// for keys with many versions, deletions, empty keys and keys of every length.
    @Test func pointReadsMatchSkiplistWalk() {
        let seed = testSeed("memtable-point-index")
        var rng = TestRandom(seed: seed)
        let m = MemTable(logNumber: 1, expectedBytes: 4 << 10)
        var keys: [[UInt8]] = [[]]
        for _ in 0..<300 {
            let length = rng.next(40)
            keys.append((0..<length).map { _ in UInt8(rng.next(4)) })
        }
        var sequence: SequenceNumber = 0
        for _ in 0..<5_000 {
            let key = keys[rng.next(keys.count)]
            sequence += 1
            let kind: ValueKind = rng.chance(20) ? .deletion : .value
            let value = Array("v\(sequence)".utf8)
            key.withUnsafeBytes { k in value.withUnsafeBytes { v in m.add(sequence, kind, k, v) } }
        }
        // Half way through the checks the index gives up (as it does for a node whose
        // address does not fit its slots); reads then walk the skiplist, with the same answers.
        for (n, key) in keys.enumerated() {
            if n == keys.count / 2 {
                m.markPointIndexIncomplete()
                #expect(key.withUnsafeBytes { m.mayContain($0) })
            }
            for _ in 0..<10 {
                let snapshot = SequenceNumber(rng.next(Int(sequence) + 2))
                let got = key.withUnsafeBytes { k in Self.describe(m.get(k, snapshot: snapshot)) }
                let want = key.withUnsafeBytes { k -> String in
                    guard let n = m.findGreaterOrEqual(k, packTrailer(snapshot, .value), nil) else { return "absent" }
                    let ik = MemTable.key(n)
                    guard compareBytes(InternalKey.userKey(ik), k) == 0 else { return "absent" }
                    return InternalKey.kind(ik) == .value ? String(decoding: MemTable.value(n), as: UTF8.self) : "deleted"
                }
                #expect(got == want, "seed \(seed): key \(key) at snapshot \(snapshot)")
            }
        }
    }

    static func describe(_ lookup: MemTable.Lookup) -> String {
        switch lookup {
        case .found(let v): return String(decoding: v, as: UTF8.self)
        case .deleted: return "deleted"
        case .notFound: return "absent"
        }
    }

    @Test func snapshotVisibility() {
        let m = MemTable(logNumber: 1)
        add(m, 1, .value, "a", "a1")
        add(m, 2, .value, "b", "b2")
        add(m, 3, .value, "a", "a3")
        add(m, 4, .deletion, "b")
        #expect(lookup(m, "a", 0) == nil)
        #expect(lookup(m, "a", 1) == "a1")
        #expect(lookup(m, "a", 2) == "a1")
        #expect(lookup(m, "a", 3) == "a3")
        #expect(lookup(m, "b", 3) == "b2")
        #expect(lookup(m, "b", 4) == "<deleted>")
        #expect(lookup(m, "c", 9) == nil)
        #expect(m.count == 4)
    }

    @Test func orderingMatchesInternalKeyOrder() throws {
        let seed = testSeed("memtable-order")
        var r = TestRandom(seed: seed)
        let m = MemTable(logNumber: 1)
        var keys: [[UInt8]] = []
        for seq in 1...3000 {
            let k = r.key(space: 500)
            let kind: ValueKind = r.chance(20) ? .deletion : .value
            let v = r.value(maxLength: 20)
            k.withUnsafeBytes { kp in v.withUnsafeBytes { vp in m.add(SequenceNumber(seq), kind, kp, vp) } }
            keys.append(InternalKey.make(k, SequenceNumber(seq), kind))
        }
        keys.sort { InternalKey.compare($0, $1) < 0 }
        let it = m.makeIterator()
        try it.seekToFirst()
        var got: [[UInt8]] = []
        while it.isValid {
            got.append(Array(it.key))
            try it.next()
        }
        #expect(got == keys, "seed \(seed)")
        // Backward walk gives the reverse.
        try it.seekToLast()
        var back: [[UInt8]] = []
        while it.isValid {
            back.append(Array(it.key))
            try it.prev()
        }
        #expect(back == keys.reversed(), "seed \(seed)")
        // Seeks land on the first key >= target.
        for _ in 0..<300 {
            let target = InternalKey.make(r.key(space: 600), SequenceNumber(r.next(4000)), .value)
            try it.seek(target)
            let expected = keys.first { InternalKey.compare($0, target) >= 0 }
            #expect((it.isValid ? Array(it.key) : nil) == expected, "seed \(seed)")
        }
    }

    @Test func concurrentReadersDuringWrites() async {
        let m = MemTable(logNumber: 1)
        let writer = Task.detached {
            for i in 0..<20_000 {
                let k = Array("key\(i % 5000)".utf8)
                let v = Array("v\(i)".utf8)
                k.withUnsafeBytes { kp in v.withUnsafeBytes { vp in m.add(SequenceNumber(i + 1), .value, kp, vp) } }
            }
        }
        let reader = Task.detached { () -> Bool in
            var ok = true
            for round in 0..<50 {
                let it = m.makeIterator()
                try? it.seekToFirst()
                var prev: [UInt8]?
                var n = 0
                while it.isValid && n < 100_000 {
                    let k = Array(it.key)
                    if let p = prev, InternalKey.compare(p, k) >= 0 { ok = false }
                    prev = k
                    try? it.next()
                    n += 1
                }
                _ = round
            }
            return ok
        }
        await writer.value
        #expect(await reader.value)
        #expect(m.count == 20_000)
    }

    @Test func emptyKeysAndValuesAndNulBytes() {
        let m = MemTable(logNumber: 1)
        add(m, 1, .value, "", "")
        add(m, 2, .value, "a\u{0}b", "x\u{0}y")
        #expect(lookup(m, "", 5) == "")
        #expect(lookup(m, "a\u{0}b", 5) == "x\u{0}y")
        #expect(lookup(m, "a", 5) == nil)
    }
}

@Suite("WriteBatch")
struct WriteBatchTests {
    @Test func encodingRoundTrip() throws {
        var b = WriteBatch()
        b.put("k1", "v1")
        b.delete("k2")
        b.put([], [])
        #expect(b.count == 3)
        b.sequence = 77
        var seen: [(ValueKind, [UInt8], [UInt8])] = []
        try b.forEach { kind, k, v in seen.append((kind, Array(k), Array(v))) }
        #expect(seen.count == 3)
        #expect(seen[0].0 == .value && seen[0].1 == Array("k1".utf8) && seen[0].2 == Array("v1".utf8))
        #expect(seen[1].0 == .deletion && seen[1].1 == Array("k2".utf8))
        #expect(seen[2].0 == .value && seen[2].1.isEmpty && seen[2].2.isEmpty)
        #expect(b.sequence == 77)
        // Byte layout: sequence fixed64, count fixed32, then records.
        #expect(Array(b.rep[0..<12]) == [77, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0])
        #expect(Array(b.rep[12..<19]) == [1, 2, 0x6B, 0x31, 2, 0x76, 0x31])
    }

    @Test func appendAndClear() throws {
        var a = WriteBatch()
        a.put("a", "1")
        var b = WriteBatch()
        b.delete("b")
        b.put("c", "3")
        a.append(b)
        #expect(a.count == 3)
        a.removeAll()
        #expect(a.isEmpty && a.approximateSize == 12)
    }

    @Test func malformedBatchesAreCorruption() {
        var b = WriteBatch()
        b.put("key", "value")
        // Every truncation and a bad tag must be reported, never misread.
        for cut in 0..<b.rep.count {
            let bytes = Array(b.rep[0..<cut])
            #expect(throws: KVError.self) {
                try bytes.withUnsafeBytes { p in
                    try Result { () throws(KVError) in try WriteBatch.decode(p, file: "f", offset: 9) { _, _, _ in } }.get()
                }
            }
        }
        var bad = b.rep
        bad[12] = 7
        #expect(throws: KVError.self) {
            try bad.withUnsafeBytes { p in
                try Result { () throws(KVError) in try WriteBatch.decode(p, file: "f", offset: 9) { _, _, _ in } }.get()
            }
        }
        var wrongCount = b.rep
        wrongCount[8] = 2
        #expect(throws: KVError.self) {
            try wrongCount.withUnsafeBytes { p in
                try Result { () throws(KVError) in try WriteBatch.decode(p, file: "f", offset: 9) { _, _, _ in } }.get()
            }
        }
    }
}
