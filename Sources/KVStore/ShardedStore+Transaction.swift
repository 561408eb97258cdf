import KVBase
import KVEngine
import KVLayout

/// A watched key's state when WATCH was called, compared at EXEC (``ShardedStore/watchedKeyChanged(_:_:)``).
public struct WatchStamp: Sendable, Equatable {
    let cell: Int
    let version: Int
    /// The key's expiry time when it was live at WATCH; nil when it had none or was absent.
    let expiresAt: Int64?
}

/// Transactions: a body run with every other row write of the store kept out, its writes
/// committed as one unit, atomic across shards under a crash and never half visible.
///
/// **Isolation.** ``transaction(durability:_:)`` takes every key stripe (`KeyLocks.lockAll`),
/// so no other row write — and no read-modify-write or MGET, which read under stripes — runs
/// meanwhile; the stripe calls of the body's own thread pass through. The body's writes are
/// buffered, and its reads see them (`TransactionState`'s overlay). At the end the buffer
/// commits: a part per shard. While parts of a transaction spanning shards commit, the commit
/// epoch is odd: point reads wait for it, and store snapshots (scans) taken across it are
/// retaken, so no reader sees one part without the others.
///
/// **Atomicity under a crash.** The coordinator (lowest shard written) commits first, its part
/// carrying an *intent* record that holds every other part; each other part carries a *part
/// marker* (``TransactionRecord``). Open re-applies, from the intent, every part whose marker
/// is missing, so a transaction whose coordinator part is on disk is there whole, and one
/// whose coordinator part is not is not there at all. Intents are deleted durably (after their
/// parts), then markers, so an intent never outlives a marker it needs.
extension ShardedStore {
    /// Runs `body` as a transaction (see the extension's notes): no other row write of the
    /// store runs meanwhile, reads in `body` see its own writes, and its writes commit at the
    /// end as one unit: all shards or none, after a crash too, never half visible to readers.
    /// If `body` throws, nothing it wrote is committed.
    ///
    /// Keep `body` short: every writer of the store waits for it. Scans and counts inside
    /// `body` read the data as committed, without the body's own writes.
    ///
    /// - Throws: what `body` throws; ``KVError/invalidState(_:)`` when nested; the commit's
    ///   errors (nothing of it is visible then, and after a reopen it is there whole or not at all).
    public func transaction<R>(durability: Durability? = nil, _ body: () throws -> R) throws -> R {
        if keyLocks.heldByCurrentThread { throw KVError.invalidState("store \(path): transactions do not nest") }
        keyLocks.lockAll()
        defer {
            keyLocks.unlockAll()
            if transactions.finished.withLock({ $0.count }) >= Self.cleanupBatch { try? cleanUpTransactions() }
        }
        transactions.begin()
        let result: R
        do {
            result = try body()
        } catch {
            _ = transactions.end()
            throw error
        }
        let writes = transactions.end()
        try commitAtomically(writes, durability: durability)
        return result
    }

    /// Applies `batch` as one unit, as a transaction's commit does: all its shards or none,
    /// never half visible (a follower applying a leader's transaction).
    package func applyAtomically(_ batch: RoutedBatch, durability: Durability?) throws(KVError) {
        if batch.isEmpty { return }
        keyLocks.lockAll()
        defer { keyLocks.unlockAll() }
        try commitAtomically(batch, durability: durability)
    }

    /// Finished transactions whose records are deleted together.
    static let cleanupBatch = 64

    /// Commits a transaction's writes; the caller holds every key stripe.
    func commitAtomically(_ batch: RoutedBatch, durability: Durability?) throws(KVError) {
        if batch.isEmpty { return }
        let routing = try beginWrite(batch.slots)
        var failure: KVError?
        do throws(KVError) {
            try commitParts(batch, routing: routing, durability: durability)
        } catch {
            failure = error
        }
        transactions.stamp(batch)
        endWrite(batch)
        if let failure { throw failure }
    }

    /// Splits `batch` by owner and commits the parts: one engine batch when one shard owns
    /// every record, else the intent protocol.
    private func commitParts(_ routed: RoutedBatch, routing: Routing, durability: Durability?) throws(KVError) {
        let slots = routed.slots
        var parts: [Int: WriteBatch] = [:]
        var owners: [Int] = []
        var i = 0
        routed.batch.forEachRecord { isPut, key, value in
            let owner = Int(routing.owners[slots[i]])
            i += 1
            if parts[owner] == nil { owners.append(owner) }
            if isPut { parts[owner, default: WriteBatch()].put(key, value) } else { parts[owner, default: WriteBatch()].delete(Array(key)) }
        }
        if owners.count == 1 {
            try routing.shards[owners[0]].db.commit(routed.batch, durability: durability)
            return
        }
        owners.sort()
        let coordinator = owners[0]
        var copies: [TransactionRecord.Record] = []
        i = 0
        routed.batch.forEachRecord { isPut, key, value in
            let owner = Int(routing.owners[slots[i]])
            if owner != coordinator {
                copies.append(.init(shard: owner, slot: slots[i], isPut: isPut, key: Array(key), value: Array(value)))
            }
            i += 1
        }
        // Parts in commit order: the intent's copies keep it, so a re-apply repeats it.
        copies.sort { $0.shard < $1.shard }
        let id = transactions.nextID()
        let key = TransactionRecord.key(id: id)
        parts[coordinator]!.put(key, TransactionRecord(id: id, coordinator: coordinator, participants: owners, isIntent: true,
                                                       records: copies).encoded())
        let marker = TransactionRecord(id: id, coordinator: coordinator, participants: owners, isIntent: false).encoded()
        for o in owners.dropFirst() { parts[o]!.put(key, marker) }
        transactions.epoch.wrappingAdd(1, ordering: .sequentiallyConsistent)
        defer {
            transactions.epoch.wrappingAdd(1, ordering: .sequentiallyConsistent)
            events.signal()
        }
        let hook = transactions.partHook.withLock { $0 }
        for o in owners {
            try routing.shards[o].db.commit(parts[o]!, durability: durability)
            hook?()
        }
        transactions.finished.withLock { $0.append((id, coordinator, owners)) }
    }

