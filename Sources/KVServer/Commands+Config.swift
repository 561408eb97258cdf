import KVProtocol
import KVStore

extension Commands {
    /// Read-only parameters `CONFIG GET` answers for tools written for Redis.
    static let redisCompatibilityValues: [(String, String)] = [
        ("appendonly", "yes"), ("save", ""), ("databases", "1"), ("maxmemory", "0"),
        ("maxmemory-policy", "noeviction"), ("cluster-enabled", "no"),
    ]

    /// Every parameter `CONFIG GET` knows, under every name it answers to (each setting's
    /// flag name and Redis's names), with its live value.
    static func configValues(_ server: ServerState) -> [(String, String)] {
        var live = server.live.withLock { $0 }
        live.port = server.boundPort.load(ordering: .relaxed)
        live.shards = server.store.shardCount
        var out: [(String, String)] = []
        for setting in ServerSetting.all {
            let value = setting.shown(live)
            out.append((setting.name, value))
            for alias in setting.aliases { out.append((alias, value)) }
        }
        return out + redisCompatibilityValues
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
            // Validate everything on a copy first, then install it: all or nothing, as Redis does.
            var changed = c.server.live.withLock { $0 }
            var seen = Set<String>()
            var j = 2
            while j < c.argc {
                let key = RedisText.lower(c.args[j])
                let text = String(decoding: c.args[j + 1], as: UTF8.self)
                guard let setting = ServerSetting.named(key) else {
                    if redisCompatibilityValues.contains(where: { $0.0 == key }) {
                        throw CommandError("ERR CONFIG SET failed (possibly related to argument '\(key)') - can't set immutable config")
                    }
                    throw CommandError("ERR Unknown option or number of arguments for CONFIG SET - '\(key)'")
                }
                guard seen.insert(setting.name).inserted else {
                    throw CommandError("ERR CONFIG SET failed (possibly related to argument '\(key)') - duplicate parameter")
                }
                guard setting.runtime else {
                    throw CommandError("ERR CONFIG SET failed (possibly related to argument '\(key)') - can't set immutable config")
                }
                do throws(SettingError) {
                    try setting.parse(text, &changed)
                } catch {
                    throw CommandError("ERR CONFIG SET failed (possibly related to argument '\(key)') - \(error.reason)")
                }
                j += 2
            }
            c.server.apply(changed)
            return .ok
        case "resetstat":
            if c.argc != 2 { throw CommandError.wrongArity("config|resetstat") }
            c.server.counters.reset()
            c.server.slowlog.withLock { $0.entries.removeAll() }
            return .ok
        case "rewrite":
            if c.argc != 2 { throw CommandError.wrongArity("config|rewrite") }
            guard let path = c.server.config.configFile else { throw CommandError("ERR The server is running without a config file") }
            var live = c.server.live.withLock { $0 }
            live.port = c.server.boundPort.load(ordering: .relaxed)
            live.shards = c.store.shardCount
            do throws(ConfigFileError) {
                try ConfigFile.rewrite(path: path, with: live)
            } catch {
                c.server.logger.warning("CONFIG REWRITE failed", metadata: ["error": "\(error)"])
                throw CommandError("ERR Rewriting config file: \(error.description)")
            }
            c.server.logger.info("CONFIG REWRITE executed with success.")
            return .ok
        case "help":
            return .array(["CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                           "GET <pattern>", "    Return parameters matching the glob-like <pattern> and their values.",
                           "SET <directive> <value>", "    Set the configuration <directive> to <value>.",
                           "RESETSTAT", "    Reset statistics reported by the INFO command.",
                           "REWRITE", "    Rewrite the configuration file.",
                           "HELP", "    Print this help."].map { .simpleString($0) })
        default:
            throw CommandError.unknownSubcommand(c.args[1], of: "config")
        }
    }

    static let clusterCommands: [CommandSpec] = [
        CommandSpec("shards", -1, ["admin"], subcommands: ["set"]) { c in
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
