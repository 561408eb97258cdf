import KVBase
import KVEngine
import KVFileSystem
import KVIndex
@testable import KVStore
import KVTestSupport
import Synchronization
import Testing

/// The index API: definitions, maintenance, queries, errors, statistics, persistence.
@Suite("Secondary indexes")
struct IndexTests {
    static let byCategory = IndexDefinition(name: "by_cat", field: "category", type: .string, keyPrefix: "product:")
    static let byPrice = IndexDefinition(name: "by_price", field: "price", type: .number)
    static let byWidth = IndexDefinition(name: "by_w", field: "dims.w", type: .number, keyPrefix: "product:")

    func product(_ store: ShardedStore, _ n: Int, _ category: String, _ price: Double, w: Int = 3) throws {
        try store.put("product:\(n)", "{\"category\":\"\(category)\",\"price\":\(price),\"dims\":{\"w\":\(w)}}")
    }

    func keys(_ hits: [IndexHit]) -> [String] { hits.map { String(decoding: $0.key, as: UTF8.self) } }

    @Test func createQueryAndMaintain() throws {
        let fs = MemoryFileSystem()
        let store = try ShardedStore.open(at: "/s", shards: 3, options: storeOptions(fs))
        // Existing rows are back-filled.
        try product(store, 1, "books", 12.5)
        try product(store, 2, "toys", 3)
        try product(store, 3, "books", -1)
        try store.put("other:1", "{\"category\":\"books\",\"price\":7}")
        try store.put("product:4", "not json")
        try store.createIndex(Self.byCategory)
        try store.createIndex(Self.byPrice)
        try store.createIndex(Self.byWidth)
        try store.waitForIndexes()
        #expect(store.indexes().map(\.name) == ["by_cat", "by_price", "by_w"])
        #expect(keys(try store.query(index: "by_cat", .equals("books"))) == ["product:1", "product:3"])
        #expect(keys(try store.query(index: "by_price", .range(lo: nil, hi: nil))) == ["product:3", "product:2", "other:1", "product:1"])
        // Writes maintain every index in the same batch.
        try product(store, 1, "toys", 100)
        try store.delete("product:3")
        try product(store, 5, "books", 7)
        #expect(keys(try store.query(index: "by_cat", .equals("books"))) == ["product:5"])
        #expect(keys(try store.query(index: "by_cat", .equals("toys"))) == ["product:1", "product:2"])
        #expect(keys(try store.query(index: "by_cat", .prefix("to"))) == ["product:1", "product:2"])
        #expect(keys(try store.query(index: "by_cat", .prefix(""))) == ["product:5", "product:1", "product:2"])
        #expect(keys(try store.query(index: "by_price", .range(lo: 7, hi: 7))) == ["other:1", "product:5"])
        #expect(keys(try store.query(index: "by_price", .range(lo: 3, hi: 99))) == ["product:2", "other:1", "product:5"])
        #expect(keys(try store.query(index: "by_price", .equals(100))) == ["product:1"])
        #expect(keys(try store.query(index: "by_w", .range(lo: 3, hi: nil))).count == 3)
        // Offset, limit, values.
        let page = try store.query(index: "by_price", .range(lo: nil, hi: nil), offset: 1, limit: 2, withValues: true)
        #expect(keys(page) == ["other:1", "product:5"])
        #expect(page[0].value == Array("{\"category\":\"books\",\"price\":7}".utf8))
        #expect(try store.query(index: "by_price", .range(lo: nil, hi: nil), offset: 10).isEmpty)
        #expect(try store.query(index: "by_price", .range(lo: nil, hi: nil), limit: 0).isEmpty)
        #expect(try store.query(index: "by_price", .range(lo: 5, hi: 4)).isEmpty)
        // A value that stops qualifying leaves the index.
        try store.put("product:5", "{\"category\":5}")
        #expect(keys(try store.query(index: "by_cat", .equals("books"))).isEmpty)
        #expect(try IndexOracle.integrityProblems(store) == [])
        try store.close()
    }

