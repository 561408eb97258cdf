import Atomics
import KVBase
import KVFileSystem
import KVLog
import Synchronization

/// One LSM-tree storage engine over one directory: write-ahead log, memtable, and (from the
/// table layer up) sorted tables and compaction.
///
/// ```swift
/// let db = try Database.open(at: "/var/lib/app/db")
/// try db.put("k", "v")
/// let v = try db.get("k")          // Array("v".utf8)
/// try db.close()
/// ```
///
/// Thread safety: every method may be called from any thread. Writes from concurrent threads
/// are committed in groups (one WAL write and at most one fsync per group).
///
/// Errors: methods throw ``KVError``. After a failed WAL write or sync the error is latched:
/// every later write fails with ``KVError/backgroundError(cause:)`` while reads keep working,
/// until the database is reopened.
public final class Database: Sendable {
    /// The database directory.
    public let path: String
    let options: Options
    let fs: any FileSystem
    let state: ConditionMutex<State>
    /// What point reads and iterators pin, published under `state` whenever the memtables,
    /// the version, the last sequence or the closed flag change, so reads take no mutex (and
    /// never wait behind a memtable switch's fsyncs or a group commit).
    let readState: ManagedAtomic<ReadState>
    let snapshots = SnapshotList()
    let lock: any FileLock
    let tables: TableCache
    /// Hot key → value results; nil when `rowCacheCapacity` is 0.
    let rowCache: RowCache?
    /// Blocks preloaded by cache warming (-1 while it runs or when there was nothing to do).
    let warmingDone = WarmingProgress()
    /// Signalled when there is background work (a memtable to flush) or on close.
    let backgroundWork = Condition()
    /// Broadcast after each background step (writers waiting for room, `flush()` callers).
    let backgroundDone = Condition()
    /// Signalled when the database closes (wakes the WAL syncer).
    let closing = Condition()
    /// Signalled when the group-commit queue becomes empty.
    let writersDrained = Condition()
    /// Signalled when the everysec syncer has exited.
    let syncerExited = Condition()

    /// Everything guarded by the database mutex.
    struct State {
        var mem: MemTable
        /// Memtables waiting to be written to tables, oldest first.
        var imm: [MemTable] = []
        var log: LogWriter
        var logFile: any WritableFile
        var logNumber: UInt64
        var lastSequence: SequenceNumber
        var nextFileNumber: UInt64
        /// Writers waiting to commit; the first is the current group-commit leader.
        var writers: [Writer] = []
        /// Latched error of a failed WAL write or sync: later writes fail with it.
        var backgroundError: KVError?
        var closed = false
        /// Whether the WAL has bytes written since the last fsync.
        var walDirty = false
        var syncerRunning = false
        /// The current set of table files.
        var version: Version
        /// Versions that readers or iterators may still hold (their files must stay).
        var liveVersions: [WeakVersion] = []
        /// Manifest writer; only the background thread appends to it after open.
        var manifest: LogWriter
        var manifestNumber: UInt64
        /// The log number recorded in the manifest: older WALs are obsolete.
        var versionLogNumber: UInt64
        var compactPointers: [[UInt8]] = Array(repeating: [], count: numLevels)
        /// Table numbers being written, protected from obsolete-file deletion.
        var pendingOutputs: Set<UInt64> = []
        var backgroundRunning = false
        /// A pending `compactRange` request.
        var manualCompaction: ManualCompaction?
        var stats = EngineStatsCounters()
    }

    /// A reference to a version that does not keep it alive.
    struct WeakVersion {
        weak var version: Version?
    }

    init(path: String, options: Options, lock: any FileLock, state: State, tables: TableCache) {
        self.path = path
        self.options = options
        self.fs = options.fileSystem
        self.lock = lock
        self.tables = tables
        self.rowCache = options.rowCacheCapacity > 0 ? RowCache(capacity: options.rowCacheCapacity) : nil
        self.readState = ManagedAtomic(ReadState(state))
        self.state = ConditionMutex(state)
    }

    /// Publishes the read state of `s`; called with the mutex held after every change of the
    /// memtables, the version, the last sequence or the closed flag.
    @inline(__always)
    func publishReadState(_ s: inout State) {
        readState.store(ReadState(s), ordering: .releasing)
    }

    /// Opens (and by default creates) the database in `path`, replaying its write-ahead log.
    ///
    /// - Throws: ``KVError/locked(path:)`` if another process or handle has it open;
    ///   ``KVError/corruption(file:offset:reason:)`` if its files are damaged beyond the
    ///   configured ``Options/walRecovery``; ``KVError/invalidArgument(_:)`` for bad options.
    public static func open(at path: String, options: Options = Options()) throws -> Database {
        try openDatabase(at: path, options: options)
    }

    /// The sequence number of the last committed write.
    public var lastSequence: SequenceNumber {
        state.withLock { $0.lastSequence }
    }

    /// A consistent view of the database as of now; see ``Snapshot``.
    public func snapshot() -> Snapshot {
        let seq = state.withLock { $0.lastSequence }
        return Snapshot(sequence: seq, list: snapshots)
    }

    /// Flushes the WAL to the OS and, in every durability mode, fsyncs it; stops background
    /// threads; releases the lock. Later calls fail with ``KVError/closed``. Calling `close`
    /// twice is not an error.
    public func close() throws {
        try closeDatabase()
    }

    deinit {
        _ = try? closeDatabase(fromDeinit: true)
    }
}

/// Blocks preloaded by cache warming; -1 until warming finishes (or when it did not run).
final class WarmingProgress: Sendable {
    let loaded = Atomic<Int>(-1)
}

/// One caller of `write` waiting in the group-commit queue.
// @unchecked Sendable: every field is read and written only under the database mutex, except
// `batch`, which the owner sets before queueing and the leader reads while holding the mutex.
final class Writer: @unchecked Sendable {
    let batch: WriteBatch
    let sync: Bool
    var done = false
    var error: KVError?
    let cond = Condition()

    init(batch: WriteBatch, sync: Bool) {
        self.batch = batch
        self.sync = sync
    }
}
