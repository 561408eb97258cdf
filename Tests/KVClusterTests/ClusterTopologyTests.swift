import Foundation
import KVCluster
import Testing

/// The cluster layout model: JSON round trip, slot ownership, and refusal of malformed
/// layouts (overlapping or out-of-range slots, unknown or doubled nodes, bad ids).
@Suite("Cluster topology")
struct ClusterTopologyTests {
    static func id(_ n: Int) -> String { String(repeating: String(n % 10), count: 40) }

    static func threeLeaders() -> ClusterTopology {
        let nodes = (0..<6).map { ClusterNode(id: id($0), host: "127.0.0.1", port: 7000 + $0) }
        return ClusterTopology(epoch: 1, nodes: nodes, shards: [
            ClusterShard(leader: id(0), followers: [id(3)], slots: [[0, 5460]]),
            ClusterShard(leader: id(1), followers: [id(4)], slots: [[5461, 10922]]),
            ClusterShard(leader: id(2), followers: [id(5)], slots: [[10923, 16383]]),
        ])
    }

    @Test func roundTripsAndAnswersOwnership() throws {
        let t = Self.threeLeaders()
        #expect(t.problem() == nil)
        let back = try ClusterTopology.decode(t.encoded())
        #expect(back == t)
        #expect(t.assignedSlots == ClusterTopology.slotCount)
        let owners = t.slotOwners()
        #expect(owners[0] == 0 && owners[5461] == 1 && owners[16383] == 2)
        #expect(t.role(of: Self.id(4))! == (1, false))
        #expect(t.role(of: Self.id(2))! == (2, true))
        #expect(ClusterTopology.ranges([5, 1, 2, 3, 9, 10]) == [[1, 3], [5, 5], [9, 10]])
    }

    @Test func refusesMalformedLayouts() throws {
        var t = Self.threeLeaders()
        t.shards[1].slots = [[5000, 10922]]
        #expect(t.problem() == "slot 5000 is assigned twice")
        t = Self.threeLeaders()
        t.shards[2].slots = [[10923, 16384]]
        #expect(t.problem()?.contains("bad slot range") == true)
        t = Self.threeLeaders()
        t.shards[0].followers = [Self.id(1)]
        #expect(t.problem() == "node \(Self.id(1)) has two roles")
        t = Self.threeLeaders()
        t.nodes[0].id = "XYZ"
        #expect(t.problem()?.contains("40 lower-case hex") == true)
        t = Self.threeLeaders()
        t.version = 2
        #expect(throws: ClusterError.self) { try ClusterTopology.decode(t.encoded()) }
        #expect(throws: (any Error).self) { try ClusterTopology.decode(Data("{".utf8)) }
    }
}
