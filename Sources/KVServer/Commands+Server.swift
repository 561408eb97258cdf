import KVProtocol
import KVReplication
import KVStore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The Redis version kvserver reports for compatibility (INFO `redis_version`, HELLO).
let redisCompatibleVersion = "7.0.15"
/// Shale's own version.
public let shaleVersion = "0.3.0"

extension Commands {
    static let serverCommands: [CommandSpec] = [
        CommandSpec("ping", -1, ["fast"]) { c in
            if c.argc > 2 { throw CommandError.wrongArity("ping") }
            // A RESP2 subscriber gets a two-element array, telling it from a message.
            if c.session.isSubscribed && !c.resp3 {
                return .array([.bulk("pong"), .bulk(c.argc == 2 ? c.args[1] : [])])
            }
            return c.argc == 2 ? .bulk(c.args[1]) : .simpleString("PONG")
        },
        CommandSpec("echo", 2, ["loading", "stale", "fast"]) { c in .bulk(c.args[1]) },
        CommandSpec("quit", -1, ["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"]) { c in
            c.action = .close
            return .ok
        },
        CommandSpec("hello", -1, ["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"]) { c in try hello(&c) },
        CommandSpec("auth", -2, ["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"]) { c in
            if c.argc > 3 { throw CommandError.syntax }
            let user: [UInt8] = c.argc == 3 ? c.args[1] : Array("default".utf8)
            let pass = c.args[c.argc - 1]
            guard let required = c.server.requirePass else {
                if c.argc == 2 {
                    throw CommandError("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
                }
                guard user == Array("default".utf8) else { throw CommandError.wrongPass }
                return .ok
            }
            guard user == Array("default".utf8), constantTimeEqual(pass, Array(required.utf8)) else {
                throw CommandError.wrongPass
            }
            c.session.authenticated = true
            return .ok
        },
        CommandSpec("select", 2, ["loading", "stale", "fast"]) { c in
            let n = try RedisText.int(c.args[1])
            if n != 0 { throw CommandError.dbIndexOutOfRange }
            return .ok
        },
        CommandSpec("client", -2, [], subcommands: [
            "id", "getname", "setname", "setinfo", "info", "list", "kill", "pause", "unpause", "no-evict", "reply", "tracking",
            "caching", "getredir", "trackinginfo", "help",
        ]) { c in try client(&c) },
        CommandSpec("command", -1, ["loading", "stale"], subcommands: [
            "count", "info", "docs", "list", "getkeys", "getkeysandflags", "help",
        ]) { c in try command(c) },
        CommandSpec("config", -2, [], subcommands: ["get", "set", "resetstat", "rewrite", "help"]) { c in try config(c) },
        CommandSpec("info", -1, ["loading", "stale"]) { c in
            let text = try InfoReport.render(server: c.server, sections: c.args.dropFirst().map { RedisText.lower($0) })
            return c.resp3 ? .verbatimString(format: "txt", .init(string: text)) : .bulk(text)
        },
        CommandSpec("time", 1, ["loading", "stale", "fast"]) { _ in
            var ts = timespec()
            clock_gettime(CLOCK_REALTIME, &ts)
            return .array([.bulk(String(ts.tv_sec)), .bulk(String(ts.tv_nsec / 1000))])
        },
        CommandSpec("save", 1, ["admin", "noscript", "no_async_loading", "no_multi"]) { c in
            try c.store.flush()
            c.server.lastSave.store(RowValue.wallClockMillis() / 1000, ordering: .relaxed)
            return .ok
        },
        CommandSpec("bgsave", -1, ["admin", "noscript", "no_async_loading"]) { c in
            if c.argc > 2 || (c.argc == 2 && !RedisText.eq(c.args[1], "schedule")) { throw CommandError.syntax }
            try c.store.flush()
            c.server.lastSave.store(RowValue.wallClockMillis() / 1000, ordering: .relaxed)
            return .simpleString("Background saving started")
        },
        CommandSpec("lastsave", 1, ["loading", "stale", "fast"]) { c in .integer(c.server.lastSave.load(ordering: .relaxed)) },
        CommandSpec("shutdown", -1, ["admin", "noscript", "loading", "stale", "no_multi", "allow_busy"]) { c in
            for opt in c.args.dropFirst() {
                guard RedisText.eq(opt, "nosave") || RedisText.eq(opt, "save") || RedisText.eq(opt, "now")
                    || RedisText.eq(opt, "force") || RedisText.eq(opt, "abort")
                else { throw CommandError.syntax }
                if RedisText.eq(opt, "abort") { throw CommandError("ERR No shutdown in progress.") }
            }
            c.server.requestShutdown()
            c.action = .shutdown
            return .ok
        },
        CommandSpec("slowlog", -2, [], subcommands: ["get", "len", "reset", "help"]) { c in try slowlog(c) },
        CommandSpec("role", 1, ["noscript", "loading", "stale", "fast"]) { c in role(c) },
        CommandSpec("replicaof", 3, ["admin", "noscript", "stale", "no_async_loading"]) { c in try replicaOf(c) },
        CommandSpec("slaveof", 3, ["admin", "noscript", "stale", "no_async_loading"]) { c in try replicaOf(c) },
        CommandSpec("wait", 3, ["noscript"]) { c in
            // Redis's order: the role, then the count, then the timeout.
            if c.server.replication.isReplica {
                throw CommandError("ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.")
            }
            let n = try RedisText.int(c.args[1])
            let timeout = try timeoutMillis(c.args[2])
            // The caller's writes are committed, so every shard's current sequence covers
            // them: count the followers that acknowledged at least that much.
            let target = c.store.shardSequences
            let acked = acknowledgedFollowers(c.server, target: target)
            // Inside EXEC it answers at once, as Redis does.
            if acked >= n || c.session.runningExec.load(ordering: .relaxed) { return .integer(Int64(acked)) }
            // Park the request: a follower's acknowledgement or the timer answers it.
            let server = c.server
            c.action = .later(c.server.replication.waitForAcknowledgements(
                count: n, target: target, timeoutMillis: timeout, session: c.session.id, loop: c.loop,
                counter: { acknowledgedFollowers(server, target: target) }))
            return .nullBulk
        },
    ]

    /// Redis's `getTimeoutFromObjectOrReply` in milliseconds: an integer, not negative, and
    /// not so large that adding it to the wall clock overflows. 0 means no timeout.
    static func timeoutMillis(_ arg: [UInt8]) throws -> Int64 {
        guard let t = RedisText.parseInt(arg) else { throw CommandError("ERR timeout is not an integer or out of range") }
        if t < 0 { throw CommandError("ERR timeout is negative") }
        if t > 0 {
            let (_, overflow) = t.addingReportingOverflow(RowValue.wallClockMillis())
            if overflow { throw CommandError("ERR timeout is out of range") }
        }
        return t
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var diff = UInt8(a.count == b.count ? 0 : 1)
        let n = max(a.count, b.count)
        for i in 0..<n {
            let x = i < a.count ? a[i] : 0
            let y = i < b.count ? b[i] : 0
            diff |= x ^ y
        }
        return diff == 0
    }

    static func validateClientName(_ name: [UInt8]) throws {
        for b in name where b < UInt8(ascii: "!") || b > UInt8(ascii: "~") {
            throw CommandError("ERR Client names cannot contain spaces, newlines or special characters.")
        }
    }

    static func hello(_ c: inout CommandCall) throws -> RESPValue {
        var version = 0
        var next = 1
        if c.argc >= 2 {
            guard let v = RedisText.parseInt(c.args[1]) else {
                throw CommandError("ERR Protocol version is not an integer or out of range")
            }
            if v < 2 || v > 3 { throw CommandError("NOPROTO unsupported protocol version") }
            version = Int(v)
            next = 2
        }
        var user: [UInt8]?
        var pass: [UInt8]?
        var name: [UInt8]?
        var j = next
        while j < c.argc {
            let more = c.argc - 1 - j
            if RedisText.eq(c.args[j], "auth") && more >= 2 {
                user = c.args[j + 1]
                pass = c.args[j + 2]
                j += 3
            } else if RedisText.eq(c.args[j], "setname") && more >= 1 {
                try validateClientName(c.args[j + 1])
                name = c.args[j + 1]
                j += 2
            } else {
                throw CommandError("ERR Syntax error in HELLO option '\(String(decoding: c.args[j], as: UTF8.self))'")
            }
        }
        if let user, let pass {
            if user != Array("default".utf8) { throw CommandError.wrongPass }
            if let required = c.server.requirePass {
                guard constantTimeEqual(pass, Array(required.utf8)) else { throw CommandError.wrongPass }
            }
            c.session.authenticated = true
        }
        if !c.session.authenticated {
            throw CommandError("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
        }
        if let name { c.session.info.withLock { $0.name = name.isEmpty ? nil : name } }
        if version != 0 { c.session.protocolVersion = version }
        return .map([
            .init(key: .bulk("server"), value: .bulk("redis")),
            .init(key: .bulk("version"), value: .bulk(redisCompatibleVersion)),
            .init(key: .bulk("proto"), value: .integer(Int64(c.session.protocolVersion))),
            .init(key: .bulk("id"), value: .integer(c.session.id)),
            .init(key: .bulk("mode"), value: .bulk("standalone")),
            .init(key: .bulk("role"), value: .bulk("master")),
            .init(key: .bulk("modules"), value: .array([])),
        ])
    }

    static func client(_ c: inout CommandCall) throws -> RESPValue {
        let sub = RedisText.lower(c.args[1])
        func arity(_ ok: Bool) throws {
            if !ok { throw CommandError.wrongArity("client|\(sub)") }
        }
        switch sub {
        case "id":
            try arity(c.argc == 2)
            return .integer(c.session.id)
        case "getname":
            try arity(c.argc == 2)
            let name = c.session.info.withLock { $0.name }
            return name.map { .bulk($0) } ?? .nullBulk
        case "setname":
            try arity(c.argc == 3)
            try validateClientName(c.args[2])
            let name = c.args[2]
            c.session.info.withLock { $0.name = name.isEmpty ? nil : name }
            return .ok
        case "setinfo":
            try arity(c.argc == 4)
            let attr = c.args[2], value = c.args[3]
            if RedisText.eq(attr, "lib-name") {
                for b in value where b < UInt8(ascii: "!") || b > UInt8(ascii: "~") {
                    throw CommandError("ERR lib-name cannot contain spaces, newlines or special characters.")
                }
                c.session.info.withLock { $0.libName = value }
            } else if RedisText.eq(attr, "lib-ver") {
                for b in value where b < UInt8(ascii: "!") || b > UInt8(ascii: "~") {
                    throw CommandError("ERR lib-ver cannot contain spaces, newlines or special characters.")
                }
                c.session.info.withLock { $0.libVersion = value }
            } else {
                throw CommandError("ERR Unrecognized option '\(String(decoding: attr, as: UTF8.self))'")
            }
            return .ok
        case "info":
            try arity(c.argc == 2)
            return .bulk(c.session.describe() + "\n")
        case "list":
            let sessions = c.server.clients.withLock { Array($0.values) }.sorted { $0.id < $1.id }
            var ids: Set<Int64>?
            var type: String?
            var j = 2
            while j < c.argc {
                if RedisText.eq(c.args[j], "id") && j + 1 < c.argc {
                    var set = Set<Int64>()
                    for a in c.args[(j + 1)...] {
                        guard let id = RedisText.parseInt(a), id > 0 else { throw CommandError("ERR Invalid client ID") }
                        set.insert(id)
                    }
                    ids = set
                    j = c.argc
                } else if RedisText.eq(c.args[j], "type") && j + 1 < c.argc {
                    type = try clientType(c.args[j + 1])
                    j += 2
                } else {
                    throw CommandError.syntax
                }
            }
            let lines = sessions.filter { (ids?.contains($0.id) ?? true) && (type == nil || $0.clientType == type) }
                .map { $0.describe() + "\n" }.joined()
            return .bulk(lines)
        case "kill":
            return try clientKill(&c)
        case "tracking":
            return try clientTracking(&c)
        case "caching":
            return try clientCaching(c)
        case "getredir":
            return try clientGetRedir(c)
        case "trackinginfo":
            return try clientTrackingInfo(c)
        case "pause":
            if c.argc != 3 && c.argc != 4 { throw CommandError.wrongArity("client|pause") }
            guard let millis = RedisText.parseInt(c.args[2]) else { throw CommandError("ERR timeout is not an integer or out of range") }
            if millis < 0 { throw CommandError("ERR timeout is negative") }
            if millis > Int64.max - RowValue.wallClockMillis() { throw CommandError("ERR timeout is out of range") }
            var all = true
            if c.argc == 4 {
                if RedisText.eq(c.args[3], "write") {
                    all = false
                } else if !RedisText.eq(c.args[3], "all") {
                    throw CommandError("ERR CLIENT PAUSE mode must be WRITE or ALL")
                }
            }
            c.server.pause.pause(millis: millis, all: all, loop: c.loop)
            return .ok
        case "unpause":
            try arity(c.argc == 2)
            c.server.pause.unpause()
            return .ok
        case "no-evict":
            try arity(c.argc == 3)
            if RedisText.eq(c.args[2], "on") {
                c.session.noEvict.store(true, ordering: .relaxed)
            } else if RedisText.eq(c.args[2], "off") {
                c.session.noEvict.store(false, ordering: .relaxed)
            } else {
                throw CommandError.syntax
            }
            return .ok
        case "reply":
            try arity(c.argc == 3)
            if RedisText.eq(c.args[2], "on") {
                c.session.replyMode.store(0, ordering: .relaxed)
                return .ok
            } else if RedisText.eq(c.args[2], "off") {
                // This reply is suppressed too, as in Redis.
                c.session.replyMode.store(1, ordering: .relaxed)
                return .ok
            } else if RedisText.eq(c.args[2], "skip") {
                // Skips the reply of the next command (this one has none); ignored while off.
                if c.session.replyMode.load(ordering: .relaxed) != 1 { c.session.replyMode.store(3, ordering: .relaxed) }
                return .ok
            }
            throw CommandError.syntax
        case "help":
            return .array(["CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                           "ID", "    Return the ID of the current connection.",
                           "GETNAME", "    Return the name of the current connection.",
                           "SETNAME <name>", "    Assign the name <name> to the current connection.",
                           "SETINFO <option> <value>", "    Set client meta attr (LIB-NAME, LIB-VER).",
                           "INFO", "    Return information about the current client connection.",
                           "LIST [TYPE (NORMAL|MASTER|REPLICA|PUBSUB)] [ID <id> [<id> ...]]",
                           "    Return information about client connections.",
                           "KILL <ip:port>", "    Kill connection made from <ip:port>.",
                           "KILL <option> <value> [<option> <value> [...]]",
                           "    Kill connections. Options are: ID <client-id>, TYPE (NORMAL|MASTER|REPLICA|PUBSUB),",
                           "    USER <username>, ADDR <ip:port>, LADDR <ip:port>, SKIPME (YES|NO) (default YES).",
                           "NO-EVICT (ON|OFF)", "    Protect the current client connection from eviction.",
                           "PAUSE <timeout> [WRITE|ALL]", "    Suspend all, or just write, clients for <timeout> milliseconds.",
                           "UNPAUSE", "    Stop the current client pause, resuming traffic.",
                           "REPLY (ON|OFF|SKIP)", "    Control the replies sent to the current connection.",
                           "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
                           "         [OPTIN] [OPTOUT] [NOLOOP]", "    Control server assisted client side caching.",
                           "TRACKINGINFO", "    Report tracking status for the current connection.",
                           "CACHING (YES|NO)", "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
                           "GETREDIR", "    Return the client ID we are redirecting to when tracking is enabled.",
                           "HELP", "    Print this help."].map { .simpleString($0) })
        default:
            throw CommandError.unknownSubcommand(c.args[1], of: "client")
        }
    }

    /// A client type name of CLIENT LIST/KILL, normalized (`slave` is `replica`).
    static func clientType(_ name: [UInt8]) throws -> String {
        let t = RedisText.lower(name)
        switch t {
        case "normal", "master", "pubsub", "replica": return t
        case "slave": return "replica"
        default: throw CommandError("ERR Unknown client type '\(String(decoding: name, as: UTF8.self))'")
        }
    }

    /// `CLIENT KILL ip:port` (answers OK or an error) and `CLIENT KILL <filter> <value> ...`
    /// with ID, TYPE, USER, ADDR, LADDR and SKIPME (default yes; answers how many clients
    /// were closed), Redis 7.0's forms and errors. A client that kills itself gets its reply
    /// first.
    static func clientKill(_ c: inout CommandCall) throws -> RESPValue {
        var addr: String?, laddr: String?, type: String?, id: Int64?
        var skipMe = true
        let oldForm = c.argc == 3
        if oldForm {
            addr = String(decoding: c.args[2], as: UTF8.self)
            skipMe = false
        } else {
            guard c.argc > 3, (c.argc - 2) % 2 == 0 else { throw CommandError.syntax }
            var j = 2
            while j + 1 < c.argc {
                let option = c.args[j], value = c.args[j + 1]
                if RedisText.eq(option, "id") {
                    guard let n = RedisText.parseInt(value), n > 0 else { throw CommandError("ERR client-id should be greater than 0") }
                    id = n
                } else if RedisText.eq(option, "type") {
                    type = try clientType(value)
                } else if RedisText.eq(option, "addr") {
                    addr = String(decoding: value, as: UTF8.self)
                } else if RedisText.eq(option, "laddr") {
                    laddr = String(decoding: value, as: UTF8.self)
                } else if RedisText.eq(option, "user") {
                    guard value == Array("default".utf8) else {
                        throw CommandError("ERR No such user '\(String(decoding: value, as: UTF8.self))'")
                    }
                } else if RedisText.eq(option, "skipme") {
                    if RedisText.eq(value, "yes") { skipMe = true } else if RedisText.eq(value, "no") { skipMe = false } else {
                        throw CommandError.syntax
                    }
                } else {
                    throw CommandError.syntax
                }
                j += 2
            }
        }
        let sessions = c.server.clients.withLock { Array($0.values) }
        var killed = 0
        for s in sessions {
            if let addr, s.remoteAddress != addr { continue }
            if let laddr, s.localAddress != laddr { continue }
            if let type, s.clientType != type { continue }
            if let id, s.id != id { continue }
            if s.id == c.session.id {
                if skipMe { continue }
                c.action = .close
            } else {
                s.channel?.close(promise: nil)
            }
            killed += 1
        }
        if oldForm {
            if killed == 0 { throw CommandError("ERR No such client") }
            return .ok
        }
        return .integer(Int64(killed))
    }

    static func slowlog(_ c: CommandCall) throws -> RESPValue {
        let sub = RedisText.lower(c.args[1])
        switch sub {
        case "get":
            if c.argc > 3 { throw CommandError.wrongArity("slowlog|get") }
            var count = 10
            if c.argc == 3 {
                guard let n = RedisText.parseInt(c.args[2]), n >= -1 else {
                    throw CommandError("ERR count should be greater than or equal to -1")
                }
                count = n == -1 ? Int.max : Int(n)
            }
            let entries = c.server.slowlog.withLock { Array($0.entries.prefix(count)) }
            return .array(entries.map { e in
                .array([.integer(e.id), .integer(e.time), .integer(e.micros), .array(e.arguments.map { .bulk($0) }),
                        .bulk(e.client), .bulk(e.name)])
            })
        case "len":
            if c.argc != 2 { throw CommandError.wrongArity("slowlog|len") }
            return .integer(Int64(c.server.slowlog.withLock { $0.entries.count }))
        case "reset":
            if c.argc != 2 { throw CommandError.wrongArity("slowlog|reset") }
            c.server.slowlog.withLock { $0.entries.removeAll() }
            return .ok
        case "help":
            return .array(["SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                           "GET [<count>]", "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
                           "LEN", "    Return the length of the slowlog.",
                           "RESET", "    Reset the slowlog.",
                           "HELP", "    Print this help."].map { .simpleString($0) })
        default:
            throw CommandError.unknownSubcommand(c.args[1], of: "slowlog")
        }
    }

    static func replicaOf(_ c: CommandCall) throws -> RESPValue {
        if c.server.cluster != nil {
            throw CommandError("ERR REPLICAOF not allowed in cluster mode.")
        }
        if RedisText.eq(c.args[1], "no") && RedisText.eq(c.args[2], "one") {
            try c.server.promoteToLeader()
            // The role CONFIG GET shows and CONFIG REWRITE writes.
            c.server.live.withLock { $0.replicaOf = nil }
            return .ok
        }
        guard let port = RedisText.parseInt(c.args[2]), port >= 0, port <= 65535 else {
            throw CommandError("ERR Invalid master port")
        }
        let host = String(decoding: c.args[1], as: UTF8.self)
        return c.server.follow(host: host, port: Int(port)) ? .ok : .simpleString("OK Already connected to specified master")
    }

    static func role(_ c: CommandCall) -> RESPValue {
        let state = c.server.replication
        if let link = state.link.withLock({ $0 }) {
            let status = link.syncInProgress ? "sync" : (link.up ? "connected" : "connect")
            return .array([.bulk("slave"), .bulk(link.host), .integer(Int64(link.port)), .bulk(status),
                           .integer(Int64(link.applied.reduce(0, +)))])
        }
        let followers = state.followers.withLock { Array($0.values) }.filter(\.online).sorted { $0.id < $1.id }
        return .array([
            .bulk("master"), .integer(Int64(c.store.shardSequences.reduce(0, +))),
            .array(followers.map { .array([.bulk($0.address), .bulk(String($0.port)), .bulk(String($0.acked.reduce(0, +)))]) }),
        ])
    }
}
