import KVProtocol
@testable import KVServer
import Logging
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A `KVServer` started in this process on 127.0.0.1 and a free port, over a fresh data
/// directory that is removed when the server stops.
final class LiveServer {
    let server: KVServer
    let dir: String

    init(_ configure: (inout ServerConfig) -> Void = { _ in }) throws {
        var template = Array("/tmp/shale-ops-test-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw TestFailure("mkdtemp failed") }
        dir = String(cString: made)
        var cfg = ServerConfig()
        cfg.dir = dir
        cfg.bind = "127.0.0.1"
        cfg.port = 0
        cfg.shards = 2
        cfg.metricsPort = 0
        cfg.workerThreads = 4
        cfg.ioThreads = 1
        cfg.blockCacheMB = 8
        configure(&cfg)
        var logger = Logger(label: "test-server")
        logger.logLevel = .error
        server = try KVServer(config: cfg, logger: logger)
    }

    var port: Int { server.port }
    var state: ServerState { server.state }

    /// A connected client (from `source` when given).
    func client(source: String? = nil) throws -> SocketClient {
        try SocketClient(port: port, source: source)
    }

    func stop() {
        server.shutdown()
        _ = system("rm -rf '\(dir)'")
    }

    deinit { stop() }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A blocking TCP client over a POSIX socket; every wait is bounded by a timeout.
final class SocketClient {
    private(set) var fd: Int32
    private var decoder = RESPValueDecoder()
    private var buffer = ByteBuffer()

    /// Connects to 127.0.0.1:`port`, from the address `source` when given.
    init(port: Int, source: String? = nil, host: String = "127.0.0.1") throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: errno \(errno)") }
        if let source {
            var local = Self.address(source, port: 0)
            let rc = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard rc == 0 else { Glibc.close(fd); throw TestFailure("bind \(source): errno \(errno)") }
        }
        var remote = Self.address(host, port: port)
        let rc = withUnsafePointer(to: &remote) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { Glibc.close(fd); throw TestFailure("connect to \(host):\(port): errno \(errno)") }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    }

    static func address(_ ip: String, port: Int) -> sockaddr_in {
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, ip, &a.sin_addr)
        return a
    }

    deinit { close() }

    func close() {
        if fd >= 0 {
            Glibc.close(fd)
            fd = -1
        }
    }

    /// Shrinks the kernel receive buffer (before connecting would be stricter; this is enough
    /// to keep what a non-reading client holds small).
    func setReceiveBuffer(_ bytes: Int32) {
        var v = bytes
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, socklen_t(MemoryLayout<Int32>.size))
    }

    private func wait(_ events: Int16, timeout: Double) -> Int16? {
        var p = pollfd(fd: fd, events: events, revents: 0)
        let rc = poll(&p, 1, Int32(timeout * 1000))
        return rc > 0 ? p.revents : nil
    }

    /// Sends all of `bytes` unless the connection fails or `timeout` passes. Returns false
    /// when the peer closed or reset the connection.
    @discardableResult
    func send(_ bytes: [UInt8], timeout: Double = 10) throws -> Bool {
        var sent = 0
        let deadline = monotonicSeconds() + timeout
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n > 0 {
                sent += n
                continue
            }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                if monotonicSeconds() > deadline { throw TestFailure("send timed out") }
                _ = wait(Int16(POLLOUT), timeout: 0.2)
                continue
            }
            return false
        }
        return true
    }

    /// Sends what the socket takes of `bytes` within `timeout`: the count (0 when nothing
    /// could be sent in time), nil when the peer closed or reset the connection.
    func sendSome(_ bytes: ArraySlice<UInt8>, timeout: Double) -> Int? {
        if wait(Int16(POLLOUT), timeout: timeout) == nil { return 0 }
        let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if n >= 0 { return n }
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : nil
    }

    /// Sends one command in RESP.
    @discardableResult
    func send(command args: String...) throws -> Bool {
        try send(Self.encode(args.map { Array($0.utf8) }))
    }

    static func encode(_ args: [[UInt8]]) -> [UInt8] {
        var out = Array("*\(args.count)\r\n".utf8)
        for a in args {
            out += Array("$\(a.count)\r\n".utf8) + a + [13, 10]
        }
        return out
    }

    /// Reads whatever is available within `timeout`; `closed` when the peer closed.
    func readAvailable(timeout: Double) -> (bytes: [UInt8], closed: Bool) {
        var out: [UInt8] = []
        let deadline = monotonicSeconds() + timeout
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let left = deadline - monotonicSeconds()
            if left <= 0 { return (out, false) }
            guard wait(Int16(POLLIN), timeout: min(left, 0.2)) != nil else { continue }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                out += chunk[0..<n]
                continue
            }
            if n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) { return (out, true) }
        }
    }

    /// Reads until the peer closes (true) or `timeout` passes (false).
    func readUntilClosed(timeout: Double) -> (bytes: [UInt8], closed: Bool) {
        var out: [UInt8] = []
        let deadline = monotonicSeconds() + timeout
        while monotonicSeconds() < deadline {
            let (b, closed) = readAvailable(timeout: min(0.5, max(0.01, deadline - monotonicSeconds())))
            out += b
            if closed { return (out, true) }
        }
        return (out, false)
    }

    /// The next reply as soon as it has arrived (for latency measurements: ``reply(timeout:)``
    /// reads in 50 ms slices), or nil when none came within `timeout` or the connection closed.
    func promptReply(timeout: Double = 10) throws -> RESPValue? {
        let deadline = monotonicSeconds() + timeout
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            if let v = try decoder.decode(buffer: &buffer) { return v }
            let left = deadline - monotonicSeconds()
            if left <= 0 { return nil }
            guard wait(Int16(POLLIN), timeout: min(left, 0.2)) != nil else { continue }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                buffer.writeBytes(chunk[0..<n])
            } else if n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                return try decoder.decode(buffer: &buffer)
            }
        }
    }

    /// The next reply, or nil when none came within `timeout` or the connection closed.
    func reply(timeout: Double = 10) throws -> RESPValue? {
        let deadline = monotonicSeconds() + timeout
        while true {
            if let v = try decoder.decode(buffer: &buffer) { return v }
            let left = deadline - monotonicSeconds()
            if left <= 0 { return nil }
            let (b, closed) = readAvailable(timeout: min(left, 0.05))
            buffer.writeBytes(b)
            if closed && b.isEmpty {
                return try decoder.decode(buffer: &buffer)
            }
        }
    }

    /// Sends a command and returns its reply.
    func call(_ args: String...) throws -> RESPValue? {
        try send(Self.encode(args.map { Array($0.utf8) }))
        return try reply()
    }
}

func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// A TCP port on 127.0.0.1 nobody listens on right now.
func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var a = SocketClient.address("127.0.0.1", port: 0)
    let rc = withUnsafePointer(to: &a) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard rc == 0 else { throw TestFailure("bind: errno \(errno)") }
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &a) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
    }
    return Int(UInt16(bigEndian: a.sin_port))
}

/// Resident set size of this process in bytes.
func residentBytes() -> Int { InfoReport.residentBytes() }
