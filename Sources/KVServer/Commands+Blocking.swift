import KVProtocol
import KVStore

/// The blocking pops: each tries its pop at once; when there is nothing to pop the
/// connection parks in ``BlockedClients`` until a write to one of its keys lets the same pop
/// succeed, or the timeout passes. Inside EXEC they never block (Redis's rule).
extension Commands {
    static let blockingCommands: [CommandSpec] = [
        CommandSpec("blpop", -3, ["write", "noscript", "blocking"], keys: (1, -2, 1)) { c in try blockingPop(&c, .left) },
        CommandSpec("brpop", -3, ["write", "noscript", "blocking"], keys: (1, -2, 1)) { c in try blockingPop(&c, .right) },
        CommandSpec("blmove", 6, ["write", "denyoom", "noscript", "blocking"], keys: (1, 2, 1)) { c in
            let from = try ListEnd(c.args[3]), to = try ListEnd(c.args[4])
            let timeout = try blockTimeout(c.args[5], now: c.store.now)
            return try blockingMove(&c, from, to, timeout)
        },
        CommandSpec("brpoplpush", 4, ["write", "denyoom", "noscript", "blocking"], keys: (1, 2, 1)) { c in
            let timeout = try blockTimeout(c.args[3], now: c.store.now)
            return try blockingMove(&c, .right, .left, timeout)
        },
        CommandSpec("blmpop", -5, ["write", "blocking"], movableKeys: CommandSpec.numkeys(at: 2)) { c in
            let timeout = try blockTimeout(c.args[1], now: c.store.now)
            let (keys, end, count) = try listMpopArguments(c.args, at: 2)
            let store = c.store
            return try park(&c, keys: keys, timeout: timeout, timeoutReply: .array(nil)) { ready in
                let (popped, events) = try popFirst(store, ready.map { [$0] } ?? keys, end, count: count)
                guard let (key, items) = popped else { return nil }
                return (.array([.bulk(key), .array(items.map { .bulk($0) })]), events)
            }
        },
    ]

    /// Redis's `getTimeoutFromObjectOrReply` in seconds: the timeout in milliseconds, rounded
    /// up (0: wait forever). Redis 7.0 converts a value past 64 bits to a negative one.
    static func blockTimeout(_ arg: [UInt8], now: Int64) throws -> Int64 {
        guard let seconds = RedisText.parseLongDouble(arg), !seconds.isNaN else {
            throw CommandError("ERR timeout is not a float or out of range")
        }
        let millis = (seconds * 1000).rounded(.up)
        if !(millis > -0x1p63 && millis < 0x1p63) || millis < 0 { throw CommandError("ERR timeout is negative") }
        let t = Int64(millis)
        if t > 0 && t > Int64.max - now { throw CommandError("ERR timeout is out of range") }
        return t
    }

    /// BLPOP/BRPOP `key [key ...] timeout`.
    static func blockingPop(_ c: inout CommandCall, _ end: ListEnd) throws -> RESPValue {
        let timeout = try blockTimeout(c.args[c.argc - 1], now: c.store.now)
        let keys = Array(c.args[1..<(c.argc - 1)])
        let store = c.store
        return try park(&c, keys: keys, timeout: timeout, timeoutReply: .array(nil)) { ready in
            let (popped, events) = try popFirst(store, ready.map { [$0] } ?? keys, end, count: 1)
            guard let (key, items) = popped, let item = items.first else { return nil }
            return (.array([.bulk(key), .bulk(item)]), events)
        }
    }

    /// BLMOVE/BRPOPLPUSH.
    static func blockingMove(_ c: inout CommandCall, _ from: ListEnd, _ to: ListEnd, _ timeout: Int64) throws -> RESPValue {
        let src = c.args[1], dst = c.args[2]
        let store = c.store
        // Redis answers a timed-out BLMOVE with a null array.
        return try park(&c, keys: [src], timeout: timeout, timeoutReply: .array(nil), execReply: .nullBulk) { _ in
            let (moved, events) = try moveItem(store, src, dst, from, to)
            guard let moved else { return nil }
            return (.bulk(moved), events)
        }
    }

    /// Runs `serve` now; when it finds nothing (and the client is not in EXEC), parks the
    /// connection on `keys` with `serve` as its pop.
    static func park(_ c: inout CommandCall, keys: [[UInt8]], timeout: Int64, timeoutReply: RESPValue, execReply: RESPValue? = nil,
                     _ serve: @escaping @Sendable (_ ready: [UInt8]?) throws -> (RESPValue, [Event])?) throws -> RESPValue {
        if let (reply, events) = try serve(nil) {
            publish(c, events)
            return reply
        }
        if c.session.runningExec.load(ordering: .relaxed) { return execReply ?? timeoutReply }
        c.action = .later(c.server.blocked.block(session: c.session.id, keys: keys, loop: c.loop, timeoutMillis: timeout,
                                                 timeoutReply: timeoutReply, serve: serve))
        return .nullBulk
    }
}
