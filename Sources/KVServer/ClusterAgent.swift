import KVCluster
import KVStore
import Logging

/// Runs a node in cluster mode: registers it in etcd under its lease and follows the layout
/// (``ClusterMember``), installing each layout in the node's ``ClusterState`` and taking the
/// role it gives the node — a shard's leader stops following anyone, a follower follows its
/// shard's leader (the replication link of REPLICAOF). A lost lease makes the leader refuse
/// writes until it is renewed.
final class ClusterAgent: Sendable {
    let member: ClusterMember
    let etcd: EtcdClient
    /// The follower's watch of its leader (``watchLeader(server:etcd:keys:leaseSeconds:logger:)``).
    let watchdog: Task<Void, Never>

    /// Starts the agent of `server` (which was created with a cluster state).
    init(server: ServerState, config: ServerConfig, logger: Logger) {
        let cluster = server.cluster!
        etcd = EtcdClient(endpoints: config.clusterEtcd)
        let keys = ClusterKeys(cluster: config.clusterName)
        member = ClusterMember(
            etcd: etcd, keys: keys, node: cluster.myself, leaseTTL: Int64(config.clusterLeaseSeconds),
            onTopology: { topology in
                let role = cluster.install(topology)
                // Slots that finished moving: the old owner deletes their rows.
                if let gone = cluster.moves.settle(owners: cluster.view.owners, mine: role?.shard) {
                    logger.info("cluster: slots moved away; deleting their rows")
                    cluster.moves.purge(gone, store: server.store)
                } else if let role, role.leader,
                          cluster.moves.purgeLeftovers(owners: cluster.view.owners, mine: role.shard, store: server.store) {
                    logger.info("cluster: deleting any rows of slots other shards serve (left by a crash during a move)")
                }
                Self.take(role, topology, server: server, logger: logger)
            },
            onLease: { held in
                cluster.setLease(held: held)
                if held {
                    logger.info("cluster lease held")
                } else {
                    logger.warning("cluster lease lost: refusing writes until it is renewed")
                }
            },
            onProblem: { problem in logger.warning("cluster: \(problem)") })
        member.start()
        let etcd = self.etcd
        let lease = config.clusterLeaseSeconds
        watchdog = Task { await Self.watchLeader(server: server, etcd: etcd, keys: keys, leaseSeconds: lease, logger: logger) }
    }

    /// Takes the role `role` of layout `topology`.
    static func take(_ role: (shard: Int, leader: Bool)?, _ topology: ClusterTopology?, server: ServerState, logger: Logger) {
        guard let topology else { return }
        guard let role else {
            // Removed from the layout (kvcluster remove-node): it follows no one any more.
            if server.replication.isReplica {
                do {
                    try server.promoteToLeader()
                    logger.info("cluster: removed from the layout; stopped following")
                } catch {
                    logger.error("cluster: cannot stop following", metadata: ["error": "\(error)"])
                }
            }
            return
        }
        if role.leader {
            do {
                try server.promoteToLeader()
            } catch {
                logger.error("cluster: cannot take the leader role", metadata: ["error": "\(error)"])
            }
            return
        }
        guard let leader = topology.node(topology.shards[role.shard].leader) else { return }
        if server.follow(host: leader.host, port: leader.port) {
            logger.info("cluster: following the shard's leader", metadata: ["leader": "\(leader.address)", "shard": "\(role.shard)"])
        }
    }

    /// Stops: the lease is revoked (the node's registration goes at once).
    func stop() async {
        watchdog.cancel()
        await watchdog.value
        await member.stop()
        await etcd.shutdown()
    }
}
