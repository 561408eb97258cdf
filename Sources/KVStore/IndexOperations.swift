import KVBase
import KVEngine
import KVLayout

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

extension ShardedStore {
    /// Most indexes a store holds at once.
    public static let maxIndexes = 64

    /// Creates a secondary index and starts back-filling it over the existing rows in the
    /// background.
    ///
    /// The definition is written to every shard before this returns; from then on every write
    /// maintains the index. A background thread then walks each shard's rows (those under the
    /// key prefix) in batches, indexing each under its key's write lock, while reads and writes
    /// continue. Until it is done the index is ``IndexState/building`` (see
    /// ``indexInfo(_:)`` for the progress) and queries on it fail; ``waitForIndexes()`` waits
    /// for it. A crash during the back-fill resumes it when the store is reopened.
    ///
    /// - Throws: ``KVError/invalidArgument(_:)`` for a malformed definition (see
    ///   ``IndexDefinition/validate()``), `index 'NAME' already exists`, or more than
    ///   ``maxIndexes`` indexes; ``KVError/invalidState(_:)`` while a reshard runs;
    ///   ``KVError/closed``; the I/O error that stopped the metadata write.
    public func createIndex(_ definition: IndexDefinition) throws {
        try createIndexTyped(definition)
    }

    /// Drops an index: queries on it fail at once, writes stop maintaining it, and its entries
    /// are deleted in the background (a later index never sees them: index ids are never
    /// reused). A running back-fill of it is stopped first.
    ///
    /// - Throws: ``KVError/notFound(_:)`` `no such index 'NAME'`; ``KVError/invalidState(_:)``
    ///   while a reshard runs; ``KVError/closed``; the I/O error that stopped the metadata write.
    public func dropIndex(_ name: String) throws {
        try dropIndexTyped(name)
    }

    /// Every index (building or ready), sorted by name.
    public func indexes() -> [IndexInfo] {
        indexCatalog.set.all.map { $0.info() }
    }

    /// The definition, state, back-fill progress and statistics of an index.
    ///
    /// - Throws: ``KVError/notFound(_:)`` `no such index 'NAME'`.
    public func indexInfo(_ name: String) throws -> IndexInfo {
        guard let h = indexCatalog.set.named(name) else { throw KVError.notFound("no such index '\(name)'") }
        return h.info()
    }

    /// Waits until no index is building and the entries of dropped indexes are deleted.
    ///
    /// - Throws: the error that stopped a back-fill (it resumes when the store is reopened).
    public func waitForIndexes() throws {
        var wait: UInt32 = 100
        while state.withLock({ $0.indexWorkers > 0 }) {
            pause(microseconds: wait)
            wait = min(wait * 2, 10_000)
        }
        for h in indexCatalog.set.all {
            if let f = h.failure.withLock({ $0 }) { throw f }
        }
        if let f = indexCatalog.workFailure.withLock({ $0 }) { throw f }
    }

    /// Installs a hook called at each step of index background work; returning true halts the
    /// store there as a crash would (no further I/O), for crash tests.
    package func setIndexHook(_ hook: (@Sendable (IndexStep) -> Bool)?) {
        indexCatalog.hook.withLock { $0 = hook }
    }

    /// The id of a live index (tests inspect its entries).
    package func indexID(_ name: String) -> UInt32? {
        indexCatalog.set.named(name)?.id
    }

    // MARK: create and drop

