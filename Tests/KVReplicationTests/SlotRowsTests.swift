import KVEngine
import KVFileSystem
import KVLayout
import KVReplication
import KVStore
import Testing

/// A cluster slot move's copy without the network: the rows of some slots go from a source
/// store to a target through a slot-restricted snapshot and then the source's write groups;
/// the target ends with exactly the source's rows of those slots (expiry times included) and
/// nothing of other slots; the old owner's rows are then deleted.
@Suite("Slot rows")
struct SlotRowsTests {
    func rows(_ store: ShardedStore, in slots: [Bool]) throws -> [[UInt8]: StoredEntry] {
        var m: [[UInt8]: StoredEntry] = [:]
        let scan = try store.scan()
        while let (k, e) = try scan.nextRow() {
            if slots[HashSlot.slot(of: k)] { m[k] = e }
        }
        return m
    }

    @Test func copiesTheSlotsRowsThenTheirChanges() throws {
        let seed = UInt64.random(in: 0...UInt64.max)
        print("SlotRowsTests seed \(seed)")
        var rng = SplitMix(seed)
        let backlog = ReplicationBacklog()
        let source = try ShardedStore.open(at: "/source", shards: 3, options: storeOptions(MemoryFileSystem()), commitFeed: backlog)
        defer { try? source.close() }
        let target = try ShardedStore.open(at: "/target", shards: 2, options: storeOptions(MemoryFileSystem()))
        defer { try? target.close() }
        var slots = [Bool](repeating: false, count: 16384)
        for s in 1000..<6000 { slots[s] = true }
        let far = source.now + 3_600_000
        for i in 0..<600 {
            if i % 5 == 0 {
                try source.put(bytes("k\(i)"), bytes("e\(i)"), expiresAt: far + Int64(i))
            } else {
                try source.put(bytes("k\(i)"), bytes("v\(i)"))
            }
        }
        // A key of the slots the target holds from an earlier, cancelled move goes first.
        let stale = (0..<10_000).map { bytes("stale\($0)") }.first { slots[HashSlot.slot(of: $0)] }!
        try target.put(stale, bytes("old"))
        #expect(try SlotRows.deleteRows(of: slots, in: target) == 1)
        backlog.activate(store: source)
        let layout = source.replicationLayout
        var applied: [UInt64] = []
        var copied = 0
        for shard in 0..<layout.shardCount {
            let reader = try ShardSnapshotReader(store: source, shard: shard, slots: slots)
            while true {
                let records = try reader.next(maxBytes: 2 << 10)
                if records.isEmpty { break }
                for (k, _) in records { #expect(k.withUnsafeBytes { EngineKey.kind($0) == .row && slots[EngineKey.slot(ofRow: $0)] }) }
                var writer = SlotRows(store: target, slots: slots)
                copied += try writer.applySnapshot(records)
            }
            applied.append(reader.sequence)
            reader.release()
        }
        #expect(copied == (try rows(source, in: slots)).count)
        #expect(try rows(target, in: slots) == rows(source, in: slots))
        // Changes after the snapshot stream over.
        for _ in 0..<800 {
            let k = bytes("k\(rng.next() % 700)")
            switch rng.next() % 4 {
            case 0: try source.delete(k)
            case 1: try source.put(k, bytes("x\(rng.next() % 100)"), expiresAt: far)
            default: try source.put(k, bytes("y\(rng.next() % 100)"))
            }
        }
        while true {
            let wire = backlog.frames(shards: layout.shardCount, from: applied.map { $0 + 1 }, budget: 4 << 10)
            if wire.isEmpty { break }
            for frame in try ReplicationFrame.decodeAll(wire) {
                guard case .group(let shard, let first, let last, let batch) = frame else {
                    Issue.record("unexpected frame \(frame)")
                    return
                }
                #expect(first == applied[shard] + 1)
                var writer = SlotRows(store: target, slots: slots)
                _ = try writer.applyGroup(batch, from: "source")
                applied[shard] = last
            }
        }
        let want = try rows(source, in: slots)
        #expect(try rows(target, in: slots) == want, "seed \(seed)")
        var none = slots
        for s in none.indices { none[s] = !none[s] }
        #expect(try rows(target, in: none).isEmpty, "rows of other slots were copied (seed \(seed))")
        // The old owner then deletes them, and only them.
        let others = try rows(source, in: none).count
        #expect(try SlotRows.deleteRows(of: slots, in: source) == want.count)
        #expect(try rows(source, in: slots).isEmpty)
        #expect(try rows(source, in: none).count == others)
    }

    /// The fields of every hash in the slots, read through the store's update path.
    func hashes(_ store: ShardedStore, in slots: [Bool]) throws -> [[UInt8]: [[UInt8]: [UInt8]]] {
        var out: [[UInt8]: [[UInt8]: [UInt8]]] = [:]
        for (k, e) in try rows(store, in: slots) where e.type == .hash {
            out[k] = try store.update([k]) { u in
                var fields: [[UInt8]: [UInt8]] = [:]
                try u.scanElements(0, try u.collection(0, .hash)!) { f, v in fields[Array(f)] = Array(v); return true }
                return fields
            }
        }
        return out
    }

    static func setField(_ store: ShardedStore, _ key: [UInt8], _ field: [UInt8], _ value: [UInt8]?) throws {
        try store.update([key]) { u in
            var meta = try u.collection(0, .hash) ?? u.newCollection(0, .hash)
            let had = try u.element(0, meta, field) != nil
            if let value {
                if !had { meta.count += 1 }
                u.putElement(0, meta, field, value)
            } else if had {
                meta.count -= 1
                u.deleteElement(0, meta, field)
            } else {
                return
            }
            u.setCollection(0, meta)
        }
    }

    /// Hashes move with their elements: snapshot, then write groups; a hash index on the
    /// target ends with exactly the entries of the moved hashes; the old owner's purge leaves
    /// no element behind.
    @Test func copiesCollectionsAndTheirIndexEntries() throws {
        let seed = UInt64.random(in: 0...UInt64.max)
        print("SlotRowsTests collections seed \(seed)")
        var rng = SplitMix(seed)
        let backlog = ReplicationBacklog()
        let source = try ShardedStore.open(at: "/source", shards: 2, options: storeOptions(MemoryFileSystem()), commitFeed: backlog)
        defer { try? source.close() }
        let target = try ShardedStore.open(at: "/target", shards: 2, options: storeOptions(MemoryFileSystem()))
        defer { try? target.close() }
        try target.createIndex(IndexDefinition(name: "by_city", field: "city", type: .string, source: .hash))
        var slots = [Bool](repeating: false, count: 16384)
        for s in 0..<8000 { slots[s] = true }
        let cities = ["paris", "rome", "oslo"].map(bytes)
        for i in 0..<300 {
            try Self.setField(source, bytes("h\(i)"), bytes("city"), cities[i % 3])
            try Self.setField(source, bytes("h\(i)"), bytes("n"), bytes("\(i)"))
        }
        backlog.activate(store: source)
        let layout = source.replicationLayout
        var applied: [UInt64] = []
        for shard in 0..<layout.shardCount {
            let reader = try ShardSnapshotReader(store: source, shard: shard, slots: slots)
            while true {
                let records = try reader.next(maxBytes: 2 << 10)
                if records.isEmpty { break }
                var writer = SlotRows(store: target, slots: slots)
                _ = try writer.applySnapshot(records)
            }
            applied.append(reader.sequence)
            reader.release()
        }
        try SlotRows(store: target, slots: slots).finishSnapshot()
        #expect(try hashes(target, in: slots) == hashes(source, in: slots))
        for _ in 0..<500 {
            let k = bytes("h\(rng.next() % 350)")
            switch rng.next() % 4 {
            case 0: try source.delete(k)
            case 1: try Self.setField(source, k, bytes("city"), nil)
            default: try Self.setField(source, k, bytes("city"), cities[Int(rng.next() % 3)])
            }
        }
        while true {
            let wire = backlog.frames(shards: layout.shardCount, from: applied.map { $0 + 1 }, budget: 4 << 10)
            if wire.isEmpty { break }
            for frame in try ReplicationFrame.decodeAll(wire) {
                guard case .group(let shard, _, let last, let batch) = frame else { continue }
                var writer = SlotRows(store: target, slots: slots)
                _ = try writer.applyGroup(batch, from: "source")
                applied[shard] = last
            }
        }
        let want = try hashes(source, in: slots)
        #expect(try hashes(target, in: slots) == want, "seed \(seed)")
        for c in cities {
            let got = Set(try target.query(index: "by_city", .equals(.string(c))).map(\.key))
            #expect(got == Set(want.filter { $0.value[bytes("city")] == c }.map(\.key)), "seed \(seed): \(c)")
        }
        #expect(try target.indexInfo("by_city").entries == want.filter { $0.value[bytes("city")] != nil }.count, "seed \(seed)")
        _ = try SlotRows.deleteRows(of: slots, in: source)
        #expect(try hashes(source, in: slots).isEmpty)
        var leftovers = 0
        for shard in 0..<layout.shardCount {
            let reader = try ShardSnapshotReader(store: source, shard: shard, slots: slots)
            while true {
                let records = try reader.next(maxBytes: 64 << 10)
                if records.isEmpty { break }
                leftovers += records.count
            }
            reader.release()
        }
        #expect(leftovers == 0, "elements of the moved slots left on the old owner")
    }
}
