import KVBase
import KVEngine
import KVFileSystem
import KVLayout

/// The step boundaries of a reshard and its cleanup, where a test hook may halt the store to
/// model a crash (see `ShardedStore.setReshardHook(_:)`).
package enum ReshardStep: Sendable, Equatable, CustomStringConvertible {
    /// The copying descriptor is on disk; nothing copied yet.
    case intentWritten
    /// A bulk-copy batch was written to a target.
    case copied(batch: Int)
    /// The targets were flushed (the bulk copy is durable).
    case targetsFlushed
    /// A round of copying keys written during the copy was done.
    case caughtUp(round: Int)
    /// Writes to moving slots are held; the last catch-up is next. A hook must not write to
    /// moving slots here.
    case gateClosed
    /// The switch descriptor is on disk and routing follows the new table.
    case switched
    /// A batch of leftover deletions was written to a shard.
    case purged(shard: Int, batch: Int)
    /// A removed shard's directory is about to be deleted.
    case removingShard(Int)
    /// Cleanup done; the stable descriptor is next.
    case cleaned

    /// Whether writes to moving slots wait at this step.
    package var holdsGate: Bool { self == .gateClosed }

    package var description: String {
        switch self {
        case .intentWritten: return "intent written"
        case .copied(let b): return "copy batch \(b)"
        case .targetsFlushed: return "targets flushed"
        case .caughtUp(let r): return "catch-up round \(r)"
        case .gateClosed: return "gate closed"
        case .switched: return "switched"
        case .purged(let s, let b): return "purge batch \(b) of shard \(s)"
        case .removingShard(let s): return "removing shard \(s)"
        case .cleaned: return "cleaned"
        }
    }
}

extension ShardedStore {
    /// Catch-up rounds run before the gate closes; fewer dirty keys than this end them early.
    static let maxCatchUpRounds = 8
    static let smallCatchUp = 256

    /// Changes the number of shards to `count`, online.
    ///
    /// Only the slots whose owner differs between the current ring and the ring of `count`
    /// shards move: |count − old| / max(count, old) of the slots, and so about that fraction
    /// of the keys. Reads and writes continue throughout; writes to moving slots wait only
    /// for the few milliseconds of the switch.
    ///
    /// The protocol, with what a crash at each point leads to on the next open:
    /// 1. *Intent*: the descriptor records phase `copying` with the target table; new shard
    ///    directories are created. Crash → roll back: new directories are deleted and the
    ///    targets' keys of slots they do not own are deleted.
    /// 2. *Copy*: each source shard is scanned at a snapshot and the keys of its moving slots
    ///    are written to their targets; writes to moving slots still go to the source and
    ///    their keys are recorded as dirty when they complete. The targets are flushed, then
    ///    dirty keys are copied again (value or deletion, read from the source) in rounds,
    ///    durably. Crash → roll back.
    /// 3. *Switch*: writes to moving slots are held, in-flight ones drained, the last dirty
    ///    keys copied, and the descriptor rewritten with the new table (phase `cleaning`).
    ///    That atomic rename is the switch; routing then follows the new table and the held
    ///    writes go to the new owners. Crash → roll forward.
    /// 4. *Cleanup* (background; see ``reshardingInProgress``): the sources' copies of the
    ///    moved slots are deleted, removed shards' directories are deleted once no snapshot
    ///    reads them, and the descriptor becomes `stable`.
    ///
    /// Reads only ever route to the owner in force, and scans skip keys a shard holds for
    /// slots it does not own, so no key is lost, duplicated or visible from two shards.
    ///
    /// Returns after the switch; ``keysMovedByLastReshard`` is then known. A reshard first
    /// waits for the previous one's cleanup. That cleanup deletes removed shards only once no
    /// store snapshot or scan still reads them; while it waits for that, a new reshard fails
    /// with ``KVError/invalidState(_:)`` rather than wait. Setting the current count is a no-op.
    ///
    /// - Throws: ``KVError/invalidArgument(_:)`` for a count outside `1...maxShards`;
    ///   ``KVError/invalidState(_:)`` when another reshard is running or the previous cleanup
    ///   waits for snapshots; the I/O error that stopped it otherwise. A reshard that fails before the switch is rolled back.
    public func setShardCount(_ count: Int) throws {
        try reshard(to: count)
    }

