import KVStore
import KVProtocol
import Logging

/// One setting of `kvserver`. The same name is the command-line flag (`--maxclients 100`),
/// the configuration-file key (`maxclients = 100`) and, with Redis's spelling where Redis
/// has the setting (``aliases``), the `CONFIG GET`/`CONFIG SET` parameter.
///
/// Values are parsed from text with Redis's rules and Redis's error wording: integers as
/// `string2ll` reads them, memory values with Redis's units (`1k` = 1000, `1kb` = 1024,
/// `mb`, `gb`), booleans as `yes`/`no`.
public struct ServerSetting: Sendable {
    /// Flag and file name.
    public let name: String
    /// Other names `CONFIG GET`/`SET` accept (Redis's, where they differ).
    public let aliases: [String]
    /// What the value looks like, for `--help` (`<n>`, `yes|no`, `<bytes>`...).
    public let valueName: String
    /// What the setting does, for `--help` and README.
    public let summary: String
    /// Whether `CONFIG SET` may change it while the server runs.
    public let runtime: Bool
    /// Whether `CONFIG GET` shows it masked.
    public let secret: Bool
    let parse: @Sendable (String, inout ServerConfig) throws(SettingError) -> Void
    let render: @Sendable (ServerConfig) -> String

    /// The value as `CONFIG GET` shows it (secrets masked).
    func shown(_ config: ServerConfig) -> String {
        let v = render(config)
        return secret && !v.isEmpty ? "********" : v
    }

    /// The default, as text (`none` when unset).
    public var defaultText: String {
        let v = render(ServerConfig())
        return v.isEmpty ? "none" : v
    }

    /// The `--help` text: the summary and the default.
    public var help: String { "\(summary) (default: \(defaultText))" }

    /// Looks a setting up by its name or one of its aliases (case-insensitive).
    public static func named(_ name: String) -> ServerSetting? {
        let n = name.lowercased()
        return all.first { $0.name == n || $0.aliases.contains(n) }
    }

    /// Parses `text` into `config` for the setting called `name`.
    ///
    /// - Throws: ``SettingError`` naming the setting; its reason is Redis's wording.
    public static func apply(_ name: String, _ text: String, to config: inout ServerConfig) throws(SettingError) {
        guard let s = named(name) else { throw SettingError(setting: name, reason: "unknown setting") }
        try s.parse(text, &config)
    }
}

/// A setting's value was refused.
public struct SettingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The setting's name.
    public let setting: String
    /// Why, in Redis's words (`argument must be between 1 and 65535 inclusive`).
    public let reason: String

    public var description: String { "setting '\(setting)': \(reason)" }
}

