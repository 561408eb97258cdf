import KVProtocol
import Synchronization

/// Redis's client-side caching (`CLIENT TRACKING`): which clients may hold which keys, and
/// the invalidation messages that tell them a key changed.
///
/// - Default mode: the keys of every read-only command a tracking client runs are
///   remembered with the client's id (``remember(_:for:)``, called before the read, so a
///   change that races the read still finds the reader). A change of the key sends each
///   such client one invalidation and forgets the key for all of them: a client hears of a
///   key once per read, as in Redis. The table holds at most `tracking-table-max-keys` keys
///   (0: no bound); above it random keys are evicted, their clients invalidated as if the
///   keys had changed (``evictIfNeeded(server:current:)``, before each command and every
///   100 ms).
/// - BCAST mode: nothing is remembered; a change of a key under one of the prefixes is
///   gathered for the prefix and sent, sorted, to its clients when the command that made it
///   ends (``flushBroadcasts(server:current:)``).
/// - FLUSHALL and FLUSHDB send every tracking client one invalidation with a null key list
///   and empty the table.
///
/// Delivery (``send(_:to:server:current:timing:)``): to the client, or to the client it
/// redirects to; a RESP3 destination gets a `>2 invalidate [keys]` push, a RESP2 redirect
/// destination with subscriptions a `message __redis__:invalidate [keys]`; a RESP2 client
/// without a redirect gets nothing. A redirect to a client that is gone marks the redirect
/// broken and sends the tracking client (if RESP3) `tracking-redir-broken <id>` instead.
/// Invalidations for the client running the command go into its ``ClientTracking`` queue,
/// placed around that command's reply as Redis places them; others go through the
/// destination's connection, which writes them on its own event loop.
///
/// Thread safety: the key table is split into ``stripeCount`` stripes by key hash, each
/// behind its own mutex; the prefixes, the tracking clients and the settings each have
/// their own. Delivery runs with no lock held. With no tracking client, the dispatcher's
/// only cost is one atomic load per command (``isActive``).
final class TrackingTable: Sendable {
    /// Stripes of the key table.
    static let stripeCount = 16

    /// One stripe: key → ids of the clients that read it, and the keys in an array so a
    /// random one is found in O(1) for eviction.
    ///
    /// Invariant: `order[entries[k].slot] == k` for every key `k`, and `order.count ==
    /// entries.count`.
    private struct Stripe {
        struct Entry {
            var slot: Int
            /// Readers' ids, each once (usually one or two, so an array).
            var ids: [Int64]
        }
        var entries: [[UInt8]: Entry] = [:]
        var order: [[UInt8]] = []

        /// Removes `key`, returning its readers.
        mutating func remove(_ key: [UInt8]) -> [Int64]? {
            guard let e = entries.removeValue(forKey: key) else { return nil }
            let last = order.removeLast()
            if e.slot < order.count {
                order[e.slot] = last
                entries[last]!.slot = e.slot
            }
            return e.ids
        }
    }

    private final class StripeBox: Sendable {
        let state = Mutex(Stripe())
    }

    /// A BCAST prefix: its clients, and the keys under it changed since the last flush with
    /// the id of the client that last changed each (0: no client), for NOLOOP.
    private struct Broadcast {
        var clients: [Int64: ClientSession] = [:]
        var changed: [[UInt8]: Int64] = [:]
    }

    private let stripes: [StripeBox] = (0..<TrackingTable.stripeCount).map { _ in StripeBox() }
    private let prefixes = Mutex<[[UInt8]: Broadcast]>([:])
    /// Clients with tracking on, by id.
    private let trackers = Mutex<[Int64: ClientSession]>([:])

    private let trackerCount = Atomic<Int>(0)
    private let keyCount = Atomic<Int>(0)
    private let itemCount = Atomic<Int>(0)
    private let prefixCount = Atomic<Int>(0)
    private let broadcastPending = Atomic<Bool>(false)
    private let maxKeysSetting: Atomic<Int>
    /// Consecutive eviction rounds that did not get the table under its bound (Redis's
    /// `timeout_counter`: each round tries 100 keys more).
    private let evictionRounds = Atomic<Int>(0)

    /// The channel RESP2 redirect destinations get invalidations on.
    static let channel = Array("__redis__:invalidate".utf8)

    init(maxKeys: Int) {
        maxKeysSetting = Atomic(maxKeys)
    }

    // MARK: figures

