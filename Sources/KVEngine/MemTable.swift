import Atomics
import CShaleSupport
import KVBase

/// The in-memory write buffer: a skiplist of internal keys in an arena.
///
/// Node layout (native-endian, 8-byte aligned, inside the arena):
///
///     keyLength u32 | valueLength u32 | height u8 | pad 7 | next[height] (atomic Int) | internal key | value
///
/// Invariants and thread safety:
/// - One writer at a time (the group-commit leader, or recovery) calls ``add``; any number of
///   readers run concurrently without locks. A node is fully written before it is published
///   with a release store into its predecessors' `next` slots; readers load with acquire.
/// - Nodes are never removed or changed after publication; memory lives until the memtable
///   is freed, so iterators keep the memtable alive by holding a reference.
/// - Keys are unique: the engine never inserts the same (user key, sequence) twice.
package final class MemTable: @unchecked Sendable {
    // @unchecked Sendable: see the thread-safety rules above (single writer, lock-free readers
    // over immutable published nodes; the writer-only fields are touched by the writer only).
    static let maxHeight = 12
    static let headerSize = 16

    let arena = Arena()
    let head: UnsafeMutableRawPointer
    private let currentHeight = ManagedAtomic<Int>(1)
    private var rng: UInt64 = 0x2545_F491_4F6C_DD1D
    private let entryCount = ManagedAtomic<Int>(0)
    /// Identifies the WAL file this memtable's writes were logged to.
    let logNumber: UInt64

    /// Scratch space for `add` (writer only).
    private let prevScratch = UnsafeMutablePointer<UnsafeMutableRawPointer>.allocate(capacity: MemTable.maxHeight)

    /// The point index: user key -> newest node for that key (see ``PointIndex``). A point
    /// read finds its key with one or two cache misses instead of a skiplist walk that misses
    /// at almost every node, and a read of a key this memtable never saw ends at an empty slot.
    private let index: PointIndex

    deinit {
        prevScratch.deallocate()
    }

    /// A memtable whose point index starts sized for about `expectedBytes` of entries (the
    /// write buffer size) and grows as entries arrive.
    init(logNumber: UInt64, expectedBytes: Int = 4 << 20) {
        self.logNumber = logNumber
        index = PointIndex(initialCapacity: min(max(expectedBytes, 0), 1 << 30) / 512)
        head = arena.allocate(Self.headerSize + Self.maxHeight * 8)
        head.storeBytes(of: 0, toByteOffset: 0, as: UInt32.self)
        head.storeBytes(of: 0, toByteOffset: 4, as: UInt32.self)
        head.storeBytes(of: UInt8(Self.maxHeight), toByteOffset: 8, as: UInt8.self)
        for i in 0..<Self.maxHeight { Self.nextSlot(head, i).initialize(to: UnsafeAtomic<Int>.Storage(0)) }
    }

    /// Approximate bytes held (arena blocks reserved).
    public var approximateMemoryUsage: Int { arena.memoryUsage + index.memoryUsage }

    /// Number of entries inserted.
    public var count: Int { entryCount.load(ordering: .relaxed) }

    // MARK: node access

    @inline(__always)
    static func nextSlot(_ node: UnsafeMutableRawPointer, _ level: Int) -> UnsafeMutablePointer<UnsafeAtomic<Int>.Storage> {
        (node + headerSize + level * 8).assumingMemoryBound(to: UnsafeAtomic<Int>.Storage.self)
    }

    @inline(__always)
    static func next(_ node: UnsafeMutableRawPointer, _ level: Int) -> UnsafeMutableRawPointer? {
        let bits = UnsafeAtomic<Int>(at: nextSlot(node, level)).load(ordering: .acquiring)
        return UnsafeMutableRawPointer(bitPattern: bits)
    }

    @inline(__always)
    static func setNext(_ node: UnsafeMutableRawPointer, _ level: Int, _ value: UnsafeMutableRawPointer?) {
        UnsafeAtomic<Int>(at: nextSlot(node, level)).store(Int(bitPattern: value), ordering: .releasing)
    }

    @inline(__always)
    static func height(_ node: UnsafeMutableRawPointer) -> Int {
        Int(node.load(fromByteOffset: 8, as: UInt8.self))
    }

    /// The node's internal key.
    @inline(__always)
    static func key(_ node: UnsafeMutableRawPointer) -> UnsafeRawBufferPointer {
        let klen = Int(node.load(fromByteOffset: 0, as: UInt32.self))
        return UnsafeRawBufferPointer(start: node + headerSize + height(node) * 8, count: klen)
    }

    /// The node's value.
    @inline(__always)
    static func value(_ node: UnsafeMutableRawPointer) -> UnsafeRawBufferPointer {
        let klen = Int(node.load(fromByteOffset: 0, as: UInt32.self))
        let vlen = Int(node.load(fromByteOffset: 4, as: UInt32.self))
        return UnsafeRawBufferPointer(start: node + headerSize + height(node) * 8 + klen, count: vlen)
    }

    /// Compares node's key with (userKey, trailer) in internal-key order.
    @inline(__always)
    static func compare(_ node: UnsafeMutableRawPointer, _ userKey: UnsafeRawBufferPointer, _ trailer: UInt64) -> Int {
        let k = key(node)
        let r = compareBytes(InternalKey.userKey(k), userKey)
        if r != 0 { return r }
        let t = InternalKey.trailer(k)
        return t > trailer ? -1 : (t < trailer ? 1 : 0)
    }

    // MARK: search

    /// First node whose key is >= (userKey, trailer); fills `prev` when given.
    @inline(__always)
    func findGreaterOrEqual(
        _ userKey: UnsafeRawBufferPointer, _ trailer: UInt64,
        _ prev: UnsafeMutablePointer<UnsafeMutableRawPointer>?
    ) -> UnsafeMutableRawPointer? {
        var x = head
        var level = currentHeight.load(ordering: .relaxed) - 1
        // The node a higher level already found not smaller than the key: when the walk one
        // level down reaches it again, it stops there without comparing.
        var lastBigger: UnsafeMutableRawPointer?
        while true {
            let n = Self.next(x, level)
            // Random inserts miss the cache at almost every node of the walk, and each load
            // waits for the one before. `x` is loaded: while `n` is fetched and compared, start
            // loading the node one level down from `x` too, where the walk goes if `n` is not
            // smaller; either way the next node is on its way.
            if level > 0, let down = Self.next(x, level - 1), down != n { shale_prefetch(down) }
            if let n, n != lastBigger {
                if Self.compare(n, userKey, trailer) < 0 {
                    x = n
                    continue
                }
            }
            prev?[level] = x
            if level == 0 { return n }
            lastBigger = n
            level -= 1
        }
    }

    /// Last node whose key is < (userKey, trailer), or nil if none (head).
    func findLessThan(_ userKey: UnsafeRawBufferPointer, _ trailer: UInt64) -> UnsafeMutableRawPointer? {
        var x = head
        var level = currentHeight.load(ordering: .relaxed) - 1
        while true {
            if let n = Self.next(x, level), Self.compare(n, userKey, trailer) < 0 {
                x = n
            } else {
                if level == 0 { return x == head ? nil : x }
                level -= 1
            }
        }
    }

    /// The last node, or nil when empty.
    func findLast() -> UnsafeMutableRawPointer? {
        var x = head
        var level = currentHeight.load(ordering: .relaxed) - 1
        while true {
            if let n = Self.next(x, level) {
                x = n
            } else {
                if level == 0 { return x == head ? nil : x }
                level -= 1
            }
        }
    }

    /// The first node, or nil when empty.
    func first() -> UnsafeMutableRawPointer? { Self.next(head, 0) }

    // MARK: write

    private func randomHeight() -> Int {
        var h = 1
        while h < Self.maxHeight {
            rng ^= rng << 13
            rng ^= rng >> 7
            rng ^= rng << 17
            if rng & 3 != 0 { break }
            h += 1
        }
        return h
    }

    // MARK: point index

    /// False when no entry for `key` was ever added (no false negatives).
    @inline(__always)
    func mayContain(_ key: UnsafeRawBufferPointer) -> Bool {
        !index.isComplete || index.newest(key) != nil
    }

    /// Inserts one entry. Single writer only (see the type's rules).
    func add(_ sequence: SequenceNumber, _ kind: ValueKind, _ userKey: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) {
        let trailer = packTrailer(sequence, kind)
        let prev = prevScratch
        _ = findGreaterOrEqual(userKey, trailer, prev)
        let h = randomHeight()
        let cur = currentHeight.load(ordering: .relaxed)
        if h > cur {
            for i in cur..<h { prev[i] = head }
            currentHeight.store(h, ordering: .relaxed)
        }
        let klen = userKey.count + internalKeyTrailerSize
        let node = arena.allocate(Self.headerSize + h * 8 + klen + value.count)
        node.storeBytes(of: UInt32(klen), toByteOffset: 0, as: UInt32.self)
        node.storeBytes(of: UInt32(value.count), toByteOffset: 4, as: UInt32.self)
        node.storeBytes(of: UInt8(h), toByteOffset: 8, as: UInt8.self)
        let keyStart = node + Self.headerSize + h * 8
        if userKey.count > 0 { keyStart.copyMemory(from: userKey.baseAddress!, byteCount: userKey.count) }
        (keyStart + userKey.count).storeBytes(of: trailer.littleEndian, as: UInt64.self)
        if value.count > 0 { (keyStart + klen).copyMemory(from: value.baseAddress!, byteCount: value.count) }
        for i in 0..<h {
            Self.nextSlot(node, i).initialize(to: UnsafeAtomic<Int>.Storage(Int(bitPattern: Self.next(prev[i], i))))
        }
        for i in 0..<h { Self.setNext(prev[i], i, node) }
        // After the skiplist links: a reader that finds the node through the index may walk
        // on from it to older versions of the key.
        index.insert(node, userKey)
        entryCount.wrappingIncrement(ordering: .relaxed)
    }

    // MARK: read

    /// What a memtable knows about a key at a snapshot.
    enum Lookup {
        case notFound
        case deleted
        case found(UnsafeRawBufferPointer)
    }

    /// The newest entry for `userKey` with sequence <= `snapshot`. The returned buffer points
    /// into the memtable and is valid while the caller holds the memtable.
    func get(_ userKey: UnsafeRawBufferPointer, snapshot: SequenceNumber) -> Lookup {
        get(userKey, hash: keyHash64(userKey), snapshot: snapshot)
    }

    /// Starts loading what a ``get(_:hash:snapshot:)`` of the key of hash `hash`
    /// (``keyHash64(_:)``) reads first.
    @inline(__always)
    func prefetch(hash: UInt64) {
        index.prefetch(hash: hash)
    }

    /// ``get(_:snapshot:)`` for a key whose ``keyHash64(_:)`` the caller has computed.
    func get(_ userKey: UnsafeRawBufferPointer, hash: UInt64, snapshot: SequenceNumber) -> Lookup {
        guard index.isComplete else { return walk(userKey, snapshot: snapshot) }
        guard var n = index.newest(userKey, hash: hash) else { return .notFound }
        // Versions of a key sit together in the skiplist, newest first: step from the newest
        // to the first one the snapshot sees.
        var k = Self.key(n)
        while InternalKey.sequence(k) > snapshot {
            guard let older = Self.next(n, 0) else { return .notFound }
            k = Self.key(older)
            guard compareBytes(InternalKey.userKey(k), userKey) == 0 else { return .notFound }
            n = older
        }
        return Self.lookup(n, key: k)
    }

    /// What entry `node` (whose internal key is `key`) says of its user key.
    @inline(__always)
    private static func lookup(_ node: UnsafeMutableRawPointer, key: UnsafeRawBufferPointer) -> Lookup {
        switch InternalKey.kind(key) {
        case .value: return .found(value(node))
        case .deletion, .none: return .deleted
        }
    }

    /// Makes point reads walk the skiplist, as an incomplete point index does (tests only).
    func markPointIndexIncomplete() { index.markIncomplete() }

    /// ``get(_:snapshot:)`` by a walk of the skiplist (when the point index is incomplete).
    func walk(_ userKey: UnsafeRawBufferPointer, snapshot: SequenceNumber) -> Lookup {
        guard let n = findGreaterOrEqual(userKey, packTrailer(snapshot, .value), nil) else { return .notFound }
        let k = Self.key(n)
        guard compareBytes(InternalKey.userKey(k), userKey) == 0 else { return .notFound }
        return Self.lookup(n, key: k)
    }

    /// An iterator over every entry (all versions) in internal-key order.
    func makeIterator() -> MemTableIterator { MemTableIterator(self) }
}

/// Iterates a memtable's entries; holds the memtable alive.
final class MemTableIterator: InternalIterator {
    let table: MemTable
    private var node: UnsafeMutableRawPointer?

    init(_ table: MemTable) { self.table = table }

    var isValid: Bool { node != nil }
    func seekToFirst() throws(KVError) { node = table.first() }
    func seekToLast() throws(KVError) { node = table.findLast() }
    func seek(_ target: UnsafeRawBufferPointer) throws(KVError) {
        node = table.findGreaterOrEqual(InternalKey.userKey(target), InternalKey.trailer(target), nil)
    }
    func next() throws(KVError) {
        node = MemTable.next(node!, 0)
        // Nodes sit in the arena in insertion order, so a walk in key order misses the cache
        // at every node: start loading the one after this while the caller works on this one.
        if let n = node, let after = MemTable.next(n, 0) {
            shale_prefetch(after)
            shale_prefetch(after + 64)
        }
    }
    func prev() throws(KVError) {
        let k = MemTable.key(node!)
        node = table.findLessThan(InternalKey.userKey(k), InternalKey.trailer(k))
    }
    var key: UnsafeRawBufferPointer { MemTable.key(node!) }
    var value: UnsafeRawBufferPointer { MemTable.value(node!) }
}
