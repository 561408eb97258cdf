import KVStore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The classes of Redis's `notify-keyspace-events`, with its letters.
struct KeyspaceEventFlags: OptionSet, Sendable, Hashable {
    let rawValue: Int
    /// `K`: publish on `__keyspace@0__:<key>` with the event as the message.
    static let keyspace = KeyspaceEventFlags(rawValue: 1 << 0)
    /// `E`: publish on `__keyevent@0__:<event>` with the key as the message.
    static let keyevent = KeyspaceEventFlags(rawValue: 1 << 1)
    /// `g`: generic commands (DEL, EXPIRE, RENAME, PERSIST, ...).
    static let generic = KeyspaceEventFlags(rawValue: 1 << 2)
    /// `$`: string commands.
    static let string = KeyspaceEventFlags(rawValue: 1 << 3)
    /// `l`, `s`, `h`, `z`: list, set, hash, sorted-set commands.
    static let list = KeyspaceEventFlags(rawValue: 1 << 4)
    static let set = KeyspaceEventFlags(rawValue: 1 << 5)
    static let hash = KeyspaceEventFlags(rawValue: 1 << 6)
    static let zset = KeyspaceEventFlags(rawValue: 1 << 7)
    /// `x`: a key expired.
    static let expired = KeyspaceEventFlags(rawValue: 1 << 8)
    /// `e`: a key was evicted for memory (this server never evicts).
    static let evicted = KeyspaceEventFlags(rawValue: 1 << 9)
    /// `t`: stream commands.
    static let stream = KeyspaceEventFlags(rawValue: 1 << 10)
    /// `m`: a read missed its key (not part of `A`).
    static let keyMiss = KeyspaceEventFlags(rawValue: 1 << 11)
    /// `d`: module key types.
    static let module = KeyspaceEventFlags(rawValue: 1 << 12)
    /// `n`: a key was created (not part of `A`).
    static let new = KeyspaceEventFlags(rawValue: 1 << 13)
    /// `A`: `g$lshzxetd`.
    static let all: KeyspaceEventFlags = [.generic, .string, .list, .set, .hash, .zset, .expired, .evicted, .stream, .module]

    /// Parses Redis's letters; nil for any other character (Redis's error then).
    init?(letters: String) {
        var f: KeyspaceEventFlags = []
        for ch in letters {
            switch ch {
            case "A": f.formUnion(.all)
            case "g": f.insert(.generic)
            case "$": f.insert(.string)
            case "l": f.insert(.list)
            case "s": f.insert(.set)
            case "h": f.insert(.hash)
            case "z": f.insert(.zset)
            case "x": f.insert(.expired)
            case "e": f.insert(.evicted)
            case "t": f.insert(.stream)
            case "m": f.insert(.keyMiss)
            case "d": f.insert(.module)
            case "n": f.insert(.new)
            case "K": f.insert(.keyspace)
            case "E": f.insert(.keyevent)
            default: return nil
            }
        }
        self = f
    }

    init(rawValue: Int) { self.rawValue = rawValue }

    /// Redis's `CONFIG GET` form (`keyspaceEventsFlagsToString`; like Redis, it leaves out
    /// `n` after `A`, though the class stays enabled).
    var letters: String {
        var s = ""
        if isSuperset(of: .all) {
            s = "A"
        } else {
            for (flag, letter) in [(KeyspaceEventFlags.generic, "g"), (.string, "$"), (.list, "l"), (.set, "s"), (.hash, "h"),
                                   (.zset, "z"), (.expired, "x"), (.evicted, "e"), (.stream, "t"), (.module, "d"), (.new, "n")]
            where contains(flag) {
                s += letter
            }
        }
        if contains(.keyspace) { s += "K" }
        if contains(.keyevent) { s += "E" }
        if contains(.keyMiss) { s += "m" }
        return s
    }

    /// Redis's error for a bad `notify-keyspace-events` value.
    static let invalidMessage = "Invalid event class character. Use 'Ag$lshzxeKEtmdn'."
}

/// Something that must hear of every change of a key, whether or not keyspace notifications
/// are enabled: WATCH (a transaction aborts when a watched key changed) and client-side
/// caching (a tracked key's readers get an invalidation).
protocol KeyChangeListener: AnyObject, Sendable {
    /// `key` was changed (written, deleted, expired, renamed from or to).
    func keyChanged(_ key: [UInt8])
    /// Every key may have changed (FLUSHALL, FLUSHDB).
    func allKeysChanged()
}

/// Publishes Redis's keyspace notifications (`notify-keyspace-events`) through the server's
/// pub/sub hub: for an event of an enabled class, `__keyspace@0__:<key>` gets the event name
/// and `__keyevent@0__:<event>` gets the key, as the K and E flags ask. It also tells the
/// ``KeyChangeListener``s of every change, while one of them has something registered
/// (``listening(_:)``). With nothing enabled and nothing registered an event costs two
/// atomic loads.
final class KeyspaceNotifier: Sendable {
    private let flags = Atomic<Int>(0)
    private let hub: PubSubHub
    /// Registrations the listeners hold (watched keys, tracking clients): while 0 they are
    /// not called.
    private let registrations = Atomic<Int>(0)
    private let listeners: Mutex<[any KeyChangeListener]>