    /// Whether any client has tracking on: the dispatcher's check per command.
    @inline(__always)
    var isActive: Bool { trackerCount.load(ordering: .relaxed) > 0 }

    /// Clients with tracking on (INFO `tracking_clients`).
    var clients: Int { trackerCount.load(ordering: .relaxed) }
    /// Keys remembered (INFO `tracking_total_keys`).
    var totalKeys: Int { keyCount.load(ordering: .relaxed) }
    /// Key-client pairs remembered (INFO `tracking_total_items`).
    var totalItems: Int { itemCount.load(ordering: .relaxed) }
    /// BCAST prefixes with at least one client (INFO `tracking_total_prefixes`).
    var totalPrefixes: Int { prefixCount.load(ordering: .relaxed) }

    /// `tracking-table-max-keys` (0: no bound); CONFIG SET changes it.
    var maxKeys: Int {
        get { maxKeysSetting.load(ordering: .relaxed) }
        set { maxKeysSetting.store(newValue, ordering: .relaxed) }
    }

    // MARK: clients

    /// Turns tracking on for `session` (or changes its options), as `CLIENT TRACKING ON`
    /// does once the options were checked: `mode` without the broken-redirect flag, and in
    /// BCAST mode the prefixes added (the empty prefix when none is given). Returns whether
    /// it was off before (the caller then registers with the keyspace notifier).
    @discardableResult
    func enable(_ session: ClientSession, redirect: Int64, mode: ClientTracking.Mode, prefixes new: [[UInt8]]) -> Bool {
        let wasOff = trackers.withLock { $0.updateValue(session, forKey: session.id) == nil }
        if wasOff { trackerCount.add(1, ordering: .relaxed) }
        session.tracking.set(mode: mode.union(.on), redirect: redirect)
        if mode.contains(.bcast) {
            let wanted = new.isEmpty ? [[]] : new
            prefixes.withLock { table in
                for p in wanted {
                    if table[p] == nil { prefixCount.add(1, ordering: .relaxed) }
                    table[p, default: Broadcast()].clients[session.id] = session
                }
            }
            session.tracking.prefixes.withLock { mine in
                for p in wanted where !mine.contains(p) { mine.append(p) }
                mine.sort { $0.lexicographicallyPrecedes($1) }
            }
        }
        return wasOff
    }

    /// Turns tracking off for `session` (`CLIENT TRACKING OFF`, RESET, disconnect): its
    /// prefixes are left, its flags cleared. Its ids in the key table go lazily, when their
    /// keys change or are evicted, as in Redis — except that the last tracking client to
    /// leave empties the table (no change of a key is heard without a tracking client, and
    /// nobody would be told). Returns whether it was on.
    @discardableResult
    func disable(_ session: ClientSession) -> Bool {
        let mine = session.tracking.prefixes.withLock { p -> [[UInt8]] in
            defer { p = [] }
            return p
        }
        if !mine.isEmpty {
            prefixes.withLock { table in
                for p in mine {
                    table[p]?.clients[session.id] = nil
                    if table[p]?.clients.isEmpty == true {
                        table[p] = nil
                        prefixCount.subtract(1, ordering: .relaxed)
                    }
                }
            }
        }
        let wasOn = trackers.withLock { t -> Bool in
            guard t.removeValue(forKey: session.id) != nil else { return false }
            trackerCount.subtract(1, ordering: .relaxed)
            // Under the lock `enable` takes: no client can start tracking and remember a
            // key meanwhile. (Lock order: trackers, then a stripe.)
            if t.isEmpty { emptyKeyTable() }
            return true
        }
        session.tracking.reset()
        return wasOn
    }

    // MARK: reads

    /// Remembers that `session` read `keys` (default mode; the caller checked
    /// ``ClientTracking/remembersReads``).
    func remember(_ keys: some Sequence<[UInt8]>, for session: ClientSession) {
        let id = session.id
        for key in keys {
            let (newKey, newItem) = stripe(for: key).state.withLock { s -> (Bool, Bool) in
                if var e = s.entries[key] {
                    if e.ids.contains(id) { return (false, false) }
                    e.ids.append(id)
                    s.entries[key] = e
                    return (false, true)
                }
                s.entries[key] = Stripe.Entry(slot: s.order.count, ids: [id])
                s.order.append(key)
                return (true, true)
            }
            if newKey { keyCount.add(1, ordering: .relaxed) }
            if newItem { itemCount.add(1, ordering: .relaxed) }
        }
    }

