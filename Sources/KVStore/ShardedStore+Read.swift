import KVBase
import KVEngine
import KVLayout

extension ShardedStore {
    /// The value stored under `key`, or nil if there is none (or it has expired). Reads only
    /// the shard that owns the key's slot.
    ///
    /// - Parameter snapshot: read as of this store snapshot instead of the latest state.
    ///
    /// - Throws: ``KVError/wrongType(key:)`` when the key holds a collection.
    public func get(_ key: [UInt8], snapshot: StoreSnapshot? = nil) throws(KVError) -> [UInt8]? {
        guard var raw = try rawGet(key, snapshot: snapshot) else { return nil }
        guard let (n, t) = raw.withUnsafeBytes({ RowValue.parse($0) }) else { throw RowValue.damaged(key) }
        if let t, t <= now { return nil }
        if raw[raw.count - 1] > RowValue.expiring { throw .wrongType(key: printable(key)) }
        raw.removeLast(raw.count - n)
        return raw
    }

    /// The value stored under a UTF-8 string key, or nil.
    public func get(_ key: String, snapshot: StoreSnapshot? = nil) throws(KVError) -> [UInt8]? {
        try get(Array(key.utf8), snapshot: snapshot)
    }

    /// Whether `key` has a live value.
    public func contains(_ key: [UInt8], snapshot: StoreSnapshot? = nil) throws(KVError) -> Bool {
        try get(key, snapshot: snapshot) != nil
    }

    /// Point read of the engine value of a user key. Without a snapshot, a read that overlaps
    /// an ownership switch (the routing generation changed while it ran) is retried against
    /// the new owner: the old owner's copy may already be deleted, or the shard closed.
    func rawGet(_ key: [UInt8], snapshot: StoreSnapshot?) throws(KVError) -> [UInt8]? {
        let slot = HashSlot.slot(of: key)
        if let snapshot {
            let owner = Int(snapshot.routing.owners[slot])
            return try Self.engineGet(snapshot.routing.shards[owner].db, key, snapshot: snapshot.snapshots[owner])
        }
        if transactions.ownedByCurrentThread, let buffered = EngineKey.encode(key).withUnsafeBytes({ transactions.buffered($0) }) {
            return buffered
        }
        waitForTransactionCommit()
        while true {
            let routing = try currentRouting()
            let value: [UInt8]?
            do throws(KVError) {
                value = try Self.engineGet(routing.shard(forSlot: slot).db, key, snapshot: nil)
            } catch {
                if routingGeneration.load(ordering: .acquiring) == routing.generation { throw error }
                continue
            }
            if routingGeneration.load(ordering: .acquiring) == routing.generation { return value }
        }
    }

    /// The engine value of user key `key` in `db`: no generic closure or `Result` on the way
    /// (a point read's hot path), the escaped engine key built only for a key starting 0xFF.
    @inline(__always)
    static func engineGet(_ db: Database, _ key: [UInt8], snapshot: Snapshot?) throws(KVError) -> [UInt8]? {
        if key.first == EngineKey.reservedByte { return try db.get(EngineKey.encode(key), snapshot: snapshot) }
        return try db.get(key, snapshot: snapshot)
    }

    /// A per-shard consistent view of the store: each shard is pinned at one sequence number
    /// and the slot table in force is remembered, so reads through the snapshot are unaffected
    /// by later writes, compactions and reshards. The shards are pinned one after the other,
    /// so this is not a global cut: a multi-shard batch committing meanwhile may be visible in
    /// some shards only. Release it (or drop it) promptly: it keeps old versions alive, and a
    /// shard removed by a reshard is deleted only when no snapshot reads it.
    public func snapshot() -> StoreSnapshot {
        // Under the store mutex so that the snapshot cannot straddle an ownership switch.
        // Database.snapshot() takes only the engine mutex and does no I/O. Retaken when a
        // transaction spanning shards committed meanwhile, so it never holds half of one.
        while true {
            waitForTransactionCommit()
            let epoch = transactions.epoch.load(ordering: .sequentiallyConsistent)
            let snap = state.withLock { s in
                StoreSnapshot(routing: s.routing, snapshots: s.routing.shards.map { $0.db.snapshot() })
            }
            if epoch & 1 == 0 && transactions.epoch.load(ordering: .sequentiallyConsistent) == epoch { return snap }
            if keyLocks.heldByCurrentThread { return snap }
        }
    }
}
