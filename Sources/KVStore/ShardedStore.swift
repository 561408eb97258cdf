import Atomics
import KVBase
import KVEngine
import KVFileSystem
import KVIndex
import KVLayout
import Synchronization

/// A key-value store spread over several ``Database`` engines (shards) by key hash, with
/// online resharding.
///
/// ```swift
/// let store = try ShardedStore.open(at: "/var/lib/app/store", shards: 8)
/// try store.put("user:1", "alice")
/// let v = try store.get("user:1")
/// for (k, v) in try store.scan(prefix: Array("user:".utf8)) { ... }   // merged, in key order
/// try store.setShardCount(12)                                        // moves ~1/3 of the keys
/// try store.close()
/// ```
///
/// **Routing.** A key maps to one of 16384 slots by CRC16 with Redis `{hash tag}`s (see
/// ``HashSlot``); slots map to shards by a consistent ring (see `HashRing`) whose slot table is
/// persisted in the store descriptor (`STORE`, see StoreDescriptor.swift). Each shard is a full engine in
/// `shard-NNNN/` below the store directory. A key is only ever read from, and written to, the
/// shard that owns its slot in the table in force.
///
/// **Atomicity.** A ``write(_:durability:)`` whose keys all fall in one shard (for example keys
/// sharing a hash tag) is atomic. A batch spanning several shards is split and applied shard
/// by shard: atomic per shard, not across shards; if one part fails, parts already applied
/// stay applied.
///
/// **Consistency of reads.** ``snapshot()`` pins every shard at one moment per shard; writes
/// that commit while the snapshot is being taken may be visible in one shard and not in
/// another: it is per-shard consistent, not a global cut. Scans and ``count(snapshot:)`` read
/// through such a snapshot.
///
/// **Resharding.** ``setShardCount(_:)`` moves only the slots whose owner changes, while reads
/// and writes continue; see the method for the protocol and its crash guarantees.
///
/// Thread safety: every method may be called from any thread. Store state sits in one
/// `Mutex`-guarded `State`; no file I/O happens under it (per-shard `Database.snapshot()`
/// calls, which take only the engine's mutex, are the one exception, so that a store snapshot
/// never straddles an ownership switch).
///
/// Errors: methods throw ``KVError``. Errors from a shard name the shard's files (its
/// directory is `shard-NNNN`); store-level errors name the store path or descriptor.
public final class ShardedStore: Sendable {
    /// The store directory.
    public let path: String
    /// The largest shard count.
    public static let maxShards = HashRing.maxShards

    let options: Options
    var fs: any FileSystem { options.fileSystem }
    let lock: any FileLock
    let state: Mutex<State>
    /// The routing, closed flag and reshard gate as the per-operation paths read them, with no
    /// lock (see ``RouteView``); republished by ``publishView(_:)`` under `state`.
    let view: ManagedAtomic<RouteView>
    /// Writes in flight per slot (see ``SlotCounters``).
    let inflight = SlotCounters(count: HashSlot.count)
    /// Mirror of `state.routing.generation`, read without the lock after a point read.
    let routingGeneration = Atomic<UInt64>(0)
    /// Told of every shard opened and every group committed (the replication backlog).
    let commitFeed: (any CommitFeed)?
    /// Wakes the store's waits (see ``WaitEvents``).
    let events = WaitEvents()
    /// Serialize writes to one key (see `KeyLocks`).
    let keyLocks = KeyLocks()
    /// Transactions and WATCH (see ShardedStore+Transaction.swift).
    let transactions = TransactionState()
    /// The live secondary indexes, as the write path reads them (also owned by `indexManager`).
    let indexCatalog: IndexCatalog
    /// Index maintenance, back-fills and queries (see ``IndexManager``).
    let indexManager: IndexManager
    /// Whether the store follows a leader: replication writes its index metadata and
    /// entries, so nothing here builds or drops indexes.
    let followingLeader = Atomic<Bool>(false)
    /// Added to the wall clock (tests of expiry).
    let clockOffset = Atomic<Int64>(0)
    /// When not 0, the store's clock stands at this time (tests of expiry).
    let frozenClock = Atomic<Int64>(0)
    /// The last collection version handed out (see ``CollectionLayout``).
    let lastCollectionVersion = Atomic<UInt64>(0)