    private func stripe(for key: [UInt8]) -> StripeBox {
        // FNV-1a over at most the first 64 bytes: enough to spread keys, bounded per call.
        var h: UInt32 = 2_166_136_261
        for b in key.prefix(64) { h = (h ^ UInt32(b)) &* 16_777_619 }
        return stripes[Int(h % UInt32(Self.stripeCount))]
    }

    // MARK: changes

    /// `key` changed: its BCAST prefixes gather it, and its readers are invalidated (except
    /// a NOLOOP reader that made the change itself). `writer` is the client whose command
    /// changed it (nil: none, as for an expired key).
    func keyChanged(_ key: [UInt8], writer: ClientSession?, server: ServerState) {
        if prefixCount.load(ordering: .relaxed) > 0 { gatherForBroadcast(key, writer: writer?.id ?? 0) }
        invalidate(key, writer: writer, server: server, current: writer, evicted: false)
    }

    /// Forgets `key` and sends its readers an invalidation. `current` is the client running
    /// a command on this thread; an eviction (`evicted`) has no writer, and is written to
    /// the current client ahead of its reply, as Redis writes it before running the command.
    private func invalidate(_ key: [UInt8], writer: ClientSession?, server: ServerState, current: ClientSession?, evicted: Bool) {
        // Always under the stripe's lock, even when the table looks empty: the lock orders
        // this change against a reader that inserts its key and then reads (either the
        // reader is found here, or its read comes after the change).
        guard let ids = stripe(for: key).state.withLock({ $0.remove(key) }) else { return }
        keyCount.subtract(1, ordering: .relaxed)
        itemCount.subtract(ids.count, ordering: .relaxed)
        let targets = trackers.withLock { t in ids.compactMap { t[$0] } }
        for target in targets {
            let mode = target.tracking.mode
            // A client that switched to BCAST since its read does not get these (Redis).
            guard mode.contains(.on), !mode.contains(.bcast) else { continue }
            if mode.contains(.noloop), let writer, writer === target { continue }
            let timing: Timing = !evicted && target === current ? .afterReply : .now
            send(.array([.bulk(key)]), to: target, server: server, current: current, timing: timing)
        }
    }

    private func gatherForBroadcast(_ key: [UInt8], writer: Int64) {
        let gathered = prefixes.withLock { table -> Bool in
            let matching = table.keys.filter { key.starts(with: $0) }
            for p in matching { table[p]!.changed[key] = writer }
            return !matching.isEmpty
        }
        if gathered { broadcastPending.store(true, ordering: .relaxed) }
    }

    /// Every key may have changed (FLUSHALL, FLUSHDB): each tracking client gets an
    /// invalidation with a null key list, and the table is emptied.
    func allKeysChanged(server: ServerState, current: ClientSession?) {
        let all = trackers.withLock { Array($0.values) }
        for target in all.sorted(by: { $0.id < $1.id }) {
            send(.nullBulk, to: target, server: server, current: current, timing: target === current ? .afterReply : .now)
        }
        emptyKeyTable()
    }

    private func emptyKeyTable() {
        for box in stripes {
            let (keys, items) = box.state.withLock { s -> (Int, Int) in
                defer { s = Stripe() }
                return (s.order.count, s.entries.values.reduce(0) { $0 + $1.ids.count })
            }
            keyCount.subtract(keys, ordering: .relaxed)
            itemCount.subtract(items, ordering: .relaxed)
        }
    }

    /// Sends what the BCAST prefixes gathered since the last call: per prefix, the changed
    /// keys in byte order to each of its clients (a NOLOOP client without the keys it changed
    /// itself, and nothing when that leaves none). Called when a command that may have
    /// changed keys ends (`current` is its client), and after the active expiry cycle.
    func flushBroadcasts(server: ServerState, current: ClientSession?) {
        guard broadcastPending.load(ordering: .relaxed),
              broadcastPending.exchange(false, ordering: .relaxed) else { return }
        // Prefixes in byte order, as Redis walks its radix tree.
        let batches = prefixes.withLock { table -> [([ClientSession], [([UInt8], Int64)])] in
            var out: [([ClientSession], [([UInt8], Int64)])] = []
            let due = table.keys.filter { table[$0]?.changed.isEmpty == false }.sorted { $0.lexicographicallyPrecedes($1) }
            for p in due {
                let b = table[p]!
                let keys = b.changed.sorted { $0.key.lexicographicallyPrecedes($1.key) }.map { ($0.key, $0.value) }
                out.append((Array(b.clients.values), keys))
                table[p]!.changed = [:]
            }
            return out
        }
        for (clients, keys) in batches {
            let everyone = RESPValue.array(keys.map { .bulk($0.0) })
            for client in clients.sorted(by: { $0.id < $1.id }) {
                var list = everyone
                if client.tracking.mode.contains(.noloop) {
                    let others = keys.filter { $0.1 != client.id }
                    if others.isEmpty { continue }
                    if others.count != keys.count { list = .array(others.map { .bulk($0.0) }) }
                }
                send(list, to: client, server: server, current: current, timing: .afterReply)
            }
        }
    }

