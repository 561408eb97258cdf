/// A system kvbench drives: the in-process engine (``EngineTarget``), a RESP server
/// (``RESPTarget``), and later a sharded store. The workloads are written once, generic
/// over the target, and specialised for each.
///
/// A target is shared by every benchmark thread; each thread talks to it through its own
/// ``Session``. ``reset()``, ``compactAll()`` and ``close()`` are called between
/// benchmarks, never while sessions are in use.
protocol BenchTarget: AnyObject, Sendable {
    associatedtype Session: BenchSession

    /// One line describing the target for the header.
    var summary: String { get }
    /// Settings the target could not apply, or applies differently, printed at start.
    var notes: [String] { get }
    /// Why the target cannot run benchmarks with this requirement, or nil if it can.
    func unsupportedReason(_ requirement: Benchmark.Requirement) -> String?
    /// A session for one thread; its writes use `durability`.
    func makeSession(durability: DurabilityFlag) throws -> Session
    /// Deletes every key and starts over empty (db_bench's `fresh_db`).
    func reset() throws
    /// A full manual compaction (db_bench's `compact`).
    func compactAll() throws
    /// Bytes the data occupies on disk, if the target can tell.
    func diskUsage() -> Int?
    /// The target's own statistics (write amplification, stalls, cache, levels), if any.
    func statistics() -> JSONValue?
    /// Closes the target; no session may be used afterwards.
    func close() throws
}

/// One thread's connection to a ``BenchTarget``.
///
/// Point operations may be queued: a session with ``batchSize`` greater than one (a
/// pipelined network connection) only guarantees that queued operations have completed
/// after ``flush(into:)``, which also accounts the results of queued reads. Sessions with a
/// batch size of one complete every operation before returning and `flush` does nothing.
protocol BenchSession {
    /// Operations to queue before calling ``flush(into:)``.
    var batchSize: Int { get }

    /// Stores `value` under `key`.
    mutating func put(_ key: [UInt8], _ value: UnsafeRawBufferPointer) throws
    /// Reads `key`, counting it in `recorder.reads` and, once its result is known, in
    /// `recorder.found` and `recorder.bytes` (key + value bytes) when found.
    mutating func get(_ key: [UInt8], into recorder: inout Recorder) throws
    /// Removes `key`.
    mutating func delete(_ key: [UInt8]) throws
    /// Completes every queued operation and accounts queued reads in `recorder`.
    mutating func flush(into recorder: inout Recorder) throws

    /// Walks the whole key space in order (or in reverse), calling `entry` with the key +
    /// value size of each of at most `limit` entries.
    mutating func walk(reverse: Bool, limit: Int, _ entry: (_ bytes: Int) -> Void) throws
    /// Seeks a fresh iterator to `key`; returns whether it landed on `key` itself and the
    /// key + value bytes of the entry it landed on (0 when past the end).
    mutating func seek(_ key: [UInt8]) throws -> (exact: Bool, bytes: Int)
    /// Reads up to `count` entries starting at `key` with a fresh iterator; returns the
    /// entries read and their key + value bytes.
    mutating func scan(from key: [UInt8], count: Int) throws -> (entries: Int, bytes: Int)

    /// Issues one hash, list, set or sorted-set command (queued like a point operation). Reads
    /// count in `recorder.reads` and, once answered, in `recorder.found` (a value, a member or
    /// a non-empty range came back) and `recorder.bytes` (the bytes returned); ranges also
    /// count their items in the `items` counter. Targets without collections throw.
    mutating func collection(_ op: CollectionOp, into recorder: inout Recorder) throws
}

extension BenchSession {
    mutating func collection(_ op: CollectionOp, into recorder: inout Recorder) throws {
        throw BenchError("hash, list, set and sorted-set commands need a ShardedStore (--shards N) or a server (--server)")
    }
}

/// One collection command of the collection workloads, as a Redis client would send it.
/// Values point into the value pool (valid while it lives).
enum CollectionOp {
    /// `HSET key field value`.
    case hset(key: [UInt8], field: [UInt8], value: UnsafeRawBufferPointer)
    /// `HGET key field`.
    case hget(key: [UInt8], field: [UInt8])
    /// `LPUSH key item...` or, with `left` false, `RPUSH key item...`.
    case push(key: [UInt8], items: [UnsafeRawBufferPointer], left: Bool)
    /// `LPOP key` or, with `left` false, `RPOP key`.
    case pop(key: [UInt8], left: Bool)
    /// `LRANGE key start stop` (start and stop non-negative).
    case lrange(key: [UInt8], start: Int, stop: Int)
    /// `SADD key member`.
    case sadd(key: [UInt8], member: [UInt8])
    /// `SISMEMBER key member`.
    case sismember(key: [UInt8], member: [UInt8])
    /// `ZADD key score member [score member ...]`.
    case zadd(key: [UInt8], members: [(score: Double, member: [UInt8])])
    /// `ZRANGE key start stop` (by rank; start and stop non-negative).
    case zrange(key: [UInt8], start: Int, stop: Int)
    /// `ZRANGEBYSCORE key min +inf LIMIT 0 limit`.
    case zrangeByScore(key: [UInt8], min: Double, limit: Int)
}

/// Errors of kvbench itself (bad environment, unsupported combinations), printed as they
/// are.
struct BenchError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) { self.description = description }
}
