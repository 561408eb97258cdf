#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Striped mutexes that serialize writes to the same key: every row write holds the stripe of
/// its key's slot while it reads the old row (for index maintenance and read-modify-write
/// commands) and commits, so two writers of one key never interleave between read and write.
/// Multi-key operations take their stripes in ascending order, so they cannot deadlock.
final class KeyLocks: @unchecked Sendable {
    // @unchecked Sendable: the only state is the array of pthread mutexes, allocated once in
    // init and used only through pthread_mutex_lock/unlock, which are made for sharing.
    static let stripes = 1024
    private let mutexes: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutexes = .allocate(capacity: Self.stripes)
        for i in 0..<Self.stripes { pthread_mutex_init(mutexes + i, nil) }
    }

    deinit {
        for i in 0..<Self.stripes { pthread_mutex_destroy(mutexes + i) }
        mutexes.deallocate()
    }

    /// The stripe of a slot.
    @inline(__always)
    static func stripe(ofSlot slot: Int) -> Int { slot & (stripes - 1) }

    /// Runs `body` holding the stripe of `slot`.
    @inline(__always)
    func withLock<R, E: Error>(slot: Int, _ body: () throws(E) -> R) throws(E) -> R {
        let m = mutexes + Self.stripe(ofSlot: slot)
        pthread_mutex_lock(m)
        defer { pthread_mutex_unlock(m) }
        return try body()
    }

    /// Runs `body` holding the stripes of every slot in `slots`, taken in ascending order.
    func withLocks<R, E: Error>(slots: [Int], _ body: () throws(E) -> R) throws(E) -> R {
        if slots.count == 1 { return try withLock(slot: slots[0], body) }
        var stripes = slots.map(Self.stripe(ofSlot:))
        stripes.sort()
        var unique: [Int] = []
        unique.reserveCapacity(stripes.count)
        for s in stripes where unique.last != s { unique.append(s) }
        for s in unique { pthread_mutex_lock(mutexes + s) }
        defer { for s in unique.reversed() { pthread_mutex_unlock(mutexes + s) } }
        return try body()
    }
}
