import Dispatch
import KVBase
import KVEngine
import KVFileSystem
import KVLayout
@testable import KVStore
import KVTestSupport
import Testing

/// Rows with expiry, read-modify-write, and the reserved key space.
@Suite("Store rows")
struct RowTests {
    @Test func keysStartingWithTheReservedByteKeepTheirOrder() throws {
        let fs = MemoryFileSystem()
        let store = try ShardedStore.open(at: "/s", shards: 3, options: storeOptions(fs))
        let keys: [[UInt8]] = [[], [0x00], [0x41], [0xFE, 0xFF], [0xFF], [0xFF, 0x00], [0xFF, 0x01], [0xFF, 0xFF], [0xFF, 0xFF, 0xFF]]
        for (i, k) in keys.enumerated() { try store.put(k, [UInt8(i)]) }
        // A row with expiry writes a reserved expiry entry; it must stay invisible.
        try store.put([0x42], [9], expiresAt: store.now + 3_600_000)
        var expected = keys
        expected.append([0x42])
        expected.sort { $0.lexicographicallyPrecedes($1) }
        #expect(try contents(store).map.keys.sorted { $0.lexicographicallyPrecedes($1) } == expected)
        #expect(try store.scan().map(\.key) == expected)
        #expect(try store.scan(reverse: true).map(\.key) == expected.reversed())
        #expect(try store.scan(from: [0xFF], to: [0xFF, 0xFF]).map(\.key) == [[0xFF], [0xFF, 0x00], [0xFF, 0x01]])
        #expect(try store.scan(prefix: [0xFF]).map(\.key).count == 5)
        #expect(try store.count() == keys.count + 1)
        for (i, k) in keys.enumerated() { #expect(try store.get(k) == [UInt8(i)]) }
        try store.flush()
        try store.compactRange(nil, nil)
        #expect(try store.scan(reverse: true).map(\.key) == expected.reversed())
        try store.close()
    }

    @Test func expiredRowsAreInvisibleEverywhere() throws {
        let fs = MemoryFileSystem()
        let store = try ShardedStore.open(at: "/s", shards: 2, options: storeOptions(fs))
        let now = store.now
        try store.put(bytes("short"), bytes("a"), expiresAt: now + 1_000)
        try store.put(bytes("long"), bytes("b"), expiresAt: now + 100_000)
        try store.put(bytes("plain"), bytes("c"))
        #expect(try store.getEntry(bytes("short")) == StoredEntry(value: bytes("a"), expiresAt: now + 1_000))
        #expect(try store.getEntry(bytes("plain")) == StoredEntry(value: bytes("c"), expiresAt: nil))
        #expect(try store.count() == 3)
        store.advanceClock(by: 1_000)
        #expect(try store.get(bytes("short")) == nil)
        #expect(try store.getEntry(bytes("short")) == nil)
        #expect(try store.contains(bytes("long")))
        #expect(try store.count() == 2)
        #expect(try store.scan().map(\.key) == [bytes("long"), bytes("plain")])
        // Read-modify-write sees the expired row as absent.
        let seen = try store.modify([bytes("short")]) { rows in rows[0] }
        #expect(seen == nil)
        // Active expiry deletes the row and its expiry entry.
        #expect(try store.removeExpired() == 1)
        #expect(try store.removeExpired() == 0)
        #expect(try reservedRecords(store, tag: EngineKey.expiryTag) == 1)
        // Expiry survives a reopen.
        try store.close()
        let again = try ShardedStore.open(at: "/s", options: storeOptions(fs))
        #expect(try again.getEntry(bytes("long"))?.expiresAt == now + 100_000)
        again.advanceClock(by: 200_000)
        #expect(try again.get(bytes("long")) == nil)
        #expect(try again.removeExpired() == 1)
        #expect(try reservedRecords(again, tag: EngineKey.expiryTag) == 0)
        try again.close()
    }

    @Test func overwritingAnExpiringRowDropsItsExpiryEntry() throws {
        let fs = MemoryFileSystem()
        let store = try ShardedStore.open(at: "/s", shards: 1, options: storeOptions(fs))
        let now = store.now
        try store.put(bytes("k"), bytes("1"), expiresAt: now + 500)
        // Through modify the old row is known, so its expiry entry goes in the same batch.
        try store.modify([bytes("k")]) { rows in rows[0] = StoredEntry(value: bytes("2")) }
        #expect(try reservedRecords(store, tag: EngineKey.expiryTag) == 0)
        // A plain put does not read the old row: the stale entry is removed when due.
        try store.put(bytes("j"), bytes("1"), expiresAt: now + 500)
        try store.put(bytes("j"), bytes("2"))
        #expect(try reservedRecords(store, tag: EngineKey.expiryTag) == 1)
        store.advanceClock(by: 1_000)
        #expect(try store.removeExpired() == 0)
        #expect(try reservedRecords(store, tag: EngineKey.expiryTag) == 0)
        #expect(try store.get(bytes("j")) == bytes("2"))
        #expect(try store.get(bytes("k")) == bytes("2"))
        try store.close()
    }

    @Test func compactionFilterReclaimsExpiredRecords() throws {
        let fs = MemoryFileSystem()
        let store = try ShardedStore.open(at: "/s", shards: 1, options: storeOptions(fs))
        let soon = RowValue.wallClockMillis() + 30
        for i in 0..<200 { try store.put(bytes("e\(i)"), bytes("v\(i)"), expiresAt: soon) }
        for i in 0..<50 { try store.put(bytes("p\(i)"), bytes("v\(i)")) }
        try store.flush()
        pause(milliseconds: 60)
        try store.compactRange(nil, nil)
        #expect(try rawEngineKeys(store) == 50)
        #expect(try store.count() == 50)
        try store.close()
    }

    @Test func modifyIsAtomicUnderConcurrentWriters() throws {
        let fs = MemoryFileSystem()
        let store = try ShardedStore.open(at: "/s", shards: 4, options: storeOptions(fs))
        let threads = 8, rounds = 200
        let tasks = (0..<threads).map { _ in
            BackgroundTask {
                do {
                    for _ in 0..<rounds {
                        try store.modify([bytes("counter"), bytes("other{counter}")]) { rows in
                            let n = Int(String(decoding: rows[0]?.value ?? bytes("0"), as: UTF8.self))!
                            rows[0] = StoredEntry(value: bytes(String(n + 1)))
                            rows[1] = StoredEntry(value: bytes(String(n + 1)))
                        }
                    }
                } catch {
                    Issue.record("modify failed: \(error)")
                }
            }
        }
        for t in tasks { t.join() }
        #expect(try store.get(bytes("counter")) == bytes(String(threads * rounds)))
        #expect(try store.get(bytes("other{counter}")) == bytes(String(threads * rounds)))
        #expect(throws: KVError.self) { try store.modify([bytes("a"), bytes("a")]) { _ in } }
        try store.close()
    }

    @Test func randomRowsWithExpiryMatchModel() throws {
        let seed = testSeed("randomRowsWithExpiryMatchModel")
        var r = TestRandom(seed: seed)
        let fs = MemoryFileSystem()
        var store = try ShardedStore.open(at: "/s", shards: 3, options: storeOptions(fs))
        var clock = store.now
        store.freezeClock(at: clock)
        var model: [[UInt8]: StoredEntry] = [:]
        let steps = soakEnabled ? 20_000 : 3_000
        for step in 0..<steps {
            let key = r.key(space: 300)
            let now = store.now
            func live(_ k: [UInt8]) -> StoredEntry? {
                guard let e = model[k], !(e.expiresAt.map { $0 <= now } ?? false) else { return nil }
                return e
            }
            switch r.next(100) {
            case 0..<30:
                let v = r.value(maxLength: 40)
                try store.put(key, v)
                model[key] = StoredEntry(value: v)
            case 30..<45:
                let v = r.value(maxLength: 40)
                let t = now + Int64(r.next(5_000)) - 500
                try store.put(key, v, expiresAt: t)
                model[key] = StoredEntry(value: v, expiresAt: t)
            case 45..<55:
                try store.delete(key)
                model[key] = nil
            case 55..<65:
                let t = now + Int64(r.next(5_000))
                try store.modify([key]) { rows in
                    if rows[0] != nil { rows[0]!.expiresAt = t }
                }
                if var e = live(key) {
                    e.expiresAt = t
                    model[key] = e
                } else if model[key] != nil {
                    // The expired row is left as it was.
                }
            case 65..<80:
                #expect(try store.getEntry(key) == live(key), "seed \(seed) step \(step)")
            case 80..<85:
                store.advanceClock(by: Int64(r.next(1_500)))
                clock = store.now
            case 85..<88:
                try store.removeExpired(limit: 1 + r.next(50))
            case 88..<90:
                try store.close()
                store = try ShardedStore.open(at: "/s", options: storeOptions(fs))
                store.freezeClock(at: clock)
            default:
                let scanned = try store.scan().map { ($0.key, $0.value) }
                let now = store.now
                let expected = model.filter { !($0.value.expiresAt.map { $0 <= now } ?? false) }
                    .map { ($0.key, $0.value.value) }
                    .sorted { $0.0.lexicographicallyPrecedes($1.0) }
                let scannedKeys: [[UInt8]] = scanned.map(\.0)
                let expectedKeys: [[UInt8]] = expected.map(\.0)
                let missing = Set(expectedKeys).subtracting(scannedKeys).count
                let extra = Set(scannedKeys).subtracting(expectedKeys).count
                #expect(missing == 0 && extra == 0, "seed \(seed) step \(step): \(missing) missing, \(extra) extra")
                let sameValues = scannedKeys == expectedKeys && scanned.map(\.1) == expected.map(\.1)
                #expect(sameValues, "seed \(seed) step \(step)")
            }
        }
        try store.close()
    }

    /// Reserved records of one tag held by the store's shards (latest state).
    func reservedRecords(_ store: ShardedStore, tag: UInt8) throws -> Int {
        var n = 0
        for shard in store.state.withLock({ $0.routing.shards }) {
            let it = try shard.db.makeIterator()
            try it.seekToFirst()
            while it.isValid {
                if EngineKey.kind(it.keyView) == .reserved(tag) { n += 1 }
                try it.next()
            }
        }
        return n
    }

    /// Every engine key held by the store's shards (latest state).
    func rawEngineKeys(_ store: ShardedStore) throws -> Int {
        var n = 0
        for shard in store.state.withLock({ $0.routing.shards }) {
            let it = try shard.db.makeIterator()
            try it.seekToFirst()
            while it.isValid {
                n += 1
                try it.next()
            }
        }
        return n
    }
}