extension ServerSetting {
    /// Every setting, in `--help` order.
    public static let all: [ServerSetting] = [
        text("dir", "<path>", "Data directory; created when missing.", nonEmpty: true,
             \.dir, { $0.dir = $1 }),
        text("bind", "<address>", "Address to listen on. Use 127.0.0.1 unless clients on other hosts must connect.",
             nonEmpty: true, \.bind, { $0.bind = $1 }),
        int("port", "TCP port to listen on (0 picks a free port).", 0...65535, \.port, { $0.port = $1 }),
        int("shards", "Shard count of a new store; an existing store keeps its count (change it with SHARDS SET n).",
            1...1024, \.shards, { $0.shards = $1 }),
        choice("fsync", aliases: ["appendfsync"], "WAL durability: always (fsync before acknowledging, shared by group commit), everysec, or no.",
               ["always", "everysec", "no"], { ServerConfig.name(of: $0.fsync) },
               { $0.fsync = ServerConfig.durability(named: $1)! }),
        int("metrics-port", "Port of the Prometheus endpoint (GET /metrics) on 127.0.0.1; 0 disables it.",
            0...65535, \.metricsPort, { $0.metricsPort = $1 }),
        ServerSetting(name: "replicaof", aliases: ["slaveof"], valueName: "<host:port>",
                      summary: "Follow the leader at HOST:PORT as a read-only replica.", runtime: false, secret: false,
                      parse: { text, c throws(SettingError) in
                          if text.isEmpty || text.lowercased() == "no one" { c.replicaOf = nil; return }
                          let parts = text.split(separator: ":", omittingEmptySubsequences: false)
                          guard parts.count >= 2, !parts.dropLast().joined(separator: ":").isEmpty,
                                let p = Int(parts.last!), (1...65535).contains(p)
                          else { throw SettingError(setting: "replicaof", reason: "argument must be HOST:PORT") }
                          c.replicaOf = text
                      }, render: { $0.replicaOf ?? "" }),
        int("repl-backlog-mb", "Replication backlog kept in memory for followers, in MiB (all shards together).",
            1...(1 << 20), \.replBacklogMB, { $0.replBacklogMB = $1 }),
        ServerSetting(name: "requirepass", aliases: [], valueName: "<password>",
                      summary: "Password clients must give with AUTH; empty for none.", runtime: true, secret: true,
                      parse: { text, c throws(SettingError) in c.requirePass = text.isEmpty ? nil : text },
                      render: { $0.requirePass ?? "" }),
        ServerSetting(name: "masterauth", aliases: [], valueName: "<password>",
                      summary: "Password to authenticate to the leader with.", runtime: false, secret: true,
                      parse: { text, c throws(SettingError) in c.masterAuth = text.isEmpty ? nil : text },
                      render: { $0.masterAuth ?? "" }),
        int("maxclients", "Most simultaneous client connections; one more is refused with -ERR max number of clients reached.",
            1...4_294_967_295, runtime: true, \.maxClients, { $0.maxClients = $1 }),
        int("block-cache-mb", "Block cache budget in MiB, shared by the shards.", 1...(1 << 22),
            \.blockCacheMB, { $0.blockCacheMB = $1 }),
        int("row-cache-mb", "Row cache budget in MiB for hot key -> value reads, shared by the shards; 0 disables it.", 0...(1 << 22),
            \.rowCacheMB, { $0.rowCacheMB = $1 }),
        int("write-buffer-mb", "Memtable budget in MiB for the whole store, split over the shards at start (each at least 1 MiB).",
            1...(1 << 16), \.writeBufferMB, { $0.writeBufferMB = $1 }),
        choice("log-level", aliases: ["loglevel"], "Log level (verbose is taken as info).",
               ["trace", "debug", "verbose", "info", "notice", "warning", "error", "critical"], runtime: true,
               { $0.logLevel.rawValue },
               { $0.logLevel = $1 == "verbose" ? .info : Logger.Level(rawValue: $1)! }),
        bool("protected-mode", "With no password set, serve only clients connecting from 127.0.0.1 or ::1; others get -DENIED and are closed.",
             runtime: true, \.protectedMode, { $0.protectedMode = $1 }),
        int("timeout", "Close a client after this many idle seconds; 0 never does.", 0...2_147_483_647, runtime: true,
            \.idleTimeoutSeconds, { $0.idleTimeoutSeconds = $1 }),
        memory("proto-max-bulk-len", "Largest bulk string a request may carry, in bytes (units: kb, mb, gb).",
               1_048_576...Int(Int64.max / 2), \.limits.maxBulkLength, { $0.limits.maxBulkLength = $1 }),
        int("proto-max-multibulk-len", "Most arguments in one request.", 1...Int(Int32.max), runtime: true,
            \.limits.maxMultibulkLength, { $0.limits.maxMultibulkLength = $1 }),
        memory("proto-inline-max-size", "Longest inline request line and longest *<n> or $<n> header line, in bytes.",
               64...Int(Int32.max), \.limits.maxInlineLength, { $0.limits.maxInlineLength = $1 }),
        memory("client-query-buffer-limit", "Largest unfinished request a client may send before it is closed, in bytes.",
               1_048_576...Int(Int64.max / 2), \.queryBufferLimit, { $0.queryBufferLimit = $1 }),
        ServerSetting(name: "client-output-buffer-limit", aliases: [],
                      valueName: "\"[normal|pubsub] <hard> <soft> <seconds> ...\"",
                      summary: "Per-client output limits by class (normal clients; pubsub: clients with subscriptions, default 32mb 8mb 60): execution pauses while <soft> bytes of replies wait to be sent; the client is closed when <hard> bytes wait, or <soft> bytes wait for <seconds>; 0 is no limit. Classes not named keep their limits.",
                      runtime: true, secret: false,
                      parse: { text, c throws(SettingError) in try parseOutputBufferLimits(text, into: &c) },
                      render: { "\($0.outputBufferLimit) pubsub \($0.pubsubOutputBufferLimit.numbers)" }),
        int("slowlog-log-slower-than", "Log commands slower than this many microseconds in SLOWLOG; -1 disables, 0 logs all.",
            -1...Int(Int64.max), runtime: true, { Int($0.slowlogThresholdMicros) }, { $0.slowlogThresholdMicros = Int64($1) }),
        int("slowlog-max-len", "Entries SLOWLOG keeps.", 0...Int(Int64.max), runtime: true,
            \.slowlogMaxLength, { $0.slowlogMaxLength = $1 }),
        bool("latency-tracking", "Record per-command latency histograms (INFO latencystats, /metrics).", runtime: true,
             \.latencyTracking, { $0.latencyTracking = $1 }),
        int("replica-priority", "The priority INFO reports for this server as a follower (slave_priority): Sentinel promotes the lowest first, never 0.",
            0...Int(Int32.max), runtime: true, \.replicaPriority, { $0.replicaPriority = $1 }).aliased("slave-priority"),
        ServerSetting(name: "notify-keyspace-events", aliases: [], valueName: "<classes>",
                      summary: "Keyspace notifications to publish: K (__keyspace@0__:<key> channels) and/or E (__keyevent@0__:<event>) with the classes g (generic), $ (string), x (expired), e (evicted), m (key miss), n (new key), A (g$lshzxetd), as Redis's letters; empty disables them.",
                      runtime: true, secret: false,
                      parse: { text, c throws(SettingError) in
                          guard let flags = KeyspaceEventFlags(letters: text) else {
                              throw SettingError(setting: "notify-keyspace-events", reason: KeyspaceEventFlags.invalidMessage)
                          }
                          c.notifyKeyspaceEvents = flags.letters
                      },
                      render: { $0.notifyKeyspaceEvents }),
        int("tracking-table-max-keys", "Most keys the client-side caching table (CLIENT TRACKING) remembers; above it random keys are evicted and their readers invalidated; 0 is no bound.",
            0...Int(Int64.max), runtime: true, \.trackingTableMaxKeys, { $0.trackingTableMaxKeys = $1 }),
        ServerSetting(name: "latency-tracking-info-percentiles", aliases: [], valueName: "\"<p> ...\"",
                      summary: "Percentiles INFO latencystats reports, space-separated.", runtime: true, secret: false,
                      parse: { text, c throws(SettingError) in c.latencyPercentiles = try parsePercentiles(text) },
                      render: { $0.latencyPercentiles.map(formatPercentile).joined(separator: " ") }),
        ServerSetting(name: "cluster-etcd", aliases: [], valueName: "<url[,url...]>",
                      summary: "etcd endpoints (http://host:port, comma-separated): runs the node in cluster mode.",
                      runtime: false, secret: false,
                      parse: { text, c throws(SettingError) in
                          let urls = text.split(separator: ",").map { String($0.filter { $0 != " " }) }.filter { !$0.isEmpty }
                          for u in urls where !(u.hasPrefix("http://") || u.hasPrefix("https://")) || u.count > 1024 {
                              throw SettingError(setting: "cluster-etcd", reason: "\(u.prefix(64)) is not an http:// or https:// URL")
                          }
                          c.clusterEtcd = urls
                      }, render: { $0.clusterEtcd.joined(separator: ",") }),
        text("cluster-name", "<name>", "Cluster name; its state lives in etcd under /shale/<name>/.", nonEmpty: true,
             \.clusterName, { $0.clusterName = $1 }),
        ServerSetting(name: "cluster-announce", aliases: [], valueName: "<host:port>",
                      summary: "Address other nodes and clients reach this node at (default: bind:port).",
                      runtime: false, secret: false,
                      parse: { text, c throws(SettingError) in
                          if text.isEmpty { c.clusterAnnounce = nil; return }
                          let parts = text.split(separator: ":", omittingEmptySubsequences: false)
                          guard parts.count >= 2, !parts.dropLast().joined(separator: ":").isEmpty,
                                let p = Int(parts.last!), (1...65535).contains(p)
                          else { throw SettingError(setting: "cluster-announce", reason: "argument must be HOST:PORT") }
                          c.clusterAnnounce = text
                      }, render: { $0.clusterAnnounce ?? "" }),
        int("cluster-lease-seconds", "Seconds of the node's etcd lease: a leader that cannot renew it stops taking writes and is failed over.",
            2...3600, \.clusterLeaseSeconds, { $0.clusterLeaseSeconds = $1 }),
        int("worker-threads", "Threads for commands that may run long (KEYS, FLUSHALL, snapshot pages) and, with fsync always, writes waiting in group commit.", 1...1024, \.workerThreads, { $0.workerThreads = $1 }),
        int("io-threads", "Event loops: network I/O and every point command, run to completion (default: the number of cores).", 1...128, \.ioThreads, { $0.ioThreads = $1 }),
    ]

