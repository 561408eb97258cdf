import Foundation

/// The collection workloads (`--shards N` or `--server HOST:PORT`): kvserver's hashes, lists,
/// sets and sorted sets, each operation one Redis command (``CollectionOp``) — on a
/// ``ShardedStore`` done as the server's handlers do it, over RESP sent as the command.
///
/// | benchmark | one operation |
/// |---|---|
/// | `hset` | `HSET hash:<k> field:<f> <value>`: pair n → k in [0, hash_keys), f in [0, 1M) |
/// | `hget` | `HGET` of a random pair hset wrote |
/// | `lpush` | `LPUSH list:<k> <value>`, k random in [0, list_keys) |
/// | `lpop`, `rpop` | `LPOP list:<k>` / `RPOP list:<k>`, k random |
/// | `lrange100` | `LRANGE lrange:<r> 0 99` on one of R lists of 1,000 items |
/// | `sadd` | `SADD set:<k> member:<m>`: pair n → k in [0, set_keys), m in [0, 1M) |
/// | `sismember` | `SISMEMBER` of a random pair sadd wrote |
/// | `zadd` | `ZADD zset:<k> <score> member:<m>`, pair n as sadd's, score random in [0, 1M) |
/// | `zrange100` | `ZRANGE zrange:<r> 0 99` on one of R sorted sets of 1,000 members |
/// | `zrangebyscore100` | `ZRANGEBYSCORE zrange:<r> <min> +inf LIMIT 0 100`, min random in [0, 900000) |
///
/// Writers number their operations: thread t of T writes pairs n = i·T + t, so every pair is
/// written once and the readers, drawing n uniformly below the count written, find each.
/// The range benchmarks first load R = max(1, min(list_keys or zset_keys, num / 1000))
/// collections of 1,000 items (`lrange_load`, `zrange_load`: one RPUSH or ZADD of 100 per
/// operation), once per run.
enum CollectionBench {
    /// Fields and members are drawn from this many.
    static let fieldSpace = 1_000_000
    /// Scores are drawn from [0, scoreSpace).
    static let scoreSpace = 1_000_000.0
    /// Items of each collection the range benchmarks read.
    static let rangeItems = 1000
    /// Items one range returns.
    static let rangeLength = 100
    /// Items pushed or added by one load operation.
    static let loadBatch = 100

    static let hashPrefix = Array("hash:".utf8)
    static let listPrefix = Array("list:".utf8)
    static let setPrefix = Array("set:".utf8)
    static let zsetPrefix = Array("zset:".utf8)
    static let rangeListPrefix = Array("lrange:".utf8)
    static let rangeZsetPrefix = Array("zrange:".utf8)
    static let fieldPrefix = Array("field:".utf8)
    static let memberPrefix = Array("member:".utf8)

    /// `prefix` followed by `n` in decimal, zero-padded to `width` digits.
    static func name(_ prefix: [UInt8], _ n: Int, width: Int = 0) -> [UInt8] {
        var digits = 1
        var v = n
        while v >= 10 {
            v /= 10
            digits += 1
        }
        var out = prefix
        out.reserveCapacity(prefix.count + max(digits, width))
        out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: max(digits, width)))
        var i = out.count - 1
        v = n
        repeat {
            out[i] = UInt8(truncatingIfNeeded: 48 + v % 10)
            v /= 10
            i -= 1
        } while v > 0
        return out
    }

    /// A field or member name: `field:0123456` (7 digits for the 1M space).
    static func sub(_ prefix: [UInt8], _ n: Int) -> [UInt8] { name(prefix, n, width: 7) }

    /// The collection and the field (or member) of pair `n`, both derived from a hash of n.
    static func pair(_ n: Int, keys: Int) -> (key: Int, sub: Int) {
        let h = IndexBench.mix(n)
        return (Int(h % UInt64(keys)), Int((h >> 32) % UInt64(fieldSpace)))
    }

    /// How many collections a range benchmark loads.
    static func rangeCollections(keys: Int, num: Int) -> Int {
        max(1, min(keys, num / rangeItems))
    }

    /// A score uniform in [0, scoreSpace).
    static func score(_ rand: inout LevelDBRandom) -> Double {
        Double(rand.next() - 1) / 2_147_483_646.0 * scoreSpace
    }
}

