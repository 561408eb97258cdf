import Foundation

extension ClusterTopology {
    /// The layout with `slots` served by shard `shard` (taken from whichever shards had them),
    /// epoch + 1.
    public func moving(_ slots: [[Int]], to shard: Int) -> ClusterTopology {
        var t = self
        let moved = Self.flags(slots)
        for i in t.shards.indices where i != shard {
            var keep = Self.flags(t.shards[i].slots)
            for s in keep.indices where moved[s] { keep[s] = false }
            t.shards[i].slots = Self.ranges(keep.indices.filter { keep[$0] })
        }
        var mine = Self.flags(t.shards[shard].slots)
        for s in mine.indices where moved[s] { mine[s] = true }
        t.shards[shard].slots = Self.ranges(mine.indices.filter { mine[$0] })
        t.epoch += 1
        return t
    }

    /// The layout with `node` added, epoch + 1: as the leader of a new shard without slots, or
    /// (`following` a leader's id) as that shard's last follower. Throws when the node id or
    /// address is in the layout already, or `following` leads no shard.
    public func adding(_ node: ClusterNode, following leader: String? = nil) throws -> ClusterTopology {
        if self.node(node.id) != nil { throw ClusterError.failed("node \(node.id) (\(node.address)) is in the layout already") }
        if nodes.contains(where: { $0.host == node.host && $0.port == node.port }) {
            throw ClusterError.failed("another node has the address \(node.address) in the layout")
        }
        var t = self
        t.nodes.append(node)
        if let leader {
            guard let role = role(of: leader), role.leader else {
                throw ClusterError.failed("\(self.node(leader)?.address ?? leader) leads no shard")
            }
            t.shards[role.shard].followers.append(node.id)
        } else {
            t.shards.append(ClusterShard(leader: node.id, slots: []))
        }
        t.epoch += 1
        if let p = t.problem() { throw ClusterError.failed("cannot add \(node.address): \(p)") }
        return t
    }

    /// The layout without node `id`, epoch + 1: a follower leaves its shard; a leader's shard
    /// goes with it, which is refused while the shard serves slots or has followers.
    public func removing(_ id: String) throws -> ClusterTopology {
        guard let n = node(id) else { throw ClusterError.failed("node \(id) is not in the layout") }
        var t = self
        if let role = role(of: id) {
            if role.leader {
                let s = shards[role.shard]
                if s.slotCount > 0 {
                    throw ClusterError.failed(
                        "\(n.address) leads a shard serving \(s.slotCount) slots: move them away first (kvcluster move --slots ... --to ...)")
                }
                if !s.followers.isEmpty {
                    throw ClusterError.failed("\(n.address) leads a shard with followers: remove them first")
                }
                t.shards.remove(at: role.shard)
            } else {
                t.shards[role.shard].followers.removeAll { $0 == id }
            }
        }
        t.nodes.removeAll { $0.id == id }
        t.epoch += 1
        return t
    }
}

/// What `kvcluster move` reports.
public struct MoveReport: Sendable {
    /// Slots moved.
    public var slots = 0
    /// Rows copied to the new owners (snapshot rows and changes streamed during the copy).
    public var keys = 0
    /// Wall time of the whole move, seconds.
    public var seconds = 0.0
    /// The longest time writes to a moving slot were held (from the pause to the handoff), ms.
    public var longestPauseMillis = 0.0
    /// Rows the old owners deleted after the switch.
    public var purgedKeys = 0

    /// A report.
    public init() {}
}

