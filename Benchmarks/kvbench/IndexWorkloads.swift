import Foundation
import Shale

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// CPU time of the calling thread in nanoseconds (`CLOCK_THREAD_CPUTIME_ID`).
func threadCPUNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// The secondary-index workloads (`--shards N` only): a product catalogue of `--num` rows
/// `product:<n>` → `{"category":"cat<k>","price":<p>,"dims":{"w":<w>}}` with 100 categories,
/// written through ``ShardedStore``.
///
/// | benchmark | one operation |
/// |---|---|
/// | `fillproducts` | put of one product, no index (fresh database) |
/// | `fillproducts_idx1` | the same with one index (`by_category`) |
/// | `fillproducts_idx3` | the same with three (`by_category`, `by_price`, `by_width`) |
/// | `indexbuild` | one row back-filled by `createIndex` of a category index on the loaded catalogue |
/// | `indexquery` | `query(index: "by_category", .equals("cat<k>"), limit: 100)`, k random |
/// | `scanquery` | a full scan of the catalogue keeping the rows of one random category (the same 100 first keys as `indexquery`) |
/// | `jsonscan` | one extraction of `category` from a product value by the index's JSON scanner |
enum IndexBench {
    static let categories = 100
    static let queryLimit = 100

    static let byCategory = IndexDefinition(name: "by_category", field: "category", type: .string, keyPrefix: "product:")
    static let byPrice = IndexDefinition(name: "by_price", field: "price", type: .number, keyPrefix: "product:")
    static let byWidth = IndexDefinition(name: "by_width", field: "dims.w", type: .number, keyPrefix: "product:")

