#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import KVProtocol
import NIOCore

/// A blocking TCP connection to a RESP server, owned by one benchmark thread.
///
/// Requests are encoded into ``output`` with KVProtocol's ``RESPEncoder`` and sent in one
/// `send` per ``send()``; replies are decoded with ``RESPValueDecoder`` from a reused input
/// buffer, so steady-state traffic allocates nothing per request. Plain sockets rather than
/// an event loop: each connection has its own thread, which is what a closed-loop client
/// measuring per-request latency wants.
final class RESPConnection {
    let endpoint: String
    private let fd: Int32
    /// Requests waiting for ``send()``.
    var output: ByteBuffer
    private var input: ByteBuffer
    private var decoder = RESPValueDecoder()
    let encoder = RESPEncoder()

    /// Connects to `endpoint` ("host:port" or "[v6-address]:port") with TCP_NODELAY.
    init(endpoint: String) throws {
        self.endpoint = endpoint
        let (host, port) = try Self.split(endpoint)
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, port, &hints, &list)
        guard rc == 0, let first = list else {
            throw BenchError("cannot resolve \(endpoint): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(list) }
        var lastErrno: Int32 = 0
        var connected: Int32 = -1
        var candidate: UnsafeMutablePointer<addrinfo>? = first
        while let ai = candidate {
            let s = socket(ai.pointee.ai_family, ai.pointee.ai_socktype, ai.pointee.ai_protocol)
            if s >= 0 {
                if connect(s, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0 {
                    connected = s
                    break
                }
                lastErrno = errno
                close(s)
            } else {
                lastErrno = errno
            }
            candidate = ai.pointee.ai_next
        }
        guard connected >= 0 else {
            throw BenchError("cannot connect to \(endpoint): \(String(cString: strerror(lastErrno)))")
        }
        var one: Int32 = 1
        _ = setsockopt(connected, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        fd = connected
        let allocator = ByteBufferAllocator()
        output = allocator.buffer(capacity: 64 << 10)
        input = allocator.buffer(capacity: 64 << 10)
    }

    deinit { close(fd) }

    private static func split(_ endpoint: String) throws -> (String, String) {
        guard let colon = endpoint.lastIndex(of: ":") else {
            throw BenchError("--server must be HOST:PORT, got '\(endpoint)'")
        }
        var host = String(endpoint[..<colon])
        let port = String(endpoint[endpoint.index(after: colon)...])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, let p = Int(port), (1...65535).contains(p) else {
            throw BenchError("--server must be HOST:PORT, got '\(endpoint)'")
        }
        return (host, port)
    }

    /// Sends everything in ``output``.
    func send() throws {
        while output.readableBytes > 0 {
            let n = output.withUnsafeReadableBytes { buf in
                sendBytes(fd, buf.baseAddress, buf.count)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw BenchError("send to \(endpoint) failed: \(String(cString: strerror(errno)))")
            }
            output.moveReaderIndex(forwardBy: n)
        }
        output.clear()
    }

    /// The next complete reply, reading from the socket as needed.
    func readReply() throws -> RESPValue {
        while true {
            if input.readableBytes > 0, let value = try decoder.decode(buffer: &input) {
                return value
            }
            if input.readableBytes == 0 {
                input.clear()
            } else if input.readerIndex > 32 << 10 {
                input.discardReadBytes()
            }
            var failure: Int32 = 0
            input.writeWithUnsafeMutableBytes(minimumWritableBytes: 16 << 10) { buf -> Int in
                let n = recv(fd, buf.baseAddress, buf.count, 0)
                if n < 0 {
                    failure = errno
                    return 0
                }
                if n == 0 { failure = -1 }
                return n
            }
            if failure == EINTR { continue }
            if failure == -1 { throw BenchError("\(endpoint) closed the connection") }
            if failure != 0 { throw BenchError("receive from \(endpoint) failed: \(String(cString: strerror(failure)))") }
        }
    }

    /// Sends one command and returns its reply (for setup commands, not measured paths).
    func command(_ arguments: [String]) throws -> RESPValue {
        encoder.writeCommand(arguments, into: &output)
        try send()
        return try readReply()
    }
}

/// `send(2)` without SIGPIPE, returning the count written or -1.
@inline(__always)
private func sendBytes(_ fd: Int32, _ base: UnsafeRawPointer?, _ count: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.send(fd, base, count, Int32(MSG_NOSIGNAL))
    #else
    return Darwin.send(fd, base, count, 0)
    #endif
}
