import KVProtocol
import KVStore
import NIOCore
import NIOPosix
import Synchronization

/// What the connection does after a command's reply.
enum ConnectionAction: Sendable {
    case none
    /// Send the reply, then close (QUIT).
    case close
    /// Send nothing more and close; the server shuts down (SHUTDOWN).
    case shutdown
    /// The reply comes later (WAIT, the replication long poll): the connection sends it when
    /// the future completes and runs none of its later requests before. No thread waits:
    /// a timer or another event completes the future.
    case later(EventLoopFuture<RESPValue>)
    /// More replies follow the reply, in order (SUBSCRIBE and its kin confirm each channel
    /// with a reply of its own).
    case more([RESPValue])
}

/// The call of one command.
struct CommandCall {
    let server: ServerState
    let session: ClientSession
    /// The arguments; `args[0]` is the command name as sent.
    let args: [[UInt8]]
    /// The command's lower-case name.
    let name: String
    /// The connection's event loop: where a deferred reply's timers run.
    let loop: any EventLoop
    var action = ConnectionAction.none

    var store: ShardedStore { server.store }
    var argc: Int { args.count }
    var resp3: Bool { session.protocolVersion == 3 }
}

/// A command of the table: Redis's arity rule (n exact, -n at least n), its flags, the key
/// positions, the subcommands it answers, and the handler.
///
/// What `COMMAND` reports about it comes from its entry in ``Commands/metadata`` (Redis's
/// arity, flags, key specs, documentation); the metadata tests check that every spec has one
/// and that arity, flags and key positions agree with it. The flags here are what the
/// dispatcher reads (`write`, `no_auth`, `may_replicate`).
///
/// A class, so that looking one up per request costs one reference, and its flags are
/// decided once here rather than by string comparisons per request.
final class CommandSpec: Sendable {
    let name: String
    let arity: Int
    let flags: [String]
    let firstKey: Int
    let lastKey: Int
    let step: Int
    /// The subcommands the handler answers (`kill` for `CLIENT KILL`); each has metadata
    /// under `name|sub`, and `COMMAND` lists them.
    let subcommands: [String]
    let handler: @Sendable (inout CommandCall) throws -> RESPValue
    /// The key positions of a request of a command whose keys move with its arguments
    /// (Redis's `movablekeys`: a `numkeys` argument); nil: first/last/step.
    let movableKeys: (@Sendable (_ args: [[UInt8]]) -> [Int])?
    /// Whether a client that has not authenticated may call it.
    let allowedBeforeAuth: Bool
    /// Whether it changes data.
    let isWrite: Bool
    /// Whether it only reads (Redis's `readonly` flag): a tracking client's keys are
    /// remembered for client-side caching.
    let isReadOnly: Bool
    /// Whether it always runs off the event loop (``Commands/offLoopCommands``).
    let alwaysOffLoop: Bool
    /// Its position in ``Commands/specs``: statistics and a client's last command are kept
    /// by it, without a lookup by name.
    let index: Int

    /// Hands out ``index``: every spec is made once, in the command lists, so they are dense.
    private static let created = Atomic<Int>(0)

    init(_ name: String, _ arity: Int, _ flags: [String], keys: (Int, Int, Int) = (0, 0, 0), subcommands: [String] = [],
         movableKeys: (@Sendable (_ args: [[UInt8]]) -> [Int])? = nil,
         _ handler: @escaping @Sendable (inout CommandCall) throws -> RESPValue) {
        self.movableKeys = movableKeys
        self.name = name
        self.arity = arity
        self.flags = flags
        self.firstKey = keys.0
        self.lastKey = keys.1
        self.step = keys.2
        self.subcommands = subcommands
        self.handler = handler
        allowedBeforeAuth = flags.contains("no_auth")
        isWrite = flags.contains("write")
        isReadOnly = flags.contains("readonly")
        alwaysOffLoop = Commands.offLoopCommands.contains(name)
        index = Self.created.add(1, ordering: .relaxed).oldValue
    }

    func arityOK(_ argc: Int) -> Bool {
        arity >= 0 ? argc == arity : argc >= -arity
    }

