import KVLayout

/// The consistent ring that assigns the 16384 slots to shards.
///
/// The ring is the circle of slot positions `0..<16384`. Each shard holds virtual nodes: runs
/// of consecutive slots, each ending at a token; a slot belongs to the shard whose token comes
/// next. `HashRing.owners(shardCount: n)` is a pure function of `n`, built incrementally:
///
///     ring(1): shard 0 holds the single run 0...16383.
///     ring(k+1) = ring(k) plus shard k, which takes exactly  L_j - t_j  slots from every
///     shard j < k, where L_j is j's load in ring(k) and t_j its target in ring(k+1):
///       q = 16384 / (k+1), r = 16384 % (k+1);
///       the r shards of largest load (ties: lower id) get q+1, the others and shard k get q.
///     Shard j gives its slots from the tail of its longest run (ties: lowest start),
///     continuing with its next-longest run if that run is too short.
///
/// Consequences, for every pair of counts n < m:
/// - Balance: every shard of ring(n) owns ⌊16384/n⌋ or ⌈16384/n⌉ slots (max/min ≤ 1.004 for
///   n ≤ 64).
/// - Minimal movement: a slot changes owner between ring(n) and ring(m) exactly when its owner
///   in ring(m) is one of the shards n..<m; that is (m−n)/m of the slots, the least any
///   balanced assignment can move. Growing only moves slots to the new shards, shrinking only
///   moves slots away from the removed ones.
///
/// Why not hashed tokens: with tokens placed by a hash, a shard's share has a relative spread
/// of about 1/√(vnodes) from the arc lengths, and once the tokens outnumber the slots the
/// slot quantisation adds 1/√(slots per shard) (6.25% at 64 shards). Measured with 256, 512
/// and 1024 SplitMix64-hashed vnodes per shard, the worst max/min slot count over 4...64
/// shards was 1.42, 1.34 and 1.47: no vnode count keeps it within 1.25. Allocating the tokens
/// deterministically (as Cassandra's vnode token allocator does) removes both sources of
/// spread and keeps movement exactly minimal.
///
/// The table a store routes by is persisted in its descriptor, so a future change of this
/// algorithm (identified by ``algorithm``) can never silently re-route existing data.
package enum HashRing {
    /// Identifier of this allocation algorithm, recorded in the store descriptor.
    package static let algorithm: UInt32 = 1

    /// The largest shard count a ring may have.
    package static let maxShards = 1024

    /// One virtual node: the slots `start..<(start + length)`.
    struct Run {
        var start: Int
        var length: Int
    }

    /// The owner shard of every slot for `shardCount` shards.
    package static func owners(shardCount: Int) -> [UInt16] {
        var owners = [UInt16](repeating: 0, count: HashSlot.count)
        for (shard, runs) in allocate(shardCount: shardCount).enumerated() {
            for run in runs {
                for slot in run.start..<(run.start + run.length) { owners[slot] = UInt16(shard) }
            }
        }
        return owners
    }

    /// The runs (virtual nodes) of every shard for `shardCount` shards.
    static func allocate(shardCount n: Int) -> [[Run]] {
        let slots = HashSlot.count
        precondition(n >= 1 && n <= maxShards, "shard count \(n) outside 1...\(maxShards)")
        // Each shard's runs, longest first (ties: lowest start).
        var runs: [[Run]] = [[Run(start: 0, length: slots)]]
        var loads = [slots]
        func before(_ a: Run, _ b: Run) -> Bool {
            a.length != b.length ? a.length > b.length : a.start < b.start
        }
        for k in stride(from: 1, to: n, by: 1) {
            let q = slots / (k + 1)
            let r = slots % (k + 1)
            let order = (0..<k).sorted { loads[$0] != loads[$1] ? loads[$0] > loads[$1] : $0 < $1 }
            var targets = [Int](repeating: q, count: k)
            for i in 0..<r { targets[order[i]] = q + 1 }
            var taken: [Run] = []
            for j in 0..<k {
                var give = loads[j] - targets[j]
                precondition(give >= 0, "ring allocation: shard \(j) below its target")
                loads[j] = targets[j]
                while give > 0 {
                    var longest = runs[j].removeFirst()
                    let m = min(give, longest.length)
                    taken.append(Run(start: longest.start + longest.length - m, length: m))
                    longest.length -= m
                    give -= m
                    if longest.length > 0 {
                        let at = runs[j].firstIndex { !before($0, longest) } ?? runs[j].count
                        runs[j].insert(longest, at: at)
                    }
                }
            }
            taken.sort { $0.start < $1.start }
            var merged: [Run] = []
            for run in taken {
                if let last = merged.last, last.start + last.length == run.start {
                    merged[merged.count - 1].length += run.length
                } else {
                    merged.append(run)
                }
            }
            merged.sort(by: before)
            runs.append(merged)
            loads.append(q)
        }
        return runs
    }

    /// The slots of `shard` in `owners` as ascending, maximal ranges of consecutive slots
    /// (the shape of Redis `CLUSTER SLOTS`).
    package static func ranges(of shard: Int, in owners: [UInt16]) -> [ClosedRange<Int>] {
        var out: [ClosedRange<Int>] = []
        var start: Int?
        for slot in 0...owners.count {
            let mine = slot < owners.count && Int(owners[slot]) == shard
            if mine, start == nil { start = slot }
            if !mine, let s = start {
                out.append(s...(slot - 1))
                start = nil
            }
        }
        return out
    }
}