    func createIndexTyped(_ definition: IndexDefinition) throws(KVError) {
        let def = definition.normalized
        try def.validateTyped()
        try indexCatalog.ddl.withLock { (_) throws(KVError) in
            let routing = try beginIndexChange("create")
            defer { state.withLock { $0.indexChangeRunning = false } }
            let live = indexCatalog.set
            if live.named(def.name) != nil { throw .invalidArgument("index '\(def.name)' already exists") }
            if live.all.count >= Self.maxIndexes {
                throw .invalidArgument("a store holds at most \(Self.maxIndexes) indexes; drop one first")
            }
            let id = indexCatalog.nextID.load(ordering: .relaxed)
            guard id < UInt32.max else { throw .invalidState("store \(path): index ids are exhausted") }
            // The id is spent even if the writes below fail.
            indexCatalog.nextID.store(id + 1, ordering: .relaxed)
            let record = IndexMetadata.encode(IndexMetadata.Definition(id: id, state: .building, definition: def))
            // Shard 0's record is the commit point: written last, so an interrupted create
            // leaves records only in other shards, which the next open removes.
            for shard in routing.shards.reversed() {
                var batch = WriteBatch()
                batch.put(IndexMetadata.definitionKey(id), record)
                batch.put(IndexMetadata.nextKey, IndexMetadata.encodeNext(id + 1))
                try shard.db.commitTyped(batch, durability: .always)
            }
            let handle = IndexHandle(id: id, definition: def, building: true)
            state.withLock { _ = $0.indexesBuilding.insert(def.name) }
            indexCatalog.publish(live.all + [handle])
            startIndexJob(.build(handle, shards: routing.shards.map { IndexBuildShard(shard: $0.id, fill: nil) }))
        }
    }

    func dropIndexTyped(_ name: String) throws(KVError) {
        try indexCatalog.ddl.withLock { (_) throws(KVError) in
            let live = indexCatalog.set
            guard let handle = live.named(name) else { throw .notFound("no such index '\(name)'") }
            let routing = try beginIndexChange("drop")
            defer { state.withLock { $0.indexChangeRunning = false } }
            // Stop a running back-fill first, so that nothing writes this index's metadata
            // after the drop is recorded. Writes keep maintaining the index until then.
            handle.cancelled.store(true, ordering: .releasing)
            var wait: UInt32 = 50
            while handle.builderRunning.load(ordering: .acquiring) {
                pause(microseconds: wait)
                wait = min(wait * 2, 5_000)
            }
            // Shard 0's record is the commit point: once it says dropping, the next open
            // finishes the drop.
            var batch = WriteBatch()
            batch.put(
                IndexMetadata.definitionKey(handle.id),
                IndexMetadata.encode(IndexMetadata.Definition(id: handle.id, state: .dropping, definition: handle.definition)))
            do throws(KVError) {
                try routing.shards[0].db.commitTyped(batch, durability: .always)
            } catch {
                if handle.isBuilding {
                    handle.failure.withLock { $0 = .invalidState("the back-fill stopped for a drop that failed (\(error)); reopen the store to resume it") }
                }
                throw error
            }
            indexCatalog.publish(live.all.filter { $0 !== handle })
            state.withLock { _ = $0.indexesBuilding.remove(name) }
            startIndexJob(.drop(id: handle.id, name: name, shards: routing.shards.map(\.id)))
        }
    }

    /// Marks an index change as running; refuses it while the store is closed or resharding.
    func beginIndexChange(_ verb: String) throws(KVError) -> Routing {
        try state.withLock { (s) throws(KVError) -> Routing in
            if s.closed { throw .closed }
            if s.reshardRunning || s.migration != nil || s.cleanup != nil {
                throw .invalidState("store \(path) is resharding; \(verb) the index after the reshard finishes")
            }
            s.indexChangeRunning = true
            return s.routing
        }
    }

    // MARK: open and close

    /// The index metadata records of every shard.
    struct ShardIndexMetadata {
        var defs: [[UInt32: IndexMetadata.Definition]] = []
        var fills: [[UInt32: IndexMetadata.Fill]] = []
        var stats: [UInt32: IndexMetadata.Stats] = [:]
        var next: UInt32 = 1
    }