/// What the collection workloads of a run have written (reset with the database).
struct CollectionState {
    /// Pairs hset wrote (hget reads below this).
    var hashPairs = 0
    /// Pairs sadd wrote (sismember reads below this).
    var setPairs = 0
    /// Lists of 1,000 items loaded for lrange100.
    var rangeLists = 0
    /// Sorted sets of 1,000 members loaded for zrange100 and zrangebyscore100.
    var rangeZsets = 0
}

extension Workloads {
    /// Issues `count` commands made by `next(i, &rec)`, flushing a pipelined session every
    /// `batchSize` of them.
    private func commands(_ s: inout Session, _ rec: inout Recorder, count: Int, _ next: (Int, inout Recorder) -> CollectionOp) throws {
        var ops = QueuedOps(batchSize: s.batchSize)
        for i in 0..<count {
            try s.collection(next(i, &rec), into: &rec)
            try ops.add(&s, &rec)
        }
        try ops.finish(&s, &rec)
    }

    /// hset: `count` HSETs of pairs i·threads + thread.
    func hset(_ s: inout Session, _ env: inout ThreadEnv, _ rec: inout Recorder, count: Int, threads: Int) throws {
        let keys = config.hashKeys, size = config.valueSize
        try commands(&s, &rec, count: count) { i, rec in
            let (k, f) = CollectionBench.pair(i * threads + env.index, keys: keys)
            let field = CollectionBench.sub(CollectionBench.fieldPrefix, f)
            rec.bytes += field.count + size
            return .hset(key: CollectionBench.name(CollectionBench.hashPrefix, k), field: field, value: pool.next(size, &env.values))
        }
    }

    /// hget: `count` HGETs of random pairs below `pairs`.
    func hget(_ s: inout Session, _ env: inout ThreadEnv, _ rec: inout Recorder, count: Int, pairs: Int) throws {
        let keys = config.hashKeys
        try commands(&s, &rec, count: count) { _, _ in
            let (k, f) = CollectionBench.pair(env.rand.uniform(pairs), keys: keys)
            return .hget(key: CollectionBench.name(CollectionBench.hashPrefix, k), field: CollectionBench.sub(CollectionBench.fieldPrefix, f))
        }
    }

    /// lpush: `count` LPUSHes of one value onto random lists.
    func lpush(_ s: inout Session, _ env: inout ThreadEnv, _ rec: inout Recorder, count: Int) throws {
        let keys = config.listKeys, size = config.valueSize
        try commands(&s, &rec, count: count) { _, rec in
            rec.bytes += size
            let key = CollectionBench.name(CollectionBench.listPrefix, env.rand.uniform(keys))
            return .push(key: key, items: [pool.next(size, &env.values)], left: true)
        }
    }

    /// lpop, rpop: `count` LPOPs (RPOPs unless `left`) of random lists.
    func pop(_ s: inout Session, _ env: inout ThreadEnv, _ rec: inout Recorder, count: Int, left: Bool) throws {
        let keys = config.listKeys
        try commands(&s, &rec, count: count) { _, _ in
            .pop(key: CollectionBench.name(CollectionBench.listPrefix, env.rand.uniform(keys)), left: left)
        }
    }

    /// sadd: `count` SADDs of pairs i·threads + thread.
    func sadd(_ s: inout Session, _ env: inout ThreadEnv, _ rec: inout Recorder, count: Int, threads: Int) throws {
        let keys = config.setKeys
        try commands(&s, &rec, count: count) { i, rec in
            let (k, m) = CollectionBench.pair(i * threads + env.index, keys: keys)
            let member = CollectionBench.sub(CollectionBench.memberPrefix, m)
            rec.bytes += member.count
            return .sadd(key: CollectionBench.name(CollectionBench.setPrefix, k), member: member)
        }
    }

    /// sismember: `count` SISMEMBERs of random pairs below `pairs`.
    func sismember(_ s: inout Session, _ env: inout ThreadEnv, _ rec: inout Recorder, count: Int, pairs: Int) throws {
        let keys = config.setKeys
        try commands(&s, &rec, count: count) { _, _ in
            let (k, m) = CollectionBench.pair(env.rand.uniform(pairs), keys: keys)
            return .sismember(key: CollectionBench.name(CollectionBench.setPrefix, k), member: CollectionBench.sub(CollectionBench.memberPrefix, m))
        }
    }