extension ClusterAdmin {
    /// Moves `slots` to the leader at `target` online (`kvcluster move`), one source shard at a
    /// time (DESIGN.md "Slot moves"):
    ///
    /// 1. The target copies the slots' rows from the source (a snapshot restricted to them)
    ///    and streams the source's later changes (`SHALE.SLOTMOVE IMPORT`).
    /// 2. Once streaming, the source holds writes to the slots (`PAUSE`) and reports its
    ///    sequence numbers; the target catches up to them and stops (`FINISH`).
    /// 3. The source answers requests for the slots with `-ASK target` (`HANDOFF`): the held
    ///    writes go on at the target.
    /// 4. The layout (etcd transaction on the revision read) gives the slots to the target,
    ///    epoch + 1; both nodes install it (`-MOVED` from then on), and the source deletes
    ///    the slots' rows.
    ///
    /// A failure before step 3 cancels both sides (the source serves the slots again, the
    /// target deletes its copy) and throws. After step 3 the move only goes forward.
    ///
    /// - Parameters:
    ///   - timeout: the longest wait for the copy of each source's slots, seconds.
    ///   - pauseMillis: the longest a switch may hold writes; the source lifts the hold after
    ///     it and the move fails.
    ///   - progress: called with a line per step.
    public static func move(
        slots: [[Int]], to target: (host: String, port: Int), etcd: EtcdClient, keys: ClusterKeys,
        timeout: Int = 600, pauseMillis: Int = 5000, progress: (String) -> Void = { _ in }
    ) async throws -> MoveReport {
        let started = ContinuousClock.now
        var report = MoveReport()
        guard let kv = try await etcd.get(keys.topology) else { throw ClusterError.failed("cluster \(keys.cluster) has no layout in etcd") }
        let t = try ClusterTopology.decode(Data(kv.value))
        guard let targetNode = t.nodes.first(where: { $0.host == target.host && $0.port == target.port }) else {
            throw ClusterError.failed("\(target.host):\(target.port) is not a node of cluster \(keys.cluster)")
        }
        guard let targetRole = t.role(of: targetNode.id), targetRole.leader else {
            throw ClusterError.failed("\(targetNode.address) leads no shard: slots move to a leader")
        }
        let wanted = ClusterTopology.flags(slots)
        let owners = t.slotOwners()
        var bySource: [Int: [Int]] = [:]
        var unassigned: [Int] = []
        for s in wanted.indices where wanted[s] {
            if let o = owners[s] {
                if o != targetRole.shard { bySource[o, default: []].append(s) }
            } else {
                unassigned.append(s)
            }
        }
        if !unassigned.isEmpty {
            // No data to copy: the layout alone gives them to the target.
            let ranges = ClusterTopology.ranges(unassigned)
            try await commit(ranges, to: targetRole.shard, from: nil, etcd: etcd, keys: keys)
            report.slots += unassigned.count
            progress("assigned \(unassigned.count) unassigned slots to \(targetNode.address)")
        }
        for source in bySource.keys.sorted() {
            let ranges = ClusterTopology.ranges(bySource[source]!)
            let current = try await etcd.get(keys.topology).map { try ClusterTopology.decode(Data($0.value)) } ?? t
            guard source < current.shards.count, let sourceNode = current.node(current.shards[source].leader) else {
                throw ClusterError.failed("the layout changed meanwhile: shard \(source) is gone")
            }
            let pause = try await moveOne(ranges, from: sourceNode, to: targetNode, targetShard: targetRole.shard, sourceShard: source,
                                          etcd: etcd, keys: keys, timeout: timeout, pauseMillis: pauseMillis, report: &report,
                                          progress: progress)
            report.slots += bySource[source]!.count
            report.longestPauseMillis = max(report.longestPauseMillis, pause)
        }
        report.seconds = (ContinuousClock.now - started).inSeconds
        return report
    }

    /// The `field:value` lines of `SHALE.SLOTMOVE STATUS`.
    static func moveStatus(_ conn: RESPClient) throws -> [String: String] {
        let r = try conn.command(["SHALE.SLOTMOVE", "STATUS"])
        if case .error(let e) = r { throw ClusterError.failed("\(conn.address): SHALE.SLOTMOVE STATUS: \(e)") }
        var out: [String: String] = [:]
        for line in (r.text ?? "").split(whereSeparator: \.isNewline) {
            if let c = line.firstIndex(of: ":") { out[String(line[..<c])] = String(line[line.index(after: c)...]) }
        }
        return out
    }