    // MARK: the bound

    /// Evicts random keys while the table holds more than `tracking-table-max-keys` (Redis's
    /// `trackingLimitUsedSlots`): at most 100 per round times the rounds in a row that could
    /// not get under the bound, each invalidated for its readers.
    func evictIfNeeded(server: ServerState, current: ClientSession?) {
        let bound = maxKeys
        guard bound > 0, keyCount.load(ordering: .relaxed) > bound else {
            evictionRounds.store(0, ordering: .relaxed)
            return
        }
        let rounds = evictionRounds.load(ordering: .relaxed)
        var effort = 100 &* (min(rounds, 1 << 20) + 1)
        var start = Int.random(in: 0..<Self.stripeCount)
        while effort > 0 {
            effort -= 1
            var victim: [UInt8]?
            for i in 0..<Self.stripeCount {
                let box = stripes[(start + i) % Self.stripeCount]
                victim = box.state.withLock { s in s.order.isEmpty ? nil : s.order[Int.random(in: 0..<s.order.count)] }
                if victim != nil { break }
            }
            guard let victim else { break }
            invalidate(victim, writer: nil, server: server, current: current, evicted: true)
            if keyCount.load(ordering: .relaxed) <= bound {
                evictionRounds.store(0, ordering: .relaxed)
                return
            }
            start = Int.random(in: 0..<Self.stripeCount)
        }
        evictionRounds.add(1, ordering: .relaxed)
    }

    // MARK: delivery

    /// When an invalidation for the client running a command is written.
    enum Timing {
        /// Ahead of the command's reply (Redis wrote it to the client's buffer at once).
        case now
        /// After the command's reply (Redis's pending invalidations of the current client,
        /// and BCAST messages, sent before the event loop sleeps).
        case afterReply
    }

    /// Sends the invalidation `keys` (an array of keys, or null for all) for the tracking
    /// client `target`, to it or to its redirect (see the type's description).
    func send(_ keys: RESPValue, to target: ClientSession, server: ServerState, current: ClientSession?, timing: Timing) {
        let redirect = target.tracking.redirect
        var destination = target
        if redirect != 0 {
            guard let other = server.clients.withLock({ $0[redirect] }) else {
                target.tracking.markRedirectBroken()
                if target.protocolVersion == 3 {
                    post(.push([.bulk("tracking-redir-broken"), .integer(redirect)]), to: target, current: current, timing: timing)
                }
                return
            }
            destination = other
        }
        if destination.protocolVersion == 3 {
            post(.push([.bulk("invalidate"), keys]), to: destination, current: current, timing: timing)
        } else if redirect != 0 && destination.isSubscribed {
            post(.push([.bulk("message"), .bulk(Self.channel), keys]), to: destination, current: current, timing: timing)
        }
        // A RESP2 client without a redirect cannot take pushes: nothing is sent (Redis).
    }

    private func post(_ message: RESPValue, to destination: ClientSession, current: ClientSession?, timing: Timing) {
        if let current, destination === current {
            destination.tracking.hold(message, before: timing == .now)
        } else {
            _ = destination.deliver(.tracking(message))
        }
    }
}

/// Hears every key change from the ``KeyspaceNotifier`` for the server's ``TrackingTable``,
/// attributing it to the client whose command runs on this thread (``TrackingContext``).
/// Holds the server unowned: the server owns the notifier, which owns this listener.
final class TrackingListener: KeyChangeListener {
    private unowned let server: ServerState

    init(server: ServerState) {
        self.server = server
    }

    func keyChanged(_ key: [UInt8]) {
        server.tracking.keyChanged(key, writer: TrackingContext.current, server: server)
    }

    func allKeysChanged() {
        server.tracking.allKeysChanged(server: server, current: TrackingContext.current)
    }
}
