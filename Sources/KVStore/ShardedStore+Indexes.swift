import KVBase
import KVEngine
import KVIndex
import KVLayout

extension ShardedStore {
    /// Most indexes a store holds at once.
    public static let maxIndexes = IndexManager.maxIndexes

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
    public func createIndex(_ definition: IndexDefinition) throws(KVError) {
        try indexManager.create(definition, self)
    }

    /// Drops an index: queries on it fail at once, writes stop maintaining it, and its entries
    /// are deleted in the background (a later index never sees them: index ids are never
    /// reused). A running back-fill of it is stopped first.
    ///
    /// - Throws: ``KVError/notFound(_:)`` `no such index 'NAME'`; ``KVError/invalidState(_:)``
    ///   while a reshard runs; ``KVError/closed``; the I/O error that stopped the metadata write.
    public func dropIndex(_ name: String) throws(KVError) {
        try indexManager.drop(name, self)
    }

    /// Every index (building or ready), sorted by name.
    public func indexes() -> [IndexInfo] {
        indexManager.infos()
    }

    /// The definition, state, back-fill progress and statistics of an index.
    ///
    /// - Throws: ``KVError/notFound(_:)`` `no such index 'NAME'`.
    public func indexInfo(_ name: String) throws -> IndexInfo {
        try indexManager.info(name)
    }

    /// Waits until no index is building and the entries of dropped indexes are deleted.
    ///
    /// - Throws: the error that stopped a back-fill (it resumes when the store is reopened).
    public func waitForIndexes() throws {
        try indexManager.waitForWork()
    }

    /// Installs a hook called at each step of index background work; returning true halts the
    /// store there as a crash would (no further I/O), for crash tests.
    package func setIndexHook(_ hook: (@Sendable (IndexStep) -> Bool)?) {
        indexManager.setHook(hook)
    }

    /// The id of a live index (tests inspect its entries).
    package func indexID(_ name: String) -> UInt32? {
        indexManager.id(of: name)
    }

    /// Finds rows through a secondary index.
    ///
    /// Every shard's entries in the query's range are read at one store snapshot and merged
    /// into one sequence ordered by (indexed value, key): numbers ascending, strings bytewise,
    /// then keys bytewise. Each entry is checked against its row, read at the same snapshot:
    /// the row must exist, not be expired at ``now``, and its value must still produce that
    /// indexed value; so results are never stale or phantom, and deleted or expired rows never
    /// appear. `offset` rows are skipped, then at most `limit` are returned.
    ///
    /// Cost: O((offset + limit) × log of the entries per shard) reads, plus one point read per
    /// examined entry; no scan of the rows.
    ///
    /// ```swift
    /// let books = try store.query(index: "by_category", .equals("books"), limit: 100)
    /// let cheap = try store.query(index: "by_price", .range(lo: 10, hi: 20), withValues: true)
    /// ```
    ///
    /// - Parameters:
    ///   - index: the index name.
    ///   - query: ``IndexQuery/equals(_:)`` (either type), ``IndexQuery/prefix(_:)-enum.case``
    ///     (string indexes), ``IndexQuery/range(lo:hi:)`` (number indexes; inclusive, nil for
    ///     an open end; an empty range when `lo > hi`).
    ///   - offset: rows to skip first (0 or more).
    ///   - limit: most rows to return (0 or more); nil for all.
    ///   - withValues: also return each row's value.
    /// - Throws: ``KVError/notFound(_:)`` `no such index 'NAME'`; ``KVError/invalidState(_:)``
    ///   `index 'NAME' is still building (P%)`; ``KVError/invalidArgument(_:)`` when the query
    ///   does not fit the index's type (a prefix on a number index, a range on a string index,
    ///   an equality with the other type), for a NaN bound or a negative offset or limit;
    ///   storage errors.
    public func query(index: String, _ query: IndexQuery, offset: Int = 0, limit: Int? = nil, withValues: Bool = false) throws(KVError) -> [IndexHit] {
        try IndexQueryEngine.run(index: index, query, offset: offset, limit: limit, withValues: withValues, catalog: indexCatalog, self)
    }

    // MARK: what the rest of the store calls

    /// Reads the index metadata of every shard and publishes the live indexes; queues the work
    /// a crash left (see ``IndexManager/load(_:lenient:)``). `lenient` for a follower.
    func loadIndexes(lenient: Bool = false) throws(KVError) {
        try indexManager.load(self, lenient: lenient)
    }

    /// Makes a promoted follower's index metadata whole (see
    /// ``IndexManager/repairFollowerMetadata(_:)``).
    func repairFollowerIndexMetadata() throws(KVError) {
        try indexManager.repairFollowerMetadata(self)
    }

    /// Starts the index work queued by ``loadIndexes(lenient:)``.
    func startIndexWork() {
        indexManager.startWork(self)
    }

    /// Records every index's statistics in shard 0.
    func persistIndexStatistics() throws(KVError) {
        try indexManager.persistStatistics(self)
    }

    /// Refuses a reshard while an index changes or builds. Takes the store's `State` only to
    /// show that the caller holds the store mutex (the reshard marks itself running under it).
    func checkIndexesAllowReshard(_ s: State) throws(KVError) {
        try indexManager.checkAllowsReshard(path: path)
    }

    /// Waits for index background work (the deletion of dropped indexes) to end.
    func waitForIndexWorkers() throws(KVError) {
        try indexManager.waitForWorkers { () throws(KVError) in
            if state.withLock({ $0.closed }) { throw .closed }
        }
    }

    /// Copies shard 0's index definitions to a shard a reshard adds, before any row reaches it.
    func copyIndexMetadata(to target: Shard) throws(KVError) {
        let source = state.withLock { $0.routing.shards[0] }
        try indexManager.copyMetadata(from: source.db, to: target.db)
    }
}

/// What the indexes need of the store (see ``IndexHost``).
extension ShardedStore: IndexHost {
    package func indexLayout() throws(KVError) -> IndexLayout {
        try currentRouting().indexLayout
    }

    package func lastIndexLayout() -> IndexLayout {
        state.withLock { $0.routing.indexLayout }
    }

    package func indexSnapshot() -> IndexSnapshot {
        let snap = snapshot()
        return IndexSnapshot(layout: snap.routing.indexLayout, snapshots: snap.snapshots, release: { snap.release() })
    }

    package func withKeyLocks<R, E: Error>(slots: [Int], _ body: () throws(E) -> R) throws(E) -> R {
        try keyLocks.withLocks(slots: slots, body)
    }

    package func withAllKeyLocks(_ body: () -> Void) {
        keyLocks.withLocks(slots: Array(0..<KeyLocks.stripes), body)
    }

    package func ifOpen<R>(_ body: () -> R) -> R? {
        state.withLock { s in s.closed ? nil : body() }
    }

    package func excludingReshard<R>(_ verb: String, _ body: (IndexLayout) throws(KVError) -> R) throws(KVError) -> R {
        try state.withLock { (s) throws(KVError) -> R in
            if s.closed { throw .closed }
            if s.reshard.running || s.reshard.migration != nil || s.cleanup.plan != nil {
                throw .invalidState("store \(path) is resharding; \(verb) the index after the reshard finishes")
            }
            return try body(s.routing.indexLayout)
        }
    }

    package var isStopping: Bool {
        state.withLock { $0.closed || $0.halted }
    }

    package func halt() {
        state.withLock { $0.halted = true }
    }
}