    /// zadd: `count` ZADDs of pairs i·threads + thread with random scores.
    func zadd(_ s: inout Session, _ env: inout ThreadEnv, _ rec: inout Recorder, count: Int, threads: Int) throws {
        let keys = config.zsetKeys
        try commands(&s, &rec, count: count) { i, rec in
            let (k, m) = CollectionBench.pair(i * threads + env.index, keys: keys)
            let member = CollectionBench.sub(CollectionBench.memberPrefix, m)
            rec.bytes += member.count + 8
            let score = CollectionBench.score(&env.rand)
            return .zadd(key: CollectionBench.name(CollectionBench.zsetPrefix, k), members: [(score, member)])
        }
    }

    /// lrange_load: `lists` lists `lrange:<r>` of 1,000 items, one RPUSH of 100 per operation.
    func loadRangeLists(_ s: inout Session, _ env: inout ThreadEnv, _ rec: inout Recorder, lists: Int) throws {
        let size = config.valueSize
        let perList = CollectionBench.rangeItems / CollectionBench.loadBatch
        try commands(&s, &rec, count: lists * perList) { i, rec in
            rec.bytes += size * CollectionBench.loadBatch
            let items = (0..<CollectionBench.loadBatch).map { _ in pool.next(size, &env.values) }
            return .push(key: CollectionBench.name(CollectionBench.rangeListPrefix, i / perList), items: items, left: false)
        }
    }

    /// zrange_load: `zsets` sorted sets `zrange:<r>` of members 0..<1000 with random scores,
    /// one ZADD of 100 per operation.
    func loadRangeZsets(_ s: inout Session, _ env: inout ThreadEnv, _ rec: inout Recorder, zsets: Int) throws {
        let perSet = CollectionBench.rangeItems / CollectionBench.loadBatch
        try commands(&s, &rec, count: zsets * perSet) { i, rec in
            let first = (i % perSet) * CollectionBench.loadBatch
            let members = (first..<(first + CollectionBench.loadBatch)).map { j in
                (score: CollectionBench.score(&env.rand), member: CollectionBench.sub(CollectionBench.memberPrefix, j))
            }
            rec.bytes += members.reduce(0) { $0 + $1.member.count + 8 }
            return .zadd(key: CollectionBench.name(CollectionBench.rangeZsetPrefix, i / perSet), members: members)
        }
    }

    /// One thread's share of collection benchmark `benchmark`: `count` operations. Writers of
    /// pairs (hset, sadd, zadd) number them i·threads + thread, their readers (hget,
    /// sismember) draw them below `pairs`, and ranges read one of `collections` collections.
    func collection(
        _ benchmark: Benchmark, _ s: inout Session, _ env: inout ThreadEnv, _ rec: inout Recorder,
        count: Int, threads: Int, pairs: Int, collections: Int
    ) throws {
        switch benchmark {
        case .hset: try hset(&s, &env, &rec, count: count, threads: threads)
        case .hget: try hget(&s, &env, &rec, count: count, pairs: pairs)
        case .lpush: try lpush(&s, &env, &rec, count: count)
        case .lpop, .rpop: try pop(&s, &env, &rec, count: count, left: benchmark == .lpop)
        case .sadd: try sadd(&s, &env, &rec, count: count, threads: threads)
        case .sismember: try sismember(&s, &env, &rec, count: count, pairs: pairs)
        case .zadd: try zadd(&s, &env, &rec, count: count, threads: threads)
        case .lrange100, .zrange100, .zrangebyscore100: try ranges(benchmark, &s, &env, &rec, count: count, collections: collections)
        default: preconditionFailure("\(benchmark) is not a collection benchmark")
        }
    }

    /// lrange100, zrange100, zrangebyscore100: `count` ranges of 100 on random loaded
    /// collections among `collections`.
    func ranges(_ benchmark: Benchmark, _ s: inout Session, _ env: inout ThreadEnv, _ rec: inout Recorder, count: Int, collections: Int) throws {
        let last = CollectionBench.rangeLength - 1
        // ZRANGEBYSCORE starts below the top 10% of the score space: about 100 members follow.
        let minSpace = Int(CollectionBench.scoreSpace) / CollectionBench.rangeItems * (CollectionBench.rangeItems - CollectionBench.rangeLength)
        try commands(&s, &rec, count: count) { _, _ in
            let r = env.rand.uniform(collections)
            switch benchmark {
            case .lrange100:
                return .lrange(key: CollectionBench.name(CollectionBench.rangeListPrefix, r), start: 0, stop: last)
            case .zrange100:
                return .zrange(key: CollectionBench.name(CollectionBench.rangeZsetPrefix, r), start: 0, stop: last)
            default:
                let key = CollectionBench.name(CollectionBench.rangeZsetPrefix, r)
                return .zrangeByScore(key: key, min: Double(env.rand.uniform(minSpace)), limit: CollectionBench.rangeLength)
            }
        }
    }
}