    /// Everything guarded by the store mutex, grouped by concern: routing and lifecycle here,
    /// resharding in ``ReshardState``, leftover cleanup in ``CleanupState``. (Index work keeps
    /// its own state in KVIndex's `IndexManager`.) One mutex guards all of it because a
    /// reshard's switch changes routing, migration and cleanup together.
    struct State {
        /// The slot table in force and the shards it routes to.
        var routing: Routing
        /// Every open shard by id. Longer than `routing.shards` while a reshard adds shards
        /// or removed shards await deletion; nil for a directory that is not open.
        var shards: [Shard?]
        /// The descriptor last written.
        var descriptor: StoreDescriptor
        var closed = false
        /// Set by the crash-test hooks: no more I/O of any kind.
        var halted = false
        var reshard = ReshardState()
        var cleanup: CleanupState

        init(routing: Routing, shards: [Shard?], descriptor: StoreDescriptor, cleanup plan: CleanupPlan?) {
            self.routing = routing
            self.shards = shards
            self.descriptor = descriptor
            cleanup = CleanupState(plan: plan)
        }
    }

    /// What a reshard keeps: its copy phase, whether one runs, its failure and its figures.
    struct ReshardState {
        /// The copy phase of a running reshard.
        var migration: Migration?
        var running = false
        /// The failure of the last reshard or cleanup, reported by `waitForReshard`.
        var error: KVError?
        var keysMoved = 0
        /// Keys the last reshard copied again because they were written during its copy.
        var keysCaughtUp = 0
        /// How long the last switch held writes to moving slots.
        var gateHeld: Duration = .zero
        /// The crash-test hook called at every step.
        var hook: (@Sendable (ReshardStep) -> Bool)?
    }

    /// What the cleanup after a switch or an aborted reshard keeps.
    struct CleanupState {
        /// Work left (deleting leftovers, removing shards); nil when none.
        var plan: CleanupPlan?
        var running = false
        /// Removed shards whose deletion waits for store snapshots and scans to end.
        var waitingForReaders: [Shard] = []
        var keysDeleted = 0
        /// Run cleanups on the calling thread instead of a background thread (tests).
        var synchronous = false
    }

    /// A reshard's copy phase. Invariant: while it exists, writes to slots with `moving[slot]`
    /// record their keys in `dirty` when they complete, and none start while `gateClosed`.
    struct Migration {
        let moving: [Bool]
        let oldOwners: [UInt16]
        let newOwners: [UInt16]
        var dirty: Set<[UInt8]> = []
        var gateClosed = false
        /// The switch failed after its rename: it is unknown which descriptor a restart will
        /// find, so writes to moving slots fail until the store is reopened.
        var failure: KVError?

        /// Whether any of `slots` is moving.
        func touches(_ slots: [Int]) -> Bool {
            slots.contains { moving[$0] }
        }
    }

    init(
        path: String, options: Options, lock: any FileLock, descriptor: StoreDescriptor, shards: [Shard?], cleanup: CleanupPlan?,
        commitFeed: (any CommitFeed)? = nil
    ) {
        self.path = path
        self.commitFeed = commitFeed
        self.options = options
        self.lock = lock
        let catalog = IndexCatalog()
        indexCatalog = catalog
        indexManager = IndexManager(catalog: catalog)
        let owning = (0..<descriptor.shardCount).map { shards[$0]! }
        let routing = Routing(generation: 1, owners: descriptor.owners, shards: owning)
        state = Mutex(State(routing: routing, shards: shards, descriptor: descriptor, cleanup: cleanup))
        view = ManagedAtomic(RouteView(routing: routing, closed: false, moving: nil, gateClosed: false, failure: nil))
        routingGeneration.store(1, ordering: .releasing)
    }

