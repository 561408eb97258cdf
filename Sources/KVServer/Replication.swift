import KVCluster
import KVProtocol
import KVReplication
import KVStore
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Replication state of a server: its role, its replication id, the followers it serves
/// (leader) or its link to the leader (follower). See DESIGN.md "Replication".
final class ReplicationState: Sendable {
    /// A follower as the leader sees it, from its pull requests.
    struct Follower {
        var id: String
        var address: String
        var port: Int
        /// Last sequence applied per shard (the follower's `from - 1`).
        var acked: [UInt64]
        var lastSeen: Int64
        var online: Bool { monotonicMillis() - lastSeen < 10_000 }
    }

    /// The link of a follower to its leader.
    struct Link {
        var host: String
        var port: Int
        var up = false
        /// Monotonic ms since when the link is down (its start, or the last failure).
        var downSince: Int64 = monotonicMillis()
        var lastIO: Int64 = 0
        var syncInProgress = false
        /// Applied sequence per leader shard, and the leader's last known sequences.
        var applied: [UInt64] = []
        var leaderSequences: [UInt64] = []
        var lastGroupMillis: Int64 = 0
        var lastError = ""
    }

    /// The id of this server's replication history: new at every start and promotion, so a
    /// follower never mixes sequences of two histories.
    let replid = Mutex(ReplicationState.newID())
    let followers = Mutex<[String: Follower]>([:])
    let link = Mutex<Link?>(nil)
    let client = Mutex<ReplicationClient?>(nil)
    /// Snapshots being streamed for full syncs, by follower and shard, with their last use.
    let snapshots = Mutex<[String: (reader: ShardSnapshotReader, used: Int64)]>([:])
    let syncFull = Atomic<Int64>(0)
    let syncPartialOK = Atomic<Int64>(0)
    let syncPartialErr = Atomic<Int64>(0)

    var isReplica: Bool { link.withLock { $0 != nil } }

    /// A parked WAIT: answered when enough followers acknowledged `target`, when its timer
    /// fires, or (with no one to read the answer) when its client goes away.
    private struct AckWaiter {
        let session: Int64
        let count: Int64
        let promise: EventLoopPromise<RESPValue>
        let counter: @Sendable () -> Int
        var timer: Scheduled<Void>?
    }
    private let ackWaiters = Mutex<(next: Int, waiting: [Int: AckWaiter])>((0, [:]))
    private let hasAckWaiters = Atomic<Bool>(false)

    /// The longest timer a WAIT arms (about 34 years): longer timeouts are clamped, so the
    /// timer arithmetic (nanoseconds in 64 bits) cannot overflow.
    static let longestWaitMillis: Int64 = 1 << 40

    /// Parks a WAIT until `counter()` reaches `count` (checked on every acknowledgement) or
    /// `timeoutMillis` pass (0: no timeout); the future gives the count then.
    func waitForAcknowledgements(count: Int64, target: [UInt64], timeoutMillis: Int64, session: Int64, loop: any EventLoop,
                                 counter: @escaping @Sendable () -> Int) -> EventLoopFuture<RESPValue> {
        let promise = loop.makePromise(of: RESPValue.self)
        let token = ackWaiters.withLock { w -> Int in
            let t = w.next
            w.next += 1
            w.waiting[t] = AckWaiter(session: session, count: count, promise: promise, counter: counter)
            hasAckWaiters.store(true, ordering: .sequentiallyConsistent)
            return t
        }
        if timeoutMillis > 0 {
            let timer = loop.scheduleTask(in: .milliseconds(min(timeoutMillis, Self.longestWaitMillis))) { [self] in
                finishWaiter(token)
            }
            let armed = ackWaiters.withLock { w -> Bool in
                guard w.waiting[token] != nil else { return false }
                w.waiting[token]!.timer = timer
                return true
            }
            if !armed { timer.cancel() }
        }
        // An acknowledgement that arrived between the caller's count and the registration.
        acknowledgementsChanged()
        return promise.futureResult
    }

