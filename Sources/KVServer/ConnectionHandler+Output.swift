import KVProtocol
import KVStore
import NIOCore

/// The output side of a connection: reply and pub/sub message writes, the bytes waiting in
/// them, and Redis's `client-output-buffer-limit` (the class's hard and soft limits). All
/// on the channel's event loop, like the rest of ``ConnectionHandler``.
extension ConnectionHandler {
    /// Writes a published message in the client's protocol, under the pub/sub output limit.
    func push(_ message: PubSubMessage, context: ChannelHandlerContext) {
        // CLIENT REPLY OFF drops pushed messages too, as in Redis.
        guard !closing, context.channel.isActive, let session, session.replyMode.load(ordering: .relaxed) != 1 else { return }
        refreshLimits()
        var out = context.channel.allocator.buffer(capacity: 64)
        RESPEncoder(version: session.protocolVersion == 3 ? .resp3 : .resp2).write(message.value, into: &out)
        _ = send(out, context: context, thenClose: false)
    }

    /// Writes and flushes reply bytes, counting them as waiting until the socket took them;
    /// closes after them when `thenClose`. Returns false when the connection is closing.
    func send(_ output: ByteBuffer, context: ChannelHandlerContext, thenClose: Bool) -> Bool {
        let size = output.readableBytes
        let limit = currentLimit
        if limit.hardBytes > 0 && pendingOutput + size >= limit.hardBytes {
            closeForOutputLimit(context: context, reason: "hard")
            return false
        }
        server.counters.netOutputBytes.add(size)
        addPendingOutput(size, context: context)
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let ctx = NIOLoopBound(context, eventLoop: context.eventLoop)
        if thenClose {
            // Set before the write: a write that completes at once runs `written` right here.
            closing = true
            let flushed = context.writeAndFlush(wrapOutboundOut(output))
            flushed.whenComplete { _ in handler.value.written(size, context: ctx.value) }
            flushed.whenComplete { _ in ctx.value.close(promise: nil) }
            return false
        }
        // Most replies leave in the write itself: then they count as written at once, with no
        // promise and callback per reply batch. Bytes the socket did not take stay counted
        // until an empty write queued behind them completes (writes complete in order).
        context.writeAndFlush(wrapOutboundOut(output), promise: nil)
        if let buffered = try? context.channel.syncOptions?.getOption(.bufferedWritableBytes), buffered == 0 {
            written(size, context: context)
            return true
        }
        let drained = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)), promise: drained)
        drained.futureResult.whenComplete { _ in handler.value.written(size, context: ctx.value) }
        return true
    }

    /// A write of `size` reply bytes completed (or failed because the channel closed).
    func written(_ size: Int, context: ChannelHandlerContext) {
        pendingOutput -= size
        if let session {
            session.outputBytes.store(pendingOutput, ordering: .relaxed)
            session.touch()
        }
        let limit = currentLimit
        if softLimitSince != nil && (limit.softBytes == 0 || pendingOutput < limit.softBytes) {
            softLimitSince = nil
            softLimitCheck?.cancel()
            softLimitCheck = nil
        }
        if !closing {
            resumeReadingIfDrained(context: context)
            schedule(context: context)
        }
    }

    func addPendingOutput(_ size: Int, context: ChannelHandlerContext) {
        pendingOutput += size
        session?.outputBytes.store(pendingOutput, ordering: .relaxed)
        let limit = currentLimit
        guard limit.softBytes > 0, pendingOutput >= limit.softBytes, softLimitSince == nil else { return }
        softLimitSince = monotonicMillis()
        scheduleSoftLimitCheck(after: Int64(limit.softSeconds) * 1000, context: context)
    }

    /// Closes the client if its output is still at or above the soft limit once it has been
    /// there for the soft seconds (read when the check runs, so CONFIG SET applies).
    func scheduleSoftLimitCheck(after millis: Int64, context: ChannelHandlerContext) {
        softLimitCheck?.cancel()
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let ctx = NIOLoopBound(context, eventLoop: context.eventLoop)
        softLimitCheck = context.eventLoop.scheduleTask(in: .milliseconds(max(0, millis) + 10)) {
            handler.value.checkSoftLimit(context: ctx.value)
        }
    }

    func checkSoftLimit(context: ChannelHandlerContext) {
        softLimitCheck = nil
        guard let since = softLimitSince, !closing else { return }
        let limit = currentLimit
        guard limit.softBytes > 0, pendingOutput >= limit.softBytes else {
            softLimitSince = nil
            return
        }
        let remaining = Int64(limit.softSeconds) * 1000 - (monotonicMillis() - since)
        if remaining <= 0 {
            closeForOutputLimit(context: context, reason: "soft")
        } else {
            scheduleSoftLimitCheck(after: remaining, context: context)
        }
    }

    /// Closes the connection at once, dropping what is queued and waiting (Redis frees such
    /// a client asynchronously without a reply).
    func closeForOutputLimit(context: ChannelHandlerContext, reason: String) {
        closing = true
        queue.removeAll()
        queuedBytes = 0
        server.counters.outputBufferDisconnections.wrappingAdd(1, ordering: .relaxed)
        server.logger.warning("client closed for overcoming of output buffer limits", metadata: [
            "client": "\(session?.remoteAddress ?? "?")", "limit": "\(reason)", "waiting": "\(pendingOutput)",
        ])
        context.close(promise: nil)
    }
}
