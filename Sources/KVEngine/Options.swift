import KVBase
import KVFileSystem
import KVLog

/// When an acknowledged write reaches stable storage. In every mode the WAL record is handed
/// to the OS before the write is acknowledged, so acknowledged writes survive a process crash
/// (kill -9); the modes differ in what survives a power loss.
public enum Durability: String, Sendable, CaseIterable {
    /// Acknowledged only after the WAL record is fsynced (group commit shares one fsync
    /// among concurrent writers). Survives power loss.
    case always
    /// A background thread fsyncs the WAL once a second: at most about a second of
    /// acknowledged writes can be lost to a power loss. The default.
    case everysec
    /// Never fsynced by the write path; the OS writes back when it chooses.
    case no
}

/// Block compression of sorted tables.
public enum Compression: String, Sendable {
    /// LZ4 (liblz4); a block is stored raw when LZ4 saves less than 12.5%.
    case lz4
    /// No compression.
    case none
}

/// Options for ``Database/open(at:options:)``. Defaults follow LevelDB/RocksDB practice.
public struct Options: Sendable {
    /// The file system all engine I/O goes through. Default: the real one.
    public var fileSystem: any FileSystem = POSIXFileSystem()
    /// Default durability of writes (each write may override it). Default `.everysec`.
    public var durability: Durability = .everysec
    /// Memtable budget in bytes before it is flushed to an L0 table. Default 16 MiB (a
    /// larger skiplist leaves the CPU caches: see DESIGN.md "Performance notes").
    public var writeBufferSize: Int = 16 << 20
    /// Create the database directory when it does not exist. Default true.
    public var createIfMissing = true
    /// Fail if the database already exists. Default false.
    public var errorIfExists = false
    /// How the write-ahead logs are read on open (``RecoveryMode``, the log reader's modes).
    /// Default `.tolerateTornTail`: a record torn at the end by a crash is dropped, damage
    /// followed by valid records is corruption. `.strict` refuses any damage; `.skipCorrupt`
    /// salvages what can be read (and may lose acknowledged writes).
    public var walRecovery: RecoveryMode = .tolerateTornTail

    /// Uncompressed size of a table data block. Default 4 KiB.
    public var blockSize: Int = 4096
    /// Entries between restart points in table data blocks (LevelDB's
    /// `block_restart_interval`): a point lookup binary-searches the restart points, then
    /// scans at most this many entries; a larger interval prefix-compresses more keys.
    /// Default 16.
    public var blockRestartInterval: Int = 16
    /// Compression of table blocks. Default LZ4.
    public var compression: Compression = .lz4
    /// Bloom filter bits per key in each table (0 = no filter). Default 10 (~1% false positives).
    public var bloomBitsPerKey: Int = 10
    /// Byte budget of the shared block cache (0 = no cache). Default 32 MiB.
    public var blockCacheCapacity: Int = 32 << 20
    /// Byte budget of the row cache, which keeps hot key → value results in front of the
    /// block cache (0 = off). Default off.
    public var rowCacheCapacity: Int = 0
    /// Record the block cache's hot blocks at clean close and preload them in the background
    /// at the next open. Default true.
    public var cacheWarming = true
    /// Table files kept open at once. Default 1000.
    public var maxOpenFiles: Int = 1000
    /// Full memtables that may wait for their flush before writes wait. Default 2.
    public var maxImmutableMemtables: Int = 2

