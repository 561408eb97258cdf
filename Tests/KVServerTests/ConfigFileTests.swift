#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
@testable import KVServer
import Logging
import Testing

/// The configuration file (TOML), the setting parsers and their Redis error texts.
@Suite("Configuration file and settings")
struct ConfigFileTests {
    @Test func goodFileSetsEverySetting() throws {
        var cfg = ServerConfig()
        let toml = """
            # every kind of value
            dir = "/srv/shale"
            bind = "0.0.0.0"
            port = 7000
            shards = 8
            fsync = "always"
            metrics-port = 0
            replicaof = "leader.example:6380"
            repl-backlog-mb = 64
            requirepass = "s3cret"
            masterauth = "m"
            maxclients = 50
            block-cache-mb = 16
            log-level = "warning"
            protected-mode = false
            timeout = 300
            proto-max-bulk-len = "2mb"
            proto-max-multibulk-len = 1000
            proto-inline-max-size = "1kb"
            client-output-buffer-limit = "normal 64mb 8mb 30"
            slowlog-log-slower-than = -1
            slowlog-max-len = 16
            latency-tracking = "no"
            latency-tracking-info-percentiles = [50, 90, 99.99]
            worker-threads = 3
            io-threads = 1
            """
        try ConfigFile.apply(toml: toml, file: "shale.toml", into: &cfg)
        #expect(cfg.dir == "/srv/shale")
        #expect(cfg.bind == "0.0.0.0")
        #expect(cfg.port == 7000)
        #expect(cfg.shards == 8)
        #expect(cfg.fsync == .always)
        #expect(cfg.metricsPort == 0)
        #expect(cfg.replicaOf == "leader.example:6380")
        #expect(cfg.replBacklogMB == 64)
        #expect(cfg.requirePass == "s3cret")
        #expect(cfg.masterAuth == "m")
        #expect(cfg.maxClients == 50)
        #expect(cfg.blockCacheMB == 16)
        #expect(cfg.logLevel == .warning)
        #expect(cfg.protectedMode == false)
        #expect(cfg.idleTimeoutSeconds == 300)
        #expect(cfg.limits.maxBulkLength == 2 << 20)
        #expect(cfg.limits.maxMultibulkLength == 1000)
        #expect(cfg.limits.maxInlineLength == 1024)
        #expect(cfg.outputBufferLimit == OutputBufferLimit(hardBytes: 64 << 20, softBytes: 8 << 20, softSeconds: 30))
        #expect(cfg.slowlogThresholdMicros == -1)
        #expect(cfg.slowlogMaxLength == 16)
        #expect(cfg.latencyTracking == false)
        #expect(cfg.latencyPercentiles == [50, 90, 99.99])
        #expect(cfg.workerThreads == 3)
        #expect(cfg.ioThreads == 1)
    }

    @Test func everySettingHasADocumentedDefaultThatParsesBack() throws {
        for setting in ServerSetting.all {
            var cfg = ServerConfig()
            let text = setting.render(ServerConfig())
            if !text.isEmpty {
                try setting.parse(text, &cfg)
                #expect(setting.render(cfg) == text, "\(setting.name)")
            }
            #expect(setting.help.contains("(default: "), "\(setting.name)")
            #expect(!setting.summary.isEmpty)
        }
        let names = ServerSetting.all.map(\.name)
        #expect(Set(names).count == names.count)
    }

    @Test func defaults() {
        let cfg = ServerConfig()
        #expect(cfg.limits.maxBulkLength == 512 * 1024 * 1024)
        #expect(cfg.limits.maxInlineLength == 64 * 1024)
        #expect(cfg.limits.maxMultibulkLength == 1024 * 1024)
        #expect(cfg.protectedMode)
        #expect(cfg.idleTimeoutSeconds == 0)
        #expect(cfg.outputBufferLimit.description == "normal 1073741824 16777216 60")
        #expect(cfg.outputBufferLimit.pauseBytes == 16 << 20)
        #expect(ServerSetting.named("latency-tracking-info-percentiles")!.render(cfg) == "50 95 99 99.9")
    }

