import ArgumentParser
import Foundation

/// A db_bench-style boolean: `1`/`0`, `true`/`false`, `yes`/`no`.
struct DBBool: ExpressibleByArgument, Sendable {
    let value: Bool

    init(_ value: Bool) { self.value = value }

    init?(argument: String) {
        switch argument.lowercased() {
        case "1", "true", "yes", "on": value = true
        case "0", "false", "no", "off": value = false
        default: return nil
        }
    }

    var defaultValueDescription: String { value ? "1" : "0" }
}

/// `--compression_type`.
enum CompressionFlag: String, ExpressibleByArgument, Sendable {
    case lz4, none
}

/// `--durability`.
enum DurabilityFlag: String, ExpressibleByArgument, Sendable {
    case always, everysec, no
}

/// The command line. Flags are spelled as db_bench spells them (`--key_size=16`); Shale's
/// own flags follow the same style.
struct KVBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kvbench",
        abstract: "Shale's db_bench-compatible microbenchmark.",
        discussion: """
            Runs the comma-separated --benchmarks in order on one database, printing one \
            db_bench-style line per benchmark plus HdrHistogram latency percentiles. \
            Benchmarks: \(Benchmark.allCases.map(\.rawValue).joined(separator: ", ")).
            """)

    @Option(name: .customLong("benchmarks"), help: "Comma-separated list of benchmarks to run in order.")
    var benchmarks = "fillseq,fillrandom,overwrite,readrandom,readseq,readreverse,seekrandom,deleterandom"

    @Option(name: .customLong("num"), help: "Number of key/value pairs (the key space is [0, num)).")
    var num = 1_000_000

    @Option(name: .customLong("reads"), help: "Read operations per thread; -1 means --num.")
    var reads = -1

    @Option(name: .customLong("writes"), help: "Write operations per thread; -1 means --num (--num/1000 for fillsync).")
    var writes = -1

    @Option(name: .customLong("key_size"), help: "Key size in bytes (zero-padded decimal key number).")
    var keySize = 16

    @Option(name: .customLong("value_size"), help: "Value size in bytes.")
    var valueSize = 100

    @Option(name: .customLong("threads"), help: "Number of concurrent threads (per benchmark; readwhilewriting adds a writer).")
    var threads = 1

    @Option(name: .customLong("compression_type"), help: "Table block compression: lz4 or none.")
    var compressionType = CompressionFlag.lz4

    @Option(name: .customLong("compression_ratio"), help: "Fraction of a value that is random (the rest repeats it).")
    var compressionRatio = 0.5

    @Option(name: .customLong("db"), help: "Database directory (default: a fresh directory under /tmp, removed at exit).")
    var db: String?

    @Option(name: .customLong("use_existing_db"), help: "1: keep the database; fill benchmarks are skipped.")
    var useExistingDB = DBBool(false)

    @Option(name: .customLong("sync"), help: "1: every write is fsynced before it is acknowledged (durability always).")
    var sync = DBBool(false)

    @Option(name: .customLong("durability"), help: "Shale durability of writes: always, everysec or no (default: always with --sync=1, else no).")
    var durability: DurabilityFlag?

    @Option(name: .customLong("cache_size"), help: "Block cache capacity in bytes; negative means the engine default.")
    var cacheSize = -1

    @Option(name: .customLong("bloom_bits"), help: "Bloom filter bits per key; negative means the engine default, 0 none.")
    var bloomBits = 10

    @Option(name: .customLong("block_size"), help: "Table block size in bytes; 0 means the engine default.")
    var blockSize = 0

    @Option(name: .customLong("block_restart_interval"), help: "Entries between restart points in data blocks; 0 means the engine default.")
    var blockRestartInterval = 0

    @Option(name: .customLong("write_buffer_size"), help: "Memtable size in bytes; 0 means the engine default.")
    var writeBufferSize = 0

    @Option(name: .customLong("histogram"), help: "1: print the full latency histogram of each benchmark.")
    var histogram = DBBool(false)

    @Option(name: .customLong("json"), help: "Also write every result and the engine statistics to this JSON file.")
    var json: String?

    @Option(name: .customLong("seed"), help: "Seed base; thread t of the run gets seed + t (LevelDB's db_bench uses 1000).")
    var seed = 1000

    @Option(name: .customLong("shards"), help: "Run through a ShardedStore with this many shards (default: one plain Database).")
    var shards: Int?

    @Option(name: .customLong("index_queries"), help: "Queries run by indexquery.")
    var indexQueries = 1000

    @Option(name: .customLong("scan_queries"), help: "Full scans run by scanquery.")
    var scanQueries = 3

    @Option(name: [.customLong("hash_keys"), .customLong("hash-keys")], help: "Hashes hset/hget spread their fields over.")
    var hashKeys = 1000

    @Option(name: [.customLong("list_keys"), .customLong("list-keys")], help: "Lists lpush, lpop and rpop use; also caps the lists lrange100 loads.")
    var listKeys = 1000

    @Option(name: [.customLong("set_keys"), .customLong("set-keys")], help: "Sets sadd/sismember spread their members over.")
    var setKeys = 1000

    @Option(name: [.customLong("zset_keys"), .customLong("zset-keys")], help: "Sorted sets zadd uses; also caps the sets zrange100 loads.")
    var zsetKeys = 1000

    @Option(name: .customLong("server"), help: "HOST:PORT of a RESP server to drive instead of the in-process engine.")
    var server: String?

    @Option(name: .customLong("connections"), help: "Network mode: client connections, one thread each (default: --threads).")
    var connections: Int?

    @Option(name: .customLong("pipeline"), help: "Network mode: requests sent per round trip on each connection.")
    var pipeline = 1

    func validate() throws {
        guard num > 0 else { throw ValidationError("--num must be positive") }
        guard (1...1024).contains(keySize) else { throw ValidationError("--key_size must be between 1 and 1024") }
        guard KeyBuffer.maxNumber(size: keySize) >= num - 1 else {
            throw ValidationError("--key_size=\(keySize) has too few digits for key numbers up to \(num - 1)")
        }
        guard (0...(64 << 20)).contains(valueSize) else { throw ValidationError("--value_size must be between 0 and 64 MiB") }
        guard (1...1024).contains(threads) else { throw ValidationError("--threads must be between 1 and 1024") }
        guard compressionRatio > 0, compressionRatio <= 1 else { throw ValidationError("--compression_ratio must be in (0, 1]") }
        if let shards, shards < 1 { throw ValidationError("--shards must be at least 1") }
        guard pipeline >= 1 else { throw ValidationError("--pipeline must be at least 1") }
        guard hashKeys >= 1, listKeys >= 1, setKeys >= 1, zsetKeys >= 1 else {
            throw ValidationError("--hash_keys, --list_keys, --set_keys and --zset_keys must be at least 1")
        }
        guard indexQueries >= 1, scanQueries >= 1 else { throw ValidationError("--index_queries and --scan_queries must be at least 1") }
        if let connections, connections < 1 { throw ValidationError("--connections must be at least 1") }
        if server == nil, connections != nil || pipeline != 1 {
            throw ValidationError("--connections and --pipeline apply only with --server")
        }
        if server != nil, shards != nil { throw ValidationError("--shards and --server cannot be combined") }
        for name in benchmarkList where Benchmark(rawValue: name) == nil {
            throw ValidationError("unknown benchmark '\(name)'; known: \(Benchmark.allCases.map(\.rawValue).joined(separator: ","))")
        }
    }

    /// The benchmark names, in order.
    var benchmarkList: [String] {
        benchmarks.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    mutating func run() throws {
        let config = BenchConfig(self)
        try Runner.run(config)
    }
}

