import KVBase
import KVEngine
import KVFileSystem
import KVIndex
import KVLayout
@testable import KVStore
import KVTestSupport
import Testing

/// Brute-force answers and integrity checks for the index tests.
enum IndexOracle {
    /// The hits `query` must return over `rows` (the stored rows, expired ones included) at
    /// `now`: a filter and sort over every row.
    static func expected(
        _ def: IndexDefinition, _ query: IndexQuery, rows: [[UInt8]: StoredEntry], now: Int64,
        offset: Int = 0, limit: Int? = nil, withValues: Bool = false
    ) -> [IndexHit] {
        var matches: [(sortKey: [UInt8], hit: IndexHit)] = []
        for (key, row) in rows {
            if let t = row.expiresAt, t <= now { continue }
            guard def.covers(key: key), let v = def.indexValue(of: row.value) else { continue }
            let ok: Bool
            switch (query, v) {
            case (.equals(.number(let q)), .number(let d)): ok = q == d
            case (.equals(.string(let q)), .string(let s)): ok = q == s
            case (.prefix(let p), .string(let s)): ok = s.starts(with: p)
            case (.range(let lo, let hi), .number(let d)): ok = (lo.map { d >= $0 } ?? true) && (hi.map { d <= $0 } ?? true)
            default: ok = false
            }
            guard ok else { continue }
            var sortKey: [UInt8] = []
            IndexKeys.appendValue(v, to: &sortKey)
            EngineKey.appendEscaped(key, to: &sortKey)
            matches.append((sortKey, IndexHit(key: key, value: withValues ? row.value : nil)))
        }
        matches.sort { $0.sortKey.lexicographicallyPrecedes($1.sortKey) }
        let hits = matches.dropFirst(offset).map(\.hit)
        if let limit { return Array(hits.prefix(limit)) }
        return hits
    }

    /// Every stored row of the store (expired ones included), read from the engines.
    static func storedRows(_ store: ShardedStore) throws -> [[UInt8]: StoredEntry] {
        var rows: [[UInt8]: StoredEntry] = [:]
        let routing = store.state.withLock { $0.routing }
        for shard in routing.shards {
            let it = try shard.db.makeIterator()
            try it.seekToFirst()
            while it.isValid {
                let k = it.keyView
                if EngineKey.kind(k) == .row, let slot = EngineKey.slot(of: k), Int(routing.owners[slot]) == shard.id {
                    let user = EngineKey.decodeRow(k)
                    rows[user] = try RowValue.decode(Array(it.valueView), key: user)
                }
                try it.next()
            }
        }
        return rows
    }

    /// Checks, shard by shard, that every index entry belongs to a live index and matches its
    /// row (same shard, same indexed value, same expiry), and that every row that should be
    /// indexed has its entry. Returns the problems found (empty when consistent). Run it when
    /// no index work is pending (see ``ShardedStore/waitForIndexes()``). Rows and entries that
    /// expired by the wall clock are left out: compaction reclaims them one by one.
    static func integrityProblems(_ store: ShardedStore) throws -> [String] {
        var problems: [String] = []
        let wall = RowValue.wallClockMillis()
        func reclaimable(_ t: Int64?) -> Bool { t.map { $0 <= wall } ?? false }
        let routing = store.state.withLock { $0.routing }
        let live = store.indexCatalog.set.all
        let byID = Dictionary(uniqueKeysWithValues: live.map { ($0.id, $0) })
        for shard in routing.shards {
            var entries = Set<[UInt8]>()
            var rows: [([UInt8], StoredEntry)] = []
            let it = try shard.db.makeIterator()
            try it.seekToFirst()
            while it.isValid {
                let k = it.keyView
                switch EngineKey.kind(k) {
                case .row:
                    if let slot = EngineKey.slot(of: k), Int(routing.owners[slot]) == shard.id {
                        let user = EngineKey.decodeRow(k)
                        rows.append((user, try RowValue.decode(Array(it.valueView), key: user)))
                    } else {
                        problems.append("shard \(shard.id) holds foreign row \(printable(EngineKey.decodeRow(k)))")
                    }
                case .reserved(EngineKey.indexTag):
                    guard let (id, _, user) = IndexKeys.decode(k) else {
                        problems.append("shard \(shard.id): malformed entry \(Array(k))")
                        break
                    }
                    if reclaimable(RowValue.parse(it.valueView)?.expiresAt ?? nil) { break }
                    guard let h = byID[id] else {
                        problems.append("shard \(shard.id): entry of index id \(id), which is not live, for \(printable(user))")
                        break
                    }
                    let raw = try withBytes(EngineKey.encode(user)) { (p) throws(KVError) in try shard.db.get(p) }
                    guard let raw else {
                        problems.append("shard \(shard.id): entry of '\(h.name)' without its row \(printable(user))")
                        break
                    }
                    let row = try RowValue.decode(raw, key: user)
                    if h.entry(key: user, value: row.value)?.key != Array(k) {
                        problems.append("shard \(shard.id): stale entry of '\(h.name)' for \(printable(user))")
                    }
                    let envelope = RowValue.parse(it.valueView)
                    if envelope?.payload != 0 || envelope?.expiresAt != row.expiresAt {
                        problems.append("shard \(shard.id): entry of '\(h.name)' for \(printable(user)) carries expiry \(String(describing: envelope?.expiresAt)), row \(String(describing: row.expiresAt))")
                    }
                    entries.insert(Array(k))
                default:
                    break
                }
                try it.next()
            }
            for h in live where !h.isBuilding {
                for (user, row) in rows where h.covers(user) && !reclaimable(row.expiresAt) {
                    if let e = h.entry(key: user, value: row.value), !entries.contains(e.key) {
                        problems.append("shard \(shard.id): row \(printable(user)) has no entry in '\(h.name)'")
                    }
                }
            }
        }
        return problems
    }

