import KVBase
import KVEngine
import KVLayout
import Synchronization

/// Background work on an index: a back-fill (shards still building, with their cursors) or the
/// deletion of a dropped index's entries and records.
enum IndexJob: Sendable {
    case build(IndexHandle, shards: [IndexBuildShard])
    case drop(id: UInt32, name: String, shards: [Int])
}

/// A shard whose back-fill of an index is not done, and where it stopped.
struct IndexBuildShard: Sendable {
    var shard: Int
    var fill: IndexMetadata.Fill?
}

/// Index background work: back-fills and the deletion of dropped indexes, each on a thread of
/// its own. Owns what that work shares: the threads alive, the indexes still building (no
/// reshard may start meanwhile), the work found at open and not yet started, the failure of
/// the last drop's deletion, and the crash-test hook.
///
/// **Back-fill protocol.** `createIndex` writes the definition (state building) to every shard
/// and publishes it to the write path before the back-fill starts, so every write from then on
/// maintains the index. The back-fill thread first takes and releases every key-lock stripe:
/// a write that checked the catalog before the index was published holds its key's stripe
/// until it has committed, so afterwards every row written without the index is visible to the
/// back-fill's iterators. Then, shard by shard, it reads the keys of up to
/// ``chunk`` rows after its cursor (rows under the key prefix, owned by the shard),
/// and in groups of ``group`` takes their key locks, re-reads those rows (one fresh
/// iterator over the group's range), writes the entry each row should have (rewriting one a
/// concurrent write already made is harmless), and commits those entries together with the
/// new cursor (`idx.fill`) in one batch. A row changed concurrently is either re-read here
/// after the change, or changed after this batch by a write that maintains the index itself,
/// so no entry is missed, stale or duplicated. When a shard is done its definition becomes
/// ready (and its cursor is deleted) in one durable batch; when all are, the index is ready and
/// its entry count is recounted exactly (see ``recountEntries(_:_:)``).
/// A crash loses at most the batches after the last persisted cursor, entries and cursor
/// together, and the next open resumes each building shard from its cursor.
final class IndexBuilder: Sendable {
    /// Rows a back-fill reads per pass over a shard.
    static let chunk = 1000
    /// Rows a back-fill indexes under one set of key locks, in one batch.
    static let group = 100
    /// Bytes per batch when deleting a dropped index's entries.
    static let dropBatchBytes = 1 << 20

    private struct State {
        /// Indexes being back-filled, by name: no reshard may start.
        var building: Set<String> = []
        /// Background threads alive (back-fills and drops); close waits for them.
        var workers = 0
        /// Work found at open, started with the store's background work.
        var pending: [IndexJob] = []
        /// The failure of the last drop's background deletion (retried at the next open).
        var workFailure: KVError?
    }

    private let state = Mutex(State())
    private let hook = Mutex<(@Sendable (IndexStep) -> Bool)?>(nil)

    init() {}

    // MARK: state

    /// Whether a back-fill or drop thread is alive.
    var hasWorkers: Bool { state.withLock { $0.workers > 0 } }
    /// Signalled when a worker ends or a back-fill stops.
    let events = WaitEvents()

    /// The first index still building, by name.
    var firstBuilding: String? { state.withLock { $0.building.min() } }

    /// The failure of the last drop's background deletion.
    var workFailure: KVError? { state.withLock { $0.workFailure } }

    func markBuilding(_ name: String) { state.withLock { _ = $0.building.insert(name) } }

    func unmarkBuilding(_ name: String) { state.withLock { _ = $0.building.remove(name) } }

    /// Replaces the building set and the pending work (at open).
    func reset(building: Set<String>, pending: [IndexJob]) {
        state.withLock {
            $0.building = building
            $0.pending = pending
        }
    }

    func setHook(_ h: (@Sendable (IndexStep) -> Bool)?) { hook.withLock { $0 = h } }

    /// Starts the work queued at open.
    func startPending(_ host: any IndexHost) {
        let jobs = state.withLock { s -> [IndexJob] in
            defer { s.pending = [] }
            return s.pending
        }
        for job in jobs { start(job, host) }
    }

