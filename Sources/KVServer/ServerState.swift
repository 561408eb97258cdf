import KVStore
import KVReplication
import Logging
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What the server counts; read by INFO (and the metrics endpoint).
final class ServerCounters: Sendable {
    let commandsProcessed = StripedCounter()
    let connectionsReceived = Atomic<Int64>(0)
    let rejectedConnections = Atomic<Int64>(0)
    let keyspaceHits = StripedCounter()
    let keyspaceMisses = StripedCounter()
    let expiredKeys = Atomic<Int64>(0)
    let errorReplies = Atomic<Int64>(0)
    let protocolErrors = Atomic<Int64>(0)
    let netInputBytes = StripedCounter()
    let netOutputBytes = StripedCounter()
    /// Clients closed for their output buffer (Redis's `client_output_buffer_limit_disconnections`).
    let outputBufferDisconnections = Atomic<Int64>(0)
    /// Clients closed for an unfinished request over the limit (`client_query_buffer_limit_disconnections`).
    let queryBufferDisconnections = Atomic<Int64>(0)
    /// Clients closed by the idle timeout.
    let idleDisconnections = Atomic<Int64>(0)
    /// Connections refused by protected mode.
    let protectedModeDenials = Atomic<Int64>(0)
    /// Whether latency histograms are recorded (`latency-tracking`).
    let latencyTracking = Atomic<Bool>(true)

    /// Per-command calls, time, failures and latency (`INFO commandstats`, `latencystats`).
    let commands = CommandStatistics()
    /// Errors by their code (`INFO errorstats`).
    let errors = Mutex<[String: Int64]>([:])

    /// Samples of the command counter for `instantaneous_ops_per_sec`: (ms, count).
    let opsSamples = Mutex<[(Int64, Int64)]>([])

    /// Records one command call that took `nanos` and failed with `error` (nil for success).
    func record(command: String, nanos: Int64, error: String?) {
        commands.record(command, nanos: nanos, failed: error != nil, histogram: latencyTracking.load(ordering: .relaxed))
        if let error { countError(error) }
    }

    /// ``record(command:nanos:error:)`` for a command of the table.
    @inline(__always)
    func record(_ spec: CommandSpec, nanos: Int64, error: String?) {
        commands.record(spec, nanos: nanos, failed: error != nil, histogram: latencyTracking.load(ordering: .relaxed))
        if let error { countError(error) }
    }

    /// Counts a call of `spec` refused before it ran (arity, authentication, read-only):
    /// Redis's `rejected_calls`.
    func recordRejected(_ spec: CommandSpec, error: String) {
        commands.recordRejected(spec.name)
        countError(error)
    }

    private func countError(_ error: String) {
        errorReplies.wrappingAdd(1, ordering: .relaxed)
        let code = String(error.prefix { $0 != " " })
        errors.withLock { $0[code, default: 0] += 1 }
    }

    /// Same as ``record(command:nanos:error:)`` with microseconds; a call of 0 µs that
    /// failed was rejected before it ran (unknown, arity, authentication, read-only), and
    /// counts as Redis's `rejected_calls`, not as a call.
    func record(command: String, micros: Int64, error: String?) {
        if micros == 0, let error {
            commands.recordRejected(command)
            countError(error)
            return
        }
        record(command: command, nanos: micros * 1000, error: error)
    }

    /// Zeroes the counters (CONFIG RESETSTAT).
    func reset() {
        commandsProcessed.reset()
        connectionsReceived.store(0, ordering: .relaxed)
        rejectedConnections.store(0, ordering: .relaxed)
        keyspaceHits.reset()
        keyspaceMisses.reset()
        expiredKeys.store(0, ordering: .relaxed)
        errorReplies.store(0, ordering: .relaxed)
        protocolErrors.store(0, ordering: .relaxed)
        netInputBytes.reset()
        netOutputBytes.reset()
        outputBufferDisconnections.store(0, ordering: .relaxed)
        queryBufferDisconnections.store(0, ordering: .relaxed)
        idleDisconnections.store(0, ordering: .relaxed)
        protectedModeDenials.store(0, ordering: .relaxed)
        commands.reset()
        errors.withLock { $0.removeAll() }
    }

