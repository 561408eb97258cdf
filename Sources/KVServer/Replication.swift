import KVBase
import KVProtocol
import KVStore
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
        CommandSpec("shale.replpull", -6, ["admin"]) { c in try pull(c) },
        // SHALE.REPLSNAP replid follower-id shard restart(0|1)
        CommandSpec("shale.replsnap", 5, ["admin"]) { c in try snapshotChunk(c) },
    ]

    static func checkHistory(_ c: CommandCall, replid: [UInt8], generation: [UInt8]?) throws {
        let mine = c.server.replication.replid.withLock { $0 }
        if String(decoding: replid, as: UTF8.self) != mine {
            throw CommandError("LAYOUT replication id changed")
        }
        if let generation, try RedisText.int(generation) != Int64(c.store.replicationLayout.generation) {
            throw CommandError("LAYOUT the leader's shard layout changed")
        }
    }

    static func pull(_ c: CommandCall) throws -> RESPValue {
        try checkHistory(c, replid: c.args[1], generation: c.args[4])
        let id = String(decoding: c.args[2], as: UTF8.self)
        let port = Int(try RedisText.int(c.args[3]))
        let shards = c.store.shardCount
        guard c.argc - 5 == shards else { throw CommandError("LAYOUT the leader has \(shards) shards") }
        var from: [UInt64] = []
        for a in c.args[5...] {
            let v = try RedisText.int(a)
            if v < 1 { throw CommandError.notInteger }
            from.append(UInt64(v))
        }
        let address = c.session.remoteAddress.split(separator: ":").first.map(String.init) ?? "?"
        c.server.replication.followers.withLock { f in
            f[id] = ReplicationState.Follower(id: id, address: address, port: port, acked: from.map { $0 - 1 }, lastSeen: monotonicMillis())
        }
        // Long poll: wait up to 100 ms for something to send.
        let log = c.store.replicationLog
        let deadline = monotonicMillis() + 100
        while true {
            let mark = log.appended.load(ordering: .acquiring)
            var out: [UInt8] = []
            var budget = 4 << 20
            for shard in 0..<shards where budget > 0 {
                switch log.read(shard: shard, from: from[shard], maxBytes: budget) {
                case .tooOld:
                    ReplicationFrame.resync(shard: shard).encode(into: &out)
                case .groups(let groups):
                    for g in groups {
                        ReplicationFrame.group(shard: shard, first: g.first, last: g.last, batch: g.batch).encode(into: &out)
                        budget -= g.batch.count
                    }
                }
            }
            if !out.isEmpty || monotonicMillis() >= deadline { return .bulk(out) }
            while log.appended.load(ordering: .acquiring) == mark && monotonicMillis() < deadline { usleep(2_000) }
        }
    }

    static func snapshotChunk(_ c: CommandCall) throws -> RESPValue {
        try checkHistory(c, replid: c.args[1], generation: nil)
        let id = String(decoding: c.args[2], as: UTF8.self)
        let shard = Int(try RedisText.int(c.args[3]))
        let restart = try RedisText.int(c.args[4]) != 0
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
            let r = try c.store.replicationSnapshot(shard: shard)
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
