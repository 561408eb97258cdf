import Foundation
import Synchronization

/// What a kvserver in cluster mode runs against etcd: it registers the node as alive under a
/// lease, keeps the lease alive, and follows the cluster's topology.
///
/// - The lease: granted with ``leaseTTL`` seconds; ``ClusterKeys/alive(_:)`` holds the node
///   (JSON ``ClusterNode``) under it. It is renewed every TTL/3. When a renewal answers that
///   the lease is gone (it expired, or was revoked), a new lease is granted and the node
///   registered again. The lease is *held* from a successful grant or renewal until TTL
///   seconds after the moment that request was **sent** (never later than etcd's own expiry);
///   ``onLease`` reports false as soon as that time passes without a renewal, and the node
///   must then stop taking writes; true again after the next successful renewal or grant.
/// - The topology: read from ``ClusterKeys/topology`` and watched from the next revision;
///   every change is decoded with ``ClusterTopology/decode(_:)`` and reported through
///   ``onTopology`` (nil when the key is absent or deleted). A malformed one is reported
///   through ``onProblem`` and ignored (the last good one stays). A lost watch is resumed
///   by reading the key again.
///
/// Callbacks run on the member's tasks, one at a time per kind; they must not block.
public final class ClusterMember: Sendable {
    /// The etcd client (not shut down by the member).
    public let etcd: EtcdClient
    /// The cluster's keys.
    public let keys: ClusterKeys
    /// This node.
    public let node: ClusterNode
    /// The lease TTL in seconds.
    public let leaseTTL: Int64
    /// Called with each new topology (nil: none in etcd).
    public let onTopology: @Sendable (ClusterTopology?) -> Void
    /// Called when the lease becomes held or lost.
    public let onLease: @Sendable (_ held: Bool) -> Void
    /// Called with what went wrong (etcd unreachable, a malformed topology); informational.
    public let onProblem: @Sendable (String) -> Void

    struct State {
        var tasks: [Task<Void, Never>] = []
        var lease: Int64 = 0
        /// When the last successful grant or renewal was sent.
        var renewedAt: ContinuousClock.Instant?
        var held = false
        var topology: ClusterTopology?
        var topologyKnown = false
    }

    let state = Mutex(State())
    let clock = ContinuousClock()

    /// A member of `keys.cluster` for `node`, talking to etcd through `etcd`.
    public init(
        etcd: EtcdClient, keys: ClusterKeys, node: ClusterNode, leaseTTL: Int64 = 5,
        onTopology: @escaping @Sendable (ClusterTopology?) -> Void = { _ in },
        onLease: @escaping @Sendable (_ held: Bool) -> Void = { _ in },
        onProblem: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.etcd = etcd
        self.keys = keys
        self.node = node
        self.leaseTTL = max(1, leaseTTL)
        self.onTopology = onTopology
        self.onLease = onLease
        self.onProblem = onProblem
    }

    /// Whether the lease is held now.
    public var leaseHeld: Bool { state.withLock { $0.held } }
    /// The current lease id (0: none).
    public var leaseID: Int64 { state.withLock { $0.lease } }
    /// The last topology reported.
    public var topology: ClusterTopology? { state.withLock { $0.topology } }

    /// Starts registering and watching (once; a second call does nothing).
    public func start() {
        state.withLock { s in
            guard s.tasks.isEmpty else { return }
            s.tasks = [
                Task { await self.leaseLoop() },
                Task { await self.expiryLoop() },
                Task { await self.topologyLoop() },
            ]
        }
    }

    /// Stops the tasks and revokes the lease (the registration goes at once). Reports the
    /// lease lost when it was held.
    public func stop() async {
        let (tasks, lease) = state.withLock { s in
            let t = (s.tasks, s.lease)
            s.tasks = []
            s.lease = 0
            return t
        }
        for t in tasks { t.cancel() }
        for t in tasks { await t.value }
        if lease != 0 { try? await etcd.revoke(lease: lease) }
        setHeld(false, renewedAt: nil)
    }

    // MARK: Lease

    func setHeld(_ held: Bool, renewedAt: ContinuousClock.Instant?) {
        let changed = state.withLock { s in
            if held { s.renewedAt = renewedAt }
            let changed = s.held != held
            s.held = held
            return changed
        }
        if changed { onLease(held) }
    }

