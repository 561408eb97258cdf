import KVBase

/// A position inside one ``Block``: the allocation-free core of every block iterator.
///
/// The cursor rebuilds the current key into a buffer it owns (grown as needed, reused across
/// moves and across blocks) and points the value at the block's memory. It holds the block,
/// so both views stay valid until the next move, ``reset(_:)`` or the end of the cursor.
///
/// Invariants: the cursor is valid exactly when `current < restartsOffset`; then the key
/// buffer holds the entry's full key, `value` lies inside the entry area, `nextOffset` is
/// the offset just past the entry, and `restartIndex` is the last restart point at or before
/// `current`. A throwing move leaves the cursor invalid. Not thread-safe.
///
/// Every length read from the block is bounds-checked against the entry area; a malformed
/// entry throws ``KVError/corruption(file:offset:reason:)`` with the block's file and offset.
struct BlockCursor: ~Copyable {
    let order: KeyOrder
    private(set) var block: Block?
    private var base: UnsafeRawPointer?
    /// Start of the restart array (`base + restartsOffset`).
    private var restarts: UnsafeRawPointer?
    private var restartsOffset = 0
    private var numRestarts = 0
    private var current = 0
    private var nextOffset = 0
    private var restartIndex = 0
    private var keyBuffer: UnsafeMutableRawPointer?
    private var keyCapacity = 0
    /// Whether `keyBuffer` was allocated by the cursor (rather than lent by the caller).
    private var ownsKeyBuffer = false
    private var keyLength = 0
    private var valueOffset = 0
    private var valueLength = 0

    init(order: KeyOrder) {
        self.order = order
    }

    init(block: Block, order: KeyOrder) {
        self.order = order
        reset(block)
    }

    /// A cursor whose key buffer starts in `scratch` (stack memory of the caller, which must
    /// outlive the cursor); it moves to the heap only for longer keys.
    init(block: Block?, order: KeyOrder, scratch: UnsafeMutableRawBufferPointer) {
        self.order = order
        keyBuffer = scratch.baseAddress
        keyCapacity = scratch.count
        reset(block)
    }

    deinit {
        if ownsKeyBuffer { keyBuffer?.deallocate() }
    }

    /// Points the cursor at another block (or none), invalid until positioned. The key buffer
    /// is kept.
    mutating func reset(_ block: Block?) {
        self.block = block
        base = block.map { UnsafeRawPointer($0.base) }
        restarts = block.map { UnsafeRawPointer($0.base) + $0.restartsOffset }
        restartsOffset = block?.restartsOffset ?? 0
        numRestarts = block?.numRestarts ?? 0
        invalidate()
    }

    /// Makes the cursor invalid without changing its block.
    @inline(__always)
    mutating func invalidate() {
        current = restartsOffset
        nextOffset = restartsOffset
        restartIndex = numRestarts
        keyLength = 0
        valueLength = 0
    }

    @inline(__always)
    var isValid: Bool { current < restartsOffset }

