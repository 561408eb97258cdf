/// The YCSB core workloads (Cooper et al., "Benchmarking Cloud Serving Systems with YCSB",
/// SoCC 2010), as their `workloads/workload[a-f]` files define them.
///
/// | workload | mix | key choice |
/// |---|---|---|
/// | A | 50% read, 50% update | scrambled zipfian |
/// | B | 95% read, 5% update | scrambled zipfian |
/// | C | 100% read | scrambled zipfian |
/// | D | 95% read, 5% insert | latest |
/// | E | 95% scan (1–100 entries, uniform), 5% insert | scrambled zipfian |
/// | F | 50% read, 50% read-modify-write | scrambled zipfian |
///
/// Records are the db_bench keys 0..<num (load them with fillseq first; kvbench does so
/// itself when the key space is empty); inserts append keys num, num + 1, ... An update
/// writes a whole new value.
enum YCSBWorkload: Sendable {
    case a, b, c, d, e, f

    /// Operation proportions: read, update, insert, scan, read-modify-write.
    var mix: (read: Double, update: Double, insert: Double, scan: Double, rmw: Double) {
        switch self {
        case .a: return (0.5, 0.5, 0, 0, 0)
        case .b: return (0.95, 0.05, 0, 0, 0)
        case .c: return (1, 0, 0, 0, 0)
        case .d: return (0.95, 0, 0.05, 0, 0)
        case .e: return (0, 0, 0.05, 0.95, 0)
        case .f: return (0.5, 0, 0, 0, 0.5)
        }
    }

    /// YCSB workload E's `maxscanlength`.
    static let maxScanLength = 100
}

extension Workloads {
    /// One thread's share of a YCSB workload: `count` operations.
    ///
    /// Key choice follows YCSB's `CoreWorkload`: a scrambled zipfian (theta 0.99) over the
    /// records plus twice the expected inserts, redrawn while it names a key not inserted
    /// yet; workload D draws from the "latest" distribution over the keys inserted so far.
    func ycsb(
        _ workload: YCSBWorkload, _ s: inout Session, _ env: inout ThreadEnv, _ rec: inout Recorder,
        count: Int, inserts: SharedCounter, seed: UInt64
    ) throws {
        let mix = workload.mix
        var rng = SplitMix64(seed: seed)
        let expectedNewKeys = Int(Double(count * config.threads) * mix.insert * 2)
        var chooser = ScrambledZipfianGenerator(items: config.num + expectedNewKeys)
        var latest = SkewedLatestGenerator(latest: max(0, inserts.current - 1))
        let entryBytes = config.keySize + config.valueSize
        var reads = 0
        var updates = 0
        var inserted = 0
        var scans = 0
        var rmws = 0
        var ops = QueuedOps(batchSize: s.batchSize)

        func nextKey() -> Int {
            if workload == .d { return latest.next(latest: max(0, inserts.current - 1), using: &rng) }
            var k: Int
            repeat { k = chooser.next(using: &rng) } while k >= inserts.current
            return k
        }

        for _ in 0..<count {
            let p = rng.nextDouble()
            if p < mix.read {
                env.key.set(nextKey())
                try s.get(env.key.bytes, into: &rec)
                reads += 1
            } else if p < mix.read + mix.update {
                env.key.set(nextKey())
                try s.put(env.key.bytes, pool.next(config.valueSize, &env.values))
                rec.bytes += entryBytes
                updates += 1
            } else if p < mix.read + mix.update + mix.insert {
                env.key.set(inserts.next())
                try s.put(env.key.bytes, pool.next(config.valueSize, &env.values))
                rec.bytes += entryBytes
                inserted += 1
            } else if p < mix.read + mix.update + mix.insert + mix.scan {
                env.key.set(nextKey())
                let length = 1 + rng.uniform(YCSBWorkload.maxScanLength)
                let (_, bytes) = try s.scan(from: env.key.bytes, count: length)
                rec.bytes += bytes
                scans += 1
            } else {
                env.key.set(nextKey())
                try s.get(env.key.bytes, into: &rec)
                try s.put(env.key.bytes, pool.next(config.valueSize, &env.values))
                rec.bytes += entryBytes
                rmws += 1
            }
            try ops.add(&s, &rec)
        }
        try ops.finish(&s, &rec)
        for (name, n) in [("read", reads), ("update", updates), ("insert", inserted), ("scan", scans), ("rmw", rmws)]
        where n > 0 {
            rec.count(name, n)
        }
    }
}
