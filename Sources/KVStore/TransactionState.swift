import KVBase
import KVEngine
import KVLayout
import Synchronization

/// What the store keeps for transactions (see ShardedStore+Transaction.swift): the running
/// transaction's buffered writes, the commit epoch readers wait on, the finished transactions
/// whose records await deletion, and the change stamps WATCH compares.
final class TransactionState: @unchecked Sendable {
    // @unchecked Sendable: `pending` and `overlay` are read and written only by the thread in
    // `owner` (the one holding every key stripe) between `begin` and `end`; the rest is atomic
    // or behind a mutex.

    /// The thread running a transaction's body (its writes are buffered), or 0.
    private let owner = Atomic<UInt>(0)
    /// The running transaction's writes, in order.
    private var pending = RoutedBatch()
    /// The running transaction's writes by engine key: the engine value, or nil for deleted.
    private var overlay: [[UInt8]: [UInt8]?] = [:]
    /// Odd while a transaction spanning shards commits its parts: point reads wait for it
    /// to become even, snapshots are retaken when it moved.
    let epoch = Atomic<UInt64>(0)
    private let lastID: Atomic<UInt64>
    /// Transactions committed whose intent and markers are not deleted yet.
    let finished = Mutex<[(id: UInt64, coordinator: Int, participants: [Int])]>([])
    /// How many watches are registered (``ShardedStore/beginWatching()``); while 0 writes
    /// stamp nothing.
    let watchers = Atomic<Int>(0)
    /// Change counters by key hash: every committed record bumps its key's cell while
    /// ``watchers`` is not 0.
    let stamps = SlotCounters(count: TransactionState.stampCells)
    static let stampCells = 1 << 16
    /// Called after each part of a transaction spanning shards commits (tests widen the
    /// window in which the parts are half committed).
    let partHook = Mutex<(@Sendable () -> Void)?>(nil)

    init() {
        // Ids only need to differ from those of records a crash may have left: start above
        // the wall clock in microseconds, which grows faster than transactions commit.
        lastID = Atomic(UInt64(max(0, RowValue.wallClockMillis())) &* 1000)
    }

    /// A new transaction id.
    func nextID() -> UInt64 {
        lastID.wrappingAdd(1, ordering: .relaxed).newValue
    }

    /// Whether the calling thread runs a transaction's body.
    @inline(__always)
    var ownedByCurrentThread: Bool {
        let o = owner.load(ordering: .relaxed)
        return o != 0 && o == currentThreadToken()
    }

    /// Starts buffering the calling thread's writes.
    func begin() {
        pending = RoutedBatch()
        overlay = [:]
        owner.store(currentThreadToken(), ordering: .relaxed)
    }

    /// Stops buffering and returns the buffered writes.
    func end() -> RoutedBatch {
        owner.store(0, ordering: .relaxed)
        overlay = [:]
        defer { pending = RoutedBatch() }
        return pending
    }

    /// Buffers `batch` (owner thread only).
    func buffer(_ batch: RoutedBatch) {
        pending.append(batch)
        batch.batch.forEachRecord { isPut, key, value in
            overlay[Array(key)] = isPut ? Array(value) : .some(nil)
        }
    }

    /// The buffered state of an engine key (owner thread only): nil when the transaction did
    /// not write it, `.some(nil)` when it deleted it.
    func buffered(_ engineKey: UnsafeRawBufferPointer) -> [UInt8]?? {
        if overlay.isEmpty { return nil }
        return overlay[Array(engineKey)]
    }

    /// Whether the running transaction buffered nothing (owner thread only).
    var overlayIsEmpty: Bool { overlay.isEmpty }

    /// The buffered writes whose engine key passes `filter` (owner thread only), unordered.
    func overlayEntries(_ filter: ([UInt8]) -> Bool) -> [(key: [UInt8], value: [UInt8]?)] {
        overlay.compactMap { filter($0.key) ? ($0.key, $0.value) : nil }
    }

    /// The stamp cell of an engine key.
    @inline(__always)
    static func cell(_ engineKey: UnsafeRawBufferPointer) -> Int {
        Int(truncatingIfNeeded: keyHash64(engineKey) & UInt64(stampCells - 1))
    }

    /// Bumps the stamp of every key `batch` wrote, while anyone watches.
    @inline(__always)
    func stamp(_ batch: RoutedBatch) {
        guard watchers.load(ordering: .sequentiallyConsistent) > 0 else { return }
        batch.batch.forEachRecord { _, key, _ in stamps.add(Self.cell(key), 1) }
    }
}

extension WriteBatch {
    /// Calls `body` for each record with whether it is a put, its key and value; a batch
    /// built in memory is well formed, so decoding cannot fail.
    func forEachRecord(_ body: (Bool, UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Void) {
        try? forEach { kind, key, value in body(kind == .value, key, value) }
    }
}

extension TransactionState {
    /// The buffered writes with `lower <= engine key < upper`, in key order (owner thread
    /// only): the engine value, or nil for a deletion.
    func bufferedRange(_ lower: [UInt8], _ upper: [UInt8]) -> [(key: [UInt8], value: [UInt8]?)] {
        if overlayIsEmpty { return [] }
        return overlayEntries { k in
            k.lexicographicallyPrecedes(upper) && !k.lexicographicallyPrecedes(lower)
        }.sorted { $0.key.lexicographicallyPrecedes($1.key) }
    }
}