    /// Whether a reshard or its cleanup (or the recovery of an interrupted one) is running.
    public var reshardingInProgress: Bool {
        state.withLock { $0.reshard.running || $0.cleanup.plan != nil || $0.reshard.migration != nil }
    }

    /// Number of keys the last reshard moved to new owners (0 before any, or when it did not
    /// change the count).
    public var keysMovedByLastReshard: Int {
        state.withLock { $0.reshard.keysMoved }
    }

    /// Waits until background cleanup of the last reshard has finished (including the
    /// recovery of one interrupted by a crash), and throws its failure if it failed. After a
    /// reshard that removed shards this includes waiting until no store snapshot or scan
    /// taken before the switch is alive, so do not call it while holding one.
    public func waitForReshard() throws(KVError) {
        try events.wait { () throws(KVError) -> Bool in
            let (busy, error) = state.withLock { s in (s.cleanup.running || s.reshard.running, s.reshard.error) }
            if !busy, let error { throw error }
            return !busy
        }
    }

    func reshard(to n: Int) throws(KVError) {
        guard n >= 1 && n <= Self.maxShards else {
            throw .invalidArgument("shard count must be between 1 and \(Self.maxShards), got \(n)")
        }
        try state.withLock { (s) throws(KVError) in
            if s.closed { throw .closed }
            if s.reshard.running { throw .invalidState("store \(path): a reshard is already running") }
            try checkIndexesAllowReshard(s)
            if let f = s.reshard.migration?.failure {
                throw .backgroundError(cause: "store \(path): the ownership switch of a reshard failed (\(f)); reopen the store")
            }
            s.reshard.running = true
        }
        defer {
            state.withLock { $0.reshard.running = false }
            events.signal()
        }
        try waitForIndexWorkers()
        try finishPreviousReshard()

        let (routing, descriptor) = state.withLock { ($0.routing, $0.descriptor) }
        let old = routing.shards.count
        if n == old {
            state.withLock { $0.reshard.keysMoved = 0 }
            return
        }
        let oldOwners = routing.owners
        let newOwners = HashRing.owners(shardCount: n)
        var moving = [Bool](repeating: false, count: HashSlot.count)
        var movingSlots: [Int] = []
        var sources = Set<Int>()
        var targets = Set<Int>()
        for slot in 0..<HashSlot.count where oldOwners[slot] != newOwners[slot] {
            moving[slot] = true
            movingSlots.append(slot)
            sources.insert(Int(oldOwners[slot]))
            targets.insert(Int(newOwners[slot]))
        }

        // 1. Intent. Directories of the new ids are not in the descriptor: anything there is
        // garbage of an earlier attempt.
        for id in old..<max(old, n) {
            try Self.removeDirectory(joinPath(path, StoreDescriptor.directoryName(id)), fs: fs)
        }
        var intent = descriptor
        intent.generation += 1
        intent.phase = .copying
        intent.otherCount = n
        intent.otherOwners = newOwners
        intent.directories = (0..<max(old, n)).map(StoreDescriptor.directoryName)
        try writeDescriptor(intent)
        state.withLock { $0.descriptor = intent }

        // 2–3. Copy, catch up, hold the gate.
        var moved = 0
        var caughtUp = 0
        var gateClosedAt = ContinuousClock.now
        do throws(KVError) {
            try checkpoint(.intentWritten)
            for id in old..<max(old, n) {
                let shard = try Self.openShard(id, in: path, options: options, create: true, feed: commitFeed)
                state.withLock { s in
                    while s.shards.count <= id { s.shards.append(nil) }
                    s.shards[id] = shard
                }
                // New shards carry the index definitions before any row reaches them.
                try copyIndexMetadata(to: shard)
            }
            // From here on, completing writes to moving slots record their keys. The copy's
            // snapshots are taken afterwards, so every write is in a snapshot or recorded.
            state.withLock { s in
                s.reshard.migration = Migration(moving: moving, oldOwners: oldOwners, newOwners: newOwners)
                publishView(s)
            }
            let shards = state.withLock { $0.shards }
            var batches = 0
            for source in sources.sorted() {
                moved += try copyMovingKeys(
                    from: shards[source]!, moving: moving, oldOwners: oldOwners, newOwners: newOwners,
                    shards: shards, batches: &batches)
            }
            for target in targets.sorted() { try shards[target]!.db.flush() }
            try checkpoint(.targetsFlushed)
            for round in 1...Self.maxCatchUpRounds {
                let dirty = takeDirtyKeys()
                if dirty.isEmpty { break }
                caughtUp += dirty.count
                moved += try catchUp(dirty, oldOwners: oldOwners, newOwners: newOwners, shards: shards)
                try checkpoint(.caughtUp(round: round))
                if dirty.count < Self.smallCatchUp { break }
            }
            gateClosedAt = ContinuousClock.now
            state.withLock { s in
                s.reshard.migration!.gateClosed = true
                publishView(s)
            }
            try waitForWrites(on: movingSlots)
            try checkpoint(.gateClosed)
            let last = takeDirtyKeys()
            caughtUp += last.count
            moved += try catchUp(last, oldOwners: oldOwners, newOwners: newOwners, shards: shards)
        } catch {
            if !isHalted { rollBack(oldCount: old, newCount: n, targets: targets, oldOwners: oldOwners) }
            throw error
        }

        // 4. The switch.
        var switched = intent
        switched.generation += 1
        switched.phase = .cleaning
        switched.shardCount = n
        switched.owners = newOwners
        switched.otherCount = old
        switched.otherOwners = oldOwners
        do throws(StoreDescriptor.WriteFailure) {
            try switched.write(fs: fs, directory: path)
        } catch {
            if !error.renamed {
                rollBack(oldCount: old, newCount: n, targets: targets, oldOwners: oldOwners)
                throw error.error
            }
            // Either descriptor may be found after a crash: keep writes to moving slots held
            // (both owners have identical data now) until the store is reopened.
            state.withLock { s in
                s.reshard.migration!.failure = error.error
                s.reshard.error = error.error
                publishView(s)
            }
            throw .backgroundError(cause: "store \(path): the ownership switch of a reshard failed (\(error.error)); reopen the store")
        }
        let plan = CleanupPlan(
            purge: sources.filter { $0 < n }.sorted(), remove: Array(n..<max(old, n)),
            owners: newOwners, count: n)
        state.withLock { s in
            let generation = s.routing.generation + 1
            s.routing = Routing(generation: generation, owners: newOwners, shards: (0..<n).map { s.shards[$0]! })
            routingGeneration.store(generation, ordering: .releasing)
            s.descriptor = switched
            s.reshard.migration = nil
            s.cleanup.plan = plan
            s.reshard.keysMoved = moved
            s.reshard.keysCaughtUp = caughtUp
            s.reshard.gateHeld = ContinuousClock.now - gateClosedAt
            s.reshard.error = nil
            publishView(s)
        }
        if let hook = state.withLock({ $0.reshard.hook }), hook(.switched) {
            state.withLock { $0.halted = true }
            throw .invalidState("store \(path) halted at \(ReshardStep.switched) for a crash test")
        }
        startCleanup()
    }

