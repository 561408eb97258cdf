import KVStore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The text of `INFO`: `# Section` headers and `field:value` lines, Redis's field names where
/// Redis has the figure.
enum InfoReport {
    static let defaultSections = ["server", "clients", "memory", "persistence", "stats", "replication", "cpu",
                                  "errorstats", "cluster", "keyspace", "shards", "indexes", "cache", "compaction", "latencystats"]
    static let allSections = defaultSections + ["commandstats"]

    static func render(server: ServerState, sections requested: [String]) throws -> String {
        var wanted: [String]
        if requested.isEmpty || requested.contains("default") {
            wanted = defaultSections
        } else if requested.contains("all") || requested.contains("everything") {
            wanted = allSections
        } else {
            wanted = allSections.filter { requested.contains($0) }
        }
        if requested.contains("commandstats") && !wanted.contains("commandstats") { wanted.append("commandstats") }
        var out: [String] = []
        let stats = wanted.contains(where: { ["cache", "compaction", "persistence", "shards"].contains($0) })
            ? try server.store.stats() : nil
        for section in wanted {
            var lines: [(String, String)] = []
            switch section {
            case "server": lines = serverSection(server)
            case "clients":
                lines = [("connected_clients", String(server.connectedClients)),
                         ("maxclients", String(server.live.withLock { $0.maxClients })),
                         ("client_recent_max_input_buffer", "0"),
                         ("client_recent_max_output_buffer", String(server.largestClientOutput)),
                         ("blocked_clients", String(server.replication.parkedWaits + server.blocked.parkedCount + server.pause.parkedCount + (server.cluster?.moves.parkedCount ?? 0))),
                         ("tracking_clients", String(server.tracking.clients))]
            case "memory":
                let rss = residentBytes()
                lines = [("used_memory", String(rss)), ("used_memory_human", human(rss)),
                         ("used_memory_rss", String(rss)), ("used_memory_rss_human", human(rss)),
                         ("maxmemory", "0"), ("maxmemory_policy", "noeviction")]
            case "persistence":
                let memtable = stats!.shards.reduce(0) { $0 + $1.database.memtableBytes }
                lines = [("loading", "0"), ("async_loading", "0"),
                         ("rdb_changes_since_last_save", "0"),
                         ("rdb_bgsave_in_progress", "0"),
                         ("rdb_last_save_time", String(server.lastSave.load(ordering: .relaxed))),
                         ("aof_enabled", "1"),
                         ("fsync", ServerConfig.name(of: server.config.fsync)),
                         ("memtable_bytes", String(memtable)),
                         ("wal_bytes_written", String(stats!.shards.reduce(0) { $0 + $1.database.walBytesWritten }))]
            case "stats":
                let c = server.counters
                lines = [("total_connections_received", String(c.connectionsReceived.load(ordering: .relaxed))),
                         ("total_commands_processed", String(Int64(c.commandsProcessed.value))),
                         ("instantaneous_ops_per_sec", String(c.instantaneousOpsPerSec)),
                         ("total_net_input_bytes", String(Int64(c.netInputBytes.value))),
                         ("total_net_output_bytes", String(Int64(c.netOutputBytes.value))),
                         ("rejected_connections", String(c.rejectedConnections.load(ordering: .relaxed))),
                         ("expired_keys", String(c.expiredKeys.load(ordering: .relaxed))),
                         ("evicted_keys", "0"),
                         ("keyspace_hits", String(Int64(c.keyspaceHits.value))),
                         ("keyspace_misses", String(Int64(c.keyspaceMisses.value))),
                         ("total_error_replies", String(c.errorReplies.load(ordering: .relaxed))),
                         ("unexpected_error_replies", "0"),
                         ("protocol_errors", String(c.protocolErrors.load(ordering: .relaxed))),
                         ("client_query_buffer_limit_disconnections", String(c.queryBufferDisconnections.load(ordering: .relaxed))),
                         ("client_output_buffer_limit_disconnections", String(c.outputBufferDisconnections.load(ordering: .relaxed))),
                         ("client_idle_timeout_disconnections", String(c.idleDisconnections.load(ordering: .relaxed))),
                         ("protected_mode_denied_connections", String(c.protectedModeDenials.load(ordering: .relaxed))),
                         ("pubsub_channels", String(server.pubsub.channelCount)),
                         ("pubsub_patterns", String(server.pubsub.patternCount)),
                         ("tracking_total_keys", String(server.tracking.totalKeys)),
                         ("tracking_total_items", String(server.tracking.totalItems)),
                         ("tracking_total_prefixes", String(server.tracking.totalPrefixes)),
                        ] + replicationStats(server)
            case "replication":
                lines = replicationInfo(server)
            case "cpu":
                var usage = rusage()
                getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
                func secs(_ t: timeval) -> String {
                    let v = Double(t.tv_sec) + Double(t.tv_usec) / 1e6
                    return String(Int(v)) + "." + String(Int((v - Double(Int(v))) * 1e6)).leftPad(6)
                }
                lines = [("used_cpu_sys", secs(usage.ru_stime)), ("used_cpu_user", secs(usage.ru_utime))]
            case "commandstats":
                let cmds = server.counters.commands.snapshot()
                lines = cmds.keys.sorted().map { name in
                    let s = cmds[name]!
                    let per = s.calls > 0 ? Double(s.micros) / Double(s.calls) : 0
                    return ("cmdstat_\(name)", "calls=\(s.calls),usec=\(s.micros),usec_per_call=\(format2(per)),rejected_calls=\(s.rejected),failed_calls=\(s.failed)")
                }
            case "latencystats":
                let percentiles = server.live.withLock { $0.latencyPercentiles }
                lines = latencyStatsLines(server.counters.commands.snapshot(), percentiles: percentiles)
            case "errorstats":
                let errs = server.counters.errors.withLock { $0 }
                lines = errs.keys.sorted().map { ("errorstat_\($0)", "count=\(errs[$0]!)") }
            case "cluster":
                lines = [("cluster_enabled", server.cluster == nil ? "0" : "1")]
            case "keyspace":
                var keys = 0, expires = 0
                let scan = try server.store.scan()
                while let (_, entry) = try scan.nextRow() {
                    keys += 1
                    if entry.expiresAt != nil { expires += 1 }
                }
                if keys > 0 { lines = [("db0", "keys=\(keys),expires=\(expires),avg_ttl=0")] }
            case "shards":
                lines = [("shards", String(server.store.shardCount)),
                         ("resharding_in_progress", server.store.reshardingInProgress ? "1" : "0"),
                         ("keys_moved", String(server.store.keysMovedByLastReshard))]
                for s in stats!.shards {
                    let files = s.levelFiles.map(String.init).joined(separator: "/")
                    lines.append(("shard\(s.id)", "slots=\(s.slots),bytes=\(s.bytesOnDisk),level_files=\(files)"))
                }
            case "indexes":
                let all = server.store.indexes()
                lines = [("indexes", String(all.count)),
                         ("indexes_building", String(all.filter { $0.state != .ready }.count))]
                for i in all {
                    let prefix = i.keyPrefix.map { String(decoding: $0, as: UTF8.self) } ?? ""
                    lines.append(("index_\(i.name)", "field=\(i.field),type=\(i.type.rawValue),prefix=\(prefix),"
                                  + "state=\(i.state.rawValue),progress=\(i.progress),entries=\(i.entries),queries=\(i.queries)"))
                }
            case "cache":
                let hits = stats!.shards.reduce(0) { $0 + $1.database.blockCacheHits }
                let misses = stats!.shards.reduce(0) { $0 + $1.database.blockCacheMisses }
                let rowHits = stats!.shards.reduce(0) { $0 + $1.database.rowCacheHits }
                let rowMisses = stats!.shards.reduce(0) { $0 + $1.database.rowCacheMisses }
                lines = [("block_cache_hits", String(hits)), ("block_cache_misses", String(misses)),
                         ("block_cache_hit_rate", format2(hits + misses > 0 ? Double(hits) / Double(hits + misses) : 0)),
                         ("row_cache_hits", String(rowHits)), ("row_cache_misses", String(rowMisses))]
            case "compaction":
                let d = stats!.shards.map(\.database)
                lines = [("compactions", String(d.reduce(0) { $0 + $1.compactions })),
                         ("compaction_bytes_read", String(d.reduce(0) { $0 + $1.compactionBytesRead })),
                         ("compaction_bytes_written", String(d.reduce(0) { $0 + $1.compactionBytesWritten })),
                         ("flushes", String(d.reduce(0) { $0 + $1.flushes })),
                         ("stall_slowdowns", String(d.reduce(0) { $0 + $1.stallSlowdowns })),
                         ("stall_stops", String(d.reduce(0) { $0 + $1.stallStops })),
                         ("level_files", stats!.levelFiles.map(String.init).joined(separator: "/")),
                         ("bytes_on_disk", String(stats!.bytesOnDisk))]
            default:
                continue
            }
            out.append("# " + section.prefix(1).uppercased() + section.dropFirst())
            for (k, v) in lines { out.append(k + ":" + v) }
            out.append("")
        }
        return out.joined(separator: "\r\n")
    }

