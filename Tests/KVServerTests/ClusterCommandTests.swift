import KVCluster
import KVFileSystem
import KVProtocol
@testable import KVServer
import NIOCore
import Testing

/// Cluster mode's request routing and CLUSTER commands with a layout installed by hand (as
/// etcd would deliver it): MOVED to the owner's leader, CROSSSLOT, CLUSTERDOWN without a
/// layout or for an unserved slot, READONLY reads on a follower, writes refused by a leader
/// without its lease; CLUSTER INFO/SLOTS/SHARDS/NODES/KEYSLOT/MYID/COUNTKEYSINSLOT; and the
/// standalone server's refusals.
@Suite("Cluster commands")
struct ClusterCommandTests {
    static func id(_ n: Int) -> String { String(repeating: String(n), count: 40) }

    static func layout() -> ClusterTopology {
        let nodes = (0..<6).map { ClusterNode(id: id($0), host: "127.0.0.1", port: 7000 + $0) }
        return ClusterTopology(epoch: 7, nodes: nodes, shards: [
            ClusterShard(leader: id(0), followers: [id(3)], slots: [[0, 5460]]),
            ClusterShard(leader: id(1), followers: [id(4)], slots: [[5461, 10922]]),
            ClusterShard(leader: id(2), followers: [id(5)], slots: [[10923, 16383]]),
        ])
    }

    func run(_ h: CommandHarness, _ a: String...) -> RESPValue {
        h.run(a.map { Array($0.utf8) }).reply ?? .null
    }

    func text(_ v: RESPValue) -> String {
        if case .bulkString(let b?) = v { return String(buffer: b) }
        return ""
    }

    @Test func routesByOwnerAndRole() throws {
        let h = try CommandHarness(fileSystem: MemoryFileSystem(), cluster: (Self.id(0), "127.0.0.1", 7000))
        let cluster = try #require(h.server.cluster)
        // No layout yet.
        #expect(run(h, "GET", "foo") == .simpleError("CLUSTERDOWN The cluster is down"))
        cluster.install(Self.layout())
        cluster.setLease(held: true)
        // "foo" is slot 12182 (shard 2), "bar" 5061 (shard 0, ours).
        #expect(run(h, "CLUSTER", "KEYSLOT", "foo") == .integer(12182))
        #expect(run(h, "GET", "foo") == .simpleError("MOVED 12182 127.0.0.1:7002"))
        #expect(run(h, "SET", "bar", "1") == .simpleString("OK"))
        #expect(run(h, "GET", "bar") == bulk("1"))
        #expect(run(h, "MSET", "bar", "1", "foo", "2") == .simpleError("CROSSSLOT Keys in request don't hash to the same slot"))
        #expect(run(h, "MSET", "{bar}a", "1", "{bar}b", "2") == .simpleString("OK"))
        #expect(run(h, "PING") == .simpleString("PONG"), "keyless commands run anywhere")
        // Without its lease a leader refuses writes, still serves reads.
        cluster.setLease(held: false)
        #expect(run(h, "SET", "bar", "2") == .simpleError("CLUSTERDOWN The cluster is down"))
        #expect(run(h, "GET", "bar") == bulk("1"))
        // An unserved slot.
        var partial = Self.layout()
        partial.shards[2].slots = []
        cluster.install(partial)
        #expect(run(h, "GET", "foo") == .simpleError("CLUSTERDOWN Hash slot not served"))
        #expect(text(run(h, "CLUSTER", "INFO")).hasPrefix("cluster_state:fail\r\ncluster_slots_assigned:10923\r\n"))
    }

    @Test func followerServesReadsOnlyAfterREADONLY() throws {
        let h = try CommandHarness(fileSystem: MemoryFileSystem(), cluster: (Self.id(3), "127.0.0.1", 7003))
        let cluster = try #require(h.server.cluster)
        #expect(cluster.install(Self.layout())! == (0, false))
        #expect(run(h, "GET", "bar") == .simpleError("MOVED 5061 127.0.0.1:7000"))
        #expect(run(h, "READONLY") == .simpleString("OK"))
        #expect(run(h, "GET", "bar") == .nullBulk)
        #expect(run(h, "SET", "bar", "1") == .simpleError("MOVED 5061 127.0.0.1:7000"))
        #expect(run(h, "GET", "foo") == .simpleError("MOVED 12182 127.0.0.1:7002"))
        #expect(run(h, "READWRITE") == .simpleString("OK"))
        #expect(run(h, "GET", "bar") == .simpleError("MOVED 5061 127.0.0.1:7000"))
    }