/// Every setting of a run, resolved from the flags. Immutable and shared by all threads.
struct BenchConfig: Sendable {
    var benchmarks: [Benchmark]
    var num: Int
    var reads: Int
    var writes: Int?
    var keySize: Int
    var valueSize: Int
    var threads: Int
    var compression: CompressionFlag
    var compressionRatio: Double
    var dbPath: String
    var dbPathIsDefault: Bool
    var useExistingDB: Bool
    var sync: Bool
    var durability: DurabilityFlag
    var cacheSize: Int?
    var bloomBits: Int?
    var blockSize: Int?
    var blockRestartInterval: Int?
    var writeBufferSize: Int?
    var histogram: Bool
    var jsonPath: String?
    var seed: Int
    var shards: Int
    var indexQueries: Int
    var scanQueries: Int
    var hashKeys: Int
    var listKeys: Int
    var setKeys: Int
    var zsetKeys: Int
    /// Whether `--shards` was given: the run goes through a ShardedStore (even with 1 shard).
    var useStore: Bool
    var server: String?
    var connections: Int
    var pipeline: Int
    var showProgress: Bool

    init(_ flags: KVBench) {
        benchmarks = flags.benchmarkList.compactMap(Benchmark.init(rawValue:))
        num = flags.num
        reads = flags.reads < 0 ? flags.num : flags.reads
        writes = flags.writes < 0 ? nil : flags.writes
        keySize = flags.keySize
        valueSize = flags.valueSize
        // In network mode every connection has its own client thread.
        threads = flags.server == nil ? flags.threads : (flags.connections ?? flags.threads)
        compression = flags.compressionType
        compressionRatio = flags.compressionRatio
        if let db = flags.db {
            dbPath = db
            dbPathIsDefault = false
        } else {
            dbPath = "/tmp/kvbench-\(getpid())"
            dbPathIsDefault = true
        }
        useExistingDB = flags.useExistingDB.value
        sync = flags.sync.value
        durability = flags.durability ?? (flags.sync.value ? .always : .no)
        cacheSize = flags.cacheSize < 0 ? nil : flags.cacheSize
        bloomBits = flags.bloomBits < 0 ? nil : flags.bloomBits
        blockSize = flags.blockSize <= 0 ? nil : flags.blockSize
        blockRestartInterval = flags.blockRestartInterval <= 0 ? nil : flags.blockRestartInterval
        writeBufferSize = flags.writeBufferSize <= 0 ? nil : flags.writeBufferSize
        histogram = flags.histogram.value
        jsonPath = flags.json
        seed = flags.seed
        shards = flags.shards ?? 1
        indexQueries = flags.indexQueries
        scanQueries = flags.scanQueries
        hashKeys = flags.hashKeys
        listKeys = flags.listKeys
        setKeys = flags.setKeys
        zsetKeys = flags.zsetKeys
        useStore = flags.shards != nil
        server = flags.server
        connections = flags.connections ?? flags.threads
        pipeline = flags.pipeline
        showProgress = Progress.enabled
    }

    /// Write operations per thread for a write benchmark (`--writes`, else `--num`; fillsync
    /// does a thousandth of that, as LevelDB's db_bench does).
    func writeCount(for benchmark: Benchmark) -> Int {
        if let writes { return writes }
        return benchmark == .fillsync ? max(1, num / 1000) : num
    }
}
