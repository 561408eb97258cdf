import Foundation
import KVCluster
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A stand-in for a kvserver in cluster mode: answers `CLUSTER MYID` with its id and
/// `CLUSTER INFO` with `cluster_state:ok`, anything else with an error. Serves at most 64
/// connections, then stops; ``close()`` stops it earlier.
final class StubNode: @unchecked Sendable {
    let id: String
    let port: Int
    private let fd: Int32

    init(id: String) throws {
        self.id = id
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sp in
                bind(fd, sp, len) == 0 && listen(fd, 16) == 0 && getsockname(fd, sp, &len) == 0
            }
        }
        guard ok else { throw ClusterError.failed("stub bind: errno \(errno)") }
        port = Int(UInt16(bigEndian: addr.sin_port))
        let listener = fd
        let reply = "$40\r\n\(id)\r\n"
        let thread = Thread {
            for _ in 0..<64 {
                let c = accept(listener, nil, nil)
                if c < 0 { return }
                var buf = [UInt8](repeating: 0, count: 1024)
                while true {
                    let n = buf.withUnsafeMutableBytes { recv(c, $0.baseAddress, $0.count, 0) }
                    if n <= 0 { break }
                    let text = String(decoding: buf[..<n], as: UTF8.self).uppercased()
                    let out: String
                    if text.contains("MYID") {
                        out = reply
                    } else if text.contains("INFO") {
                        let body = "cluster_enabled:1\r\ncluster_state:ok\r\n"
                        out = "$\(body.utf8.count)\r\n\(body)\r\n"
                    } else {
                        out = "-ERR unknown command\r\n"
                    }
                    _ = out.withCString { send(c, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
                }
                Glibc.close(c)
            }
        }
        thread.start()
    }

    func close() {
        shutdown(fd, Int32(SHUT_RDWR))
        Glibc.close(fd)
    }
}

/// kvcluster's pieces: the slot split, the first layout, create-only-once in etcd, status.
@Suite("Cluster admin")
struct ClusterAdminTests {
    static func id(_ n: Int) -> String { String(repeating: String(n % 10), count: 40) }
    static func node(_ n: Int) -> ClusterNode { ClusterNode(id: id(n), host: "127.0.0.1", port: 7000 + n) }

    @Test func evenSlotsSplitAsRedisDoes() {
        #expect(ClusterTopology.evenSlots(count: 3) == [0...5460, 5461...10922, 10923...16383])
        #expect(ClusterTopology.evenSlots(count: 1) == [0...16383])
        #expect(ClusterTopology.evenSlots(count: 0) == [])
        for n in [2, 5, 7, 100, 1000, 16384] {
            let r = ClusterTopology.evenSlots(count: n)
            #expect(r.count == n && r.first?.lowerBound == 0 && r.last?.upperBound == 16383)
            #expect(zip(r, r.dropFirst()).allSatisfy { $0.upperBound + 1 == $1.lowerBound })
            let sizes = r.map(\.count)
            #expect((sizes.max() ?? 0) - (sizes.min() ?? 0) <= 1)
        }
    }

    @Test func initialLayoutPairsFollowersWithLeaders() throws {
        let t = try ClusterTopology.initial(leaders: [Self.node(0), Self.node(1), Self.node(2)], followers: [Self.node(3), Self.node(4)])
        #expect(t.epoch == 1 && t.problem() == nil && t.assignedSlots == 16384)
        #expect(t.shards.map(\.slots) == [[[0, 5460]], [[5461, 10922]], [[10923, 16383]]])
        #expect(t.shards.map(\.followers) == [[Self.id(3)], [Self.id(4)], []])
        #expect(throws: ClusterError.self) { try ClusterTopology.initial(leaders: []) }
        #expect(throws: ClusterError.self) { try ClusterTopology.initial(leaders: [Self.node(0)], followers: [Self.node(0)]) }
    }

    @Test func respClientAsksStubNodes() throws {
        let stub = try StubNode(id: Self.id(7))
        defer { stub.close() }
        let c = try RESPClient(host: "127.0.0.1", port: stub.port)
        #expect(try c.clusterMyID() == Self.id(7))
        #expect(try c.clusterInfo()["cluster_state"] == "ok")
        #expect(try c.command(["PING"]) == .error("ERR unknown command"))
        #expect(throws: ClusterError.self) { try RESPClient(host: "127.0.0.1", port: EtcdTestServer.freePort()) }
    }

    @Test(.enabled(if: EtcdTestServer.available, "needs /usr/bin/etcd (Debian package etcd-server)"))
    func createsOnlyOnceAndShowsStatus() async throws {
        try await withEtcd { _, etcd in
            let stubs = try (0..<4).map { try StubNode(id: Self.id($0)) }
            defer { stubs.forEach { $0.close() } }
            let nodes = try stubs.map { s in
                ClusterNode(id: try RESPClient(host: "127.0.0.1", port: s.port).clusterMyID(), host: "127.0.0.1", port: s.port)
            }
            let keys = ClusterKeys(cluster: "c1")
            let t = try ClusterTopology.initial(leaders: Array(nodes[0..<2]), followers: Array(nodes[2...]))
            let revision = try await ClusterAdmin.create(t, etcd: etcd, keys: keys)
            #expect(revision > 0)
            let stored = try #require(try await etcd.get(keys.topology))
            #expect(try ClusterTopology.decode(stored.data) == t)

            // A second create changes nothing and says why.
            var other = t
            other.epoch = 9
            do {
                try await ClusterAdmin.create(other, etcd: etcd, keys: keys)
                Issue.record("the second create succeeded")
            } catch let e as ClusterError {
                #expect("\(e)".contains("already exists"))
            }
            #expect(try await etcd.get(keys.topology)?.modRevision == stored.modRevision)
            // Another cluster name is another cluster.
            try await ClusterAdmin.create(t, etcd: etcd, keys: ClusterKeys(cluster: "c2"))

            // Status: node 0 and 3 registered.
            for n in [nodes[0], nodes[3]] {
                try await etcd.put(keys.alive(n.id), [UInt8](try JSONEncoder().encode(n)))
            }
            let status = try await ClusterAdmin.status(etcd: etcd, keys: keys)
            #expect(status.topology == t && status.alive.count == 2)
            let text = status.text()
            #expect(text.contains("shard 0: slots 0-8191 (8192)"))
            #expect(text.contains("leader   \(nodes[0].id) \(nodes[0].address) alive"))
            #expect(text.contains("follower \(nodes[2].id) \(nodes[2].address) down"))
            #expect(text.contains("shard 1: slots 8192-16383"))
            let json = try JSONSerialization.jsonObject(with: status.json()) as? [String: Any]
            #expect((json?["shards"] as? [Any])?.count == 2)
            let empty = try await ClusterAdmin.status(etcd: etcd, keys: ClusterKeys(cluster: "none"))
            #expect(empty.topology == nil && empty.text().contains("no topology"))
        }
    }
}
