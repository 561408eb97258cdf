import CoreMetrics
import Histogram
import KVStore
import Prometheus
import Synchronization

/// The figures of `INFO` in Prometheus's text format (version 0.0.4), for `GET /metrics`.
///
/// Counters and gauges are swift-metrics objects made by a `PrometheusMetricsFactory` over
/// this server's own `PrometheusCollectorRegistry` (so several servers in one process do
/// not mix). They are brought up to date at each scrape from the server's counters and the
/// store's statistics: a counter is advanced by the growth since the last scrape (and reset
/// when the source went down, after `CONFIG RESETSTAT`). Per-command latency is rendered
/// from the HdrHistograms of ``CommandStatistics`` as a Prometheus histogram (cumulative
/// buckets, within the histogram's 1% precision) and a summary (p50, p95, p99, p99.9), so
/// a command is timed once, not once per exporter.
///
/// Every metric name starts with `shale_`; see DESIGN.md for the list.
final class MetricsExporter: Sendable {
    /// Upper bounds of the latency histogram buckets, in seconds.
    static let latencyBuckets: [Double] = [
        0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5,
        0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
    ]
    /// Quantiles of the latency summary.
    static let latencyQuantiles: [Double] = [0.5, 0.95, 0.99, 0.999]

    private let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory

    private struct State {
        var counters: [String: (CoreMetrics.Counter, Int64)] = [:]
        var floatCounters: [String: (CoreMetrics.FloatingPointCounter, Double)] = [:]
        var gauges: [String: CoreMetrics.Gauge] = [:]
    }
    /// Held only while metric objects are updated and the text emitted (no I/O).
    private let state = Mutex(State())

    init() {
        factory = PrometheusMetricsFactory(registry: registry)
    }

    /// One figure read from the server.
    enum Figure {
        case counter(Int64)
        case floatCounter(Double)
        case gauge(Double)
    }

    struct Sample {
        let name: String
        let labels: [(String, String)]
        let figure: Figure

        var key: String { name + "{" + labels.map { "\($0.0)=\($0.1)" }.joined(separator: ",") + "}" }
    }

    /// The whole exposition text for `server`.
    ///
    /// - Throws: store errors while reading statistics.
    func render(server: ServerState) throws -> [UInt8] {
        // Read everything first (file sizes, counters), outside the lock.
        let samples = try collect(server)
        let commands = server.counters.commands.snapshot()
        var out: [UInt8] = []
        state.withLock { s in
            for sample in samples { update(sample, in: &s) }
            registry.emit(into: &out)
        }
        out.append(contentsOf: Array(latencyText(commands).utf8))
        return out
    }

    private func update(_ sample: Sample, in s: inout State) {
        let key = sample.key
        switch sample.figure {
        case .counter(let value):
            let (counter, last) = s.counters[key] ?? (CoreMetrics.Counter(label: sample.name, dimensions: sample.labels, factory: factory), 0)
            if value < last {
                counter.reset()
                if value > 0 { counter.increment(by: value) }
            } else if value > last {
                counter.increment(by: value - last)
            }
            s.counters[key] = (counter, value)
        case .floatCounter(let value):
            let (counter, last) = s.floatCounters[key]
                ?? (CoreMetrics.FloatingPointCounter(label: sample.name, dimensions: sample.labels, factory: factory), 0)
            if value < last {
                counter.reset()
                if value > 0 { counter.increment(by: value) }
            } else if value > last {
                counter.increment(by: value - last)
            }
            s.floatCounters[key] = (counter, value)
        case .gauge(let value):
            let gauge = s.gauges[key] ?? CoreMetrics.Gauge(label: sample.name, dimensions: sample.labels, factory: factory)
            gauge.record(value)
            s.gauges[key] = gauge
        }
    }

