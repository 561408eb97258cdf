/// The benchmarks kvbench knows, named as db_bench names them, plus the YCSB core
/// workloads.
enum Benchmark: String, CaseIterable, Sendable {
    case fillseq, fillrandom, overwrite, fillsync
    case readrandom, readseq, readreverse, seekrandom
    case deleterandom, readwhilewriting, compact
    case ycsba, ycsbb, ycsbc, ycsbd, ycsbe, ycsbf
    // Secondary indexes over a product catalogue (see IndexWorkloads.swift).
    case fillproducts
    case fillproductsIdx1 = "fillproducts_idx1"
    case fillproductsIdx3 = "fillproducts_idx3"
    case indexbuild, indexquery, scanquery, jsonscan
    // Hashes, lists, sets and sorted sets (see CollectionWorkloads.swift).
    case hset, hget, lpush, lpop, rpop, lrange100, sadd, sismember, zadd, zrange100, zrangebyscore100

    /// db_bench's `fresh_db`: the database is deleted and recreated before the benchmark
    /// (or the benchmark is skipped with `--use_existing_db=1`).
    var needsFreshDB: Bool {
        switch self {
        case .fillseq, .fillrandom, .fillsync, .fillproducts, .fillproductsIdx1, .fillproductsIdx3: return true
        default: return false
        }
    }

    /// Whether this is one of the secondary-index workloads.
    var isIndexWorkload: Bool {
        switch self {
        case .fillproducts, .fillproductsIdx1, .fillproductsIdx3, .indexbuild, .indexquery, .scanquery, .jsonscan: return true
        default: return false
        }
    }

    /// Whether this is one of the collection workloads (hashes, lists, sets, sorted sets).
    var isCollectionWorkload: Bool {
        switch self {
        case .hset, .hget, .lpush, .lpop, .rpop, .lrange100, .sadd, .sismember, .zadd, .zrange100, .zrangebyscore100: return true
        default: return false
        }
    }

    /// Whether the benchmark fills the whole key space (so later YCSB runs need no load).
    var loadsKeySpace: Bool {
        self == .fillseq || self == .fillrandom
    }

    /// The YCSB workload this benchmark runs, if any.
    var ycsb: YCSBWorkload? {
        switch self {
        case .ycsba: return .a
        case .ycsbb: return .b
        case .ycsbc: return .c
        case .ycsbd: return .d
        case .ycsbe: return .e
        case .ycsbf: return .f
        default: return nil
        }
    }

    /// What the target must support to run the benchmark.
    var requirement: Requirement {
        if isCollectionWorkload { return .collections }
        switch self {
        case .readseq, .readreverse, .seekrandom, .ycsbe: return .orderedScans
        case .compact: return .compaction
        case .fillsync: return .syncWrites
        default: return .pointOperations
        }
    }

    /// Capabilities a target may lack.
    enum Requirement: Sendable {
        case pointOperations, orderedScans, compaction, syncWrites
        /// Hash, list, set and sorted-set commands (a ShardedStore or a RESP server).
        case collections
    }

    /// The name of the operation its latencies measure, for `--histogram=1` output
    /// ("Microseconds per write:").
    var operationName: String {
        switch self {
        case .fillseq, .fillrandom, .overwrite, .fillsync, .fillproducts, .fillproductsIdx1, .fillproductsIdx3: return "write"
        case .hset, .lpush, .sadd, .zadd: return "write"
        case .lpop, .rpop: return "pop"
        case .lrange100, .zrange100, .zrangebyscore100: return "range"
        case .indexquery, .scanquery: return "query"
        case .indexbuild: return "row"
        case .jsonscan: return "extraction"
        case .deleterandom: return "delete"
        case .seekrandom: return "seek"
        case .compact: return "compaction"
        case .ycsba, .ycsbb, .ycsbc, .ycsbd, .ycsbe, .ycsbf: return "op"
        default: return "read"
        }
    }
}