    @Test func errorsSayWhatIsWrong() throws {
        let fs = MemoryFileSystem()
        let store = try ShardedStore.open(at: "/s", shards: 2, options: storeOptions(fs))
        try store.createIndex(Self.byCategory)
        try store.createIndex(Self.byPrice)
        try store.waitForIndexes()
        func error(_ body: () throws -> Void) -> KVError? {
            do { try body() } catch let e as KVError { return e } catch { return nil }
            return nil
        }
        #expect(error { try store.createIndex(Self.byCategory) } == .invalidArgument("index 'by_cat' already exists"))
        #expect(error { try store.dropIndex("nope") } == .notFound("no such index 'nope'"))
        #expect(error { _ = try store.indexInfo("nope") } == .notFound("no such index 'nope'"))
        #expect(error { _ = try store.query(index: "nope", .equals("x")) } == .notFound("no such index 'nope'"))
        #expect(error { _ = try store.query(index: "by_price", .prefix("x")) } == .invalidArgument("index 'by_price' indexes numbers; PREFIX needs a string index (use RANGE)"))
        #expect(error { _ = try store.query(index: "by_cat", .range(lo: 1, hi: 2)) } == .invalidArgument("index 'by_cat' indexes strings; RANGE needs a number index (use EQ or PREFIX)"))
        #expect(error { _ = try store.query(index: "by_cat", .equals(1)) } == .invalidArgument("index 'by_cat' indexes strings; EQ needs a string"))
        #expect(error { _ = try store.query(index: "by_price", .equals("1")) } == .invalidArgument("index 'by_price' indexes numbers; EQ needs a number"))
        #expect(error { _ = try store.query(index: "by_price", .range(lo: .nan, hi: 1)) } != nil)
        #expect(error { _ = try store.query(index: "by_price", .range(lo: 1, hi: 2), offset: -1) } != nil)
        #expect(error { _ = try store.query(index: "by_price", .range(lo: 1, hi: 2), limit: -1) } != nil)
        if case .invalidArgument(let m)? = error({ try store.createIndex(IndexDefinition(name: "bad name", field: "f", type: .string)) }) {
            #expect(m.hasPrefix("index name must be 1-64 characters"))
        } else {
            Issue.record("bad name accepted")
        }
        if case .invalidArgument(let m)? = error({ try store.createIndex(IndexDefinition(name: "x", field: "a..b", type: .string)) }) {
            #expect(m.hasPrefix("index field must be a dotted path"))
        } else {
            Issue.record("bad field accepted")
        }
        #expect(try store.query(index: "by_price", .equals(.number(.infinity))).isEmpty)
        try store.close()
        #expect(error { try store.createIndex(Self.byWidth) } == .closed)
    }

    @Test func queriesOnABuildingIndexAreRefused() throws {
        let fs = MemoryFileSystem()
        let store = try ShardedStore.open(at: "/s", shards: 2, options: storeOptions(fs))
        for i in 0..<600 { try product(store, i, "c\(i % 7)", Double(i)) }
        let gate = Gate()
        store.setIndexHook { step in
            if case .filled = step { gate.wait() }
            return false
        }
        try store.createIndex(Self.byCategory)
        gate.waitUntilBlocked()
        let info = try store.indexInfo("by_cat")
        #expect(info.state == .building && info.progress < 100)
        do {
            _ = try store.query(index: "by_cat", .equals("c1"))
            Issue.record("query on a building index answered")
        } catch {
            let progress = try store.indexInfo("by_cat").progress
            #expect(error == .invalidState("index 'by_cat' is still building (\(progress)%)"))
        }
        // A reshard waits for no build: it is refused.
        #expect(throws: KVError.self) { try store.setShardCount(3) }
        gate.open()
        try store.waitForIndexes()
        store.setIndexHook(nil)
        let ready = try store.indexInfo("by_cat")
        #expect(ready.state == .ready && ready.progress == 100 && ready.entries == 600)
        #expect(try store.query(index: "by_cat", .equals("c1")).count == 86)
        try store.close()
    }

    @Test func expiredAndDeletedRowsNeverAppear() throws {
        let fs = MemoryFileSystem()
        let store = try ShardedStore.open(at: "/s", shards: 2, options: storeOptions(fs))
        store.freezeClock(at: 1_000_000)
        try store.createIndex(Self.byPrice)
        try store.waitForIndexes()
        try store.put(bytes("a"), bytes("{\"price\":1}"), expiresAt: 1_000_500)
        try store.put(bytes("b"), bytes("{\"price\":1}"), expiresAt: 1_002_000)
        try store.put(bytes("c"), bytes("{\"price\":1}"))
        try store.put(bytes("d"), bytes("{\"price\":1}"))
        try store.delete(bytes("d"))
        #expect(keys(try store.query(index: "by_price", .equals(1))) == ["a", "b", "c"])
        store.advanceClock(by: 500)
        #expect(keys(try store.query(index: "by_price", .equals(1))) == ["b", "c"])
        // The entry carries the row's expiry; renewing the expiry rewrites it.
        try store.modify([bytes("b")]) { rows in rows[0]!.expiresAt = 1_100_000 }
        #expect(try IndexOracle.integrityProblems(store) == [])
        store.advanceClock(by: 5_000)
        #expect(keys(try store.query(index: "by_price", .equals(1), withValues: true)) == ["b", "c"])
        #expect(try store.removeExpired() == 1)
        #expect(try IndexOracle.integrityProblems(store) == [])
        #expect(try store.indexInfo("by_price").entries == 2)
        try store.close()
    }

