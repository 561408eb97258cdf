@testable import KVStore
import KVBase
import KVEngine
import KVFileSystem
import KVLayout
import KVTestSupport
import Testing

/// Collections as records (`CollectionLayout`, `ShardedStore.update`): a seeded model test of
/// hash-like collections with overwrites, renames, reshards, reopens and crashes; orphaned
/// elements dropped by compaction; transaction reads of their own elements.
@Suite("Collections")
struct CollectionTests {
    static let steps = soakEnabled ? 20_000 : 1_200

    /// What a key holds in the model.
    enum Held: Equatable {
        case string([UInt8])
        case hash([[UInt8]: [UInt8]])
    }

    static func hashContents(_ store: ShardedStore, _ key: [UInt8]) throws -> (type: ValueType?, fields: [[UInt8]: [UInt8]], count: Int64) {
        try store.update([key]) { u in
            guard let row = u.rows[0] else { return (nil, [:], 0) }
            guard row.type == .hash, let meta = try u.collection(0, .hash) else { return (row.type, [:], 0) }
            var fields: [[UInt8]: [UInt8]] = [:]
            var last: [UInt8]?
            try u.scanElements(0, meta) { sub, value in
                let f = Array(sub)
                #expect(last == nil || last!.lexicographicallyPrecedes(f), "fields out of order")
                last = f
                fields[f] = Array(value)
                return true
            }
            return (.hash, fields, meta.count)
        }
    }

    static func setField(_ store: ShardedStore, _ key: [UInt8], _ field: [UInt8], _ value: [UInt8]) throws {
        try store.update([key]) { u in
            var meta = try u.collection(0, .hash) ?? u.newCollection(0, .hash)
            if try u.element(0, meta, field) == nil { meta.count += 1 }
            u.putElement(0, meta, field, value)
            u.setCollection(0, meta)
        }
    }

    static func deleteField(_ store: ShardedStore, _ key: [UInt8], _ field: [UInt8]) throws {
        try store.update([key]) { u in
            guard var meta = try u.collection(0, .hash), try u.element(0, meta, field) != nil else { return }
            u.deleteElement(0, meta, field)
            meta.count -= 1
            u.setCollection(0, meta)
        }
    }

    static func rename(_ store: ShardedStore, _ from: [UInt8], _ to: [UInt8]) throws {
        try store.update([from, to]) { u in
            guard let row = u.rows[0] else { return }
            if row.type == .string { u.setRow(1, row) } else { try u.copyCollection(0, to: 1) }
            u.setRow(0, nil)
        }
    }

    /// Element records in the shards' engines (all versions, live or orphaned).
    static func elementRecords(_ store: ShardedStore) throws -> Int {
        var n = 0
        for shard in try store.currentRouting().shards {
            let it = try shard.db.makeIterator()
            try it.seek([EngineKey.reservedByte, EngineKey.elementTag])
            while it.isValid && EngineKey.kind(it.keyView) == .reserved(EngineKey.elementTag) {
                n += 1
                try it.next()
            }
        }
        return n
    }

    @Test(arguments: [1, 4])
    func randomOperationsMatchModel(shards: Int) throws {
        let seed = testSeed("collections \(shards) shards")
        var r = TestRandom(seed: seed)
        let fs = MemoryFileSystem()
        let options = storeOptions(fs, durability: .always, writeBufferSize: 8 << 10)
        var store = try ShardedStore.open(at: "/c", shards: shards, options: options)
        var model: [[UInt8]: Held] = [:]
        let keys = (0..<10).map { bytes("k\($0)") } + [bytes("{t}a"), bytes("{t}b"), [0xFF, 0x00, 0x01]]
        func field() -> [UInt8] { r.chance(10) ? [0x00, UInt8(r.next(3))] : bytes("f\(r.next(40))") }

        func check(_ k: [UInt8], _ step: Int) throws {
            let got = try Self.hashContents(store, k)
            switch model[k] {
            case nil:
                #expect(got.type == nil, "seed \(seed) step \(step): \(k) should be absent, is \(String(describing: got.type))")
            case .string(let v)?:
                let row = try store.getEntry(k)
                #expect(got.type == .string && row?.value == v, "seed \(seed) step \(step): \(k) should be a string")
            case .hash(let fields)?:
                #expect(got.type == .hash && got.fields == fields && got.count == Int64(fields.count),
                        "seed \(seed) step \(step): \(k): \(got.fields.count) fields (count \(got.count)), expected \(fields.count)")
            }
        }

