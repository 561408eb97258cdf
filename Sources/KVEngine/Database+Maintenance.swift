import KVBase
import KVTable

extension Database {
    /// Reads every block of every live table and checks every checksum.
    ///
    /// - Throws: ``KVError/corruption(file:offset:reason:)`` naming the first damaged table
    ///   and block offset.
    public func verify() throws {
        let version = try readView(nil).version
        for level in version.files {
            for f in level {
                try tables.reader(f.number).verify()
            }
        }
    }

    /// A copy of the engine's statistics.
    public var stats: DatabaseStats {
        let (version, counters, imm, memBytes, seq) = state.withLock { s in
            (s.version, s.stats, s.imm.count, s.mem.approximateMemoryUsage + s.imm.reduce(0) { $0 + $1.approximateMemoryUsage }, s.lastSequence)
        }
        let bloom = tables.bloomStatistics()
        return DatabaseStats(
            levelFiles: (0..<numLevels).map { version.fileCount($0) },
            levelBytes: (0..<numLevels).map { version.bytes($0) },
            flushes: counters.flushes,
            flushBytes: counters.flushBytes,
            userBytesWritten: counters.userBytesWritten,
            walBytesWritten: counters.walBytesWritten,
            blockCacheHits: tables.blockCache?.statistics.hits ?? 0,
            blockCacheMisses: tables.blockCache?.statistics.misses ?? 0,
            compactions: counters.compactions,
            trivialMoves: counters.trivialMoves,
            compactionBytesRead: counters.compactionBytesRead,
            compactionBytesWritten: counters.compactionBytesWritten,
            compactionSeconds: Double(counters.compactionNanos) / 1e9,
            compactionEntriesDropped: counters.compactionEntriesDropped,
            stallSlowdowns: counters.slowdowns,
            stallStops: counters.stops,
            stallSeconds: Double(counters.stallNanos) / 1e9,
            rowCacheHits: rowCache?.cache.statistics.hits ?? 0,
            rowCacheMisses: rowCache?.cache.statistics.misses ?? 0,
            bloomUseful: bloom.useful,
            bloomChecked: bloom.checked,
            warmedBlocks: warmingDone.loaded.load(ordering: .acquiring),
            lastSequence: seq,
            immutableMemtables: imm,
            memtableBytes: memBytes)
    }
}
