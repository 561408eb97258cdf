import KVCluster
import KVStore
import Logging

/// Automatic failover (see DESIGN.md, "Cluster mode"): a follower checks every second that
/// its shard's leader is registered in etcd (its registration lives under its lease, so it
/// goes when the leader has not renewed the lease for the lease time). Once it is gone, the
/// most up-to-date registered follower (highest replication offset, then lowest node id)
/// rewrites the layout in one etcd transaction that succeeds only if the layout is still the
/// one it read: itself as the shard's leader, the old leader as a follower (so when it comes
/// back it follows the new leader and, having no position in its history, takes a full sync,
/// dropping anything it wrote that was never replicated). Any other follower takes over only
/// if the chosen one has not done so after two more lease times.
extension ClusterAgent {
    /// Runs the watch until cancelled.
    static func watchLeader(server: ServerState, etcd: EtcdClient, keys: ClusterKeys, leaseSeconds: Int, logger: Logger) async {
        guard let cluster = server.cluster else { return }
        var goneSince: ContinuousClock.Instant?
        let clock = ContinuousClock()
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            let v = cluster.view
            guard let t = v.topology, let role = v.role, !role.leader else {
                goneSince = nil
                continue
            }
            let shard = t.shards[role.shard]
            let registered: Bool
            do {
                registered = try await etcd.get(keys.alive(shard.leader)) != nil
            } catch {
                // etcd unreachable: nobody can decide anything; wait.
                goneSince = nil
                continue
            }
            if registered {
                goneSince = nil
                continue
            }
            let now = clock.now
            if goneSince == nil { goneSince = now }
            let me = cluster.myself.id
            var best: (offset: Int64, id: String)?
            for id in shard.followers {
                guard let node = t.node(id) else { continue }
                let offset: Int64?
                if id == me {
                    offset = server.replication.link.withLock { $0 }.map { Int64($0.applied.reduce(0) { $0 &+ $1 }) } ?? 0
                } else {
                    guard (try? await etcd.get(keys.alive(id))) != nil else { continue }
                    offset = replicationOffset(of: node)
                }
                guard let offset else { continue }
                if best == nil || offset > best!.offset || (offset == best!.offset && id < best!.id) { best = (offset, id) }
            }
            let late = now - goneSince! > .seconds(2 * leaseSeconds)
            guard best?.id == me || late else { continue }
            do {
                if try await takeOver(shard: role.shard, from: shard.leader, me: me, etcd: etcd, keys: keys) {
                    logger.warning("cluster: took over as leader of shard \(role.shard): its leader \(shard.leader) lost its lease")
                    goneSince = nil
                }
            } catch {
                logger.warning("cluster: failover of shard \(role.shard) failed: \(error)")
            }
        }
    }

    /// A follower's replication offset (`INFO replication`'s `slave_repl_offset`), or nil when
    /// it cannot be asked.
    static func replicationOffset(of node: ClusterNode) -> Int64? {
        guard let conn = try? RESPClient(host: node.host, port: node.port, timeoutSeconds: 1) else { return nil }
        return (try? ClusterAdmin.infoField(conn, "slave_repl_offset")) ?? nil
    }

    /// Rewrites the layout with `me` leading shard `shard` instead of `old`, if the layout in
    /// etcd still has `old` leading it. Returns whether this call changed it.
    static func takeOver(shard: Int, from old: String, me: String, etcd: EtcdClient, keys: ClusterKeys) async throws -> Bool {
        guard let kv = try await etcd.get(keys.topology) else { return false }
        var t = try ClusterTopology.decode(kv.data)
        guard shard < t.shards.count, t.shards[shard].leader == old, t.shards[shard].followers.contains(me) else { return false }
        t.shards[shard].followers.removeAll { $0 == me }
        t.shards[shard].followers.append(old)
        t.shards[shard].leader = me
        t.epoch += 1
        let result = try await etcd.txn(
            compares: [EtcdCompare(key: keys.topology, .modRevision(kv.modRevision))],
            success: [.put(key: keys.topology, value: Array(try t.encoded()), lease: nil)])
        return result.succeeded
    }
}
