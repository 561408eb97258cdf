import KVBase
import KVEngine
import KVFileSystem
import KVLayout
import Synchronization

extension ShardedStore {
    static let lockFileName = "LOCK"

    /// Opens a store without starting the cleanup of an interrupted reshard, so a test can
    /// install hooks first and then start it with ``resumeCleanup()``.
    package static func openDeferringCleanup(at path: String, shards: Int? = nil, options: Options) throws -> ShardedStore {
        try openStore(at: path, shards: shards, options: options, startingCleanup: false)
    }

    /// Starts the pending cleanup (see ``openDeferringCleanup(at:shards:options:)``).
    package func resumeCleanup() {
        startCleanup()
        startIndexWork()
    }

    static func openStore(
        at path: String, shards requested: Int?, options: Options, startingCleanup: Bool = true, followingLeader: Bool = false,
        commitFeed: (any CommitFeed)? = nil
    ) throws(KVError) -> ShardedStore {
        try options.validate()
        if let n = requested, n < 1 || n > maxShards {
            throw .invalidArgument("shard count must be between 1 and \(maxShards), got \(n)")
        }
        let fs = options.fileSystem
        if !fs.fileExists(path) {
            guard options.createIfMissing else { throw .notFound("store directory \(path)") }
            try fs.createDirectory(path)
            try fs.syncDirectory(parentDirectory(path))
        }
        let lock = try fs.lockFile(joinPath(path, lockFileName))
        do throws(KVError) {
            let file = joinPath(path, StoreDescriptor.fileName)
            if fs.fileExists(file + ".tmp") { try? fs.removeFile(file + ".tmp") }
            let descriptor: StoreDescriptor
            if let d = try StoreDescriptor.read(fs: fs, directory: path) {
                if options.errorIfExists { throw .invalidArgument("store \(path) already exists and errorIfExists is set") }
                try checkLayout(d, path: path, file: file, requested: requested)
                descriptor = d
            } else {
                guard options.createIfMissing else { throw .notFound("store descriptor \(file)") }
                guard let n = requested else {
                    throw .invalidArgument("store \(path) does not exist; a shard count is needed to create it")
                }
                descriptor = try create(at: path, shards: n, options: options)
            }
            let plan = recoveryPlan(descriptor)
            var shards: [Shard?] = Array(repeating: nil, count: descriptor.directories.count)
            for id in 0..<descriptor.shardCount {
                shards[id] = try openShard(id, in: path, options: options, create: false, feed: commitFeed)
            }
            let store = ShardedStore(
                path: path, options: options, lock: lock, descriptor: descriptor, shards: shards, cleanup: plan,
                commitFeed: commitFeed)
            store.followingLeader.store(followingLeader, ordering: .relaxed)
            do throws(KVError) {
                try store.loadIndexes(lenient: followingLeader)
                try store.recoverTransactions()
            } catch {
                _ = try? store.closeStore()
                throw error
            }
            if startingCleanup {
                store.startCleanup()
                store.startIndexWork()
            }
            return store
        } catch {
            lock.unlock()
            throw error
        }
    }

    /// Refuses descriptors this build would misroute, and a shard count other than the one in
    /// force after recovery (a copy phase rolls back to `shardCount`, a cleaning phase is
    /// already switched to it).
    static func checkLayout(_ d: StoreDescriptor, path: String, file: String, requested: Int?) throws(KVError) {
        if d.slotCount != HashSlot.count {
            throw .invalidState(
                "store \(path): descriptor \(file) routes keys into \(d.slotCount) hash slots; this build uses \(HashSlot.count), so it cannot open the store")
        }
        if let n = requested, n != d.shardCount {
            let pending = d.phase == .stable ? "" : " (after resolving an interrupted reshard)"
            throw .invalidArgument(
                "store \(path) has \(d.shardCount) shards\(pending) according to \(file), but \(n) were requested; open it with shards: \(d.shardCount) or nil and call setShardCount(\(n)) to reshard")
        }
    }

    /// Creates the shards and the first descriptor of a new store. Shard directories found
    /// without a descriptor are leftovers of a creation that crashed before writing it (no
    /// write can reach a store before its descriptor exists); they are removed, unless one
    /// holds data, which is refused.
    static func create(at path: String, shards n: Int, options: Options) throws(KVError) -> StoreDescriptor {
        let fs = options.fileSystem
        for name in try fs.listDirectory(path) where isShardDirectoryName(name) {
            let dir = joinPath(path, name)
            var probe = options
            probe.createIfMissing = false
            probe.errorIfExists = false
            if fs.fileExists(joinPath(dir, "CURRENT")) {
                let db = try openDatabase(dir, options: probe)
                let it = try db.makeIterator()
                try it.seekToFirst()
                let empty = !it.isValid
                try closeDatabase(db)
                if !empty {
                    throw .invalidState(
                        "store \(path) has no descriptor (\(StoreDescriptor.fileName)) but its shard directory \(dir) holds data; refusing to guess its layout")
                }
            }
            try removeDirectory(dir, fs: fs)
        }
        try fs.syncDirectory(path)
        for id in 0..<n {
            try closeDatabase(try openShard(id, in: path, options: options, create: true).db)
        }
        let d = StoreDescriptor(
            generation: 1, shardCount: n, directories: (0..<n).map(StoreDescriptor.directoryName),
            owners: HashRing.owners(shardCount: n))
        do throws(StoreDescriptor.WriteFailure) {
            try d.write(fs: fs, directory: path)
        } catch {
            throw error.error
        }
        return d
    }

