import Foundation
import KVCluster
#if canImport(Glibc)
import Glibc
#endif

/// A real etcd on free loopback ports, with its own data directory; killed (SIGKILL, then
/// waited for) by ``stop()``. Tests that need one are skipped when /usr/bin/etcd is absent.
final class EtcdTestServer: @unchecked Sendable {
    static let binary = "/usr/bin/etcd"
    static var available: Bool { FileManager.default.isExecutableFile(atPath: binary) }

    let dataDir: String
    let clientPort: Int
    let peerPort: Int
    private var process: Process?

    var url: String { "http://127.0.0.1:\(clientPort)" }

    init() throws {
        dataDir = NSTemporaryDirectory() + "shale-etcd-\(UUID().uuidString)"
        clientPort = try Self.freePort()
        peerPort = try Self.freePort()
        try start()
    }

    /// A TCP port nobody listens on now (bound to port 0, read back, closed).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ClusterError.failed("socket: errno \(errno)") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sp -> Int32 in
                guard bind(fd, sp, len) == 0 else { return -1 }
                return getsockname(fd, sp, &len)
            }
        }
        guard bound == 0 else { throw ClusterError.failed("bind: errno \(errno)") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// Starts etcd (again, on the same data directory and ports) and waits until it answers.
    func start() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
        let peer = "http://127.0.0.1:\(peerPort)"
        p.arguments = [
            "--data-dir", dataDir, "--name", "default",
            "--listen-client-urls", url, "--advertise-client-urls", url,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", "default=\(peer)",
        ]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try p.run()
        process = p
    }

    /// Waits (at most 45 s) until etcd answers a read.
    func waitReady() async throws {
        let client = EtcdClient(endpoints: [url], connectTimeout: .milliseconds(200), requestTimeout: .seconds(1))
        defer { Task { await client.shutdown() } }
        let deadline = ContinuousClock.now + .seconds(45)
        while ContinuousClock.now < deadline {
            if (try? await client.read("/ready-probe", prefix: false)) != nil {
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ClusterError.failed("etcd on \(url) did not answer within 45 s")
    }

    /// SIGKILL and wait.
    func kill() {
        guard let p = process else { return }
        Glibc.kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        process = nil
    }

    /// Kills etcd and removes its data directory.
    func stop() {
        kill()
        try? FileManager.default.removeItem(atPath: dataDir)
    }
}

/// Lets one test at a time run an etcd: the suites run in parallel, and several etcds
/// starting at once beside the rest of the test run on a small machine miss their deadline.
actor EtcdGate {
    static let shared = EtcdGate()
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func acquire() async {
        if !busy {
            busy = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func release() {
        if waiters.isEmpty { busy = false } else { waiters.removeFirst().resume() }
    }

    /// Runs `body` holding the gate.
    static func exclusively(_ body: () async throws -> Void) async throws {
        await shared.acquire()
        do {
            try await body()
        } catch {
            await shared.release()
            throw error
        }
        await shared.release()
    }
}

/// Runs `body` with a fresh etcd and a client of it; stops both afterwards.
func withEtcd(_ body: (EtcdTestServer, EtcdClient) async throws -> Void) async throws {
    try await EtcdGate.exclusively { try await withEtcdUngated(body) }
}

private func withEtcdUngated(_ body: (EtcdTestServer, EtcdClient) async throws -> Void) async throws {
    let server = try EtcdTestServer()
    defer { server.stop() }
    try await server.waitReady()
    let client = EtcdClient(endpoints: [server.url], connectTimeout: .milliseconds(500), requestTimeout: .seconds(2))
    do {
        try await body(server, client)
    } catch {
        await client.shutdown()
        throw error
    }
    await client.shutdown()
}

/// Polls `condition` every 50 ms until it holds or `seconds` pass; returns whether it held.
func eventually(_ seconds: Double, _ condition: () async -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return await condition()
}
