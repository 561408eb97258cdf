import ArgumentParser
import KVServer
import Logging
import ServiceLifecycle

/// `kvserver`: Shale's Redis-protocol daemon.
///
/// Every setting is a flag named as in ``ServerSetting/all`` and, with the same name, a key
/// of the TOML file given with `--config`; flags override the file.
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

            Every option can also be set in the TOML file given with --config, under the same \
            name (port = 6380, protected-mode = "no", proto-max-bulk-len = "512mb"); options on \
            the command line override the file. Memory values take Redis's units (1k = 1000, \
            1kb = 1024, mb, gb). CONFIG GET shows the live values; CONFIG SET changes maxclients, \
            timeout, requirepass, protected-mode, log-level (loglevel), slowlog-*, latency-tracking*, \
            client-output-buffer-limit, notify-keyspace-events, tracking-table-max-keys and the \
            proto-* limits while the server runs.
            """
    )

    static func setting(_ name: String) -> ArgumentHelp {
        guard let s = ServerSetting.named(name) else { return ArgumentHelp("(unknown setting \(name))") }
        return ArgumentHelp(s.help, valueName: s.valueName.trimmingQuotes)
    }

    @Option(name: .customLong("config"), help: ArgumentHelp("TOML configuration file; every option below can be set there under its own name (default: none)", valueName: "file"))
    var config: String?

    @Option(name: .customLong("dir"), help: setting("dir"))
    var dir: String?

    @Option(name: .customLong("bind"), help: setting("bind"))
    var bind: String?

    @Option(name: .customLong("port"), help: setting("port"))
    var port: String?

    @Option(name: .customLong("shards"), help: setting("shards"))
    var shards: String?

    @Option(name: .customLong("fsync"), help: setting("fsync"))
    var fsync: String?

    @Option(name: .customLong("metrics-port"), help: setting("metrics-port"))
    var metricsPort: String?

    @Option(name: .customLong("replicaof"), help: setting("replicaof"))
    var replicaof: String?

    @Option(name: .customLong("repl-backlog-mb"), help: setting("repl-backlog-mb"))
    var replBacklogMb: String?

    @Option(name: .customLong("requirepass"), help: setting("requirepass"))
    var requirepass: String?

    @Option(name: .customLong("masterauth"), help: setting("masterauth"))
    var masterauth: String?

    @Option(name: .customLong("maxclients"), help: setting("maxclients"))
    var maxclients: String?

    @Option(name: .customLong("row-cache-mb"), help: setting("row-cache-mb"))
    var rowCacheMb: String?

    @Option(name: .customLong("write-buffer-mb"), help: setting("write-buffer-mb"))
    var writeBufferMb: String?

    @Option(name: .customLong("block-cache-mb"), help: setting("block-cache-mb"))
    var blockCacheMb: String?

    @Option(name: .customLong("log-level"), help: setting("log-level"))
    var logLevel: String?

    @Option(name: .customLong("protected-mode"), help: setting("protected-mode"))
    var protectedMode: String?

    @Option(name: .customLong("timeout"), help: setting("timeout"))
    var timeout: String?

    @Option(name: .customLong("proto-max-bulk-len"), help: setting("proto-max-bulk-len"))
    var protoMaxBulkLen: String?

    @Option(name: .customLong("proto-max-multibulk-len"), help: setting("proto-max-multibulk-len"))
    var protoMaxMultibulkLen: String?

    @Option(name: .customLong("proto-inline-max-size"), help: setting("proto-inline-max-size"))
    var protoInlineMaxSize: String?

    @Option(name: .customLong("client-query-buffer-limit"), help: setting("client-query-buffer-limit"))
    var clientQueryBufferLimit: String?

    @Option(name: .customLong("client-output-buffer-limit"), help: setting("client-output-buffer-limit"))
    var clientOutputBufferLimit: String?
    @Option(name: .customLong("notify-keyspace-events"), help: setting("notify-keyspace-events"))
    var notifyKeyspaceEvents: String?
    @Option(name: .customLong("tracking-table-max-keys"), help: setting("tracking-table-max-keys"))
    var trackingTableMaxKeys: String?
    @Option(name: .customLong("replica-priority"), help: setting("replica-priority"))
    var replicaPriority: String?

    @Option(name: .customLong("slowlog-log-slower-than"), help: setting("slowlog-log-slower-than"))
    var slowlogLogSlowerThan: String?

    @Option(name: .customLong("slowlog-max-len"), help: setting("slowlog-max-len"))
    var slowlogMaxLen: String?

    @Option(name: .customLong("latency-tracking"), help: setting("latency-tracking"))
    var latencyTracking: String?

    @Option(name: .customLong("latency-tracking-info-percentiles"), help: setting("latency-tracking-info-percentiles"))
    var latencyTrackingInfoPercentiles: String?

    @Option(name: .customLong("cluster-etcd"), help: setting("cluster-etcd"))
    var clusterEtcd: String?

    @Option(name: .customLong("cluster-name"), help: setting("cluster-name"))
    var clusterName: String?

    @Option(name: .customLong("cluster-announce"), help: setting("cluster-announce"))
    var clusterAnnounce: String?

    @Option(name: .customLong("cluster-lease-seconds"), help: setting("cluster-lease-seconds"))
    var clusterLeaseSeconds: String?

    @Option(name: .customLong("worker-threads"), help: setting("worker-threads"))
    var workerThreads: String?

    @Option(name: .customLong("io-threads"), help: setting("io-threads"))
    var ioThreads: String?

    /// The flags given on the command line, by setting name (nil when not given).
    var given: [(String, String?)] {
        [
            ("dir", dir),
            ("bind", bind),
            ("port", port),
            ("shards", shards),
            ("fsync", fsync),
            ("metrics-port", metricsPort),
            ("replicaof", replicaof),
            ("repl-backlog-mb", replBacklogMb),
            ("requirepass", requirepass),
            ("masterauth", masterauth),
            ("maxclients", maxclients),
            ("block-cache-mb", blockCacheMb),
            ("row-cache-mb", rowCacheMb),
            ("write-buffer-mb", writeBufferMb),
            ("log-level", logLevel),
            ("protected-mode", protectedMode),
            ("timeout", timeout),
            ("proto-max-bulk-len", protoMaxBulkLen),
            ("proto-max-multibulk-len", protoMaxMultibulkLen),
            ("proto-inline-max-size", protoInlineMaxSize),
            ("client-query-buffer-limit", clientQueryBufferLimit),
            ("client-output-buffer-limit", clientOutputBufferLimit),
            ("notify-keyspace-events", notifyKeyspaceEvents),
            ("tracking-table-max-keys", trackingTableMaxKeys),
            ("replica-priority", replicaPriority),
            ("slowlog-log-slower-than", slowlogLogSlowerThan),
            ("slowlog-max-len", slowlogMaxLen),
            ("latency-tracking", latencyTracking),
            ("latency-tracking-info-percentiles", latencyTrackingInfoPercentiles),
            ("cluster-etcd", clusterEtcd),
            ("cluster-name", clusterName),
            ("cluster-announce", clusterAnnounce),
            ("cluster-lease-seconds", clusterLeaseSeconds),
            ("worker-threads", workerThreads),
            ("io-threads", ioThreads)
        ]
    }

    /// The configuration: defaults, then the file, then the flags.
    func resolve() throws(ValidationError) -> ServerConfig {
        var cfg = ServerConfig()
        if let config {
            do throws(ConfigFileError) {
                try ConfigFile.load(path: config, into: &cfg)
            } catch {
                throw ValidationError("--config \(error)")
            }
        }
        for (name, value) in given {
            guard let value else { continue }
            do throws(SettingError) {
                try ServerSetting.apply(name, value, to: &cfg)
            } catch {
                throw ValidationError("--\(name): \(error.reason) (got '\(value)')")
            }
        }
        return cfg
    }

    func validate() throws {
        let names = Set(given.map(\.0))
        let missing = ServerSetting.all.map(\.name).filter { !names.contains($0) }
        precondition(missing.isEmpty, "settings without a flag: \(missing)")
        _ = try resolve()
    }

    func run() async throws {
        var cfg = try resolve()
        let control = LogLevelControl(cfg.logLevel)
        cfg.logLevelControl = control
        LoggingSystem.bootstrap { label in
            ControlledLogHandler(StreamLogHandler.standardError(label: label), control: control)
        }
        let logger = Logger(label: "kvserver")
        if let file = cfg.configFile {
            logger.info("configuration read", metadata: ["file": "\(file)"])
        }
        let server = try KVServer(config: cfg, logger: logger)
        let group = ServiceGroup(
            configuration: .init(
                // SHUTDOWN ends the server's run(): that is a clean stop of the whole group
                // (exit status 0), as SIGTERM and SIGINT are.
                services: [.init(service: server, successTerminationBehavior: .gracefullyShutdownGroup)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
    }
}

extension String {
    /// The value name without the quotes the README shows around multi-word values.
    var trimmingQuotes: String { filter { $0 != "\"" && $0 != "<" && $0 != ">" } }
}
