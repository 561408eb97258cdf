import KVStore
import KVProtocol
import Logging
import NIOCore
import Synchronization

/// Everything `kvserver` is configured with. Defaults are SPEC §4's; every field is also a
/// flag and a configuration-file key (see ``ServerSetting/all`` for the names, defaults and
/// the values each accepts).
public struct ServerConfig: Sendable {
    /// Data directory (the sharded store lives here).
    public var dir = "./data"
    /// Address to listen on.
    public var bind = "127.0.0.1"
    /// TCP port; 0 picks a free one (tests).
    public var port = 6380
    /// Shard count of a new store (an existing store keeps its own).
    public var shards = 4
    /// WAL durability: `always`, `everysec` or `no`.
    public var fsync: Durability = .everysec
    /// Port of the Prometheus endpoint on 127.0.0.1; 0 disables it.
    public var metricsPort = 9180
    /// Leader to follow (`HOST:PORT`), if any.
    public var replicaOf: String?
    /// Replication backlog kept in memory for followers, in MiB (all shards together).
    public var replBacklogMB = 256
    /// Password clients must give with AUTH; nil for none.
    public var requirePass: String?
    /// Password to give the leader.
    public var masterAuth: String?
    /// Most simultaneous clients.
    public var maxClients = 10_000
    /// Block cache budget for the whole server, in MiB (split over the shards).
    public var blockCacheMB = 256
    /// Row cache budget in MiB for the whole store (0: off), split over the shards at start.
    public var rowCacheMB = 0
    /// Memtable budget in MiB for the whole store, split over the shards at start: each
    /// shard's write buffer is this divided by the shard count (at least 1 MiB).
    public var writeBufferMB = 64
    /// Log level.
    public var logLevel: Logger.Level = .info
    /// Protocol limits (bulk length, multibulk count, inline length).
    public var limits = RESPLimits.default
    /// Slow log threshold in microseconds (-1 disables, 0 logs everything).
    public var slowlogThresholdMicros: Int64 = 10_000
    /// Slow log length.
    public var slowlogMaxLength = 128
    /// Worker threads for the commands that may run long (KEYS, FLUSHALL, snapshot pages, ...)
    /// and, with `fsync always`, for writes waiting in group commit; idle otherwise.
    public var workerThreads = 8
    /// Event loops: network I/O, and every point command run to completion. Defaults to the
    /// number of cores, so the threads that are runnable in the common case are no more than
    /// the cores.
    public var ioThreads = System.coreCount
    /// Protected mode: with no password set, only clients connecting from 127.0.0.1 or
    /// ::1 are served; others get `-DENIED ...` and are closed (Redis's rule).
    public var protectedMode = true
    /// Seconds a client may stay idle before it is closed; 0 never closes idle clients.
    public var idleTimeoutSeconds = 0
    /// Largest unfinished request a client may be sending, in bytes (Redis's
    /// `client-query-buffer-limit`); the client is closed above it.
    public var queryBufferLimit = 1 << 30
    /// The per-client output-buffer limit (Redis's `client-output-buffer-limit normal ...`).
    public var outputBufferLimit = OutputBufferLimit()
    /// The output-buffer limit of clients with subscriptions (Redis's
    /// `client-output-buffer-limit pubsub 32mb 8mb 60`).
    public var pubsubOutputBufferLimit = OutputBufferLimit(hardBytes: 32 << 20, softBytes: 8 << 20, softSeconds: 60)
    /// `replica-priority` (`slave-priority`): what INFO reports as `slave_priority`, for
    /// Sentinel's choice of the follower to promote (lower first; 0 never).
    public var replicaPriority = 100
    /// Redis's `notify-keyspace-events` letters in force (canonical form; empty: none).
    public var notifyKeyspaceEvents = ""
    /// Redis's `tracking-table-max-keys`: the most keys the client-side caching table
    /// remembers (0: no bound); above it random keys are evicted and invalidated.
    public var trackingTableMaxKeys = 1_000_000
    /// etcd endpoints (`--cluster-etcd URL[,URL...]`); empty: not in cluster mode.
    public var clusterEtcd: [String] = []
    /// The cluster's name (its etcd keys live under `/shale/<name>/`).
    public var clusterName = "shale"
    /// The `host:port` other nodes and clients reach this node at; nil: bind and port.
    public var clusterAnnounce: String?
    /// The lease a node holds in etcd, in seconds: a leader that cannot renew it for this
    /// long stops taking writes, and its followers may take over.
    public var clusterLeaseSeconds = 5
    /// Whether per-command latency histograms are recorded (`INFO latencystats`, /metrics).
    public var latencyTracking = true
    /// The percentiles `INFO latencystats` reports.
    public var latencyPercentiles: [Double] = [50, 95, 99, 99.9]
    /// The configuration file the server was started with, if any (INFO `config_file`).
    public var configFile: String?
    /// Where the log level is read at each log call, so that `CONFIG SET loglevel` takes
    /// effect; nil when the logger's own level is fixed.
    public var logLevelControl: LogLevelControl?

