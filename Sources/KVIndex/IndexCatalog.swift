import KVBase
import KVEngine
import KVLayout
import Synchronization

/// One live index (building or ready) as writes and queries see it, with its statistics.
///
/// The definition is immutable; statistics and build progress are atomics updated without
/// locks. A handle outlives catalog snapshots: a new snapshot (another index created or
/// dropped) keeps the handles of the indexes it keeps.
package final class IndexHandle: Sendable {
    package let id: UInt32
    package let definition: IndexDefinition
    /// The parsed JSON path (JSON indexes).
    let path: JSONFieldPath?
    /// `0xFF 0x02 id:4`, the prefix of every entry of the index.
    package let entryPrefix: [UInt8]

    /// Entries in the store (see ``IndexInfo/entries``).
    package let entries = Atomic<Int>(0)
    package let queries = Atomic<Int>(0)
    package let results = Atomic<Int>(0)
    /// True until every shard's back-fill is done.
    package let building: Atomic<Bool>
    /// Back-fill progress: rows processed and rows to process, over all shards.
    package let rowsDone = Atomic<Int>(0)
    package let rowsTotal = Atomic<Int>(0)
    /// Set by a drop: the back-fill stops at its next step.
    package let cancelled = Atomic<Bool>(false)
    /// Whether the back-fill thread is running.
    package let builderRunning = Atomic<Bool>(false)
    /// Why the back-fill stopped early.
    package let failure = Mutex<KVError?>(nil)

    package init(id: UInt32, definition: IndexDefinition, building: Bool) {
        self.id = id
        self.definition = definition
        self.path = definition.source == .json ? JSONFieldPath(definition.field)! : nil
        self.entryPrefix = IndexKeys.indexPrefix(id)
        self.building = Atomic(building)
    }

    package var name: String { definition.name }
    package var isBuilding: Bool { building.load(ordering: .acquiring) }

    /// Back-fill progress 0-100 (100 once ready; at most 99 while building).
    package var progress: Int {
        if !isBuilding { return 100 }
        let total = rowsTotal.load(ordering: .relaxed)
        let done = rowsDone.load(ordering: .relaxed)
        guard total > 0 else { return 0 }
        return min(99, done * 100 / total)
    }

    /// The value this index reads from a row (the JSON string, or the hash field), or nil.
    package func source(_ row: IndexedRow) -> [UInt8]? {
        definition.source == .json ? row.value : row.fields[definition.field]
    }

    /// Whether rows under `key` fall under the key prefix.
    @inlinable
    package func covers(_ key: [UInt8]) -> Bool {
        definition.covers(key: key)
    }

    /// The entry of row `key` with `value`: its index value and entry key; nil when the row
    /// is not indexed (its value does not qualify, or the entry key would exceed the engine's
    /// key limit).
    package func entry(key: [UInt8], value: [UInt8]) -> (value: IndexValue, key: [UInt8])? {
        value.withUnsafeBytes { entry(key: key, value: $0) }
    }

    /// The entry of row `key` with a value held in a buffer (see ``entry(key:value:)-([UInt8],[UInt8])``).
    package func entry(key: [UInt8], value: UnsafeRawBufferPointer) -> (value: IndexValue, key: [UInt8])? {
        let indexed: IndexValue?
        if let path {
            indexed = IndexDefinition.indexValue(of: value, path: path, type: definition.type)
        } else {
            indexed = IndexDefinition.indexValue(ofField: value, type: definition.type)
        }
        guard let v = indexed else { return nil }
        var k = entryPrefix
        IndexKeys.appendValue(v, to: &k)
        EngineKey.appendEscaped(key, to: &k)
        guard k.count <= KVLimits.maxKeySize else { return nil }
        return (v, k)
    }

    package func info() -> IndexInfo {
        IndexInfo(
            definition: definition, state: isBuilding ? .building : .ready, progress: progress,
            entries: entries.load(ordering: .relaxed), queries: queries.load(ordering: .relaxed),
            results: results.load(ordering: .relaxed), buildError: failure.withLock { $0 }.map { "\($0)" })
    }
}

/// A row as the indexes read it: its expiry, and the string value (JSON indexes) or the
/// values of the hash fields hash indexes covering it name.
package struct IndexedRow {
    package var expiresAt: Int64?
    package var value: [UInt8]?
    package var fields: [String: [UInt8]]

    package init(expiresAt: Int64?, value: [UInt8]? = nil, fields: [String: [UInt8]] = [:]) {
        self.expiresAt = expiresAt
        self.value = value
        self.fields = fields
    }
}

/// An immutable set of live indexes, published whole by ``IndexCatalog``.
package final class IndexSet: Sendable {
    /// Live indexes, sorted by name.
    package let all: [IndexHandle]
    /// Whether some index covers every key (it has no key prefix).
    package let coversAll: Bool

    package init(_ handles: [IndexHandle]) {
        all = handles.sorted { $0.name < $1.name }
        coversAll = handles.contains { $0.definition.keyPrefix == nil }
    }

    package func named(_ name: String) -> IndexHandle? {
        all.first { $0.name == name }
    }
}