    /// Takes a sample (every 100 ms) and returns the rate over the last samples.
    func sampleOps() {
        let now = monotonicMillis()
        let n = Int64(commandsProcessed.value)
        opsSamples.withLock { s in
            s.append((now, n))
            if s.count > 16 { s.removeFirst(s.count - 16) }
        }
    }

    var instantaneousOpsPerSec: Int64 {
        opsSamples.withLock { s in
            guard let first = s.first, let last = s.last, last.0 > first.0 else { return 0 }
            return (last.1 - first.1) * 1000 / (last.0 - first.0)
        }
    }
}

/// One slow log entry.
struct SlowlogEntry {
    let id: Int64
    let time: Int64
    let micros: Int64
    let arguments: [[UInt8]]
    let client: String
    let name: String
}

/// Server-wide state shared by every connection and command.
public final class ServerState: Sendable {
    /// The data.
    public let store: ShardedStore
    /// Every shard's recently committed write groups, for followers (the store's commit feed).
    let backlog: ReplicationBacklog
    /// Applies what the leader sends, when this server follows one.
    var replica: ReplicaApplier { ReplicaApplier(store: store) }
    let config: ServerConfig
    let logger: Logger
    let counters = ServerCounters()
    let startedAt = monotonicMillis()
    let startedWall = RowValue.wallClockMillis()
    let runID: String
    let nextClientID = Atomic<Int64>(1)
    let clients = Mutex<[Int64: ClientSession]>([:])
    /// The configuration as it is now: `CONFIG SET` changes the settings that may change
    /// at run time (``ServerSetting/runtime``) here; everything else keeps its start value.
    let live: Mutex<ServerConfig>
    /// Whether writes wait for an fsync (`fsync always`): they then run on the worker pool,
    /// where many wait in one group commit.
    let syncedWrites: Bool
    /// `slowlog-log-slower-than`, read by every command without a lock.
    let slowlogThreshold: Atomic<Int64>
    /// Bumped by every change of the protocol, query-buffer or output-buffer limits, so
    /// connections pick them up.
    let limitsGeneration = Atomic<Int>(0)
    /// The log level, shared with the log handler when the server was given one.
    let logLevelControl: LogLevelControl
    let slowlog = Mutex<(nextID: Int64, entries: [SlowlogEntry])>((0, []))
    let cursors = ScanCursors()
    /// Role, followers, link to the leader.
    let replication = ReplicationState()
    /// Channels, patterns and their subscribers.
    let pubsub: PubSubHub
    /// Keyspace notifications, published through `pubsub`.
    let keyspace: KeyspaceNotifier
    /// Cluster mode's state (nil: a standalone server).
    let cluster: ClusterState?
    /// Client-side caching: the keys tracking clients read, and their invalidations.
    let tracking: TrackingTable
    /// CLIENT PAUSE.
    let pause = ClientPause()
    /// Clients parked in blocking pops.
    let blocked: BlockedClients
    /// Called by SHUTDOWN.
    let shutdownRequest = Mutex<(@Sendable () -> Void)?>(nil)
    /// The port actually bound.
    let boundPort = Atomic<Int>(0)
    /// Unix time of the last SAVE/BGSAVE (or of the start).
    let lastSave = Atomic<Int64>(RowValue.wallClockMillis() / 1000)

    init(store: ShardedStore, backlog: ReplicationBacklog, config: ServerConfig, logger: Logger, cluster: ClusterState? = nil) {
        self.cluster = cluster
        self.store = store
        self.backlog = backlog
        self.config = config
        self.logger = logger
        var bytes = [UInt8](repeating: 0, count: 20)
        var rng = SystemRandomNumberGenerator()
        for i in 0..<20 { bytes[i] = UInt8.random(in: 0...255, using: &rng) }
        runID = bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
        live = Mutex(config)
        let hub = PubSubHub()
        pubsub = hub
        keyspace = KeyspaceNotifier(hub: hub, flags: KeyspaceEventFlags(letters: config.notifyKeyspaceEvents) ?? [])
        tracking = TrackingTable(maxKeys: config.trackingTableMaxKeys)
        syncedWrites = config.fsync == .always
        slowlogThreshold = Atomic(config.slowlogThresholdMicros)
        logLevelControl = config.logLevelControl ?? LogLevelControl(config.logLevel)
        counters.latencyTracking.store(config.latencyTracking, ordering: .relaxed)
        blocked = BlockedClients(keyspace: keyspace)
        keyspace.addListener(TrackingListener(server: self))
        keyspace.addListener(blocked)
    }