    /// Waits for the previous reshard's background cleanup, and runs it here if it failed.
    /// Throws instead of waiting when the cleanup waits for snapshots or scans to release a
    /// removed shard (the caller may hold them).
    func finishPreviousReshard() throws(KVError) {
        try events.wait { () throws(KVError) -> Bool in
            let (running, waiting) = state.withLock { ($0.cleanup.running, $0.cleanup.waitingForReaders) }
            if !running { return true }
            // The cleanup notices released readers only when it wakes: count them here, so a
            // snapshot released just before this call does not make it fail.
            if let blocked = waiting.first(where: { $0.readers.load(ordering: .acquiring) > 0 }) {
                throw .invalidState(
                    "store \(path): shard \(blocked.id), removed by the last reshard, is still read by a store snapshot or scan; release them and retry")
            }
            return false
        }
        let pending = state.withLock { s -> Bool in
            guard s.cleanup.plan != nil else { return false }
            s.cleanup.running = true
            return true
        }
        guard pending else { return }
        defer {
            state.withLock { $0.cleanup.running = false }
            events.signal()
        }
        try runCleanup()
        state.withLock { $0.reshard.error = nil }
    }

    /// Abandons a copy phase: writes go back to flowing freely to the sources, and the targets
    /// are cleaned of what was copied (synchronously). If that fails the error is latched and
    /// the cleanup is retried by the next reshard or open.
    func rollBack(oldCount old: Int, newCount n: Int, targets: Set<Int>, oldOwners: [UInt16]) {
        let plan = CleanupPlan(
            purge: targets.filter { $0 < old }.sorted(), remove: Array(old..<max(old, n)),
            owners: oldOwners, count: old)
        let run = state.withLock { s -> Bool in
            s.reshard.migration = nil
            s.cleanup.plan = plan
            publishView(s)
            // Closing: the next open rolls back from the descriptor instead.
            if s.closed { return false }
            s.cleanup.running = true
            return true
        }
        if run { runCleanupLatchingError() }
    }