    // MARK: kinds of setting

    static func text(_ name: String, _ valueName: String, _ summary: String, nonEmpty: Bool,
                     _ get: KeyPath<ServerConfig, String> & Sendable,
                     _ set: @escaping @Sendable (inout ServerConfig, String) -> Void) -> ServerSetting {
        ServerSetting(name: name, aliases: [], valueName: valueName, summary: summary, runtime: false, secret: false,
                      parse: { text, c throws(SettingError) in
                          if nonEmpty && text.isEmpty { throw SettingError(setting: name, reason: "argument must not be empty") }
                          set(&c, text)
                      }, render: { $0[keyPath: get] })
    }

    /// The same setting, also answering to `alias` (Redis's older name).
    func aliased(_ alias: String) -> ServerSetting {
        ServerSetting(name: name, aliases: aliases + [alias], valueName: valueName, summary: summary, runtime: runtime,
                      secret: secret, parse: parse, render: render)
    }

    static func int(_ name: String, _ summary: String, _ range: ClosedRange<Int>, runtime: Bool = false,
                    _ get: @escaping @Sendable (ServerConfig) -> Int,
                    _ set: @escaping @Sendable (inout ServerConfig, Int) -> Void) -> ServerSetting {
        ServerSetting(name: name, aliases: [], valueName: "<n>", summary: summary, runtime: runtime, secret: false,
                      parse: { text, c throws(SettingError) in
                          guard let v = RedisText.parseInt(Array(text.utf8)) else {
                              throw SettingError(setting: name, reason: "argument couldn't be parsed into an integer")
                          }
                          guard v >= Int64(range.lowerBound), v <= Int64(range.upperBound) else {
                              throw SettingError(setting: name, reason: "argument must be between \(range.lowerBound) and \(range.upperBound) inclusive")
                          }
                          set(&c, Int(v))
                      }, render: { String(get($0)) })
    }

