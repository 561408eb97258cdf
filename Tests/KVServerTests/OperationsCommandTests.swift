import KVProtocol
@testable import KVServer
import NIOCore
import Testing

/// CONFIG GET/SET, INFO latencystats and commandstats, SLOWLOG thresholds, and the
/// protected-mode rule, through the command executor.
@Suite("Operations commands")
struct OperationsCommandTests {
    func configGet(_ h: Harness, _ pattern: String) -> [String: String] {
        guard case .array(let items?) = h.run("CONFIG", "GET", pattern) else { return [:] }
        var out: [String: String] = [:]
        var i = 0
        while i + 1 < items.count {
            if case .bulkString(let k?) = items[i], case .bulkString(let v?) = items[i + 1] {
                out[String(buffer: k)] = String(buffer: v)
            }
            i += 2
        }
        return out
    }

    @Test func configGetUsesRedisNames() throws {
        let h = try Harness(requirePass: "pw")
        h.run("AUTH", "pw")
        let all = configGet(h, "*")
        #expect(all["maxclients"] == "10000")
        #expect(all["requirepass"] == "********")
        #expect(all["appendfsync"] == "everysec")
        #expect(all["fsync"] == "everysec")
        #expect(all["timeout"] == "0")
        #expect(all["protected-mode"] == "yes")
        #expect(all["proto-max-bulk-len"] == "536870912")
        #expect(all["slowlog-log-slower-than"] == "10000")
        #expect(all["slowlog-max-len"] == "128")
        #expect(all["loglevel"] == "info")
        #expect(all["log-level"] == "info")
        #expect(all["client-output-buffer-limit"] == "normal 1073741824 16777216 60 pubsub 33554432 8388608 60")
        #expect(all["latency-tracking"] == "yes")
        #expect(all["latency-tracking-info-percentiles"] == "50 95 99 99.9")
        #expect(all["databases"] == "1")
        #expect(all["maxmemory"] == "0")
        for s in ServerSetting.all { #expect(all[s.name] != nil, "\(s.name)") }
        #expect(configGet(h, "slowlog*") == ["slowlog-log-slower-than": "10000", "slowlog-max-len": "128"])
        #expect(configGet(h, "nosuch") == [:])
    }

    @Test func configSetChangesLiveValues() throws {
        let h = try Harness()
        #expect(h.run("CONFIG", "SET", "maxclients", "50", "timeout", "30") == .simpleString("OK"))
        #expect(configGet(h, "maxclients") == ["maxclients": "50"])
        #expect(configGet(h, "timeout") == ["timeout": "30"])
        #expect(h.server.live.withLock { $0.idleTimeoutSeconds } == 30)
        #expect(h.run("CONFIG", "SET", "loglevel", "warning") == .simpleString("OK"))
        #expect(h.server.logLevelControl.level == .warning)
        #expect(configGet(h, "log-level") == ["log-level": "warning"])
        #expect(h.run("CONFIG", "SET", "LOGLEVEL", "verbose") == .simpleString("OK"))
        #expect(h.server.logLevelControl.level == .info)
        #expect(h.run("CONFIG", "SET", "proto-max-bulk-len", "2mb") == .simpleString("OK"))
        #expect(h.server.live.withLock { $0.limits.maxBulkLength } == 2 << 20)
        #expect(h.server.limitsGeneration.load(ordering: .relaxed) == 1)
        #expect(h.run("CONFIG", "SET", "client-output-buffer-limit", "normal 10mb 2mb 3") == .simpleString("OK"))
        #expect(configGet(h, "client-output-buffer-limit") == ["client-output-buffer-limit": "normal 10485760 2097152 3 pubsub 33554432 8388608 60"])
        #expect(h.run("CONFIG", "SET", "protected-mode", "no") == .simpleString("OK"))
        #expect(!h.server.protectedModeRefuses(ip: "10.1.2.3"))

        // requirepass at run time: new connections must authenticate; the value is masked.
        #expect(h.run("CONFIG", "SET", "requirepass", "s3cret") == .simpleString("OK"))
        #expect(configGet(h, "requirepass") == ["requirepass": "********"])
        let other = h.server.register(remote: "127.0.0.1:3", local: "127.0.0.1:2")!
        #expect(Commands.execute([Array("PING".utf8)], server: h.server, session: other).0
                == .simpleError("NOAUTH Authentication required."))
        #expect(Commands.execute([Array("AUTH".utf8), Array("s3cret".utf8)], server: h.server, session: other).0
                == .simpleString("OK"))
        #expect(h.run("CONFIG", "SET", "requirepass", "") == .simpleString("OK"))
        #expect(configGet(h, "requirepass") == ["requirepass": ""])
    }

    @Test func configSetErrorsAreRedis() throws {
        let h = try Harness()
        let cases: [([String], String)] = [
            (["maxclients", "0"], "ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument must be between 1 and 4294967295 inclusive"),
            (["maxclients", "abc"], "ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument couldn't be parsed into an integer"),
            (["timeout", "-1"], "ERR CONFIG SET failed (possibly related to argument 'timeout') - argument must be between 0 and 2147483647 inclusive"),
            (["slowlog-log-slower-than", "-5"], "ERR CONFIG SET failed (possibly related to argument 'slowlog-log-slower-than') - argument must be between -1 and 9223372036854775807 inclusive"),
            (["slowlog-max-len", "-1"], "ERR CONFIG SET failed (possibly related to argument 'slowlog-max-len') - argument must be between 0 and 9223372036854775807 inclusive"),
            (["protected-mode", "maybe"], "ERR CONFIG SET failed (possibly related to argument 'protected-mode') - argument must be 'yes' or 'no'"),
            (["proto-max-bulk-len", "10"], "ERR CONFIG SET failed (possibly related to argument 'proto-max-bulk-len') - argument must be between 1048576 and 4611686018427387903 inclusive"),
            (["proto-max-bulk-len", "abc"], "ERR CONFIG SET failed (possibly related to argument 'proto-max-bulk-len') - argument must be a memory value"),
            (["latency-tracking", "maybe"], "ERR CONFIG SET failed (possibly related to argument 'latency-tracking') - argument must be 'yes' or 'no'"),
            (["latency-tracking-info-percentiles", "50 abc"], "ERR CONFIG SET failed (possibly related to argument 'latency-tracking-info-percentiles') - Invalid latency-tracking-info-percentiles parameters"),
            (["client-output-buffer-limit", "normal 1 2"], "ERR CONFIG SET failed (possibly related to argument 'client-output-buffer-limit') - Wrong number of arguments in buffer limit configuration."),
            (["port", "7000"], "ERR CONFIG SET failed (possibly related to argument 'port') - can't set immutable config"),
            (["appendfsync", "always"], "ERR CONFIG SET failed (possibly related to argument 'appendfsync') - can't set immutable config"),
            (["databases", "2"], "ERR CONFIG SET failed (possibly related to argument 'databases') - can't set immutable config"),
            (["nosuch", "1"], "ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'"),
            (["timeout", "10", "timeout", "20"], "ERR CONFIG SET failed (possibly related to argument 'timeout') - duplicate parameter"),
        ]
        for (args, message) in cases {
            #expect(h.runBytes([Array("CONFIG".utf8), Array("SET".utf8)] + args.map { Array($0.utf8) }) == .simpleError(message))
        }
        // All or nothing: a bad second pair leaves the first unapplied.
        #expect(h.run("CONFIG", "SET", "maxclients", "7", "timeout", "x")
                == .simpleError("ERR CONFIG SET failed (possibly related to argument 'timeout') - argument couldn't be parsed into an integer"))
        #expect(configGet(h, "maxclients") == ["maxclients": "10000"])
        #expect(h.run("CONFIG", "SET", "maxclients") == .simpleError("ERR wrong number of arguments for 'config|set' command"))
    }

    @Test func slowlogThresholdIsLive() throws {
        let h = try Harness()
        #expect(h.run("CONFIG", "SET", "slowlog-log-slower-than", "0") == .simpleString("OK"))
        h.run("SET", "a", "1")
        guard case .integer(let n) = h.run("SLOWLOG", "LEN"), n >= 1 else {
            Issue.record("nothing logged at threshold 0")
            return
        }
        #expect(h.run("CONFIG", "SET", "slowlog-log-slower-than", "-1") == .simpleString("OK"))
        h.run("SLOWLOG", "RESET")
        h.run("SET", "a", "2")
        #expect(h.run("SLOWLOG", "LEN") == .integer(0))
        #expect(h.run("CONFIG", "SET", "slowlog-log-slower-than", "0", "slowlog-max-len", "2") == .simpleString("OK"))
        for i in 0..<5 { h.run("SET", "k\(i)", "v") }
        #expect(h.run("SLOWLOG", "LEN") == .integer(2))
    }

    func info(_ h: Harness, _ section: String) -> [String: String] {
        guard case .bulkString(let b?) = h.run("INFO", section) else { return [:] }
        var out: [String: String] = [:]
        for line in String(buffer: b).split(separator: "\r\n") where !line.hasPrefix("#") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            out[String(line[..<colon])] = String(line[line.index(after: colon)...])
        }
        return out
    }

    /// `p50=1.000,p95=...` into [percentile: microseconds].
    func percentiles(_ value: String?) -> [String: Double] {
        var out: [String: Double] = [:]
        for field in (value ?? "").split(separator: ",") {
            let kv = field.split(separator: "=")
            if kv.count == 2, let v = Double(kv[1]) { out[String(kv[0])] = v }
        }
        return out
    }

    @Test func latencyStatsInRedisFormat() throws {
        let h = try Harness()
        for i in 0..<200 { h.run("SET", "k\(i)", "v") }
        let stats = info(h, "latencystats")
        let set = try #require(stats["latency_percentiles_usec_set"])
        let fields = set.split(separator: ",").map { $0.split(separator: "=")[0] }
        #expect(fields == ["p50", "p95", "p99", "p99.9"])
        for v in percentiles(set).values { #expect(v > 0) }
        // Three decimals, as Redis prints them.
        #expect(set.split(separator: ",").allSatisfy { $0.split(separator: ".").last?.count == 3 })
        // The default INFO includes the section, as Redis 7's does.
        guard case .bulkString(let all?) = h.run("INFO") else { Issue.record("no INFO"); return }
        #expect(String(buffer: all).contains("# Latencystats\r\nlatency_percentiles_usec_"))
        #expect(h.run("CONFIG", "SET", "latency-tracking-info-percentiles", "50 99.99") == .simpleString("OK"))
        let changed = try #require(info(h, "latencystats")["latency_percentiles_usec_set"])
        #expect(changed.hasPrefix("p50=") && changed.contains(",p99.99="))
    }

    @Test func percentilesMoveWhenACommandIsSlow() throws {
        let h = try Harness()
        for _ in 0..<100 { h.run("PING") }
        let before = percentiles(info(h, "latencystats")["latency_percentiles_usec_ping"])
        // Slow calls recorded as the dispatcher records them: 20% take 50 ms.
        for _ in 0..<25 { h.server.counters.record(command: "ping", nanos: 50_000_000, error: nil) }
        let after = percentiles(info(h, "latencystats")["latency_percentiles_usec_ping"])
        #expect(try #require(before["p99"]) < 1000)
        #expect(try #require(after["p99"]) >= 49_000)
        #expect(try #require(after["p95"]) >= 49_000)
        #expect(try #require(after["p50"]) < 1000)
    }

    @Test func latencyTrackingCanBeTurnedOff() throws {
        let h = try Harness()
        #expect(h.run("CONFIG", "SET", "latency-tracking", "no") == .simpleString("OK"))
        h.run("GET", "x")
        #expect(info(h, "latencystats")["latency_percentiles_usec_get"] == nil)
        #expect(info(h, "commandstats")["cmdstat_get"]?.hasPrefix("calls=1,") == true)
        #expect(h.run("CONFIG", "SET", "latency-tracking", "yes") == .simpleString("OK"))
        h.run("GET", "x")
        #expect(info(h, "latencystats")["latency_percentiles_usec_get"] != nil)
    }

    @Test func commandstatsCountRejectedAndFailedCalls() throws {
        let h = try Harness()
        h.run("GET")
        h.run("SET", "s", "x")
        h.run("INCR", "s")
        h.run("INCR", "n")
        let stats = info(h, "commandstats")
        #expect(stats["cmdstat_get"]?.hasPrefix("calls=0,") == true)
        #expect(stats["cmdstat_get"]?.hasSuffix("rejected_calls=1,failed_calls=0") == true)
        #expect(stats["cmdstat_incr"]?.hasPrefix("calls=2,") == true)
        #expect(stats["cmdstat_incr"]?.hasSuffix("rejected_calls=0,failed_calls=1") == true)
        let errors = info(h, "errorstats")
        #expect(errors["errorstat_ERR"] == "count=2")
        #expect(h.run("CONFIG", "RESETSTAT") == .simpleString("OK"))
        // As in Redis, the RESETSTAT call itself is counted after the reset.
        #expect(Array(info(h, "commandstats").keys) == ["cmdstat_config"])
    }

    @Test func infoHasRedisFieldNames() throws {
        let h = try Harness()
        h.run("SET", "a", "1")
        h.run("GET", "a")
        h.run("GET", "missing")
        let all = info(h, "everything")
        for field in ["redis_version", "connected_clients", "maxclients", "used_memory", "instantaneous_ops_per_sec",
                      "keyspace_hits", "keyspace_misses", "role", "total_commands_processed",
                      "client_recent_max_output_buffer", "client_output_buffer_limit_disconnections", "db0"] {
            #expect(all[field] != nil, "\(field)")
        }
        #expect(all["db0"]?.hasPrefix("keys=1,expires=0") == true)
        #expect(all["keyspace_hits"] == "1")
        #expect(all["keyspace_misses"] == "1")
    }

    @Test(arguments: [
        (true, false, "127.0.0.1", false),
        (true, false, "::1", false),
        (true, false, "::ffff:127.0.0.1", false),
        (true, false, "127.0.0.2", true),
        (true, false, "10.0.0.5", true),
        (true, false, "192.0.2.1", true),
        (true, false, "?", true),
        (true, true, "10.0.0.5", false),
        (false, false, "10.0.0.5", false),
    ])
    func protectedModeRule(mode: Bool, password: Bool, ip: String, refused: Bool) {
        #expect(ServerState.protectedModeRefuses(protectedMode: mode, passwordSet: password, ip: ip) == refused)
    }

    @Test func unixSocketClientsAreLocal() {
        #expect(!ServerState.protectedModeRefuses(protectedMode: true, passwordSet: false, ip: nil))
    }
}
