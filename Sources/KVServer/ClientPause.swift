import KVStore
import NIOCore
import Synchronization

/// `CLIENT PAUSE timeout [WRITE|ALL]` and `CLIENT UNPAUSE` (Redis 7.0's rules).
///
/// While a pause holds, a connection stops before a request it covers — every request in
/// ALL mode; writes and PUBLISH (commands flagged `write` or `may_replicate`) in WRITE
/// mode — and leaves it and everything behind it queued, exactly as Redis postpones a
/// client; reads keep flowing in WRITE mode. Followers' replication connections are never
/// paused. When the pause ends (its timer, or UNPAUSE) every stopped connection resumes on
/// its own event loop. A second pause while one holds keeps the later end and the stricter
/// mode. The active expiry cycle does not run while paused, so the data set stays still.
final class ClientPause: Sendable {
    private struct State {
        /// Monotonic ms when the pause ends; 0: none.
        var until: Int64 = 0
        var all = false
        var parked: [@Sendable () -> Void] = []
        var timer: Scheduled<Void>?
    }
    private let state = Mutex(State())
    /// Whether a pause holds (the per-request check loads only this).
    private let holding = Atomic<Bool>(false)

    /// The longest pause a timer arms (about 34 years), as for WAIT.
    static let longestMillis: Int64 = 1 << 40

    /// Whether a pause holds now.
    @inline(__always)
    var isActive: Bool { holding.load(ordering: .relaxed) }

    /// Connections stopped by the pause (INFO's `blocked_clients`).
    var parkedCount: Int { state.withLock { $0.parked.count } }

    /// Whether a request of `spec` from `session` must wait.
    func holds(_ spec: CommandSpec?, session: ClientSession) -> Bool {
        guard isActive, !session.isReplica.load(ordering: .relaxed) else { return false }
        let all = state.withLock { $0.until > 0 && $0.all }
        if all { return true }
        guard let spec else { return false }
        return spec.isWrite || spec.flags.contains("may_replicate")
    }

    /// Starts (or extends) a pause of `millis` from now; `loop` runs its end timer.
    func pause(millis: Int64, all: Bool, loop: any EventLoop) {
        let end = monotonicMillis() + min(millis, Self.longestMillis)
        let (rearm, old) = state.withLock { s -> (Bool, Scheduled<Void>?) in
            s.all = s.until > 0 ? (s.all || all) : all
            guard end > s.until else { return (false, nil) }
            s.until = end
            defer { s.timer = nil }
            return (true, s.timer)
        }
        holding.store(true, ordering: .relaxed)
        old?.cancel()
        if rearm { armTimer(loop) }
    }

    private func armTimer(_ loop: any EventLoop) {
        let wait = state.withLock { max(0, $0.until - monotonicMillis()) }
        let timer = loop.scheduleTask(in: .milliseconds(wait + 1)) { [self] in expire(loop) }
        let stale = state.withLock { s -> Bool in
            if s.until == 0 { return true }
            s.timer = timer
            return false
        }
        if stale { timer.cancel() }
    }

    /// The end timer: ends the pause when its time has come, else waits again.
    private func expire(_ loop: any EventLoop) {
        let due = state.withLock { s -> Bool in
            s.timer = nil
            return s.until > 0 && monotonicMillis() >= s.until
        }
        if due { unpause() } else if state.withLock({ $0.until > 0 }) { armTimer(loop) }
    }

    /// Ends the pause now and resumes every stopped connection.
    func unpause() {
        let (parked, timer) = state.withLock { s -> ([@Sendable () -> Void], Scheduled<Void>?) in
            s.until = 0
            s.all = false
            defer { s.parked = []; s.timer = nil }
            return (s.parked, s.timer)
        }
        holding.store(false, ordering: .relaxed)
        timer?.cancel()
        for resume in parked { resume() }
    }

    /// Registers a stopped connection's `resume` (it hops to the connection's loop itself);
    /// runs it at once when the pause has already ended.
    func park(_ resume: @escaping @Sendable () -> Void) {
        let parked = state.withLock { s -> Bool in
            guard s.until > 0 else { return false }
            s.parked.append(resume)
            return true
        }
        if !parked { resume() }
    }
}
