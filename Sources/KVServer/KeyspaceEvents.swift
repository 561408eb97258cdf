import KVStore
import Synchronization

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

/// Publishes Redis's keyspace notifications (`notify-keyspace-events`) through the server's
/// pub/sub hub: for an event of an enabled class, `__keyspace@0__:<key>` gets the event name
/// and `__keyevent@0__:<event>` gets the key, as the K and E flags ask. With the default
/// (nothing enabled) an event costs one atomic load.
final class KeyspaceNotifier: Sendable {
    private let flags = Atomic<Int>(0)
    private let hub: PubSubHub

    init(hub: PubSubHub, flags: KeyspaceEventFlags) {
        self.hub = hub
        self.flags.store(flags.rawValue, ordering: .relaxed)
    }

    /// The classes in force (CONFIG SET changes them).
    var enabled: KeyspaceEventFlags {
        get { KeyspaceEventFlags(rawValue: flags.load(ordering: .relaxed)) }
        set { flags.store(newValue.rawValue, ordering: .relaxed) }
    }

    /// Whether an event of `type` would be published.
    @inline(__always)
    func wants(_ type: KeyspaceEventFlags) -> Bool {
        let f = flags.load(ordering: .relaxed)
        return f & type.rawValue != 0 && f & (KeyspaceEventFlags.keyspace.rawValue | KeyspaceEventFlags.keyevent.rawValue) != 0
    }

    static let keyspacePrefix = Array("__keyspace@0__:".utf8)
    static let keyeventPrefix = Array("__keyevent@0__:".utf8)

    /// Publishes event `event` of class `type` for `key`, when enabled.
    func notify(_ type: KeyspaceEventFlags, _ event: String, _ key: [UInt8]) {
        guard wants(type) else { return }
        let f = enabled
        let name = Array(event.utf8)
        if f.contains(.keyspace) { hub.publish(channel: Self.keyspacePrefix + key, message: name) }
        if f.contains(.keyevent) { hub.publish(channel: Self.keyeventPrefix + name, message: key) }
    }
}