    /// The argument positions of a request's keys by Redis's legacy first/last/step rule (a
    /// negative last counts from the end). `COMMAND GETKEYS` uses the key specs of the
    /// metadata; the metadata tests check that the two agree.
    func keyPositions(_ args: [[UInt8]]) -> [Int] {
        if let movableKeys { return movableKeys(args) }
        return keyPositions(argc: args.count)
    }

    /// The key positions of `numkeys key ...` with `numkeys` at argument `at` (SINTERCARD,
    /// ZUNIONSTORE, LMPOP...): none when it is not a positive number within the arguments.
    static func numkeys(at: Int) -> @Sendable ([[UInt8]]) -> [Int] {
        { args in
            guard at < args.count, let n = RedisText.parseInt(args[at]), n > 0, n <= Int64(args.count - at - 1) else { return [] }
            return Array((at + 1)..<(at + 1 + Int(n)))
        }
    }

    func keyPositions(argc: Int) -> [Int] {
        guard firstKey > 0, step > 0 else { return [] }
        let last = lastKey < 0 ? argc + lastKey : lastKey
        guard firstKey <= last else { return [] }
        return Array(stride(from: firstKey, through: min(last, argc - 1), by: step))
    }
}

extension RESPValue {
    /// A bulk string of bytes.
    @inline(__always)
    static func bulk(_ bytes: [UInt8]) -> RESPValue { .bulkString(ByteBuffer(bytes: bytes)) }
    /// A bulk string of UTF-8 text.
    static func bulk(_ text: String) -> RESPValue { .bulkString(ByteBuffer(string: text)) }
    /// The null bulk string (`$-1`, `_` in RESP3).
    static let nullBulk = RESPValue.bulkString(nil)
    static let ok = RESPValue.simpleString("OK")
    /// A parked reply that `CLIENT REPLY OFF|SKIP` suppressed: the connection sends nothing.
    static let suppressed = RESPValue.attribute([], .null)
    static let zero = RESPValue.integer(0)
    static let one = RESPValue.integer(1)
}

/// The command table and the dispatcher.
enum Commands {
    /// Commands that may run long (a scan of the keyspace, a flush of every memtable, a
    /// snapshot page, a reshard, stopping a replication link): they run on the worker pool so
    /// the event loop keeps serving its other connections. Every other command runs to
    /// completion on its connection's event loop.
    static let offLoopCommands: Set<String> = [
        "keys", "dbsize", "flushall", "flushdb", "save", "bgsave", "shards", "idx.create", "idx.drop",
        "info", "randomkey", "shale.replsnap", "replicaof", "slaveof", "command", "cluster",
        "shale.slotmove",
    ]
    /// SCAN and IDX.QUERY run on the event loop while they are small.
    static let largeCount = 1000

    /// Whether a request runs off the event loop: a command of ``offLoopCommands``, a SCAN
    /// with a COUNT above ``largeCount``, an IDX.QUERY without a LIMIT count at most that, or
    /// — when writes wait for an fsync (`fsync always`) — any write, so that writers of many
    /// connections wait in one group commit instead of holding the event loops.
    static func runsOffLoop(_ arguments: [[UInt8]], syncedWrites: Bool) -> Bool {
        guard let first = arguments.first else { return false }
        let name = RedisText.lower(first)
        return runsOffLoop(arguments, syncedWrites: syncedWrites, name: name, spec: table[name])
    }

    /// ``runsOffLoop(_:syncedWrites:)`` for a request whose lower-cased command `name` the
    /// caller has looked up (`spec`, nil for an unknown command).
    static func runsOffLoop(_ arguments: [[UInt8]], syncedWrites: Bool, name: String, spec: CommandSpec?) -> Bool {
        guard let spec else { return false }
        if spec.alwaysOffLoop { return true }
        switch name {
        case "scan":
            return largeCountArgument(arguments, after: "count", from: 2)
        case "idx.query":
            var i = 3
            while i + 2 < arguments.count {
                if RedisText.eq(arguments[i], "limit") {
                    guard let n = RedisText.parseInt(arguments[i + 2]) else { return false }
                    return n > Int64(largeCount) || n < 0
                }
                i += 1
            }
            return true
        default:
            return syncedWrites && spec.isWrite
        }
    }

