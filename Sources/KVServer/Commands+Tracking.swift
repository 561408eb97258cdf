import KVProtocol

/// Client-side caching: `CLIENT TRACKING`, `CLIENT CACHING`, `CLIENT GETREDIR` and
/// `CLIENT TRACKINGINFO` (Redis 7.0's replies and errors), and the dispatcher's work around
/// each command while some client has tracking on (``TrackingTable``).
extension Commands {
    /// `CLIENT TRACKING ON|OFF [REDIRECT id] [BCAST] [PREFIX p ...] [OPTIN] [OPTOUT]
    /// [NOLOOP]`, checked in Redis's order: the options (syntax, the redirect client), then
    /// for ON the combinations and, in BCAST mode, overlapping prefixes.
    static func clientTracking(_ c: inout CommandCall) throws -> RESPValue {
        if c.argc < 3 { throw CommandError.wrongArity("client|tracking") }
        var redirect: Int64 = 0
        var options: ClientTracking.Mode = []
        var prefixes: [[UInt8]] = []
        var j = 3
        while j < c.argc {
            let option = c.args[j]
            let more = j + 1 < c.argc
            if RedisText.eq(option, "redirect") && more {
                j += 1
                if redirect != 0 { throw CommandError("ERR A client can only redirect to a single other client") }
                guard let id = RedisText.parseInt(c.args[j]) else { throw CommandError.notInteger }
                redirect = id
                // The client must exist now, though it may go away later (Redis's check).
                guard c.server.clients.withLock({ $0[id] }) != nil else {
                    throw CommandError("ERR The client ID you want redirect to does not exist")
                }
            } else if RedisText.eq(option, "bcast") {
                options.insert(.bcast)
            } else if RedisText.eq(option, "optin") {
                options.insert(.optin)
            } else if RedisText.eq(option, "optout") {
                options.insert(.optout)
            } else if RedisText.eq(option, "noloop") {
                options.insert(.noloop)
            } else if RedisText.eq(option, "prefix") && more {
                j += 1
                prefixes.append(c.args[j])
            } else {
                throw CommandError.syntax
            }
            j += 1
        }
        let tracking = c.session.tracking
        if RedisText.eq(c.args[2], "on") {
            if !options.contains(.bcast) && !prefixes.isEmpty {
                throw CommandError("ERR PREFIX option requires BCAST mode to be enabled")
            }
            let current = tracking.mode
            if current.contains(.on) && current.contains(.bcast) != options.contains(.bcast) {
                throw CommandError("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.")
            }
            if options.contains(.bcast) && !options.isDisjoint(with: [.optin, .optout]) {
                throw CommandError("ERR OPTIN and OPTOUT are not compatible with BCAST")
            }
            if options.isSuperset(of: [.optin, .optout]) {
                throw CommandError("ERR You can't specify both OPTIN mode and OPTOUT mode")
            }
            if (options.contains(.optin) && current.contains(.optout)) || (options.contains(.optout) && current.contains(.optin)) {
                throw CommandError("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.")
            }
            if options.contains(.bcast) { try checkPrefixOverlaps(prefixes, existing: tracking.prefixes.withLock { $0 }) }
            if c.server.tracking.enable(c.session, redirect: redirect, mode: options, prefixes: prefixes) {
                c.server.keyspace.listening(1)
            }
        } else if RedisText.eq(c.args[2], "off") {
            if c.server.tracking.disable(c.session) { c.server.keyspace.listening(-1) }
        } else {
            throw CommandError.syntax
        }
        return .ok
    }

    /// Redis's `checkPrefixCollisionsOrReply`: two prefixes overlap when one starts with the
    /// other (the empty prefix overlaps every one). Each new prefix is checked against the
    /// client's prefixes, then against the new ones after it.
    ///
    /// Redis 7.0 answers a clash between two new prefixes after the first with the error and
    /// then enables tracking anyway (two replies); here the error is the only reply and
    /// nothing changes.
    static func checkPrefixOverlaps(_ new: [[UInt8]], existing: [[UInt8]]) throws {
        func overlap(_ a: [UInt8], _ b: [UInt8]) -> Bool {
            a.count <= b.count ? b.starts(with: a) : a.starts(with: b)
        }
        func text(_ p: [UInt8]) -> String { String(decoding: p.prefix(128), as: UTF8.self) }
        for (i, p) in new.enumerated() {
            if let old = existing.first(where: { overlap($0, p) }) {
                throw CommandError("ERR Prefix '\(text(p))' overlaps with an existing prefix '\(text(old))'. Prefixes for a single client must not overlap.")
            }
            if let other = new[(i + 1)...].first(where: { overlap(p, $0) }) {
                throw CommandError("ERR Prefix '\(text(p))' overlaps with another provided prefix '\(text(other))'. Prefixes for a single client must not overlap.")
            }
        }
    }

    /// `CLIENT CACHING YES|NO`: whether the next command's keys are remembered, in OPTIN
    /// (YES) or OPTOUT (NO) mode.
    static func clientCaching(_ c: CommandCall) throws -> RESPValue {
        if c.argc != 3 { throw CommandError.wrongArity("client|caching") }
        let tracking = c.session.tracking
        let mode = tracking.mode
        guard mode.contains(.on) else {
            throw CommandError("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled")
        }
        if RedisText.eq(c.args[2], "yes") {
            guard mode.contains(.optin) else {
                throw CommandError("ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.")
            }
        } else if RedisText.eq(c.args[2], "no") {
            guard mode.contains(.optout) else {
                throw CommandError("ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.")
            }
        } else {
            throw CommandError.syntax
        }
        tracking.caching.store(true, ordering: .relaxed)
        return .ok
    }