    /// Answers the WAITs whose count is now reached (called after every acknowledgement).
    func acknowledgementsChanged() {
        guard hasAckWaiters.load(ordering: .sequentiallyConsistent) else { return }
        let ready = ackWaiters.withLock { w -> [(AckWaiter, Int)] in
            var done: [(AckWaiter, Int)] = []
            for (t, waiter) in w.waiting {
                let n = waiter.counter()
                if Int64(n) >= waiter.count {
                    done.append((waiter, n))
                    w.waiting[t] = nil
                }
            }
            if w.waiting.isEmpty { hasAckWaiters.store(false, ordering: .sequentiallyConsistent) }
            return done
        }
        for (waiter, n) in ready {
            waiter.timer?.cancel()
            waiter.promise.succeed(.integer(Int64(n)))
        }
    }

    /// Answers WAIT `token` with the count now (its timer fired).
    private func finishWaiter(_ token: Int) {
        let waiter = ackWaiters.withLock { w -> AckWaiter? in
            let x = w.waiting.removeValue(forKey: token)
            if w.waiting.isEmpty { hasAckWaiters.store(false, ordering: .sequentiallyConsistent) }
            return x
        }
        guard let waiter else { return }
        waiter.promise.succeed(.integer(Int64(waiter.counter())))
    }

    /// Drops the WAITs of a client that disconnected (their answers have no reader).
    func cancelWaits(session: Int64) {
        guard hasAckWaiters.load(ordering: .sequentiallyConsistent) else { return }
        answerWaiters { $0.session == session }
    }

    /// Answers every parked WAIT with its count now (the server shuts down).
    func cancelAllWaits() {
        answerWaiters { _ in true }
    }

    /// Removes the parked WAITs `pick` selects and answers each with its count now.
    private func answerWaiters(_ pick: (AckWaiter) -> Bool) {
        let picked = ackWaiters.withLock { w -> [AckWaiter] in
            let mine = w.waiting.filter { pick($0.value) }
            for t in mine.keys { w.waiting[t] = nil }
            if w.waiting.isEmpty { hasAckWaiters.store(false, ordering: .sequentiallyConsistent) }
            return Array(mine.values)
        }
        for waiter in picked {
            waiter.timer?.cancel()
            waiter.promise.succeed(.integer(Int64(waiter.counter())))
        }
    }

    /// Parked WAITs (for INFO's `blocked_clients`).
    var parkedWaits: Int { ackWaiters.withLock { $0.waiting.count } }

    static func newID() -> String {
        var rng = SystemRandomNumberGenerator()
        return (0..<20).map { _ in
            let b = UInt8.random(in: 0...255, using: &rng)
            return (b < 16 ? "0" : "") + String(b, radix: 16)
        }.joined()
    }
}

extension Commands {
    /// Commands a follower uses to pull from its leader (over the normal port, after AUTH).
    static let replicationCommands: [CommandSpec] = [
        // SHALE.REPLLAYOUT → [replid, generation, shard count, owners (2 bytes LE per slot)]
        CommandSpec("shale.repllayout", 1, ["admin"]) { c in
            try refuseWhileFollowing(c)
            c.server.backlog.activate(store: c.store)
            let layout = c.store.replicationLayout
            var owners: [UInt8] = []
            owners.reserveCapacity(layout.owners.count * 2)
            for o in layout.owners {
                owners.append(UInt8(truncatingIfNeeded: o))
                owners.append(UInt8(truncatingIfNeeded: o >> 8))
            }
            return .array([.bulk(c.server.replication.replid.withLock { $0 }), .integer(Int64(layout.generation)),
                           .integer(Int64(layout.shardCount)), .bulk(owners)])
        },
        // SHALE.REPLPULL replid follower-id port generation from_0 ... from_{n-1}
        CommandSpec("shale.replpull", -6, ["admin"]) { c in
            try refuseWhileFollowing(c)
            return try pull(&c)
        },
        // SHALE.REPLSNAP replid follower-id shard restart(0|1) [slot-range ...]
        CommandSpec("shale.replsnap", -5, ["admin"]) { c in
            try refuseWhileFollowing(c)
            return try snapshotChunk(c)
        },
        // SHALE.SLOTPULL replid generation from_0 ... from_{n-1} (0: skip the shard): a slot
        // move's catch-up, which does not count as a follower.
        CommandSpec("shale.slotpull", -4, ["admin"]) { c in
            try refuseWhileFollowing(c)
            c.server.backlog.activate(store: c.store)
            try checkHistory(c, replid: c.args[1], generation: c.args[2])
            let from = try positions(c, from: 3, allowZero: true)
            return longPoll(&c, from: from)
        },
    ]

