import KVProtocol
import NIOCore
import NIOPosix

/// One client connection: decodes requests on the event loop, runs them in order on the
/// worker pool in batches (engine work never runs on an event loop), and writes the replies
/// of a batch with one flush. While a batch runs, newly decoded requests queue up; reading
/// pauses when the queue is long, so a client cannot make the server buffer without bound.
final class ConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Item {
        case request([[UInt8]])
        /// A protocol error: reply with it, then close.
        case protocolError(String)
    }

    /// Requests run per pool job, at most.
    static let batchLimit = 256
    /// Reading pauses above this many queued requests and resumes below a quarter of it.
    static let queueLimit = 4096

    private let server: ServerState
    private let pool: NIOThreadPool
    private var session: ClientSession?
    private var decoder: RESPRequestDecoder
    private var inbound: ByteBuffer?
    private var queue = CircularBuffer<Item>()
    private var running = false
    private var closing = false
    private var readPaused = false
    private var failed = false

    init(server: ServerState, pool: NIOThreadPool) {
        self.server = server
        self.pool = pool
        self.decoder = RESPRequestDecoder(limits: server.config.limits)
    }

    func channelActive(context: ChannelHandlerContext) {
        let remote = context.channel.remoteAddress.map(Self.describe) ?? "?"
        let local = context.channel.localAddress.map(Self.describe) ?? "?"
        guard let session = server.register(remote: remote, local: local) else {
            var out = context.channel.allocator.buffer(capacity: 64)
            out.writeString("-ERR max number of clients reached\r\n")
            closing = true
            let ctx = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.writeAndFlush(wrapOutboundOut(out)).whenComplete { _ in ctx.value.close(promise: nil) }
            return
        }
        self.session = session
        decoder.authenticationRequired = !session.authenticated
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        closing = true
        queue.removeAll()
        if let session { server.unregister(session) }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        server.counters.netInputBytes.wrappingAdd(Int64(buffer.readableBytes), ordering: .relaxed)
        if closing || failed || session == nil { return }
        if inbound == nil {
            inbound = buffer
        } else {
            inbound!.writeBuffer(&buffer)
        }
        decodeQueued()
        if queue.count >= Self.queueLimit && !readPaused {
            readPaused = true
            context.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
        }
        schedule(context: context)
    }

    /// Decodes every complete request in the inbound buffer into the queue.
    private func decodeQueued() {
        guard inbound != nil else { return }
        while !failed {
            do {
                guard let request = try decoder.decode(buffer: &inbound!) else { break }
                queue.append(.request(request.arguments.map { Array($0.readableBytesView) }))
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

    private func schedule(context: ChannelHandlerContext) {
        guard !running, !closing, !queue.isEmpty, let session else { return }
        running = true
        var batch: [Item] = []
        batch.reserveCapacity(min(queue.count, Self.batchLimit))
        while batch.count < Self.batchLimit, let item = queue.popFirst() { batch.append(item) }
        let server = self.server
        let loop = context.eventLoop
        let handler = NIOLoopBound(self, eventLoop: loop)
        let ctx = NIOLoopBound(context, eventLoop: loop)
        let allocator = context.channel.allocator
        let items = batch
        pool.submit { state in
            guard state == .active else {
                loop.execute { handler.value.finish(context: ctx.value, output: nil, action: .close) }
                return
            }
            var out = allocator.buffer(capacity: 512)
            var action = ConnectionAction.none
            for item in items {
                switch item {
                case .request(let args):
                    let (reply, next) = Commands.execute(args, server: server, session: session)
                    if let reply {
                        RESPEncoder(version: session.protocolVersion == 3 ? .resp3 : .resp2).write(reply, into: &out)
                    }
                    action = next
                case .protocolError(let message):
                    RESPEncoder().writeError(message, into: &out)
                    action = .close
                }
                if case .none = action { continue }
                break
            }
            let output = out
            let next = action
            loop.execute { handler.value.finish(context: ctx.value, output: output, action: next) }
        }
    }

    private func finish(context: ChannelHandlerContext, output: ByteBuffer?, action: ConnectionAction) {
        running = false
        if let session { decoder.authenticationRequired = !session.authenticated }
        if let output, output.readableBytes > 0, context.channel.isActive {
            server.counters.netOutputBytes.wrappingAdd(Int64(output.readableBytes), ordering: .relaxed)
            let flushed = context.writeAndFlush(wrapOutboundOut(output))
            if case .none = action {} else {
                closing = true
                let ctx = NIOLoopBound(context, eventLoop: context.eventLoop)
                flushed.whenComplete { _ in ctx.value.close(promise: nil) }
                return
            }
        } else if case .none = action {} else {
            closing = true
            context.close(promise: nil)
            return
        }
        if readPaused && queue.count < Self.queueLimit / 4 {
            readPaused = false
            context.channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
        }
        schedule(context: context)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    static func describe(_ address: SocketAddress) -> String {
        "\(address.ipAddress ?? "?"):\(address.port ?? 0)"
    }
}
