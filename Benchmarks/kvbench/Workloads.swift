/// A thread's private state: db_bench's `ThreadState` (its random generator, seeded
/// uniquely per thread of the run) plus a reusable key buffer and its place in the value
/// pool.
struct ThreadEnv {
    let index: Int
    var rand: LevelDBRandom
    var key: KeyBuffer
    var values = ValuePool.Cursor()

    init(index: Int, seed: Int, keySize: Int) {
        self.index = index
        rand = LevelDBRandom(seed: UInt32(truncatingIfNeeded: seed))
        key = KeyBuffer(size: keySize)
    }
}

/// The operations a thread has queued on its session since the last flush: every
/// ``BenchSession/batchSize`` of them it flushes the session and records them as finished,
/// and ``finish(_:_:)`` does the same for what is left at the end.
struct QueuedOps {
    private let batchSize: Int
    private var queued = 0

    init(batchSize: Int) { self.batchSize = batchSize }

    /// Counts one more queued operation, flushing when a batch is full.
    @inline(__always)
    mutating func add<Session: BenchSession>(_ s: inout Session, _ rec: inout Recorder) throws {
        queued += 1
        if queued == batchSize { try finish(&s, &rec) }
    }

    /// Flushes and records the operations still queued, if any.
    mutating func finish<Session: BenchSession>(_ s: inout Session, _ rec: inout Recorder) throws {
        guard queued > 0 else { return }
        try s.flush(into: &rec)
        rec.finished(queued)
        queued = 0
    }
}

/// The db_bench workloads, written once for every ``BenchTarget``. Each function runs one
/// thread's share of a benchmark and records every op in `rec`.
struct Workloads<Target: BenchTarget>: Sendable {
    let target: Target
    let config: BenchConfig
    let pool: ValuePool

    typealias Session = Target.Session

    /// fillseq, fillrandom, overwrite, fillsync: `count` puts of sequential (0, 1, ...) or
    /// uniformly random keys in [0, num).
    func write(_ s: inout Session, _ env: inout ThreadEnv, _ rec: inout Recorder, count: Int, sequential: Bool) throws {
        var ops = QueuedOps(batchSize: s.batchSize)
        let entryBytes = config.keySize + config.valueSize
        for i in 0..<count {
            env.key.set(sequential ? i : env.rand.uniform(config.num))
            try s.put(env.key.bytes, pool.next(config.valueSize, &env.values))
            rec.bytes += entryBytes
            try ops.add(&s, &rec)
        }
        try ops.finish(&s, &rec)
    }

    /// readrandom: `count` gets of uniformly random keys in [0, num).
    func readRandom(_ s: inout Session, _ env: inout ThreadEnv, _ rec: inout Recorder, count: Int) throws {
        var ops = QueuedOps(batchSize: s.batchSize)
        for _ in 0..<count {
            env.key.set(env.rand.uniform(config.num))
            try s.get(env.key.bytes, into: &rec)
            try ops.add(&s, &rec)
        }
        try ops.finish(&s, &rec)
    }

    /// deleterandom: `count` deletes of uniformly random keys in [0, num).
    func deleteRandom(_ s: inout Session, _ env: inout ThreadEnv, _ rec: inout Recorder, count: Int) throws {
        var ops = QueuedOps(batchSize: s.batchSize)
        for _ in 0..<count {
            env.key.set(env.rand.uniform(config.num))
            try s.delete(env.key.bytes)
            try ops.add(&s, &rec)
        }
        try ops.finish(&s, &rec)
    }

    /// readseq / readreverse: one iterator over the whole database, at most `count` entries.
    func readSequential(_ s: inout Session, _ rec: inout Recorder, reverse: Bool, count: Int) throws {
        try s.walk(reverse: reverse, limit: count) { bytes in
            rec.bytes += bytes
            rec.finished()
        }
    }

    /// seekrandom: `count` seeks of fresh iterators to uniformly random keys; an op is
    /// "found" when the iterator lands on the key itself.
    func seekRandom(_ s: inout Session, _ env: inout ThreadEnv, _ rec: inout Recorder, count: Int) throws {
        for _ in 0..<count {
            env.key.set(env.rand.uniform(config.num))
            let (exact, bytes) = try s.seek(env.key.bytes)
            rec.reads += 1
            if exact {
                rec.found += 1
                rec.bytes += bytes
            }
            rec.finished()
        }
    }

    /// readwhilewriting's writer: random puts until `stop` is raised (every reader is done).
    func writeUntil(_ stop: StopFlag, _ s: inout Session, _ env: inout ThreadEnv, _ rec: inout Recorder) throws {
        var ops = QueuedOps(batchSize: s.batchSize)
        let entryBytes = config.keySize + config.valueSize
        while !stop.isRaised {
            env.key.set(env.rand.uniform(config.num))
            try s.put(env.key.bytes, pool.next(config.valueSize, &env.values))
            rec.bytes += entryBytes
            try ops.add(&s, &rec)
        }
        try ops.finish(&s, &rec)
    }
}