    /// What recovery must do for a descriptor left in the middle of a reshard.
    static func recoveryPlan(_ d: StoreDescriptor) -> CleanupPlan? {
        if d.phase == .stable { return nil }
        // Copying: the targets (new owners) may hold copies of slots they do not own.
        // Cleaning: the sources (previous owners) still hold the moved slots' keys.
        // Either way the shards named by `otherOwners` for changed slots get purged.
        var dirty = Set<Int>()
        for slot in 0..<d.slotCount where d.owners[slot] != d.otherOwners[slot] {
            dirty.insert(Int(d.otherOwners[slot]))
        }
        return CleanupPlan(
            purge: dirty.filter { $0 < d.shardCount }.sorted(),
            remove: Array(d.shardCount..<d.directories.count),
            owners: d.owners, count: d.shardCount)
    }

    static func isShardDirectoryName(_ name: String) -> Bool {
        name.hasPrefix("shard-") && name.count == 10 && name.dropFirst(6).allSatisfy(\.isASCII) && Int(name.dropFirst(6)) != nil
    }

    /// Opens (with `create`, creates) shard `id` of the store in `path`.
    static func openShard(_ id: Int, in path: String, options: Options, create: Bool, feed: (any CommitFeed)? = nil) throws(KVError) -> Shard {
        var o = options
        if let feed { o.commitObserver = { [feed] batch in feed.committed(shard: id, batch: batch) } }
        o.createIfMissing = create
        o.errorIfExists = false
        let user = options.compactionFilter
        o.compactionFilter = { key, value in
            if ShardedStore.expiryFilter(key, value) { return true }
            return user?(key, value) ?? false
        }
        let lastVerdict = OrphanVerdict()
        o.compactionLookupFilter = { key, _, lookup in
            ShardedStore.orphanFilter(key, lookup, lastVerdict)
        }
        let dir = joinPath(path, StoreDescriptor.directoryName(id))
        if !create && !o.fileSystem.fileExists(dir) {
            throw .notFound("shard \(id) directory \(dir) of store \(path)")
        }
        let db = try openDatabase(dir, options: o)
        feed?.shardOpened(id, lastSequence: db.lastSequence)
        return Shard(id: id, path: dir, db: db)
    }

    static func openDatabase(_ dir: String, options: Options) throws(KVError) -> Database {
        do {
            return try Database.open(at: dir, options: options)
        } catch let e as KVError {
            throw e
        } catch {
            throw .invalidState("opening \(dir): \(error)")
        }
    }

    static func closeDatabase(_ db: Database) throws(KVError) {
        do {
            try db.close()
        } catch let e as KVError {
            throw e
        } catch {
            throw .invalidState("closing \(db.path): \(error)")
        }
    }

    /// Deletes a shard directory and its files (engine directories are flat), then syncs the
    /// parent. Not an error when it does not exist.
    static func removeDirectory(_ dir: String, fs: any FileSystem) throws(KVError) {
        guard fs.fileExists(dir) else { return }
        for name in try fs.listDirectory(dir) {
            try fs.removeFile(joinPath(dir, name))
        }
        try fs.removeDirectory(dir)
        try fs.syncDirectory(parentDirectory(dir))
    }

    func closeStore() throws(KVError) {
        let shards: [Shard]? = state.withLock { s in
            if s.closed { return nil }
            s.closed = true
            publishView(s)
            return s.shards.compactMap { $0 }
        }
        guard let shards else { return }
        // A running reshard, cleanup or index job stops at its next step (it checks `closed`);
        // a cleanup waiting for a removed shard's readers wakes now.
        for shard in shards { shard.events.signal() }
        events.wait { !state.withLock { $0.cleanup.running || $0.reshard.running } }
        indexManager.waitForWorkers()
        defer { lock.unlock() }
        var first: KVError?
        if !isHalted {
            do throws(KVError) { try persistIndexStatistics() } catch { first = error }
            do throws(KVError) { try cleanUpTransactions() } catch { first = first ?? error }
        }
        for shard in shards {
            do throws(KVError) { try Self.closeDatabase(shard.db) } catch { first = first ?? error }
        }
        if let first { throw first }
    }

    /// Test hook modelling the death of the process: stops background work and every shard's
    /// threads (``Database/haltForCrashTest()``) without further I/O. A reshard running on
    /// another thread must be stopped by its hook first.
    package func haltForCrashTest() {
        let shards = state.withLock { s in
            s.halted = true
            s.closed = true
            publishView(s)
            return s.shards.compactMap { $0 }
        }
        for shard in shards {
            shard.db.haltForCrashTest()
            shard.events.signal()
        }
        events.wait { !state.withLock { $0.cleanup.running } }
        indexManager.waitForWorkers()
    }
}