    /// Reads the `idx.` records of every shard of `routing`; a damaged or unknown record
    /// fails naming its shard.
    func readIndexMetadata(_ routing: Routing) throws(KVError) -> ShardIndexMetadata {
        var m = ShardIndexMetadata()
        for shard in routing.shards {
            var d: [UInt32: IndexMetadata.Definition] = [:]
            var f: [UInt32: IndexMetadata.Fill] = [:]
            let it = try shard.db.makeIteratorTyped()
            try it.seekTyped(IndexMetadata.namespace)
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
                try it.nextTyped()
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
    func loadIndexes(lenient: Bool = false) throws(KVError) {
        let routing = state.withLock { $0.routing }
        let m = try readIndexMetadata(routing)
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
        indexCatalog.nextID.store(m.next, ordering: .relaxed)
        indexCatalog.publish(handles)
        let names = Set(handles.filter(\.isBuilding).map(\.name))
        state.withLock { $0.indexesBuilding = names }
        indexCatalog.pending.withLock { $0 = jobs }
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
    func repairFollowerIndexMetadata() throws(KVError) {
        let routing = state.withLock { $0.routing }
        let m = try readIndexMetadata(routing)
        for (id, authority) in m.defs[0] where authority.state != .dropping {
            for shard in routing.shards {
                let mine = m.defs[shard.id][id]
                if let mine, mine.definition == authority.definition, mine.state != .dropping { continue }
                var batch = WriteBatch()
                batch.put(IndexMetadata.definitionKey(id), IndexMetadata.encode(IndexMetadata.Definition(id: id, state: .building, definition: authority.definition)))
                batch.delete(IndexMetadata.fillKey(id))
                try shard.db.commitTyped(batch, durability: .always)
            }
        }
    }

    private func describe(_ d: IndexMetadata.Definition) -> String {
        let p = d.definition.keyPrefix.map { " prefix \(printable($0))" } ?? ""
        return "'\(d.definition.name)' field '\(d.definition.field)' \(d.definition.type.rawValue)\(p) \(d.state)"
    }

    /// Starts the work queued by ``loadIndexes()``.
    func startIndexWork() {
        let jobs = indexCatalog.pending.withLock { p -> [IndexJob] in
            defer { p = [] }
            return p
        }
        for job in jobs { startIndexJob(job) }
    }

    /// Records the statistics of every live index in shard 0 (at close and when a build ends).
    func persistIndexStatistics(_ handles: [IndexHandle]? = nil) throws(KVError) {
        let handles = handles ?? indexCatalog.set.all
        if handles.isEmpty { return }
        let shard0 = state.withLock { $0.routing.shards[0] }
        var batch = WriteBatch()
        for h in handles {
            let s = IndexMetadata.Stats(
                entries: h.entries.load(ordering: .relaxed), queries: h.queries.load(ordering: .relaxed),
                results: h.results.load(ordering: .relaxed))
            batch.put(IndexMetadata.statsKey(h.id), IndexMetadata.encode(s))
        }
        try shard0.db.commitTyped(batch, durability: .always)
    }

    // MARK: resharding

    /// Refuses a reshard while index definitions change or an index is building (called under
    /// the store mutex by `reshard(to:)`).
    func checkIndexesAllowReshard(_ s: State) throws(KVError) {
        if s.indexChangeRunning {
            throw .invalidState("store \(path): an index is being created or dropped; reshard when that is done")
        }
        if let name = s.indexesBuilding.sorted().first {
            let progress = indexCatalog.set.named(name)?.progress ?? 0
            throw .invalidState("store \(path): index '\(name)' is still building (\(progress)%); reshard when it is ready")
        }
    }

    /// Waits for index background work (the deletion of dropped indexes) to end.
    func waitForIndexWorkers() throws(KVError) {
        var wait: UInt32 = 100
        while try state.withLock({ (s) throws(KVError) -> Bool in
            if s.closed { throw .closed }
            return s.indexWorkers > 0
        }) {
            pause(microseconds: wait)
            wait = min(wait * 2, 10_000)
        }
    }

    /// Copies the index definitions and the id counter of shard 0 to a shard a reshard adds,
    /// durably, before any row reaches it.
    func copyIndexMetadata(to target: Shard) throws(KVError) {
        let source = state.withLock { $0.routing.shards[0] }
        let it = try source.db.makeIteratorTyped()
        try it.seekTyped(IndexMetadata.namespace)
        var batch = WriteBatch()
        while it.isValid, it.keyView.starts(with: IndexMetadata.namespace) {
            let k = Array(it.keyView)
            if k == IndexMetadata.nextKey || k.starts(with: IndexMetadata.definitionTag) {
                batch.put(k, Array(it.valueView))
            }
            try it.nextTyped()
        }
        if !batch.isEmpty { try target.db.commitTyped(batch, durability: .always) }
    }

}
