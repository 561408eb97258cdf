import Synchronization

/// Wakes waits when what they wait for may have changed, so no wait sleeps and polls. The
/// store's: writes waiting for a reshard's gate to open, a switch waiting for in-flight
/// writes to drain, a cleanup waiting for readers of a removed shard, close waiting for
/// background work to end; the indexes': a drop waiting for its back-fill to stop, waits for
/// back-fill and drop workers to end.
///
/// A waiter reads the generation, evaluates its predicate (taking whatever locks that needs),
/// and sleeps only if no signal came in between; a signal bumps the generation and wakes all
/// waiters, who re-evaluate. The events mutex is never held while a predicate runs, so
/// ``signal()`` may be called with the store mutex held. A signal costs one atomic load when
/// nobody waits. Waits also wake every `recheck` as a safety net for a change whose signal
/// raced the waiter's registration through a relaxed store.
package final class WaitEvents: Sendable {
    private let generation = ConditionMutex<UInt64>(0)
    private let changed = Condition()
    private let waiters = Atomic<Int>(0)

    /// An events object nobody waits on yet.
    package init() {}

    /// The longest a wait sleeps before re-evaluating its predicate without a signal.
    package static let recheck: UInt64 = 50_000_000

    /// Wakes every waiter to re-evaluate its predicate.
    package func signal() {
        guard waiters.load(ordering: .sequentiallyConsistent) > 0 else { return }
        generation.withLock { $0 &+= 1 }
        changed.broadcast()
    }

    /// Returns once `done()` is true (or throws what it throws).
    package func wait<E: Error>(until done: () throws(E) -> Bool) throws(E) {
        waiters.add(1, ordering: .sequentiallyConsistent)
        defer { waiters.subtract(1, ordering: .sequentiallyConsistent) }
        while true {
            let seen = generation.withLock { $0 }
            if try done() { return }
            generation.locked { g in
                if g.pointee == seen { generation.wait(changed, timeoutNanoseconds: Self.recheck) }
            }
        }
    }
}
