import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A reply of a Redis-protocol server (RESP2).
public enum RESPReply: Sendable, Equatable {
    /// `+...`
    case simple(String)
    /// `-...`
    case error(String)
    /// `:n`
    case integer(Int64)
    /// `$n` (nil: `$-1`).
    case bulk([UInt8]?)
    /// `*n` (nil: `*-1`).
    case array([RESPReply]?)

    /// The text of a simple or bulk string reply.
    public var text: String? {
        switch self {
        case .simple(let s): return s
        case .bulk(let b?): return String(decoding: b, as: UTF8.self)
        default: return nil
        }
    }
}

/// A tiny blocking client of the Redis protocol, for `kvcluster` to ask nodes `CLUSTER MYID`
/// and `CLUSTER INFO`: one connection, one command at a time, every send and receive bounded
/// by a timeout.
public final class RESPClient {
    private let fd: Int32
    private var buffer: [UInt8] = []
    /// `host:port`.
    public let address: String

    /// Connects to `host`:`port`, waiting at most `timeoutSeconds` for each read and write.
    public init(host: String, port: Int, timeoutSeconds: Int = 3) throws {
        address = "\(host):\(port)"
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            throw ClusterError.failed("\(host):\(port): cannot resolve \(host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(list) }
        var lastErrno: Int32 = 0
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        var connected: Int32 = -1
        while let ai = cursor {
            let s = socket(ai.pointee.ai_family, ai.pointee.ai_socktype, ai.pointee.ai_protocol)
            if s >= 0 {
                var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
                setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                if connect(s, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0 {
                    connected = s
                    break
                }
                lastErrno = errno
                close(s)
            }
            cursor = ai.pointee.ai_next
        }
        guard connected >= 0 else {
            throw ClusterError.failed("\(host):\(port): cannot connect: \(String(cString: strerror(lastErrno)))")
        }
        fd = connected
    }

    deinit { close(fd) }

    /// Sends `args` as one command and reads its reply.
    public func command(_ args: [String]) throws -> RESPReply {
        var out = "*\(args.count)\r\n"
        for a in args { out += "$\(a.utf8.count)\r\n\(a)\r\n" }
        let bytes = Array(out.utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw ClusterError.failed("\(address): send failed: \(String(cString: strerror(errno)))") }
            sent += n
        }
        return try reply()
    }

    private func line() throws -> String {
        var scanned = 0
        while true {
            if let cr = buffer[scanned...].firstIndex(of: 0x0D), cr + 1 < buffer.count {
                if buffer[cr + 1] == 0x0A {
                    let s = String(decoding: buffer[..<cr], as: UTF8.self)
                    buffer.removeSubrange(...(cr + 1))
                    return s
                }
                scanned = cr + 1
                continue
            }
            try fill()
        }
    }

    private func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 4096)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n == 0 { throw ClusterError.failed("\(address): the connection closed") }
        if n < 0 { throw ClusterError.failed("\(address): no reply: \(String(cString: strerror(errno)))") }
        buffer += chunk[..<n]
    }

    private func reply() throws -> RESPReply {
        let l = try line()
        guard let kind = l.first else { throw ClusterError.failed("\(address): empty reply line") }
        let rest = String(l.dropFirst())
        switch kind {
        case "+": return .simple(rest)
        case "-": return .error(rest)
        case ":": return .integer(Int64(rest) ?? 0)
        case "$":
            guard let n = Int(rest) else { throw ClusterError.failed("\(address): bad bulk length \(rest)") }
            if n < 0 { return .bulk(nil) }
            while buffer.count < n + 2 { try fill() }
            let b = Array(buffer[..<n])
            buffer.removeSubrange(..<(n + 2))
            return .bulk(b)
        case "*":
            guard let n = Int(rest) else { throw ClusterError.failed("\(address): bad array length \(rest)") }
            if n < 0 { return .array(nil) }
            return .array(try (0..<n).map { _ in try reply() })
        default:
            throw ClusterError.failed("\(address): unexpected reply \(l.prefix(40))")
        }
    }

    /// `CLUSTER MYID`: the node's id.
    public func clusterMyID() throws -> String {
        let r = try command(["CLUSTER", "MYID"])
        if case .error(let e) = r { throw ClusterError.failed("\(address): CLUSTER MYID: \(e)") }
        guard let id = r.text?.trimmingCharacters(in: .whitespacesAndNewlines), ClusterNode.isValidID(id) else {
            throw ClusterError.failed("\(address): CLUSTER MYID did not answer a node id (is it running in cluster mode?)")
        }
        return id
    }

    /// The node's id (`CLUSTER MYID`), refusing a node that holds keys (`DBSIZE` above 0): a
    /// node joins a cluster empty, as redis-cli's `--cluster create` and `add-node` require —
    /// a leader deletes rows of slots it does not serve, and a follower's first sync replaces
    /// its data.
    public func emptyNodeID() throws -> String {
        let id = try clusterMyID()
        let r = try command(["DBSIZE"])
        guard case .integer(let n) = r else { throw ClusterError.failed("\(address): DBSIZE: unexpected reply") }
        if n > 0 {
            throw ClusterError.failed("\(address) is not empty (\(n) keys): a node joins a cluster with an empty data directory")
        }
        return id
    }

    /// `CLUSTER INFO` as its `field:value` pairs.
    public func clusterInfo() throws -> [String: String] {
        let r = try command(["CLUSTER", "INFO"])
        if case .error(let e) = r { throw ClusterError.failed("\(address): CLUSTER INFO: \(e)") }
        var out: [String: String] = [:]
        for line in (r.text ?? "").split(whereSeparator: \.isNewline) {
            if let c = line.firstIndex(of: ":") { out[String(line[..<c])] = String(line[line.index(after: c)...]) }
        }
        return out
    }
}