    /// Whether a request is a plain `SET key value` (no options): consecutive ones of one
    /// connection are committed together by ``executePlainSets(_:server:session:)``.
    @inline(__always)
    static func isPlainSet(_ arguments: [[UInt8]]) -> Bool {
        arguments.count == 3 && RedisText.eq(arguments[0], "set")
            && arguments[1].count < KVLimits.maxKeySize - 8 && arguments[2].count <= KVLimits.maxValueSize - 16
    }

    /// Runs consecutive plain SETs of one connection as one store write (one batch per shard,
    /// so one WAL record and one group commit instead of one per SET), and returns their
    /// replies in order. The same as running them one by one as far as any client can tell:
    /// the connection's replies are sent only after all of them, and Redis too runs a client's
    /// whole read buffer before serving another client. Each still counts as a call of SET.
    /// Returns nil (nothing done) when they cannot run this way here: the client must
    /// authenticate, this server is a follower, or the client tracks keys (its own
    /// invalidations then follow each reply, as in Redis); the caller then runs them one by
    /// one. While another client tracks, the keys' invalidations and BCAST messages go out
    /// after the run.
    static func executePlainSets(_ requests: ArraySlice<[[UInt8]]>, server: ServerState, session: ClientSession) -> [RESPValue]? {
        // `new` keyspace events need to know which keys existed, and CLIENT REPLY OFF/SKIP
        // drop replies one by one: those SETs run one by one.
        guard requests.count > 1, session.authenticated, !server.replication.isReplica, !server.keyspace.wants(.new),
              session.replyMode.load(ordering: .relaxed) == 0, !session.tracking.isOn, server.cluster == nil,
              !session.inMulti.load(ordering: .relaxed) else { return nil }
        if server.tracking.isActive {
            var replies = TrackingContext.with(session) { plainSets(requests, server: server, session: session) }
            trackingAfterRun(&replies, session: session)
            return replies
        }
        return plainSets(requests, server: server, session: session)
    }

    private static func plainSets(_ requests: ArraySlice<[[UInt8]]>, server: ServerState, session: ClientSession) -> [RESPValue] {
        let started = monotonicNanos()
        var batch = WriteBatch()
        for r in requests { batch.put(r[1], r[2]) }
        var reply = RESPValue.ok
        var failure: String?
        do {
            try server.store.write(batch)
        } catch {
            failure = CommandError("ERR " + String(describing: error)).message
            reply = .simpleError(failure!)
        }
        recordRun(requests, names: Array(repeating: "set", count: requests.count),
                  failures: Array(repeating: failure, count: requests.count), started: started, server: server, session: session)
        if failure == nil && server.keyspace.wants(.string) {
            for r in requests { server.keyspace.notify(.string, "set", r[1]) }
        }
        return Array(repeating: reply, count: requests.count)
    }

    /// Counts a run of requests executed together as calls of their commands, each with an
    /// equal share of the run's time (statistics, slow log, the client's last command).
    static func recordRun(_ requests: ArraySlice<[[UInt8]]>, names: [String], failures: [String?], started: Int64,
                          server: ServerState, session: ClientSession) {
        server.counters.commandsProcessed.add(requests.count)
        session.lastCommandIndex.store(names.last.flatMap { table[$0]?.index } ?? -1, ordering: .relaxed)
        session.touch()
        let share = (monotonicNanos() - started) / Int64(max(1, requests.count))
        for (i, r) in requests.enumerated() {
            server.counters.record(command: names[i], nanos: share, error: failures[i])
            server.logSlow(r, micros: share / 1000, session: session)
        }
    }

    /// The command name of an INCR, DECR, INCRBY or DECRBY request with its arity right
    /// (consecutive ones of one connection run as one read-modify-write); nil otherwise.
    static func counterCommand(_ arguments: [[UInt8]]) -> String? {
        switch arguments.count {
        case 2:
            if RedisText.eq(arguments[0], "incr") { return "incr" }
            if RedisText.eq(arguments[0], "decr") { return "decr" }
        case 3:
            if RedisText.eq(arguments[0], "incrby") { return "incrby" }
            if RedisText.eq(arguments[0], "decrby") { return "decrby" }
        default:
            break
        }
        return nil
    }