        for step in 0..<Self.steps {
            let k = keys[r.next(keys.count)]
            switch r.next(100) {
            case 0..<45:
                let f = field(), v = r.value(maxLength: 24)
                if case .string? = model[k] {
                    #expect(throws: KVError.self) { try Self.setField(store, k, f, v) }
                    continue
                }
                try Self.setField(store, k, f, v)
                var fields: [[UInt8]: [UInt8]] = [:]
                if case .hash(let h)? = model[k] { fields = h }
                fields[f] = v
                model[k] = .hash(fields)
            case 45..<65:
                let f = field()
                if case .string? = model[k] { continue }
                try Self.deleteField(store, k, f)
                if case .hash(var h)? = model[k] {
                    h[f] = nil
                    model[k] = h.isEmpty ? nil : .hash(h)
                }
            case 65..<72:
                try store.delete(k)
                model[k] = nil
            case 72..<78:
                let v = r.value(maxLength: 16)
                try store.put(k, v)
                model[k] = .string(v)
            case 78..<86:
                let to = keys[r.next(keys.count)]
                if to == k { continue }
                try Self.rename(store, k, to)
                if let held = model[k] {
                    model[to] = held
                    model[k] = nil
                }
            case 86..<88:
                try store.close()
                store = try ShardedStore.open(at: "/c", options: options)
            case 88..<89:
                // Every write was synced (`always`): a crash loses nothing acknowledged.
                store.haltForCrashTest()
                fs.simulatePowerLoss()
                store = try ShardedStore.open(at: "/c", options: options)
            case 89..<90:
                if shards > 1 {
                    try store.setShardCount([2, 3, 4, 5].filter { $0 != store.shardCount }[r.next(3)])
                    try store.waitForReshard()
                }
            default:
                try check(k, step)
            }
        }
        for k in keys { try check(k, Self.steps) }
        // Compaction drops every orphan: what remains is exactly the live fields.
        try store.flush()
        try store.compactRange(nil, nil)
        let live = model.values.reduce(0) { n, h in if case .hash(let f) = h { return n + f.count }; return n }
        #expect(try Self.elementRecords(store) == live, "seed \(seed): element records after compaction")
        try store.close()
    }

    @Test func deletedAndOverwrittenCollectionsAreDroppedByCompaction() throws {
        let fs = MemoryFileSystem()
        let store = try ShardedStore.open(at: "/o", shards: 2, options: storeOptions(fs))
        for k in 0..<20 {
            for f in 0..<50 { try Self.setField(store, bytes("h\(k)"), bytes("f\(f)"), bytes("v")) }
        }
        try store.flush()
        #expect(try Self.elementRecords(store) == 1000)
        // A snapshot taken before the deletions keeps the elements readable: compaction must
        // not drop them while it lives.
        let snap = store.snapshot()
        // DEL is O(1): the elements stay until compaction finds their metadata gone.
        for k in 0..<10 { try store.delete(bytes("h\(k)")) }
        for k in 10..<15 { try store.put(bytes("h\(k)"), bytes("now a string")) }
        #expect(try Self.elementRecords(store) == 1000)
        #expect(try Self.hashContents(store, bytes("h3")).type == nil)
        try store.compactRange(nil, nil)
        #expect(try Self.elementRecords(store) == 1000)
        snap.release()
        try store.compactRange(nil, nil)
        #expect(try Self.elementRecords(store) == 250)
        // A key created again gets a new version: none of the old fields show.
        try Self.setField(store, bytes("h3"), bytes("new"), bytes("1"))
        #expect(try Self.hashContents(store, bytes("h3")).fields == [bytes("new"): bytes("1")])
        try store.close()
    }

    @Test func transactionReadsSeeItsOwnElements() throws {
        let fs = MemoryFileSystem()
        let store = try ShardedStore.open(at: "/t", shards: 4, options: storeOptions(fs))
        try Self.setField(store, bytes("h"), bytes("a"), bytes("1"))
        try Self.setField(store, bytes("h"), bytes("c"), bytes("3"))
        let seen = try store.transaction { () throws -> [[UInt8]: [UInt8]] in
            try Self.setField(store, bytes("h"), bytes("b"), bytes("2"))
            try Self.deleteField(store, bytes("h"), bytes("a"))
            try Self.setField(store, bytes("g"), bytes("x"), bytes("9"))
            return try Self.hashContents(store, bytes("h")).fields
        }
        #expect(seen == [bytes("b"): bytes("2"), bytes("c"): bytes("3")])
        #expect(try Self.hashContents(store, bytes("h")).fields == seen)
        #expect(try Self.hashContents(store, bytes("g")).count == 1)
        // A string read of a hash is refused.
        #expect(throws: KVError.wrongType(key: "'h'")) { _ = try store.get(bytes("h")) }
        try store.close()
    }

    /// A hash-field index against a model: random HSET/HDEL/DEL/overwrite/rename/expire of
    /// hashes, part of them written before the index exists (back-filled), with a reopen and a
    /// reshard; every equality query and the entry count match the model.
    @Test func hashFieldIndexMatchesModel() throws {
        let seed = testSeed("hash field index")
        var r = TestRandom(seed: seed)
        let fs = MemoryFileSystem()
        let options = storeOptions(fs, writeBufferSize: 8 << 10)
        var store = try ShardedStore.open(at: "/i", shards: 3, options: options)
        var model: [[UInt8]: [[UInt8]: [UInt8]]] = [:]
        let keys = (0..<40).map { bytes("u:\($0)") } + [bytes("other")]
        let cities = ["paris", "rome", "oslo", "lima"].map(bytes)
        func step() throws {
            let k = keys[r.next(keys.count)]
            switch r.next(10) {
            case 0..<5:
                let f = r.chance(60) ? bytes("city") : bytes("f\(r.next(3))")
                let v = cities[r.next(cities.count)]
                try Self.setField(store, k, f, v)
                model[k, default: [:]][f] = v
            case 5, 6:
                let f = r.chance(60) ? bytes("city") : bytes("f0")
                try Self.deleteField(store, k, f)
                model[k]?[f] = nil
                if model[k]?.isEmpty == true { model[k] = nil }
            case 7:
                try store.delete(k)
                model[k] = nil
            case 8:
                let to = keys[r.next(keys.count)]
                guard to != k else { return }
                try Self.rename(store, k, to)
                if let held = model[k] {
                    model[to] = held
                    model[k] = nil
                }
            default:
                // An expiry far away rewrites the row (and its entry's envelope) only.
                try store.modify([k]) { rows in if rows[0] != nil { rows[0]!.expiresAt = Int64(4_000_000_000_000) } }
            }
        }
        func check(_ when: String) throws {
            for c in cities {
                let got = Set(try store.query(index: "by_city", .equals(.string(c))).map(\.key))
                let want = Set(model.filter { $0.key.starts(with: bytes("u:")) && $0.value[bytes("city")] == c }.map(\.key))
                #expect(got == want, "seed \(seed) \(when): city \(String(decoding: c, as: UTF8.self))")
            }
            let entries = try store.indexInfo("by_city").entries
            #expect(entries == model.filter { $0.key.starts(with: bytes("u:")) && $0.value[bytes("city")] != nil }.count, "seed \(seed) \(when): entries")
        }
        for _ in 0..<300 { try step() }
        try store.createIndex(IndexDefinition(name: "by_city", field: "city", type: .string, keyPrefix: "u:", source: .hash))
        try store.waitForIndexes()
        try check("after the back-fill")
        for _ in 0..<400 { try step() }
        try check("after writes")
        try store.close()
        store = try ShardedStore.open(at: "/i", options: options)
        try check("after a reopen")
        try store.setShardCount(5)
        try store.waitForReshard()
        for _ in 0..<200 { try step() }
        try check("after a reshard")
        try store.close()
    }

    @Test func layoutRoundTrips() throws {
        let m = CollectionMeta(type: .list, version: 0x0102_0304_0506_0708, count: 42, head: -5, tail: 37)
        #expect(try CollectionMeta.decode(m.encoded, type: .list, key: []) == m)
        let h = CollectionMeta(type: .hash, version: 7, count: 1)
        #expect(try CollectionMeta.decode(h.encoded, type: .hash, key: []) == h)
        var z = CollectionMeta(type: .zset, version: 9, count: 3)
        #expect(try CollectionMeta.decode(z.encoded, type: .zset, key: []) == z)
        z.floor = CollectionLayout.scoreBytes(-1) + [1, 2]
        z.ceiling = CollectionLayout.scoreBytes(7)
        #expect(try CollectionMeta.decode(z.encoded, type: .zset, key: []) == z)
        #expect(throws: KVError.self) { _ = try CollectionMeta.decode(z.encoded.dropLast(), type: .zset, key: []) }
        #expect(throws: KVError.self) { _ = try CollectionMeta.decode(h.encoded, type: .list, key: []) }
        var bad = h.encoded
        bad[0] = 9
        #expect(throws: KVError.self) { _ = try CollectionMeta.decode(bad, type: .hash, key: []) }
        let key = CollectionLayout.elementKey(CollectionLayout.elementPrefix([0, 1, 0xFF], version: 99), kind: 1, [7, 7])
        let d = try #require(key.withUnsafeBytes { CollectionLayout.decodeElement($0) })
        #expect(d.user == [0, 1, 0xFF] && d.version == 99 && key[d.kindAt] == 1)
        #expect(EngineKey.slot(of: key) == HashSlot.slot(of: [0, 1, 0xFF]))
        let scores: [Double] = [-.infinity, -1e300, -2.5, -0.0, 0, 1e-300, 3, .infinity]
        let ordered = scores.map { CollectionLayout.scoreBytes($0) }
        for (a, b) in zip(ordered, ordered.dropFirst()) { #expect(!b.lexicographicallyPrecedes(a)) }
        for s in scores { #expect(CollectionLayout.scoreBytes(s).withUnsafeBytes { CollectionLayout.score(ofOrdered: $0) } == (s == 0 ? 0 : s)) }
        for p: Int64 in [Int64.min, -1, 0, 1, Int64.max] {
            #expect(CollectionLayout.positionBytes(p).withUnsafeBytes { CollectionLayout.position($0) } == p)
        }
        #expect(CollectionLayout.positionBytes(-1).lexicographicallyPrecedes(CollectionLayout.positionBytes(0)))
    }
}