    /// A follower serves no followers of its own: what it commits includes a full sync's
    /// deletions of its old data, which a server that followed it — a leader promoted in its
    /// place, whose link is still stopping — must never apply. The refusal (`-LAYOUT`) makes
    /// the asking follower reconnect.
    static func refuseWhileFollowing(_ c: CommandCall) throws {
        if c.server.replication.isReplica {
            throw CommandError("LAYOUT this server follows another leader and serves no followers")
        }
    }

    /// A parked replication pull: completed once, by the append notification or the timer,
    /// whichever comes first; the other is cancelled.
    final class LongPoll: Sendable {
        private struct State {
            var done = false
            var timer: Scheduled<Void>?
            var token: Int?
        }
        private let promise: EventLoopPromise<RESPValue>
        private let state = Mutex(State())

        init(promise: EventLoopPromise<RESPValue>) { self.promise = promise }

        func setTimer(_ timer: Scheduled<Void>) {
            let done = state.withLock { s -> Bool in
                if !s.done { s.timer = timer }
                return s.done
            }
            if done { timer.cancel() }
        }

        func setToken(_ token: Int?, cancel log: ReplicationBacklog) {
            guard let token else { return }
            let done = state.withLock { s -> Bool in
                if !s.done { s.token = token }
                return s.done
            }
            if done { log.cancelNotify(token) }
        }

        func finish(with frames: [UInt8], cancel log: ReplicationBacklog) {
            let (first, timer, token) = state.withLock { s -> (Bool, Scheduled<Void>?, Int?) in
                if s.done { return (false, nil, nil) }
                s.done = true
                defer { s.timer = nil; s.token = nil }
                return (true, s.timer, s.token)
            }
            guard first else { return }
            timer?.cancel()
            if let token { log.cancelNotify(token) }
            promise.succeed(.bulk(frames))
        }
    }

    static func checkHistory(_ c: CommandCall, replid: [UInt8], generation: [UInt8]?) throws {
        let mine = c.server.replication.replid.withLock { $0 }
        if String(decoding: replid, as: UTF8.self) != mine {
            throw CommandError("LAYOUT replication id changed")
        }
        if let generation, try RedisText.int(generation) != Int64(c.store.replicationLayout.generation) {
            throw CommandError("LAYOUT the leader's shard layout changed")
        }
    }

    static func pull(_ c: inout CommandCall) throws -> RESPValue {
        c.session.isReplica.store(true, ordering: .relaxed)
        c.server.backlog.activate(store: c.store)
        try checkHistory(c, replid: c.args[1], generation: c.args[4])
        let id = String(decoding: c.args[2], as: UTF8.self)
        let port = try RedisText.int(c.args[3])
        guard port >= 0 && port <= 65535 else { throw CommandError("ERR Invalid follower port") }
        let from = try positions(c, from: 5, allowZero: false)
        let address = c.session.remoteAddress.split(separator: ":").first.map(String.init) ?? "?"
        c.server.replication.followers.withLock { f in
            f[id] = ReplicationState.Follower(id: id, address: address, port: Int(port), acked: from.map { $0 - 1 }, lastSeen: monotonicMillis())
        }
        c.server.replication.acknowledgementsChanged()
        return longPoll(&c, from: from)
    }