    /// Opens (and by default creates) the store in `path`.
    ///
    /// A new store is created with `shards` shards. An existing store must be opened with its
    /// current shard count or with `shards: nil`; to change the count, open it and call
    /// ``setShardCount(_:)``. A reshard interrupted by a crash is resolved first: rolled back
    /// when the switch had not happened (the count is then the old one), finished otherwise
    /// (the new one); the leftover deletion continues in the background.
    ///
    /// - Parameters:
    ///   - shards: the shard count, `1...maxShards`; required to create a store.
    ///   - options: engine options applied to every shard. Memory budgets
    ///     (`writeBufferSize`, `blockCacheCapacity`) are per shard. `createIfMissing` and
    ///     `errorIfExists` apply to the store.
    /// - Throws: ``KVError/invalidArgument(_:)`` when `shards` differs from the count on disk or
    ///   is out of range; ``KVError/invalidState(_:)`` when the descriptor describes a layout
    ///   this build cannot route (another slot count); ``KVError/corruption(file:offset:reason:)``
    ///   naming `STORE` when the descriptor is damaged; ``KVError/locked(path:)`` when the store
    ///   is open elsewhere; any error opening a shard.
    ///   - followingLeader: the store is a replication follower's (see
    ///     ``setFollowingLeader(_:)``): its index metadata is loaded as replication left it and
    ///     no index work resumes.
    ///   - commitFeed: told of every shard opened and every write group committed, from the
    ///     first shard opened on (the replication backlog; see ``CommitFeed``).
    public static func open(
        at path: String, shards: Int? = nil, options: Options = Options(), followingLeader: Bool = false,
        commitFeed: (any CommitFeed)? = nil
    ) throws -> ShardedStore {
        try openStore(at: path, shards: shards, options: options, followingLeader: followingLeader, commitFeed: commitFeed)
    }

    /// Whether a store (its descriptor) exists in `path`, on `options`' file system.
    public static func exists(at path: String, options: Options = Options()) -> Bool {
        options.fileSystem.fileExists(joinPath(path, StoreDescriptor.fileName))
    }

    /// The number of shards owning slots (during a reshard, the count in force).
    public var shardCount: Int {
        state.withLock { $0.routing.shards.count }
    }

    /// The shard that owns `key`'s slot now.
    public func shard(for key: [UInt8]) -> Int {
        let slot = HashSlot.slot(of: key)
        return state.withLock { Int($0.routing.owners[slot]) }
    }

    /// The shard that owns a UTF-8 string key's slot now.
    public func shard(for key: String) -> Int {
        shard(for: Array(key.utf8))
    }

    /// The routing in force; throws ``KVError/closed`` after ``close()``.
    package func currentRouting() throws(KVError) -> Routing {
        let v = view.load(ordering: .acquiring)
        if v.closed { throw .closed }
        return v.routing
    }

    /// Publishes what `s` says of routing, closing and the reshard gate to the lock-free
    /// paths. Called with the store mutex held, after every change of those fields.
    func publishView(_ s: State) {
        view.store(
            RouteView(routing: s.routing, closed: s.closed, moving: s.reshard.migration?.moving,
                      gateClosed: s.reshard.migration?.gateClosed ?? false, failure: s.reshard.migration?.failure),
            ordering: .sequentiallyConsistent)
        events.signal()
    }

    /// Flushes every shard's memtable to a table; see ``Database/flush()``.
    public func flush() throws {
        for shard in try currentRouting().shards { try shard.db.flush() }
    }

    /// Compacts the key range `lower..<upper` (nil: open) in every shard; see
    /// ``Database/compactRange(_:_:)``.
    public func compactRange(_ lower: [UInt8]?, _ upper: [UInt8]?) throws {
        for shard in try currentRouting().shards { try shard.db.compactRange(lower, upper) }
    }

    /// Checks every checksum of every shard (``Database/verify()``) and, unless a reshard is
    /// in progress, that no shard holds a key of a slot it does not own.
    ///
    /// - Throws: the first corruption found; ``KVError/corruption(file:offset:reason:)``
    ///   naming the shard directory when a shard holds foreign keys.
    public func verify() throws {
        let (routing, settled) = try state.withLock { (s) throws(KVError) in
            if s.closed { throw KVError.closed }
            return (s.routing, s.reshard.migration == nil && s.cleanup.plan == nil)
        }
        for shard in routing.shards {
            try shard.db.verify()
            guard settled else { continue }
            let foreign = try foreignKeyCount(shard, owners: routing.owners)
            if foreign > 0 {
                throw KVError.corruption(
                    file: shard.path, offset: 0,
                    reason: "shard \(shard.id) holds \(foreign) keys of slots it does not own")
            }
        }
    }

    /// Stops background work, closes every shard and releases the store lock. An unfinished
    /// cleanup resumes at the next open. Later calls fail with ``KVError/closed``; closing
    /// twice is not an error.
    public func close() throws {
        try closeStore()
    }

    deinit {
        _ = try? closeStore()
    }
}
