import Foundation
import Shale
import Synchronization

/// The in-process engine as a ``BenchTarget``: one ``Database`` in `--db`.
///
/// This file is the one place that knows which engine settings and APIs exist: how the
/// flags map to ``Options``, how a full compaction is requested and which statistics are
/// reported. Flags the engine cannot apply are listed in ``notes`` rather than ignored.
final class EngineTarget: BenchTarget {
    let path: String
    let options: Options
    let notes: [String]
    private let database: Mutex<Database?>

    /// Opens (creating if needed) the database in `config.dbPath`; with `fresh`, deletes
    /// whatever is there first.
    init(config: BenchConfig, fresh: Bool) throws {
        path = config.dbPath
        (options, notes) = Self.options(for: config)
        if fresh { try Self.destroy(path) }
        database = Mutex(try Database.open(at: path, options: options))
    }

    /// The flags as engine options, and notes on those that could not be applied.
    static func options(for config: BenchConfig) -> (Options, [String]) {
        var o = Options()
        let notes: [String] = []
        o.durability = Durability(rawValue: config.durability.rawValue) ?? .no
        if let v = config.writeBufferSize { o.writeBufferSize = v }
        if let v = config.blockSize { o.blockSize = v }
        if let v = config.blockRestartInterval { o.blockRestartInterval = v }
        o.compression = config.compression == .lz4 ? .lz4 : .none
        if let v = config.bloomBits { o.bloomBitsPerKey = v }
        if let v = config.cacheSize { o.blockCacheCapacity = v }
        return (o, notes)
    }

    var summary: String {
        "Shale engine in \(path) (write buffer \(options.writeBufferSize) B, block \(options.blockSize) B, "
            + "\(options.compression.rawValue), bloom \(options.bloomBitsPerKey) bits/key, cache \(options.blockCacheCapacity) B, "
            + "durability \(options.durability.rawValue))"
    }

    func unsupportedReason(_ requirement: Benchmark.Requirement) -> String? {
        requirement == .collections ? "hashes, lists, sets and sorted sets need a ShardedStore: pass --shards N (or --server)" : nil
    }

    func makeSession(durability: DurabilityFlag) throws -> EngineSession {
        EngineSession(db: try current(), durability: Durability(rawValue: durability.rawValue) ?? .no)
    }

    func reset() throws {
        try takeDatabase()?.close()
        try Self.destroy(path)
        let reopened = try Database.open(at: path, options: options)
        database.withLock { $0 = reopened }
    }

    func compactAll() throws {
        try current().compactRange(nil, nil)
    }

    func diskUsage() -> Int? { directorySize(path) }

    func statistics() -> JSONValue? {
        guard let db = try? current() else { return nil }
        let s = db.stats
        return .object([
            ("write_amplification", .number(s.writeAmplification)),
            ("user_bytes_written", .integer(Int(s.userBytesWritten))),
            ("wal_bytes_written", .integer(Int(s.walBytesWritten))),
            ("flushes", .integer(s.flushes)),
            ("flush_bytes", .integer(Int(s.flushBytes))),
            ("compactions", .integer(s.compactions)),
            ("trivial_moves", .integer(s.trivialMoves)),
            ("compaction_bytes_read", .integer(Int(s.compactionBytesRead))),
            ("compaction_bytes_written", .integer(Int(s.compactionBytesWritten))),
            ("compaction_seconds", .number(s.compactionSeconds)),
            ("stall_slowdowns", .integer(s.stallSlowdowns)),
            ("stall_stops", .integer(s.stallStops)),
            ("stall_seconds", .number(s.stallSeconds)),
            ("block_cache_hits", .integer(s.blockCacheHits)),
            ("block_cache_misses", .integer(s.blockCacheMisses)),
            ("level_files", .array(s.levelFiles.map { .integer($0) })),
            ("level_bytes", .array(s.levelBytes.map { .integer(Int($0)) })),
            ("memtable_bytes", .integer(s.memtableBytes)),
        ])
    }

    func close() throws {
        try takeDatabase()?.close()
    }

    /// Removes the open database from the target (closing it is the caller's job, outside
    /// the lock).
    private func takeDatabase() -> Database? {
        database.withLock { db in
            defer { db = nil }
            return db
        }
    }

    private func current() throws -> Database {
        guard let db = database.withLock({ $0 }) else { throw BenchError("the database is closed") }
        return db
    }

    /// Removes the database directory and everything in it (missing is not an error).
    static func destroy(_ path: String) throws {
        if FileManager.default.fileExists(atPath: path) {
            try FileManager.default.removeItem(atPath: path)
        }
    }
}
