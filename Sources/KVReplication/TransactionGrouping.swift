import KVBase
import KVLayout

/// One write group of a pull reply.
public struct PulledGroup: Sendable {
    /// The leader shard that committed it.
    public var shard: Int
    /// Its first and last sequence numbers.
    public var first: UInt64
    public var last: UInt64
    /// The encoded write batch.
    public var batch: [UInt8]

    /// A group.
    public init(shard: Int, first: UInt64, last: UInt64, batch: [UInt8]) {
        self.shard = shard
        self.first = first
        self.last = last
        self.batch = batch
    }
}

/// Applies the groups of each pull so that a leader transaction spanning shards is applied
/// here as one unit: every leader shard streams on its own, so the part of one shard may
/// arrive before another's. A shard whose next group holds a part (it carries the
/// transaction's intent or part marker, ``TransactionRecord``) stops there until every
/// participant's stream stands at its part of the same transaction; then those groups are
/// applied together (``ReplicaApplier/applyJointly(_:replid:leaderOwners:)``). A shard stopped
/// is pulled again from the stopped group. The leader commits transactions spanning shards
/// one at a time, parts in shard order, so the streams meet their parts in the same order and
/// cannot wait on each other in a cycle.
///
/// When a participant never reaches its part — a full sync of its shard brought the part in
/// its snapshot — a stream stopped for ``stallLimitMillis`` applies its group alone.
///
/// Thread safety: one instance per link, used by the link's thread only.
public final class TransactionGrouping {
    /// The most milliseconds a stream waits at a part for the other participants.
    public static let stallLimitMillis: Int64 = 5000
    /// About how many bytes of consecutive groups of one shard are applied as one batch.
    static let runBytes = 1 << 20

    /// Where each stopped stream stopped (its group's first sequence) and since when.
    private var stopped: [Int: (first: UInt64, since: Int64)] = [:]
    /// Transactions applied jointly lately (their later parts, if any, apply alone).
    private var recent: [UInt64] = []
    private var recentSet: Set<UInt64> = []

    /// A grouping with nothing stopped.
    public init() {}

    /// Applies what can be applied of `groups` (in the order the pull delivered them; each
    /// shard's consecutive from `applied[shard] + 1`), advancing `applied` for every group
    /// applied. Groups left over are pulled again. `now`: monotonic milliseconds (tests).
    ///
    /// - Returns: how many groups were applied.
    @discardableResult
    public func apply(
        _ groups: [PulledGroup], applier: ReplicaApplier, replid: String, leaderOwners: [UInt16], applied: inout [UInt64],
        now: Int64? = nil
    ) throws -> Int {
        let now = now ?? monotonicMillis()
        var queues: [Int: ArraySlice<PulledGroup>] = [:]
        for g in groups { queues[g.shard, default: []].append(g) }
        var parts: [Int: TransactionRecord?] = [:]  // by shard: the part at the head of its queue
        var done = 0
        func part(_ g: PulledGroup) throws -> TransactionRecord? {
            guard let t = try ReplicaApplier.transaction(in: g.batch), t.participants.count > 1,
                  !recentSet.contains(t.id) else { return nil }
            // Stopped too long: apply it alone.
            if let s = stopped[g.shard], s.first == g.first, now - s.since >= Self.stallLimitMillis { return nil }
            return t
        }
        var progress = true
        while progress {
            progress = false
            for shard in queues.keys.sorted() {
                var run: [[UInt8]] = []
                var bytes = 0
                var last: UInt64 = 0
                while let g = queues[shard]!.first {
                    if let t = try part(g) {
                        parts[shard] = t
                        break
                    }
                    run.append(g.batch)
                    bytes += g.batch.count
                    last = g.last
                    queues[shard]!.removeFirst()
                    if bytes >= Self.runBytes { break }
                }
                if !run.isEmpty {
                    try applier.applyGroups(leaderShard: shard, batches: run, replid: replid, leaderOwners: leaderOwners)
                    applied[shard] = last
                    done += run.count
                    stopped[shard] = nil
                    progress = true
                }
            }
            // Transactions whose every part is at the head of its stream.
            var heads: [UInt64: [Int]] = [:]
            for (shard, t) in parts {
                guard let t, queues[shard]?.first != nil else { continue }
                heads[t.id, default: []].append(shard)
            }
            for (id, shards) in heads.sorted(by: { $0.key < $1.key }) {
                guard let t = parts[shards[0]]!, Set(t.participants).isSubset(of: Set(shards)) else { continue }
                let joint = t.participants.map { s in (leaderShard: s, group: queues[s]!.first!) }
                try applier.applyJointly(joint.map { ($0.leaderShard, $0.group.batch) }, replid: replid, leaderOwners: leaderOwners)
                for (s, g) in joint {
                    applied[s] = g.last
                    queues[s]!.removeFirst()
                    parts[s] = nil
                    stopped[s] = nil
                }
                remember(id)
                done += joint.count
                progress = true
            }
            for (shard, t) in parts where t != nil && queues[shard]?.first == nil { parts[shard] = nil }
        }
        // Streams left stopped at a part: note since when.
        for (shard, q) in queues {
            guard let g = q.first else { continue }
            if stopped[shard]?.first != g.first { stopped[shard] = (g.first, now) }
        }
        return done
    }

    /// Forgets where streams stopped (the link starts over).
    public func reset() {
        stopped = [:]
    }

    private func remember(_ id: UInt64) {
        recent.append(id)
        recentSet.insert(id)
        if recent.count > 4096 {
            recentSet.remove(recent.removeFirst())
        }
    }
}
