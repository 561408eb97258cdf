import KVProtocol
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One client's client-side caching state (`CLIENT TRACKING`, Redis's `CLIENT_TRACKING*`
/// flags): the mode, the client invalidations are redirected to, the BCAST prefixes, the
/// one-command `CLIENT CACHING` answer, and the invalidations waiting to be placed around
/// the reply of the command this client is running.
///
/// Thread safety: the client's own commands change the mode (on its event loop, or a
/// worker while one of its requests runs there); writers on any thread read it, and may
/// mark the redirect broken. Everything read per request is atomic; the prefixes and the
/// waiting invalidations sit behind their own locks, taken only while tracking is in use.
final class ClientTracking: Sendable {
    /// Redis's tracking flags.
    struct Mode: OptionSet, Sendable {
        let rawValue: Int
        /// `CLIENT TRACKING ON` (Redis's `CLIENT_TRACKING`).
        static let on = Mode(rawValue: 1 << 0)
        /// Broadcasting: invalidations for every key under the prefixes, nothing remembered.
        static let bcast = Mode(rawValue: 1 << 1)
        /// Keys are remembered only for the command after `CLIENT CACHING YES`.
        static let optin = Mode(rawValue: 1 << 2)
        /// Keys are remembered except for the command after `CLIENT CACHING NO`.
        static let optout = Mode(rawValue: 1 << 3)
        /// No invalidations for the client's own changes.
        static let noloop = Mode(rawValue: 1 << 4)
        /// The redirect client was gone when an invalidation was due (`R` in CLIENT LIST).
        static let brokenRedirect = Mode(rawValue: 1 << 5)
    }

    private let modeBits = Atomic<Int>(0)
    private let redirectID = Atomic<Int64>(0)
    /// `CLIENT CACHING YES|NO` was given for the next command (Redis's
    /// `CLIENT_TRACKING_CACHING`); cleared after any command but CLIENT.
    let caching = Atomic<Bool>(false)
    /// The BCAST prefixes, in byte order (Redis keeps them in a radix tree).
    let prefixes = Mutex<[[UInt8]]>([])

    /// Invalidations for this client produced while it runs a command: `before` go ahead of
    /// that command's reply (what Redis writes to the client's buffer at once, such as an
    /// eviction before the command ran), `after` follow it (Redis's pending invalidations
    /// of the current client). ``Commands/execute(_:server:session:loop:name:spec:)`` places them.
    struct Waiting {
        var before: [RESPValue] = []
        var after: [RESPValue] = []
    }
    private let waiting = Mutex(Waiting())
    private let waitingCount = Atomic<Int>(0)

    /// The mode now.
    var mode: Mode { Mode(rawValue: modeBits.load(ordering: .relaxed)) }

    /// Whether tracking is on.
    var isOn: Bool { modeBits.load(ordering: .relaxed) & Mode.on.rawValue != 0 }

    /// The client id invalidations go to; 0 for the client itself.
    var redirect: Int64 { redirectID.load(ordering: .relaxed) }

    /// Sets the mode and the redirect (``TrackingTable/enable(_:redirect:mode:prefixes:)``).
    func set(mode: Mode, redirect: Int64) {
        redirectID.store(redirect, ordering: .relaxed)
        modeBits.store(mode.rawValue, ordering: .relaxed)
    }

    /// Clears every flag (tracking off) and the CACHING answer.
    func reset() {
        modeBits.store(0, ordering: .relaxed)
        redirectID.store(0, ordering: .relaxed)
        caching.store(false, ordering: .relaxed)
    }

    /// The redirect client was not there when an invalidation was due.
    func markRedirectBroken() {
        modeBits.bitwiseOr(Mode.brokenRedirect.rawValue, ordering: .relaxed)
    }

    /// Whether a read by this client now is remembered: default mode, or OPTIN after
    /// `CLIENT CACHING YES`, or OPTOUT without `CLIENT CACHING NO` (Redis's
    /// `trackingRememberKeys` rule). BCAST clients remember nothing.
    var remembersReads: Bool {
        let m = mode
        guard m.contains(.on), !m.contains(.bcast) else { return false }
        let given = caching.load(ordering: .relaxed)
        if m.contains(.optin) && !given { return false }
        if m.contains(.optout) && given { return false }
        return true
    }

    /// Queues `message` to be written before (`before`) or after the reply of the command
    /// this client is running.
    func hold(_ message: RESPValue, before: Bool) {
        waiting.withLock { w in
            if before { w.before.append(message) } else { w.after.append(message) }
        }
        waitingCount.add(1, ordering: .relaxed)
    }

    /// Takes the queued invalidations (nil when there are none: one atomic load).
    func takeWaiting() -> Waiting? {
        guard waitingCount.load(ordering: .relaxed) > 0 else { return nil }
        let w = waiting.withLock { w -> Waiting in
            defer { w = Waiting() }
            return w
        }
        waitingCount.subtract(w.before.count + w.after.count, ordering: .relaxed)
        return w
    }
}

/// The client whose command runs on this thread, while client-side caching is in use: the
/// writer a change is attributed to (NOLOOP), and the client whose own invalidations are
/// placed around its reply rather than written at once. A thread-specific value, set and
/// cleared around each command by the dispatcher; nil outside commands (the active expiry
/// cycle, the periodic eviction).
enum TrackingContext {
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        let rc = pthread_key_create(&key, nil)
        precondition(rc == 0, "pthread_key_create failed: \(rc)")
        return key
    }()

    /// The client running a command on this thread, if set.
    static var current: ClientSession? {
        guard let raw = pthread_getspecific(key) else { return nil }
        return Unmanaged<ClientSession>.fromOpaque(raw).takeUnretainedValue()
    }

    /// Runs `body` with `session` as the current client. Not retained: the caller holds the
    /// session for the whole call, and the value is cleared before returning.
    static func with<T>(_ session: ClientSession, _ body: () throws -> T) rethrows -> T {
        let previous = pthread_getspecific(key)
        pthread_setspecific(key, Unmanaged.passUnretained(session).toOpaque())
        defer { pthread_setspecific(key, previous) }
        return try body()
    }
}
