import KVBase
import KVEngine
import KVLayout

extension ShardedStore {
    /// Streams the entries with `from <= key < to` across all shards, merged into one
    /// ascending sequence (descending with `reverse`). `nil` bounds are open.
    ///
    /// A k-way merge over one iterator per shard: entries are read lazily, one per shard is
    /// held at a time. Each shard contributes only keys of slots it owns in the snapshot's
    /// slot table, so data a shard holds for slots it does not own (a reshard's half-copied or
    /// not-yet-deleted keys) is never returned, and no key appears twice.
    ///
    /// - Parameter snapshot: read as of this store snapshot; without one the scan takes its
    ///   own, released when the scan ends or is freed.
    /// - Returns: a ``StoreScan``; iteration errors end the `for` loop early and are kept in
    ///   ``StoreScan/error`` (or use ``StoreScan/nextEntry()``, which throws).
    public func scan(from: [UInt8]? = nil, to: [UInt8]? = nil, reverse: Bool = false, snapshot: StoreSnapshot? = nil) throws(KVError) -> StoreScan {
        if state.withLock({ $0.closed }) { throw .closed }
        let snap = snapshot ?? self.snapshot()
        return try StoreScan(snapshot: snap, ownsSnapshot: snapshot == nil, lower: from, upper: to, reverse: reverse, now: now)
    }

    /// Streams the entries whose key starts with `prefix`, merged across shards, in order
    /// (or reversed).
    public func scan(prefix: [UInt8], reverse: Bool = false, snapshot: StoreSnapshot? = nil) throws(KVError) -> StoreScan {
        try scan(from: prefix, to: prefixSuccessor(prefix), reverse: reverse, snapshot: snapshot)
    }


    /// The number of keys in the store (as of `snapshot`, or now), counted by scanning every
    /// shard's keys; O(keys). Keys a shard holds for slots it does not own are not counted.
    public func count(snapshot: StoreSnapshot? = nil) throws -> Int {
        if state.withLock({ $0.closed }) { throw KVError.closed }
        let snap = snapshot ?? self.snapshot()
        defer { if snapshot == nil { snap.release() } }
        var total = 0
        for shard in snap.routing.shards {
            total += try ownedKeyCount(shard, owners: snap.routing.owners, snapshot: snap.snapshots[shard.id])
        }
        return total
    }

    /// Live rows of `shard` in slots it owns in `owners`.
    func ownedKeyCount(_ shard: Shard, owners: [UInt16], snapshot: Snapshot?) throws(KVError) -> Int {
        let it = try shard.db.makeIterator(snapshot: snapshot)
        let cursor = ShardCursor(it, shard: shard.id, owners: owners, lower: nil, upper: nil, reverse: false, now: now)
        try cursor.start()
        var n = 0
        while cursor.valid {
            n += 1
            try cursor.step()
        }
        return n
    }

    /// Records of `shard` (latest state: rows, index and expiry entries) in slots it does not
    /// own in `owners`.
    func foreignKeyCount(_ shard: Shard, owners: [UInt16]) throws(KVError) -> Int {
        let it = try shard.db.makeIterator()
        try it.seekToFirst()
        var n = 0
        while it.isValid {
            if let slot = EngineKey.slot(of: it.keyView), Int(owners[slot]) != shard.id { n += 1 }
            try it.next()
        }
        return n
    }
}

/// A lazily evaluated, merged range of a ``ShardedStore``; see
/// ``ShardedStore/scan(from:to:reverse:snapshot:)``.
///
/// Not thread-safe: iterate from one thread at a time.
public final class StoreScan: Sequence, IteratorProtocol {
    private let snapshot: StoreSnapshot
    private let ownsSnapshot: Bool
    private let cursors: [ShardCursor]
    /// Binary heap of indices into `cursors`, smallest key first (largest when reversed).
    private var heap: [Int] = []
    /// The cursor whose entry was returned last; it moves on at the next call.
    private var pending: Int?
    private let reverse: Bool
    private var started = false
    private var finished = false
    /// The inclusive lower bound (nil: open).
    public let lowerBound: [UInt8]?
    /// The exclusive upper bound (nil: open).
    public let upperBound: [UInt8]?
    /// The error that ended iteration early, if any.
    public private(set) var error: KVError?

    init(snapshot: StoreSnapshot, ownsSnapshot: Bool, lower: [UInt8]?, upper: [UInt8]?, reverse: Bool, now: Int64) throws(KVError) {
        self.snapshot = snapshot
        self.ownsSnapshot = ownsSnapshot
        self.reverse = reverse
        self.lowerBound = lower
        self.upperBound = upper
        var cursors: [ShardCursor] = []
        for shard in snapshot.routing.shards {
            let it = try shard.db.makeIterator(snapshot: snapshot.snapshots[shard.id])
            cursors.append(ShardCursor(it, shard: shard.id, owners: snapshot.routing.owners, lower: lower, upper: upper, reverse: reverse, now: now))
        }
        self.cursors = cursors
    }

    /// The next entry, or nil at the end of the range; throws what went wrong.
    public func nextEntry() throws -> (key: [UInt8], value: [UInt8])? {
        try advance()
    }

    /// The next row with its expiry time, or nil at the end of the range.
    public func nextRow() throws -> (key: [UInt8], entry: StoredEntry)? {
        guard let top = try advanceCursor() else { return nil }
        let c = cursors[top]
        return (c.key, StoredEntry(value: c.value, expiresAt: c.expiresAt, type: c.type))
    }

