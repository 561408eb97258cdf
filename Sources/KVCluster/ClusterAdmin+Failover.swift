import Foundation

extension ClusterAdmin {
    /// A graceful failover (`kvcluster failover --to host:port`): the follower at `target`
    /// becomes its shard's leader with no acknowledged write lost.
    ///
    /// 1. The current leader stops taking writes (`CLIENT PAUSE <ms> WRITE`): clients' writes
    ///    wait.
    /// 2. Waits until the follower's `slave_repl_offset` equals the leader's
    ///    `master_repl_offset` (it holds every write the leader took).
    /// 3. Rewrites the layout in one etcd transaction conditioned on the revision it read:
    ///    the follower leads, the old leader follows, epoch + 1.
    /// 4. Waits until the old leader reports itself a follower, then lifts the pause: the
    ///    writes that waited are answered `-MOVED` to the new leader.
    ///
    /// On any failure before step 3 the pause is lifted and nothing changes.
    ///
    /// - Parameter timeout: the longest wait of steps 2 and 4, in seconds (the pause lasts at
    ///   most twice that).
    public static func failover(to target: (host: String, port: Int), etcd: EtcdClient, keys: ClusterKeys,
                                timeout: Int = 10) async throws {
        guard let kv = try await etcd.get(keys.topology) else { throw ClusterError.failed("cluster \(keys.cluster) has no layout in etcd") }
        var t = try ClusterTopology.decode(Data(kv.value))
        guard let node = t.nodes.first(where: { $0.host == target.host && $0.port == target.port }) else {
            throw ClusterError.failed("\(target.host):\(target.port) is not a node of cluster \(keys.cluster)")
        }
        guard let role = t.role(of: node.id) else { throw ClusterError.failed("\(node.address) has no role in the layout") }
        if role.leader { throw ClusterError.failed("\(node.address) already leads its shard") }
        guard let leader = t.node(t.shards[role.shard].leader) else { throw ClusterError.failed("the shard's leader is unknown") }
        let leaderConn = try RESPClient(host: leader.host, port: leader.port, timeoutSeconds: 5)
        let followerConn = try RESPClient(host: node.host, port: node.port, timeoutSeconds: 5)
        let pauseMillis = 2 * timeout * 1000
        if case .error(let e) = try leaderConn.command(["CLIENT", "PAUSE", String(pauseMillis), "WRITE"]) {
            throw ClusterError.failed("\(leader.address) refused CLIENT PAUSE: \(e)")
        }
        func unpause() { _ = try? leaderConn.command(["CLIENT", "UNPAUSE"]) }
        let deadline = ContinuousClock.now + .seconds(timeout)
        var caughtUp = false
        var last = (leader: Int64(-1), follower: Int64(-2))
        var problem = ""
        while ContinuousClock.now < deadline {
            var l: Int64?
            var f: Int64?
            do {
                l = try infoField(leaderConn, "master_repl_offset")
                f = try infoField(followerConn, "slave_repl_offset")
            } catch {
                problem = " (\(error))"
            }
            last = (l ?? -1, f ?? -2)
            if let l, let f, l == f {
                caughtUp = true
                break
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        guard caughtUp else {
            unpause()
            throw ClusterError.failed(
                "\(node.address) did not catch up with \(leader.address) within \(timeout) s (offsets \(last.follower) and \(last.leader))\(problem); nothing was changed")
        }
        t.shards[role.shard].followers.removeAll { $0 == node.id }
        t.shards[role.shard].followers.append(leader.id)
        t.shards[role.shard].leader = node.id
        t.epoch += 1
        let r = try await etcd.txn(
            compares: [EtcdCompare(key: keys.topology, .modRevision(kv.modRevision))],
            success: [.put(key: keys.topology, value: [UInt8](try t.encoded()), lease: nil)])
        guard r.succeeded else {
            unpause()
            throw ClusterError.failed("the layout changed meanwhile; nothing was changed (run the failover again)")
        }
        // The old leader must know it follows before its waiting writes run.
        let stepDown = ContinuousClock.now + .seconds(timeout)
        while ContinuousClock.now < stepDown {
            if let nodes = try? leaderConn.command(["CLUSTER", "NODES"]).text,
               nodes.split(separator: "\n").contains(where: { $0.hasPrefix(leader.id + " ") && $0.contains("myself,slave") }) {
                break
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        unpause()
        // The new leader has taken its role once it reports it.
        let promoted = ContinuousClock.now + .seconds(timeout)
        while ContinuousClock.now < promoted {
            if (try? infoText(followerConn).contains("role:master")) == true { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw ClusterError.failed("the layout names \(node.address) leader, but it did not report the role within \(timeout) s")
    }

    /// `INFO replication`'s text.
    static func infoText(_ conn: RESPClient) throws -> String {
        try conn.command(["INFO", "replication"]).text ?? ""
    }

    /// An integer field of `INFO replication` of the node `conn` talks to (nil: absent).
    public static func infoField(_ conn: RESPClient, _ name: String) throws -> Int64? {
        for line in try infoText(conn).split(whereSeparator: \.isNewline) where line.hasPrefix(name + ":") {
            return Int64(line.dropFirst(name.count + 1))
        }
        return nil
    }
}