    /// Runs consecutive INCR/DECR/INCRBY/DECRBY requests of one connection as one
    /// read-modify-write of their keys (``ShardedStore/modify(_:durability:_:)`` holds every
    /// key's lock, so no other write comes between): each is applied in order to the rows as
    /// the ones before it left them, with its own reply (its own error leaves its key as it
    /// was), and the changed rows are committed once. Returns nil (nothing done) when they
    /// cannot run this way (authentication pending, a follower), or the client tracks keys
    /// (its own invalidations then follow each reply, as in Redis).
    static func executeCounters(_ requests: ArraySlice<[[UInt8]]>, server: ServerState, session: ClientSession) -> [RESPValue]? {
        guard requests.count > 1, session.authenticated, !server.replication.isReplica, !server.keyspace.wants(.new),
              session.replyMode.load(ordering: .relaxed) == 0, !session.tracking.isOn, server.cluster == nil,
              !session.inMulti.load(ordering: .relaxed) else { return nil }
        if server.tracking.isActive {
            var replies = TrackingContext.with(session) { counters(requests, server: server, session: session) }
            trackingAfterRun(&replies, session: session)
            return replies
        }
        return counters(requests, server: server, session: session)
    }

    private static func counters(_ requests: ArraySlice<[[UInt8]]>, server: ServerState, session: ClientSession) -> [RESPValue] {
        let started = monotonicNanos()
        let (keys, positions) = DistinctKeys.of(requests.map { $0[1] })
        var names: [String] = []
        var increments: [Result<Int64, CommandError>] = []
        for r in requests {
            let name = counterCommand(r) ?? "incr"
            names.append(name)
            switch name {
            case "incr": increments.append(.success(1))
            case "decr": increments.append(.success(-1))
            case "incrby":
                increments.append(RedisText.parseInt(r[2]).map { .success($0) } ?? .failure(.notInteger))
            default:
                if let n = RedisText.parseInt(r[2]) {
                    increments.append(n == Int64.min ? .failure(CommandError("ERR decrement would overflow")) : .success(-n))
                } else {
                    increments.append(.failure(.notInteger))
                }
            }
        }
        var replies: [RESPValue] = []
        var failures: [String?] = []
        do {
            try server.store.modify(keys) { rows in
                for i in 0..<requests.count {
                    let slot = positions[i]
                    do {
                        let incr = try increments[i].get()
                        var value: Int64 = 0
                        if let row = try stringRow(rows[slot]) {
                            guard let v = RedisText.parseInt(row.value) else { throw CommandError.notInteger }
                            value = v
                        }
                        let (sum, overflow) = value.addingReportingOverflow(incr)
                        if overflow { throw CommandError.overflow }
                        rows[slot] = StoredEntry(value: RedisText.bytes(sum), expiresAt: rows[slot]?.expiresAt)
                        replies.append(.integer(sum))
                        failures.append(nil)
                    } catch let e as CommandError {
                        replies.append(.simpleError(e.message))
                        failures.append(e.message)
                    }
                }
            }
        } catch {
            let text = CommandError("ERR " + String(describing: error)).message
            replies = Array(repeating: .simpleError(text), count: requests.count)
            failures = Array(repeating: text, count: requests.count)
        }
        recordRun(requests, names: names, failures: failures, started: started, server: server, session: session)
        if server.keyspace.wants(.string) {
            for (i, r) in requests.enumerated() where failures[i] == nil { server.keyspace.notify(.string, "incrby", r[1]) }
        }
        return replies
    }

    /// Whether `word <n>` appears from index `from` on with n above ``largeCount``.
    static func largeCountArgument(_ arguments: [[UInt8]], after word: StaticString, from: Int) -> Bool {
        var i = from
        while i + 1 < arguments.count {
            if RedisText.eq(arguments[i], word), let n = RedisText.parseInt(arguments[i + 1]), n > Int64(largeCount) { return true }
            i += 1
        }
        return false
    }