    /// Swaps out the keys recorded by writes to moving slots.
    func takeDirtyKeys() -> Set<[UInt8]> {
        state.withLock { s in
            let dirty = s.reshard.migration!.dirty
            s.reshard.migration!.dirty = []
            return dirty
        }
    }

    /// Waits until no write registered on any of `slots` is in flight.
    func waitForWrites(on slots: [Int]) throws(KVError) {
        try events.wait { () throws(KVError) -> Bool in
            if view.load(ordering: .sequentiallyConsistent).closed { throw .closed }
            return !slots.contains { inflight.load($0) != 0 }
        }
    }

    /// Copies the keys of `source`'s moving slots, as of a snapshot taken now, to their new
    /// owners in batches written without sync (the targets are flushed afterwards). Returns the
    /// number of keys copied.
    func copyMovingKeys(
        from source: Shard, moving: [Bool], oldOwners: [UInt16], newOwners: [UInt16], shards: [Shard?],
        batches: inout Int
    ) throws(KVError) -> Int {
        let snapshot = source.db.snapshot()
        defer { snapshot.release() }
        let it = try source.db.makeIterator(snapshot: snapshot)
        try it.seekToFirst()
        var pending: [Int: WriteBatch] = [:]
        var copied = 0
        while it.isValid {
            let k = it.keyView
            if let slot = EngineKey.slot(of: k), moving[slot] && Int(oldOwners[slot]) == source.id {
                let target = Int(newOwners[slot])
                pending[target, default: WriteBatch()].put(k, it.valueView)
                copied += 1
                if pending[target]!.approximateSize >= Self.bulkBatchBytes {
                    try shards[target]!.db.commit(pending.removeValue(forKey: target)!, durability: .no)
                    batches += 1
                    try checkpoint(.copied(batch: batches))
                }
            }
            try it.next()
        }
        for target in pending.keys.sorted() {
            try shards[target]!.db.commit(pending[target]!, durability: .no)
            batches += 1
            try checkpoint(.copied(batch: batches))
        }
        return copied
    }

    /// Copies the current state of `keys` (a value or a deletion, read from the old owner) to
    /// their new owners, durably (`.always`). Returns the change in the number of keys the
    /// targets hold for moving slots.
    func catchUp(_ keys: Set<[UInt8]>, oldOwners: [UInt16], newOwners: [UInt16], shards: [Shard?]) throws(KVError) -> Int {
        var pending: [Int: WriteBatch] = [:]
        var delta = 0
        for key in keys {
            guard let slot = EngineKey.slot(of: key) else { continue }
            let source = shards[Int(oldOwners[slot])]!
            let target = Int(newOwners[slot])
            let (value, present) = try withBytes(key) { (k) throws(KVError) in
                (try source.db.get(k), try shards[target]!.db.get(k) != nil)
            }
            if let value {
                pending[target, default: WriteBatch()].put(key, value)
                if !present { delta += 1 }
            } else {
                pending[target, default: WriteBatch()].delete(key)
                if present { delta -= 1 }
            }
            if pending[target]!.approximateSize >= Self.bulkBatchBytes {
                try shards[target]!.db.commit(pending.removeValue(forKey: target)!, durability: .always)
            }
        }
        for target in pending.keys.sorted() {
            try shards[target]!.db.commit(pending[target]!, durability: .always)
        }
        return delta
    }
}