    /// The number of entries of index `id` in every shard (latest state, foreign ones too).
    static func entryCount(_ store: ShardedStore, id: UInt32) throws -> Int {
        let prefix = IndexKeys.indexPrefix(id)
        var n = 0
        for shard in store.state.withLock({ $0.shards.compactMap { $0 } }) {
            let it = try shard.db.makeIterator()
            try it.seek(prefix)
            while it.isValid, it.keyView.starts(with: prefix) {
                n += 1
                try it.next()
            }
        }
        return n
    }
}

/// Random JSON values for index tests: products with a category, a price and dimensions,
/// often with fields missing, of the wrong type, or not JSON at all.
struct ProductValues {
    var r: TestRandom

    static let categories = ["books", "toys", "tools", "food", "bo", "b\u{0}x", "é", ""]

    mutating func category() -> String { Self.categories[r.next(Self.categories.count)] }

    mutating func price() -> Double {
        switch r.next(6) {
        case 0: return Double(r.next(100))
        case 1: return -Double(r.next(50)) / 4
        case 2: return 0
        case 3: return Double(r.next(1_000_000)) / 100
        case 4: return [1e-300, -1e300, 1e20, 0.1, -0.5][r.next(5)]
        default: return Double(r.next(20)) + 0.5
        }
    }

    static func json(_ s: String) -> String {
        var out = "\""
        for ch in s.unicodeScalars {
            switch ch {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            default:
                if ch.value < 0x20 || (ch.value > 0x7E && ch.value <= 0xFFFF) {
                    let h = String(ch.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
                } else {
                    out.unicodeScalars.append(ch)
                }
            }
        }
        return out + "\""
    }

    /// A product value.
    mutating func value() -> [UInt8] {
        switch r.next(20) {
        case 0: return r.value(maxLength: 20)
        case 1: return Array("not json {".utf8)
        case 2: return Array("[{\"category\":\"books\"}]".utf8)
        case 3: return Array("{\"category\":\"books\",}".utf8)
        case 4: return Array("{\"category\":[\"books\"],\"price\":\"12\",\"dims\":3}".utf8)
        default:
            var members: [String] = []
            if r.chance(85) { members.append("\"category\":\(Self.json(category()))") }
            if r.chance(85) { members.append("\"price\":\(price())") }
            if r.chance(60) { members.append("\"dims\":{\"w\":\(r.next(5)),\"tags\":[1,{\"w\":9}]}") }
            if r.chance(20) { members.append("\"name\":\(Self.json("n\(r.next(30))"))") }
            if r.chance(10) { members.append("\"category\":\(Self.json(category()))") }
            if r.chance(50) { members.shuffle(using: &r.rng) }
            return Array(("{" + members.joined(separator: r.chance(50) ? "," : " , ") + "}").utf8)
        }
    }
}