    static let table: [String: CommandSpec] = {
        var t: [String: CommandSpec] = [:]
        for spec in specs { t[spec.name] = spec }
        return t
    }()

    /// Every command, at its ``CommandSpec/index``.
    static let specs: [CommandSpec] = {
        let all = stringCommands + keyCommands + serverCommands + clusterCommands + replicationCommands + indexCommands
            + pubsubCommands + objectCommands + transactionCommands
            + clusterModeCommands + slotMoveCommands + hashCommands + setCommands + listCommands + blockingCommands
            + sortedSetCommands + sortedSetRangeCommands
        return all.sorted { $0.index < $1.index }
    }()

    /// Runs one request and returns its reply (nil for no reply, or for a reply that comes
    /// later: ``ConnectionAction/later(_:)``) and what to do next. `loop` is the connection's
    /// event loop (any loop of the shared group when nil). `batched`: the caller runs a batch
    /// of the connection's requests and sends the BCAST invalidations the batch caused when
    /// it ends (``trackingEndOfBatch(session:server:)``), as Redis sends them once per event
    /// loop cycle; otherwise they follow the command's reply.
    static func execute(_ arguments: [[UInt8]], server: ServerState, session: ClientSession,
                        loop: (any EventLoop)? = nil, batched: Bool = false) -> (RESPValue?, ConnectionAction) {
        guard let first = arguments.first else { return (nil, .none) }
        let name = RedisText.lower(first)
        return execute(arguments, server: server, session: session, loop: loop, name: name, spec: table[name], batched: batched)
    }

    /// ``execute(_:server:session:loop:)`` for a request whose lower-cased command `name` the
    /// caller has looked up (`spec`, nil for an unknown command). `CLIENT REPLY OFF|SKIP`
    /// suppress replies here (the command still runs).
    static func execute(_ arguments: [[UInt8]], server: ServerState, session: ClientSession,
                        loop: (any EventLoop)?, name: String, spec found: CommandSpec?,
                        batched: Bool = false) -> (RESPValue?, ConnectionAction) {
        // One atomic load when no client tracks keys.
        let tracking = server.tracking.isActive
        var (reply, action) = run(arguments, server: server, session: session, loop: loop, name: name, spec: found,
                                  tracking: tracking)
        if tracking {
            (reply, action) = trackingAfterCommand(reply, action, name: name, session: session, server: server,
                                                   batched: batched)
        }
        let mode = session.replyMode.load(ordering: .relaxed)
        guard mode != 0 else { return (reply, action) }
        // 1: off. 3: this is CLIENT REPLY SKIP (no reply), the next one is skipped (2).
        if mode == 3 { session.replyMode.store(2, ordering: .relaxed) } else if mode == 2 { session.replyMode.store(0, ordering: .relaxed) }
        switch action {
        case .more: return (nil, .none)
        case .later(let future) where mode == 1 || mode == 2:
            // The parked reply still completes (its waiter is released); it is not sent.
            return (nil, .later(future.map { _ in RESPValue.suppressed }))
        default: return (nil, action)
        }
    }

