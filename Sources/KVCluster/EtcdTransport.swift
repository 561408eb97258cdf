import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// An etcd endpoint, `http://host:port` (the port defaults to 2379).
struct EtcdEndpoint: Sendable, CustomStringConvertible {
    var host: String
    var port: Int
    var description: String

    init(_ text: String) {
        description = text
        var rest = Substring(text)
        if let r = rest.range(of: "://") { rest = rest[r.upperBound...] }
        if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }
        if rest.hasPrefix("["), let close = rest.firstIndex(of: "]") {
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            let after = rest[rest.index(after: close)...]
            port = after.hasPrefix(":") ? Int(after.dropFirst()) ?? 2379 : 2379
        } else if let colon = rest.lastIndex(of: ":") {
            host = String(rest[..<colon])
            port = Int(rest[rest.index(after: colon)...]) ?? 2379
        } else {
            host = String(rest)
            port = 2379
        }
    }
}

/// The endpoint did not answer: the next one is tried.
struct EtcdUnreachable: Error, CustomStringConvertible {
    var description: String
}

typealias EtcdHTTPChannel = NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>

/// One HTTP/1.1 exchange per connection (`Connection: close`): etcd is local or near, and a
/// fresh connection never carries a half-read answer of an earlier, timed-out request.
struct EtcdTransport: Sendable {
    let group: MultiThreadedEventLoopGroup
    let connectTimeout: TimeAmount
    let requestTimeout: TimeAmount

    func connect(_ ep: EtcdEndpoint) async throws -> EtcdHTTPChannel {
        do {
            return try await ClientBootstrap(group: group)
                .connectTimeout(connectTimeout)
                .connect(host: ep.host, port: ep.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        return try EtcdHTTPChannel(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw EtcdUnreachable(description: "cannot connect: \(error)")
        }
    }

    static func requestHead(_ ep: EtcdEndpoint, _ path: String, bodyLength: Int) -> HTTPRequestHead {
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: path)
        head.headers.add(name: "Host", value: "\(ep.host):\(ep.port)")
        head.headers.add(name: "Content-Type", value: "application/json")
        head.headers.add(name: "Content-Length", value: String(bodyLength))
        head.headers.add(name: "Connection", value: "close")
        return head
    }

    static func send(_ outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>, _ ep: EtcdEndpoint, _ path: String, _ body: Data) async throws {
        try await outbound.write(.head(requestHead(ep, path, bodyLength: body.count)))
        try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body))))
        try await outbound.write(.end(nil))
    }

    /// Posts `body` to `path` and returns the status and the whole answer. Throws
    /// ``EtcdUnreachable`` when the endpoint cannot be reached, drops the connection or does
    /// not answer within the request timeout.
    func post(_ ep: EtcdEndpoint, _ path: String, _ body: Data) async throws -> (status: Int, body: Data) {
        let channel = try await connect(ep)
        let timer = channel.channel.eventLoop.scheduleTask(in: requestTimeout) { channel.channel.close(promise: nil) }
        defer { timer.cancel() }
        do {
            return try await channel.executeThenClose { inbound, outbound in
                try await Self.send(outbound, ep, path, body)
                var status = 0
                var data = Data()
                for try await part in inbound {
                    switch part {
                    case .head(let h): status = Int(h.status.code)
                    case .body(let b): data.append(contentsOf: b.readableBytesView)
                    case .end: return (status, data)
                    }
                }
                throw EtcdUnreachable(description: "the connection closed before the answer ended (timeout or etcd stopped)")
            }
        } catch let e as EtcdUnreachable {
            throw e
        } catch {
            throw EtcdUnreachable(description: "\(error)")
        }
    }

    /// Posts `body` to a streaming `path` (`/v3/watch`) and hands every newline-delimited JSON
    /// message to `onMessage` until the connection ends, `onMessage` returns false, or the task
    /// is cancelled. The first message must come within the request timeout.
    func stream(
        _ ep: EtcdEndpoint, _ path: String, _ body: Data,
        onMessage: @escaping @Sendable (_ message: [String: Any]) throws -> Bool
    ) async throws {
        let channel = try await connect(ep)
        let timer = channel.channel.eventLoop.scheduleTask(in: requestTimeout) { channel.channel.close(promise: nil) }
        defer { timer.cancel() }
        do {
            try await withTaskCancellationHandler {
                try await streamMessages(channel, ep, path, body, timer, onMessage)
            } onCancel: {
                channel.channel.close(promise: nil)
            }
        } catch let e as EtcdUnreachable {
            throw e
        } catch let e as ClusterError {
            throw e
        } catch {
            throw EtcdUnreachable(description: "\(error)")
        }
    }

    private func streamMessages(
        _ channel: EtcdHTTPChannel, _ ep: EtcdEndpoint, _ path: String, _ body: Data, _ timer: Scheduled<Void>,
        _ onMessage: @escaping @Sendable (_ message: [String: Any]) throws -> Bool
    ) async throws {
        try await channel.executeThenClose { inbound, outbound in
            try await Self.send(outbound, ep, path, body)
            var pending: [UInt8] = []
            var status = 0
            for try await part in inbound {
                switch part {
                case .head(let h):
                    status = Int(h.status.code)
                case .body(let b):
                    pending.append(contentsOf: b.readableBytesView)
                    while let nl = pending.firstIndex(of: 0x0A) {
                        let line = Data(pending[..<nl])
                        pending.removeSubrange(...nl)
                        if line.allSatisfy({ $0 == 0x20 || $0 == 0x0D }) { continue }
                        guard let msg = try? JSONSerialization.jsonObject(with: line) as? [String: Any] else {
                            throw ClusterError.etcd("\(path) at \(ep): malformed stream message (HTTP \(status))")
                        }
                        timer.cancel()
                        if try !onMessage(msg) { return }
                    }
                case .end:
                    if !pending.isEmpty, let msg = try? JSONSerialization.jsonObject(with: Data(pending)) as? [String: Any] {
                        _ = try onMessage(msg)
                    }
                    throw EtcdUnreachable(description: "the stream ended (HTTP \(status))")
                }
            }
            if Task.isCancelled { return }
            throw EtcdUnreachable(description: "the connection closed (timeout or etcd stopped)")
        }
    }
}