    @Test func clusterIntrospection() throws {
        let h = try CommandHarness(fileSystem: MemoryFileSystem(), cluster: (Self.id(1), "127.0.0.1", 7001))
        let cluster = try #require(h.server.cluster)
        cluster.install(Self.layout())
        cluster.setLease(held: true)
        #expect(run(h, "CLUSTER", "MYID") == bulk(Self.id(1)))
        let info = text(run(h, "CLUSTER", "INFO"))
        for line in ["cluster_state:ok", "cluster_slots_assigned:16384", "cluster_known_nodes:6", "cluster_size:3",
                     "cluster_current_epoch:7", "cluster_my_epoch:7"] {
            #expect(info.contains(line + "\r\n"), "\(line)")
        }
        guard case .array(let slots?) = run(h, "CLUSTER", "SLOTS") else { Issue.record("SLOTS"); return }
        #expect(slots.count == 3)
        #expect(slots[1] == .array([.integer(5461), .integer(10922),
                                    .array([bulk("127.0.0.1"), .integer(7001), bulk(Self.id(1)), .array([])]),
                                    .array([bulk("127.0.0.1"), .integer(7004), bulk(Self.id(4)), .array([])])]))
        let nodes = text(run(h, "CLUSTER", "NODES"))
        #expect(nodes.hasSuffix("\n") && nodes.split(separator: "\n").count == 6)
        #expect(nodes.contains("\(Self.id(1)) 127.0.0.1:7001@17001 myself,master - 0 0 7 connected 5461-10922\n"))
        #expect(nodes.contains("\(Self.id(4)) 127.0.0.1:7004@17004 slave \(Self.id(1)) 0 0 7 connected\n"))
        guard case .array(let shards?) = run(h, "CLUSTER", "SHARDS") else { Issue.record("SHARDS"); return }
        #expect(shards.count == 3)
        // Keys in a slot this node serves (shard 1: 5461-10922).
        var tag = ""
        var slot: Int64 = -1
        for i in 0..<1000 {
            guard case .integer(let s) = run(h, "CLUSTER", "KEYSLOT", "{t\(i)}") else { continue }
            if (5461...10922).contains(s) { tag = "{t\(i)}"; slot = s; break }
        }
        #expect(slot >= 0)
        for i in 0..<20 { #expect(run(h, "SET", "\(tag)\(i)", "v") == .simpleString("OK")) }
        #expect(run(h, "CLUSTER", "COUNTKEYSINSLOT", String(slot)) == .integer(20))
        guard case .array(let keys?) = run(h, "CLUSTER", "GETKEYSINSLOT", String(slot), "5") else { Issue.record("GETKEYSINSLOT"); return }
        #expect(keys.count == 5)
        #expect(run(h, "CLUSTER", "COUNTKEYSINSLOT", "16384") == .simpleError("ERR Invalid slot"))
        #expect(run(h, "CLUSTER", "GETKEYSINSLOT", "1", "-1") == .simpleError("ERR Invalid number of keys"))
        #expect(run(h, "CLUSTER", "NOPE") == .simpleError("ERR unknown subcommand 'NOPE'. Try CLUSTER HELP."))
        #expect(run(h, "CLUSTER", "KEYSLOT") == .simpleError("ERR wrong number of arguments for 'cluster|keyslot' command"))
    }

    @Test func standaloneRefuses() throws {
        let h = try CommandHarness(fileSystem: MemoryFileSystem())
        let refusal = RESPValue.simpleError("ERR This instance has cluster support disabled")
        #expect(run(h, "CLUSTER", "INFO") == refusal)
        #expect(run(h, "READONLY") == refusal)
        #expect(run(h, "READWRITE") == refusal)
        #expect(run(h, "SET", "foo", "1") == .simpleString("OK"))
    }
}

extension ClusterCommandTests {
    @Test func execServesOneSlot() throws {
        let h = try CommandHarness(fileSystem: MemoryFileSystem(), cluster: (Self.id(0), "127.0.0.1", 7000))
        let cluster = try #require(h.server.cluster)
        var one = Self.layout()
        one.shards = [ClusterShard(leader: Self.id(0), slots: [[0, 16383]])]
        one.nodes = [one.nodes[0]]
        cluster.install(one)
        cluster.setLease(held: true)
        #expect(run(h, "MULTI") == .simpleString("OK"))
        #expect(run(h, "SET", "{a}1", "x") == .simpleString("QUEUED"))
        #expect(run(h, "SET", "{b}1", "y") == .simpleString("QUEUED"))
        #expect(run(h, "EXEC") == .simpleError("CROSSSLOT Keys in request don't hash to the same slot"))
        #expect(run(h, "MULTI") == .simpleString("OK"))
        #expect(run(h, "SET", "{a}1", "x") == .simpleString("QUEUED"))
        #expect(run(h, "INCR", "{a}2") == .simpleString("QUEUED"))
        #expect(run(h, "EXEC") == .array([.simpleString("OK"), .integer(1)]))
    }
}
