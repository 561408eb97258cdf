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
}

/// Errors of kvbench itself (bad environment, unsupported combinations), printed as they
/// are.
struct BenchError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) { self.description = description }
}
