import KVBase
import KVEngine
import KVFileSystem
import KVIndex
import KVLayout
@testable import KVStore
import KVTestSupport
import Testing

/// Random operations on a store with indexes, every query checked against a brute-force filter
/// over a model of the rows.
@Suite("Index model")
struct IndexModelTests {
    static let pool: [IndexDefinition] = [
        IndexDefinition(name: "by_cat", field: "category", type: .string, keyPrefix: "p:"),
        IndexDefinition(name: "by_price", field: "price", type: .number),
        IndexDefinition(name: "by_w", field: "dims.w", type: .number, keyPrefix: "p:"),
        IndexDefinition(name: "by_name", field: "name", type: .string),
        IndexDefinition(name: "all_cat", field: "category", type: .string),
    ]

    static func key(_ r: inout TestRandom) -> [UInt8] {
        switch r.next(10) {
        case 0..<7: return Array("p:\(r.next(150))".utf8)
        case 7, 8: return Array("o:\(r.next(40))".utf8)
        default: return [0xFF, UInt8(r.next(4))] + Array("p:\(r.next(5))".utf8)
        }
    }

    /// A random query that fits `def`, with values drawn from what the rows hold.
    static func query(_ def: IndexDefinition, _ r: inout TestRandom, _ g: inout ProductValues) -> IndexQuery {
        switch def.type {
        case .string:
            if r.chance(60) { return .equals(.string(Array((def.field == "name" ? "n\(r.next(30))" : g.category()).utf8))) }
            let c = Array(g.category().utf8)
            return .prefix(Array(c.prefix(r.next(c.count + 1))))
        case .number:
            if r.chance(30) { return .equals(.number(g.price())) }
            let a = r.chance(20) ? nil : g.price()
            let b = r.chance(20) ? nil : g.price()
            if let a, let b, r.chance(80) { return .range(lo: min(a, b), hi: max(a, b)) }
            return .range(lo: a, hi: b)
        }
    }

    @Test(arguments: [1, 4])
    func randomOperationsMatchBruteForce(shards: Int) throws {
        let seed = testSeed("index model \(shards) shards")
        var r = TestRandom(seed: seed)
        var g = ProductValues(r: TestRandom(seed: seed ^ 0x5EED))
        let fs = MemoryFileSystem()
        var store = try ShardedStore.open(at: "/s", shards: shards, options: storeOptions(fs))
        // Far ahead of the wall clock, which the compaction filter reclaims expired rows by: so
        // nothing is reclaimed behind the model's back.
        var clock = RowValue.wallClockMillis() + 10_000_000_000
        store.freezeClock(at: clock)
        var rows: [[UInt8]: StoredEntry] = [:]
        var live: [String: IndexDefinition] = [:]
        let steps = soakEnabled ? 30_000 : 3_000
        var queries = 0
        var nonEmpty = 0
        for step in 0..<steps {
            let context = "seed \(seed) step \(step)"
            switch r.next(100) {
            case 0..<35:
                let k = Self.key(&r)
                let v = g.value()
                try store.put(k, v)
                rows[k] = StoredEntry(value: v)
            case 35..<42:
                let k = Self.key(&r)
                let v = g.value()
                let t = clock + Int64(r.next(4_000)) - 500
                try store.put(k, v, expiresAt: t)
                rows[k] = StoredEntry(value: v, expiresAt: t)
            case 42..<50:
                let k = Self.key(&r)
                try store.delete(k)
                rows[k] = nil
            case 50..<55:
                // Change one field of a live row (read-modify-write).
                let k = Self.key(&r)
                let newValue = g.value()
                let now = clock
                try store.modify([k]) { rs in
                    if rs[0] != nil { rs[0]!.value = newValue }
                }
                if let e = rows[k], !(e.expiresAt.map { $0 <= now } ?? false) { rows[k]!.value = newValue }
            case 55..<58:
                var batch = WriteBatch()
                var last: [[UInt8]: [UInt8]?] = [:]
                for _ in 0..<(1 + r.next(6)) {
                    let k = Self.key(&r)
                    if r.chance(80) {
                        let v = g.value()
                        batch.put(k, v)
                        last[k] = .some(v)
                    } else {
                        batch.delete(k)
                        last[k] = .some(nil)
                    }
                }
                try store.write(batch)
                for (k, v) in last { rows[k] = v.map { StoredEntry(value: $0) } }
            case 58..<61:
                clock += Int64(r.next(1_500))
                store.freezeClock(at: clock)
            case 61..<63:
                let removed = try store.removeExpired(limit: 1 + r.next(30))
                if removed > 0 {
                    // Removed rows were expired: drop expired rows from the model only when gone.
                    for (k, e) in rows where (e.expiresAt.map { $0 <= clock } ?? false) {
                        if try store.getEntry(k) == nil, try store.rawEntry(k, snapshot: nil) == nil { rows[k] = nil }
                    }
                }
            case 63..<65:
                try store.close()
                store = try ShardedStore.open(at: "/s", options: storeOptions(fs))
                store.freezeClock(at: clock)
                #expect(Set(store.indexes().map(\.name)) == Set(live.keys), "\(context)")
            case 65..<68:
                let def = Self.pool[r.next(Self.pool.count)]
                if live[def.name] == nil {
                    try store.createIndex(def)
                    live[def.name] = def
                    if r.chance(70) { try store.waitForIndexes() }
                } else {
                    #expect(throws: KVError.invalidArgument("index '\(def.name)' already exists")) { try store.createIndex(def) }
                }
            case 68..<70:
                if let name = live.keys.sorted().randomElement(using: &r.rng) {
                    try store.dropIndex(name)
                    live[name] = nil
                }
            default:
                guard let name = live.keys.sorted().randomElement(using: &r.rng) else { break }
                let def = live[name]!
                let q = Self.query(def, &r, &g)
                let offset = r.chance(70) ? 0 : r.next(5)
                let limit = r.chance(50) ? nil : r.next(8)
                let withValues = r.chance(40)
                if try store.indexInfo(name).state == .building {
                    #expect(throws: KVError.self) { _ = try store.query(index: name, q) }
                    try store.waitForIndexes()
                }
                let got = try store.query(index: name, q, offset: offset, limit: limit, withValues: withValues)
                let want = IndexOracle.expected(def, q, rows: rows, now: clock, offset: offset, limit: limit, withValues: withValues)
                #expect(got == want, "\(context): \(name) \(q) offset \(offset) limit \(String(describing: limit)): got \(got.count) hits, want \(want.count)")
                queries += 1
                if !got.isEmpty { nonEmpty += 1 }
            }
            if step % 500 == 499 {
                try store.waitForIndexes()
                #expect(try IndexOracle.integrityProblems(store) == [], "\(context)")
                #expect(try IndexOracle.storedRows(store) == rows, "\(context): stored rows differ from the model")
            }
        }
        try store.waitForIndexes()
        #expect(try IndexOracle.integrityProblems(store) == [], "seed \(seed) at the end")
        // Entry counts match the entries held (compaction reclaimed nothing, see `clock`).
        for info in store.indexes() {
            let id = store.indexID(info.name)!
            #expect(info.entries == (try IndexOracle.entryCount(store, id: id)), "seed \(seed): entries of \(info.name)")
        }
        #expect(queries > steps / 10 && nonEmpty > queries / 5, "seed \(seed): \(queries) queries, \(nonEmpty) non-empty")
        try store.close()
    }
}
