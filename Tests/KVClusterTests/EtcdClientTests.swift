import Foundation
import KVCluster
import Testing

/// EtcdClient against a real etcd (Debian's etcd-server): keys, transactions, leases,
/// watches and failover between endpoints.
@Suite("etcd client", .enabled(if: EtcdTestServer.available, "needs /usr/bin/etcd (Debian package etcd-server)"))
struct EtcdClientTests {
    static func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

    @Test func putGetRangeDelete() async throws {
        try await withEtcd { _, etcd in
            #expect(try await etcd.get("/t/a") == nil)
            let r1 = try await etcd.put("/t/a", Self.bytes("1"))
            let r2 = try await etcd.put("/t/b", Self.bytes("2"))
            try await etcd.put("/t/a", Self.bytes("one"))
            try await etcd.put("/u/c", [0, 255, 10])
            #expect(r2 > r1)
            let a = try #require(try await etcd.get("/t/a"))
            #expect(a.value == Self.bytes("one") && a.createRevision == r1 && a.version == 2 && a.modRevision > r2 && a.lease == 0)
            #expect(try await etcd.get("/u/c")?.value == [0, 255, 10])
            let (kvs, revision) = try await etcd.range(prefix: "/t/")
            #expect(kvs.map(\.key) == ["/t/a", "/t/b"])
            #expect(revision == a.modRevision + 1)
            #expect(try await etcd.delete("/t/a") == 1)
            #expect(try await etcd.delete("/t/a") == 0)
            #expect(try await etcd.get("/t/a") == nil)
            try await etcd.put("/t/z", Self.bytes("z"))
            #expect(try await etcd.deletePrefix("/t/") == 2)
            #expect(try await etcd.range(prefix: "/t/").kvs.isEmpty)
            #expect(try await etcd.range(prefix: "/u/").kvs.count == 1)
        }
    }

    @Test func transactions() async throws {
        try await withEtcd { _, etcd in
            let created = try await etcd.txn(compares: [.absent("/x")], success: [.put(key: "/x", value: Self.bytes("v1"), lease: nil)], failure: [.range(key: "/x", prefix: false)])
            #expect(created.succeeded && created.responses == [.put])
            let again = try await etcd.txn(compares: [.absent("/x")], success: [.put(key: "/x", value: Self.bytes("v2"), lease: nil)], failure: [.range(key: "/x", prefix: false)])
            #expect(!again.succeeded)
            guard case .range(let kvs) = again.responses.first else { Issue.record("no range response"); return }
            #expect(kvs.first?.value == Self.bytes("v1"))
            let x = try #require(try await etcd.get("/x"))
            // Compare-and-swap on the mod revision; a stale revision fails.
            let cas = try await etcd.txn(compares: [EtcdCompare(key: "/x", .modRevision(x.modRevision))], success: [.put(key: "/x", value: Self.bytes("v3"), lease: nil)])
            #expect(cas.succeeded && cas.revision > x.modRevision)
            let stale = try await etcd.txn(compares: [EtcdCompare(key: "/x", .modRevision(x.modRevision))], success: [.delete(key: "/x", prefix: false)])
            #expect(!stale.succeeded && stale.responses.isEmpty)
            let value = try await etcd.txn(compares: [EtcdCompare(key: "/x", .value(Self.bytes("v3"))), EtcdCompare(key: "/x", .version(1), .greater)], success: [.delete(key: "/x", prefix: true)])
            #expect(value.succeeded && value.responses == [.delete(deleted: 1)])
            let less = try await etcd.txn(compares: [EtcdCompare(key: "/x", .createRevision(1_000_000), .less), EtcdCompare(key: "/x", .version(0), .notEqual)], success: [])
            #expect(!less.succeeded)
        }
    }

