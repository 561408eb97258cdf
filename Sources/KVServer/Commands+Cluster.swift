import KVCluster
import KVProtocol
import KVStore

/// Redis Cluster's commands for clients: CLUSTER INFO, SLOTS, SHARDS, NODES, KEYSLOT,
/// COUNTKEYSINSLOT, GETKEYSINSLOT, MYID, HELP, and READONLY/READWRITE. They answer from the
/// layout the node last read from etcd (``ClusterState``); without cluster mode they refuse as
/// Redis does.
extension Commands {
    static let disabled = CommandError("ERR This instance has cluster support disabled")

    static let clusterModeCommands: [CommandSpec] = [
        CommandSpec("cluster", -2, [], subcommands: ["info", "slots", "shards", "nodes", "keyslot", "countkeysinslot",
                                                     "getkeysinslot", "myid", "help"]) { c in try cluster(c) },
        CommandSpec("readonly", 1, ["loading", "stale", "fast"]) { c in
            guard c.server.cluster != nil else { throw disabled }
            c.session.clusterReadOnly.store(true, ordering: .relaxed)
            return .ok
        },
        CommandSpec("readwrite", 1, ["loading", "stale", "fast"]) { c in
            guard c.server.cluster != nil else { throw disabled }
            c.session.clusterReadOnly.store(false, ordering: .relaxed)
            return .ok
        },
    ]

    static func cluster(_ c: CommandCall) throws -> RESPValue {
        guard let cluster = c.server.cluster else { throw disabled }
        let sub = RedisText.lower(c.args[1])
        let arity = ["info": 2, "slots": 2, "shards": 2, "nodes": 2, "keyslot": 3, "countkeysinslot": 3,
                     "getkeysinslot": 4, "myid": 2, "help": 2]
        guard let want = arity[sub] else { throw CommandError.unknownSubcommand(c.args[1], of: "cluster") }
        if c.argc != want { throw CommandError.wrongArity("cluster|" + sub) }
        let v = cluster.view
        switch sub {
        case "myid":
            return .bulk(cluster.myself.id)
        case "keyslot":
            return .integer(Int64(HashSlot.slot(of: c.args[2])))
        case "countkeysinslot", "getkeysinslot":
            guard let slot = RedisText.parseInt(c.args[2]), slot >= 0, slot < Int64(ClusterTopology.slotCount) else {
                throw CommandError("ERR Invalid slot")
            }
            var limit = Int64.max
            if sub == "getkeysinslot" {
                guard let n = RedisText.parseInt(c.args[3]), n >= 0 else { throw CommandError("ERR Invalid number of keys") }
                limit = n
            }
            var keys: [[UInt8]] = []
            var count: Int64 = 0
            let scan = try c.store.scan()
            while count < limit, let (k, _) = try scan.nextEntry() {
                guard HashSlot.slot(of: k) == Int(slot) else { continue }
                count += 1
                if sub == "getkeysinslot" { keys.append(k) }
            }
            return sub == "countkeysinslot" ? .integer(count) : .array(keys.map { .bulk($0) })
        case "info":
            return .bulk(clusterInfo(v, cluster))
        case "slots":
            return clusterSlots(v)
        case "shards":
            return clusterShards(v, c.store)
        case "nodes":
            return .bulk(clusterNodes(v, cluster))
        default:
            return .array([
                "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "COUNTKEYSINSLOT <slot>", "    Return the number of keys in <slot>.",
                "GETKEYSINSLOT <slot> <count>", "    Return key names stored by current node in a slot.",
                "INFO", "    Return information about the cluster.",
                "KEYSLOT <key>", "    Return the hash slot for <key>.",
                "MYID", "    Return the node id.",
                "NODES", "    Return cluster configuration seen by node. Output format:",
                "    <id> <ip:port@bus-port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
                "SHARDS", "    Return information about slot range mappings and the nodes associated with them.",
                "SLOTS", "    Return information about slots range mappings. Each range is made of:",
                "    start, end, master and replicas IP addresses, ports and ids",
                "HELP", "    Print this help.",
            ].map { .simpleString($0) })
        }
    }

