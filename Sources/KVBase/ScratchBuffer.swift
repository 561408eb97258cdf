/// A growable byte buffer with a stable address, for iterators that hand out
/// `UnsafeRawBufferPointer` views of their current key or value.
///
/// The view returned by ``bytes`` stays valid until the next mutation or until the buffer is
/// freed. Not thread-safe.
public final class ScratchBuffer {
    // Unchecked exclusivity: a scratch buffer belongs to one owner on one thread and its
    // methods do not re-enter, so the dynamic check on every access would only cost time.
    @exclusivity(unchecked)
    private var storage: UnsafeMutableRawPointer
    @exclusivity(unchecked)
    private var capacity: Int
    /// Number of bytes held.
    @exclusivity(unchecked)
    public private(set) var count = 0

    /// An empty buffer with room for `capacity` bytes before it grows.
    public init(capacity: Int = 64) {
        self.capacity = max(capacity, 16)
        storage = .allocate(byteCount: self.capacity, alignment: 8)
    }

    deinit { storage.deallocate() }

    /// The held bytes.
    @inlinable
    public var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: baseAddress, count: count)
    }

    @usableFromInline
    var baseAddress: UnsafeRawPointer { UnsafeRawPointer(storage) }

    /// Empties the buffer, keeping its memory.
    public func removeAll() { count = 0 }

    /// Cuts the buffer to `n` bytes.
    public func truncate(_ n: Int) {
        precondition(n <= count)
        count = n
    }

    /// Makes room for `n` more bytes.
    public func reserve(_ n: Int) {
        if count + n <= capacity { return }
        var newCapacity = capacity * 2
        while newCapacity < count + n { newCapacity *= 2 }
        let p = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 8)
        p.copyMemory(from: storage, byteCount: count)
        storage.deallocate()
        storage = p
        capacity = newCapacity
    }

    /// Appends bytes.
    public func append(_ other: UnsafeRawBufferPointer) {
        guard other.count > 0 else { return }
        reserve(other.count)
        (storage + count).copyMemory(from: other.baseAddress!, byteCount: other.count)
        count += other.count
    }

    /// Replaces the contents with `other`.
    public func assign(_ other: UnsafeRawBufferPointer) {
        count = 0
        append(other)
    }

    /// Appends a little-endian UInt64.
    public func appendFixed64(_ v: UInt64) {
        reserve(8)
        (storage + count).storeBytes(of: v.littleEndian, as: UInt64.self)
        count += 8
    }

    /// A copy of the held bytes.
    public var array: [UInt8] { Array(bytes) }
}