    /// Starts `job` on a background thread, unless the store is closing.
    func start(_ job: IndexJob, _ host: any IndexHost) {
        // Counted under the store mutex, so that a close either sees the worker or stops it
        // from starting.
        let go = host.ifOpen { state.withLock { $0.workers += 1 } } != nil
        guard go else { return }
        if case .build(let h, _) = job { h.builderRunning.store(true, ordering: .releasing) }
        startThread(name: "shale-index") { [self] in
            switch job {
            case .build(let h, let shards):
                runBuild(h, shards, host)
                h.builderRunning.store(false, ordering: .releasing)
                events.signal()
            case .drop(let id, let name, let shards):
                do throws(KVError) {
                    try runDrop(id: id, shards: shards, host)
                } catch {
                    if !host.isStopping {
                        state.withLock { $0.workFailure = .invalidState("deleting the entries of dropped index '\(name)' failed: \(error)") }
                    }
                }
            }
            state.withLock { $0.workers -= 1 }
            events.signal()
        }
    }

    /// Returns once no worker runs, or `stop()` says to stop waiting (it throws).
    func waitForWorkers(orStop stop: () throws(KVError) -> Void = {}) throws(KVError) {
        try events.wait { () throws(KVError) -> Bool in
            try stop()
            return !hasWorkers
        }
    }

    /// Gives the crash-test hook its chance to halt the store at `step`; true when halted.
    func checkpoint(_ step: IndexStep, _ host: any IndexHost) -> Bool {
        guard let hook = hook.withLock({ $0 }), hook(step) else { return false }
        host.halt()
        return true
    }

    /// Waits for every write that may have checked the index catalog before its last change:
    /// such writes hold their key's stripe until they have committed.
    func keyLockBarrier(_ host: any IndexHost) {
        host.withAllKeyLocks {}
    }

    // MARK: back-fill

    func runBuild(_ h: IndexHandle, _ pending: [IndexBuildShard], _ host: any IndexHost) {
        do throws(KVError) {
            keyLockBarrier(host)
            let routing = try host.indexLayout()
            let (lower, upper) = Self.rowRange(h.definition.keyPrefix)
            var total = 0
            var done = 0
            for p in pending {
                let shard = routing.shards[p.shard]
                total += try countRows(shard, owners: routing.owners, after: p.fill?.cursor, lower: lower, upper: upper)
                total += p.fill?.rowsDone ?? 0
                done += p.fill?.rowsDone ?? 0
            }
            h.rowsTotal.store(total, ordering: .relaxed)
            h.rowsDone.store(done, ordering: .relaxed)
            for p in pending {
                let finished = try buildShard(h, routing.shards[p.shard], owners: routing.owners, fill: p.fill, lower: lower, upper: upper, host)
                if !finished { return }
            }
            h.building.store(false, ordering: .releasing)
            try recountEntries(h, host)
            unmarkBuilding(h.name)
            try IndexManager.persistStatistics([h], host.lastIndexLayout())
        } catch {
            if !h.cancelled.load(ordering: .acquiring) && !host.isStopping {
                h.failure.withLock { $0 = error }
            }
        }
    }

    /// The engine-key range of rows under `prefix` (nil bounds are open).
    static func rowRange(_ prefix: [UInt8]?) -> (lower: [UInt8]?, upper: [UInt8]?) {
        guard let prefix, !prefix.isEmpty else { return (nil, nil) }
        let lower = EngineKey.encode(prefix)
        return (lower, prefixSuccessor(lower))
    }

    private static let reservedEnd: [UInt8] = [EngineKey.reservedByte, EngineKey.reservedByte]

    /// Walks the rows of `shard` in `lower..<upper` after `cursor` that the shard owns, calling
    /// `body` with each engine key until it returns false.
    func forEachRowKey(
        _ shard: IndexShard, owners: [UInt16], after cursor: [UInt8]?, lower: [UInt8]?, upper: [UInt8]?,
        _ body: (UnsafeRawBufferPointer) -> Bool
    ) throws(KVError) {
        let it = try shard.db.makeIterator()
        if let cursor, lower.map({ compareBytes(cursor, $0) >= 0 }) ?? true {
            try it.seek(cursor + [0])
        } else if let lower {
            try it.seek(lower)
        } else {
            try it.seekToFirst()
        }
        while it.isValid {
            let k = it.keyView
            if let upper, upper.withUnsafeBytes({ compareBytes(k, $0) }) >= 0 { return }
            if case .reserved = EngineKey.kind(k) {
                try it.seek(Self.reservedEnd)
                continue
            }
            if Int(owners[EngineKey.slot(ofRow: k)]) == shard.id {
                if !body(k) { return }
            }
            try it.next()
        }
    }

