import KVBase
import KVEngine
import KVLayout
import Synchronization

/// The secondary indexes of a store: creating and dropping them, loading their metadata at
/// open (and repairing it when a follower is promoted), their statistics, their part in
/// resharding, and the entry points of queries. The store calls it through a few methods and
/// it reaches the store through ``IndexHost``.
///
/// Owns the ``IndexCatalog`` (the live indexes, which the store's write path also reads
/// directly), the ``IndexBuilder`` running back-fills and drops, and whether an index change
/// (create or drop) is writing metadata, which excludes resharding.
///
/// Thread safety: every method may be called from any thread. Index changes are serialized by
/// the catalog's `ddl` mutex; the change flag sits in a mutex of its own, taken after the
/// store's mutex when both are held (see ``IndexHost``).
package final class IndexManager: Sendable {
    /// Most indexes a store holds at once.
    package static let maxIndexes = 64

    /// The live indexes.
    package let catalog: IndexCatalog
    let builder = IndexBuilder()
    /// A createIndex or dropIndex is writing index metadata: no reshard may start.
    private let changeRunning = Mutex(false)

    /// Creates the manager of the indexes in `catalog` (empty until ``load(_:lenient:)``).
    package init(catalog: IndexCatalog) {
        self.catalog = catalog
    }

    // MARK: what the store's public API forwards to

    /// Every index (building or ready), sorted by name.
    package func infos() -> [IndexInfo] {
        catalog.set.all.map { $0.info() }
    }

    /// The description of index `name`.
    package func info(_ name: String) throws(KVError) -> IndexInfo {
        guard let h = catalog.set.named(name) else { throw .notFound("no such index '\(name)'") }
        return h.info()
    }

    /// Waits until no index work runs; throws the error that stopped a back-fill or a drop.
    package func waitForWork() throws(KVError) {
        try builder.waitForWorkers()
        for h in catalog.set.all {
            if let f = h.failure.withLock({ $0 }) { throw f }
        }
        if let f = builder.workFailure { throw f }
    }

    /// Installs the crash-test hook of index background work.
    package func setHook(_ hook: (@Sendable (IndexStep) -> Bool)?) {
        builder.setHook(hook)
    }

    /// The id of a live index.
    package func id(of name: String) -> UInt32? {
        catalog.set.named(name)?.id
    }

    /// Whether a back-fill or drop thread is alive (close and crash halts wait for none).
    package var hasWorkers: Bool { builder.hasWorkers }

    /// Returns once no back-fill or drop worker runs; `stop()` is called at every wake-up
    /// and ends the wait by throwing.
    package func waitForWorkers(orStop stop: () throws(KVError) -> Void) throws(KVError) {
        try builder.waitForWorkers(orStop: stop)
    }

    /// Returns once no back-fill or drop worker runs.
    package func waitForWorkers() {
        builder.events.wait { !builder.hasWorkers }
    }

    // MARK: create and drop

    /// Creates an index (see `ShardedStore.createIndex(_:)`).
    package func create(_ definition: IndexDefinition, _ host: any IndexHost) throws(KVError) {
        let def = definition.normalized
        try def.validate()
        try catalog.ddl.withLock { (_) throws(KVError) in
            let routing = try beginChange("create", host)
            defer { changeRunning.withLock { $0 = false } }
            let live = catalog.set
            if live.named(def.name) != nil { throw .invalidArgument("index '\(def.name)' already exists") }
            if live.all.count >= Self.maxIndexes {
                throw .invalidArgument("a store holds at most \(Self.maxIndexes) indexes; drop one first")
            }
            let id = catalog.nextID.load(ordering: .relaxed)
            guard id < UInt32.max else { throw .invalidState("store \(host.path): index ids are exhausted") }
            // The id is spent even if the writes below fail.
            catalog.nextID.store(id + 1, ordering: .relaxed)
            let record = IndexMetadata.encode(IndexMetadata.Definition(id: id, state: .building, definition: def))
            // Shard 0's record is the commit point: written last, so an interrupted create
            // leaves records only in other shards, which the next open removes.
            for shard in routing.shards.reversed() {
                var batch = WriteBatch()
                batch.put(IndexMetadata.definitionKey(id), record)
                batch.put(IndexMetadata.nextKey, IndexMetadata.encodeNext(id + 1))
                try shard.db.commit(batch, durability: .always)
            }
            let handle = IndexHandle(id: id, definition: def, building: true)
            builder.markBuilding(def.name)
            catalog.publish(live.all + [handle])
            builder.start(.build(handle, shards: routing.shards.map { IndexBuildShard(shard: $0.id, fill: nil) }), host)
        }
    }

    /// Drops an index (see `ShardedStore.dropIndex(_:)`).
    package func drop(_ name: String, _ host: any IndexHost) throws(KVError) {
        try catalog.ddl.withLock { (_) throws(KVError) in
            let live = catalog.set
            guard let handle = live.named(name) else { throw .notFound("no such index '\(name)'") }
            let routing = try beginChange("drop", host)
            defer { changeRunning.withLock { $0 = false } }
            // Stop a running back-fill first, so that nothing writes this index's metadata
            // after the drop is recorded. Writes keep maintaining the index until then.
            handle.cancelled.store(true, ordering: .releasing)
            builder.events.wait { !handle.builderRunning.load(ordering: .acquiring) }
            // Shard 0's record is the commit point: once it says dropping, the next open
            // finishes the drop.
            var batch = WriteBatch()
            batch.put(
                IndexMetadata.definitionKey(handle.id),
                IndexMetadata.encode(IndexMetadata.Definition(id: handle.id, state: .dropping, definition: handle.definition)))
            do throws(KVError) {
                try routing.shards[0].db.commit(batch, durability: .always)
            } catch {
                if handle.isBuilding {
                    handle.failure.withLock { $0 = .invalidState("the back-fill stopped for a drop that failed (\(error)); reopen the store to resume it") }
                }
                throw error
            }
            catalog.publish(live.all.filter { $0 !== handle })
            builder.unmarkBuilding(name)
            builder.start(.drop(id: handle.id, name: name, shards: routing.shards.map(\.id)), host)
        }
    }

    /// Marks an index change as running; refuses it while the store is closed or resharding.
    func beginChange(_ verb: String, _ host: any IndexHost) throws(KVError) -> IndexLayout {
        try host.excludingReshard(verb) { (layout) throws(KVError) -> IndexLayout in
            changeRunning.withLock { $0 = true }
            return layout
        }
    }

    // MARK: open and close

    /// The index metadata records of every shard.
    struct ShardMetadata {
        var defs: [[UInt32: IndexMetadata.Definition]] = []
        var fills: [[UInt32: IndexMetadata.Fill]] = []
        var stats: [UInt32: IndexMetadata.Stats] = [:]
        var next: UInt32 = 1
    }

    /// Reads the `idx.` records of every shard of `routing`; a damaged or unknown record
    /// fails naming its shard.
    func readMetadata(_ routing: IndexLayout) throws(KVError) -> ShardMetadata {
        var m = ShardMetadata()
        for shard in routing.shards {
            var d: [UInt32: IndexMetadata.Definition] = [:]
            var f: [UInt32: IndexMetadata.Fill] = [:]
            let it = try shard.db.makeIterator()
            try it.seek(IndexMetadata.namespace)
            while it.isValid, it.keyView.starts(with: IndexMetadata.namespace) {
                let key = Array(it.keyView)
                switch IndexMetadata.decode(key: key, value: Array(it.valueView)) {
                case .failure(let e):
                    throw .corruption(
                        file: shard.path, offset: 0, reason: "index metadata record \(printable(key)) of shard \(shard.id): \(e.reason)")
                case .success(.next(let n)): m.next = max(m.next, n)
                case .success(.definition(let def)):
                    d[def.id] = def
                    m.next = max(m.next, def.id &+ 1)
                case .success(.fill(let id, let fill)): f[id] = fill
                case .success(.stats(let id, let st)): if shard.id == 0 { m.stats[id] = st }
                }
                try it.next()
            }
            m.defs.append(d)
            m.fills.append(f)
        }
        return m
    }

    /// Reads the index metadata of every shard, checks that the shards agree, publishes the
    /// live indexes and queues the work left by a crash (back-fills to resume, drops to finish).
    ///
    /// Shard 0 is authoritative: an index it defines (not dropping) must be defined the same
    /// way in every shard, otherwise the open fails naming the shard. Records other shards
    /// hold for an index shard 0 does not define (an interrupted create or drop) are removed.
    ///
    /// A store following a leader (`lenient`) holds metadata as replication brought it, each
    /// shard at its own point of the leader's history: it publishes the indexes shard 0
    /// defines and no shard is dropping, as building while any shard is building or still
    /// lacks the definition, and queues no work (the leader's writes bring the entries).
    package func load(_ host: any IndexHost, lenient: Bool = false) throws(KVError) {
        let routing = host.lastIndexLayout()
        let m = try readMetadata(routing)
        let defs = m.defs
        var handles: [IndexHandle] = []
        var jobs: [IndexJob] = []
        let ids = Set(defs.flatMap(\.keys)).sorted()
        for id in ids {
            if lenient {
                guard let authority = defs[0][id], !defs.contains(where: { $0[id]?.state == .dropping }),
                      !handles.contains(where: { $0.name == authority.definition.name }) else { continue }
                let building = defs.contains { $0[id] == nil || $0[id]!.state == .building || $0[id]!.definition != authority.definition }
                handles.append(handle(id, authority.definition, building: building, m.stats[id]))
                continue
            }
            guard let authority = defs[0][id], authority.state != .dropping else {
                let holders = routing.shards.indices.filter { defs[$0][id] != nil }
                let name = holders.first.map { defs[$0][id]!.definition.name } ?? ""
                jobs.append(.drop(id: id, name: name, shards: holders))
                continue
            }
            let def = authority.definition
            var building: [IndexBuildShard] = []
            for shard in routing.shards {
                guard let mine = defs[shard.id][id] else {
                    throw .corruption(
                        file: shard.path, offset: 0,
                        reason: "index '\(def.name)' (id \(id)) is defined in shard 0 but not in shard \(shard.id); the shards disagree")
                }
                if mine.definition != def || mine.state == .dropping {
                    throw .corruption(
                        file: shard.path, offset: 0,
                        reason: "index '\(def.name)' (id \(id)) is defined differently in shard \(shard.id) than in shard 0 (\(describe(mine)) vs \(describe(authority)))")
                }
                if mine.state == .building { building.append(IndexBuildShard(shard: shard.id, fill: m.fills[shard.id][id])) }
            }
            if handles.contains(where: { $0.name == def.name }) {
                throw .corruption(file: routing.shards[0].path, offset: 0, reason: "two indexes are named '\(def.name)' in shard 0")
            }
            let h = handle(id, def, building: !building.isEmpty, m.stats[id])
            handles.append(h)
            if !building.isEmpty { jobs.append(.build(h, shards: building)) }
        }
        catalog.nextID.store(m.next, ordering: .relaxed)
        catalog.publish(handles)
        builder.reset(building: Set(handles.filter(\.isBuilding).map(\.name)), pending: jobs)
    }

    private func handle(_ id: UInt32, _ def: IndexDefinition, building: Bool, _ stats: IndexMetadata.Stats?) -> IndexHandle {
        let h = IndexHandle(id: id, definition: def, building: building)
        if let s = stats {
            h.entries.store(s.entries, ordering: .relaxed)
            h.queries.store(s.queries, ordering: .relaxed)
            h.results.store(s.results, ordering: .relaxed)
        }
        return h
    }

    /// Makes the index metadata a follower holds consistent before it starts taking writes:
    /// every index shard 0 defines (and is not dropping) gets its definition in every shard,
    /// as building where a shard lacked it, disagreed or was dropping, so the strict load that
    /// follows resumes those shards' back-fills from the start.
    package func repairFollowerMetadata(_ host: any IndexHost) throws(KVError) {
        let routing = host.lastIndexLayout()
        let m = try readMetadata(routing)
        for (id, authority) in m.defs[0] where authority.state != .dropping {
            for shard in routing.shards {
                let mine = m.defs[shard.id][id]
                if let mine, mine.definition == authority.definition, mine.state != .dropping { continue }
                var batch = WriteBatch()
                batch.put(IndexMetadata.definitionKey(id), IndexMetadata.encode(IndexMetadata.Definition(id: id, state: .building, definition: authority.definition)))
                batch.delete(IndexMetadata.fillKey(id))
                try shard.db.commit(batch, durability: .always)
            }
        }
    }

    private func describe(_ d: IndexMetadata.Definition) -> String {
        let p = d.definition.keyPrefix.map { " prefix \(printable($0))" } ?? ""
        return "'\(d.definition.name)' field '\(d.definition.field)' \(d.definition.type.rawValue)\(p) \(d.state)"
    }

    /// Starts the work queued by ``load(_:lenient:)``.
    package func startWork(_ host: any IndexHost) {
        builder.startPending(host)
    }

    /// Records the statistics of every live index in shard 0 (at close).
    package func persistStatistics(_ host: any IndexHost) throws(KVError) {
        try Self.persistStatistics(catalog.set.all, host.lastIndexLayout())
    }

    /// Records the statistics of `handles` in shard 0 of `layout` (at close and when a build
    /// ends).
    static func persistStatistics(_ handles: [IndexHandle], _ layout: IndexLayout) throws(KVError) {
        if handles.isEmpty { return }
        let shard0 = layout.shards[0]
        var batch = WriteBatch()
        for h in handles {
            let s = IndexMetadata.Stats(
                entries: h.entries.load(ordering: .relaxed), queries: h.queries.load(ordering: .relaxed),
                results: h.results.load(ordering: .relaxed))
            batch.put(IndexMetadata.statsKey(h.id), IndexMetadata.encode(s))
        }
        try shard0.db.commit(batch, durability: .always)
    }

    // MARK: resharding

    /// Refuses a reshard of the store in `path` while index definitions change or an index is
    /// building. Called under the store mutex by the reshard, which then marks itself running
    /// before releasing it, so no index change starts meanwhile (see ``beginChange(_:_:)``).
    package func checkAllowsReshard(path: String) throws(KVError) {
        if changeRunning.withLock({ $0 }) {
            throw .invalidState("store \(path): an index is being created or dropped; reshard when that is done")
        }
        if let name = builder.firstBuilding {
            let progress = catalog.set.named(name)?.progress ?? 0
            throw .invalidState("store \(path): index '\(name)' is still building (\(progress)%); reshard when it is ready")
        }
    }

    /// Copies the index definitions and the id counter of `source` (shard 0) to `target`, a
    /// shard a reshard adds, durably, before any row reaches it.
    package func copyMetadata(from source: Database, to target: Database) throws(KVError) {
        let it = try source.makeIterator()
        try it.seek(IndexMetadata.namespace)
        var batch = WriteBatch()
        while it.isValid, it.keyView.starts(with: IndexMetadata.namespace) {
            let k = Array(it.keyView)
            if k == IndexMetadata.nextKey || k.starts(with: IndexMetadata.definitionTag) {
                batch.put(k, Array(it.valueView))
            }
            try it.next()
        }
        if !batch.isEmpty { try target.commit(batch, durability: .always) }
    }
}