    @Test(arguments: [
        ("port = 70000", "shale.toml: setting 'port': argument must be between 0 and 65535 inclusive (got 70000)"),
        ("port = \"x\"", "shale.toml: setting 'port': argument couldn't be parsed into an integer (got 'x')"),
        ("protected-mode = \"maybe\"", "shale.toml: setting 'protected-mode': argument must be 'yes' or 'no' (got 'maybe')"),
        ("fsync = \"sometimes\"", "shale.toml: setting 'fsync': argument(s) must be one of the following: always, everysec, no (got 'sometimes')"),
        ("proto-max-bulk-len = \"12q\"", "shale.toml: setting 'proto-max-bulk-len': argument must be a memory value (got '12q')"),
        ("proto-max-bulk-len = 10", "shale.toml: setting 'proto-max-bulk-len': argument must be between 1048576 and 4611686018427387903 inclusive (got 10)"),
        ("maxclients = 0", "shale.toml: setting 'maxclients': argument must be between 1 and 4294967295 inclusive (got 0)"),
        ("client-output-buffer-limit = \"1mb 2mb\"", "shale.toml: setting 'client-output-buffer-limit': Wrong number of arguments in buffer limit configuration. (got '1mb 2mb')"),
        ("client-output-buffer-limit = \"replica 1mb 2mb 3\"", "shale.toml: setting 'client-output-buffer-limit': Invalid client class specified in buffer limit configuration. (got 'replica 1mb 2mb 3')"),
        ("latency-tracking-info-percentiles = [50, 101]", "shale.toml: setting 'latency-tracking-info-percentiles': latency-tracking-info-percentiles parameters should sit between [0.0,100.0] (got [ 50, 101 ])"),
        ("replicaof = \"nohost\"", "shale.toml: setting 'replicaof': argument must be HOST:PORT (got 'nohost')"),
        ("dir = \"\"", "shale.toml: setting 'dir': argument must not be empty (got '')"),
        ("maxclient = 5", "shale.toml: unknown setting 'maxclient'"),
        ("loglevel = \"info\"", "shale.toml: unknown setting 'loglevel' (did you mean 'log-level'?)"),
        ("config = \"other.toml\"", "shale.toml: 'config' can only be given on the command line"),
        ("[server]\nport = 1", "shale.toml: unknown setting 'server'"),
        ("bind = 2024-01-01", "shale.toml: setting 'bind': value must be a string, number, boolean or array, not a date"),
    ])
    func badFileNamesTheSettingAndTheFile(toml: String, message: String) {
        var cfg = ServerConfig()
        do {
            try ConfigFile.apply(toml: toml, file: "shale.toml", into: &cfg)
            Issue.record("accepted: \(toml)")
        } catch {
            #expect(error.description == message)
        }
    }

    @Test func syntaxErrorNamesTheLine() {
        var cfg = ServerConfig()
        do {
            try ConfigFile.apply(toml: "port = 1\nbind = \n", file: "/etc/shale.toml", into: &cfg)
            Issue.record("accepted")
        } catch {
            #expect(error.description.hasPrefix("/etc/shale.toml: line 2, column"))
        }
    }

    @Test func missingFileIsNamed() {
        var cfg = ServerConfig()
        do {
            try ConfigFile.load(path: "/nonexistent/shale.toml", into: &cfg)
            Issue.record("accepted")
        } catch {
            #expect(error.description == "/nonexistent/shale.toml: cannot read the configuration file: No such file or directory")
        }
    }