    /// ``nextRow()`` with the store's typed error.
    func nextRowTyped() throws(KVError) -> (key: [UInt8], entry: StoredEntry)? {
        guard let top = try advanceCursor() else { return nil }
        let c = cursors[top]
        return (c.key, StoredEntry(value: c.value, expiresAt: c.expiresAt, type: c.type))
    }

    func advance() throws(KVError) -> (key: [UInt8], value: [UInt8])? {
        guard let top = try advanceCursor() else { return nil }
        return (cursors[top].key, cursors[top].value)
    }

    /// Moves to the next entry in output order; returns its cursor.
    private func advanceCursor() throws(KVError) -> Int? {
        if finished { return nil }
        if !started {
            started = true
            for i in cursors.indices {
                try cursors[i].start()
                if cursors[i].valid { push(i) }
            }
        } else if let p = pending {
            pending = nil
            try cursors[p].step()
            if cursors[p].valid { push(p) }
        }
        guard let top = pop() else {
            finish()
            return nil
        }
        pending = top
        return top
    }

    /// `Sequence` conformance: ends early on error and records it in ``error``.
    public func next() -> (key: [UInt8], value: [UInt8])? {
        do {
            return try advance()
        } catch {
            self.error = error
            finish()
            return nil
        }
    }

    /// Throws the error that ended iteration early, if any.
    public func check() throws {
        if let error { throw error }
    }

    private func finish() {
        finished = true
        if ownsSnapshot { snapshot.release() }
    }

    deinit {
        if ownsSnapshot { snapshot.release() }
    }

    // MARK: heap

    /// Whether cursor `a`'s entry comes before cursor `b`'s in output order.
    private func before(_ a: Int, _ b: Int) -> Bool {
        let c = compareBytes(cursors[a].key, cursors[b].key)
        return reverse ? c > 0 : c < 0
    }

    private func push(_ i: Int) {
        heap.append(i)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            if !before(heap[child], heap[parent]) { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private func pop() -> Int? {
        guard let top = heap.first else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var parent = 0
            while true {
                let l = 2 * parent + 1
                let r = l + 1
                var best = parent
                if l < heap.count && before(heap[l], heap[best]) { best = l }
                if r < heap.count && before(heap[r], heap[best]) { best = r }
                if best == parent { break }
                heap.swapAt(parent, best)
                parent = best
            }
        }
        return top
    }
}

/// One shard's side of a merged scan: a ``DBIterator`` restricted to the bounds, to rows (the
/// store's reserved records are skipped), to live rows, and to keys of slots the shard owns.
/// Bounds are user keys; the iterator runs over engine keys (see ``EngineKey``).
final class ShardCursor {
    let iterator: DBIterator
    let shard: Int
    let owners: [UInt16]
    let lower: [UInt8]?
    let upper: [UInt8]?
    let reverse: Bool
    let now: Int64
    /// The current user key (a copy); meaningful when `valid`.
    private(set) var key: [UInt8] = []
    /// The current row's expiry time.
    private(set) var expiresAt: Int64?
    /// The current row's type.
    private(set) var type = ValueType.string
    private var payloadLength = 0
    private(set) var valid = false

    init(_ iterator: DBIterator, shard: Int, owners: [UInt16], lower: [UInt8]?, upper: [UInt8]?, reverse: Bool, now: Int64) {
        self.iterator = iterator
        self.shard = shard
        self.owners = owners
        self.lower = lower.map(EngineKey.encode)
        self.upper = upper.map(EngineKey.encode)
        self.reverse = reverse
        self.now = now
    }

    /// The current row's value (a copy).
    var value: [UInt8] {
        Array(UnsafeRawBufferPointer(rebasing: iterator.valueView[..<payloadLength]))
    }

    func start() throws(KVError) {
        if reverse {
            if let upper { try iterator.seekBefore(upper) } else { try iterator.seekToLast() }
        } else {
            if let lower { try iterator.seek(lower) } else { try iterator.seekToFirst() }
        }
        try settle()
    }

    func step() throws(KVError) {
        if reverse { try iterator.prev() } else { try iterator.next() }
        try settle()
    }

    private static let reservedStart: [UInt8] = [EngineKey.reservedByte, 0x00]
    private static let reservedEnd: [UInt8] = [EngineKey.reservedByte, EngineKey.reservedByte]

    /// Moves on to the first live, owned row within bounds, or becomes invalid.
    private func settle() throws(KVError) {
        while iterator.isValid {
            let k = iterator.keyView
            if reverse, let lower, lower.withUnsafeBytes({ compareBytes(k, $0) }) < 0 { break }
            if !reverse, let upper, upper.withUnsafeBytes({ compareBytes(k, $0) }) >= 0 { break }
            if case .reserved = EngineKey.kind(k) {
                // Jump over the whole reserved range.
                if reverse { try iterator.seekBefore(Self.reservedStart) } else { try iterator.seek(Self.reservedEnd) }
                continue
            }
            let slot = k.first == EngineKey.reservedByte
                ? HashSlot.slot(of: UnsafeRawBufferPointer(rebasing: k[1...])) : HashSlot.slot(of: k)
            if Int(owners[slot]) == shard {
                guard let (n, t) = RowValue.parse(iterator.valueView) else {
                    throw RowValue.damaged(EngineKey.decodeRow(k))
                }
                if !RowValue.isExpired(t, now: now) {
                    key = EngineKey.decodeRow(k)
                    payloadLength = n
                    expiresAt = t
                    type = RowValue.type(iterator.valueView)
                    valid = true
                    return
                }
            }
            if reverse { try iterator.prev() } else { try iterator.next() }
        }
        valid = false
    }
}
