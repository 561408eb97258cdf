import KVStore
import KVProtocol
import NIOCore
import NIOPosix

/// One client connection: decodes requests on the event loop and runs them in order there,
/// to completion, writing each read batch's replies with one write and one flush; a request
/// that may run long (``Commands/runsOffLoop(_:syncedWrites:)``) goes to the worker pool with
/// the off-loop requests behind it, and one that waits (WAIT, the replication long poll)
/// parks until its future completes. Either way nothing else of the connection runs until its
/// reply is back, so replies keep request order. Consecutive plain SETs, and consecutive
/// INCR/DECR/INCRBY/DECRBY, run as one store operation each.
///
/// Memory a client can make the server hold is bounded on both sides:
/// - Requests: while a batch runs, newly decoded requests queue up; reading pauses at
///   ``queueLimit`` queued requests or ``queueByteLimit`` bytes of their arguments and
///   resumes below a quarter of both. Protocol limits (``RESPLimits``, live from
///   `CONFIG SET`) bound each request, and an unfinished request (unconsumed input plus the
///   arguments the decoder holds) above `client-query-buffer-limit` closes the connection.
/// - Replies: `pendingOutput` counts reply bytes handed to the channel whose write has not
///   completed (the socket has not taken them). No new batch starts while it is at least
///   ``OutputBufferLimit/pauseBytes``, and a batch stops early once its own output passes
///   ``batchOutputLimit`` or half the pause threshold (the rest goes back to the front of
///   the queue), so a client that
///   does not read costs about the pause threshold plus one reply. The client is closed when
///   the waiting bytes reach the hard limit, or stay at or above the soft limit for the soft
///   seconds (Redis's `client-output-buffer-limit` semantics).
///
/// All fields are touched on the channel's event loop only.
final class ConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Item {
        case request([[UInt8]])
        /// A protocol error: reply with it, then close.
        case protocolError(String)
    }

    /// Requests run per pool job, at most.
    static let batchLimit = 256
    /// A batch stops taking requests once its replies reach this many bytes.
    static let batchOutputLimit = 1 << 20
    /// Reading pauses above this many queued requests and resumes below a quarter of it.
    static let queueLimit = 4096
    /// Reading also pauses while the queued requests' arguments hold this many bytes, and
    /// resumes below a quarter of it.
    static let queueByteLimit = 64 << 20

    /// Redis's reply to a client refused by protected mode (then the connection closes).
    static let protectedModeError = "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n"

    let server: ServerState
    private let pool: NIOThreadPool
    // Unchecked exclusivity on the mutable fields: they are touched on the channel's event
    // loop only and never with overlapping accesses of one field, so the dynamic checks on
    // every access (several per request) would only cost time.
    @exclusivity(unchecked)
    var session: ClientSession?
    @exclusivity(unchecked)
    private var decoder: RESPRequestDecoder
    @exclusivity(unchecked)
    private var limitsGeneration: Int
    /// `client-output-buffer-limit` and `client-query-buffer-limit` as of `limitsGeneration`
    /// (refreshed on the next read after a CONFIG SET), so requests take no server-wide lock.
    @exclusivity(unchecked)
    var outputLimit: OutputBufferLimit
    /// `client-output-buffer-limit pubsub`, the limit while the client has subscriptions.
    @exclusivity(unchecked)
    var pubsubLimit: OutputBufferLimit
    @exclusivity(unchecked)
    private var queryLimit: Int
    @exclusivity(unchecked)
    private var inbound: ByteBuffer?
    @exclusivity(unchecked)
    var queue = CircularBuffer<Item>()
    /// Argument bytes of the queued requests.
    @exclusivity(unchecked)
    var queuedBytes = 0
    @exclusivity(unchecked)
    var running = false
    /// `schedule` is on the stack.
    @exclusivity(unchecked)
    private var scheduling = false
    @exclusivity(unchecked)
    var closing = false
    @exclusivity(unchecked)
    private var readPaused = false
    @exclusivity(unchecked)
    private var failed = false
    /// Reply bytes written to the channel whose write has not completed.
    @exclusivity(unchecked)
    var pendingOutput = 0
    /// When `pendingOutput` last reached the soft limit (monotonic ms); nil while below it.
    @exclusivity(unchecked)
    var softLimitSince: Int64?
    @exclusivity(unchecked)
    var softLimitCheck: Scheduled<Void>?
    /// The last command name as sent, and its lower-cased name and spec: a client that sends
    /// one command again and again (as most do) skips lower-casing and the table lookup.
    @exclusivity(unchecked)
    private var lastCommand: (sent: [UInt8], name: String, spec: CommandSpec?) = ([], "", nil)

    init(server: ServerState, pool: NIOThreadPool) {
        self.server = server
        self.pool = pool
        self.limitsGeneration = server.limitsGeneration.load(ordering: .relaxed)
        let live = server.live.withLock { $0 }
        self.decoder = RESPRequestDecoder(limits: live.limits)
        self.outputLimit = live.outputBufferLimit
        self.pubsubLimit = live.pubsubOutputBufferLimit
        self.queryLimit = live.queryBufferLimit
    }

    /// The output limit of the client's class now: pub/sub while it has subscriptions.
    var currentLimit: OutputBufferLimit {
        session?.isSubscribed == true ? pubsubLimit : outputLimit
    }

    func channelActive(context: ChannelHandlerContext) {
        let remote = context.channel.remoteAddress.map(Self.describe) ?? "?"
        let local = context.channel.localAddress.map(Self.describe) ?? "?"
        // Redis's order: the client limit at accept, then protected mode.
        guard let session = server.register(remote: remote, local: local, channel: context.channel) else {
            refuse(context: context, with: "-ERR max number of clients reached\r\n")
            return
        }
        self.session = session
        if server.protectedModeRefuses(ip: Self.ipForProtectedMode(context.channel.remoteAddress)) {
            server.counters.protectedModeDenials.wrappingAdd(1, ordering: .relaxed)
            refuse(context: context, with: Self.protectedModeError)
            return
        }
        decoder.authenticationRequired = !session.authenticated
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let ctx = NIOLoopBound(context, eventLoop: context.eventLoop)
        let loop = context.eventLoop
        session.setDelivery { message in
            // On the publisher's loop at once (a client publishing to itself gets the message
            // before the PUBLISH reply, as in Redis); else hop to this connection's loop.
            if loop.inEventLoop {
                handler.value.push(message, context: ctx.value)
            } else {
                loop.execute { handler.value.push(message, context: ctx.value) }
            }
        }
        context.fireChannelActive()
    }

    /// Sends `reply` and closes the connection.
    private func refuse(context: ChannelHandlerContext, with reply: String) {
        var out = context.channel.allocator.buffer(capacity: reply.utf8.count)
        out.writeString(reply)
        closing = true
        let ctx = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(out)).whenComplete { _ in ctx.value.close(promise: nil) }
    }

    /// The address protected mode judges: the IP of a TCP peer, nil for a Unix socket.
    static func ipForProtectedMode(_ address: SocketAddress?) -> String? {
        guard let address else { return "?" }
        if case .unixDomainSocket = address { return nil }
        return address.ipAddress ?? "?"
    }

    func channelInactive(context: ChannelHandlerContext) {
        closing = true
        queue.removeAll()
        queuedBytes = 0
        softLimitCheck?.cancel()
        softLimitCheck = nil
        if let session { server.unregister(session) }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        server.counters.netInputBytes.add(buffer.readableBytes)
        guard !closing, !failed, let session else { return }
        session.touch()
        refreshLimits()
        if inbound == nil {
            inbound = buffer
        } else {
            inbound!.writeBuffer(&buffer)
        }
        decodeQueued()
        // Redis's client-query-buffer-limit: the unfinished request a client is sending.
        let unfinished = (inbound?.readableBytes ?? 0) + decoder.heldArgumentBytes
        if unfinished > queryLimit {
            closing = true
            queue.removeAll()
            queuedBytes = 0
            server.counters.queryBufferDisconnections.wrappingAdd(1, ordering: .relaxed)
            server.logger.warning("closing client that reached max query buffer length", metadata: [
                "client": "\(session.remoteAddress)", "bytes": "\(unfinished)",
            ])
            context.close(promise: nil)
            return
        }
        if (queue.count >= Self.queueLimit || queuedBytes >= Self.queueByteLimit) && !readPaused {
            readPaused = true
            context.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
        }
        schedule(context: context)
    }

    /// Picks up limits changed by CONFIG SET (one relaxed atomic load when none changed).
    func refreshLimits() {
        let generation = server.limitsGeneration.load(ordering: .relaxed)
        guard generation != limitsGeneration else { return }
        limitsGeneration = generation
        let live = server.live.withLock { $0 }
        decoder.limits = live.limits
        outputLimit = live.outputBufferLimit
        pubsubLimit = live.pubsubOutputBufferLimit
        queryLimit = live.queryBufferLimit
    }

    /// Resumes reading once the queue has drained to a quarter of its limits.
    func resumeReadingIfDrained(context: ChannelHandlerContext) {
        guard readPaused, queue.count < Self.queueLimit / 4, queuedBytes < Self.queueByteLimit / 4 else { return }
        readPaused = false
        context.channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
    }

    private static func size(of item: Item) -> Int {
        if case .request(let args) = item { return args.reduce(0) { $0 + $1.count } }
        return 0
    }

    /// Decodes every complete request in the inbound buffer into the queue.
    private func decodeQueued() {
        guard inbound != nil else { return }
        while !failed {
            do {
                guard let args = try decoder.decodeArguments(buffer: &inbound!) else { break }
                queuedBytes += args.reduce(0) { $0 + $1.count }
                queue.append(.request(args))
            } catch {
                failed = true
                server.counters.protocolErrors.wrappingAdd(1, ordering: .relaxed)
                queue.append(.protocolError(error.message))
            }
        }
        if inbound!.readableBytes == 0 {
            inbound = nil
        } else if inbound!.readerIndex > 64 * 1024 {
            inbound!.discardReadBytes()
        }
    }

    /// Runs the queued requests in order: on the event loop, to completion, while they are
    /// point commands (their replies gathered into one buffer, written once at the end), and
    /// hands a request that may run long (``Commands/runsOffLoop(_:syncedWrites:)``) to the
    /// worker pool, together with the requests queued behind it that also run off the loop;
    /// nothing else of this connection runs until it is back.
    func schedule(context: ChannelHandlerContext) {
        // Not re-entered: a reply write that completes at once calls back into `written`.
        guard !scheduling else { return }
        scheduling = true
        defer { scheduling = false }
        runQueue(context: context)
    }

    private func runQueue(context: ChannelHandlerContext) {
        guard !running, !closing, !queue.isEmpty, let session else { return }
        refreshLimits()
        let limit = currentLimit
        // Backpressure: replies the client has not taken hold up its next requests.
        guard pendingOutput < limit.pauseBytes else { return }
        let outputCap = min(Self.batchOutputLimit, max(1, limit.pauseBytes / 2))
        let synced = server.syncedWrites
        var out = context.channel.allocator.buffer(capacity: 256)
        // The reply protocol; only an executed command (HELLO) can change it.
        var version = session.protocolVersion
        var ran = 0
        while let item = queue.first {
            if ran > 0 && out.readableBytes >= outputCap { break }
            switch item {
            case .protocolError(let message):
                _ = queue.popFirst()
                RESPEncoder().writeError(message, into: &out)
                finish(context: context, output: out, action: .close, unrun: [])
                return
            case .request(let args):
                let (name, spec) = lookUp(args.first ?? [])
                // CLIENT PAUSE: stop before this request, keep it and the rest queued, and
                // resume when the pause ends.
                let paused = server.pause.isActive && server.pause.holds(spec, session: session)
                if paused || heldBySlotMove(args, spec) {
                    if ran > 0 { decoder.authenticationRequired = !session.authenticated }
                    endBatch(into: &out, session: session)
                    if out.readableBytes > 0 && !send(out, context: context, thenClose: false) { return }
                    if paused {
                        parkForPause(context: context) { server.pause.park($0) }
                    } else {
                        parkForPause(context: context) { [server] in server.cluster!.moves.park($0) }
                    }
                    return
                }
                if Commands.runsOffLoop(args, syncedWrites: synced, name: name, spec: spec)
                    || (name == "exec" && session.execRunsOffLoop) {
                    endBatch(into: &out, session: session)
                    if out.readableBytes > 0 && !send(out, context: context, thenClose: false) { return }
                    submitToPool(context: context, session: session, outputCap: outputCap, synced: synced)
                    return
                }
                if let kind = Coalesced(args), runCoalesced(kind, into: &out, session: session, version: version) {
                    ran += 1
                    continue
                }
                _ = queue.popFirst()
                queuedBytes -= Self.size(of: item)
                ran += 1
                let (reply, next) = Commands.execute(args, server: server, session: session, loop: context.eventLoop,
                                                     name: name, spec: spec, batched: true)
                version = session.protocolVersion
                if let reply { RESPEncoder(version: version == 3 ? .resp3 : .resp2).write(reply, into: &out) }
                if case .more(let extra) = next {
                    for r in extra { RESPEncoder(version: version == 3 ? .resp3 : .resp2).write(r, into: &out) }
                    continue
                }
                if case .none = next { continue }
                endBatch(into: &out, session: session)
                finish(context: context, output: out, action: next, unrun: [])
                return
            }
        }
        if ran > 0 {
            decoder.authenticationRequired = !session.authenticated
            endBatch(into: &out, session: session)
            if out.readableBytes > 0 && !send(out, context: context, thenClose: false) { return }
        }
        resumeReadingIfDrained(context: context)
        // More queued work held back by the output cap: continue once the loop is free.
        if !queue.isEmpty && pendingOutput < limit.pauseBytes {
            let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
            let ctx = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.eventLoop.execute { handler.value.schedule(context: ctx.value) }
        }
    }

    /// Appends what the batch owes after its replies while some client tracks keys: the
    /// BCAST invalidations it caused are sent, and those for this client written here
    /// (``Commands/trackingEndOfBatch(session:server:)``).
    private func endBatch(into out: inout ByteBuffer, session: ClientSession) {
        guard server.tracking.isActive else { return }
        let encoder = RESPEncoder(version: session.protocolVersion == 3 ? .resp3 : .resp2)
        for m in Commands.trackingEndOfBatch(session: session, server: server) { encoder.write(m, into: &out) }
    }

    /// Whether a slot move's switch holds this request (``SlotMoves/holds(_:spec:)``).
    @inline(__always)
    private func heldBySlotMove(_ args: [[UInt8]], _ spec: CommandSpec?) -> Bool {
        guard let cluster = server.cluster, let spec else { return false }
        return cluster.moves.holds(args, spec: spec)
    }

    /// Stops the connection until CLIENT PAUSE (``ClientPause``) or a slot move's switch
    /// ends: `park` registers the resumption.
    private func parkForPause(context: ChannelHandlerContext, park: (@escaping @Sendable () -> Void) -> Void) {
        running = true
        // Blocked by the pause: the idle timeout spares it meanwhile.
        session?.executing.store(true, ordering: .relaxed)
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let ctx = NIOLoopBound(context, eventLoop: context.eventLoop)
        let loop = context.eventLoop
        park {
            loop.execute {
                handler.value.running = false
                handler.value.session?.executing.store(false, ordering: .relaxed)
                handler.value.schedule(context: ctx.value)
            }
        }
    }

    /// The lower-cased name and the spec (nil: unknown) of the command sent as `sent`.
    @inline(__always)
    private func lookUp(_ sent: [UInt8]) -> (String, CommandSpec?) {
        if sent == lastCommand.sent { return (lastCommand.name, lastCommand.spec) }
        let name = RedisText.lower(sent)
        let spec = Commands.table[name]
        lastCommand = (sent, name, spec)
        return (name, spec)
    }

    /// Kinds of request that consecutive ones of a connection run together.
    private enum Coalesced {
        /// Plain `SET key value`: one store write.
        case plainSet
        /// INCR/DECR/INCRBY/DECRBY: one read-modify-write of their keys.
        case counter

        /// The kind of `args`; nil when it is not one that runs together.
        init?(_ args: [[UInt8]]) {
            if Commands.isPlainSet(args) {
                self = .plainSet
            } else if Commands.counterCommand(args) != nil {
                self = .counter
            } else {
                return nil
            }
        }
    }

    /// Takes the run of `kind` requests at the front of the queue (at most ``batchLimit``)
    /// and runs them as one store operation (``Commands/executePlainSets(_:server:session:)``,
    /// ``Commands/executeCounters(_:server:session:)``), encoding their replies in order.
    /// Returns false, taking nothing, when there is only one or they cannot run that way.
    private func runCoalesced(_ kind: Coalesced, into out: inout ByteBuffer, session: ClientSession, version: Int) -> Bool {
        var run: [[[UInt8]]] = []
        var bytes = 0
        for item in queue {
            guard case .request(let args) = item, Coalesced(args) == kind, run.count < Self.batchLimit,
                  bytes < Self.batchOutputLimit else { break }
            run.append(args)
            bytes += args.reduce(0) { $0 + $1.count }
        }
        guard run.count > 1 else { return false }
        let replies: [RESPValue]?
        switch kind {
        case .plainSet: replies = Commands.executePlainSets(run[...], server: server, session: session)
        case .counter: replies = Commands.executeCounters(run[...], server: server, session: session)
        }
        guard let replies else { return false }
        for _ in 0..<run.count {
            let item = queue.removeFirst()
            queuedBytes -= Self.size(of: item)
        }
        let encoder = RESPEncoder(version: version == 3 ? .resp3 : .resp2)
        for reply in replies { encoder.write(reply, into: &out) }
        return true
    }

    /// Runs the front of the queue on the worker pool: the request that must run off the loop
    /// and the off-loop requests right behind it (at most ``batchLimit``); their replies come
    /// back to the event loop and are written with one flush.
    private func submitToPool(context: ChannelHandlerContext, session: ClientSession, outputCap: Int, synced: Bool) {
        running = true
        session.executing.store(true, ordering: .relaxed)
        var batch: [Item] = []
        while batch.count < Self.batchLimit, let item = queue.first {
            if case .request(let args) = item, batch.isEmpty || (Commands.runsOffLoop(args, syncedWrites: synced)
                && !(server.pause.isActive && server.pause.holds(lookUp(args.first ?? []).1, session: session))
                && !heldBySlotMove(args, lookUp(args.first ?? []).1)) {
                _ = queue.popFirst()
                queuedBytes -= Self.size(of: item)
                batch.append(item)
            } else {
                break
            }
        }
        let server = self.server
        let loop = context.eventLoop
        let handler = NIOLoopBound(self, eventLoop: loop)
        let ctx = NIOLoopBound(context, eventLoop: loop)
        let allocator = context.channel.allocator
        let items = batch
        pool.submit { state in
            guard state == .active else {
                loop.execute { handler.value.finish(context: ctx.value, output: nil, action: .close, unrun: []) }
                return
            }
            var out = allocator.buffer(capacity: 512)
            var action = ConnectionAction.none
            var done = 0
            for item in items {
                done += 1
                guard case .request(let args) = item else { continue }
                let (reply, next) = Commands.execute(args, server: server, session: session, loop: loop, batched: true)
                if let reply {
                    RESPEncoder(version: session.protocolVersion == 3 ? .resp3 : .resp2).write(reply, into: &out)
                }
                if case .more(let extra) = next {
                    for r in extra { RESPEncoder(version: session.protocolVersion == 3 ? .resp3 : .resp2).write(r, into: &out) }
                    action = .none
                } else {
                    action = next
                }
                if case .none = action {
                    if out.readableBytes >= outputCap { break }
                    continue
                }
                // Close, shut down, or a reply that comes later: the batch ends here.
                break
            }
            for m in Commands.trackingEndOfBatch(session: session, server: server) {
                RESPEncoder(version: session.protocolVersion == 3 ? .resp3 : .resp2).write(m, into: &out)
            }
            let output = out
            let next = action
            let unrun = Array(items[done...])
            loop.execute { handler.value.finish(context: ctx.value, output: output, action: next, unrun: unrun) }
        }
    }

    private func finish(context: ChannelHandlerContext, output: ByteBuffer?, action: ConnectionAction, unrun: [Item]) {
        // A parked reply keeps the connection's later requests waiting; set before anything
        // is written, since a write that completes at once re-enters `schedule`.
        if case .later = action { running = true } else { running = false }
        if let session {
            decoder.authenticationRequired = !session.authenticated
            // A parked reply (WAIT) keeps the client blocked: the idle timeout spares it, as
            // Redis spares blocked clients.
            var parked = false
            if case .later = action { parked = true }
            session.executing.store(parked, ordering: .relaxed)
            session.touch()
        }
        let wasClosing = closing
        var deferred: EventLoopFuture<RESPValue>?
        var closeAfter = false
        switch action {
        case .none, .more:
            break
        case .later(let future):
            deferred = future
        case .close, .shutdown:
            closeAfter = true
        }
        if !closeAfter {
            // Requests the batch left for later go back in front, in order.
            for item in unrun.reversed() {
                queuedBytes += Self.size(of: item)
                queue.prepend(item)
            }
        }
        if wasClosing {
            running = false
            // The client went away while the batch ran: a parked reply has no reader.
            if deferred != nil, let session {
                server.replication.cancelWaits(session: session.id)
                server.blocked.cancel(session: session.id)
            }
            return
        }
        if let output, output.readableBytes > 0, context.channel.isActive {
            if !send(output, context: context, thenClose: closeAfter) { return }
        } else if closeAfter {
            closing = true
            context.close(promise: nil)
            return
        }
        if let deferred {
            // Nothing else of this connection runs until the parked reply is sent.
            let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
            let ctx = NIOLoopBound(context, eventLoop: context.eventLoop)
            deferred.hop(to: context.eventLoop).whenComplete { result in
                handler.value.deferredReplied(result, context: ctx.value)
            }
            return
        }
        resumeReadingIfDrained(context: context)
        schedule(context: context)
    }

    /// A parked reply arrived: send it and go on with the queue.
    private func deferredReplied(_ result: Result<RESPValue, Error>, context: ChannelHandlerContext) {
        running = false
        session?.executing.store(false, ordering: .relaxed)
        guard !closing, context.channel.isActive, let session else { return }
        var out = context.channel.allocator.buffer(capacity: 64)
        switch result {
        case .success(let reply) where reply == .suppressed:
            break
        case .success(let reply):
            RESPEncoder(version: session.protocolVersion == 3 ? .resp3 : .resp2).write(reply, into: &out)
        case .failure(let error):
            RESPEncoder().writeError("ERR \(error)", into: &out)
        }
        if out.readableBytes > 0 && !send(out, context: context, thenClose: false) { return }
        resumeReadingIfDrained(context: context)
        schedule(context: context)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    static func describe(_ address: SocketAddress) -> String {
        "\(address.ipAddress ?? "?"):\(address.port ?? 0)"
    }
}
