import Synchronization

/// Bump allocator for memtable nodes: memory is carved from 1 MiB blocks (larger requests
/// get their own block) and freed all at once when the memtable is freed.
///
/// Thread safety: only the memtable's single writer allocates; `memoryUsage` may be read
/// from any thread. Usage counts bytes handed out (plus block tails skipped), not blocks
/// reserved, so a small write buffer is not "full" after its first 1 MiB block.
final class Arena {
    private var blocks: [UnsafeMutableRawPointer] = []
    private var cursor: UnsafeMutableRawPointer?
    private var remaining = 0
    private let blockSize = 1 << 20
    /// Written only by the allocating thread (a plain store); read by others.
    private var used = 0
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
        used += rounded
        usage.store(used, ordering: .relaxed)
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
            return p
        }
        // The tail of the current block is wasted.
        used += remaining
        usage.store(used, ordering: .relaxed)
        let p = UnsafeMutableRawPointer.allocate(byteCount: blockSize, alignment: 8)
        blocks.append(p)
        cursor = p + size
        remaining = blockSize - size
        return p
    }
}