    /// Grants a lease and registers the node under it.
    func register() async throws {
        let sent = clock.now
        let lease = try await etcd.grantLease(ttlSeconds: leaseTTL)
        let json = try JSONEncoder().encode(node)
        do {
            try await etcd.put(keys.alive(node.id), [UInt8](json), lease: lease)
        } catch {
            try? await etcd.revoke(lease: lease)
            throw error
        }
        let stopped = state.withLock { s in
            if Task.isCancelled { return true }
            s.lease = lease
            return false
        }
        if stopped {
            try? await etcd.revoke(lease: lease)
            return
        }
        setHeld(true, renewedAt: sent)
    }

    func leaseLoop() async {
        let interval = Duration.milliseconds(leaseTTL * 1000 / 3)
        while !Task.isCancelled {
            let lease = state.withLock { $0.lease }
            do {
                if lease == 0 {
                    try await register()
                } else {
                    let sent = clock.now
                    if try await etcd.keepAlive(lease: lease) > 0 {
                        setHeld(true, renewedAt: sent)
                    } else {
                        onProblem("lease \(lease) expired; registering again")
                        state.withLock { if $0.lease == lease { $0.lease = 0 } }
                        setHeld(false, renewedAt: nil)
                        continue
                    }
                }
            } catch {
                if Task.isCancelled { return }
                onProblem("lease renewal failed: \(error)")
                // Retry sooner than a full interval while the lease may still be saved.
                try? await Task.sleep(for: min(interval, .milliseconds(500)))
                continue
            }
            try? await Task.sleep(for: interval)
        }
    }

    /// Reports the lease lost when TTL passes since the last successful renewal was sent.
    func expiryLoop() async {
        let ttl = Duration.seconds(leaseTTL)
        while !Task.isCancelled {
            let expired = state.withLock { s in
                guard s.held, let at = s.renewedAt else { return false }
                return clock.now >= at + ttl
            }
            if expired {
                onProblem("lease not renewed within \(leaseTTL) s: not held")
                setHeld(false, renewedAt: nil)
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    // MARK: Topology

    func report(_ value: EtcdKeyValue?) {
        var topology: ClusterTopology?
        if let value {
            do {
                topology = try ClusterTopology.decode(value.data)
            } catch {
                onProblem("ignoring the topology at revision \(value.modRevision): \(error)")
                return
            }
        }
        let changed = state.withLock { s in
            if s.topologyKnown && s.topology == topology { return false }
            s.topologyKnown = true
            s.topology = topology
            return true
        }
        if changed { onTopology(topology) }
    }

    func topologyLoop() async {
        var backoff = Duration.milliseconds(200)
        while !Task.isCancelled {
            do {
                let (kvs, revision) = try await etcd.read(keys.topology, prefix: false)
                report(kvs.first)
                backoff = .milliseconds(200)
                for try await events in etcd.watch(keys.topology, fromRevision: revision + 1) {
                    guard let last = events.last else { continue }
                    report(last.kind == .put ? last.kv : nil)
                }
            } catch {
                if Task.isCancelled { return }
                onProblem("topology watch: \(error)")
            }
            try? await Task.sleep(for: backoff)
            backoff = min(backoff * 2, .seconds(2))
        }
    }

    // MARK: Node id

    /// The node id kept in `directory`/`NODE_ID` (40 lower-case hex characters), created
    /// with a random id when the file is absent (written to a temporary file, then renamed,
    /// so it is never seen half-written). Throws when the file holds something else.
    public static func nodeID(inDirectory directory: String) throws -> String {
        let path = (directory as NSString).appendingPathComponent("NODE_ID")
        if let data = FileManager.default.contents(atPath: path) {
            let id = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard ClusterNode.isValidID(id) else {
                throw ClusterError.failed("\(path) does not hold a node id (40 lower-case hex characters)")
            }
            return id
        }
        var rng = SystemRandomNumberGenerator()
        let id = (0..<20).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &rng)) }.joined()
        let temp = path + ".tmp-\(ProcessInfo.processInfo.processIdentifier)"
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try Data((id + "\n").utf8).write(to: URL(fileURLWithPath: temp))
            if rename(temp, path) != 0 {
                throw ClusterError.failed("cannot rename \(temp) to \(path): errno \(errno)")
            }
        } catch {
            try? FileManager.default.removeItem(atPath: temp)
            throw error as? ClusterError ?? ClusterError.failed("cannot write \(path): \(error)")
        }
        return id
    }
}