    /// Waits while a transaction spanning shards commits (point reads outside it).
    @inline(__always)
    func waitForTransactionCommit() {
        guard transactions.epoch.load(ordering: .sequentiallyConsistent) & 1 != 0, !keyLocks.heldByCurrentThread else { return }
        events.wait { transactions.epoch.load(ordering: .sequentiallyConsistent) & 1 == 0 }
    }

    /// Deletes the records of finished transactions: intents first, durably, then markers.
    func cleanUpTransactions() throws(KVError) {
        let done = transactions.finished.withLock { f -> [(id: UInt64, coordinator: Int, participants: [Int])] in
            defer { f.removeAll() }
            return f
        }
        guard !done.isEmpty else { return }
        // The routing even when closing (close deletes what is left before the shards shut).
        let routing = view.load(ordering: .acquiring).routing
        var intents: [Int: WriteBatch] = [:]
        var markers: [Int: WriteBatch] = [:]
        for t in done {
            let key = TransactionRecord.key(id: t.id)
            intents[t.coordinator, default: WriteBatch()].delete(key)
            for p in t.participants.dropFirst() { markers[p, default: WriteBatch()].delete(key) }
        }
        for (shard, batch) in intents where shard < routing.shards.count {
            try routing.shards[shard].db.commit(batch, durability: .always)
        }
        for (shard, batch) in markers where shard < routing.shards.count {
            try routing.shards[shard].db.commit(batch, durability: .no)
        }
    }

    /// Completes transactions a crash interrupted (at open): re-applies every part whose
    /// marker is missing from its intent's copy, then deletes the records.
    func recoverTransactions() throws(KVError) {
        let routing = try currentRouting()
        var intents: [(shard: Shard, record: TransactionRecord)] = []
        var markers: [UInt64: Set<Int>] = [:]
        for shard in routing.shards {
            let it = try shard.db.makeIterator()
            try it.seek(TransactionRecord.keyPrefix)
            while it.isValid && it.keyView.starts(with: TransactionRecord.keyPrefix) {
                let r = try TransactionRecord.decode(key: it.keyView, value: it.valueView, file: shard.path)
                if r.isIntent { intents.append((shard, r)) } else { markers[r.id, default: []].insert(shard.id) }
                try it.next()
            }
        }
        for (_, intent) in intents {
            let have = markers[intent.id] ?? []
            var redo = RoutedBatch()
            for r in intent.records where !have.contains(r.shard) {
                if r.isPut { redo.put(r.key, r.value, slot: r.slot) } else { redo.delete(r.key, slot: r.slot) }
            }
            if !redo.isEmpty { try apply(redo, durability: .always) }
            transactions.finished.withLock { $0.append((intent.id, intent.coordinator, intent.participants)) }
        }
        // Markers left without an intent: the intent's deletion is durable, theirs was not.
        for (id, shards) in markers where !intents.contains(where: { $0.record.id == id }) {
            for s in shards where s < routing.shards.count {
                var b = WriteBatch()
                b.delete(TransactionRecord.key(id: id))
                try routing.shards[s].db.commit(b, durability: .no)
            }
        }
        try cleanUpTransactions()
    }

    // MARK: WATCH

    /// Registers a watcher: from now on writes stamp the keys they change, until
    /// ``endWatching(_:)``.
    public func beginWatching() {
        transactions.watchers.wrappingAdd(1, ordering: .sequentiallyConsistent)
    }

    /// How many watch registrations are held (tests, INFO).
    package var transactionsWatching: Int {
        transactions.watchers.load(ordering: .relaxed)
    }

    /// Drops `count` registrations of ``beginWatching()``.
    public func endWatching(_ count: Int = 1) {
        transactions.watchers.wrappingSubtract(count, ordering: .sequentiallyConsistent)
    }

    /// The state of `key` to compare at EXEC (call ``beginWatching()`` first). Any committed
    /// write of the key after this call changes the stamp (so does, rarely, a write of another
    /// key whose hash falls in the same one of 65,536 cells: a needless abort, never a missed
    /// change).
    public func watchStamp(_ key: [UInt8]) throws(KVError) -> WatchStamp {
        let cell = EngineKey.encode(key).withUnsafeBytes { TransactionState.cell($0) }
        let version = transactions.stamps.load(cell)
        let row = try getEntry(key)
        return WatchStamp(cell: cell, version: version, expiresAt: row?.expiresAt)
    }

    /// Whether `key` changed since `stamp` was taken: written or deleted by anyone, or, live
    /// then, expired since.
    public func watchedKeyChanged(_ stamp: WatchStamp, _ key: [UInt8]) -> Bool {
        if transactions.stamps.load(stamp.cell) != stamp.version { return true }
        if let t = stamp.expiresAt, RowValue.isExpired(t, now: now) { return true }
        return false
    }
}
