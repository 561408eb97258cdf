import KVBase
import KVEngine
import KVProtocol
import KVStore

extension Commands {
    /// The settings CONFIG GET knows, with Redis's names where Redis has the setting.
    static func configValues(_ server: ServerState) -> [(String, String)] {
        let live = server.live.withLock { $0 }
        let cfg = server.config
        return [
            ("bind", cfg.bind),
            ("port", String(server.boundPort.load(ordering: .relaxed))),
            ("dir", cfg.dir),
            ("shards", String(server.store.shardCount)),
            ("appendfsync", ServerConfig.name(of: cfg.fsync)),
            ("fsync", ServerConfig.name(of: cfg.fsync)),
            ("appendonly", "yes"),
            ("save", ""),
            ("databases", "1"),
            ("maxclients", String(live.maxClients)),
            ("requirepass", live.requirePass == nil ? "" : "********"),
            ("masterauth", cfg.masterAuth == nil ? "" : "********"),
            ("replicaof", cfg.replicaOf ?? ""),
            ("protected-mode", "yes"),
            ("timeout", "0"),
            ("maxmemory", "0"),
            ("proto-max-bulk-len", String(cfg.limits.maxBulkLength)),
            ("slowlog-log-slower-than", String(live.slowlogThreshold)),
            ("slowlog-max-len", String(live.slowlogMaxLength)),
            ("block-cache-mb", String(cfg.blockCacheMB)),
            ("metrics-port", String(cfg.metricsPort)),
            ("loglevel", cfg.logLevel.rawValue),
        ]
    }

    static func config(_ c: CommandCall) throws -> RESPValue {
        let sub = RedisText.lower(c.args[1])
        switch sub {
        case "get":
            if c.argc < 3 { throw CommandError.wrongArity("config|get") }
            var out: [(String, String)] = []
            var seen = Set<String>()
            let values = configValues(c.server)
            for pattern in c.args.dropFirst(2) {
                let p = Array(RedisText.lower(pattern).utf8)
                for (k, v) in values where Glob.match(p, Array(k.utf8)) && seen.insert(k).inserted {
                    out.append((k, v))
                }
            }
            if c.resp3 {
                return .map(out.map { .init(key: .bulk($0.0), value: .bulk($0.1)) })
            }
            return .array(out.flatMap { [RESPValue.bulk($0.0), .bulk($0.1)] })
        case "set":
            if c.argc < 4 || c.argc % 2 != 0 { throw CommandError.wrongArity("config|set") }
            // Validate everything first, then apply: all or nothing, as Redis does.
            var changes: [(inout ServerState.Live) -> Void] = []
            var j = 2
            while j < c.argc {
                let key = RedisText.lower(c.args[j])
                let raw = c.args[j + 1]
                let text = String(decoding: raw, as: UTF8.self)
                switch key {
                case "maxclients":
                    guard let n = RedisText.parseInt(raw), n >= 1, n <= 1_000_000 else {
                        throw CommandError("ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument must be between 1 and 1000000 inclusive")
                    }
                    changes.append { $0.maxClients = Int(n) }
                case "slowlog-log-slower-than":
                    guard let n = RedisText.parseInt(raw) else {
                        throw CommandError("ERR CONFIG SET failed (possibly related to argument 'slowlog-log-slower-than') - argument couldn't be parsed into an integer")
                    }
                    changes.append { $0.slowlogThreshold = n }
                case "slowlog-max-len":
                    guard let n = RedisText.parseInt(raw), n >= 0 else {
                        throw CommandError("ERR CONFIG SET failed (possibly related to argument 'slowlog-max-len') - argument must be between 0 and 9223372036854775807 inclusive")
                    }
                    changes.append { $0.slowlogMaxLength = Int(n) }
                case "requirepass":
                    changes.append { $0.requirePass = text.isEmpty ? nil : text }
                default:
                    let known = configValues(c.server).contains { $0.0 == key }
                    throw CommandError(known
                        ? "ERR CONFIG SET failed (possibly related to argument '\(key)') - can't set immutable config"
                        : "ERR Unknown option or number of arguments for CONFIG SET - '\(key)'")
                }
                j += 2
            }
            c.server.live.withLock { live in for apply in changes { apply(&live) } }
            return .ok
        case "resetstat":
            if c.argc != 2 { throw CommandError.wrongArity("config|resetstat") }
            c.server.counters.reset()
            c.server.slowlog.withLock { $0.entries.removeAll() }
            return .ok
        case "rewrite":
            throw CommandError("ERR The server is running without a config file")
        case "help":
            return .array(["CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                           "GET <pattern>", "    Return parameters matching the glob-like <pattern> and their values.",
                           "SET <directive> <value>", "    Set the configuration <directive> to <value>.",
                           "RESETSTAT", "    Reset statistics reported by the INFO command.",
                           "HELP", "    Print this help."].map { .simpleString($0) })
        default:
            throw CommandError.unknownSubcommand(c.args[1], of: "config")
        }
    }

    static let clusterCommands: [CommandSpec] = [
        CommandSpec("shards", -1, ["admin"]) { c in
            if c.argc == 1 {
                let stats = try c.store.stats(countingKeys: true)
                let infos = c.store.shards
                return .array(infos.map { info in
                    let keys = stats.shards.first { $0.id == info.id }?.keys ?? 0
                    return .array([
                        .bulk("id"), .integer(Int64(info.id)),
                        .bulk("slots"), .array(info.slotRanges.map { .array([.integer(Int64($0.lowerBound)), .integer(Int64($0.upperBound))]) }),
                        .bulk("keys"), .integer(Int64(keys)),
                    ])
                })
            }
            guard RedisText.eq(c.args[1], "set") else { throw CommandError.unknownSubcommand(c.args[1], of: "shards") }
            if c.argc != 3 { throw CommandError.wrongArity("shards|set") }
            guard let n = RedisText.parseInt(c.args[2]), n >= 1, n <= Int64(ShardedStore.maxShards) else {
                throw CommandError("ERR shard count must be an integer between 1 and \(ShardedStore.maxShards)")
            }
            do {
                try c.store.setShardCount(Int(n))
            } catch let e as KVError {
                throw CommandError("ERR reshard failed: \(e)")
            }
            return .ok
        },
    ]
}
