#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A pthread mutex guarding a `State` value, with condition variables to wait on.
///
/// Synchronization's `Mutex` has no condition variables, and group commit needs writers
/// to sleep until the leader has written their batch; this is the small wrapper that
/// provides both.
///
/// The state lives in its own heap allocation. Sections that wait use ``locked(_:)``, which
/// hands out the pointer rather than an `inout` binding: while a thread waits, others change
/// the state, and reads through the pointer after the wait see their changes.
// @unchecked Sendable: the state is only reachable inside `withLock`/`locked`, which hold the
// pthread mutex for the whole call; `wait` re-acquires it before returning.
package final class ConditionMutex<State>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let state: UnsafeMutablePointer<State>

    package init(_ initial: State) {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        state = .allocate(capacity: 1)
        state.initialize(to: initial)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        state.deinitialize(count: 1)
        state.deallocate()
    }

    /// Runs `body` with the lock held and exclusive access to the state. `body` must not wait.
    @inline(__always)
    package func withLock<R, E: Error>(_ body: (inout State) throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&state.pointee)
    }

    /// Runs `body` with the lock held, giving it the state's address; `body` may call ``wait(_:)``.
    @inline(__always)
    package func locked<R, E: Error>(_ body: (UnsafeMutablePointer<State>) throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(state)
    }

    /// Releases the lock while waiting on `condition`; call only inside ``locked(_:)``.
    package func wait(_ condition: Condition) {
        pthread_cond_wait(condition.cond, mutex)
    }

    /// Like ``wait(_:)`` with a timeout in nanoseconds; returns false on timeout.
    @discardableResult
    package func wait(_ condition: Condition, timeoutNanoseconds: UInt64) -> Bool {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let total = UInt64(now.tv_nsec) + timeoutNanoseconds
        var deadline = timespec()
        deadline.tv_sec = now.tv_sec + Int(total / 1_000_000_000)
        deadline.tv_nsec = Int(total % 1_000_000_000)
        return pthread_cond_timedwait(condition.cond, mutex, &deadline) == 0
    }
}

/// A condition variable used with a ``ConditionMutex``.
// @unchecked Sendable: pthread condition variables are designed for cross-thread use.
package final class Condition: @unchecked Sendable {
    let cond: UnsafeMutablePointer<pthread_cond_t>

    package init() {
        cond = .allocate(capacity: 1)
        cond.initialize(to: pthread_cond_t())
        pthread_cond_init(cond, nil)
    }

    deinit {
        pthread_cond_destroy(cond)
        cond.deallocate()
    }

    package func signal() { pthread_cond_signal(cond) }
    package func broadcast() { pthread_cond_broadcast(cond) }
}
