import KVBase
import KVEngine
import KVFileSystem
import KVLayout

/// Work left after an ownership switch (roll forward) or an abandoned copy phase (roll back):
/// delete the keys some shards hold for slots they do not own, delete the directories of
/// shards beyond the count in force, then record the store as stable.
struct CleanupPlan: Sendable {
    /// Shards (ids < `count`) to purge of keys of slots they do not own in `owners`.
    var purge: [Int]
    /// Shards (ids >= `count`) whose directories are deleted.
    var remove: [Int]
    /// The slot table in force.
    var owners: [UInt16]
    /// The shard count in force.
    var count: Int
}

extension ShardedStore {
    /// Bytes per batch when copying or deleting keys in bulk.
    static let bulkBatchBytes = 1 << 20

    /// Starts the pending cleanup on a background thread (on the calling thread when the
    /// store runs cleanups synchronously). No-op when there is none or it is already running.
    func startCleanup() {
        let (start, synchronous) = state.withLock { s -> (Bool, Bool) in
            guard s.cleanup.plan != nil, !s.cleanup.running, !s.closed else { return (false, false) }
            s.cleanup.running = true
            return (true, s.cleanup.synchronous)
        }
        guard start else { return }
        if synchronous {
            runCleanupLatchingError()
        } else {
            // The thread holds the store strongly until the cleanup ends or stops.
            startThread(name: "shale-cleanup") { [self] in runCleanupLatchingError() }
        }
    }

    /// Runs the pending cleanup (the caller has set `cleanupRunning`); a failure is latched
    /// for ``waitForReshard()`` and the cleanup is retried by the next reshard or open.
    func runCleanupLatchingError() {
        var failure: KVError?
        do throws(KVError) { try runCleanup() } catch { failure = error }
        state.withLock { s in
            if let failure, !s.closed { s.reshard.error = failure }
            s.cleanup.running = false
        }
        events.signal()
    }

    /// Purges the plan's shards, deletes its removed shards, then writes a stable descriptor.
    /// Every step is idempotent, so a crash anywhere leaves a descriptor under which recovery
    /// runs the same plan again.
    func runCleanup() throws(KVError) {
        guard let plan = state.withLock({ $0.cleanup.plan }) else { return }
        var deleted = 0
        for id in plan.purge {
            guard let shard = state.withLock({ id < $0.shards.count ? $0.shards[id] : nil }) else {
                throw .invalidState("store \(path): shard \(id) to clean up is not open")
            }
            deleted += try purgeForeignKeys(shard, owners: plan.owners)
        }
        for id in plan.remove {
            try checkpoint(.removingShard(id))
            if let shard = state.withLock({ id < $0.shards.count ? $0.shards[id] : nil }) {
                try waitForReaders(shard)
                try Self.closeDatabase(shard.db)
                state.withLock { $0.shards[id] = nil }
            }
            try Self.removeDirectory(joinPath(path, StoreDescriptor.directoryName(id)), fs: fs)
        }
        try checkpoint(.cleaned)
        var d = state.withLock { $0.descriptor }
        d.generation += 1
        d.phase = .stable
        d.shardCount = plan.count
        d.owners = plan.owners
        d.otherCount = 0
        d.otherOwners = []
        d.directories = Array(d.directories.prefix(plan.count))
        try writeDescriptor(d)
        state.withLock { s in
            s.descriptor = d
            s.shards = Array(s.shards.prefix(plan.count))
            s.cleanup.plan = nil
            s.cleanup.keysDeleted = deleted
        }
    }

    /// Deletes every key of `shard` whose slot it does not own in `owners`, then flushes so
    /// the deletions are durable before the descriptor says the store is clean. Returns the
    /// number deleted.
    func purgeForeignKeys(_ shard: Shard, owners: [UInt16]) throws(KVError) -> Int {
        let it = try shard.db.makeIterator()
        try it.seekToFirst()
        var batch = WriteBatch()
        var deleted = 0
        var batches = 0
        while it.isValid {
            let k = it.keyView
            if let slot = EngineKey.slot(of: k), Int(owners[slot]) != shard.id {
                batch.delete(Array(k))
                deleted += 1
                if batch.approximateSize >= Self.bulkBatchBytes {
                    try shard.db.commit(batch, durability: .no)
                    batch.removeAll()
                    batches += 1
                    try checkpoint(.purged(shard: shard.id, batch: batches))
                }
            }
            try it.next()
        }
        if !batch.isEmpty {
            try shard.db.commit(batch, durability: .no)
            try checkpoint(.purged(shard: shard.id, batch: batches + 1))
        }
        if deleted > 0 { try shard.db.flush() }
        return deleted
    }

    /// Waits until no store snapshot or scan reads `shard` (a release signals the shard's
    /// events; closing the store ends the wait with ``KVError/closed``).
    func waitForReaders(_ shard: Shard) throws(KVError) {
        defer { state.withLock { $0.cleanup.waitingForReaders = [] } }
        try shard.events.wait { () throws(KVError) -> Bool in
            if shard.readers.load(ordering: .acquiring) == 0 { return true }
            try state.withLock { (s) throws(KVError) in
                if s.closed { throw .closed }
                s.cleanup.waitingForReaders = [shard]
            }
            return false
        }
    }

    /// Writes `d` as the store descriptor.
    func writeDescriptor(_ d: StoreDescriptor) throws(KVError) {
        do throws(StoreDescriptor.WriteFailure) {
            try d.write(fs: fs, directory: path)
        } catch {
            throw error.error
        }
    }

    /// A step boundary of a reshard or cleanup: stops it when the store is closing or halted,
    /// and gives the crash-test hook its chance to halt the store here.
    func checkpoint(_ step: ReshardStep) throws(KVError) {
        let (hook, closed, halted) = state.withLock { ($0.reshard.hook, $0.closed, $0.halted) }
        if halted { throw .invalidState("store \(path) was halted") }
        if closed { throw .closed }
        if let hook, hook(step) {
            state.withLock { $0.halted = true }
            throw .invalidState("store \(path) halted at \(step) for a crash test")
        }
    }

    /// Whether the store was halted (crash tests): no I/O may follow.
    var isHalted: Bool { state.withLock { $0.halted } }
}