    /// Reads every figure of `INFO` that is a number.
    private func collect(_ server: ServerState) throws -> [Sample] {
        var out: [Sample] = []
        func counter(_ name: String, _ v: Int64, _ labels: [(String, String)] = []) {
            out.append(Sample(name: name, labels: labels, figure: .counter(v)))
        }
        func gauge(_ name: String, _ v: Double, _ labels: [(String, String)] = []) {
            out.append(Sample(name: name, labels: labels, figure: .gauge(v)))
        }
        let c = server.counters
        let live = server.live.withLock { $0 }
        gauge("shale_uptime_seconds", Double(monotonicMillis() - server.startedAt) / 1000)
        gauge("shale_connected_clients", Double(server.connectedClients))
        gauge("shale_maxclients", Double(live.maxClients))
        gauge("shale_client_largest_output_buffer_bytes", Double(server.largestClientOutput))
        gauge("shale_used_memory_bytes", Double(InfoReport.residentBytes()))
        gauge("shale_instantaneous_ops_per_sec", Double(c.instantaneousOpsPerSec))
        counter("shale_commands_processed_total", Int64(c.commandsProcessed.value))
        counter("shale_connections_received_total", c.connectionsReceived.load(ordering: .relaxed))
        counter("shale_rejected_connections_total", c.rejectedConnections.load(ordering: .relaxed))
        counter("shale_keyspace_hits_total", Int64(c.keyspaceHits.value))
        counter("shale_keyspace_misses_total", Int64(c.keyspaceMisses.value))
        counter("shale_expired_keys_total", c.expiredKeys.load(ordering: .relaxed))
        counter("shale_error_replies_total", c.errorReplies.load(ordering: .relaxed))
        counter("shale_protocol_errors_total", c.protocolErrors.load(ordering: .relaxed))
        counter("shale_net_input_bytes_total", Int64(c.netInputBytes.value))
        counter("shale_net_output_bytes_total", Int64(c.netOutputBytes.value))
        counter("shale_client_output_buffer_limit_disconnections_total", c.outputBufferDisconnections.load(ordering: .relaxed))
        counter("shale_client_query_buffer_limit_disconnections_total", c.queryBufferDisconnections.load(ordering: .relaxed))
        counter("shale_client_idle_timeout_disconnections_total", c.idleDisconnections.load(ordering: .relaxed))
        counter("shale_protected_mode_denied_connections_total", c.protectedModeDenials.load(ordering: .relaxed))
        for (code, n) in c.errors.withLock({ $0 }) {
            counter("shale_errors_total", n, [("error", code)])
        }
        for (name, e) in c.commands.snapshot() {
            counter("shale_commands_total", e.calls, [("command", name)])
            counter("shale_command_failed_calls_total", e.failed, [("command", name)])
            counter("shale_command_rejected_calls_total", e.rejected, [("command", name)])
        }

        let stats = try server.store.stats()
        gauge("shale_shards", Double(server.store.shardCount))
        gauge("shale_resharding_in_progress", stats.reshardingInProgress ? 1 : 0)
        gauge("shale_bytes_on_disk", Double(stats.bytesOnDisk))
        var blockHits = 0, blockMisses = 0, rowHits = 0, rowMisses = 0
        for shard in stats.shards {
            let d = shard.database
            let s = [("shard", String(shard.id))]
            blockHits += d.blockCacheHits
            blockMisses += d.blockCacheMisses
            rowHits += d.rowCacheHits
            rowMisses += d.rowCacheMisses
            gauge("shale_shard_bytes_on_disk", Double(shard.bytesOnDisk), s)
            gauge("shale_memtable_bytes", Double(d.memtableBytes), s)
            gauge("shale_immutable_memtables", Double(d.immutableMemtables), s)
            for (level, files) in shard.levelFiles.enumerated() {
                gauge("shale_level_files", Double(files), s + [("level", String(level))])
                gauge("shale_level_bytes", Double(shard.levelBytes[level]), s + [("level", String(level))])
            }
            counter("shale_block_cache_hits_total", Int64(d.blockCacheHits), s)
            counter("shale_block_cache_misses_total", Int64(d.blockCacheMisses), s)
            counter("shale_row_cache_hits_total", Int64(d.rowCacheHits), s)
            counter("shale_row_cache_misses_total", Int64(d.rowCacheMisses), s)
            counter("shale_flushes_total", Int64(d.flushes), s)
            counter("shale_flush_bytes_total", Int64(d.flushBytes), s)
            counter("shale_wal_bytes_written_total", Int64(d.walBytesWritten), s)
            counter("shale_compactions_total", Int64(d.compactions), s)
            counter("shale_compaction_trivial_moves_total", Int64(d.trivialMoves), s)
            counter("shale_compaction_bytes_read_total", Int64(d.compactionBytesRead), s)
            counter("shale_compaction_bytes_written_total", Int64(d.compactionBytesWritten), s)
            out.append(Sample(name: "shale_compaction_seconds_total", labels: s, figure: .floatCounter(d.compactionSeconds)))
            counter("shale_write_stall_slowdowns_total", Int64(d.stallSlowdowns), s)
            counter("shale_write_stall_stops_total", Int64(d.stallStops), s)
            out.append(Sample(name: "shale_write_stall_seconds_total", labels: s, figure: .floatCounter(d.stallSeconds)))
            counter("shale_bloom_useful_total", Int64(d.bloomUseful), s)
            counter("shale_bloom_checked_total", Int64(d.bloomChecked), s)
        }
        func ratio(_ hits: Int, _ misses: Int) -> Double { hits + misses > 0 ? Double(hits) / Double(hits + misses) : 0 }
        gauge("shale_block_cache_hit_ratio", ratio(blockHits, blockMisses))
        gauge("shale_row_cache_hit_ratio", ratio(rowHits, rowMisses))

        let indexes = server.store.indexes()
        gauge("shale_indexes", Double(indexes.count))
        for i in indexes {
            gauge("shale_index_entries", Double(i.entries), [("index", i.name)])
            gauge("shale_index_build_progress", Double(i.progress), [("index", i.name)])
            counter("shale_index_queries_total", Int64(i.queries), [("index", i.name)])
        }

        // Replication: every numeric field of INFO replication and the sync counters.
        for (key, value) in replicationInfo(server) + replicationStats(server) {
            guard let v = Double(value), v.isFinite else { continue }
            let name = "shale_replication_" + String(key.map { $0.isLetter || $0.isNumber ? $0 : "_" })
            gauge(name, v)
        }
        return out
    }

