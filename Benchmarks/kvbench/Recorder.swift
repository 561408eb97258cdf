#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Histogram

/// Per-op latencies in nanoseconds, up to an hour, three significant digits.
typealias LatencyHistogram = Histogram<UInt64>

func makeLatencyHistogram() -> LatencyHistogram {
    var h = LatencyHistogram(lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000_000, numberOfSignificantValueDigits: .three)
    h.autoResize = true
    return h
}

/// One thread's measurements for one benchmark: db_bench's per-thread `Stats`.
///
/// Owned by its thread (no locks): ``finished(_:)`` reads the clock once and records the time
/// since the previous op (or the start) for each op it completes, so the histogram holds
/// per-op latencies including the workload's own overhead, as db_bench's does.
struct Recorder {
    private(set) var histogram = makeLatencyHistogram()
    private(set) var ops = 0
    /// Bytes moved (db_bench's `AddBytes`: key + value per write or per found read).
    var bytes = 0
    /// Reads that found their key.
    var found = 0
    /// Reads attempted (the M in "N of M found").
    var reads = 0
    /// Free-form counters of mixed workloads, in the order they were first seen.
    var counters: [(String, Int)] = []
    private(set) var start: UInt64
    private(set) var finish: UInt64
    private var last: UInt64
    private var progress: Progress?

    /// Starts the clock. Thread 0 reports progress when `showProgress` is set.
    init(showProgress: Bool) {
        start = nowNanos()
        last = start
        finish = start
        progress = showProgress ? Progress() : nil
    }

    /// Records `n` ops that all completed now (n > 1 for a pipelined batch, each of whose
    /// ops waited for the whole batch).
    @inline(__always)
    mutating func finished(_ n: Int = 1) {
        let now = nowNanos()
        histogram.record(now &- last, count: UInt64(n))
        last = now
        ops += n
        if progress != nil { progress!.update(ops) }
    }

    /// Adds `n` to the named counter.
    mutating func count(_ name: String, _ n: Int = 1) {
        if let i = counters.firstIndex(where: { $0.0 == name }) {
            counters[i].1 += n
        } else {
            counters.append((name, n))
        }
    }

    /// Stops the clock.
    mutating func stop() {
        finish = nowNanos()
        progress?.clear()
    }

    /// The frozen result.
    var result: ThreadResult {
        ThreadResult(
            histogram: histogram, ops: ops, bytes: bytes, found: found, reads: reads,
            counters: counters.map { CounterValue(name: $0.0, value: $0.1) }, start: start, finish: finish)
    }
}

/// A named counter of a mixed workload.
struct CounterValue: Sendable {
    var name: String
    var value: Int
}

/// What one thread measured, merged across threads by ``merge(_:)``.
struct ThreadResult: Sendable {
    var histogram: LatencyHistogram
    var ops: Int
    var bytes: Int
    var found: Int
    var reads: Int
    var counters: [CounterValue]
    var start: UInt64
    var finish: UInt64
    /// Sum of the threads' own elapsed times (db_bench's `seconds_`), in nanoseconds.
    var busyNanos: UInt64

    init(
        histogram: LatencyHistogram, ops: Int, bytes: Int, found: Int, reads: Int,
        counters: [CounterValue], start: UInt64, finish: UInt64
    ) {
        self.histogram = histogram
        self.ops = ops
        self.bytes = bytes
        self.found = found
        self.reads = reads
        self.counters = counters
        self.start = start
        self.finish = finish
        busyNanos = finish - start
    }

    /// db_bench's `Stats::Merge`: counts and busy time add up, the wall-clock interval spans
    /// from the earliest start to the latest finish.
    static func merge(_ parts: [ThreadResult]) -> ThreadResult {
        var total = parts[0]
        for p in parts.dropFirst() {
            total.histogram.add(p.histogram)
            total.ops += p.ops
            total.bytes += p.bytes
            total.found += p.found
            total.reads += p.reads
            for c in p.counters {
                if let i = total.counters.firstIndex(where: { $0.name == c.name }) {
                    total.counters[i].value += c.value
                } else {
                    total.counters.append(c)
                }
            }
            total.start = min(total.start, p.start)
            total.finish = max(total.finish, p.finish)
            total.busyNanos += p.busyNanos
        }
        return total
    }
}

/// db_bench's progress lines ("... finished 5000 ops"), written over one another on
/// stderr; created only when stderr is a terminal.
struct Progress {
    private var next = 100

    static var enabled: Bool { isatty(STDERR_FILENO) != 0 }

    @inline(__always)
    mutating func update(_ done: Int) {
        guard done >= next else { return }
        // db_bench's schedule: every 100 ops up to 1000, then 500, 1000, 5000, ... 100000.
        switch next {
        case ..<1000: next += 100
        case ..<5000: next += 500
        case ..<10000: next += 1000
        case ..<50000: next += 5000
        case ..<100_000: next += 10000
        case ..<500_000: next += 50000
        default: next += 100_000
        }
        writeStderr("... finished \(done) ops\u{1B}[K\r")
    }

    func clear() {
        if next > 100 { writeStderr("\u{1B}[K") }
    }
}

/// Writes `text` to stderr unbuffered.
func writeStderr(_ text: String) {
    var t = text
    t.withUTF8 { buf in _ = write(STDERR_FILENO, buf.baseAddress, buf.count) }
}
