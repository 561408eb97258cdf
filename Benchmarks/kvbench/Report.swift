import Foundation
import Histogram

/// What one benchmark produced: its merged measurements, or why it was skipped.
struct Outcome: Sendable {
    let name: String
    let operation: String
    var result: ThreadResult?
    var skipped: String?
    /// Extra text after the MB/s field, as db_bench prints it ("(N of M found)").
    var message = ""
    /// Whether `found` is meaningful (reads happened).
    var reportsFound = false

    static func skip(_ benchmark: Benchmark, _ reason: String) -> Outcome {
        Outcome(name: benchmark.rawValue, operation: benchmark.operationName, result: nil, skipped: reason)
    }

    var seconds: Double {
        guard let r = result else { return 0 }
        return max(Double(r.finish - r.start) / 1e9, 1e-9)
    }

    var opsPerSecond: Double {
        guard let r = result else { return 0 }
        return Double(max(r.ops, 1)) / seconds
    }

    /// db_bench's micros/op: the threads' summed busy time over all ops.
    var microsPerOp: Double {
        guard let r = result else { return 0 }
        return Double(r.busyNanos) / 1e3 / Double(max(r.ops, 1))
    }

    var megabytesPerSecond: Double? {
        guard let r = result, r.bytes > 0 else { return nil }
        return Double(r.bytes) / 1_048_576.0 / seconds
    }

    /// A latency percentile in microseconds.
    func percentile(_ p: Double) -> Double {
        guard let r = result, r.histogram.totalCount > 0 else { return 0 }
        return Double(r.histogram.valueAtPercentile(p)) / 1e3
    }

    /// The db_bench result line.
    var line: String {
        let label = name.padding(toLength: max(12, name.count), withPad: " ", startingAt: 0)
        if let skipped { return "\(label) : skipped (\(skipped))" }
        guard let r = result else { return label }
        var extra = megabytesPerSecond.map { String(format: "%6.1f MB/s", $0) } ?? ""
        if !message.isEmpty { extra += (extra.isEmpty ? "" : " ") + message }
        return label
            + String(format: " : %11.3f micros/op %ld ops/sec %.3f seconds %ld operations;", microsPerOp, Int(opsPerSecond), seconds, r.ops)
            + (extra.isEmpty ? "" : " " + extra)
    }

    /// The percentile line printed under every result.
    var percentileLine: String? {
        guard let r = result, r.histogram.totalCount > 0 else { return nil }
        return String(repeating: " ", count: 15)
            + String(
                format: "P50: %.2f P95: %.2f P99: %.2f P99.9: %.2f Max: %.2f (microseconds)",
                percentile(50), percentile(95), percentile(99), percentile(99.9), Double(r.histogram.max) / 1e3)
    }

    /// The full histogram in db_bench's layout (`--histogram=1`).
    var histogramText: String? {
        guard let r = result, r.histogram.totalCount > 0 else { return nil }
        let h = r.histogram
        var text = "Microseconds per \(operation):\n"
        text += String(format: "Count: %llu Average: %.4f  StdDev: %.2f\n", h.totalCount, h.mean / 1e3, h.stdDeviation / 1e3)
        text += String(format: "Min: %.2f  Median: %.4f  Max: %.2f\n", Double(h.min) / 1e3, percentile(50), Double(h.max) / 1e3)
        text += String(
            format: "Percentiles: P50: %.2f P75: %.2f P99: %.2f P99.9: %.2f P99.99: %.2f\n",
            percentile(50), percentile(75), percentile(99), percentile(99.9), percentile(99.99))
        text += String(repeating: "-", count: 54) + "\n"
        var cumulative: UInt64 = 0
        var lower = 0.0
        for bucket in h.logarithmicBucketValues(valueUnitsInFirstBucket: 1000, logBase: 2) {
            let count = bucket.countAddedInThisIterationStep
            let upper = Double(bucket.value) / 1e3
            if count == 0 {
                lower = upper
                continue
            }
            cumulative += count
            let pct = 100 * Double(count) / Double(h.totalCount)
            let bar = String(repeating: "#", count: Int((pct / 5).rounded()))
            text += (lower == 0 ? "[" : "(")
                + String(
                    format: " %10.2f, %10.2f ] %9llu %7.3f%% %7.3f%% ",
                    lower, upper, count, pct, 100 * Double(cumulative) / Double(h.totalCount))
                + bar + "\n"
            lower = upper
        }
        return text
    }

