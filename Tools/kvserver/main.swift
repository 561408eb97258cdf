import ArgumentParser
import KVServer
import Logging
import ServiceLifecycle

/// `kvserver`: Shale's Redis-protocol daemon.
@main
struct KVServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kvserver",
        abstract: "Shale's Redis-protocol server over a sharded LSM store.",
        discussion: """
            Speaks RESP2 and RESP3, so redis-cli, redis-benchmark and Redis client libraries work \
            unchanged. SIGTERM, SIGINT or the SHUTDOWN command stop it cleanly: it stops accepting, \
            finishes running commands, flushes the memtables, records the cache-warm list and \
            closes its files.
            """
    )

    @Option(help: "Data directory; created when missing.")
    var dir = "./data"

    @Option(help: "Address to listen on. Use 127.0.0.1 unless clients on other hosts must connect.")
    var bind = "127.0.0.1"

    @Option(help: "TCP port to listen on (0 picks a free port).")
    var port = 6380

    @Option(help: "Shard count of a new store, 1-1024; an existing store keeps its count (change it with SHARDS SET n).")
    var shards = 4

    @Option(help: "WAL durability: always (fsync before acknowledging, shared by group commit), everysec, or no.")
    var fsync = "everysec"

    @Option(name: .customLong("metrics-port"), help: "Port of the Prometheus metrics endpoint on 127.0.0.1 (0 disables).")
    var metricsPort = 9180

    @Option(name: .customLong("replicaof"), help: "Follow the leader at HOST:PORT as a read-only replica.")
    var replicaOf: String?

    @Option(name: .customLong("requirepass"), help: "Password clients must give with AUTH (none by default).")
    var requirePass: String?

    @Option(name: .customLong("masterauth"), help: "Password to authenticate to the leader with.")
    var masterAuth: String?

    @Option(help: "Most simultaneous client connections.")
    var maxclients = 10_000

    @Option(name: .customLong("block-cache-mb"), help: "Block cache budget in MiB, shared by the shards.")
    var blockCacheMB = 256

    @Option(help: "Path of a configuration file (not read by this version; flags only).")
    var config: String?

    @Option(name: .customLong("log-level"), help: "Log level: trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be between 0 and 65535, got \(port)") }
        guard (1...1024).contains(shards) else { throw ValidationError("--shards must be between 1 and 1024, got \(shards)") }
        guard ServerConfig.durability(named: fsync) != nil else {
            throw ValidationError("--fsync must be always, everysec or no, got '\(fsync)'")
        }
        guard (0...65535).contains(metricsPort) else { throw ValidationError("--metrics-port must be between 0 and 65535, got \(metricsPort)") }
        guard maxclients >= 1 else { throw ValidationError("--maxclients must be at least 1, got \(maxclients)") }
        guard blockCacheMB >= 1 else { throw ValidationError("--block-cache-mb must be at least 1, got \(blockCacheMB)") }
        guard Logger.Level(rawValue: logLevel.lowercased()) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical; got '\(logLevel)'")
        }
        if replicaOf != nil {
            throw ValidationError("--replicaof: replication is not available in this version of kvserver")
        }
        if let config {
            throw ValidationError("--config \(config): configuration files are not read by this version of kvserver; use flags")
        }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel.lowercased()) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: "kvserver")
        logger.logLevel = level
        var cfg = ServerConfig()
        cfg.dir = dir
        cfg.bind = bind
        cfg.port = port
        cfg.shards = shards
        cfg.fsync = ServerConfig.durability(named: fsync)!
        cfg.metricsPort = metricsPort
        cfg.requirePass = requirePass
        cfg.masterAuth = masterAuth
        cfg.maxClients = maxclients
        cfg.blockCacheMB = blockCacheMB
        cfg.logLevel = level
        let server = try KVServer(config: cfg, logger: logger)
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: server)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
    }
}
