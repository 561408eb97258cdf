import KVProtocol
import NIOCore
import Synchronization

/// Clients parked in a blocking pop (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN,
/// BZPOPMAX, BZMPOP). A parked client holds no thread: its connection waits on a promise.
///
/// **Serving.** Each waiter carries `serve`, its command's pop (run through the store under
/// the keys' locks) from the key that became ready (or, right after registering, from the
/// first of its keys holding something), which returns the reply and the events to publish,
/// or nil when there is nothing to pop. The registry listens to key changes (``KeyChangeListener``; registered
/// with the keyspace notifier only while someone waits, so writes pay nothing otherwise):
/// after a write to a key commits (after EXEC's commit for a transaction), the key's waiters
/// are tried in arrival order until one finds nothing; so a pushed element reaches exactly one
/// waiter, the longest waiting. A waiter is tried under its own lock, and it is tried once
/// more right after it registers, so a push between the command's first attempt and the
/// registration is not missed (every push is followed by a try that sees it).
///
/// **Ending.** The timer answers the timeout reply; a closed connection (or a killed client)
/// is removed before anything is popped for it, so its element stays for the next waiter;
/// shutdown answers every waiter with its timeout reply.
final class BlockedClients: KeyChangeListener, Sendable {
    final class Waiter: Sendable {
        let session: Int64
        let keys: [[UInt8]]
        let serve: @Sendable (_ ready: [UInt8]?) throws -> (RESPValue, [Commands.Event])?
        let promise: EventLoopPromise<RESPValue>
        let timeoutReply: RESPValue
        /// Done (answered or removed), and the timer; held while the waiter is tried.
        let state = Mutex<(done: Bool, timer: Scheduled<Void>?)>((false, nil))

        init(session: Int64, keys: [[UInt8]], serve: @escaping @Sendable (_ ready: [UInt8]?) throws -> (RESPValue, [Commands.Event])?,
             promise: EventLoopPromise<RESPValue>, timeoutReply: RESPValue) {
            self.session = session
            self.keys = keys
            self.serve = serve
            self.promise = promise
            self.timeoutReply = timeoutReply
        }
    }

    private struct Registry {
        var byKey: [[UInt8]: [Waiter]] = [:]
        var bySession: [Int64: Waiter] = [:]
    }

    private let registry = Mutex(Registry())
    /// Unowned: the notifier holds this registry as a listener (a strong reference back
    /// would be a cycle); both live as long as the server state.
    private unowned let keyspace: KeyspaceNotifier

    init(keyspace: KeyspaceNotifier) {
        self.keyspace = keyspace
    }

    /// Clients parked (INFO's `blocked_clients`).
    var parkedCount: Int { registry.withLock { $0.bySession.count } }

    /// Parks session `session` on `keys` until `serve` returns a reply (tried after every
    /// change of one of the keys), for at most `timeoutMillis` (0: no limit), when it gets
    /// `timeoutReply`. The caller tried `serve` once already and found nothing.
    func block(session: Int64, keys: [[UInt8]], loop: any EventLoop, timeoutMillis: Int64, timeoutReply: RESPValue,
               serve: @escaping @Sendable (_ ready: [UInt8]?) throws -> (RESPValue, [Commands.Event])?) -> EventLoopFuture<RESPValue> {
        let promise = loop.makePromise(of: RESPValue.self)
        let w = Waiter(session: session, keys: keys, serve: serve, promise: promise, timeoutReply: timeoutReply)
        registry.withLock { r in
            for k in Set(keys) { r.byKey[k, default: []].append(w) }
            r.bySession[session] = w
        }
        keyspace.listening(1)
        if timeoutMillis > 0 {
            let timer = loop.scheduleTask(in: .milliseconds(min(timeoutMillis, Int64(Int32.max) * 1000))) { [self] in
                finish(w, reply: w.timeoutReply, events: [])
            }
            let armed = w.state.withLock { s -> Bool in
                if s.done { return false }
                s.timer = timer
                return true
            }
            if !armed { timer.cancel() }
        }
        // A push that committed between the caller's attempt and the registration.
        _ = attempt(w, ready: nil)
        return promise.futureResult
    }

    enum Attempt { case served, empty, gone }

    /// Tries `w`'s pop under its lock; answers it when it got something and publishes the
    /// pop's events (into `held` when given: a loop over waiters publishes after it ends, so
    /// the pops' own events do not recurse into it).
    ///
    /// `ready`: the key whose change prompted the try (the waiter pops from it, as Redis
    /// serves a key that became ready); nil: any of the waiter's keys, in its order.
    private func attempt(_ w: Waiter, ready: [UInt8]?, holding held: UnsafeMutablePointer<[Commands.Event]>? = nil) -> Attempt {
        let outcome = w.state.withLock { s -> (RESPValue, [Commands.Event])?? in
            if s.done { return .some(nil) }
            // A key that now holds another type (or any store error) leaves the client waiting,
            // as Redis does.
            guard let got = (try? w.serve(ready)) ?? nil else { return nil }
            s.done = true
            s.timer?.cancel()
            return .some(got)
        }
        switch outcome {
        case nil: return .empty
        case .some(nil): return .gone
        case .some(let (reply, events)?):
            remove(w)
            w.promise.succeed(reply)
            if let held { held.pointee += events } else { for e in events { keyspace.notify(e.type, e.name, e.key) } }
            return .served
        }
    }

    /// Answers `w` with `reply` unless it is answered already.
    private func finish(_ w: Waiter, reply: RESPValue, events: [Commands.Event]) {
        let first = w.state.withLock { s -> Bool in
            if s.done { return false }
            s.done = true
            s.timer?.cancel()
            return true
        }
        guard first else { return }
        remove(w)
        w.promise.succeed(reply)
    }

    private func remove(_ w: Waiter) {
        let removed = registry.withLock { r -> Bool in
            guard r.bySession[w.session] === w else { return false }
            r.bySession[w.session] = nil
            for k in Set(w.keys) {
                r.byKey[k]?.removeAll { $0 === w }
                if r.byKey[k]?.isEmpty == true { r.byKey[k] = nil }
            }
            return true
        }
        if removed { keyspace.listening(-1) }
    }

    func keyChanged(_ key: [UInt8]) {
        let waiting = registry.withLock { $0.byKey[key] ?? [] }
        if waiting.isEmpty { return }
        var events: [Commands.Event] = []
        withUnsafeMutablePointer(to: &events) { held in
            for w in waiting where attempt(w, ready: key, holding: held) == .empty { break }
        }
        for e in events { keyspace.notify(e.type, e.name, e.key) }
    }

    func allKeysChanged() {}

    /// The session's connection closed (or the client was killed): it is removed, nothing is
    /// popped for it.
    func cancel(session: Int64) {
        guard let w = registry.withLock({ $0.bySession[session] }) else { return }
        finish(w, reply: w.timeoutReply, events: [])
    }

    /// Answers every parked client with its timeout reply (shutdown).
    func cancelAll() {
        for w in registry.withLock({ Array($0.bySession.values) }) { finish(w, reply: w.timeoutReply, events: []) }
    }
}
