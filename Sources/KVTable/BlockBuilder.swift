import KVBase

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// Block format (data, index, metaindex and properties blocks), before compression:
//
//   block        := entry* restart* num_restarts
//   entry        := shared varint32 | unshared varint32 | value_len varint32
//                   | key_delta bytes[unshared] | value bytes[value_len]
//   restart      := fixed32   (byte offset of a restart entry from the block start)
//   num_restarts := fixed32   (>= 1)
//
// An entry's key is the first `shared` bytes of the previous entry's key followed by
// `key_delta`. Every `restart_interval`-th entry, starting with the first, is a restart
// point: it has shared = 0 (its full key is stored) and its offset is listed in the restart
// array. Restart offsets are strictly increasing and the first is 0; an empty block is just
// `restart(0) | num_restarts(1)`. Data blocks use restart_interval 16 by default; index,
// metaindex and properties blocks use 1. Keys are strictly increasing under the table's key
// order (bytewise for metaindex and properties blocks).

/// Builds one block in memory: prefix-compressed entries plus the restart array.
///
/// Invariants: `restarts` holds the offsets of the restart entries written so far (the
/// first is 0); `counter` is the number of entries since the last restart point; `lastKey`
/// is the key of the last entry added. Not thread-safe (one table builder owns it).
struct BlockBuilder {
    let restartInterval: Int
    private(set) var buffer: [UInt8] = []
    private var restarts: [UInt32] = [0]
    private var counter = 0
    private(set) var entryCount = 0
    private(set) var lastKey: [UInt8] = []
    private var finished = false

    init(restartInterval: Int) {
        precondition(restartInterval >= 1)
        self.restartInterval = restartInterval
    }

    /// Whether no entry was added since the last reset.
    var isEmpty: Bool { entryCount == 0 }

    /// Size of the block if it were finished now.
    var estimatedSize: Int { buffer.count + restarts.count * 4 + 4 }

    /// Forgets every entry, keeping allocated capacity.
    mutating func reset() {
        buffer.removeAll(keepingCapacity: true)
        restarts.removeAll(keepingCapacity: true)
        restarts.append(0)
        counter = 0
        entryCount = 0
        lastKey.removeAll(keepingCapacity: true)
        finished = false
    }

    /// Appends an entry. The caller guarantees `key` sorts after the previous key and that
    /// the block stays below 4 GiB (restart offsets are 32-bit).
    mutating func add(_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) {
        precondition(!finished, "add after finish")
        var shared = 0
        if counter < restartInterval {
            shared = lastKey.withUnsafeBytes { last in sharedPrefixLength(last, key) }
        } else {
            precondition(buffer.count <= Int(UInt32.max), "block exceeds 4 GiB")
            restarts.append(UInt32(buffer.count))
            counter = 0
        }
        let unshared = key.count - shared
        buffer.appendVarint(UInt64(shared))
        buffer.appendVarint(UInt64(unshared))
        buffer.appendVarint(UInt64(value.count))
        buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: key[shared...]))
        buffer.append(contentsOf: value)
        lastKey.removeSubrange(shared...)
        lastKey.append(contentsOf: UnsafeRawBufferPointer(rebasing: key[shared...]))
        counter += 1
        entryCount += 1
    }

    /// Appends an entry held in arrays.
    mutating func add(_ key: [UInt8], _ value: [UInt8]) {
        key.withUnsafeBytes { k in value.withUnsafeBytes { v in add(k, v) } }
    }

    /// Appends the restart array; ``buffer`` then holds the finished block until ``reset()``.
    mutating func finish() {
        precondition(!finished, "finish called twice")
        precondition(buffer.count <= Int(UInt32.max), "block exceeds 4 GiB")
        for r in restarts { buffer.appendFixed32(r) }
        buffer.appendFixed32(UInt32(restarts.count))
        finished = true
    }
}

/// Length of the longest common prefix of `a` and `b`.
@inline(__always)
func sharedPrefixLength(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Int {
    let n = Swift.min(a.count, b.count)
    guard n > 0, let pa = a.baseAddress, let pb = b.baseAddress else { return 0 }
    var i = 0
    while i + 8 <= n {
        let wa = pa.loadUnaligned(fromByteOffset: i, as: UInt64.self)
        let wb = pb.loadUnaligned(fromByteOffset: i, as: UInt64.self)
        if wa != wb {
            return i + (UInt64(littleEndian: wa) ^ UInt64(littleEndian: wb)).trailingZeroBitCount / 8
        }
        i += 8
    }
    while i < n && pa.load(fromByteOffset: i, as: UInt8.self) == pb.load(fromByteOffset: i, as: UInt8.self) {
        i += 1
    }
    return i
}

/// Three-way comparison of two keys under `order`. Unlike ``KeyOrder/compare(_:_:)`` it never
/// traps: an "internal key" shorter than its 8-byte trailer (which a well-formed table never
/// holds) is compared bytewise.
@inline(__always)
func compareKeys(_ order: KeyOrder, _ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Int {
    switch order {
    case .bytewise:
        return compareRaw(a.baseAddress, a.count, b.baseAddress, b.count)
    case .internalKey:
        let la = a.count - internalKeyTrailerSize
        let lb = b.count - internalKeyTrailerSize
        guard la >= 0, lb >= 0, let pa = a.baseAddress, let pb = b.baseAddress else {
            return compareRaw(a.baseAddress, a.count, b.baseAddress, b.count)
        }
        let r = compareRaw(pa, la, pb, lb)
        if r != 0 { return r }
        let ta = UInt64(littleEndian: pa.loadUnaligned(fromByteOffset: la, as: UInt64.self))
        let tb = UInt64(littleEndian: pb.loadUnaligned(fromByteOffset: lb, as: UInt64.self))
        return ta > tb ? -1 : (ta < tb ? 1 : 0)
    }
}

/// memcmp order over two byte ranges, shorter prefix first.
@inline(__always)
func compareRaw(_ a: UnsafeRawPointer?, _ la: Int, _ b: UnsafeRawPointer?, _ lb: Int) -> Int {
    let n = Swift.min(la, lb)
    if n > 0 {
        let r = memcmp(a.unsafelyUnwrapped, b.unsafelyUnwrapped, n)
        if r != 0 { return r < 0 ? -1 : 1 }
    }
    return la < lb ? -1 : (la > lb ? 1 : 0)
}
