import Atomics
import KVBase
import KVEngine
import KVIndex
import Synchronization

/// One shard of a store: a ``Database`` in its own sub-directory.
package final class Shard: Sendable {
    /// The shard id (its position in the descriptor's directory list).
    package let id: Int
    /// The shard's database directory.
    package let path: String
    /// The shard's engine.
    package let db: Database
    /// Live store snapshots (and scans) that read this shard. A removed shard's directory is
    /// deleted only once none remain.
    let readers = Atomic<Int>(0)
    /// Signalled when a reader of the shard is released (or the store closes).
    let events = WaitEvents()

    init(id: Int, path: String, db: Database) {
        self.id = id
        self.path = path
        self.db = db
    }
}

/// An immutable slot → shard table with the shards it routes to. Replaced whole (under the
/// store mutex) when a reshard switches ownership; readers hold the instance they started with.
///
/// Invariant: `owners[slot] < shards.count` for every slot, and `shards[i].id == i`.
package final class Routing: Sendable {
    /// Incremented on every switch; a point read that sees it change retries.
    let generation: UInt64
    /// The shard id owning each slot.
    package let owners: [UInt16]
    /// The shards owning slots, by id.
    package let shards: [Shard]
    /// The same table and shards as the indexes see them.
    let indexLayout: IndexLayout

    init(generation: UInt64, owners: [UInt16], shards: [Shard]) {
        self.generation = generation
        self.owners = owners
        self.shards = shards
        indexLayout = IndexLayout(owners: owners, shards: shards.map { IndexShard(id: $0.id, path: $0.path, db: $0.db) })
    }

    /// The shard owning `slot`.
    @inline(__always)
    func shard(forSlot slot: Int) -> Shard {
        shards[Int(owners[slot])]
    }
}

/// What the per-operation paths read without the store mutex: the routing in force, whether
/// the store is closed, and a running reshard's gate. Immutable; a new one is published (under
/// the store mutex, sequentially consistent) whenever any of these change.
final class RouteView: AtomicReference, Sendable {
    let routing: Routing
    let closed: Bool
    /// The slots a reshard's copy phase moves; nil when none runs.
    let moving: [Bool]?
    /// Writes to moving slots wait while the switch holds the gate.
    let gateClosed: Bool
    /// The switch failed after its rename: writes to moving slots fail until reopen.
    let failure: KVError?

    init(routing: Routing, closed: Bool, moving: [Bool]?, gateClosed: Bool, failure: KVError?) {
        self.routing = routing
        self.closed = closed
        self.moving = moving
        self.gateClosed = gateClosed
        self.failure = failure
    }
}

/// Writes in flight per slot, as atomic counters: a write increments its slots' counters
/// before it reads the ``RouteView`` and decrements them when it has ended, so a reshard that
/// has published a closed gate and then sees a moving slot's counter at 0 knows no write to it
/// is running or can start (both sides are sequentially consistent: Dekker's pattern).
/// `@unchecked Sendable`: the counters are only touched through atomic operations.
final class SlotCounters: @unchecked Sendable {
    private let storage: UnsafeMutablePointer<UnsafeAtomic<Int>.Storage>
    let count: Int

    init(count: Int) {
        self.count = count
        storage = .allocate(capacity: count)
        storage.initialize(repeating: UnsafeAtomic<Int>.Storage(0), count: count)
    }

    deinit {
        storage.deinitialize(count: count)
        storage.deallocate()
    }

    @inline(__always)
    func add(_ slot: Int, _ delta: Int) {
        UnsafeAtomic<Int>(at: storage + slot).wrappingIncrement(by: delta, ordering: .sequentiallyConsistent)
    }

    @inline(__always)
    func load(_ slot: Int) -> Int {
        UnsafeAtomic<Int>(at: storage + slot).load(ordering: .sequentiallyConsistent)
    }
}
