import KVProtocol
import KVStore

/// Publish/subscribe commands (Redis 7.0's replies and errors; see ``PubSubHub``).
///
/// SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE and PUNSUBSCRIBE confirm every channel or pattern with
/// a reply of its own — `[kind, name, subscriptions]`, a push in RESP3 — so they answer with
/// ``ConnectionAction/more(_:)``. While a RESP2 client has subscriptions it may only run
/// ``allowedWhileSubscribed``; PING then answers `["pong", arg]`.
extension Commands {
    /// What a RESP2 client with subscriptions may run.
    static let allowedWhileSubscribed: Set<String> = [
        "subscribe", "unsubscribe", "psubscribe", "punsubscribe", "ping", "quit", "reset",
    ]

    static let pubsubCommands: [CommandSpec] = [
        CommandSpec("subscribe", -2, ["pubsub", "noscript", "loading", "stale"]) { c in
            try confirm(&c, c.args.dropFirst().map { channel in
                if c.server.pubsub.subscribe(c.session, channel: channel) {
                    c.session.pubsub.withLock { _ = $0.channels.insert(channel) }
                }
                return ("subscribe", channel, countSubscriptions(c.session))
            })
        },
        CommandSpec("psubscribe", -2, ["pubsub", "noscript", "loading", "stale"]) { c in
            try confirm(&c, c.args.dropFirst().map { pattern in
                if c.server.pubsub.psubscribe(c.session, pattern: pattern) {
                    c.session.pubsub.withLock { _ = $0.patterns.insert(pattern) }
                }
                return ("psubscribe", pattern, countSubscriptions(c.session))
            })
        },
        CommandSpec("unsubscribe", -1, ["pubsub", "noscript", "loading", "stale"]) { c in
            let names = c.argc > 1 ? Array(c.args.dropFirst()) : c.session.pubsub.withLock { Array($0.channels) }
            if names.isEmpty { return try confirm(&c, [("unsubscribe", nil, countSubscriptions(c.session))]) }
            return try confirm(&c, names.map { channel in
                if c.server.pubsub.unsubscribe(c.session, channel: channel) {
                    c.session.pubsub.withLock { _ = $0.channels.remove(channel) }
                }
                return ("unsubscribe", channel, countSubscriptions(c.session))
            })
        },
        CommandSpec("punsubscribe", -1, ["pubsub", "noscript", "loading", "stale"]) { c in
            let names = c.argc > 1 ? Array(c.args.dropFirst()) : c.session.pubsub.withLock { Array($0.patterns) }
            if names.isEmpty { return try confirm(&c, [("punsubscribe", nil, countSubscriptions(c.session))]) }
            return try confirm(&c, names.map { pattern in
                if c.server.pubsub.punsubscribe(c.session, pattern: pattern) {
                    c.session.pubsub.withLock { _ = $0.patterns.remove(pattern) }
                }
                return ("punsubscribe", pattern, countSubscriptions(c.session))
            })
        },
        CommandSpec("publish", 3, ["pubsub", "loading", "stale", "fast", "may_replicate"]) { c in
            .integer(Int64(c.server.pubsub.publish(channel: c.args[1], message: c.args[2])))
        },
        CommandSpec("pubsub", -2, [], subcommands: ["channels", "numsub", "numpat", "help"]) { c in try pubsubCommand(c) },
        CommandSpec("reset", 1, ["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"]) { c in
            resetConnection(c)
            return .simpleString("RESET")
        },
    ]

    /// Re-counts the session's subscriptions into its atomic count; returns it.
    static func countSubscriptions(_ session: ClientSession) -> Int64 {
        let n = session.pubsub.withLock { $0.count }
        session.subscriptionCount.store(n, ordering: .relaxed)
        return Int64(n)
    }

    /// The confirmations `[kind, name, count]`, the first as the reply and the rest after it.
    static func confirm(_ c: inout CommandCall, _ confirmations: [(String, [UInt8]?, Int64)]) throws -> RESPValue {
        let replies: [RESPValue] = confirmations.map { kind, name, count in
            .push([.bulk(kind), name.map { .bulk($0) } ?? .nullBulk, .integer(count)])
        }
        if replies.count > 1 { c.action = .more(Array(replies.dropFirst())) }
        return replies[0]
    }

    /// PUBSUB CHANNELS [pattern] | NUMSUB [channel ...] | NUMPAT | HELP.
    static func pubsubCommand(_ c: CommandCall) throws -> RESPValue {
        let sub = RedisText.lower(c.args[1])
        switch sub {
        case "channels":
            if c.argc > 3 { throw CommandError.wrongArity("pubsub|channels") }
            let pattern = c.argc == 3 ? c.args[2] : nil
            return .array(c.server.pubsub.activeChannels(matching: pattern).map { .bulk($0) })
        case "numsub":
            var out: [RESPValue] = []
            for channel in c.args.dropFirst(2) {
                out.append(.bulk(channel))
                out.append(.integer(Int64(c.server.pubsub.subscribers(of: channel))))
            }
            return c.resp3 ? .map(stride(from: 0, to: out.count, by: 2).map { RESPValue.Entry(key: out[$0], value: out[$0 + 1]) })
                : .array(out)
        case "numpat":
            if c.argc != 2 { throw CommandError.wrongArity("pubsub|numpat") }
            return .integer(Int64(c.server.pubsub.patternCount))
        case "help":
            if c.argc != 2 { throw CommandError.wrongArity("pubsub|help") }
            return .array([
                "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "CHANNELS [<pattern>]",
                "    Return the currently active channels matching a <pattern> (default: '*').",
                "NUMPAT",
                "    Return number of subscriptions to patterns.",
                "NUMSUB [<channel> ...]",
                "    Return the number of subscribers for the specified channels, excluding",
                "    pattern subscriptions(default: no channels).",
                "HELP",
                "    Prints this help.",
            ].map { .simpleString($0) })
        default:
            throw CommandError.unknownSubcommand(c.args[1], of: "pubsub")
        }
    }

    /// RESET: the connection as new — no subscriptions, no tracking, RESP2, no name, not
    /// authenticated when a password is set.
    static func resetConnection(_ c: CommandCall) {
        c.server.pubsub.removeAll(c.session)
        if c.server.tracking.disable(c.session) { c.server.keyspace.listening(-1) }
        _ = c.session.endMulti()
        c.session.unwatchAll(c.store)
        c.session.protocolVersion = 2
        c.session.info.withLock { $0.name = nil }
        c.session.authenticated = c.server.requirePass == nil
    }
}
