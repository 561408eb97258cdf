import Foundation
import KVCluster
import Synchronization
import Testing

/// What a member saw, collected from its callbacks.
final class MemberLog: Sendable {
    let topologies = Mutex<[ClusterTopology?]>([])
    let leases = Mutex<[Bool]>([])
    let problems = Mutex<[String]>([])

    func member(_ etcd: EtcdClient, _ keys: ClusterKeys, _ node: ClusterNode, ttl: Int64) -> ClusterMember {
        ClusterMember(
            etcd: etcd, keys: keys, node: node, leaseTTL: ttl,
            onTopology: { t in self.topologies.withLock { $0.append(t) } },
            onLease: { held in self.leases.withLock { $0.append(held) } },
            onProblem: { p in self.problems.withLock { $0.append(p) } }
        )
    }
}

/// ClusterMember against a real etcd: registration under a lease, renewal, topology reports,
/// re-registration after the lease is lost, and after etcd restarts.
@Suite("Cluster member", .enabled(if: EtcdTestServer.available, "needs /usr/bin/etcd (Debian package etcd-server)"))
struct ClusterMemberTests {
    static let node = ClusterNode(id: String(repeating: "a", count: 40), host: "127.0.0.1", port: 7001)
    static let keys = ClusterKeys(cluster: "test")

    @Test func registersRenewsAndReportsTopology() async throws {
        try await withEtcd { _, etcd in
            let log = MemberLog()
            // A 4 s lease: with 2 s, a stall of the loaded suite between two renewals let the
            // lease lapse (and the member register again) during the wait below.
            let member = log.member(etcd, Self.keys, Self.node, ttl: 4)
            member.start()
            // The first grant and registration wait for etcd's fsyncs: slow while the whole
            // suite runs in parallel on two cores.
            #expect(await eventually(20) { member.leaseHeld })
            #expect(await eventually(20) { log.topologies.withLock { $0 } == [nil] })
            // The lease is granted before the registration is written: wait for the key too.
            #expect(await eventually(20) { (try? await etcd.get(Self.keys.alive(Self.node.id))) != nil })
            let alive = try #require(try await etcd.get(Self.keys.alive(Self.node.id)))
            #expect(try JSONDecoder().decode(ClusterNode.self, from: alive.data) == Self.node)
            #expect(alive.lease == member.leaseID && alive.lease != 0)

            // Outlives several TTLs through renewals.
            try await Task.sleep(for: .seconds(9))
            #expect(member.leaseHeld && log.leases.withLock { $0 } == [true])
            #expect(try await etcd.get(Self.keys.alive(Self.node.id)) != nil)

            // A topology written after the start is reported; a malformed one is not.
            let t = ClusterTopology(epoch: 1, nodes: [Self.node], shards: [ClusterShard(leader: Self.node.id, slots: [[0, 16383]])])
            try await etcd.put(Self.keys.topology, [UInt8](try t.encoded()))
            #expect(await eventually(5) { member.topology == t })
            try await etcd.put(Self.keys.topology, Array("{\"version\":1,".utf8))
            #expect(await eventually(5) { log.problems.withLock { $0.contains { $0.contains("ignoring the topology") } } })
            #expect(member.topology == t)
            try await etcd.delete(Self.keys.topology)
            #expect(await eventually(5) { log.topologies.withLock { $0.last ?? t } == nil })
            #expect(log.topologies.withLock { $0.count } == 3)

            // A revoked lease is noticed and the node registers again under a new one.
            let first = member.leaseID
            try await etcd.revoke(lease: first)
            #expect(await eventually(5) { member.leaseID != first && member.leaseID != 0 && member.leaseHeld })
            #expect(await eventually(2) { (try? await etcd.get(Self.keys.alive(Self.node.id)))??.lease == member.leaseID })

            // Stop revokes: the registration goes at once.
            await member.stop()
            #expect(try await etcd.get(Self.keys.alive(Self.node.id)) == nil)
            #expect(log.leases.withLock { $0.last } == false)
        }
    }

    @Test func losesTheLeaseWhileEtcdIsDownAndRegistersAgainAfterItsRestart() async throws {
        try await withEtcd { server, etcd in
            let log = MemberLog()
            let member = log.member(etcd, Self.keys, Self.node, ttl: 2)
            member.start()
            // The first registration: 20 s, as in the other tests (a loaded suite delays it).
            #expect(await eventually(20) { member.leaseHeld })
            let t = ClusterTopology(epoch: 3, nodes: [Self.node], shards: [ClusterShard(leader: Self.node.id, slots: [[0, 16383]])])
            try await etcd.put(Self.keys.topology, [UInt8](try t.encoded()))
            #expect(await eventually(5) { member.topology == t })

            server.kill()
            // Not renewed for a TTL: reported lost (the node stops taking writes).
            #expect(await eventually(5) { !member.leaseHeld })
            #expect(log.leases.withLock { $0 } == [true, false])

            try server.start()
            try await server.waitReady()
            #expect(await eventually(10) { member.leaseHeld })
            #expect(await eventually(5) { (try? await etcd.get(Self.keys.alive(Self.node.id)))??.lease == member.leaseID })
            // The topology watch resumed: a change after the restart is reported.
            var t2 = t
            t2.epoch = 4
            try await etcd.put(Self.keys.topology, [UInt8](try t2.encoded()))
            #expect(await eventually(8) { member.topology == t2 })
            await member.stop()
        }
    }

    @Test func nodeIDIsCreatedOnceAndKept() throws {
        let dir = NSTemporaryDirectory() + "shale-nodeid-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let id = try ClusterMember.nodeID(inDirectory: dir)
        #expect(ClusterNode.isValidID(id))
        #expect(try ClusterMember.nodeID(inDirectory: dir) == id)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["NODE_ID"])
        try Data("not an id\n".utf8).write(to: URL(fileURLWithPath: dir + "/NODE_ID"))
        #expect(throws: ClusterError.self) { try ClusterMember.nodeID(inDirectory: dir) }
        let other = NSTemporaryDirectory() + "shale-nodeid-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: other) }
        #expect(try ClusterMember.nodeID(inDirectory: other) != id)
    }
}
