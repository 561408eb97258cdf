import KVBase
import KVProtocol
import KVStore
import NIOCore
import NIOPosix

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

/// A command of the table: Redis's arity rule (n exact, -n at least n), flags for COMMAND
/// INFO, the key positions, and the handler.
struct CommandSpec: Sendable {
    let name: String
    let arity: Int
    let flags: [String]
    let firstKey: Int
    let lastKey: Int
    let step: Int
    let handler: @Sendable (inout CommandCall) throws -> RESPValue

    /// Whether a client that has not authenticated may call it.
    var allowedBeforeAuth: Bool { flags.contains("no_auth") }
    /// Whether it changes data.
    var isWrite: Bool { flags.contains("write") }

    init(_ name: String, _ arity: Int, _ flags: [String], keys: (Int, Int, Int) = (0, 0, 0),
         _ handler: @escaping @Sendable (inout CommandCall) throws -> RESPValue) {
        self.name = name
        self.arity = arity
        self.flags = flags
        self.firstKey = keys.0
        self.lastKey = keys.1
        self.step = keys.2
        self.handler = handler
    }

    func arityOK(_ argc: Int) -> Bool {
        arity >= 0 ? argc == arity : argc >= -arity
    }

    /// The `COMMAND INFO` reply of the command.
    var info: RESPValue {
        .array([
            .bulk(name), .integer(Int64(arity)),
            .set(flags.map { .simpleString($0) }),
            .integer(Int64(firstKey)), .integer(Int64(lastKey)), .integer(Int64(step)),
            .set([]), .set([]), .array([]), .array([]),
        ])
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
    static let zero = RESPValue.integer(0)
    static let one = RESPValue.integer(1)
}

/// The command table and the dispatcher.
enum Commands {
    static let table: [String: CommandSpec] = {
        var t: [String: CommandSpec] = [:]
        for spec in stringCommands + keyCommands + serverCommands + clusterCommands + replicationCommands + indexCommands {
            t[spec.name] = spec
        }
        return t
    }()

    /// Runs one request and returns its reply (nil for no reply, or for a reply that comes
    /// later: ``ConnectionAction/later(_:)``) and what to do next. `loop` is the connection's
    /// event loop (any loop of the shared group when nil).
    static func execute(_ arguments: [[UInt8]], server: ServerState, session: ClientSession,
                        loop: (any EventLoop)? = nil) -> (RESPValue?, ConnectionAction) {
        guard let first = arguments.first else { return (nil, .none) }
        let name = RedisText.lower(first)
        let started = monotonicNanos()
        server.counters.commandsProcessed.wrappingAdd(1, ordering: .relaxed)
        session.info.withLock { i in
            i.lastCommand = name
            i.lastInteraction = monotonicMillis()
        }
        // Redis's order: unknown command, then arity, then authentication.
        guard let spec = table[name] else {
            var args = ""
            for a in arguments.dropFirst() where args.utf8.count < 128 {
                let room = 128 - args.utf8.count
                args += "'" + String(decoding: a.prefix(room), as: UTF8.self) + "' "
            }
            let text = "ERR unknown command '\(String(decoding: first.prefix(128), as: UTF8.self))', with args beginning with: \(args)"
            let e = CommandError(text)
            server.counters.record(command: "unknown", micros: 0, error: e.message)
            return (.simpleError(e.message), .none)
        }
        if !spec.arityOK(arguments.count) {
            let e = CommandError.wrongArity(name)
            server.counters.record(command: name, micros: 0, error: e.message)
            return (.simpleError(e.message), .none)
        }
        if !session.authenticated && !spec.allowedBeforeAuth {
            server.counters.record(command: name, micros: 0, error: CommandError.noAuth.message)
            return (.simpleError(CommandError.noAuth.message), .none)
        }
        let writes = spec.isWrite || (name == "shards" && arguments.count > 1)
        if writes && server.replication.isReplica {
            let e = CommandError("READONLY You can't write against a read only replica.")
            server.counters.record(command: name, micros: 0, error: e.message)
            return (.simpleError(e.message), .none)
        }
        var call = CommandCall(server: server, session: session, args: arguments, name: name,
                               loop: loop ?? MultiThreadedEventLoopGroup.singleton.next())
        let reply: RESPValue
        var failure: String?
        do {
            reply = try spec.handler(&call)
        } catch let e as CommandError {
            failure = e.message
            reply = .simpleError(e.message)
        } catch let e as KVError {
            let text = "ERR " + String(describing: e)
            failure = text
            reply = .simpleError(CommandError(text).message)
        } catch {
            let text = "ERR " + String(describing: error)
            failure = text
            reply = .simpleError(CommandError(text).message)
        }
        let nanos = monotonicNanos() - started
        server.counters.record(command: name, nanos: nanos, error: failure)
        server.logSlow(arguments, micros: nanos / 1000, session: session)
        switch call.action {
        case .shutdown, .later: return (nil, call.action)
        default: return (reply, call.action)
        }
    }
}
