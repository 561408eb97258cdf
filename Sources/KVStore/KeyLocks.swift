#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// A token for the calling thread (its pthread id).
@inline(__always)
func currentThreadToken() -> UInt {
    #if canImport(Glibc)
    UInt(pthread_self())
    #else
    UInt(bitPattern: pthread_self())
    #endif
}

/// Striped mutexes that serialize writes to the same key: every row write holds the stripe of
/// its key's slot while it reads the old row (for index maintenance and read-modify-write
/// commands) and commits, so two writers of one key never interleave between read and write.
/// Multi-key operations take their stripes in ascending order, so they cannot deadlock.
///
/// A transaction takes every stripe (``lockAll()``); while it holds them, the stripe calls of
/// its own thread run without locking (they are already its), so the commands it runs use
/// the ordinary write paths.
final class KeyLocks: @unchecked Sendable {
    // @unchecked Sendable: the state is the array of pthread mutexes, allocated once in init
    // and used only through pthread_mutex_lock/unlock, which are made for sharing, and an
    // atomic.
    static let stripes = 1024
    private let mutexes: UnsafeMutablePointer<pthread_mutex_t>
    /// The thread holding every stripe (``currentThreadToken()``), or 0.
    private let allOwner = Atomic<UInt>(0)

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

    /// Whether the calling thread holds every stripe.
    @inline(__always)
    var heldByCurrentThread: Bool {
        let owner = allOwner.load(ordering: .relaxed)
        return owner != 0 && owner == currentThreadToken()
    }

    /// Takes every stripe, in ascending order, for the calling thread.
    func lockAll() {
        for s in 0..<Self.stripes { pthread_mutex_lock(mutexes + s) }
        allOwner.store(currentThreadToken(), ordering: .relaxed)
    }

    /// Releases what ``lockAll()`` took.
    func unlockAll() {
        allOwner.store(0, ordering: .relaxed)
        for s in (0..<Self.stripes).reversed() { pthread_mutex_unlock(mutexes + s) }
    }

    /// Runs `body` holding the stripe of `slot`.
    @inline(__always)
    func withLock<R, E: Error>(slot: Int, _ body: () throws(E) -> R) throws(E) -> R {
        if heldByCurrentThread { return try body() }
        let m = mutexes + Self.stripe(ofSlot: slot)
        pthread_mutex_lock(m)
        defer { pthread_mutex_unlock(m) }
        return try body()
    }

    /// Runs `body` holding the stripes of every slot in `slots`, taken in ascending order.
    func withLocks<R, E: Error>(slots: [Int], _ body: () throws(E) -> R) throws(E) -> R {
        if slots.count == 1 { return try withLock(slot: slots[0], body) }
        if heldByCurrentThread { return try body() }
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