extension BenchRun {
    /// The collections range benchmark `benchmark` reads (lrange100 lists, zrange100 and
    /// zrangebyscore100 sorted sets): where the run keeps how many are loaded, and how many
    /// a load makes; nil for other benchmarks.
    private func rangeCollections(for benchmark: Benchmark) -> (loaded: WritableKeyPath<CollectionState, Int>, planned: Int)? {
        switch benchmark {
        case .lrange100:
            return (\.rangeLists, CollectionBench.rangeCollections(keys: config.listKeys, num: config.num))
        case .zrange100, .zrangebyscore100:
            return (\.rangeZsets, CollectionBench.rangeCollections(keys: config.zsetKeys, num: config.num))
        default:
            return nil
        }
    }

    /// Loads the collections a range benchmark reads, once per run (not with
    /// `--use_existing_db=1`, which assumes them loaded); nil when nothing is to be loaded.
    func loadForCollections(_ benchmark: Benchmark) throws -> Outcome? {
        guard !config.useExistingDB, target.unsupportedReason(.collections) == nil,
            let (loaded, count) = rangeCollections(for: benchmark), collections[keyPath: loaded] == 0
        else { return nil }
        let w = workloads
        let lists = benchmark == .lrange100
        var outcome = Outcome(name: lists ? "lrange_load" : "zrange_load", operation: "write")
        outcome.result = try measure(threads: 1) { s, env, rec in
            if lists {
                try w.loadRangeLists(&s, &env, &rec, lists: count)
            } else {
                try w.loadRangeZsets(&s, &env, &rec, zsets: count)
            }
        }
        let what = lists ? "lists of \(CollectionBench.rangeItems) items; RPUSH" : "sorted sets of \(CollectionBench.rangeItems) members; ZADD"
        outcome.message = "(\(count) \(what) of \(CollectionBench.loadBatch) per operation)"
        collections[keyPath: loaded] = count
        return outcome
    }

    /// Runs one collection benchmark (the target supports collections).
    func runCollectionBenchmark(_ benchmark: Benchmark) throws -> Outcome {
        precondition(benchmark.isCollectionWorkload, "\(benchmark) is not a collection benchmark")
        let w = workloads
        let n = config.threads
        let writes = config.writeCount(for: benchmark)
        let count: Int
        switch benchmark {
        case .hget, .sismember, .lrange100, .zrange100, .zrangebyscore100: count = config.reads
        default: count = writes
        }
        // The pairs hset (sadd) wrote so far, which hget (sismember) reads; `writes` when none.
        let written: WritableKeyPath<CollectionState, Int>? =
            switch benchmark {
            case .hset, .hget: \.hashPairs
            case .sadd, .sismember: \.setPairs
            default: nil
            }
        let pairsWritten = written.map { collections[keyPath: $0] } ?? 0
        let pairs = pairsWritten > 0 ? pairsWritten : writes
        // The collections a range benchmark reads: those loaded, or as many as a load makes.
        let ranged = rangeCollections(for: benchmark).map { collections[keyPath: $0.loaded] > 0 ? collections[keyPath: $0.loaded] : $0.planned } ?? 0
        var outcome = Outcome(name: benchmark.rawValue, operation: benchmark.operationName)
        outcome.result = try measure(threads: n) { s, env, rec in
            try w.collection(benchmark, &s, &env, &rec, count: count, threads: n, pairs: pairs, collections: ranged)
        }
        if let written, benchmark == .hset || benchmark == .sadd {
            collections[keyPath: written] = max(pairsWritten, writes * n)
        }
        if let r = outcome.result, r.reads > 0 {
            outcome.reportsFound = true
            outcome.message = "(\(r.found) of \(r.reads) found)"
            if let items = r.counters.first(where: { $0.name == "items" }) {
                outcome.message += String(format: " (%.1f items per range)", Double(items.value) / Double(r.reads))
            }
        }
        return outcome
    }
}
