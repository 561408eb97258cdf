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

    @Test func parsesSlotRanges() throws {
        #expect(try ClusterTopology.parseRanges(["0-99,200", "150-160", "100"]) == [[0, 100], [150, 160], [200, 200]])
        #expect(try ClusterTopology.parseRanges(["16383"]) == [[16383, 16383]])
        for bad in ["5-2", "16384", "-1", "a-b", "1-", "0-16384"] {
            #expect(throws: ClusterError.self, "\(bad)") { try ClusterTopology.parseRanges([bad]) }
        }
        #expect(ClusterTopology.rangeText([[0, 9], [12, 12]]) == ["0-9", "12"])
        let f = ClusterTopology.flags([[3, 5]])
        #expect(f.count == ClusterTopology.slotCount && f.filter { $0 }.count == 3 && f[3] && f[5] && !f[6])
    }

    @Test func movesSlotsBetweenShards() throws {
        let t = Self.threeLeaders()
        let m = t.moving([[5000, 5999]], to: 2)
        #expect(m.problem() == nil)
        #expect(m.epoch == t.epoch + 1)
        #expect(m.shards[0].slots == [[0, 4999]])
        #expect(m.shards[1].slots == [[6000, 10922]])
        #expect(m.shards[2].slots == [[5000, 5999], [10923, 16383]])
        #expect(m.assignedSlots == ClusterTopology.slotCount)
        // Moving a shard's slots to itself changes nothing but the epoch.
        #expect(t.moving([[0, 10]], to: 0).shards == t.shards)
    }

    @Test func addsAndRemovesNodes() throws {
        let t = Self.threeLeaders()
        let leader = ClusterNode(id: String(repeating: "a", count: 40), host: "127.0.0.1", port: 7100)
        let follower = ClusterNode(id: String(repeating: "b", count: 40), host: "127.0.0.1", port: 7101)
        let grown = try t.adding(leader).adding(follower, following: leader.id)
        #expect(grown.problem() == nil && grown.epoch == t.epoch + 2)
        #expect(grown.shards.count == 4 && grown.shards[3].slotCount == 0 && grown.shards[3].followers == [follower.id])
        #expect(throws: ClusterError.self) { try grown.adding(leader) }
        #expect(throws: ClusterError.self) { try grown.adding(ClusterNode(id: String(repeating: "c", count: 40), host: "127.0.0.1", port: 7100)) }
        #expect(throws: ClusterError.self) { try t.adding(follower, following: Self.id(3)) }
        // A leader with followers or slots stays.
        #expect(throws: ClusterError.self) { try grown.removing(leader.id) }
        #expect(throws: ClusterError.self) { try grown.removing(Self.id(0)) }
        let shrunk = try grown.removing(follower.id).removing(leader.id)
        #expect(shrunk.shards == t.shards && shrunk.nodes == t.nodes && shrunk.epoch == t.epoch + 4)
        #expect(try t.removing(Self.id(3)).shards[0].followers.isEmpty)
    }
}
