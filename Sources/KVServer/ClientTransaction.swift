import KVStore

/// A client's MULTI/EXEC and WATCH state (Redis's `multiState` and watched keys).
struct ClientTransaction {
    /// The requests queued since MULTI.
    var queued: [[[UInt8]]] = []
    /// Bytes of the queued requests' arguments.
    var queuedBytes = 0
    /// A request was refused while queuing (unknown, wrong arity, ...): EXEC aborts.
    var failed = false
    /// A queued request runs off the event loop on its own (``Commands/runsOffLoop(_:syncedWrites:)``):
    /// so does EXEC.
    var runsOffLoop = false
    /// The watched keys with their state at WATCH.
    var watched: [[UInt8]: WatchStamp] = [:]

    /// The most requests one transaction may queue, and their most argument bytes: beyond
    /// them a request is refused (and EXEC aborts) rather than memory growing without bound.
    static let queueLimit = 1_000_000
    static let queueByteLimit = 1 << 30
}

extension ClientSession {
    /// Marks the transaction being queued as failed (a refused request), when there is one.
    func flagTransactionError() {
        guard inMulti.load(ordering: .relaxed) else { return }
        transaction.withLock { $0.failed = true }
    }

    /// Leaves MULTI and forgets the queue (EXEC, DISCARD, RESET); returns what was queued.
    func endMulti() -> ClientTransaction {
        inMulti.store(false, ordering: .relaxed)
        return transaction.withLock { t in
            defer {
                t.queued = []
                t.queuedBytes = 0
                t.failed = false
                t.runsOffLoop = false
            }
            return t
        }
    }

    /// Whether EXEC runs off the event loop: a queued request would on its own.
    var execRunsOffLoop: Bool {
        inMulti.load(ordering: .relaxed) && transaction.withLock { $0.runsOffLoop }
    }

    /// Forgets every watched key (EXEC, DISCARD, UNWATCH, RESET, disconnect).
    func unwatchAll(_ store: ShardedStore) {
        let n = transaction.withLock { t in
            defer { t.watched = [:] }
            return t.watched.count
        }
        if n > 0 { store.endWatching(n) }
    }
}