    /// Target size of a table written by compaction. Default 64 MiB.
    public var targetFileSize: Int = 64 << 20
    /// Byte budget of level 1; each deeper level gets `levelSizeMultiplier` times more.
    /// Default 256 MiB.
    public var maxBytesForLevelBase: Int = 256 << 20
    /// Size ratio between adjacent levels. Default 10.
    public var levelSizeMultiplier: Int = 10
    /// Level-0 file count that triggers a compaction. Default 4.
    public var level0CompactionTrigger = 4
    /// Level-0 file count at which each write is delayed by about 1 ms. Default 8.
    public var level0SlowdownTrigger = 8
    /// Level-0 file count at which writes wait for compaction. Default 12.
    public var level0StopTrigger = 12
    /// Decides during compaction whether an entry should be dropped (for example an expired
    /// TTL). Called with the user key and value of the newest version of a key that no
    /// snapshot needs; returning true deletes the key. Nil: keep everything. Must be fast and
    /// must not call back into the database.
    public var compactionFilter: (@Sendable (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) -> Bool)?
    /// Like ``compactionFilter``, for filters that must read other keys to decide (a
    /// collection element whose metadata row is gone): `lookup` reads the database as of the
    /// oldest snapshot any reader holds, so what it finds dead is dead for every reader. A
    /// lookup error should keep the entry.
    package var compactionLookupFilter: (@Sendable (
        _ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer,
        _ lookup: (UnsafeRawBufferPointer) throws(KVError) -> [UInt8]?) -> Bool)?
    /// Called with every committed group of writes, in commit order, once its WAL record is
    /// written and before any later group commits: the encoded write batch (its header holds
    /// the first sequence number and the count). For a replication log. Must be quick and must
    /// not call back into the database.
    public var commitObserver: (@Sendable (_ batch: [UInt8]) -> Void)?
    /// Test hook: called at the start of each background compaction (may sleep to slow
    /// compaction down).
    package var compactionHook: (@Sendable () -> Void)?

    /// Default options.
    public init() {}

    /// Checks every setting; throws ``KVError/invalidArgument(_:)`` naming the bad one.
    public func validate() throws(KVError) {
        if writeBufferSize < 4096 || writeBufferSize > 4 << 30 {
            throw .invalidArgument("writeBufferSize must be between 4 KiB and 4 GiB, got \(writeBufferSize)")
        }
        if blockRestartInterval < 1 || blockRestartInterval > 1024 {
            throw .invalidArgument("blockRestartInterval must be between 1 and 1024, got \(blockRestartInterval)")
        }
        if blockSize < 256 || blockSize > 4 << 20 {
            throw .invalidArgument("blockSize must be between 256 B and 4 MiB, got \(blockSize)")
        }
        if bloomBitsPerKey < 0 || bloomBitsPerKey > 64 {
            throw .invalidArgument("bloomBitsPerKey must be between 0 and 64, got \(bloomBitsPerKey)")
        }
        if blockCacheCapacity < 0 { throw .invalidArgument("blockCacheCapacity must not be negative") }
        if rowCacheCapacity < 0 { throw .invalidArgument("rowCacheCapacity must not be negative") }
        if maxOpenFiles < 16 { throw .invalidArgument("maxOpenFiles must be at least 16, got \(maxOpenFiles)") }
        if targetFileSize < 4096 { throw .invalidArgument("targetFileSize must be at least 4 KiB, got \(targetFileSize)") }
        if maxBytesForLevelBase < 4096 {
            throw .invalidArgument("maxBytesForLevelBase must be at least 4 KiB, got \(maxBytesForLevelBase)")
        }
        if levelSizeMultiplier < 2 { throw .invalidArgument("levelSizeMultiplier must be at least 2") }
        if !(1 <= level0CompactionTrigger && level0CompactionTrigger <= level0SlowdownTrigger
            && level0SlowdownTrigger <= level0StopTrigger)
        {
            throw .invalidArgument(
                "level-0 triggers must satisfy 1 <= compaction (\(level0CompactionTrigger)) <= slowdown (\(level0SlowdownTrigger)) <= stop (\(level0StopTrigger))")
        }
        if maxImmutableMemtables < 1 || maxImmutableMemtables > 16 {
            throw .invalidArgument("maxImmutableMemtables must be between 1 and 16, got \(maxImmutableMemtables)")
        }
    }
}