    @Test func leasesKeepKeysAliveAndExpire() async throws {
        try await withEtcd { _, etcd in
            // A 4 s lease: a suite running beside this one on a loaded machine can stall it
            // for longer than etcd's 2 s minimum between two renewals.
            let lease = try await etcd.grantLease(ttlSeconds: 4)
            try await etcd.put("/l/k", Self.bytes("v"), lease: lease)
            #expect(try await etcd.get("/l/k")?.lease == lease)
            let ttl = try await etcd.keepAlive(lease: lease)
            #expect(ttl >= 1 && ttl <= 4)
            // Renewed every 0.5 s for 3 s: the key stays.
            for _ in 0..<6 {
                try await Task.sleep(for: .milliseconds(500))
                #expect(try await etcd.keepAlive(lease: lease) > 0)
            }
            #expect(try await etcd.get("/l/k") != nil)
            // Left alone, it expires and takes the key along.
            let gone = await eventually(12) { (try? await etcd.read("/l/k", prefix: false))?.kvs.isEmpty == true }
            #expect(gone)
            #expect(try await etcd.keepAlive(lease: lease) == 0)
            // Revoke deletes the keys at once; revoking again is not an error.
            let second = try await etcd.grantLease(ttlSeconds: 30)
            try await etcd.put("/l/k2", Self.bytes("v"), lease: second)
            try await etcd.revoke(lease: second)
            #expect(try await etcd.get("/l/k2") == nil)
            try await etcd.revoke(lease: second)
        }
    }

    @Test func watchDeliversPutsAndDeletes() async throws {
        try await withEtcd { _, etcd in
            let start = try await etcd.put("/w/other", Self.bytes("x"))
            let stream = etcd.watch("/w/k", fromRevision: start + 1)
            let writer = Task {
                try await Task.sleep(for: .milliseconds(200))
                try await etcd.put("/w/k", Self.bytes("1"))
                try await etcd.put("/w/other", Self.bytes("y"))
                try await etcd.delete("/w/k")
            }
            var seen: [EtcdEvent] = []
            let reader = Task {
                var out: [EtcdEvent] = []
                for try await batch in stream {
                    out += batch
                    if out.count >= 2 { break }
                }
                return out
            }
            let timeout = Task {
                try await Task.sleep(for: .seconds(10))
                reader.cancel()
            }
            seen = try await reader.value
            timeout.cancel()
            try await writer.value
            #expect(seen.count == 2)
            #expect(seen.first?.kind == .put && seen.first?.kv.value == Self.bytes("1") && seen.first?.kv.key == "/w/k")
            #expect(seen.last?.kind == .delete && seen.last?.kv.key == "/w/k")
            #expect((seen.last?.revision ?? 0) > (seen.first?.revision ?? 0))

            // A prefix watch from an old revision replays history.
            var replay: [EtcdEvent] = []
            for try await batch in etcd.watch("/w/", prefix: true, fromRevision: start) {
                replay += batch
                if replay.count >= 4 { break }
            }
            #expect(replay.map(\.kv.key) == ["/w/other", "/w/k", "/w/other", "/w/k"])
        }
    }

    @Test func watchEndsWithAnErrorWhenEtcdStops() async throws {
        try await EtcdGate.exclusively { try await watchEndsWithAnErrorWhenEtcdStopsGated() }
    }

    func watchEndsWithAnErrorWhenEtcdStopsGated() async throws {
        let server = try EtcdTestServer()
        defer { server.stop() }
        try await server.waitReady()
        let etcd = EtcdClient(endpoints: [server.url], connectTimeout: .milliseconds(300), requestTimeout: .seconds(2))
        let stream = etcd.watch("/w", prefix: true)
        let reader = Task { () -> String in
            do {
                for try await _ in stream {}
                return "ended without an error"
            } catch {
                return "\(error)"
            }
        }
        try await Task.sleep(for: .milliseconds(500))
        server.kill()
        let timeout = Task {
            try await Task.sleep(for: .seconds(10))
            reader.cancel()
        }
        let outcome = await reader.value
        timeout.cancel()
        #expect(outcome.contains("etcd"))
        await etcd.shutdown()
    }

    @Test func failsOverToTheNextEndpoint() async throws {
        try await withEtcd { server, _ in
            let dead = "http://127.0.0.1:\(try EtcdTestServer.freePort())"
            let etcd = EtcdClient(endpoints: [dead, server.url], connectTimeout: .milliseconds(300), requestTimeout: .seconds(2))
            try await etcd.put("/f", Self.bytes("1"))
            #expect(try await etcd.get("/f")?.value == Self.bytes("1"))
            for try await _ in etcd.watch("/f", fromRevision: 1) { break }
            await etcd.shutdown()
            let none = EtcdClient(endpoints: [dead], connectTimeout: .milliseconds(300), requestTimeout: .seconds(1))
            await #expect(throws: ClusterError.self) { try await none.get("/f") }
            do {
                _ = try await none.put("/f", [])
            } catch {
                #expect("\(error)".contains("put /f") && "\(error)".contains(dead))
            }
            await none.shutdown()
        }
    }
}