    func countRows(_ shard: IndexShard, owners: [UInt16], after cursor: [UInt8]?, lower: [UInt8]?, upper: [UInt8]?) throws(KVError) -> Int {
        var n = 0
        try forEachRowKey(shard, owners: owners, after: cursor, lower: lower, upper: upper) { _ in
            n += 1
            return true
        }
        return n
    }

    /// Back-fills one shard from its cursor; returns false when stopped (drop, close, halt).
    func buildShard(
        _ h: IndexHandle, _ shard: IndexShard, owners: [UInt16], fill: IndexMetadata.Fill?, lower: [UInt8]?, upper: [UInt8]?,
        _ host: any IndexHost
    ) throws(KVError) -> Bool {
        var cursor = fill?.cursor
        var rowsDone = fill?.rowsDone ?? 0
        var batches = 0
        let db = shard.db
        while true {
            if h.cancelled.load(ordering: .acquiring) || host.isStopping { return false }
            var keys: [[UInt8]] = []
            keys.reserveCapacity(Self.chunk)
            try forEachRowKey(shard, owners: owners, after: cursor, lower: lower, upper: upper) { k in
                keys.append(Array(k))
                return keys.count < Self.chunk
            }
            if keys.isEmpty { break }
            var start = 0
            while start < keys.count {
                if h.cancelled.load(ordering: .acquiring) || host.isStopping { return false }
                let group = keys[start..<min(start + Self.group, keys.count)]
                start += group.count
                let slots = group.map { $0.withUnsafeBytes { EngineKey.slot(ofRow: $0) } }
                let added = try host.withKeyLocks(slots: slots) { () throws(KVError) -> Int in
                    // With the group's keys locked, a fresh iterator reads their current rows
                    // (a sequential walk instead of a point read per row).
                    var batch = WriteBatch()
                    var added = 0
                    try forEachCurrentRow(db, of: group) { (user, value) throws(KVError) in
                        guard let (n, t) = RowValue.parse(value) else { throw RowValue.damaged(user) }
                        let payload = UnsafeRawBufferPointer(rebasing: value[..<n])
                        let found: (value: IndexValue, key: [UInt8])?
                        switch (h.definition.source, RowValue.type(value)) {
                        case (.json, .string):
                            found = h.entry(key: user, value: payload)
                        case (.hash, .hash):
                            // The field's element record, in the same shard.
                            let meta = try CollectionMeta.decode(Array(payload), type: .hash, key: user)
                            let k = CollectionLayout.elementKey(CollectionLayout.elementPrefix(user, version: meta.version),
                                                                kind: CollectionLayout.memberKind, Array(h.definition.field.utf8))
                            found = try db.get(k).flatMap { h.entry(key: user, value: $0) }
                        default:
                            found = nil
                        }
                        guard let entry = found else { return }
                        var envelope: [UInt8] = []
                        RowValue.appendTrailer(t, to: &envelope)
                        batch.put(entry.key, envelope)
                        added += 1
                    }
                    rowsDone += group.count
                    batch.put(IndexMetadata.fillKey(h.id), IndexMetadata.encode(IndexMetadata.Fill(cursor: group.last!, rowsDone: rowsDone)))
                    try db.commit(batch, durability: .no)
                    return added
                }
                h.entries.add(added, ordering: .relaxed)
                h.rowsDone.add(group.count, ordering: .relaxed)
                batches += 1
                if checkpoint(.filled(shard: shard.id, batch: batches), host) { return false }
            }
            cursor = keys.last
        }
        if h.cancelled.load(ordering: .acquiring) || host.isStopping { return false }
        var batch = WriteBatch()
        batch.put(
            IndexMetadata.definitionKey(h.id),
            IndexMetadata.encode(IndexMetadata.Definition(id: h.id, state: .ready, definition: h.definition)))
        batch.delete(IndexMetadata.fillKey(h.id))
        try db.commit(batch, durability: .always)
        return !checkpoint(.shardReady(shard: shard.id), host)
    }

