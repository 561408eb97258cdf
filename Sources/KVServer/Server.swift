import Dispatch
import KVCluster
import KVStore
import KVReplication
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// The `kvserver` daemon: a sharded store behind a Redis-protocol listener.
///
/// ```swift
/// let server = try KVServer(config: config, logger: logger)   // opens the store, binds
/// try await ServiceGroup(services: [server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger).run()
/// ```
/// Threads: `ioThreads` event loops (default: the number of cores) do network I/O and run
/// every point command to completion; commands that may run long (and, with `fsync always`,
/// writes) run on `workerThreads` pool threads, so a slow command or an fsync holds up only its
/// own connection. A timer on the event loops samples the op rate and starts the active expiry
/// cycle on the pool.
///
/// Shutdown (SIGTERM, SIGINT or SHUTDOWN): stop accepting, let running batches finish,
/// close connections, flush the memtables, record the cache-warm list and close the store.
public final class KVServer: Service, Sendable {
    /// Shared state (the store, counters, clients).
    public let state: ServerState
    private let group: MultiThreadedEventLoopGroup
    private let pool: NIOThreadPool
    private let listener: Channel
    /// The Prometheus endpoint's listener, when `metricsPort` is not 0.
    private let metricsListener: (any Channel)?
    private let logger: Logger
    private let stopSignal: AsyncStream<Void>
    private let stopContinuation: AsyncStream<Void>.Continuation
    private let stopped = Mutex(false)
    private let expiryRunning = Atomic<Bool>(false)
    /// Cluster mode's link to etcd (nil: a standalone server).
    private let clusterAgent: Mutex<ClusterAgent?> = Mutex(nil)

    /// The port the server listens on.
    public var port: Int { state.boundPort.load(ordering: .relaxed) }

    /// The port of the Prometheus endpoint on 127.0.0.1; nil when it is disabled.
    public var metricsPort: Int? { metricsListener?.localAddress?.port }