    var requirePass: String? { live.withLock { $0.requirePass } }

    /// Installs a changed configuration (CONFIG SET) and applies its side effects: the log
    /// level, latency tracking, protocol limits of every connection, the slow log length.
    func apply(_ changed: ServerConfig) {
        let old = live.withLock { c -> ServerConfig in
            defer { c = changed }
            return c
        }
        logLevelControl.level = changed.logLevel
        if old.notifyKeyspaceEvents != changed.notifyKeyspaceEvents {
            keyspace.enabled = KeyspaceEventFlags(letters: changed.notifyKeyspaceEvents) ?? []
        }
        counters.latencyTracking.store(changed.latencyTracking, ordering: .relaxed)
        tracking.maxKeys = changed.trackingTableMaxKeys
        if old.limits != changed.limits || old.outputBufferLimit != changed.outputBufferLimit
            || old.pubsubOutputBufferLimit != changed.pubsubOutputBufferLimit
            || old.queryBufferLimit != changed.queryBufferLimit {
            limitsGeneration.wrappingAdd(1, ordering: .relaxed)
        }
        slowlogThreshold.store(changed.slowlogThresholdMicros, ordering: .relaxed)
        if changed.slowlogMaxLength < old.slowlogMaxLength {
            slowlog.withLock { s in
                if s.entries.count > changed.slowlogMaxLength { s.entries.removeLast(s.entries.count - changed.slowlogMaxLength) }
            }
        }
    }

    /// Whether protected mode refuses a client connecting from `ip` (nil for a Unix
    /// socket): Redis 7.0's rule, which does not look at the bind address. With
    /// `protected-mode yes` and no password, only 127.0.0.1 and ::1 (and 127.0.0.1 seen
    /// through an IPv4-mapped IPv6 socket) are local; everything else, 127.0.0.2 included,
    /// is refused.
    static func protectedModeRefuses(protectedMode: Bool, passwordSet: Bool, ip: String?) -> Bool {
        guard protectedMode, !passwordSet, let ip else { return false }
        return !(ip == "127.0.0.1" || ip == "::1" || ip == "::ffff:127.0.0.1")
    }

    /// Whether protected mode refuses a client connecting from `ip` now.
    func protectedModeRefuses(ip: String?) -> Bool {
        let (mode, pass) = live.withLock { ($0.protectedMode, $0.requirePass != nil) }
        return Self.protectedModeRefuses(protectedMode: mode, passwordSet: pass, ip: ip)
    }

    /// Registers a new connection; nil when `maxclients` is reached.
    func register(remote: String, local: String, channel: (any Channel)? = nil) -> ClientSession? {
        let needsAuth = requirePass != nil
        let id = nextClientID.wrappingAdd(1, ordering: .relaxed).oldValue
        let session = ClientSession(id: id, remoteAddress: remote, localAddress: local, authenticated: !needsAuth,
                                    channel: channel)
        let max = live.withLock { $0.maxClients }
        let ok = clients.withLock { c -> Bool in
            if c.count >= max { return false }
            c[id] = session
            return true
        }
        counters.connectionsReceived.wrappingAdd(1, ordering: .relaxed)
        if !ok {
            counters.rejectedConnections.wrappingAdd(1, ordering: .relaxed)
            return nil
        }
        return session
    }

    func unregister(_ session: ClientSession) {
        _ = clients.withLock { $0.removeValue(forKey: session.id) }
        session.setDelivery(nil)
        pubsub.removeAll(session)
        if tracking.disable(session) { keyspace.listening(-1) }
        _ = session.endMulti()
        session.unwatchAll(store)
        replication.cancelWaits(session: session.id)
        blocked.cancel(session: session.id)
    }

    var connectedClients: Int { clients.withLock { $0.count } }