    /// The latency histogram and summary text of every command with recorded latencies.
    func latencyText(_ commands: [String: CommandStatistics.Entry]) -> String {
        var text = """
            # HELP shale_command_duration_seconds Time to execute a command, from dispatch to reply.
            # TYPE shale_command_duration_seconds histogram

            """
        var summary = """
            # HELP shale_command_latency_seconds Command execution time percentiles since start (or CONFIG RESETSTAT).
            # TYPE shale_command_latency_seconds summary

            """
        for name in commands.keys.sorted() {
            guard let h = commands[name]?.histogram, h.totalCount > 0 else { continue }
            let label = "command=\"\(Self.escape(name))\""
            let sum = Self.seconds(h.mean * Double(h.totalCount))
            for bound in Self.latencyBuckets {
                let n = h.count(within: 0...UInt64(bound * 1e9))
                text += "shale_command_duration_seconds_bucket{\(label),le=\"\(Self.number(bound))\"} \(n)\n"
            }
            text += "shale_command_duration_seconds_bucket{\(label),le=\"+Inf\"} \(h.totalCount)\n"
            text += "shale_command_duration_seconds_sum{\(label)} \(sum)\n"
            text += "shale_command_duration_seconds_count{\(label)} \(h.totalCount)\n"
            for q in Self.latencyQuantiles {
                let v = Self.seconds(Double(h.valueAtPercentile(q * 100)))
                summary += "shale_command_latency_seconds{\(label),quantile=\"\(Self.number(q))\"} \(v)\n"
            }
            summary += "shale_command_latency_seconds_sum{\(label)} \(sum)\n"
            summary += "shale_command_latency_seconds_count{\(label)} \(h.totalCount)\n"
        }
        return text + summary
    }

    static func seconds(_ nanos: Double) -> String { number(nanos / 1e9) }

    /// A float as Prometheus reads it (Swift's shortest round-trip form).
    static func number(_ v: Double) -> String { "\(v)" }

    static func escape(_ s: String) -> String {
        var out = ""
        for ch in s {
            switch ch {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(ch)
            }
        }
        return out
    }
}