    static func int(_ name: String, _ summary: String, _ range: ClosedRange<Int>, runtime: Bool = false,
                    _ get: KeyPath<ServerConfig, Int> & Sendable,
                    _ set: @escaping @Sendable (inout ServerConfig, Int) -> Void) -> ServerSetting {
        int(name, summary, range, runtime: runtime, { $0[keyPath: get] }, set)
    }

    static func memory(_ name: String, _ summary: String, _ range: ClosedRange<Int>,
                       _ get: KeyPath<ServerConfig, Int> & Sendable,
                       _ set: @escaping @Sendable (inout ServerConfig, Int) -> Void) -> ServerSetting {
        ServerSetting(name: name, aliases: [], valueName: "<bytes>", summary: summary, runtime: true, secret: false,
                      parse: { text, c throws(SettingError) in
                          guard let v = parseMemory(text) else {
                              throw SettingError(setting: name, reason: "argument must be a memory value")
                          }
                          guard v >= UInt64(range.lowerBound), v <= UInt64(range.upperBound) else {
                              throw SettingError(setting: name, reason: "argument must be between \(range.lowerBound) and \(range.upperBound) inclusive")
                          }
                          set(&c, Int(v))
                      }, render: { String($0[keyPath: get]) })
    }

    static func bool(_ name: String, _ summary: String, runtime: Bool,
                     _ get: KeyPath<ServerConfig, Bool> & Sendable,
                     _ set: @escaping @Sendable (inout ServerConfig, Bool) -> Void) -> ServerSetting {
        ServerSetting(name: name, aliases: [], valueName: "yes|no", summary: summary, runtime: runtime, secret: false,
                      parse: { text, c throws(SettingError) in
                          switch text.lowercased() {
                          case "yes": set(&c, true)
                          case "no": set(&c, false)
                          default: throw SettingError(setting: name, reason: "argument must be 'yes' or 'no'")
                          }
                      }, render: { $0[keyPath: get] ? "yes" : "no" })
    }

    static func choice(_ name: String, aliases: [String] = [], _ summary: String, _ options: [String], runtime: Bool = false,
                       _ get: @escaping @Sendable (ServerConfig) -> String,
                       _ set: @escaping @Sendable (inout ServerConfig, String) -> Void) -> ServerSetting {
        ServerSetting(name: name, aliases: aliases, valueName: options.joined(separator: "|"), summary: summary,
                      runtime: runtime, secret: false,
                      parse: { text, c throws(SettingError) in
                          let v = text.lowercased()
                          guard options.contains(v) else {
                              throw SettingError(setting: name, reason: "argument(s) must be one of the following: \(options.joined(separator: ", "))")
                          }
                          set(&c, v)
                      }, render: get)
    }

    // MARK: value parsers

