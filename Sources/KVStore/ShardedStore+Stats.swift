import KVBase
import KVEngine
import KVFileSystem

/// One shard of a store and the slots it owns.
public struct ShardInfo: Sendable, Equatable {
    /// The shard id, `0..<shardCount`.
    public var id: Int
    /// The shard's database directory.
    public var path: String
    /// The owned slots as ascending maximal ranges (the shape of Redis `CLUSTER SLOTS`).
    public var slotRanges: [ClosedRange<Int>]
    /// Number of owned slots.
    public var slotCount: Int
}

/// Statistics of one shard.
public struct ShardStats: Sendable {
    /// The shard id.
    public var id: Int
    /// The shard's database directory.
    public var path: String
    /// Number of owned slots.
    public var slots: Int
    /// Keys in owned slots; nil unless counted (see ``ShardedStore/stats(countingKeys:)``).
    public var keys: Int?
    /// Total size of the shard's files.
    public var bytesOnDisk: UInt64
    /// The engine's statistics (levels, flushes, compactions, stalls, cache).
    public var database: DatabaseStats
    /// Table files per level.
    public var levelFiles: [Int] { database.levelFiles }
    /// Table bytes per level.
    public var levelBytes: [UInt64] { database.levelBytes }
}

/// Statistics of a store: every shard and their sum.
public struct StoreStats: Sendable {
    /// Every shard owning slots, by id.
    public var shards: [ShardStats]
    /// Total keys; nil unless counted.
    public var keys: Int?
    /// Total size of all shards' files.
    public var bytesOnDisk: UInt64
    /// Table files per level, summed over shards.
    public var levelFiles: [Int]
    /// Table bytes per level, summed over shards.
    public var levelBytes: [UInt64]
    /// See ``ShardedStore/reshardingInProgress``.
    public var reshardingInProgress: Bool
    /// See ``ShardedStore/keysMovedByLastReshard``.
    public var keysMovedByLastReshard: Int
}

extension ShardedStore {
    /// The shards owning slots, with their slot ranges.
    public var shards: [ShardInfo] {
        let routing = state.withLock { $0.routing }
        return routing.shards.map { shard in
            let ranges = HashRing.ranges(of: shard.id, in: routing.owners)
            return ShardInfo(id: shard.id, path: shard.path, slotRanges: ranges, slotCount: ranges.reduce(0) { $0 + $1.count })
        }
    }

    /// Per-shard and total statistics.
    ///
    /// - Parameter countingKeys: also count keys, by scanning every shard (O(keys)).
    public func stats(countingKeys: Bool = false) throws -> StoreStats {
        let routing = try currentRouting()
        let snap = countingKeys ? snapshot() : nil
        defer { snap?.release() }
        var shards: [ShardStats] = []
        for shard in routing.shards {
            var bytes: UInt64 = 0
            for name in (try? fs.listDirectory(shard.path)) ?? [] {
                bytes += (try? fs.fileSize(joinPath(shard.path, name))) ?? 0
            }
            var keys: Int?
            if let snap {
                keys = try ownedKeyCount(shard, owners: snap.routing.owners, snapshot: snap.snapshots[shard.id])
            }
            shards.append(ShardStats(
                id: shard.id, path: shard.path, slots: routing.owners.reduce(0) { $0 + (Int($1) == shard.id ? 1 : 0) },
                keys: keys, bytesOnDisk: bytes, database: shard.db.stats))
        }
        let levels = shards.first?.database.levelFiles.count ?? 0
        var files = [Int](repeating: 0, count: levels)
        var levelBytes = [UInt64](repeating: 0, count: levels)
        for s in shards {
            for l in 0..<min(levels, s.levelFiles.count) {
                files[l] += s.levelFiles[l]
                levelBytes[l] += s.levelBytes[l]
            }
        }
        return StoreStats(
            shards: shards, keys: countingKeys ? shards.reduce(0) { $0 + ($1.keys ?? 0) } : nil,
            bytesOnDisk: shards.reduce(0) { $0 + $1.bytesOnDisk }, levelFiles: files, levelBytes: levelBytes,
            reshardingInProgress: reshardingInProgress, keysMovedByLastReshard: keysMovedByLastReshard)
    }

    // MARK: package seams (tests, and the layers above)

    /// The open database of every shard owning slots, by shard id.
    package var shardDatabases: [Database] {
        state.withLock { $0.routing.shards.map(\.db) }
    }

    /// Installs a hook called at each step of a reshard and cleanup; returning true halts
    /// the store there as a crash would (no further I/O), for crash tests.
    package func setReshardHook(_ hook: (@Sendable (ReshardStep) -> Bool)?) {
        state.withLock { $0.reshard.hook = hook }
    }

    /// Runs cleanups on the thread that triggers them instead of a background thread.
    package func setSynchronousCleanup(_ on: Bool) {
        state.withLock { $0.cleanup.synchronous = on }
    }

    /// Keys the last reshard copied again because they were written during its copy phase.
    package var keysCaughtUpByLastReshard: Int {
        state.withLock { $0.reshard.keysCaughtUp }
    }

    /// How long the last switch held writes to moving slots.
    package var lastGateHeld: Duration {
        state.withLock { $0.reshard.gateHeld }
    }

    /// Keys deleted from old owners by the last completed cleanup.
    package var keysDeletedByLastCleanup: Int {
        state.withLock { $0.cleanup.keysDeleted }
    }
}
