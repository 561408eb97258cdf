import KVEngine
import KVProtocol
import Logging

/// Everything `kvserver` is configured with. Defaults are SPEC §4's.
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
    /// Port of the Prometheus endpoint; 0 disables it.
    public var metricsPort = 9180
    /// Leader to follow (`HOST:PORT`), if any.
    public var replicaOf: String?
    /// Password clients must give with AUTH; nil for none.
    public var requirePass: String?
    /// Password to give the leader.
    public var masterAuth: String?
    /// Most simultaneous clients.
    public var maxClients = 10_000
    /// Block cache budget for the whole server, in MiB (split over the shards).
    public var blockCacheMB = 256
    /// Log level.
    public var logLevel: Logger.Level = .info
    /// Protocol limits (bulk length, multibulk count, inline length).
    public var limits = RESPLimits.default
    /// Slow log threshold in microseconds (negative disables, 0 logs everything).
    public var slowlogThresholdMicros: Int64 = 10_000
    /// Slow log length.
    public var slowlogMaxLength = 128
    /// Threads executing commands (engine work never runs on the network threads).
    public var workerThreads = 8
    /// Network threads.
    public var ioThreads = 2

    /// The defaults.
    public init() {}

    /// The engine options for the store.
    func storeOptions() -> Options {
        var o = Options()
        o.durability = fsync
        o.blockCacheCapacity = max(1, blockCacheMB << 20 / max(1, shards))
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
