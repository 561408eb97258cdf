import KVStore
import Histogram
import Synchronization

/// Per-command call counts, time, failures and latency histograms (`INFO commandstats`,
/// `INFO latencystats`, the metrics endpoint).
///
/// Recording is cheap and scales with the worker threads: the figures are split over
/// ``stripeCount`` stripes, each a `Mutex` around an array indexed by ``CommandSpec/index``
/// (and a dictionary for names outside the command table), and a thread always records
/// into its own stripe (``currentThreadStripe()``), so two event loops or workers rarely
/// contend. A record is one array update and, when tracking is on, one HdrHistogram
/// increment (an index computation and an add). Readers merge the stripes.
///
/// Histograms hold nanoseconds from 1 ns to 100 s with two significant digits (values
/// above are counted at 100 s), like Redis's latency tracking (Redis stops at 1 s).
final class CommandStatistics: Sendable {
    /// One command's figures.
    struct Entry {
        var calls: Int64 = 0
        var micros: Int64 = 0
        var failed: Int64 = 0
        var rejected: Int64 = 0
        var histogram: Histogram<UInt64>?

        mutating func merge(_ other: Entry) {
            calls += other.calls
            micros += other.micros
            failed += other.failed
            rejected += other.rejected
            if let h = other.histogram {
                if histogram == nil { histogram = h } else { histogram!.add(h) }
            }
        }
    }

    static let stripeCount = 8
    static let highestNanos: UInt64 = 100_000_000_000

    /// One stripe's figures.
    private struct Figures {
        /// By ``CommandSpec/index``.
        var byIndex = [Entry](repeating: Entry(), count: Commands.specs.count)
        /// Names outside the command table.
        var byName: [String: Entry] = [:]

        @inline(__always)
        mutating func withEntry(_ spec: CommandSpec, _ body: (inout Entry) -> Void) {
            if spec.index < byIndex.count {
                body(&byIndex[spec.index])
            } else {
                body(&byName[spec.name, default: Entry()])
            }
        }

        mutating func withEntry(_ name: String, _ body: (inout Entry) -> Void) {
            if let spec = Commands.table[name] {
                withEntry(spec, body)
            } else {
                body(&byName[name, default: Entry()])
            }
        }
    }

    private final class Stripe: Sendable {
        let figures = Mutex(Figures())
    }
    private let stripes: [Stripe] = (0..<CommandStatistics.stripeCount).map { _ in Stripe() }

    static func newHistogram() -> Histogram<UInt64> {
        Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: highestNanos, numberOfSignificantValueDigits: .two)
    }

    /// The calling thread's stripe (threads take stripes in the order they first count, so
    /// the event loops do not share one).
    private var stripe: Stripe {
        stripes[currentThreadStripe() % Self.stripeCount]
    }

    /// Records one call of `command` that took `nanos`; `histogram` says whether latency
    /// tracking is on.
    func record(_ command: String, nanos: Int64, failed: Bool, histogram: Bool) {
        stripe.figures.withLock { f in
            f.withEntry(command) { $0.update(nanos: nanos, failed: failed, histogram: histogram) }
        }
    }

    /// ``record(_:nanos:failed:histogram:)`` for a command of the table.
    @inline(__always)
    func record(_ spec: CommandSpec, nanos: Int64, failed: Bool, histogram: Bool) {
        stripe.figures.withLock { f in
            f.withEntry(spec) { $0.update(nanos: nanos, failed: failed, histogram: histogram) }
        }
    }

    /// Counts a call of `command` refused before it ran.
    func recordRejected(_ command: String) {
        stripe.figures.withLock { f in f.withEntry(command) { $0.rejected += 1 } }
    }

    /// Every command's merged figures, by name (commands never called are left out).
    func snapshot() -> [String: Entry] {
        var out: [String: Entry] = [:]
        for s in stripes {
            let part = s.figures.withLock { $0 }
            for (i, e) in part.byIndex.enumerated() where e.calls > 0 || e.rejected > 0 {
                out[Commands.specs[i].name, default: Entry()].merge(e)
            }
            for (name, e) in part.byName { out[name, default: Entry()].merge(e) }
        }
        return out
    }

    /// Forgets everything (CONFIG RESETSTAT).
    func reset() {
        for s in stripes { s.figures.withLock { $0 = Figures() } }
    }
}

extension CommandStatistics.Entry {
    @inline(__always)
    mutating func update(nanos: Int64, failed isFailure: Bool, histogram record: Bool) {
        calls += 1
        micros += nanos / 1000
        if isFailure { failed += 1 }
        if record {
            if histogram == nil { histogram = CommandStatistics.newHistogram() }
            histogram!.record(UInt64(max(1, min(nanos, Int64(CommandStatistics.highestNanos)))))
        }
    }
}

/// The `INFO latencystats` lines: Redis 7's
/// `latency_percentiles_usec_<command>:p50=1.003,p99=2.007,p99.9=3.007`, values in
/// microseconds with three decimals, for every command with recorded latencies.
func latencyStatsLines(_ entries: [String: CommandStatistics.Entry], percentiles: [Double]) -> [(String, String)] {
    entries.keys.sorted().compactMap { name in
        guard let h = entries[name]?.histogram, h.totalCount > 0 else { return nil }
        let fields = percentiles.map { p -> String in
            let nanos = h.valueAtPercentile(p)
            return "p\(ServerSetting.formatPercentile(p))=\(formatMicros(nanos))"
        }
        return ("latency_percentiles_usec_\(name)", fields.joined(separator: ","))
    }
}

/// Nanoseconds as microseconds with three decimals (`%.3f` of ns / 1000).
func formatMicros(_ nanos: UInt64) -> String {
    "\(nanos / 1000).\(String(nanos % 1000).leftPad(3))"
}
