import Atomics
import KVEngine

/// Wakes the store's waits when what they wait for may have changed, so no wait sleeps and
/// polls: writes waiting for a reshard's gate to open, a switch waiting for in-flight writes
/// to drain, a cleanup waiting for readers of a removed shard, close waiting for background
/// work to end.
///
/// A waiter reads the generation, evaluates its predicate (taking whatever locks that needs),
/// and sleeps only if no signal came in between; a signal bumps the generation and wakes all
/// waiters, who re-evaluate. The events mutex is never held while a predicate runs, so
/// ``signal()`` may be called with the store mutex held. A signal costs one atomic load when
/// nobody waits. Waits also wake every `recheck` as a safety net for a change whose signal
/// raced the waiter's registration through a relaxed store.
final class StoreEvents: Sendable {
    private let generation = ConditionMutex<UInt64>(0)
    private let changed = Condition()
    private let waiters = ManagedAtomic<Int>(0)

    /// The longest a wait sleeps before re-evaluating its predicate without a signal.
    static let recheck: UInt64 = 50_000_000

    /// Wakes every waiter to re-evaluate its predicate.
    func signal() {
        guard waiters.load(ordering: .sequentiallyConsistent) > 0 else { return }
        generation.withLock { $0 &+= 1 }
        changed.broadcast()
    }

    /// Returns once `done()` is true (or throws what it throws).
    func wait<E: Error>(until done: () throws(E) -> Bool) throws(E) {
        waiters.wrappingIncrement(ordering: .sequentiallyConsistent)
        defer { waiters.wrappingDecrement(ordering: .sequentiallyConsistent) }
        while true {
            let seen = generation.withLock { $0 }
            if try done() { return }
            generation.locked { g in
                if g.pointee == seen { generation.wait(changed, timeoutNanoseconds: Self.recheck) }
            }
        }
    }
}
