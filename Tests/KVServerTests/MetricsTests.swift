import Foundation
import KVProtocol
@testable import KVServer
import NIOCore
import Testing

/// The Prometheus endpoint: served over HTTP, parseable text format, the expected names.
@Suite("Metrics endpoint", .serialized)
struct MetricsTests {
    /// One HTTP exchange on a new connection: (status line, headers, body).
    func http(_ port: Int, _ request: String) throws -> (String, [String], String) {
        let c = try SocketClient(port: port)
        try c.send(Array(request.utf8))
        let (bytes, _) = c.readUntilClosed(timeout: 20)
        let text = String(decoding: bytes, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else { throw TestFailure("no HTTP response: \(text.prefix(200))") }
        let head = text[..<split.lowerBound].components(separatedBy: "\r\n")
        return (head[0], Array(head.dropFirst()), String(text[split.upperBound...]))
    }

    /// Parses the text exposition format strictly enough to catch malformed output:
    /// returns [family name: type] and every sample as (name, labels, value).
    func parse(_ body: String) throws -> (types: [String: String], samples: [(String, [String: String], Double)]) {
        var types: [String: String] = [:]
        var samples: [(String, [String: String], Double)] = []
        for line in body.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                guard parts.count == 4 else { throw TestFailure("bad TYPE line: \(line)") }
                types[String(parts[2])] = String(parts[3])
                continue
            }
            if line.hasPrefix("#") { continue }
            var name = ""
            var labels: [String: String] = [:]
            var rest = Substring(line)
            if let brace = line.firstIndex(of: "{") {
                name = String(line[..<brace])
                guard let close = line.lastIndex(of: "}") else { throw TestFailure("unclosed labels: \(line)") }
                for pair in line[line.index(after: brace)..<close].split(separator: ",") where !pair.isEmpty {
                    let kv = pair.split(separator: "=", maxSplits: 1)
                    guard kv.count == 2, kv[1].hasPrefix("\""), kv[1].hasSuffix("\"") else { throw TestFailure("bad label: \(line)") }
                    labels[String(kv[0])] = String(kv[1].dropFirst().dropLast())
                }
                rest = line[line.index(after: close)...]
            } else {
                let sp = line.firstIndex(of: " ") ?? line.endIndex
                name = String(line[..<sp])
                rest = line[sp...]
            }
            let valueText = rest.trimmingCharacters(in: .whitespaces)
            guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == ":" }) else {
                throw TestFailure("bad metric name: \(line)")
            }
            guard let value = Double(valueText) ?? (valueText == "+Inf" ? .infinity : nil) else {
                throw TestFailure("bad value: \(line)")
            }
            samples.append((name, labels, value))
        }
        return (types, samples)
    }

    @Test func metricsEndpointServesPrometheusText() throws {
        let metricsPort = try freeLoopbackPort()
        let s = try LiveServer { $0.metricsPort = metricsPort }
        #expect(s.server.metricsPort == metricsPort)
        let c = try s.client()
        #expect(try c.call("SET", "k", "v") == .simpleString("OK"))
        for _ in 0..<20 { _ = try c.call("GET", "k") }
        _ = try c.call("GET", "missing")
        _ = try c.call("INCR", "k")
        _ = try c.call("NOSUCHCOMMAND")

        let (status, headers, body) = try http(metricsPort, "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        #expect(status == "HTTP/1.1 200 OK")
        #expect(headers.contains { $0.lowercased() == "content-type: text/plain; version=0.0.4; charset=utf-8" })
        let (types, samples) = try parse(body)
        func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
            samples.first { sample in sample.0 == name && labels.allSatisfy { k, v in sample.1[k] == v } }?.2
        }
        #expect(types["shale_command_duration_seconds"] == "histogram")
        #expect(types["shale_command_latency_seconds"] == "summary")
        #expect(types["shale_commands_total"] == "counter")
        #expect(types["shale_connected_clients"] == "gauge")
        #expect(value("shale_commands_total", ["command": "get"]) == 21)
        #expect(value("shale_command_duration_seconds_count", ["command": "get"]) == 21)
        #expect(value("shale_command_duration_seconds_bucket", ["command": "get", "le": "+Inf"]) == 21)
        #expect(value("shale_command_latency_seconds", ["command": "get", "quantile": "0.99"]) != nil)
        #expect(value("shale_errors_total", ["error": "ERR"]) == 2)
        #expect(value("shale_command_failed_calls_total", ["command": "incr"]) == 1)
        #expect(value("shale_connected_clients") == 1)
        #expect((value("shale_keyspace_hits_total") ?? 0) >= 20)
        #expect(value("shale_keyspace_misses_total") == 1)
        for name in ["shale_block_cache_hits_total", "shale_block_cache_misses_total", "shale_block_cache_hit_ratio",
                     "shale_row_cache_hits_total", "shale_compactions_total", "shale_compaction_bytes_read_total",
                     "shale_compaction_bytes_written_total", "shale_write_stall_slowdowns_total",
                     "shale_write_stall_stops_total", "shale_level_files", "shale_shard_bytes_on_disk",
                     "shale_bytes_on_disk", "shale_used_memory_bytes", "shale_flushes_total"] {
            #expect(value(name) != nil, "\(name)")
        }
        #expect(value("shale_level_files", ["shard": "1", "level": "0"]) != nil)
        // Buckets are cumulative.
        let buckets = samples.filter { $0.0 == "shale_command_duration_seconds_bucket" && $0.1["command"] == "get" }.map(\.2)
        #expect(buckets == buckets.sorted())

        // Counters follow the server between scrapes.
        _ = try c.call("GET", "k")
        let (_, _, again) = try http(metricsPort, "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        let second = try parse(again).samples
        #expect(second.first { $0.0 == "shale_commands_total" && $0.1["command"] == "get" }?.2 == 22)

        let (notFound, _, _) = try http(metricsPort, "GET /other HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        #expect(notFound == "HTTP/1.1 404 Not Found")
        let (notAllowed, allow, _) = try http(metricsPort, "POST /metrics HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        #expect(notAllowed == "HTTP/1.1 405 Method Not Allowed")
        #expect(allow.contains { $0.lowercased() == "allow: get, head" })
    }

    @Test func metricsPortZeroDisablesTheEndpoint() throws {
        let s = try LiveServer { $0.metricsPort = 0 }
        #expect(s.server.metricsPort == nil)
    }

    @Test func latencyTextFromHistograms() {
        var entry = CommandStatistics.Entry()
        for n in [1_000, 2_000, 3_000, 2_000_000] as [Int64] { entry.update(nanos: n, failed: false, histogram: true) }
        let text = MetricsExporter().latencyText(["get": entry])
        #expect(text.contains("shale_command_duration_seconds_bucket{command=\"get\",le=\"5e-06\"} 3\n"))
        #expect(text.contains("shale_command_duration_seconds_bucket{command=\"get\",le=\"0.001\"} 3\n"))
        #expect(text.contains("shale_command_duration_seconds_bucket{command=\"get\",le=\"0.0025\"} 4\n"))
        #expect(text.contains("shale_command_duration_seconds_count{command=\"get\"} 4\n"))
    }
}