    var json: JSONValue {
        var members: [(String, JSONValue)] = [("name", .string(name))]
        if let skipped {
            members.append(("skipped", .string(skipped)))
            return .object(members)
        }
        guard let r = result else { return .object(members) }
        members += [
            ("ops", .integer(r.ops)),
            ("seconds", .number(seconds)),
            ("ops_per_sec", .number(opsPerSecond)),
            ("micros_per_op", .number(microsPerOp)),
            ("mb_per_sec", megabytesPerSecond.map { .number($0) } ?? .null),
            ("bytes", .integer(r.bytes)),
            ("found", reportsFound ? .integer(r.found) : .null),
            ("reads", reportsFound ? .integer(r.reads) : .null),
            ("p50", .number(percentile(50))),
            ("p95", .number(percentile(95))),
            ("p99", .number(percentile(99))),
            ("p99_9", .number(percentile(99.9))),
            ("max", .number(Double(r.histogram.max) / 1e3)),
            ("message", .string(message)),
        ]
        if !r.counters.isEmpty {
            members.append(("counters", .object(r.counters.map { ($0.name, .integer($0.value)) })))
        }
        return .object(members)
    }
}

/// The lines db_bench prints before the first benchmark.
func headerLines(_ config: BenchConfig, target: String, notes: [String]) -> [String] {
    let compressed = Int(Double(config.valueSize) * config.compressionRatio + 0.5)
    let raw = Double((config.keySize + config.valueSize) * config.num) / 1_048_576.0
    let file = (Double(config.keySize) + Double(config.valueSize) * config.compressionRatio) * Double(config.num) / 1_048_576.0
    var lines = [
        "kvbench:    \(target)",
        "Date:       \(Date())",
    ]
    if let cpu = cpuDescription() { lines.append("CPU:        \(cpu)") }
    lines += [
        "Keys:       \(config.keySize) bytes each",
        "Values:     \(config.valueSize) bytes each (\(compressed) bytes after compression)",
        "Entries:    \(config.num)",
        String(format: "RawSize:    %.1f MB (estimated)", raw),
        String(format: "FileSize:   %.1f MB (estimated)", file),
    ]
    if config.server == nil {
        lines += [
            "Compression: \(config.compression == .lz4 ? "LZ4" : "NoCompression")",
            "Durability: \(config.durability.rawValue) (--sync=\(config.sync ? 1 : 0))",
        ]
    }
    lines += [
        "Threads:    \(config.threads)",
        "Seed:       \(config.seed)",
    ]
    lines += notes.map { "Note:       \($0)" }
    lines.append(String(repeating: "-", count: 48))
    return lines
}

/// "2 * AMD EPYC", as db_bench prints it, from /proc/cpuinfo.
private func cpuDescription() -> String? {
    guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return nil }
    var count = 0
    var model = ""
    for line in text.split(separator: "\n") where line.hasPrefix("model name") {
        count += 1
        model = line.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
    }
    return count > 0 ? "\(count) * \(model)" : nil
}

/// The summed size of every regular file under `path`, or nil if it cannot be read.
func directorySize(_ path: String) -> Int? {
    guard let walker = FileManager.default.enumerator(atPath: path) else { return nil }
    var total = 0
    while walker.nextObject() != nil {
        let attributes = walker.fileAttributes
        if attributes?[.type] as? FileAttributeType == .typeRegular {
            total += (attributes?[.size] as? NSNumber)?.intValue ?? 0
        }
    }
    return total
}

/// Formats a byte count for humans ("62.3 MB").
func humanBytes(_ n: Int) -> String {
    if n < 1024 { return "\(n) B" }
    if n < 1_048_576 { return String(format: "%.1f KB", Double(n) / 1024) }
    if n < 1 << 30 { return String(format: "%.1f MB", Double(n) / 1_048_576) }
    return String(format: "%.2f GB", Double(n) / Double(1 << 30))
}