    /// Moves `ranges` from the leader `source` (of shard `sourceShard`) to `target`; returns
    /// how long writes were held, ms.
    static func moveOne(
        _ ranges: [[Int]], from source: ClusterNode, to target: ClusterNode, targetShard: Int, sourceShard: Int,
        etcd: EtcdClient, keys: ClusterKeys, timeout: Int, pauseMillis: Int, report: inout MoveReport,
        progress: (String) -> Void
    ) async throws -> Double {
        let rangeText = ClusterTopology.rangeText(ranges)
        let src = try RESPClient(host: source.host, port: source.port, timeoutSeconds: 15)
        let tgt = try RESPClient(host: target.host, port: target.port, timeoutSeconds: 15)
        func cancel() {
            _ = try? src.command(["SHALE.SLOTMOVE", "CANCEL"])
            _ = try? tgt.command(["SHALE.SLOTMOVE", "CANCEL"])
        }
        func fail(_ why: String) -> ClusterError {
            cancel()
            return ClusterError.failed("moving slots \(rangeText.joined(separator: ",")) from \(source.address) to \(target.address): \(why); nothing was changed")
        }
        if case .error(let e) = try tgt.command(["SHALE.SLOTMOVE", "IMPORT", source.host, String(source.port)] + rangeText) {
            throw fail("the target refused the import: \(e)")
        }
        progress("copying \(ranges.reduce(0) { $0 + $1[1] - $1[0] + 1 }) slots from \(source.address) to \(target.address)")
        // 1. The copy: until the target streams the source's changes.
        let copyDeadline = ContinuousClock.now + .seconds(timeout)
        while true {
            let st: [String: String]
            do { st = try moveStatus(tgt) } catch { throw fail("\(error)") }
            if st["state"] == "streaming" { break }
            if st["state"] == "failed" || st["state"] == "stopped" { throw fail("the copy \(st["state"]!): \(st["error"] ?? "")") }
            if ContinuousClock.now >= copyDeadline { throw fail("the copy did not finish within \(timeout) s (\(st["keys"] ?? "0") rows so far)") }
            try await Task.sleep(for: .milliseconds(20))
        }
        // 2. The switch: writes held at the source, the target catches up.
        let pauseStart = ContinuousClock.now
        let sequences: [UInt64]
        do {
            let r = try src.command(["SHALE.SLOTMOVE", "PAUSE", target.address, String(pauseMillis)] + rangeText)
            guard case .array(let items?) = r else {
                if case .error(let e) = r { throw ClusterError.failed("the source refused the pause: \(e)") }
                throw ClusterError.failed("unexpected reply to SHALE.SLOTMOVE PAUSE")
            }
            sequences = try items.map { item in
                guard case .integer(let v) = item, v >= 0 else { throw ClusterError.failed("unexpected reply to SHALE.SLOTMOVE PAUSE") }
                return UInt64(v)
            }
        } catch {
            throw fail("\(error)")
        }
        let catchUpDeadline = pauseStart + .milliseconds(max(1, pauseMillis - 200))
        while true {
            let st: [String: String]
            do { st = try moveStatus(tgt) } catch { throw fail("\(error)") }
            if st["state"] != "streaming" { throw fail("the copy \(st["state"] ?? "?"): \(st["error"] ?? "")") }
            let applied = (st["applied"] ?? "").split(separator: ",").map(String.init)
            if applied.count == sequences.count,
               zip(applied, sequences).allSatisfy({ $0 == "-" || (UInt64($0) ?? 0) >= $1 }) {
                report.keys += Int(st["keys"] ?? "0") ?? 0
                break
            }
            if ContinuousClock.now >= catchUpDeadline { throw fail("the target did not catch up within the pause (\(pauseMillis) ms)") }
            try await Task.sleep(for: .milliseconds(1))
        }
        if case .error(let e) = try tgt.command(["SHALE.SLOTMOVE", "FINISH"]) { throw fail("the target could not finish: \(e)") }
        if case .error(let e) = try src.command(["SHALE.SLOTMOVE", "HANDOFF"]) { throw fail("the source could not hand off: \(e)") }
        let held = ContinuousClock.now - pauseStart
        let heldMillis = held.inSeconds * 1000
        // 3. The layout: from here on only forward.
        let epoch = try await commit(ranges, to: targetShard, from: sourceShard, etcd: etcd, keys: keys, retryFor: timeout)
        progress("switched after holding writes \(String(format: "%.1f", heldMillis)) ms; layout epoch \(epoch)")
        let installed = ContinuousClock.now + .seconds(timeout)
        for conn in [src, tgt] {
            while (Int64(try conn.clusterInfo()["cluster_current_epoch"] ?? "0") ?? 0) < epoch {
                if ContinuousClock.now >= installed {
                    throw ClusterError.failed("\(conn.address) did not install layout epoch \(epoch) within \(timeout) s")
                }
                try await Task.sleep(for: .milliseconds(10))
            }
        }
        // 4. The old owner deletes the slots' rows.
        while true {
            let st = try moveStatus(src)
            if st["purging"] == "0" {
                if let e = st["purge_error"], !e.isEmpty { throw ClusterError.failed("\(source.address) could not delete the moved rows: \(e)") }
                report.purgedKeys = Int(st["purged_keys"] ?? "0") ?? 0
                break
            }
            if ContinuousClock.now >= installed { throw ClusterError.failed("\(source.address) did not delete the moved rows within \(timeout) s") }
            try await Task.sleep(for: .milliseconds(20))
        }
        return heldMillis
    }