    /// The per-shard positions `from_i` at arguments `first...`: one per shard, each at least 1
    /// (or 0 with `allowZero`).
    static func positions(_ c: CommandCall, from first: Int, allowZero: Bool) throws -> [UInt64] {
        let shards = c.store.shardCount
        guard c.argc - first == shards else { throw CommandError("LAYOUT the leader has \(shards) shards") }
        var from: [UInt64] = []
        for a in c.args[first...] {
            let v = try RedisText.int(a)
            if v < (allowZero ? 0 : 1) { throw CommandError.notInteger }
            from.append(UInt64(v))
        }
        return from
    }

    /// Answers a pull from positions `from` (0: skip the shard) with the backlog's frames.
    static func longPoll(_ c: inout CommandCall, from: [UInt64]) -> RESPValue {
        let shards = from.count
        // Long poll: answer at once when there is something to send, else park the request
        // until the next append or 100 ms, whichever comes first; no thread waits.
        let log = c.server.backlog
        let mark = log.appended.load(ordering: .sequentiallyConsistent)
        let start = from
        let now = log.frames(shards: shards, from: from)
        if !now.isEmpty { return .bulk(now) }
        let loop = c.loop
        let promise = loop.makePromise(of: RESPValue.self)
        let poll = LongPoll(promise: promise)
        let timer = loop.scheduleTask(in: .milliseconds(100)) {
            poll.finish(with: log.frames(shards: shards, from: start), cancel: log)
        }
        poll.setTimer(timer)
        let token = log.notify(after: mark) {
            loop.execute { poll.finish(with: log.frames(shards: shards, from: start), cancel: log) }
        }
        poll.setToken(token, cancel: log)
        c.action = .later(promise.futureResult)
        return .nullBulk
    }

    static func snapshotChunk(_ c: CommandCall) throws -> RESPValue {
        try checkHistory(c, replid: c.args[1], generation: nil)
        let id = String(decoding: c.args[2], as: UTF8.self)
        let shard = Int(try RedisText.int(c.args[3]))
        let restart = try RedisText.int(c.args[4]) != 0
        var slots: [Bool]?
        if c.argc > 5 {
            do {
                slots = ClusterTopology.flags(try ClusterTopology.parseRanges(c.args[5...].map { String(decoding: $0, as: UTF8.self) }))
            } catch {
                throw CommandError("ERR \(error)")
            }
        }
        let key = "\(id)#\(shard)"
        let state = c.server.replication
        let now = monotonicMillis()
        // A snapshot pins old versions: drop those of followers that went away (idle 60 s).
        let stale = state.snapshots.withLock { m -> [ShardSnapshotReader] in
            let old = m.filter { now - $0.value.used > 60_000 }
            for k in old.keys { m[k] = nil }
            return old.values.map(\.reader)
        }
        for r in stale { r.release() }
        var reader = state.snapshots.withLock { $0[key]?.reader }
        if restart || reader == nil {
            reader?.release()
            let r = try ShardSnapshotReader(store: c.store, shard: shard, slots: slots)
            state.snapshots.withLock { $0[key] = (r, now) }
            reader = r
        } else {
            state.snapshots.withLock { $0[key]?.used = now }
        }
        let records = try reader!.next(maxBytes: 1 << 20)
        var out: [UInt8] = []
        if !records.isEmpty { ReplicationFrame.snapshotChunk(shard: shard, records: records).encode(into: &out) }
        if records.isEmpty {
            ReplicationFrame.snapshotEnd(shard: shard, sequence: reader!.sequence).encode(into: &out)
            state.snapshots.withLock { $0[key] = nil }
            reader!.release()
        }
        return .bulk(out)
    }

    /// The number of followers whose acknowledged sequences reach `target` on every shard.
    static func acknowledgedFollowers(_ server: ServerState, target: [UInt64]) -> Int {
        server.replication.followers.withLock { f in
            f.values.filter { follower in
                follower.online && follower.acked.count == target.count
                    && zip(follower.acked, target).allSatisfy { $0 >= $1 }
            }.count
        }
    }
}
