import KVStore
import NIOCore
import NIOHTTP1
import NIOPosix

/// The Prometheus endpoint: a small HTTP/1.1 server on 127.0.0.1 answering `GET /metrics`
/// (and `HEAD`) with ``MetricsExporter``'s text; any other path is 404 and any other method
/// 405. Reading the figures touches the store's files, so it runs on the worker pool,
/// never on an event loop.
enum MetricsServer {
    /// The content type of Prometheus's text exposition format.
    static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// Listens on `host:port` (port 0 picks a free one).
    ///
    /// - Throws: the bind error.
    static func start(host: String, port: Int, group: any EventLoopGroup, pool: NIOThreadPool,
                      server: ServerState, exporter: MetricsExporter) throws -> any Channel {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 64)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(
                        MetricsHTTPHandler(server: server, exporter: exporter, pool: pool))
                }
            }
        return try bootstrap.bind(host: host, port: port).wait()
    }
}

/// Answers one HTTP request at a time on a connection.
final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let server: ServerState
    private let exporter: MetricsExporter
    private let pool: NIOThreadPool
    private var request: HTTPRequestHead?

    init(server: ServerState, exporter: MetricsExporter, pool: NIOThreadPool) {
        self.server = server
        self.exporter = exporter
        self.pool = pool
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
        case .body:
            break
        case .end:
            guard let head = request else { return }
            request = nil
            respond(to: head, context: context)
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        guard head.method == .GET || head.method == .HEAD else {
            send(status: .methodNotAllowed, body: Array("only GET and HEAD are allowed\n".utf8), head: head,
                 extra: [("Allow", "GET, HEAD")], context: context)
            return
        }
        guard path == "/metrics" else {
            send(status: .notFound, body: Array("not found; the metrics are at /metrics\n".utf8), head: head, context: context)
            return
        }
        let loop = context.eventLoop
        let handler = NIOLoopBound(self, eventLoop: loop)
        let ctx = NIOLoopBound(context, eventLoop: loop)
        let server = self.server
        let exporter = self.exporter
        pool.submit { state in
            let result: (HTTPResponseStatus, [UInt8])
            if state != .active {
                result = (.serviceUnavailable, Array("shutting down\n".utf8))
            } else {
                do {
                    result = (.ok, try exporter.render(server: server))
                } catch {
                    result = (.internalServerError, Array("reading statistics failed: \(error)\n".utf8))
                }
            }
            loop.execute {
                handler.value.send(status: result.0, body: result.1, head: head,
                                   contentType: result.0 == .ok ? MetricsServer.contentType : "text/plain; charset=utf-8",
                                   context: ctx.value)
            }
        }
    }

    private func send(status: HTTPResponseStatus, body: [UInt8], head: HTTPRequestHead,
                      contentType: String = "text/plain; charset=utf-8", extra: [(String, String)] = [],
                      context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        var headers = HTTPHeaders([("Content-Type", contentType), ("Content-Length", String(body.count))] + extra)
        let keepAlive = head.isKeepAlive
        headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        if head.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let ctx = NIOLoopBound(context, eventLoop: context.eventLoop)
            done.whenComplete { _ in ctx.value.close(promise: nil) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