    @Test func definitionsAndStatisticsSurviveReopen() throws {
        let fs = MemoryFileSystem()
        var store = try ShardedStore.open(at: "/s", shards: 3, options: storeOptions(fs))
        for i in 0..<50 { try product(store, i, i % 2 == 0 ? "even" : "odd", Double(i)) }
        try store.createIndex(Self.byCategory)
        try store.createIndex(Self.byPrice)
        try store.waitForIndexes()
        _ = try store.query(index: "by_cat", .equals("even"), limit: 10)
        _ = try store.query(index: "by_cat", .equals("odd"))
        let before = try store.indexInfo("by_cat")
        #expect(before.entries == 50 && before.queries == 2 && before.results == 35 && before.averageResultSize == 17.5)
        try store.close()
        store = try ShardedStore.open(at: "/s", options: storeOptions(fs))
        #expect(try store.indexInfo("by_cat") == before)
        #expect(try store.query(index: "by_cat", .equals("odd")).count == 25)
        try product(store, 100, "odd", 1)
        #expect(try store.indexInfo("by_cat").entries == 51)
        // Drop: ids are never reused, so a new index of the same name sees no old entries.
        let oldID = store.indexID("by_cat")!
        try store.dropIndex("by_cat")
        #expect(throws: KVError.self) { _ = try store.query(index: "by_cat", .equals("odd")) }
        try store.createIndex(IndexDefinition(name: "by_cat", field: "category", type: .string, keyPrefix: "nothing:"))
        try store.waitForIndexes()
        #expect(store.indexID("by_cat")! > oldID)
        #expect(try store.query(index: "by_cat", .equals("odd")).isEmpty)
        #expect(try IndexOracle.entryCount(store, id: oldID) == 0)
        try store.close()
        store = try ShardedStore.open(at: "/s", options: storeOptions(fs))
        #expect(store.indexes().map(\.name) == ["by_cat", "by_price"])
        #expect(try store.indexInfo("by_cat").keyPrefix == Array("nothing:".utf8))
        try store.dropIndex("by_cat")
        try store.dropIndex("by_price")
        try store.waitForIndexes()
        #expect(store.indexes().isEmpty)
        try store.close()
        store = try ShardedStore.open(at: "/s", options: storeOptions(fs))
        #expect(store.indexes().isEmpty)
        try store.createIndex(Self.byPrice)
        #expect(store.indexID("by_price")! > oldID + 2)
        try store.close()
    }

    /// Writes `batch` straight into one shard's engine of a closed store.
    func writeToShard(_ fs: MemoryFileSystem, _ shard: Int, _ batch: WriteBatch) throws {
        let db = try Database.open(at: "/s/" + StoreDescriptor.directoryName(shard), options: storeOptions(fs))
        try db.write(batch)
        try db.close()
    }

    @Test func shardsThatDisagreeAreReported() throws {
        for damage in 0..<2 {
            let fs = MemoryFileSystem()
            let store = try ShardedStore.open(at: "/s", shards: 3, options: storeOptions(fs))
            try store.createIndex(Self.byPrice)
            try store.waitForIndexes()
            let id = store.indexID("by_price")!
            try store.close()
            var batch = WriteBatch()
            if damage == 0 {
                // Another definition under the same id.
                let other = IndexMetadata.Definition(id: id, state: .ready, definition: IndexDefinition(name: "by_price", field: "cost", type: .number))
                batch.put(IndexMetadata.definitionKey(id), IndexMetadata.encode(other))
            } else {
                batch.delete(IndexMetadata.definitionKey(id))
            }
            try writeToShard(fs, 2, batch)
            do {
                _ = try ShardedStore.open(at: "/s", options: storeOptions(fs))
                Issue.record("open accepted disagreeing shards (damage \(damage))")
            } catch let KVError.corruption(file, _, reason) {
                #expect(file.hasSuffix("shard-0002"), "\(file)")
                #expect(reason.contains("shard 2") && reason.contains("by_price"), "\(reason)")
            }
        }
    }

    @Test func anInterruptedCreateIsUndoneAtOpen() throws {
        let fs = MemoryFileSystem()
        var store = try ShardedStore.open(at: "/s", shards: 3, options: storeOptions(fs))
        try store.put("k", "{\"price\":1}")
        try store.close()
        // A create that wrote shards 2 and 1 but not shard 0, its commit point.
        let def = IndexMetadata.Definition(id: 7, state: .building, definition: Self.byPrice)
        for shard in [2, 1] {
            var batch = WriteBatch()
            batch.put(IndexMetadata.definitionKey(7), IndexMetadata.encode(def))
            batch.put(IndexMetadata.nextKey, IndexMetadata.encodeNext(8))
            try writeToShard(fs, shard, batch)
        }
        store = try ShardedStore.open(at: "/s", options: storeOptions(fs))
        try store.waitForIndexes()
        #expect(store.indexes().isEmpty)
        try store.createIndex(Self.byPrice)
        try store.waitForIndexes()
        #expect(store.indexID("by_price") == 8)
        #expect(try store.query(index: "by_price", .equals(1)).map(\.key) == [bytes("k")])
        try store.close()
        store = try ShardedStore.open(at: "/s", options: storeOptions(fs))
        #expect(store.indexes().map(\.name) == ["by_price"])
        try store.close()
    }
}

/// Blocks a background thread at a hook until the test opens it.
final class Gate: Sendable {
    private let state = Mutex<(blocked: Int, open: Bool)>((0, false))

    func wait() {
        state.withLock { $0.blocked += 1 }
        while !state.withLock({ $0.open }) { pause(milliseconds: 1) }
    }

    func waitUntilBlocked() {
        while state.withLock({ $0.blocked == 0 }) { pause(milliseconds: 1) }
    }

    func open() { state.withLock { $0.open = true } }
}
