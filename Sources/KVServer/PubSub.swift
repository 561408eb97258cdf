import KVProtocol
import KVStore
import NIOCore
import Synchronization

/// Redis's publish/subscribe: channels and glob patterns with the clients subscribed to
/// them, and delivery of published messages to their connections.
///
/// Messages are fire-and-forget, as in Redis: none is stored. ``publish(channel:message:)``
/// hands a message to every subscriber's connection, which writes it on its own event loop
/// (at once when that is the publisher's loop) with the reply-size rules of a pub/sub
/// client: `client-output-buffer-limit pubsub` (default 32 MiB hard, 8 MiB for 60 s), past
/// which the subscriber is disconnected.
///
/// Thread safety: one mutex guards the tables; delivery runs after it is released. A publish
/// with no subscriber anywhere costs one atomic load.
final class PubSubHub: Sendable {
    private struct Tables {
        var channels: [[UInt8]: [Int64: ClientSession]] = [:]
        var patterns: [[UInt8]: [Int64: ClientSession]] = [:]
    }
    private let tables = Mutex(Tables())
    /// Subscriptions of every client together (channels and patterns).
    private let total = Atomic<Int>(0)

    /// Subscribes `session` to `channel`; false when it already was.
    func subscribe(_ session: ClientSession, channel: [UInt8]) -> Bool {
        let added = tables.withLock { t in t.channels[channel, default: [:]].updateValue(session, forKey: session.id) == nil }
        if added { total.add(1, ordering: .relaxed) }
        return added
    }

    /// Unsubscribes `session` from `channel`; false when it was not subscribed.
    func unsubscribe(_ session: ClientSession, channel: [UInt8]) -> Bool {
        let removed = tables.withLock { t -> Bool in
            guard t.channels[channel]?.removeValue(forKey: session.id) != nil else { return false }
            if t.channels[channel]!.isEmpty { t.channels[channel] = nil }
            return true
        }
        if removed { total.subtract(1, ordering: .relaxed) }
        return removed
    }

    /// Subscribes `session` to the glob `pattern`; false when it already was.
    func psubscribe(_ session: ClientSession, pattern: [UInt8]) -> Bool {
        let added = tables.withLock { t in t.patterns[pattern, default: [:]].updateValue(session, forKey: session.id) == nil }
        if added { total.add(1, ordering: .relaxed) }
        return added
    }

    /// Unsubscribes `session` from `pattern`; false when it was not subscribed.
    func punsubscribe(_ session: ClientSession, pattern: [UInt8]) -> Bool {
        let removed = tables.withLock { t -> Bool in
            guard t.patterns[pattern]?.removeValue(forKey: session.id) != nil else { return false }
            if t.patterns[pattern]!.isEmpty { t.patterns[pattern] = nil }
            return true
        }
        if removed { total.subtract(1, ordering: .relaxed) }
        return removed
    }

    /// Delivers `message` on `channel` to its subscribers and to the subscribers of every
    /// pattern it matches; returns how many deliveries were made (a client subscribed both
    /// to the channel and to a matching pattern counts, and receives it, twice — as in Redis).
    @discardableResult
    func publish(channel: [UInt8], message: [UInt8]) -> Int {
        guard total.load(ordering: .relaxed) > 0 else { return 0 }
        let (direct, matched) = tables.withLock { t -> ([ClientSession], [([UInt8], [ClientSession])]) in
            let direct = t.channels[channel].map { Array($0.values) } ?? []
            var matched: [([UInt8], [ClientSession])] = []
            for (pattern, subscribers) in t.patterns where Glob.match(pattern, channel) {
                matched.append((pattern, Array(subscribers.values)))
            }
            return (direct, matched)
        }
        var count = 0
        if !direct.isEmpty {
            let push = PubSubMessage.message(channel: channel, payload: message)
            for s in direct where s.deliver(push) { count += 1 }
        }
        for (pattern, subscribers) in matched {
            let push = PubSubMessage.patternMessage(pattern: pattern, channel: channel, payload: message)
            for s in subscribers where s.deliver(push) { count += 1 }
        }
        return count
    }

    /// Forgets every subscription of `session` (it disconnected).
    func removeAll(_ session: ClientSession) {
        let (channels, patterns) = session.pubsub.withLock { p in
            defer { p = ClientSession.Subscriptions() }
            return (p.channels, p.patterns)
        }
        session.subscriptionCount.store(0, ordering: .relaxed)
        for c in channels { _ = unsubscribe(session, channel: c) }
        for p in patterns { _ = punsubscribe(session, pattern: p) }
    }

    /// The channels with at least one subscriber, those matching `pattern` when given.
    func activeChannels(matching pattern: [UInt8]?) -> [[UInt8]] {
        tables.withLock { t in
            t.channels.keys.filter { pattern == nil || Glob.match(pattern!, $0) }
        }
    }

    /// The number of subscribers of `channel` (patterns not counted, as in Redis).
    func subscribers(of channel: [UInt8]) -> Int {
        tables.withLock { $0.channels[channel]?.count ?? 0 }
    }

    /// The number of distinct patterns subscribed to.
    var patternCount: Int {
        tables.withLock { $0.patterns.count }
    }

    /// The number of channels with at least one subscriber.
    var channelCount: Int {
        tables.withLock { $0.channels.count }
    }
}

/// A message for a subscriber, encoded by its connection in its protocol: a RESP2 array or
/// a RESP3 push.
enum PubSubMessage: Sendable {
    /// `message <channel> <payload>`.
    case message(channel: [UInt8], payload: [UInt8])
    /// `pmessage <pattern> <channel> <payload>`.
    case patternMessage(pattern: [UInt8], channel: [UInt8], payload: [UInt8])
    /// A client-side caching message, ready made (``TrackingTable``): an `invalidate` or
    /// `tracking-redir-broken` push, or a `message` on `__redis__:invalidate`.
    case tracking(RESPValue)

    /// The RESP value: a push (written as an array in RESP2).
    var value: RESPValue {
        switch self {
        case .message(let channel, let payload):
            return .push([.bulk("message"), .bulk(channel), .bulk(payload)])
        case .patternMessage(let pattern, let channel, let payload):
            return .push([.bulk("pmessage"), .bulk(pattern), .bulk(channel), .bulk(payload)])
        case .tracking(let value):
            return value
        }
    }
}