    /// The current key; valid until the next move.
    @inline(__always)
    var key: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: keyBuffer, count: keyLength)
    }

    /// The current value, inside the block's memory; valid until the next move.
    @inline(__always)
    var value: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base.map { $0 + valueOffset }, count: valueLength)
    }

    // MARK: decoding

    private mutating func corruption(_ reason: String) -> KVError {
        let file = block?.file ?? "<memory>"
        let offset = block?.offset ?? 0
        invalidate()
        return .corruption(file: file, offset: offset, reason: reason)
    }

    @inline(__always)
    private func restartPoint(_ i: Int) -> Int {
        Int(UInt32(littleEndian: restarts.unsafelyUnwrapped.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
    }

    /// Decodes the header of the entry at `p` (which is below `restartsOffset`). Returns nil
    /// when a varint is malformed or the entry runs past the entry area.
    @inline(__always)
    private func decodeEntry(at p: Int) -> (shared: Int, unshared: Int, valueLength: Int, keyOffset: Int)? {
        let b = base.unsafelyUnwrapped
        let limit = restartsOffset
        var shared: Int
        var unshared: Int
        var vlen: Int
        var q: Int
        if p + 3 <= limit {
            shared = Int(b.load(fromByteOffset: p, as: UInt8.self))
            unshared = Int(b.load(fromByteOffset: p + 1, as: UInt8.self))
            vlen = Int(b.load(fromByteOffset: p + 2, as: UInt8.self))
            q = p + 3
            if (shared | unshared | vlen) >= 0x80 {
                let area = UnsafeRawBufferPointer(start: b, count: limit)
                q = p
                guard let s = area.varint32(at: &q), let u = area.varint32(at: &q), let v = area.varint32(at: &q) else { return nil }
                shared = Int(s)
                unshared = Int(u)
                vlen = Int(v)
            }
        } else {
            let area = UnsafeRawBufferPointer(start: b, count: limit)
            q = p
            guard let s = area.varint32(at: &q), let u = area.varint32(at: &q), let v = area.varint32(at: &q) else { return nil }
            shared = Int(s)
            unshared = Int(u)
            vlen = Int(v)
        }
        guard unshared + vlen <= limit - q else { return nil }
        return (shared, unshared, vlen, q)
    }

    @inline(__always)
    private mutating func reserveKey(_ n: Int) {
        if n <= keyCapacity { return }
        let capacity = Swift.max(n, keyCapacity * 2, 64)
        let fresh = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        if let old = keyBuffer {
            fresh.copyMemory(from: old, byteCount: keyLength)
            if ownsKeyBuffer { old.deallocate() }
        }
        keyBuffer = fresh
        keyCapacity = capacity
        ownsKeyBuffer = true
    }

    @inline(__always)
    private mutating func seekToRestartPoint(_ i: Int) {
        keyLength = 0
        restartIndex = i
        nextOffset = restartPoint(i)
    }

    /// Decodes the entry at `nextOffset`. Returns false (cursor invalid) at the end.
    @inline(__always)
    private mutating func parseNext() throws(KVError) -> Bool {
        current = nextOffset
        if current >= restartsOffset {
            invalidate()
            return false
        }
        guard let e = decodeEntry(at: current) else {
            throw corruption("malformed block entry at offset \(current)")
        }
        guard e.shared <= keyLength else {
            throw corruption("block entry at offset \(current) shares \(e.shared) bytes of a \(keyLength)-byte key")
        }
        let length = e.shared + e.unshared
        if order == .internalKey && length < internalKeyTrailerSize {
            throw corruption("internal key of \(length) bytes at block offset \(current)")
        }
        reserveKey(length)
        if e.unshared > 0 {
            (keyBuffer.unsafelyUnwrapped + e.shared).copyMemory(from: base.unsafelyUnwrapped + e.keyOffset, byteCount: e.unshared)
        }
        keyLength = length
        valueOffset = e.keyOffset + e.unshared
        valueLength = e.valueLength
        nextOffset = valueOffset + valueLength
        while restartIndex + 1 < numRestarts && restartPoint(restartIndex + 1) < current {
            restartIndex += 1
        }
        return true
    }

    // MARK: positioning

    mutating func seekToFirst() throws(KVError) {
        guard numRestarts > 0 else { return invalidate() }
        seekToRestartPoint(0)
        _ = try parseNext()
    }

    mutating func seekToLast() throws(KVError) {
        guard numRestarts > 0 else { return invalidate() }
        seekToRestartPoint(numRestarts - 1)
        guard try parseNext() else { return }
        while nextOffset < restartsOffset {
            _ = try parseNext()
        }
    }

    /// Positions at the first entry whose key is at or after `target`: a binary search over
    /// the restart points, then a linear scan.
    mutating func seek(_ target: UnsafeRawBufferPointer) throws(KVError) {
        guard numRestarts > 0 else { return invalidate() }
        var left = 0
        var right = numRestarts - 1
        while left < right {
            let mid = (left + right + 1) / 2
            let offset = restartPoint(mid)
            guard let e = decodeEntry(at: offset), e.shared == 0 else {
                throw corruption("malformed restart entry at offset \(offset)")
            }
            let midKey = UnsafeRawBufferPointer(start: base.unsafelyUnwrapped + e.keyOffset, count: e.unshared)
            if compareKeys(order, midKey, target) < 0 {
                left = mid
            } else {
                right = mid - 1
            }
        }
        seekToRestartPoint(left)
        while try parseNext() {
            if compareKeys(order, key, target) >= 0 { return }
        }
    }

    /// Positions at the entry that starts restart point `i` (invalid when `i` is the number
    /// of restart points). In a block written with restart interval 1 (index blocks), that
    /// is the block's `i`-th entry.
    mutating func seek(toRestart i: Int) throws(KVError) {
        guard i >= 0, i < numRestarts else { return invalidate() }
        seekToRestartPoint(i)
        _ = try parseNext()
    }

    /// Number of restart points in the block.
    var restartCount: Int { numRestarts }

    mutating func next() throws(KVError) {
        precondition(isValid, "next on an invalid block iterator")
        _ = try parseNext()
    }

    /// Steps back: rescans from the restart point before the current entry.
    mutating func prev() throws(KVError) {
        precondition(isValid, "prev on an invalid block iterator")
        let original = current
        while restartPoint(restartIndex) >= original {
            if restartIndex == 0 {
                invalidate()
                return
            }
            restartIndex -= 1
        }
        seekToRestartPoint(restartIndex)
        repeat {
            guard try parseNext() else { return }
        } while nextOffset < original
    }
}

/// An ``InternalIterator`` over one block.
final class BlockIterator: InternalIterator {
    // Unchecked exclusivity: an iterator is used by one thread at a time and no method touches
    // the cursor re-entrantly, so the per-call dynamic check would only cost time.
    @exclusivity(unchecked)
    private var cursor: BlockCursor

    init(block: Block, order: KeyOrder) {
        cursor = BlockCursor(block: block, order: order)
    }

    var isValid: Bool { cursor.isValid }
    func seekToFirst() throws(KVError) { try cursor.seekToFirst() }
    func seekToLast() throws(KVError) { try cursor.seekToLast() }
    func seek(_ target: UnsafeRawBufferPointer) throws(KVError) { try cursor.seek(target) }
    func next() throws(KVError) { try cursor.next() }
    func prev() throws(KVError) { try cursor.prev() }
    var key: UnsafeRawBufferPointer {
        precondition(cursor.isValid, "key of an invalid iterator")
        return cursor.key
    }
    var value: UnsafeRawBufferPointer {
        precondition(cursor.isValid, "value of an invalid iterator")
        return cursor.value
    }
}