    /// Calls `body` with the user key and engine value of every row of `keys` (ascending row
    /// engine keys) that `db` holds now; keys deleted since are skipped, and so are rows in
    /// between that are not in `keys` (written since, by writes that maintain the index).
    func forEachCurrentRow(
        _ db: Database, of keys: ArraySlice<[UInt8]>, _ body: ([UInt8], UnsafeRawBufferPointer) throws(KVError) -> Void
    ) throws(KVError) {
        guard let first = keys.first else { return }
        let it = try db.makeIterator()
        try it.seek(first)
        var next = keys.startIndex
        while it.isValid && next < keys.endIndex {
            let k = it.keyView
            if case .reserved = EngineKey.kind(k) {
                try it.seek(Self.reservedEnd)
                continue
            }
            var c = keys[next].withUnsafeBytes { compareBytes($0, k) }
            while c < 0 {
                next += 1
                if next == keys.endIndex { return }
                c = keys[next].withUnsafeBytes { compareBytes($0, k) }
            }
            if c == 0 {
                try body(EngineKey.decodeRow(k), it.valueView)
                next += 1
            }
            try it.next()
        }
    }

    /// Makes the entry count of a just-built index exact: with every key-lock stripe held (no
    /// write in flight, so every write so far has applied its count change), takes a store
    /// snapshot and restarts the count from zero; writes after it change the count exactly,
    /// since every indexed row now has its entry. Then adds the entries at the snapshot.
    func recountEntries(_ h: IndexHandle, _ host: any IndexHost) throws(KVError) {
        var snap: IndexSnapshot?
        host.withAllKeyLocks {
            snap = host.indexSnapshot()
            h.entries.store(0, ordering: .relaxed)
        }
        guard let snap else { return }
        defer { snap.release() }
        var n = 0
        let upper = prefixSuccessor(h.entryPrefix)!
        for shard in snap.layout.shards {
            let it = try shard.db.makeIterator(snapshot: snap.snapshots[shard.id])
            try it.seek(h.entryPrefix)
            while it.isValid, upper.withUnsafeBytes({ compareBytes(it.keyView, $0) }) < 0 {
                if let user = IndexKeys.userKey(ofEntry: it.keyView), Int(snap.layout.owners[HashSlot.slot(of: user)]) == shard.id {
                    n += 1
                }
                try it.next()
            }
        }
        h.entries.add(n, ordering: .relaxed)
    }

    // MARK: drop

    /// Deletes the entries and records of dropped index `id` from `shards`, shard 0 last (its
    /// record says the drop is unfinished until then).
    func runDrop(id: UInt32, shards: [Int], _ host: any IndexHost) throws(KVError) {
        keyLockBarrier(host)
        let routing = try host.indexLayout()
        let prefix = IndexKeys.indexPrefix(id)
        let upper = prefixSuccessor(prefix)!
        var batches = 0
        for shardID in shards.sorted(by: >) {
            let shard = routing.shards[shardID]
            let it = try shard.db.makeIterator()
            try it.seek(prefix)
            var batch = WriteBatch()
            while it.isValid, upper.withUnsafeBytes({ compareBytes(it.keyView, $0) }) < 0 {
                batch.delete(Array(it.keyView))
                if batch.approximateSize >= Self.dropBatchBytes {
                    if host.isStopping { return }
                    try shard.db.commit(batch, durability: .no)
                    batch.removeAll()
                    batches += 1
                    if checkpoint(.purged(shard: shardID, batch: batches), host) { return }
                }
                try it.next()
            }
            if host.isStopping { return }
            batch.delete(IndexMetadata.fillKey(id))
            batch.delete(IndexMetadata.statsKey(id))
            batch.delete(IndexMetadata.definitionKey(id))
            try shard.db.commit(batch, durability: .always)
            batches += 1
            if checkpoint(.purged(shard: shardID, batch: batches), host) { return }
        }
    }
}
