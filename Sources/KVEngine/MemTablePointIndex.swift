import Atomics
import CShaleSupport
import KVBase

/// A memtable's point index: a hash table from user key to the newest skiplist node of that
/// key, so a point read costs a probe or two instead of a skiplist walk.
///
/// Layout (native-endian, in one allocation per table):
///
///     mask Int | slot[mask + 1] (atomic UInt64)
///
/// Open addressing with linear probing over a power-of-two number of slots, at most half
/// full. A slot is 0 (empty) or `tag << 48 | node address`: the tag is the top 16 bits of the
/// key's hash, never 0, and lets a probe skip other keys' slots without touching their nodes.
/// A node whose address does not fit in 48 bits (no Linux x86-64 or arm64 process gets one
/// without asking) is not stored; instead the index marks itself incomplete (`isComplete`
/// false, for good), and the memtable answers point reads from the skiplist from then on.
///
/// Invariants and thread safety (the memtable's): one writer inserts; readers probe without
/// locks. A slot only ever goes from empty to a node, or from a node to a newer node of the
/// same key, each a release store after the node is linked into the skiplist. Growing
/// builds a table twice the size, fills it, and publishes it with a release store; the old
/// table stays allocated (a reader may still probe it, and everything in it is still true)
/// until the memtable is freed. A reader that sees a committed sequence (the engine's
/// acquire of its read state) sees every table and slot stored before that commit.
final class PointIndex: @unchecked Sendable {
    // @unchecked Sendable: see the rules above; `count`, `capacity` and `retired` are the
    // writer's alone.
    private static let addressBits: UInt64 = 48
    private static let addressMask: UInt64 = (1 << addressBits) - 1

    private let current: UnsafeAtomic<Int>
    /// Tables replaced by a larger one, freed with the index.
    private var retired: [UnsafeMutableRawPointer] = []
    /// Keys in the current table.
    private var count = 0
    /// Slots in the current table.
    private var capacity: Int
    /// Bytes of all tables, current and replaced (read by any thread).
    private let bytes = ManagedAtomic<Int>(0)
    private let incomplete = ManagedAtomic<Bool>(false)

    /// An index with room for about `initialCapacity` keys before it first grows.
    init(initialCapacity: Int) {
        var slots = 64
        while slots < initialCapacity * 2 && slots < 1 << 28 { slots <<= 1 }
        capacity = slots
        current = .create(Int(bitPattern: Self.allocateTable(slots: slots)))
        bytes.store(8 + slots * 8, ordering: .relaxed)
    }

    deinit {
        UnsafeMutableRawPointer(bitPattern: current.load(ordering: .relaxed))?.deallocate()
        current.destroy()
        for t in retired { t.deallocate() }
    }

    /// Bytes the index holds (current and replaced tables).
    var memoryUsage: Int { bytes.load(ordering: .relaxed) }

    private static func allocateTable(slots: Int) -> UnsafeMutableRawPointer {
        let table = UnsafeMutableRawPointer.allocate(byteCount: 8 + slots * 8, alignment: 64)
        table.storeBytes(of: slots - 1, as: Int.self)
        (table + 8).initializeMemory(as: UInt64.self, repeating: 0, count: slots)
        return table
    }

    @inline(__always)
    private static func slot(_ table: UnsafeMutableRawPointer, _ i: Int) -> UnsafeAtomic<UInt64> {
        UnsafeAtomic<UInt64>(at: (table + 8 + i * 8).assumingMemoryBound(to: UnsafeAtomic<UInt64>.Storage.self))
    }

    @inline(__always)
    private static func tag(_ h: UInt64) -> UInt64 {
        let t = h >> addressBits
        return t == 0 ? 1 : t
    }

    /// Whether every node inserted so far is in the index. Once false, stays false: the
    /// caller must not trust ``newest(_:)``. Set (release) before the node that did not fit
    /// is published, so a reader that can see that node sees this too.
    @inline(__always)
    var isComplete: Bool { !incomplete.load(ordering: .acquiring) }

    /// Marks the index incomplete, as a node whose address does not fit does (for tests of
    /// the memtable's fallback).
    func markIncomplete() {
        incomplete.store(true, ordering: .releasing)
    }

    @inline(__always)
    private static func fits(_ node: UnsafeMutableRawPointer) -> Bool {
        UInt64(UInt(bitPattern: node)) <= addressMask
    }

    @inline(__always)
    private static func encode(_ node: UnsafeMutableRawPointer, tag: UInt64) -> UInt64 {
        (tag << addressBits) | UInt64(UInt(bitPattern: node))
    }