    static func serverSection(_ server: ServerState) -> [(String, String)] {
        let uptime = (monotonicMillis() - server.startedAt) / 1000
        return [("redis_version", redisCompatibleVersion), ("shale_version", shaleVersion),
                ("redis_mode", "standalone"), ("os", "Linux"), ("arch_bits", "64"),
                ("process_id", String(getpid())), ("run_id", server.runID),
                ("tcp_port", String(server.boundPort.load(ordering: .relaxed))),
                ("uptime_in_seconds", String(uptime)), ("uptime_in_days", String(uptime / 86400)),
                ("executable", "kvserver"), ("config_file", server.config.configFile ?? "")]
    }

    /// Resident set size of this process, from /proc/self/statm.
    static func residentBytes() -> Int {
        let fd = open("/proc/self/statm", O_RDONLY)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: 128)
        let n = read(fd, &buf, buf.count)
        guard n > 0 else { return 0 }
        let fields = String(decoding: buf[0..<n], as: UTF8.self).split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    static func human(_ n: Int) -> String {
        let units = ["B", "K", "M", "G", "T"]
        var v = Double(n)
        var i = 0
        while v >= 1024 && i < units.count - 1 {
            v /= 1024
            i += 1
        }
        return i == 0 ? "\(n)B" : format2(v) + units[i]
    }

    static func format2(_ v: Double) -> String {
        let r = (v * 100).rounded() / 100
        let whole = Int(r)
        let frac = Int(((r - Double(whole)) * 100).rounded())
        return "\(whole).\(String(frac).leftPad(2))"
    }
}

extension String {
    func leftPad(_ n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}