    /// `CLIENT GETREDIR`: the redirect id (0: none) while tracking is on, else -1.
    static func clientGetRedir(_ c: CommandCall) throws -> RESPValue {
        if c.argc != 2 { throw CommandError.wrongArity("client|getredir") }
        let t = c.session.tracking
        return .integer(t.isOn ? t.redirect : -1)
    }

    /// `CLIENT TRACKINGINFO`: a map of `flags` (a set), `redirect` and `prefixes`, Redis's
    /// shape (a flat array in RESP2).
    static func clientTrackingInfo(_ c: CommandCall) throws -> RESPValue {
        if c.argc != 2 { throw CommandError.wrongArity("client|trackinginfo") }
        let t = c.session.tracking
        let mode = t.mode
        let caching = t.caching.load(ordering: .relaxed)
        var flags: [RESPValue] = [.bulk(mode.contains(.on) ? "on" : "off")]
        if mode.contains(.bcast) { flags.append(.bulk("bcast")) }
        if mode.contains(.optin) {
            flags.append(.bulk("optin"))
            if caching { flags.append(.bulk("caching-yes")) }
        }
        if mode.contains(.optout) {
            flags.append(.bulk("optout"))
            if caching { flags.append(.bulk("caching-no")) }
        }
        if mode.contains(.noloop) { flags.append(.bulk("noloop")) }
        if mode.contains(.brokenRedirect) { flags.append(.bulk("broken_redirect")) }
        let prefixes = t.prefixes.withLock { $0 }
        return .map([
            .init(key: .bulk("flags"), value: .set(flags)),
            .init(key: .bulk("redirect"), value: .integer(mode.contains(.on) ? t.redirect : -1)),
            .init(key: .bulk("prefixes"), value: .array(prefixes.map { .bulk($0) })),
        ])
    }

    // MARK: the dispatcher's part

    /// Before a command's handler runs, while some client tracks: evicts keys over
    /// `tracking-table-max-keys`, and remembers the keys of a read-only command of a client
    /// that tracks them. The keys are remembered before the read, so a change that races
    /// the read finds the reader (and the invalidation follows the reply).
    static func trackingBeforeHandler(_ spec: CommandSpec, _ arguments: [[UInt8]], session: ClientSession, server: ServerState) {
        server.tracking.evictIfNeeded(server: server, current: session)
        guard spec.isReadOnly, session.tracking.remembersReads else { return }
        let positions = spec.keyPositions(arguments)
        if !positions.isEmpty { server.tracking.remember(positions.lazy.map { arguments[$0] }, for: session) }
    }

    /// After a command, while some client tracks: ends a `CLIENT CACHING` answer (any
    /// command but CLIENT, as Redis's `resetClient`), sends what BCAST prefixes gathered
    /// unless the caller does at the end of its batch (`batched`), and places the client's
    /// own invalidations around its reply — those written at once in Redis ahead of it, the
    /// pending ones after it (as further replies).
    static func trackingAfterCommand(_ reply: RESPValue?, _ action: ConnectionAction, name: String,
                                     session: ClientSession, server: ServerState,
                                     batched: Bool) -> (RESPValue?, ConnectionAction) {
        if name != "client" && session.tracking.caching.load(ordering: .relaxed) {
            session.tracking.caching.store(false, ordering: .relaxed)
        }
        if !batched { server.tracking.flushBroadcasts(server: server, current: session) }
        guard let waiting = session.tracking.takeWaiting() else { return (reply, action) }
        switch action {
        case .none, .more:
            var values = waiting.before
            if let reply { values.append(reply) }
            if case .more(let extra) = action { values += extra }
            values += waiting.after
            guard !values.isEmpty else { return (reply, action) }
            let first = values.removeFirst()
            return (first, values.isEmpty ? .none : .more(values))
        case .later:
            // A parked reply (WAIT) comes later: the invalidations go out now.
            for m in waiting.before + waiting.after { _ = session.deliver(.tracking(m)) }
            return (reply, action)
        case .close, .shutdown:
            return (reply, action)
        }
    }

    /// After consecutive SETs or counters ran together (``executePlainSets(_:server:session:)``,
    /// part of a connection's batch): invalidations for the client itself follow the replies.
    static func trackingAfterRun(_ replies: inout [RESPValue], session: ClientSession) {
        guard let waiting = session.tracking.takeWaiting() else { return }
        replies.insert(contentsOf: waiting.before, at: 0)
        replies += waiting.after
    }

    /// When a connection's batch of requests ends, while some client tracks: sends what the
    /// BCAST prefixes gathered (Redis sends it before its event loop sleeps, after the
    /// replies of the clients it served), and returns the messages for the client itself,
    /// to be written after the batch's replies.
    static func trackingEndOfBatch(session: ClientSession, server: ServerState) -> [RESPValue] {
        guard server.tracking.isActive else { return [] }
        server.tracking.flushBroadcasts(server: server, current: session)
        guard let waiting = session.tracking.takeWaiting() else { return [] }
        return waiting.before + waiting.after
    }
}