    /// Closes the clients idle for longer than `timeout` (Redis's `clientsCronHandleTimeout`):
    /// no request read and no reply written for that long, and no command running.
    /// Returns how many were closed.
    @discardableResult
    func closeIdleClients(now: Int64 = monotonicMillis()) -> Int {
        let timeout = live.withLock { $0.idleTimeoutSeconds }
        guard timeout > 0 else { return 0 }
        let sessions = clients.withLock { Array($0.values) }
        var closed = 0
        for session in sessions {
            // Subscribers wait for messages by design: the timeout spares them, as Redis does.
            let idle = !session.executing.load(ordering: .relaxed) && !session.isSubscribed
                && now - session.lastInteraction.load(ordering: .relaxed) > Int64(timeout) * 1000
            guard idle, let channel = session.channel else { continue }
            channel.close(promise: nil)
            counters.idleDisconnections.wrappingAdd(1, ordering: .relaxed)
            closed += 1
        }
        return closed
    }

    /// The largest output a client has waiting (`client_recent_max_output_buffer`).
    var largestClientOutput: Int {
        let sessions = clients.withLock { Array($0.values) }
        return sessions.reduce(0) { m, s in max(m, s.outputBytes.load(ordering: .relaxed)) }
    }

    func logSlow(_ args: [[UInt8]], micros: Int64, session: ClientSession) {
        let threshold = slowlogThreshold.load(ordering: .relaxed)
        guard threshold >= 0, micros >= threshold else { return }
        let maxLen = live.withLock { $0.slowlogMaxLength }
        // Redis keeps at most 32 arguments and 128 bytes of each.
        var kept = args.prefix(32).map { a -> [UInt8] in
            a.count > 128 ? Array(a.prefix(128)) + Array("... (\(a.count - 128) more bytes)".utf8) : a
        }
        if args.count > 32 { kept[31] = Array("... (\(args.count - 31) more arguments)".utf8) }
        let name = session.info.withLock { $0.name.map { String(decoding: $0, as: UTF8.self) } ?? "" }
        slowlog.withLock { s in
            s.entries.insert(SlowlogEntry(id: s.nextID, time: RowValue.wallClockMillis() / 1000, micros: micros,
                                          arguments: kept, client: session.remoteAddress, name: name), at: 0)
            s.nextID += 1
            if s.entries.count > maxLen { s.entries.removeLast(s.entries.count - maxLen) }
        }
    }

    /// Follows the leader at `host:port` (REPLICAOF, `--replicaof`): writes are refused from
    /// now on and a background link keeps the data equal to the leader's.
    func startReplication(host: String, port: Int) {
        let old = replication.client.withLock { cl -> ReplicationClient? in
            defer { cl = nil }
            return cl
        }
        old?.stop()
        do {
            try store.setFollowingLeader(true)
        } catch {
            logger.error("cannot load the index metadata as a follower", metadata: ["error": "\(error)"])
        }
        replication.link.withLock { $0 = ReplicationState.Link(host: host, port: port) }
        let client = ReplicationClient(server: self, host: host, port: port)
        replication.client.withLock { $0 = client }
        client.start()
        logger.info("following leader", metadata: ["leader": "\(host):\(port)"])
    }

    /// Asks the server to shut down (SHUTDOWN).
    func requestShutdown() {
        let hook = shutdownRequest.withLock { $0 }
        hook?()
    }
}

/// Remembered SCAN positions. The store is ordered, so a position is the last key returned;
/// the cursor a client sees is a number naming it. See DESIGN.md "SCAN cursors".
final class ScanCursors: Sendable {
    static let capacity = 100_000
    private struct State {
        var next: UInt64 = 1
        var positions: [UInt64: [UInt8]] = [:]
        var order: [UInt64] = []
        var head = 0
    }
    private let state = Mutex(State())

    /// A new cursor for the position after `key`.
    func remember(_ key: [UInt8]) -> UInt64 {
        state.withLock { s in
            // Cursor numbers mix a counter with random high bits so that stale numbers from a
            // previous server run are unlikely to name a live position.
            let id = (s.next << 20) | UInt64.random(in: 0..<(1 << 20))
            s.next += 1
            s.positions[id] = key
            s.order.append(id)
            if s.order.count - s.head > Self.capacity {
                s.positions[s.order[s.head]] = nil
                s.head += 1
                if s.head > Self.capacity {
                    s.order.removeFirst(s.head)
                    s.head = 0
                }
            }
            return id
        }
    }

    /// The position a cursor names, or nil when unknown.
    func position(_ id: UInt64) -> [UInt8]? {
        state.withLock { $0.positions[id] }
    }
}