/// Index-entry changes of one batch, applied to the statistics once the batch committed.
package struct IndexDeltas {
    var changes: [(IndexHandle, Int)] = []

    package init() {}

    mutating func add(_ h: IndexHandle, _ d: Int) {
        if d != 0 { changes.append((h, d)) }
    }

    package func apply() {
        for (h, d) in changes { h.entries.add(d, ordering: .relaxed) }
    }
}

/// A step of index background work, where a crash-test hook may halt the store.
package enum IndexStep: Sendable, Equatable, CustomStringConvertible {
    /// A back-fill batch of a shard was committed.
    case filled(shard: Int, batch: Int)
    /// A shard's back-fill is done and recorded.
    case shardReady(shard: Int)
    /// A batch of a dropped index's entries was deleted from a shard.
    case purged(shard: Int, batch: Int)

    package var description: String {
        switch self {
        case .filled(let s, let b): return "back-fill batch \(b) of shard \(s)"
        case .shardReady(let s): return "shard \(s) back-filled"
        case .purged(let s, let b): return "drop batch \(b) of shard \(s)"
        }
    }
}

/// The secondary indexes of a store, as the write path sees them: which keys they may cover
/// and which entries a row change adds and removes.
///
/// Thread safety: the live set is an immutable ``IndexSet`` published through an atomic
/// pointer, so the write path reads it with one load and no lock. Every published set is
/// kept alive until the catalog is freed (sets change only on create and drop, so that costs
/// a few hundred bytes per change), which is what makes the unretained load safe. Index
/// changes (create, drop) are serialized by `ddl`, held across their metadata writes; it
/// is never taken on the write path.
package final class IndexCatalog: Sendable {
    @usableFromInline let current = Atomic<UInt>(0)
    private let published: Mutex<[IndexSet]>
    /// Serializes createIndex and dropIndex.
    let ddl = Mutex<Void>(())
    /// The next index id to allocate (guarded by `ddl` for allocation).
    let nextID = Atomic<UInt32>(1)

    package init() {
        let empty = IndexSet([])
        published = Mutex([empty])
        current.store(UInt(bitPattern: Unmanaged.passUnretained(empty).toOpaque()), ordering: .releasing)
    }

    /// The live indexes.
    @inlinable
    package var set: IndexSet {
        let bits = current.load(ordering: .acquiring)
        return Unmanaged<IndexSet>.fromOpaque(UnsafeRawPointer(bitPattern: bits)!).takeUnretainedValue()
    }

    /// Replaces the live indexes.
    package func publish(_ handles: [IndexHandle]) {
        let s = IndexSet(handles)
        published.withLock { $0.append(s) }
        current.store(UInt(bitPattern: Unmanaged.passUnretained(s).toOpaque()), ordering: .releasing)
    }

    /// The fields of the hash indexes covering `key` (their values are what a hash row gives
    /// ``appendUpdates(key:slot:old:new:into:deltas:)``).
    package func hashFields(covering key: [UInt8]) -> [String] {
        let s = set
        if s.all.isEmpty { return [] }
        return s.all.filter { $0.definition.source == .hash && $0.covers(key) }.map(\.definition.field)
    }

    /// Whether any index may cover `key`; when false, writes of `key` skip reading the old row.
    @inlinable
    package func mayIndex(_ key: [UInt8]) -> Bool {
        let s = set
        if s.all.isEmpty { return false }
        if s.coversAll { return true }
        for h in s.all where h.covers(key) { return true }
        return false
    }

    /// Appends to `batch` the index-entry deletions for `old` and insertions for `new` of `key`
    /// (one slot per record to `slots`), and the change in entry counts to `deltas`.
    ///
    /// An entry is rewritten only when the row's indexed value or its expiry changed (the entry
    /// carries the row's expiry). The caller holds the key's lock and read `old` under it. The
    /// counts are exact for ready indexes; while an index is building its old entry may not
    /// exist yet, so its count is approximate until the build recounts it at the end.
    package func appendUpdates(
        key: [UInt8], slot: Int, old: IndexedRow?, new: IndexedRow?, into batch: inout RoutedBatch, deltas: inout IndexDeltas
    ) {
        let s = set
        if s.all.isEmpty { return }
        for h in s.all where h.covers(key) {
            let o = old.flatMap { h.source($0) }.flatMap { h.entry(key: key, value: $0) }
            let n = new.flatMap { h.source($0) }.flatMap { h.entry(key: key, value: $0) }
            if let o, let n, o.key == n.key {
                // Same entry: rewrite it only for a new expiry.
                if old!.expiresAt == new!.expiresAt { continue }
                var envelope: [UInt8] = []
                RowValue.appendTrailer(new!.expiresAt, to: &envelope)
                batch.put(n.key, envelope, slot: slot)
                continue
            }
            if let o {
                batch.delete(o.key, slot: slot)
                deltas.add(h, -1)
            }
            if let n {
                var envelope: [UInt8] = []
                RowValue.appendTrailer(new!.expiresAt, to: &envelope)
                batch.put(n.key, envelope, slot: slot)
                deltas.add(h, 1)
            }
        }
    }
}