    /// Runs one request (see ``execute(_:server:session:loop:name:spec:)``); `tracking`:
    /// some client tracks keys (the handler then runs with the session as
    /// ``TrackingContext/current``, after ``trackingBeforeHandler(_:_:session:server:)``).
    private static func run(_ arguments: [[UInt8]], server: ServerState, session: ClientSession,
                            loop: (any EventLoop)?, name: String, spec found: CommandSpec?,
                            tracking: Bool) -> (RESPValue?, ConnectionAction) {
        guard let first = arguments.first else { return (nil, .none) }
        let started = monotonicNanos()
        server.counters.commandsProcessed.add()
        session.touch(started / 1_000_000)
        session.lastCommandIndex.store(found?.index ?? -1, ordering: .relaxed)
        // Redis's order: unknown command, then arity, then authentication.
        guard let spec = found else {
            var args = ""
            for a in arguments.dropFirst() where args.utf8.count < 128 {
                let room = 128 - args.utf8.count
                args += "'" + String(decoding: a.prefix(room), as: UTF8.self) + "' "
            }
            let text = "ERR unknown command '\(String(decoding: first.prefix(128), as: UTF8.self))', with args beginning with: \(args)"
            let e = CommandError(text)
            server.counters.record(command: "unknown", micros: 0, error: e.message)
            session.flagTransactionError()
            return (.simpleError(e.message), .none)
        }
        if !spec.arityOK(arguments.count) {
            let e = CommandError.wrongArity(name)
            server.counters.recordRejected(spec, error: e.message)
            session.flagTransactionError()
            return (.simpleError(e.message), .none)
        }
        if !session.authenticated && !spec.allowedBeforeAuth {
            server.counters.recordRejected(spec, error: CommandError.noAuth.message)
            session.flagTransactionError()
            return (.simpleError(CommandError.noAuth.message), .none)
        }
        // Cluster mode: keys of another shard, or a write sent to a follower, go elsewhere.
        // The request counts as in flight for a slot move's switch until it has run.
        var moveEpoch = -1
        defer { if moveEpoch >= 0 { server.cluster?.moves.leave(moveEpoch) } }
        if let cluster = server.cluster {
            var asking = false
            if session.asking.load(ordering: .relaxed) && name != "asking" {
                asking = true
                session.asking.store(false, ordering: .relaxed)
            }
            if name == "exec" { moveEpoch = cluster.moves.enter() }
            if let e = cluster.redirect(arguments, spec: spec, session: session, asking: asking, entered: &moveEpoch) {
                server.counters.recordRejected(spec, error: e)
                session.flagTransactionError()
                return (.simpleError(e), .none)
            }
        }
        let writes = spec.isWrite || (name == "shards" && arguments.count > 1)
        if writes && server.replication.isReplica {
            let e = CommandError("READONLY You can't write against a read only replica.")
            server.counters.recordRejected(spec, error: e.message)
            session.flagTransactionError()
            return (.simpleError(e.message), .none)
        }
        // A RESP2 client with subscriptions reads pushed messages on the same stream as
        // replies, so it may only change its subscriptions (Redis's rule and text).
        if session.isSubscribed && session.protocolVersion == 2 && !Commands.allowedWhileSubscribed.contains(name) {
            let e = CommandError("ERR Can't execute '\(name)': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context")
            server.counters.recordRejected(spec, error: e.message)
            session.flagTransactionError()
            return (.simpleError(e.message), .none)
        }
        if session.inMulti.load(ordering: .relaxed) && !runInMulti.contains(name) {
            return queueInMulti(arguments, spec: spec, session: session, server: server)
        }
        var call = CommandCall(server: server, session: session, args: arguments, name: name,
                               loop: loop ?? MultiThreadedEventLoopGroup.singleton.next())
        let reply: RESPValue
        var failure: String?
        do {
            if tracking {
                trackingBeforeHandler(spec, arguments, session: session, server: server)
                reply = try TrackingContext.with(session) { try spec.handler(&call) }
            } else {
                reply = try spec.handler(&call)
            }
        } catch let e as CommandError {
            failure = e.message
            reply = .simpleError(e.message)
        } catch KVError.wrongType {
            failure = CommandError.wrongType.message
            reply = .simpleError(CommandError.wrongType.message)
        } catch let e as KVError {
            let text = "ERR " + String(describing: e)
            failure = text
            reply = .simpleError(CommandError(text).message)
        } catch {
            let text = "ERR " + String(describing: error)
            failure = text
            reply = .simpleError(CommandError(text).message)
        }
        if failure == nil, case .later(let future) = call.action {
            // A parked request counts its whole time, waiting included (the slow log shows a
            // WAIT that waited), once its reply is there.
            future.whenComplete { _ in
                let nanos = monotonicNanos() - started
                server.counters.record(spec, nanos: nanos, error: nil)
                server.logSlow(arguments, micros: nanos / 1000, session: session)
            }
            return (nil, call.action)
        }
        let nanos = monotonicNanos() - started
        server.counters.record(spec, nanos: nanos, error: failure)
        server.logSlow(arguments, micros: nanos / 1000, session: session)
        switch call.action {
        case .shutdown, .later: return (nil, call.action)
        default: return (reply, call.action)
        }
    }
}