    /// Writes the layout giving `ranges` to shard `to` (taken from shard `from`, which must
    /// still serve them; nil: unassigned slots), retrying on concurrent changes for up to
    /// `retryFor` seconds. Returns the new epoch.
    @discardableResult
    static func commit(_ ranges: [[Int]], to: Int, from: Int?, etcd: EtcdClient, keys: ClusterKeys, retryFor: Int = 10) async throws -> Int64 {
        try await rewrite(etcd: etcd, keys: keys, retryFor: retryFor) { t in
            let owners = t.slotOwners()
            for r in ranges {
                for s in r[0]...r[1] where owners[s] != from && owners[s] != to {
                    throw ClusterError.failed("slot \(s) changed owner meanwhile")
                }
            }
            return t.moving(ranges, to: to)
        }.epoch
    }

    /// Adds the node at `address` to the layout (`kvcluster add-node`): as the leader of a new
    /// shard with no slots, or as a follower of the leader at `follow`. The node must be empty
    /// (``RESPClient/emptyNodeID()``). Returns the new layout.
    public static func addNode(_ address: (host: String, port: Int), follow: (host: String, port: Int)?,
                               etcd: EtcdClient, keys: ClusterKeys) async throws -> ClusterTopology {
        let id = try RESPClient(host: address.host, port: address.port).emptyNodeID()
        let node = ClusterNode(id: id, host: address.host, port: address.port)
        return try await rewrite(etcd: etcd, keys: keys) { t in
            var leader: String?
            if let follow {
                guard let l = t.nodes.first(where: { $0.host == follow.host && $0.port == follow.port }) else {
                    throw ClusterError.failed("\(follow.host):\(follow.port) is not a node of cluster \(keys.cluster)")
                }
                leader = l.id
            }
            return try t.adding(node, following: leader)
        }
    }

    /// Removes the node at `address` from the layout (`kvcluster remove-node`).
    public static func removeNode(_ address: (host: String, port: Int), etcd: EtcdClient, keys: ClusterKeys) async throws -> ClusterTopology {
        try await rewrite(etcd: etcd, keys: keys) { t in
            guard let n = t.nodes.first(where: { $0.host == address.host && $0.port == address.port }) else {
                throw ClusterError.failed("\(address.host):\(address.port) is not a node of cluster \(keys.cluster)")
            }
            return try t.removing(n.id)
        }
    }

    /// Reads the layout, applies `change` and writes the result conditioned on the revision
    /// read; when another change came first, or etcd could not be reached, reads and applies
    /// again, for up to `retryFor` seconds. What `change` throws ends it at once.
    static func rewrite(etcd: EtcdClient, keys: ClusterKeys, retryFor: Int = 5,
                        _ change: (ClusterTopology) throws -> ClusterTopology) async throws -> ClusterTopology {
        let deadline = ContinuousClock.now + .seconds(max(1, retryFor))
        var lastError = "the layout kept changing"
        while true {
            do {
                guard let kv = try await etcd.get(keys.topology) else { throw ClusterError.failed("cluster \(keys.cluster) has no layout in etcd") }
                let next = try change(try ClusterTopology.decode(Data(kv.value)))
                let r = try await etcd.txn(
                    compares: [EtcdCompare(key: keys.topology, .modRevision(kv.modRevision))],
                    success: [.put(key: keys.topology, value: [UInt8](try next.encoded()), lease: nil)])
                if r.succeeded { return next }
            } catch let e as ClusterError {
                if case .etcd = e { lastError = "\(e)" } else { throw e }
            }
            if ContinuousClock.now >= deadline { throw ClusterError.failed("could not write the new layout to etcd: \(lastError)") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}

extension Duration {
    /// The duration in seconds.
    var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
