import KVProtocol
import KVStore
import NIOCore

/// MULTI, EXEC, DISCARD, WATCH, UNWATCH (Redis 7.0's semantics and texts).
///
/// Between MULTI and EXEC a client's requests are checked as usual (unknown command, arity,
/// authentication, a follower's READONLY, `no_multi` commands) and queued with `+QUEUED`; a
/// refused one makes EXEC answer `-EXECABORT`. EXEC runs the queue as one store transaction
/// (``ShardedStore/transaction(durability:_:)``) when any queued command reads or writes
/// data: no other write runs meanwhile, the writes commit as one unit across shards (whole or
/// not at all after a crash) and no reader sees part of them; keyspace events and tracking
/// invalidations are held back until it committed. A command that fails inside EXEC leaves
/// its error in its place in the reply and the others run. EXEC answers a null array when a
/// watched key changed since WATCH — written or deleted by anyone (the same value again
/// included), expired, or flushed — and runs nothing then.
extension Commands {
    /// Commands that run rather than queue between MULTI and EXEC.
    static let runInMulti: Set<String> = ["exec", "discard", "multi", "watch", "quit", "reset"]

    static let transactionCommands: [CommandSpec] = [
        CommandSpec("multi", 1, ["noscript", "loading", "stale", "fast", "allow_busy"]) { c in
            if c.session.inMulti.load(ordering: .relaxed) { throw CommandError("ERR MULTI calls can not be nested") }
            c.session.inMulti.store(true, ordering: .relaxed)
            return .ok
        },
        CommandSpec("exec", 1, ["noscript", "loading", "stale", "skip_slowlog"]) { c in try exec(&c) },
        CommandSpec("discard", 1, ["noscript", "loading", "stale", "fast", "allow_busy"]) { c in
            guard c.session.inMulti.load(ordering: .relaxed) else { throw CommandError("ERR DISCARD without MULTI") }
            _ = c.session.endMulti()
            c.session.unwatchAll(c.store)
            return .ok
        },
        CommandSpec("watch", -2, ["noscript", "loading", "stale", "fast", "allow_busy"], keys: (1, -1, 1)) { c in
            if c.session.inMulti.load(ordering: .relaxed) { throw CommandError("ERR WATCH inside MULTI is not allowed") }
            for key in c.args.dropFirst() {
                guard c.session.transaction.withLock({ $0.watched[key] == nil }) else { continue }
                // Registered first, so every write committed after the stamp bumps it.
                c.store.beginWatching()
                let stamp: WatchStamp
                do {
                    stamp = try c.store.watchStamp(key)
                } catch {
                    c.store.endWatching()
                    throw error
                }
                c.session.transaction.withLock { $0.watched[key] = stamp }
            }
            return .ok
        },
        CommandSpec("unwatch", 1, ["noscript", "loading", "stale", "fast", "allow_busy"]) { c in
            c.session.unwatchAll(c.store)
            return .ok
        },
    ]

    /// Queues a request between MULTI and EXEC; refuses (and fails the transaction) one that
    /// may not run in a transaction, or past the queue's bounds.
    static func queueInMulti(_ arguments: [[UInt8]], spec: CommandSpec, session: ClientSession, server: ServerState)
        -> (RESPValue?, ConnectionAction) {
        var refusal: String?
        if spec.flags.contains("no_multi") {
            refusal = "ERR Command not allowed inside a transaction"
        }
        let bytes = arguments.reduce(0) { $0 + $1.count }
        session.transaction.withLock { t in
            if refusal == nil
                && (t.queued.count >= ClientTransaction.queueLimit || t.queuedBytes + bytes > ClientTransaction.queueByteLimit) {
                refusal = "ERR the transaction holds too many queued commands (at most \(ClientTransaction.queueLimit), \(ClientTransaction.queueByteLimit) bytes)"
            }
            if refusal != nil {
                t.failed = true
            } else {
                t.queued.append(arguments)
                t.queuedBytes += bytes
                if runsOffLoop(arguments, syncedWrites: server.syncedWrites, name: spec.name, spec: spec) { t.runsOffLoop = true }
            }
        }
        if let refusal {
            server.counters.recordRejected(spec, error: refusal)
            return (.simpleError(refusal), .none)
        }
        return (.simpleString("QUEUED"), .none)
    }

    /// EXEC: runs the queue (see the extension's notes).
    static func exec(_ c: inout CommandCall) throws -> RESPValue {
        guard c.session.inMulti.load(ordering: .relaxed) else { throw CommandError("ERR EXEC without MULTI") }
        let txn = c.session.endMulti()
        defer { c.session.unwatchAll(c.store) }
        if txn.failed { throw CommandError("EXECABORT Transaction discarded because of previous errors.") }
        if c.server.cluster != nil {
            // Cluster mode: one transaction serves one slot, as in Redis Cluster.
            var slots = Set<Int>()
            for args in txn.queued {
                guard let spec = table[RedisText.lower(args[0])] else { continue }
                for p in spec.keyPositions(args) { slots.insert(HashSlot.slot(of: args[p])) }
            }
            if slots.count > 1 { throw CommandError(ClusterState.crossSlot) }
            // A slot in the middle of a move's switch: the queue is retried (counted in
            // flight by ``Commands/run``, so the switch waits for it).
            if let slot = slots.first, let cluster = c.server.cluster,
               case .failure(let e)? = cluster.moves.route(slot: slot, isWrite: txn.queued.contains { table[RedisText.lower($0[0])]?.isWrite == true },
                                                           keys: 2, asking: false) {
                throw CommandError(e.text)
            }
        }
        let store = c.store
        let server = c.server
        let session = c.session
        let loop = c.loop
        // Data commands run inside one store transaction; others (CONFIG, CLIENT, REPLICAOF,
        // PUBLISH, ... as Sentinel sends) need not hold the store.
        let needsStore = txn.queued.contains { args in
            guard let spec = table[RedisText.lower(args[0])] else { return false }
            return spec.isWrite || spec.isReadOnly
        }
        var replies: [RESPValue] = []
        var extra: [RESPValue] = []
        var aborted = false
        func changed() -> Bool {
            txn.watched.contains { key, stamp in store.watchedKeyChanged(stamp, key) }
        }
        func runAll() {
            session.runningExec.store(true, ordering: .relaxed)
            defer { session.runningExec.store(false, ordering: .relaxed) }
            for args in txn.queued {
                let (reply, action) = execute(args, server: server, session: session, loop: loop, batched: true)
                replies.append(reply ?? .nullBulk)
                if case .more(let more) = action { extra += more }
            }
        }
        try server.keyspace.holdingEvents { () throws -> Bool in
            if needsStore {
                // Checked with every other writer kept out: no change can slip in between.
                aborted = try store.transaction { () -> Bool in
                    if changed() { return true }
                    runAll()
                    return false
                }
            } else {
                aborted = changed()
                if !aborted { runAll() }
            }
            return !aborted
        }
        if aborted { return .array(nil) }
        if !extra.isEmpty { c.action = .more(extra) }
        return .array(replies)
    }
}