    init(hub: PubSubHub, flags: KeyspaceEventFlags) {
        self.hub = hub
        self.flags.store(flags.rawValue, ordering: .relaxed)
        listeners = Mutex([])
    }

    /// Adds a listener (at server start).
    func addListener(_ listener: any KeyChangeListener) {
        listeners.withLock { $0.append(listener) }
    }

    /// A listener gained (`delta` > 0) or dropped registrations.
    func listening(_ delta: Int) {
        registrations.wrappingAdd(delta, ordering: .sequentiallyConsistent)
    }

    /// Whether a listener has something registered.
    @inline(__always)
    var hasListeners: Bool { registrations.load(ordering: .sequentiallyConsistent) > 0 }

    /// The classes in force (CONFIG SET changes them).
    var enabled: KeyspaceEventFlags {
        get { KeyspaceEventFlags(rawValue: flags.load(ordering: .relaxed)) }
        set { flags.store(newValue.rawValue, ordering: .relaxed) }
    }

    /// Whether an event of `type` would be published, or (for a change, not `new` or
    /// `keymiss`) heard by a listener: callers skip building events when not.
    @inline(__always)
    func wants(_ type: KeyspaceEventFlags) -> Bool {
        let f = flags.load(ordering: .relaxed)
        if f & type.rawValue != 0 && f & (KeyspaceEventFlags.keyspace.rawValue | KeyspaceEventFlags.keyevent.rawValue) != 0 {
            return true
        }
        return type != .new && type != .keyMiss && hasListeners
    }

    static let keyspacePrefix = Array("__keyspace@0__:".utf8)
    static let keyeventPrefix = Array("__keyevent@0__:".utf8)

    /// Publishes event `event` of class `type` for `key`, when enabled; tells the listeners of
    /// a change (any class but `new` and `keymiss`).
    func notify(_ type: KeyspaceEventFlags, _ event: String, _ key: [UInt8]) {
        if deferring.load(ordering: .relaxed) > 0, let held = EventHold.current {
            held.events.append(.change(type, event, key))
            return
        }
        if type != .new && type != .keyMiss && hasListeners {
            for l in listeners.withLock({ $0 }) { l.keyChanged(key) }
        }
        let f = flags.load(ordering: .relaxed)
        guard f & type.rawValue != 0 && f & (KeyspaceEventFlags.keyspace.rawValue | KeyspaceEventFlags.keyevent.rawValue) != 0 else {
            return
        }
        let name = Array(event.utf8)
        if f & KeyspaceEventFlags.keyspace.rawValue != 0 { hub.publish(channel: Self.keyspacePrefix + key, message: name) }
        if f & KeyspaceEventFlags.keyevent.rawValue != 0 { hub.publish(channel: Self.keyeventPrefix + name, message: key) }
    }

    /// Every key may have changed (FLUSHALL): tells the listeners.
    func flushed() {
        if deferring.load(ordering: .relaxed) > 0, let held = EventHold.current {
            held.events.append(.flush)
            return
        }
        guard hasListeners else { return }
        for l in listeners.withLock({ $0 }) { l.allKeysChanged() }
    }

    // MARK: holding events back (EXEC)

    /// EXECs holding their events back now (``holdingEvents(_:)``): while 0, ``notify`` does
    /// not look for a hold.
    private let deferring = Atomic<Int>(0)

    /// Runs `body` (an EXEC) with the events its commands raise on this thread held back, then
    /// publishes them in order, and tells the listeners, when `body` returns true (the
    /// transaction committed); drops them when it returns false or throws. Listeners and
    /// subscribers thus never hear of a change before it is visible.
    func holdingEvents(_ body: () throws -> Bool) rethrows {
        let hold = EventHold()
        let previous = EventHold.current
        deferring.wrappingAdd(1, ordering: .relaxed)
        EventHold.current = hold
        let committed: Bool
        do {
            defer {
                EventHold.current = previous
                deferring.wrappingSubtract(1, ordering: .relaxed)
            }
            committed = try body()
        }
        guard committed else { return }
        for e in hold.events {
            switch e {
            case .change(let type, let event, let key): notify(type, event, key)
            case .flush: flushed()
            }
        }
    }
}

/// The events an EXEC holds back, kept per thread (``KeyspaceNotifier/holdingEvents(_:)``).
final class EventHold {
    enum Event {
        case change(KeyspaceEventFlags, String, [UInt8])
        case flush
    }

    var events: [Event] = []

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        let rc = pthread_key_create(&key, nil)
        precondition(rc == 0, "pthread_key_create failed: \(rc)")
        return key
    }()

    /// The calling thread's hold, if it has one. Not retained: ``KeyspaceNotifier/holdingEvents(_:)``
    /// keeps it alive while it is installed.
    static var current: EventHold? {
        get {
            guard let raw = pthread_getspecific(key) else { return nil }
            return Unmanaged<EventHold>.fromOpaque(raw).takeUnretainedValue()
        }
        set {
            pthread_setspecific(key, newValue.map { Unmanaged.passUnretained($0).toOpaque() })
        }
    }
}
