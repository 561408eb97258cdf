import CShaleSupport

/// A counter that many threads add to without sharing a cache line: each thread adds to its
/// own 64-byte stripe (16 stripes; threads take them in the order they first count), and a
/// read sums the stripes. For statistics on hot paths, where one shared atomic would bounce
/// between cores on every add; a read sees every add that happened before it, and adds
/// racing with it may or may not be counted.
///
/// Thread-safe.
public final class StripedCounter: @unchecked Sendable {
    // @unchecked Sendable: the stripes are only touched with atomic operations (in C).
    private let slots: UnsafeMutablePointer<UInt64>

    /// A counter at 0.
    public init() {
        let count = Int(SHALE_COUNTER_STRIPES) * 8
        let raw = UnsafeMutableRawPointer.allocate(byteCount: count * 8, alignment: 64)
        slots = raw.initializeMemory(as: UInt64.self, repeating: 0, count: count)
    }

    deinit {
        slots.deallocate()
    }

    /// Adds `n` (negative values subtract).
    @inline(__always)
    public func add(_ n: Int = 1) {
        shale_counter_add(slots, UInt64(bitPattern: Int64(n)))
    }

    /// The sum of everything added (wrapping on overflow).
    public var value: Int {
        Int(truncatingIfNeeded: shale_counter_sum(slots))
    }

    /// Sets the counter back to 0 (adds racing with the reset may survive it).
    public func reset() {
        shale_counter_reset(slots)
    }
}

/// This thread's stripe number, 0..<16: threads get consecutive numbers in the order they
/// first ask (the numbering ``StripedCounter`` uses), so the first 16 threads to ask never
/// share one. For per-thread striping of other statistics.
@inline(__always)
public func currentThreadStripe() -> Int {
    Int(shale_thread_stripe())
}