    /// The defaults.
    public init() {}

    /// The engine options for the store.
    func storeOptions() -> Options {
        var o = Options()
        o.durability = fsync
        o.blockCacheCapacity = max(1, blockCacheMB << 20 / max(1, shards))
        o.rowCacheCapacity = rowCacheMB << 20 / max(1, shards)
        o.writeBufferSize = max(1 << 20, writeBufferMB << 20 / max(1, shards))
        return o
    }

    /// The name of the fsync mode as the flag spells it.
    static func name(of d: Durability) -> String {
        switch d {
        case .always: return "always"
        case .everysec: return "everysec"
        case .no: return "no"
        }
    }

    /// Parses an fsync mode.
    public static func durability(named s: String) -> Durability? {
        switch s.lowercased() {
        case "always": return .always
        case "everysec": return .everysec
        case "no": return .no
        default: return nil
        }
    }
}

/// How much reply data one client may have waiting to be sent, in Redis's terms
/// (`client-output-buffer-limit normal <hard> <soft> <soft-seconds>`).
///
/// "Waiting" means replies handed to the connection that the socket has not yet taken.
/// - Execution of the client's further requests pauses while at least ``pauseBytes`` are
///   waiting, so a client that does not read makes the server hold at most about that much
///   (plus one reply) for it.
/// - The client is closed at once when ``hardBytes`` or more are waiting (a single reply
///   larger than the limit does that), and when at least ``softBytes`` have been waiting
///   continuously for ``softSeconds`` (a client that stopped reading).
/// A limit of 0 is no limit.
public struct OutputBufferLimit: Sendable, Hashable, CustomStringConvertible {
    /// Close at once at this many waiting bytes; 0 for none. Default 1 GiB: above any reply
    /// the default `proto-max-bulk-len` (512 MB) allows to be stored.
    public var hardBytes: Int
    /// Close when this many bytes stay waiting for ``softSeconds``; 0 for none. Default 16 MiB.
    public var softBytes: Int
    /// See ``softBytes``. Default 60.
    public var softSeconds: Int

    /// Creates a limit; the defaults are the documented ones.
    public init(hardBytes: Int = 1 << 30, softBytes: Int = 16 << 20, softSeconds: Int = 60) {
        self.hardBytes = hardBytes
        self.softBytes = softBytes
        self.softSeconds = softSeconds
    }

    /// Execution pauses while this many bytes are waiting: the soft limit; else half the
    /// hard limit (so that replies in flight from a client that reads do not reach it, and
    /// only a single reply larger than the rest can); else 4 MiB, so memory stays bounded
    /// even with no limit set. Without a soft limit, a client that stops reading is held
    /// at this size, not closed, until the idle timeout (if set) closes it.
    public var pauseBytes: Int {
        softBytes > 0 ? softBytes : hardBytes > 0 ? max(1, hardBytes / 2) : 4 << 20
    }

    /// Redis's `CONFIG GET client-output-buffer-limit` form: `normal <hard> <soft> <seconds>`.
    public var description: String { "normal \(numbers)" }

    /// `<hard> <soft> <seconds>`.
    public var numbers: String { "\(hardBytes) \(softBytes) \(softSeconds)" }
}

/// The log level of a running server, read at every log call, so that `CONFIG SET loglevel`
/// takes effect at once. Hand it to ``ControlledLogHandler`` when bootstrapping logging.
public final class LogLevelControl: Sendable {
    private let raw: Atomic<Int>

    /// A control starting at `level`.
    public init(_ level: Logger.Level) {
        raw = Atomic(Self.index(of: level))
    }

    /// The current level.
    public var level: Logger.Level {
        get { Logger.Level.allCases[raw.load(ordering: .relaxed)] }
        set { raw.store(Self.index(of: newValue), ordering: .relaxed) }
    }

    private static func index(of level: Logger.Level) -> Int {
        Logger.Level.allCases.firstIndex(of: level) ?? 2
    }
}

/// A log handler whose level is a ``LogLevelControl``'s; everything else goes to the
/// wrapped handler.
public struct ControlledLogHandler: LogHandler {
    private var inner: any LogHandler
    private let control: LogLevelControl

    /// Wraps `inner`, taking the level from `control`.
    public init(_ inner: any LogHandler, control: LogLevelControl) {
        self.inner = inner
        self.control = control
    }

    public var logLevel: Logger.Level {
        get { control.level }
        set { control.level = newValue }
    }

    public var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue }
    }

    public func log(event: LogEvent) {
        inner.log(event: event)
    }
}