    @Test func flagsOverrideTheFile() throws {
        // What kvserver does: defaults, then the file, then each flag given.
        var cfg = ServerConfig()
        try ConfigFile.apply(toml: "port = 7000\nmaxclients = 10\ntimeout = 5\n", file: "f.toml", into: &cfg)
        try ServerSetting.apply("port", "7001", to: &cfg)
        try ServerSetting.apply("timeout", "0", to: &cfg)
        #expect(cfg.port == 7001)
        #expect(cfg.idleTimeoutSeconds == 0)
        #expect(cfg.maxClients == 10)
        #expect(throws: SettingError(setting: "timeout", reason: "argument must be between 0 and 2147483647 inclusive")) {
            try ServerSetting.apply("timeout", "-1", to: &cfg)
        }
    }

    @Test func memoryValuesTakeRedisUnits() {
        #expect(ServerSetting.parseMemory("100") == 100)
        #expect(ServerSetting.parseMemory("1k") == 1000)
        #expect(ServerSetting.parseMemory("1kb") == 1024)
        #expect(ServerSetting.parseMemory("2MB") == 2 << 20)
        #expect(ServerSetting.parseMemory("1g") == 1_000_000_000)
        #expect(ServerSetting.parseMemory("1gb") == 1 << 30)
        #expect(ServerSetting.parseMemory("-1") == nil)
        #expect(ServerSetting.parseMemory("1tb") == nil)
        #expect(ServerSetting.parseMemory("") == nil)
        #expect(ServerSetting.parseMemory("99999999999999999999gb") == nil)
    }

    @Test func outputBufferLimitForms() throws {
        #expect(try ServerSetting.parseOutputBufferLimit("0 0 0") == OutputBufferLimit(hardBytes: 0, softBytes: 0, softSeconds: 0))
        #expect(try ServerSetting.parseOutputBufferLimit("normal 1mb 512kb 5")
                == OutputBufferLimit(hardBytes: 1 << 20, softBytes: 512 << 10, softSeconds: 5))
        #expect(OutputBufferLimit(hardBytes: 0, softBytes: 0, softSeconds: 0).pauseBytes == 4 << 20)
        #expect(OutputBufferLimit(hardBytes: 8 << 20, softBytes: 0, softSeconds: 0).pauseBytes == 4 << 20)
        #expect(throws: SettingError.self) { try ServerSetting.parseOutputBufferLimit("normal 1mb x 5") }
    }

    @Test func percentilesPrintAsRedisDoes() {
        #expect(ServerSetting.formatPercentile(50) == "50")
        #expect(ServerSetting.formatPercentile(99.9) == "99.9")
        #expect(ServerSetting.formatPercentile(99.99) == "99.99")
        #expect(ServerSetting.formatPercentile(0.5) == "0.5")
    }

    @Test func logLevelControlGatesTheLogger() {
        let control = LogLevelControl(.warning)
        let handler = ControlledLogHandler(StreamLogHandler.standardError(label: "t"), control: control)
        #expect(handler.logLevel == .warning)
        control.level = .debug
        #expect(handler.logLevel == .debug)
    }

    @Test func rewriteChangesOnlyWhatItMust() throws {
        var template = Array("/tmp/shale-rewrite-XXXXXX".utf8CString)
        let dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        let path = dir + "/shale.toml"
        defer {
            unlink(path)
            rmdir(dir)
        }
        let original = "# comment\nport = 7000\nlatency-tracking-info-percentiles = [\n  50,\n  99,\n]\n\ntimeout = 5 # trailing\n"
        let f = fopen(path, "w")!
        fputs(original, f)
        fclose(f)
        var cfg = try #require(try? { () throws -> ServerConfig in var c = ServerConfig(); try ConfigFile.load(path: path, into: &c); return c }())
        cfg.port = 7001
        cfg.maxClients = 50
        cfg.latencyPercentiles = [50, 90]
        cfg.trackingTableMaxKeys = 500
        try ConfigFile.rewrite(path: path, with: cfg)
        let text = try ConfigFile.read(path)
        #expect(text.hasPrefix("# comment\nport = \"7001\"\nlatency-tracking-info-percentiles = \"50 90\"\n\ntimeout = \"5\"\n"))
        #expect(text.contains("\nmaxclients = \"50\"\n"))
        #expect(text.contains("\ntracking-table-max-keys = \"500\"\n"))
        #expect(!text.contains("slowlog-max-len"), "settings at their default are not appended")
        var reloaded = ServerConfig()
        try ConfigFile.load(path: path, into: &reloaded)
        #expect(reloaded.port == 7001 && reloaded.maxClients == 50 && reloaded.latencyPercentiles == [50, 90])
        #expect(reloaded.idleTimeoutSeconds == 5)
        #expect(reloaded.trackingTableMaxKeys == 500)
        #expect(ConfigFile.literal("a\"b\\c\n") == "\"a\\\"b\\\\c\\n\"")
    }
}
