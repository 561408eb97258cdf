import Foundation

/// Chooses the target for the flags and runs the benchmarks on it.
enum Runner {
    static func run(_ config: BenchConfig) throws {
        if config.server != nil {
            try BenchRun(config: config, target: try RESPTarget(config: config)).runAll()
        } else if config.useStore {
            try BenchRun(config: config, target: try StoreTarget(config: config, fresh: !config.useExistingDB)).runAll()
        } else {
            try BenchRun(config: config, target: try EngineTarget(config: config, fresh: !config.useExistingDB)).runAll()
        }
    }
}

/// One kvbench run: the benchmarks of `--benchmarks`, in order, on one target, as db_bench
/// runs them on one database.
final class BenchRun<Target: BenchTarget> {
    let config: BenchConfig
    let target: Target
    let workloads: Workloads<Target>
    private var outcomes: [Outcome] = []
    /// Threads started so far; thread t of the run is seeded with `seed + t` (db_bench's
    /// `total_thread_count_`), so reruns see the same keys.
    private var threadsStarted = 0
    /// Whether keys 0..<num have been written (by a fill, or assumed with use_existing_db).
    private var keySpaceLoaded: Bool
    /// The next key number a YCSB insert uses.
    private var inserts: SharedCounter
    /// What the collection workloads wrote so far (CollectionWorkloads.swift).
    var collections = CollectionState()

    init(config: BenchConfig, target: Target) {
        self.config = config
        self.target = target
        workloads = Workloads(
            target: target, config: config,
            pool: ValuePool(compressionRatio: config.compressionRatio, maxValueSize: config.valueSize))
        keySpaceLoaded = config.useExistingDB
        inserts = SharedCounter(config.num)
    }

    func runAll() throws {
        for line in headerLines(config, target: target.summary, notes: target.notes) { print(line) }
        defer { cleanUp() }
        for benchmark in config.benchmarks {
            if benchmark.ycsb != nil && !keySpaceLoaded && target.unsupportedReason(benchmark.requirement) == nil {
                report(try loadForYCSB())
            }
            if let load = try loadForCollections(benchmark) { report(load) }
            report(try run(benchmark))
        }
        try summarize()
    }

    private func report(_ outcome: Outcome) {
        outcomes.append(outcome)
        print(outcome.line)
        if let p = outcome.percentileLine { print(p) }
        if config.histogram, let h = outcome.histogramText { print(h) }
        fflush(nil)
    }

    /// Runs one benchmark and returns its merged result.
    func run(_ benchmark: Benchmark) throws -> Outcome {
        if let reason = target.unsupportedReason(benchmark.requirement) { return .skip(benchmark, reason) }
        if benchmark.needsFreshDB {
            if config.useExistingDB { return .skip(benchmark, "--use_existing_db is true") }
            try target.reset()
            keySpaceLoaded = false
            inserts = SharedCounter(config.num)
            collections = CollectionState()
        }
        if benchmark.isIndexWorkload { return try runIndexBenchmark(benchmark, previous: outcomes) }
        if benchmark.isCollectionWorkload { return try runCollectionBenchmark(benchmark) }
        let w = workloads
        let n = config.threads
        let reads = config.reads
        var outcome = Outcome(name: benchmark.rawValue, operation: benchmark.operationName)
        switch benchmark {
        case .fillseq, .fillrandom, .overwrite, .fillsync:
            let count = config.writeCount(for: benchmark)
            let sequential = benchmark == .fillseq
            let durability: DurabilityFlag = benchmark == .fillsync ? .always : config.durability
            outcome.result = try measure(threads: n, durability: durability) { s, env, rec in
                try w.write(&s, &env, &rec, count: count, sequential: sequential)
            }
            if benchmark.loadsKeySpace { keySpaceLoaded = true }
        case .readrandom:
            outcome.result = try measure(threads: n) { s, env, rec in
                try w.readRandom(&s, &env, &rec, count: reads)
            }
            outcome.reportsFound = true
        case .readseq, .readreverse:
            let reverse = benchmark == .readreverse
            outcome.result = try measure(threads: n) { s, _, rec in
                try w.readSequential(&s, &rec, reverse: reverse, count: reads)
            }
        case .seekrandom:
            outcome.result = try measure(threads: n) { s, env, rec in
                try w.seekRandom(&s, &env, &rec, count: reads)
            }
            outcome.reportsFound = true
        case .deleterandom:
            let count = config.writeCount(for: benchmark)
            outcome.result = try measure(threads: n) { s, env, rec in
                try w.deleteRandom(&s, &env, &rec, count: count)
            }
        case .readwhilewriting:
            let stop = StopFlag(count: n)
            let parts = try measureEach(threads: n + 1) { index, s, env, rec in
                if index == n {
                    try w.writeUntil(stop, &s, &env, &rec)
                } else {
                    defer { stop.arrive() }
                    try w.readRandom(&s, &env, &rec, count: reads)
                }
            }
            outcome.result = ThreadResult.merge(Array(parts[0..<n]))
            outcome.reportsFound = true
            outcome.message = "(writer: \(parts[n].ops) writes)"
        case .compact:
            let target = self.target
            outcome.result = try measure(threads: 1) { _, _, rec in
                try target.compactAll()
                rec.finished()
            }
        case .ycsba, .ycsbb, .ycsbc, .ycsbd, .ycsbe, .ycsbf:
            let workload = benchmark.ycsb!
            let inserts = self.inserts
            let seedBase = UInt64(config.seed + threadsStarted) &* 0x9E37_79B9
            outcome.result = try measureEach(threads: n) { index, s, env, rec in
                try w.ycsb(workload, &s, &env, &rec, count: reads, inserts: inserts, seed: seedBase &+ UInt64(index))
            }.merged
            outcome.reportsFound = true
            if let r = outcome.result {
                let mix = r.counters.map { "\($0.name) \($0.value)" }.joined(separator: " ")
                outcome.message = "(\(mix))"
            }
        case .fillproducts, .fillproductsIdx1, .fillproductsIdx3, .indexbuild, .indexquery, .scanquery, .jsonscan:
            preconditionFailure("index workloads run in runIndexBenchmark")
        case .hset, .hget, .lpush, .lpop, .rpop, .lrange100, .sadd, .sismember, .zadd, .zrange100, .zrangebyscore100:
            preconditionFailure("collection workloads run in runCollectionBenchmark")
        }
        if outcome.reportsFound, let r = outcome.result, r.reads > 0 {
            let found = "(\(r.found) of \(r.reads) found)"
            outcome.message = outcome.message.isEmpty ? found : "\(found) \(outcome.message)"
        }
        return outcome
    }