    /// The node a slot holds when it may be `tag`'s key.
    @inline(__always)
    private static func decode(_ value: UInt64, tag: UInt64) -> UnsafeMutableRawPointer? {
        guard value >> addressBits == tag else { return nil }
        return UnsafeMutableRawPointer(bitPattern: UInt(value & addressMask))
    }

    @inline(__always)
    private static func userKey(_ node: UnsafeMutableRawPointer) -> UnsafeRawBufferPointer {
        InternalKey.userKey(MemTable.key(node))
    }

    /// The newest node of `key`, or nil when the memtable has none.
    @inline(__always)
    func newest(_ key: UnsafeRawBufferPointer) -> UnsafeMutableRawPointer? {
        newest(key, hash: keyHash64(key))
    }

    /// Starts loading the slot where a probe for the key of hash `h` (``keyHash64(_:)``) begins,
    /// so that a ``newest(_:hash:)`` soon after does not wait for memory.
    @inline(__always)
    func prefetch(hash h: UInt64) {
        let table = UnsafeMutableRawPointer(bitPattern: current.load(ordering: .acquiring)).unsafelyUnwrapped
        let mask = table.load(as: Int.self)
        shale_prefetch(table + 8 + (Int(truncatingIfNeeded: h) & mask) * 8)
    }

    /// ``newest(_:)`` for a key whose ``keyHash64(_:)`` the caller has computed.
    @inline(__always)
    func newest(_ key: UnsafeRawBufferPointer, hash h: UInt64) -> UnsafeMutableRawPointer? {
        let table = UnsafeMutableRawPointer(bitPattern: current.load(ordering: .acquiring)).unsafelyUnwrapped
        let mask = table.load(as: Int.self)
        let tag = Self.tag(h)
        var i = Int(truncatingIfNeeded: h) & mask
        // At most half the slots are full, so the probe ends at an empty one.
        while true {
            let value = Self.slot(table, i).load(ordering: .acquiring)
            if value == 0 { return nil }
            if let node = Self.decode(value, tag: tag), compareBytes(Self.userKey(node), key) == 0 {
                return node
            }
            i = (i + 1) & mask
        }
    }

    /// Makes `node` the newest of `key` (writer only; `node` is already in the skiplist and
    /// newer than any node of `key` inserted before).
    func insert(_ node: UnsafeMutableRawPointer, _ key: UnsafeRawBufferPointer) {
        guard Self.fits(node) else {
            incomplete.store(true, ordering: .releasing)
            return
        }
        let table = UnsafeMutableRawPointer(bitPattern: current.load(ordering: .relaxed)).unsafelyUnwrapped
        let h = keyHash64(key)
        if Self.place(node, key: key, hash: h, in: table, mask: capacity - 1) {
            count += 1
            if count * 2 > capacity { grow() }
        }
    }

    /// Stores `node` in its key's slot or the first empty one; true when the key is new.
    @inline(__always)
    private static func place(_ node: UnsafeMutableRawPointer, key: UnsafeRawBufferPointer, hash h: UInt64, in table: UnsafeMutableRawPointer, mask: Int) -> Bool {
        let tag = tag(h)
        let value = encode(node, tag: tag)
        var i = Int(truncatingIfNeeded: h) & mask
        while true {
            let s = slot(table, i)
            let old = s.load(ordering: .relaxed)
            if old == 0 {
                s.store(value, ordering: .releasing)
                return true
            }
            if let other = decode(old, tag: tag), compareBytes(userKey(other), key) == 0 {
                s.store(value, ordering: .releasing)
                return false
            }
            i = (i + 1) & mask
        }
    }

    private func grow() {
        let old = UnsafeMutableRawPointer(bitPattern: current.load(ordering: .relaxed)).unsafelyUnwrapped
        let slots = capacity * 2
        let table = Self.allocateTable(slots: slots)
        for i in 0..<capacity {
            let value = Self.slot(old, i).load(ordering: .relaxed)
            guard value != 0 else { continue }
            let node = UnsafeMutableRawPointer(bitPattern: UInt(value & Self.addressMask)).unsafelyUnwrapped
            let key = Self.userKey(node)
            _ = Self.place(node, key: key, hash: keyHash64(key), in: table, mask: slots - 1)
        }
        current.store(Int(bitPattern: table), ordering: .releasing)
        retired.append(old)
        capacity = slots
        bytes.wrappingIncrement(by: 8 + slots * 8, ordering: .relaxed)
    }
}
