import KVBase
import KVEngine
import KVFileSystem
import KVLayout
import KVStore
import KVTestSupport
import Testing

/// Metamorphic runs, as Pebble does them: one random operation log (puts, deletes, batches,
/// puts with expiry under a frozen clock, read-modify-writes, clock moves, point reads, scans
/// forward and backward with bounds and limits, counts, snapshot reads) is replayed under
/// configurations that must not change any result: 1 or 8 shards, tiny or default memtables,
/// LZ4 on or off, no block cache, a row cache, small blocks, reopening every N operations,
/// full compactions every N operations, and online reshards between operations. Every read's
/// result must be identical in every configuration; the first difference is reported with the
/// operation that produced it.
@Suite("Metamorphic")
struct MetamorphicTests {
    indirect enum Op: CustomStringConvertible {
        case put([UInt8], [UInt8])
        case putExpiring([UInt8], [UInt8], inMillis: Int64)
        case delete([UInt8])
        case batch([([UInt8], [UInt8]?)])
        case append([UInt8], [UInt8])
        case setExpiry([UInt8], inMillis: Int64?)
        case advanceClock(Int64)
        case removeExpired
        case get([UInt8])
        case getEntry([UInt8])
        case scan(from: [UInt8]?, to: [UInt8]?, reverse: Bool, limit: Int)
        case scanPrefix([UInt8], reverse: Bool, limit: Int)
        case count
        case takeSnapshot
        case snapshotGet([UInt8])
        case snapshotScan(reverse: Bool, limit: Int)
        case releaseSnapshot
        case flush

        var description: String {
            switch self {
            case .put(let k, let v): return "put \(show(k)) (\(v.count) bytes)"
            case .putExpiring(let k, let v, let ms): return "put \(show(k)) (\(v.count) bytes) expiring in \(ms) ms"
            case .delete(let k): return "delete \(show(k))"
            case .batch(let ops): return "batch of \(ops.count): " + ops.map { "\($0.1 == nil ? "del" : "put") \(show($0.0))" }.joined(separator: ", ")
            case .append(let k, let s): return "append \(s.count) bytes to \(show(k))"
            case .setExpiry(let k, let ms): return "set expiry of \(show(k)) to \(ms.map { "+\($0) ms" } ?? "none")"
            case .advanceClock(let ms): return "advance clock \(ms) ms"
            case .removeExpired: return "removeExpired"
            case .get(let k): return "get \(show(k))"
            case .getEntry(let k): return "getEntry \(show(k))"
            case .scan(let from, let to, let reverse, let limit):
                return "scan [\(from.map(show) ?? "-inf"), \(to.map(show) ?? "+inf")) reverse \(reverse) limit \(limit)"
            case .scanPrefix(let p, let reverse, let limit): return "scan prefix \(show(p)) reverse \(reverse) limit \(limit)"
            case .count: return "count"
            case .takeSnapshot: return "take snapshot"
            case .snapshotGet(let k): return "snapshot get \(show(k))"
            case .snapshotScan(let reverse, let limit): return "snapshot scan reverse \(reverse) limit \(limit)"
            case .releaseSnapshot: return "release snapshot"
            case .flush: return "flush"
            }
        }
    }

    struct Config: CustomStringConvertible, Sendable {
        var name: String
        var shards = 1
        var writeBufferSize = 64 << 20
        var compression: Compression = .lz4
        var blockCache = 32 << 20
        var rowCache = 0
        var blockSize = 4096
        var reopenEvery: Int?
        var compactEvery: Int?
        var reshardEvery: Int?
        var description: String { name }
    }

    static let configs: [Config] = [
        Config(name: "1 shard, defaults"),
        Config(name: "8 shards", shards: 8),
        Config(name: "tiny memtable", writeBufferSize: 4 << 10),
        Config(name: "8 shards, tiny memtable, no compression", shards: 8, writeBufferSize: 4 << 10, compression: .none),
        Config(name: "no block cache, row cache, small blocks, reopen every 97", shards: 3, writeBufferSize: 16 << 10, blockCache: 0, rowCache: 64 << 10, blockSize: 256, reopenEvery: 97),
        Config(name: "compaction every 53, 4 shards", shards: 4, writeBufferSize: 8 << 10, compression: .none, compactEvery: 53),
        Config(name: "reopen every 31, compaction every 101, 8 shards", shards: 8, writeBufferSize: 4 << 10, reopenEvery: 31, compactEvery: 101),
        Config(name: "reshard every 211", shards: 2, writeBufferSize: 8 << 10, reshardEvery: 211),
    ]

