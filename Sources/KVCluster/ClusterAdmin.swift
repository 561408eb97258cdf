import Foundation

extension ClusterTopology {
    /// The 16,384 slots split into `count` contiguous ranges of nearly equal size, in order,
    /// as redis-cli's `--cluster create` splits them (3 → 0-5460, 5461-10922, 10923-16383).
    public static func evenSlots(count: Int) -> [ClosedRange<Int>] {
        guard count > 0 else { return [] }
        let per = Double(slotCount) / Double(count)
        var out: [ClosedRange<Int>] = []
        var first = 0
        var cursor = 0.0
        for i in 0..<count {
            var last = Int((cursor + per - 1).rounded())
            if last > slotCount - 1 || i == count - 1 { last = slotCount - 1 }
            if last < first { last = first }
            out.append(first...last)
            first = last + 1
            cursor += per
        }
        return out
    }

    /// The first layout of a new cluster (epoch 1): leader *i* serves the *i*-th range of
    /// ``evenSlots(count:)``, and follower *j* follows leader *j* mod the number of leaders.
    /// Throws when there is no leader or a node appears twice.
    public static func initial(leaders: [ClusterNode], followers: [ClusterNode] = []) throws -> ClusterTopology {
        guard !leaders.isEmpty else { throw ClusterError.failed("a cluster needs at least one leader") }
        guard leaders.count <= slotCount else { throw ClusterError.failed("more leaders than slots") }
        let ranges = evenSlots(count: leaders.count)
        var shards = zip(leaders, ranges).map { ClusterShard(leader: $0.id, slots: [[$1.lowerBound, $1.upperBound]]) }
        for (j, f) in followers.enumerated() {
            shards[j % leaders.count].followers.append(f.id)
        }
        let t = ClusterTopology(epoch: 1, nodes: leaders + followers, shards: shards)
        if let p = t.problem() { throw ClusterError.failed("cannot create the cluster: \(p)") }
        return t
    }
}

/// The operations of `kvcluster` on etcd.
public enum ClusterAdmin {
    /// Writes the first layout of cluster `keys.cluster`, only if it has none: an etcd
    /// transaction whose one compare is "``ClusterKeys/topology`` does not exist". Returns the
    /// revision written; throws ``ClusterError/failed(_:)`` when a topology already exists.
    @discardableResult
    public static func create(_ topology: ClusterTopology, etcd: EtcdClient, keys: ClusterKeys) async throws -> Int64 {
        let json = try topology.encoded()
        let r = try await etcd.txn(
            compares: [.absent(keys.topology)],
            success: [.put(key: keys.topology, value: [UInt8](json), lease: nil)],
            failure: [.range(key: keys.topology, prefix: false)]
        )
        if r.succeeded { return r.revision }
        var since = ""
        if case .range(let kvs) = r.responses.first, let kv = kvs.first { since = " (written at revision \(kv.createRevision))" }
        throw ClusterError.failed("cluster \(keys.cluster) already exists in etcd: \(keys.topology) is set\(since); nothing was changed")
    }

    /// The layout and the registrations of cluster `keys.cluster`.
    public static func status(etcd: EtcdClient, keys: ClusterKeys) async throws -> ClusterStatus {
        let (kvs, revision) = try await etcd.read(keys.prefix, prefix: true)
        var status = ClusterStatus(cluster: keys.cluster, revision: revision)
        for kv in kvs {
            if kv.key == keys.topology {
                do {
                    status.topology = try ClusterTopology.decode(kv.data)
                } catch {
                    status.problem = "\(error)"
                }
            } else if kv.key.hasPrefix(keys.alivePrefix) {
                let id = String(kv.key.dropFirst(keys.alivePrefix.count))
                status.alive[id] = try? JSONDecoder().decode(ClusterNode.self, from: kv.data)
            }
        }
        return status
    }
}

/// What `kvcluster status` shows: the layout and which nodes are registered (alive).
public struct ClusterStatus: Sendable, Equatable {
    /// The cluster name.
    public var cluster: String
    /// The etcd revision read at.
    public var revision: Int64
    /// The layout (nil: none, or unreadable, see ``problem``).
    public var topology: ClusterTopology?
    /// Why the layout in etcd could not be read.
    public var problem: String?
    /// The registered nodes by id (the value nil when the registration is unreadable).
    public var alive: [String: ClusterNode?] = [:]

    /// A status.
    public init(cluster: String, revision: Int64, topology: ClusterTopology? = nil, problem: String? = nil, alive: [String: ClusterNode?] = [:]) {
        self.cluster = cluster
        self.revision = revision
        self.topology = topology
        self.problem = problem
        self.alive = alive
    }

    func describe(_ id: String, in t: ClusterTopology) -> String {
        let address = t.node(id)?.address ?? "?"
        return "\(id) \(address) \(alive.keys.contains(id) ? "alive" : "down")"
    }

    /// The text form: one block per shard (leader, followers, slot ranges), then any
    /// registered node outside the layout.
    public func text() -> String {
        var lines = ["cluster \(cluster) (etcd revision \(revision))"]
        guard let t = topology else {
            lines.append(problem.map { "topology unreadable: \($0)" } ?? "no topology (run kvcluster create)")
            for id in alive.keys.sorted() { lines.append("registered: \(id) \(alive[id]??.address ?? "?")") }
            return lines.joined(separator: "\n") + "\n"
        }
        lines.append("epoch \(t.epoch), \(t.assignedSlots) of \(ClusterTopology.slotCount) slots assigned")
        for (i, s) in t.shards.enumerated() {
            let ranges = s.slots.map { $0.count == 2 && $0[0] != $0[1] ? "\($0[0])-\($0[1])" : "\($0.first ?? 0)" }
            lines.append("shard \(i): slots \(ranges.joined(separator: ",")) (\(s.slotCount))")
            lines.append("  leader   \(describe(s.leader, in: t))")
            for f in s.followers { lines.append("  follower \(describe(f, in: t))") }
        }
        for id in alive.keys.sorted() where t.role(of: id) == nil {
            lines.append("registered outside the layout: \(id) \(alive[id]??.address ?? "?")")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The JSON form: `{"cluster","revision","epoch","shards":[{"slots","leader":{"id","address","alive"},"followers":[...]}],"alive":[ids],"problem"}`.
    public func json() throws -> Data {
        var out: [String: Any] = ["cluster": cluster, "revision": revision, "alive": alive.keys.sorted()]
        if let problem { out["problem"] = problem }
        if let t = topology {
            func node(_ id: String) -> [String: Any] {
                ["id": id, "address": t.node(id)?.address ?? "", "alive": alive.keys.contains(id)]
            }
            out["epoch"] = t.epoch
            out["shards"] = t.shards.map { s -> [String: Any] in
                ["slots": s.slots, "leader": node(s.leader), "followers": s.followers.map(node)]
            }
        }
        return try JSONSerialization.data(withJSONObject: out, options: [.sortedKeys, .prettyPrinted])
    }
}
