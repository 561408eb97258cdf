import Synchronization

/// Bump allocator for memtable nodes: memory is carved from 1 MiB blocks (larger requests
/// get their own block) and freed all at once when the memtable is freed.
///
/// Thread safety: only the memtable's single writer allocates; `memoryUsage` may be read
/// from any thread.
final class Arena {
    private var blocks: [UnsafeMutableRawPointer] = []
    private var cursor: UnsafeMutableRawPointer?
    private var remaining = 0
    private let blockSize = 1 << 20
    let usage = Atomic<Int>(0)

    init() {}

    deinit {
        for b in blocks { b.deallocate() }
    }

    /// Bytes reserved from the system so far.
    var memoryUsage: Int { usage.load(ordering: .relaxed) }

    /// Returns `size` bytes aligned to 8.
    @inline(__always)
    func allocate(_ size: Int) -> UnsafeMutableRawPointer {
        let rounded = (size + 7) & ~7
        if rounded <= remaining, let c = cursor {
            cursor = c + rounded
            remaining -= rounded
            return c
        }
        return allocateSlow(rounded)
    }

    private func allocateSlow(_ size: Int) -> UnsafeMutableRawPointer {
        if size > blockSize / 4 {
            let p = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 8)
            blocks.append(p)
            usage.add(size, ordering: .relaxed)
            return p
        }
        let p = UnsafeMutableRawPointer.allocate(byteCount: blockSize, alignment: 8)
        blocks.append(p)
        usage.add(blockSize, ordering: .relaxed)
        cursor = p + size
        remaining = blockSize - size
        return p
    }
}