    static func show(_ k: [UInt8]) -> String {
        if k.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) { return "\"" + String(decoding: k, as: UTF8.self) + "\"" }
        return "0x" + k.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }

    /// A key from a space of about 500: plain, with a common prefix, hash-tagged, binary, and
    /// starting with the reserved byte 0xFF (which the store escapes).
    static func key(_ r: inout TestRandom) -> [UInt8] {
        let n = r.next(500)
        switch n % 6 {
        case 0: return bytes("k\(n)")
        case 1: return bytes("user:\(n % 50):{\(n % 7)}")
        case 2: return [UInt8(n & 0xFF), 0, UInt8(n >> 8)]
        case 3: return [0xFF] + bytes("\(n)")
        case 4: return n == 4 ? [] : bytes("p/" + String(repeating: "x", count: n % 40) + "\(n)")
        default: return [0xFF, 0xFF, UInt8(n & 0xFF)]
        }
    }

    static func generate(seed: UInt64, count: Int) -> [Op] {
        var r = TestRandom(seed: seed)
        var ops: [Op] = []
        var snapshotLive = false
        for _ in 0..<count {
            let x = r.next(1000)
            switch x {
            case 0..<220: ops.append(.put(key(&r), r.value(maxLength: r.chance(3) ? 3000 : 100)))
            case 220..<300: ops.append(.putExpiring(key(&r), r.value(maxLength: 60), inMillis: 1 + Int64(r.next(6000))))
            case 300..<380: ops.append(.delete(key(&r)))
            case 380..<430:
                ops.append(.batch((0..<(1 + r.next(6))).map { _ in (key(&r), r.chance(70) ? r.value(maxLength: 50) : nil) }))
            case 430..<470: ops.append(.append(key(&r), r.value(maxLength: 20)))
            case 470..<500: ops.append(.setExpiry(key(&r), inMillis: r.chance(60) ? 1 + Int64(r.next(6000)) : nil))
            case 500..<520: ops.append(.advanceClock(Int64(r.next(2500))))
            case 520..<530: ops.append(.removeExpired)
            case 530..<660: ops.append(.get(key(&r)))
            case 660..<720: ops.append(.getEntry(key(&r)))
            case 720..<800:
                var a = r.chance(80) ? key(&r) : nil
                var b = r.chance(80) ? key(&r) : nil
                if let x = a, let y = b, compareBytes(x, y) > 0 { (a, b) = (y, x) }
                ops.append(.scan(from: a, to: b, reverse: r.chance(40), limit: r.next(60)))
            case 800..<830: ops.append(.scanPrefix(r.chance(50) ? bytes("user:\(r.next(50))") : [0xFF], reverse: r.chance(50), limit: r.next(40)))
            case 830..<845: ops.append(.count)
            case 845..<870:
                if snapshotLive {
                    ops.append(r.chance(25) ? .releaseSnapshot : r.chance(50) ? .snapshotGet(key(&r)) : .snapshotScan(reverse: r.chance(50), limit: r.next(40)))
                    if case .releaseSnapshot = ops.last! { snapshotLive = false }
                } else {
                    ops.append(.takeSnapshot)
                    snapshotLive = true
                }
            case 870..<880: ops.append(.flush)
            default: ops.append(.get(key(&r)))
            }
        }
        if snapshotLive { ops.append(.releaseSnapshot) }
        return ops
    }

    /// Replays `ops` under `config`; returns one line per operation (its result).
    static func replay(_ ops: [Op], _ config: Config, clock start: Int64) throws -> [String] {
        let fs = MemoryFileSystem()
        var options = Options()
        options.fileSystem = fs
        options.durability = .no
        options.writeBufferSize = config.writeBufferSize
        options.compression = config.compression
        options.blockCacheCapacity = config.blockCache
        options.rowCacheCapacity = config.rowCache
        options.blockSize = config.blockSize
        var store = try ShardedStore.open(at: "/m", shards: config.shards, options: options)
        var clock = start
        store.freezeClock(at: clock)
        var snapshot: StoreSnapshot?
        var out: [String] = []
        out.reserveCapacity(ops.count)
        var reshards = 0
        func render(_ e: StoredEntry?) -> String {
            guard let e else { return "nil" }
            return "\(e.value) exp \(e.expiresAt.map { "\($0 - start)" } ?? "-")"
        }
        func drain(_ s: StoreScan, _ limit: Int) throws -> String {
            var parts: [String] = []
            while parts.count < limit, let (k, e) = try s.nextRow() { parts.append("\(k)=\(render(e))") }
            return parts.joined(separator: " ")
        }
        for (i, op) in ops.enumerated() {
            switch op {
            case .put(let k, let v): try store.put(k, v); out.append("ok")
            case .putExpiring(let k, let v, let ms): try store.put(k, v, expiresAt: clock + ms); out.append("ok")
            case .delete(let k): try store.delete(k); out.append("ok")
            case .batch(let items):
                var b = WriteBatch()
                for (k, v) in items { if let v { b.put(k, v) } else { b.delete(k) } }
                try store.write(b)
                out.append("ok")
            case .append(let k, let s):
                let n = try store.modify([k]) { rows -> Int in
                    if rows[0] == nil { rows[0] = StoredEntry(value: s) } else { rows[0]!.value += s }
                    return rows[0]!.value.count
                }
                out.append("\(n)")
            case .setExpiry(let k, let ms):
                let had = try store.modify([k]) { rows -> Bool in
                    guard rows[0] != nil else { return false }
                    rows[0]!.expiresAt = ms.map { clock + $0 }
                    return true
                }
                out.append("\(had)")
            case .advanceClock(let ms):
                clock += ms
                store.advanceClock(by: ms)
                out.append("ok")
            case .removeExpired: out.append("\(try store.removeExpired(limit: 1_000_000))")
            case .get(let k): out.append("\(try store.get(k).map { "\($0)" } ?? "nil")")
            case .getEntry(let k): out.append(render(try store.getEntry(k)))
            case .scan(let from, let to, let reverse, let limit):
                out.append(try drain(store.scan(from: from, to: to, reverse: reverse), limit))
            case .scanPrefix(let p, let reverse, let limit):
                out.append(try drain(store.scan(prefix: p, reverse: reverse), limit))
            case .count: out.append("\(try store.count())")
            case .takeSnapshot: snapshot = store.snapshot(); out.append("ok")
            case .snapshotGet(let k): out.append("\(try store.get(k, snapshot: snapshot!).map { "\($0)" } ?? "nil")")
            case .snapshotScan(let reverse, let limit): out.append(try drain(store.scan(reverse: reverse, snapshot: snapshot!), limit))
            case .releaseSnapshot: snapshot!.release(); snapshot = nil; out.append("ok")
            case .flush: try store.flush(); out.append("ok")
            }
            let n = i + 1
            // Configuration-specific events between operations; never while a snapshot is live.
            guard snapshot == nil else { continue }
            if let every = config.compactEvery, n % every == 0 { try store.compactRange(nil, nil) }
            if let every = config.reshardEvery, n % every == 0 {
                reshards += 1
                try store.setShardCount([5, 8, 1, 3][reshards % 4])
                try store.waitForReshard()
            }
            if let every = config.reopenEvery, n % every == 0 {
                try store.close()
                store = try ShardedStore.open(at: "/m", options: options)
                store.freezeClock(at: clock)
            }
        }
        // The final state, whole.
        out.append(try drain(store.scan(), Int.max))
        try store.verify()
        try store.close()
        return out
    }

    @Test func everyConfigurationGivesTheSameResults() throws {
        let seed = testSeed("metamorphic")
        let count = soakEnabled ? 40_000 : 2_500
        let ops = Self.generate(seed: seed, count: count)
        // Far in the future, so that the engines' wall-clock compaction filter never drops a
        // row the frozen store clock still shows.
        let clock = RowValue.wallClockMillis() + 10 * 365 * 86_400_000
        let baseline = try Self.replay(ops, Self.configs[0], clock: clock)
        #expect(baseline.count == ops.count + 1)
        for config in Self.configs.dropFirst() {
            let got = try Self.replay(ops, config, clock: clock)
            let common = min(baseline.count, got.count)
            guard let i = (0..<common).first(where: { baseline[$0] != got[$0] }) ?? (baseline.count == got.count ? nil : common) else {
                continue
            }
            let what = i < ops.count ? "op \(i): \(ops[i])" : "final scan"
            Issue.record("seed \(seed): \(config) differs from \(Self.configs[0]) at \(what)\n  \(config): \(i < got.count ? String(got[i].prefix(600)) : "-")\n  baseline: \(i < baseline.count ? String(baseline[i].prefix(600)) : "-")")
        }
        // The log exercised what it should: some reads found data, some expired rows vanished.
        let found = zip(ops, baseline).filter { if case .get = $0.0 { return $0.1 != "nil" } else { return false } }.count
        #expect(found > 0, "seed \(seed): no get found a value")
        print("metamorphic: seed \(seed): \(ops.count) operations, \(Self.configs.count) configurations agree; \(found) gets found a value")
    }
}