    /// Writes keys 0..<num in order before the first YCSB workload when nothing has.
    private func loadForYCSB() throws -> Outcome {
        let w = workloads
        let count = config.num
        var outcome = Outcome(name: "ycsb_load", operation: "write")
        outcome.result = try measure(threads: 1) { s, env, rec in
            try w.write(&s, &env, &rec, count: count, sequential: true)
        }
        keySpaceLoaded = true
        return outcome
    }

    /// Runs `body` on `threads` threads, each with its own session, environment and
    /// recorder, and merges what they measured.
    func measure(
        threads: Int, durability: DurabilityFlag? = nil,
        _ body: @escaping @Sendable (inout Target.Session, inout ThreadEnv, inout Recorder) throws -> Void
    ) throws -> ThreadResult {
        try measureEach(threads: threads, durability: durability) { _, s, env, rec in try body(&s, &env, &rec) }.merged
    }

    /// Like ``measure(threads:durability:_:)`` but returns each thread's result.
    func measureEach(
        threads: Int, durability: DurabilityFlag? = nil,
        _ body: @escaping @Sendable (Int, inout Target.Session, inout ThreadEnv, inout Recorder) throws -> Void
    ) throws -> [ThreadResult] {
        let seedBase = config.seed + threadsStarted
        threadsStarted += threads
        let config = self.config
        let target = self.target
        let mode = durability ?? config.durability
        return try runThreads(count: threads) { index, ready in
            var session = try target.makeSession(durability: mode)
            var env = ThreadEnv(index: index, seed: seedBase + index + 1, keySize: config.keySize)
            ready()
            var rec = Recorder(showProgress: config.showProgress && index == 0)
            try body(index, &session, &env, &rec)
            rec.stop()
            return rec.result
        }
    }

    /// The end-of-run summary: data size on disk and the target's statistics; then the
    /// JSON file.
    private func summarize() throws {
        print(String(repeating: "-", count: 48))
        let size = target.diskUsage()
        if let size {
            print("DB size:    \(humanBytes(size)) on disk (\(size) bytes)")
        }
        let stats = target.statistics()
        if case .object(let members)? = stats {
            print("Engine statistics:")
            for (name, value) in members { print("  \(name): \(value.inline)") }
        } else {
            print("Engine statistics: not available from this target")
        }
        guard let path = config.jsonPath else { return }
        let document = JSONValue.object([
            ("tool", .string("kvbench")),
            ("target", .string(target.summary)),
            ("config", configJSON),
            ("results", .array(outcomes.map(\.json))),
            ("db_size_bytes", .optional(size)),
            ("engine_stats", stats ?? .null),
        ])
        do {
            try (document.rendered() + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw BenchError("cannot write --json file \(path): \(error)")
        }
    }

    private var configJSON: JSONValue {
        .object([
            ("benchmarks", .array(config.benchmarks.map { .string($0.rawValue) })),
            ("num", .integer(config.num)),
            ("reads", .integer(config.reads)),
            ("key_size", .integer(config.keySize)),
            ("value_size", .integer(config.valueSize)),
            ("threads", .integer(config.threads)),
            ("compression_type", .string(config.compression.rawValue)),
            ("compression_ratio", .number(config.compressionRatio)),
            ("db", .string(config.dbPath)),
            ("use_existing_db", .bool(config.useExistingDB)),
            ("sync", .bool(config.sync)),
            ("durability", .string(config.durability.rawValue)),
            ("cache_size", .optional(config.cacheSize)),
            ("bloom_bits", .optional(config.bloomBits)),
            ("block_size", .optional(config.blockSize)),
            ("block_restart_interval", .optional(config.blockRestartInterval)),
            ("write_buffer_size", .optional(config.writeBufferSize)),
            ("seed", .integer(config.seed)),
            ("shards", .integer(config.shards)),
            ("index_queries", .integer(config.indexQueries)),
            ("scan_queries", .integer(config.scanQueries)),
            ("hash_keys", .integer(config.hashKeys)),
            ("list_keys", .integer(config.listKeys)),
            ("set_keys", .integer(config.setKeys)),
            ("zset_keys", .integer(config.zsetKeys)),
            ("server", config.server.map { .string($0) } ?? .null),
            ("connections", config.server == nil ? .null : .integer(config.connections)),
            ("pipeline", config.server == nil ? .null : .integer(config.pipeline)),
        ])
    }

    /// Closes the target; removes the database directory when kvbench chose it.
    private func cleanUp() {
        do {
            try target.close()
        } catch {
            writeStderr("kvbench: close failed: \(error)\n")
        }
        if config.dbPathIsDefault && config.server == nil {
            try? EngineTarget.destroy(config.dbPath)
        }
    }
}

extension Array where Element == ThreadResult {
    var merged: ThreadResult { ThreadResult.merge(self) }
}
