import KVStore

extension ServerState {
    /// Stops following a leader and takes writes of its own (REPLICAOF NO ONE, and cluster
    /// mode when etcd names this node its shard's leader): the link stops, the replication
    /// positions are forgotten (a later re-attach takes a full sync, its own writes being a
    /// divergent history), the indexes become this server's own, and a new replication id
    /// starts a new history its followers resynchronize to. Nothing happens when it already
    /// leads.
    ///
    /// - Throws: ``CommandError`` when the positions could not be reset or the index
    ///   metadata not loaded.
    func promoteToLeader() throws {
        let state = replication
        let old = state.client.withLock { cl -> ReplicationClient? in
            defer { cl = nil }
            return cl
        }
        if old != nil || state.isReplica {
            old?.stop()
            do {
                try replica.forgetPositions()
            } catch {
                throw CommandError("ERR cannot promote: the replication positions could not be reset: \(error)")
            }
            state.link.withLock { $0 = nil }
            do {
                try store.setFollowingLeader(false)
            } catch {
                throw CommandError("ERR promoted, but the index metadata could not be loaded: \(error)")
            }
            state.replid.withLock { $0 = ReplicationState.newID() }
            logger.info("promoted to leader (REPLICAOF NO ONE)")
        }
    }

    /// Follows the leader at `host:port` unless it already does (REPLICAOF host port, and
    /// cluster mode when etcd names this node a follower). Returns false when it already
    /// followed that leader.
    @discardableResult
    func follow(host: String, port: Int) -> Bool {
        if let link = replication.link.withLock({ $0 }), link.host == host, link.port == port { return false }
        startReplication(host: host, port: port)
        live.withLock { $0.replicaOf = "\(host):\(port)" }
        return true
    }
}