    /// Opens the store in `config.dir` and starts listening.
    ///
    /// - Throws: store errors (naming the file), or the bind error.
    public init(config: ServerConfig, logger: Logger) throws {
        self.logger = logger
        // An existing store keeps its shard count (SHARDS SET changes it); a new one gets --shards.
        let exists = ShardedStore.exists(at: config.dir, options: config.storeOptions())
        let backlog = ReplicationBacklog()
        backlog.setCapacity(bytes: config.replBacklogMB << 20)
        let store = try ShardedStore.open(
            at: config.dir, shards: exists ? nil : config.shards, options: config.storeOptions(), followingLeader: config.replicaOf != nil,
            commitFeed: backlog)
        var cluster: ClusterState?
        if !config.clusterEtcd.isEmpty {
            do {
                cluster = ClusterState(myself: try Self.clusterNode(config))
            } catch {
                try? store.close()
                throw error
            }
        }
        state = ServerState(store: store, backlog: backlog, config: config, logger: logger, cluster: cluster)
        (stopSignal, stopContinuation) = AsyncStream<Void>.makeStream()
        group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, config.ioThreads))
        pool = NIOThreadPool(numberOfThreads: max(1, config.workerThreads))
        pool.start()
        let state = self.state
        let pool = self.pool
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 511)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(ChannelOptions.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ConnectionHandler(server: state, pool: pool))
                }
            }
        do {
            listener = try bootstrap.bind(host: config.bind, port: config.port).wait()
        } catch {
            try? pool.syncShutdownGracefully()
            try? group.syncShutdownGracefully()
            try? store.close()
            throw ServerError("cannot listen on \(config.bind):\(config.port): \(error)")
        }
        state.boundPort.store(listener.localAddress?.port ?? config.port, ordering: .relaxed)
        if config.metricsPort > 0 {
            do {
                metricsListener = try MetricsServer.start(host: "127.0.0.1", port: config.metricsPort, group: group, pool: pool,
                                                          server: state, exporter: MetricsExporter())
            } catch {
                try? listener.close().wait()
                try? pool.syncShutdownGracefully()
                try? group.syncShutdownGracefully()
                try? store.close()
                throw ServerError("cannot listen for metrics on 127.0.0.1:\(config.metricsPort) (--metrics-port): \(error)")
            }
        } else {
            metricsListener = nil
        }
        if config.protectedMode && config.requirePass == nil && !["127.0.0.1", "::1", "localhost"].contains(config.bind) {
            logger.warning("protected mode is on and no password is set: only clients connecting from 127.0.0.1 or ::1 are served (set requirepass, or --protected-mode no)")
        }
        let continuation = stopContinuation
        state.shutdownRequest.withLock { $0 = { continuation.finish() } }
        if let leader = config.replicaOf, let colon = leader.lastIndex(of: ":"), let p = Int(leader[leader.index(after: colon)...]) {
            state.startReplication(host: String(leader[..<colon]), port: p)
        }
        startTimers()
        if cluster != nil {
            clusterAgent.withLock { $0 = ClusterAgent(server: state, config: config, logger: logger) }
        }
        logger.info("kvserver ready", metadata: [
            "bind": "\(config.bind)", "port": "\(port)", "dir": "\(config.dir)",
            "shards": "\(store.shardCount)", "fsync": "\(ServerConfig.name(of: config.fsync))",
        ])
    }

    private func startTimers() {
        let state = self.state
        let pool = self.pool
        let logger = self.logger
        // Idle clients (`timeout`) are looked for once a second, as Redis's clientsCron does.
        _ = group.next().scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
            state.closeIdleClients()
        }
        _ = group.next().scheduleRepeatedTask(initialDelay: .milliseconds(100), delay: .milliseconds(100)) { [self] _ in
            state.counters.sampleOps()
            // The client-side caching table's bound, also kept between commands (Redis's cron).
            if state.tracking.isActive { state.tracking.evictIfNeeded(server: state, current: nil) }
            // Followers delete nothing themselves: the leader's deletions of expired rows arrive
            // through replication (reads hide expired rows meanwhile).
            if state.replication.isReplica { return }
            // CLIENT PAUSE keeps the data set still: no expiry meanwhile (as in Redis).
            if state.pause.isActive { return }
            guard expiryRunning.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return }
            pool.submit { [self] work in
                defer { expiryRunning.store(false, ordering: .releasing) }
                guard work == .active else { return }
                // The active expiry cycle: delete due rows in slices of 200, for at most 25 ms.
                let started = monotonicMillis()
                do {
                    while monotonicMillis() - started < 25 {
                        let keyspace = state.keyspace
                        let n = try state.store.removeExpired(limit: 200) { key in keyspace.notify(.expired, "expired", key) }
                        state.counters.expiredKeys.wrappingAdd(Int64(n), ordering: .relaxed)
                        if n < 200 { break }
                    }
                } catch {
                    logger.warning("active expiry failed", metadata: ["error": "\(error)"])
                }
                // BCAST clients hear of the keys the cycle deleted.
                state.tracking.flushBroadcasts(server: state, current: nil)
            }
        }
    }

    /// Runs until a graceful shutdown (signal) or SHUTDOWN, then shuts down.
    public func run() async throws {
        let signal = stopSignal
        await withGracefulShutdownHandler {
            for await _ in signal {}
        } onGracefulShutdown: { [stopContinuation] in
            stopContinuation.finish()
        }
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                self.shutdown()
                done.resume()
            }
        }
    }

    /// Stops the server (idempotent; blocking).
    public func shutdown() {
        let first = stopped.withLock { s -> Bool in
            defer { s = true }
            return !s
        }
        guard first else { return }
        logger.info("kvserver shutting down")
        stopContinuation.finish()
        if let agent = clusterAgent.withLock({ $0 }) {
            // The lease goes at once: the node's followers may take over without waiting for it.
            let done = DispatchSemaphore(value: 0)
            Task {
                await agent.stop()
                done.signal()
            }
            _ = done.wait(timeout: .now() + 5)
        }
        state.replication.client.withLock { $0 }?.stop()
        try? listener.close().wait()
        try? metricsListener?.close().wait()
        state.replication.cancelAllWaits()
        state.blocked.cancelAll()
        // Running batches finish (their replies are written); queued ones are cancelled.
        try? pool.syncShutdownGracefully()
        try? group.syncShutdownGracefully()
        do {
            try state.store.flush()
            try state.store.close()
            logger.info("kvserver stopped; data flushed")
        } catch {
            logger.error("closing the store failed", metadata: ["error": "\(error)"])
        }
    }
}

/// A failure starting the server.
public struct ServerError: Error, CustomStringConvertible {
    /// What went wrong.
    public let description: String

    init(_ description: String) { self.description = description }
}

extension KVServer {
    /// This node in cluster mode: its id (kept in the data directory) and the address it
    /// announces (`--cluster-announce`, else bind:port).
    static func clusterNode(_ config: ServerConfig) throws -> ClusterNode {
        let id: String
        do {
            id = try ClusterMember.nodeID(inDirectory: config.dir)
        } catch {
            throw ServerError("cannot read or create the cluster node id in \(config.dir): \(error)")
        }
        if let announce = config.clusterAnnounce, let colon = announce.lastIndex(of: ":"),
           let p = Int(announce[announce.index(after: colon)...]) {
            return ClusterNode(id: id, host: String(announce[..<colon]), port: p)
        }
        guard config.port != 0 else {
            throw ServerError("cluster mode needs a fixed --port or --cluster-announce HOST:PORT")
        }
        return ClusterNode(id: id, host: config.bind, port: config.port)
    }
}