    /// A 64-bit mix (SplitMix64's finalizer) so that categories and prices look random.
    static func mix(_ n: Int) -> UInt64 {
        var z = UInt64(truncatingIfNeeded: n) &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    static func key(_ n: Int) -> [UInt8] { Array("product:\(n)".utf8) }

    static func category(_ n: Int) -> Int { Int(mix(n) % UInt64(categories)) }

    /// The JSON value of product `n`.
    static func value(_ n: Int) -> [UInt8] {
        let h = mix(n)
        let price = Double((h >> 8) % 100_000) / 100
        return Array("{\"category\":\"cat\(category(n))\",\"price\":\(price),\"dims\":{\"w\":\(Int((h >> 40) % 10))}}".utf8)
    }
}

extension BenchRun {
    /// Runs one index benchmark; skipped unless the target is a ``StoreTarget``.
    func runIndexBenchmark(_ benchmark: Benchmark, previous: [Outcome]) throws -> Outcome {
        guard let storeTarget = target as? StoreTarget else {
            return .skip(benchmark, "index workloads need a ShardedStore: pass --shards N")
        }
        let store = try storeTarget.current()
        let num = config.num
        var outcome = Outcome(name: benchmark.rawValue, operation: benchmark.operationName)
        switch benchmark {
        case .fillproducts, .fillproductsIdx1, .fillproductsIdx3:
            let defs: [IndexDefinition] =
                benchmark == .fillproducts ? [] : benchmark == .fillproductsIdx1 ? [IndexBench.byCategory] : [IndexBench.byCategory, IndexBench.byPrice, IndexBench.byWidth]
            for d in defs { try store.createIndex(d) }
            try store.waitForIndexes()
            let threads = config.threads
            let durability = Durability(rawValue: config.durability.rawValue) ?? .no
            let parts = try runThreads(count: threads) { index, ready in
                ready()
                var rec = Recorder(showProgress: Progress.enabled && index == 0)
                var n = index
                while n < num {
                    let v = IndexBench.value(n)
                    let k = IndexBench.key(n)
                    try store.put(k, v, durability: durability)
                    rec.bytes += k.count + v.count
                    rec.finished()
                    n += threads
                }
                rec.stop()
                return rec.result
            }
            outcome.result = ThreadResult.merge(parts)
            if benchmark != .fillproducts, let base = previous.last(where: { $0.name == Benchmark.fillproducts.rawValue }), base.result != nil {
                outcome.message = String(format: "(%.0f%% of fillproducts' throughput with %d index%@)", 100 * outcome.opsPerSecond / base.opsPerSecond, defs.count, defs.count == 1 ? "" : "es")
            } else {
                outcome.message = "(\(defs.count) indexes)"
            }
        case .indexbuild:
            let def = IndexDefinition(name: "build_category", field: "category", type: .string, keyPrefix: "product:")
            if (try? store.indexInfo(def.name)) != nil {
                try store.dropIndex(def.name)
                try store.waitForIndexes()
            }
            let start = nowNanos()
            try store.createIndex(def)
            try store.waitForIndexes()
            let finish = nowNanos()
            let info = try store.indexInfo(def.name)
            // One operation per row; no per-row latencies (the build is one background job).
            outcome.result = ThreadResult(
                histogram: makeLatencyHistogram(), ops: num, bytes: 0, found: 0, reads: 0, counters: [], start: start, finish: finish)
            outcome.message = String(format: "(back-fill of %d rows in %.3f s, %d entries)", num, Double(finish - start) / 1e9, info.entries)
        case .indexquery:
            if (try? store.indexInfo(IndexBench.byCategory.name)) == nil {
                try store.createIndex(IndexBench.byCategory)
            }
            try store.waitForIndexes()
            var rng = LevelDBRandom(seed: UInt32(config.seed))
            var rec = Recorder(showProgress: config.showProgress)
            var keys = 0
            for _ in 0..<config.indexQueries {
                let hits = try store.query(index: IndexBench.byCategory.name, .equals(.string("cat\(rng.uniform(IndexBench.categories))")), limit: IndexBench.queryLimit)
                keys += hits.count
                rec.reads += 1
                if !hits.isEmpty { rec.found += 1 }
                for h in hits { rec.bytes += h.key.count }
                rec.finished()
            }
            rec.stop()
            outcome.result = rec.result
            outcome.message = String(format: "(%.1f keys per query)", Double(keys) / Double(max(1, config.indexQueries)))
        case .scanquery:
            let extract = IndexBench.byCategory.valueExtractor()
            var rng = LevelDBRandom(seed: UInt32(config.seed))
            var rec = Recorder(showProgress: false)
            var keys = 0
            for _ in 0..<config.scanQueries {
                let wanted = IndexValue.string("cat\(rng.uniform(IndexBench.categories))")
                var hits: [[UInt8]] = []
                var matching = 0
                let scan = try store.scan(prefix: Array("product:".utf8))
                while let (k, v) = try scan.nextEntry() {
                    if v.withUnsafeBytes({ extract($0) }) == wanted {
                        matching += 1
                        if hits.count < IndexBench.queryLimit { hits.append(k) }
                    }
                }
                // The index orders equal values by key, as the scan does: the same first keys.
                keys += hits.count
                rec.reads += 1
                if !hits.isEmpty { rec.found += 1 }
                rec.finished()
            }
            rec.stop()
            outcome.result = rec.result
            var message = String(format: "(%.1f keys per query", Double(keys) / Double(max(1, config.scanQueries)))
            if let q = previous.last(where: { $0.name == Benchmark.indexquery.rawValue }), q.result != nil {
                message += String(format: "; indexquery is %.0fx faster", outcome.microsPerOp / q.microsPerOp)
            }
            outcome.message = message + ")"
        case .jsonscan:
            let count = min(num, 1_000_000)
            let values = (0..<min(count, 100_000)).map(IndexBench.value)
            let extract = IndexBench.byCategory.valueExtractor()
            var found = 0
            var i = 0
            // Timed as a whole (reading the clock per extraction would cost as much as one), in
            // wall-clock time and in the thread's CPU time, which a busy machine distorts less.
            let begin = nowNanos()
            let cpuBegin = threadCPUNanos()
            for _ in 0..<count {
                if values[i].withUnsafeBytes({ extract($0) }) != nil { found += 1 }
                i = i + 1 == values.count ? 0 : i + 1
            }
            let cpu = Double(threadCPUNanos() - cpuBegin) / Double(count)
            let end = nowNanos()
            outcome.result = ThreadResult(
                histogram: makeLatencyHistogram(), ops: count, bytes: 0, found: 0, reads: 0, counters: [], start: begin, finish: end)
            // Foundation's full parse of the same values, for comparison.
            let sample = min(values.count, 20_000)
            let start = threadCPUNanos()
            var parsed = 0
            for v in values.prefix(sample) {
                let object = try JSONSerialization.jsonObject(with: Data(v)) as? [String: Any]
                if object?["category"] is String { parsed += 1 }
            }
            let foundation = Double(threadCPUNanos() - start) / Double(sample)
            outcome.message = String(
                format: "(%.0f ns CPU per extraction; JSONSerialization %.0f ns CPU, %.1fx slower; %d of %d found)", cpu, foundation,
                foundation / cpu, found, count)
            if parsed != sample { throw BenchError("JSONSerialization found the category in \(parsed) of \(sample) values") }
        default:
            preconditionFailure("\(benchmark) is not an index benchmark")
        }
        return outcome
    }
}