    /// Redis's `memtoull`: digits with an optional unit `b`, `k` (1000), `kb` (1024), `m`,
    /// `mb`, `g`, `gb`, case-insensitive; nil when malformed or out of range.
    static func parseMemory(_ text: String) -> UInt64? {
        let lower = text.lowercased()
        let digits = lower.prefix { $0.isASCII && $0.isNumber }
        let unit = lower.dropFirst(digits.count)
        guard !digits.isEmpty, let n = UInt64(digits) else { return nil }
        let multiplier: UInt64
        switch unit {
        case "", "b": multiplier = 1
        case "k": multiplier = 1000
        case "kb": multiplier = 1024
        case "m": multiplier = 1000 * 1000
        case "mb": multiplier = 1024 * 1024
        case "g": multiplier = 1000 * 1000 * 1000
        case "gb": multiplier = 1024 * 1024 * 1024
        default: return nil
        }
        let (v, overflow) = n.multipliedReportingOverflow(by: multiplier)
        return overflow ? nil : v
    }

    /// Redis's `<class> <hard> <soft> <soft-seconds>` groups (classes `normal` and `pubsub`;
    /// three bare numbers are the normal class), with Redis's error texts. Classes not named
    /// keep their limits; nothing changes when any group is wrong.
    static func parseOutputBufferLimits(_ text: String, into c: inout ServerConfig) throws(SettingError) {
        let name = "client-output-buffer-limit"
        let words = text.split(separator: " ").map(String.init)
        if let first = words.first, first.first?.isNumber ?? false {
            c.outputBufferLimit = try parseOutputBufferLimit(text)
            return
        }
        guard !words.isEmpty, words.count % 4 == 0 else {
            throw SettingError(setting: name, reason: "Wrong number of arguments in buffer limit configuration.")
        }
        var normal = c.outputBufferLimit
        var pubsub = c.pubsubOutputBufferLimit
        for g in stride(from: 0, to: words.count, by: 4) {
            let limit = try parseOutputBufferLimit(words[(g + 1)..<(g + 4)].joined(separator: " "))
            switch words[g].lowercased() {
            case "normal": normal = limit
            case "pubsub": pubsub = limit
            default: throw SettingError(setting: name, reason: "Invalid client class specified in buffer limit configuration.")
            }
        }
        c.outputBufferLimit = normal
        c.pubsubOutputBufferLimit = pubsub
    }

    /// `[normal] <hard> <soft> <soft-seconds>`, with Redis's error texts.
    static func parseOutputBufferLimit(_ text: String) throws(SettingError) -> OutputBufferLimit {
        let name = "client-output-buffer-limit"
        var words = text.split(separator: " ").map(String.init)
        // Redis's form names the class first; the class-less form is three numbers.
        if let first = words.first, first.first.map({ !$0.isNumber }) ?? false {
            guard words.count == 4 else {
                throw SettingError(setting: name, reason: "Wrong number of arguments in buffer limit configuration.")
            }
            guard first.lowercased() == "normal" else {
                throw SettingError(setting: name, reason: "Invalid client class specified in buffer limit configuration.")
            }
            words.removeFirst()
        }
        guard words.count == 3 else {
            throw SettingError(setting: name, reason: "Wrong number of arguments in buffer limit configuration.")
        }
        guard let hard = parseMemory(words[0]), let soft = parseMemory(words[1]),
              let seconds = RedisText.parseInt(Array(words[2].utf8)), seconds >= 0,
              hard <= UInt64(Int.max), soft <= UInt64(Int.max)
        else {
            throw SettingError(setting: name, reason: "Error in hard, soft or soft_seconds setting in buffer limit configuration.")
        }
        return OutputBufferLimit(hardBytes: Int(hard), softBytes: Int(soft), softSeconds: Int(min(seconds, Int64(Int32.max))))
    }

    /// Space-separated percentiles in [0, 100], with Redis's error texts.
    static func parsePercentiles(_ text: String) throws(SettingError) -> [Double] {
        let name = "latency-tracking-info-percentiles"
        var out: [Double] = []
        for word in text.split(separator: " ") {
            guard let v = Double(word), v.isFinite else {
                throw SettingError(setting: name, reason: "Invalid latency-tracking-info-percentiles parameters")
            }
            guard v >= 0, v <= 100 else {
                throw SettingError(setting: name, reason: "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]")
            }
            out.append(v)
        }
        return out
    }

    /// A percentile as Redis prints it: `%f` with trailing zeros (and point) trimmed.
    static func formatPercentile(_ p: Double) -> String {
        let micro = (p * 1_000_000).rounded()
        let whole = Int(micro / 1_000_000)
        var frac = String(Int(micro) % 1_000_000).leftPad(6)
        while frac.hasSuffix("0") { frac.removeLast() }
        return frac.isEmpty ? String(whole) : "\(whole).\(frac)"
    }
}
