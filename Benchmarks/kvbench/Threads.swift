#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import KVBase
import Synchronization

/// Monotonic time in nanoseconds, unsigned (KVBase's clock; a vDSO call on Linux).
@inline(__always)
func nowNanos() -> UInt64 {
    UInt64(monotonicNanos())
}

/// Runs `count` copies of `body` on dedicated POSIX threads (never the cooperative pool:
/// benchmark threads block on I/O and spin) and returns their results in thread order.
///
/// `body` receives the thread's index and a `ready` function: it sets itself up (opens its
/// session), then calls `ready()`, which waits until every thread is ready so that all of
/// them start measuring together, as db_bench's threads do. A thread that fails before
/// calling `ready()` still releases the others.
func runThreads<Result: Sendable>(
    count: Int, _ body: @escaping @Sendable (_ index: Int, _ ready: () -> Void) throws -> Result
) throws -> [Result] {
    let shared = ThreadRun<Result>(count: count)
    var threads: [pthread_t] = []
    for index in 0..<count {
        let context = Unmanaged.passRetained(ThreadContext {
            var arrived = false
            let outcome = Swift.Result {
                try body(index) {
                    if !arrived {
                        arrived = true
                        shared.arrive()
                    }
                }
            }
            if !arrived { shared.arrive() }
            shared.finish(index, outcome)
        })
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { raw in
            let context = Unmanaged<ThreadContext>.fromOpaque(raw!).takeRetainedValue()
            context.body()
            return nil
        }, context.toOpaque())
        precondition(rc == 0, "pthread_create failed with \(rc)")
        threads.append(thread)
    }
    for thread in threads { pthread_join(thread, nil) }
    return try shared.results()
}

/// What one thread runs.
private final class ThreadContext: Sendable {
    let body: @Sendable () -> Void

    init(body: @escaping @Sendable () -> Void) {
        self.body = body
    }
}

/// The start barrier and result slots of one ``runThreads(count:_:)`` call.
private final class ThreadRun<Value: Sendable>: Sendable {
    private let count: Int
    private let arrived = Atomic<Int>(0)
    private let outcomes: Mutex<[Result<Value, any Error>?]>

    init(count: Int) {
        self.count = count
        outcomes = Mutex(Array(repeating: nil, count: count))
    }

    /// Waits until every thread has arrived.
    func arrive() {
        arrived.add(1, ordering: .acquiringAndReleasing)
        while arrived.load(ordering: .acquiring) < count { sched_yield() }
    }

    func finish(_ index: Int, _ outcome: Result<Value, any Error>) {
        outcomes.withLock { $0[index] = outcome }
    }

    /// The results in thread order; rethrows the first thread's error.
    func results() throws -> [Value] {
        let all = outcomes.withLock { $0 }
        return try all.map { try $0!.get() }
    }
}

/// A flag raised once by one thread and polled by others (readwhilewriting's writer stops
/// when every reader has finished).
final class StopFlag: Sendable {
    private let remaining: Atomic<Int>

    /// A flag that is raised after `count` calls to ``arrive()``.
    init(count: Int) { remaining = Atomic(count) }

    func arrive() { remaining.subtract(1, ordering: .releasing) }

    var isRaised: Bool { remaining.load(ordering: .acquiring) <= 0 }
}

/// A shared counter (the YCSB insert sequence).
final class SharedCounter: Sendable {
    private let value: Atomic<Int>

    init(_ initial: Int) { value = Atomic(initial) }

    /// Returns the current value and increments it.
    func next() -> Int { value.add(1, ordering: .relaxed).oldValue }

    /// The current value (one past the last number handed out).
    var current: Int { value.load(ordering: .relaxed) }
}