    /// `CLUSTER INFO`'s text.
    static func clusterInfo(_ v: ClusterState.View, _ cluster: ClusterState) -> String {
        let t = v.topology
        let assigned = t?.assignedSlots ?? 0
        let myEpoch = t.map { _ in v.role.map { _ in t!.epoch } ?? 0 } ?? 0
        let lines = [
            "cluster_state:\(v.ok ? "ok" : "fail")",
            "cluster_slots_assigned:\(assigned)",
            "cluster_slots_ok:\(assigned)",
            "cluster_slots_pfail:0",
            "cluster_slots_fail:0",
            "cluster_known_nodes:\(t?.nodes.count ?? 1)",
            "cluster_size:\(t?.shards.filter { $0.slotCount > 0 }.count ?? 0)",
            "cluster_current_epoch:\(t?.epoch ?? 0)",
            "cluster_my_epoch:\(myEpoch)",
            "cluster_stats_messages_sent:0",
            "cluster_stats_messages_received:0",
            "total_cluster_links_buffer_limit_exceeded:0",
        ]
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    /// One node as CLUSTER SLOTS lists it: host, port, id, networking metadata.
    static func slotsNode(_ n: ClusterNode) -> RESPValue {
        .array([.bulk(n.host), .integer(Int64(n.port)), .bulk(n.id), .array([])])
    }

    static func clusterSlots(_ v: ClusterState.View) -> RESPValue {
        guard let t = v.topology else { return .array([]) }
        var out: [RESPValue] = []
        for s in t.shards {
            guard let leader = t.node(s.leader) else { continue }
            let followers = s.followers.compactMap { t.node($0) }
            for r in s.slots where r.count == 2 {
                out.append(.array([.integer(Int64(r[0])), .integer(Int64(r[1])), slotsNode(leader)] + followers.map(slotsNode)))
            }
        }
        return .array(out)
    }

    static func clusterShards(_ v: ClusterState.View, _ store: ShardedStore) -> RESPValue {
        guard let t = v.topology else { return .array([]) }
        func node(_ id: String, _ role: String) -> RESPValue? {
            guard let n = t.node(id) else { return nil }
            return .map([
                .init(key: .bulk("id"), value: .bulk(n.id)),
                .init(key: .bulk("port"), value: .integer(Int64(n.port))),
                .init(key: .bulk("ip"), value: .bulk(n.host)),
                .init(key: .bulk("endpoint"), value: .bulk(n.host)),
                .init(key: .bulk("role"), value: .bulk(role)),
                .init(key: .bulk("replication-offset"), value: .integer(0)),
                .init(key: .bulk("health"), value: .bulk("online")),
            ])
        }
        return .array(t.shards.map { s in
            .map([
                .init(key: .bulk("slots"), value: .array(s.slots.flatMap { $0.map { .integer(Int64($0)) } })),
                .init(key: .bulk("nodes"), value: .array(([node(s.leader, "master")] + s.followers.map { node($0, "replica") }).compactMap { $0 })),
            ])
        })
    }

    static func clusterNodes(_ v: ClusterState.View, _ cluster: ClusterState) -> String {
        guard let t = v.topology else {
            let me = cluster.myself
            return "\(me.id) \(me.host):\(me.port)@\(me.port + 10000) myself,master - 0 0 0 connected\n"
        }
        var lines: [String] = []
        for n in t.nodes {
            let role = t.role(of: n.id)
            var flags = n.id == cluster.myself.id ? "myself," : ""
            flags += role.map { $0.leader ? "master" : "slave" } ?? "master"
            var master = "-"
            var slots = ""
            if let role {
                let shard = t.shards[role.shard]
                if role.leader {
                    slots = shard.slots.map { $0[0] == $0[1] ? " \($0[0])" : " \($0[0])-\($0[1])" }.joined()
                } else {
                    master = shard.leader
                }
            }
            let bus = n.port + 10000 <= 65535 ? n.port + 10000 : n.port
            lines.append("\(n.id) \(n.host):\(n.port)@\(bus) \(flags) \(master) 0 0 \(t.epoch) connected\(slots)")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
