import KVBase

/// Counters kept under the database mutex.
struct EngineStatsCounters: Sendable {
    var flushes = 0
    var flushBytes: UInt64 = 0
    var userBytesWritten: UInt64 = 0
    var walBytesWritten: UInt64 = 0
    var compactions = 0
    var trivialMoves = 0
    var compactionBytesRead: UInt64 = 0
    var compactionBytesWritten: UInt64 = 0
    var compactionNanos: UInt64 = 0
    var compactionEntriesDropped = 0
    var slowdowns = 0
    var stops = 0
    var stallNanos: UInt64 = 0
}

/// A point-in-time copy of a database's statistics.
public struct DatabaseStats: Sendable, CustomStringConvertible {
    /// Table files per level.
    public var levelFiles: [Int]
    /// Table bytes per level.
    public var levelBytes: [UInt64]
    /// Memtable flushes completed.
    public var flushes: Int
    /// Bytes written to tables by flushes.
    public var flushBytes: UInt64
    /// Bytes of keys and values written by users.
    public var userBytesWritten: UInt64
    /// Bytes appended to the WAL.
    public var walBytesWritten: UInt64
    /// Block-cache hits and misses.
    public var blockCacheHits: Int
    public var blockCacheMisses: Int
    /// Compactions run (trivial moves excluded) and trivial moves.
    public var compactions: Int
    public var trivialMoves: Int
    /// Bytes read and written by compactions.
    public var compactionBytesRead: UInt64
    public var compactionBytesWritten: UInt64
    /// Time spent compacting, in seconds.
    public var compactionSeconds: Double
    /// Entries dropped by compactions (overwritten, deleted, filtered).
    public var compactionEntriesDropped: Int
    /// Writes delayed by the level-0 slowdown trigger.
    public var stallSlowdowns: Int
    /// Times writers waited for compaction or flush (level-0 stop trigger, full memtables).
    public var stallStops: Int
    /// Total time writers spent stalled, in seconds.
    public var stallSeconds: Double
    /// Write amplification: bytes written to the WAL, by flushes and by compactions, over
    /// bytes written by users.
    public var writeAmplification: Double {
        userBytesWritten == 0 ? 0 : Double(walBytesWritten + flushBytes + compactionBytesWritten) / Double(userBytesWritten)
    }
    /// Row-cache hits and misses (zero when the row cache is off).
    public var rowCacheHits: Int
    public var rowCacheMisses: Int
    /// Point lookups a table's bloom filter answered "absent" without reading a data block,
    /// and lookups that passed the filter.
    public var bloomUseful: Int
    public var bloomChecked: Int
    /// Blocks preloaded by cache warming at the last open (-1 while running or not run).
    public var warmedBlocks: Int
    /// Sequence number of the last write.
    public var lastSequence: SequenceNumber
    /// Immutable memtables waiting for their flush.
    public var immutableMemtables: Int
    /// Bytes held by memtables.
    public var memtableBytes: Int

    public var description: String {
        var lines = ["last sequence: \(lastSequence)", "memtables: \(memtableBytes) bytes, \(immutableMemtables) waiting"]
        for (level, n) in levelFiles.enumerated() where n > 0 {
            lines.append("L\(level): \(n) files, \(levelBytes[level]) bytes")
        }
        lines.append("flushes: \(flushes) (\(flushBytes) bytes)")
        lines.append("user bytes: \(userBytesWritten), WAL bytes: \(walBytesWritten)")
        lines.append("compactions: \(compactions) (+\(trivialMoves) moves), read \(compactionBytesRead) B, wrote \(compactionBytesWritten) B in \(compactionSeconds) s")
        lines.append("stalls: \(stallSlowdowns) slowdowns, \(stallStops) stops, \(stallSeconds) s")
        lines.append("write amplification: \(writeAmplification)")
        lines.append("block cache: \(blockCacheHits) hits, \(blockCacheMisses) misses")
        lines.append("row cache: \(rowCacheHits) hits, \(rowCacheMisses) misses")
        lines.append("bloom: \(bloomUseful) of \(bloomChecked) lookups skipped a data block")
        return lines.joined(separator: "\n")
    }
}
