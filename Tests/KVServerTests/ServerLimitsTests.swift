import KVProtocol
@testable import KVServer
import NIOCore
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Limits against abuse, with a server started in this process and driven over sockets:
/// output buffer, idle timeout, maxclients, protocol limits, AUTH, protected mode.
@Suite("Server limits", .serialized)
struct ServerLimitsTests {
    static let pong = RESPValue.simpleString("PONG")

    /// A new connection still gets PONG and the known key is unchanged.
    func expectHealthy(_ s: LiveServer, after what: String) throws {
        let c = try s.client()
        #expect(try c.call("PING") == Self.pong, "PING after \(what)")
        #expect(try c.call("GET", "known") == .bulkString(ByteBuffer(string: "value")), "known key after \(what)")
    }

    @Test func clientThatNeverReadsIsDisconnectedAndMemoryStaysBounded() throws {
        let s = try LiveServer { c in
            c.outputBufferLimit = OutputBufferLimit(hardBytes: 64 << 20, softBytes: 4 << 20, softSeconds: 2)
        }
        let setup = try s.client()
        let value = String(repeating: "v", count: 4096)
        #expect(try setup.call("SET", "big", value) == .simpleString("OK"))
        #expect(try setup.call("SET", "known", "value") == .simpleString("OK"))

        let rssBefore = residentBytes()
        var rssPeak = rssBefore
        var outputPeak = 0
        let attacker = try s.client()
        attacker.setReceiveBuffer(4096)
        // 1,000,000 pipelined GETs of the 4 KB value (4 GB of replies), never reading one.
        let get = SocketClient.encode([Array("GET".utf8), Array("big".utf8)])
        let chunk = Array([[UInt8]](repeating: get, count: 10_000).joined())
        var sent = 0
        var offset = 0
        var dropped = false
        let deadline = monotonicSeconds() + 60
        while sent < 1_000_000 && monotonicSeconds() < deadline {
            guard let n = attacker.sendSome(chunk[offset...], timeout: 0.2) else {
                dropped = true
                break
            }
            offset += n
            if offset == chunk.count {
                offset = 0
                sent += 10_000
            }
            rssPeak = max(rssPeak, residentBytes())
            outputPeak = max(outputPeak, s.state.largestClientOutput)
            if s.state.counters.outputBufferDisconnections.load(ordering: .relaxed) > 0 { break }
        }
        // Whatever was sent, the server must drop the client within the soft seconds.
        let closedBy = monotonicSeconds() + 15
        while s.state.counters.outputBufferDisconnections.load(ordering: .relaxed) == 0 && monotonicSeconds() < closedBy {
            rssPeak = max(rssPeak, residentBytes())
            outputPeak = max(outputPeak, s.state.largestClientOutput)
            usleep(50_000)
        }
        #expect(s.state.counters.outputBufferDisconnections.load(ordering: .relaxed) == 1)
        print("never-reading client: \(sent) GETs sent, dropped=\(dropped), waiting output peak \(outputPeak >> 10) KiB, RSS before \(rssBefore >> 20) MiB, peak \(rssPeak >> 20) MiB")
        // The server holds about the soft limit plus one batch (at most half the soft limit)
        // for it, where unbounded buffering would hold 4 GB. RSS is the whole test process's,
        // which other suites share, so its bound is only a sanity check; the end-to-end test
        // measures the server process alone.
        #expect(outputPeak >= 4 << 20)
        #expect(outputPeak <= (4 << 20) + (2 << 20) + 8192)
        #expect(rssPeak - rssBefore < 1 << 30)
        // Once the server has seen the close, nothing is held for that client.
        let gone = monotonicSeconds() + 5
        while s.state.connectedClients > 1 && monotonicSeconds() < gone { usleep(20_000) }
        #expect(s.state.largestClientOutput == 0)
        try expectHealthy(s, after: "the never-reading client")
    }

    @Test func hardLimitClosesAtOnce() throws {
        let s = try LiveServer { c in
            c.outputBufferLimit = OutputBufferLimit(hardBytes: 2 << 20, softBytes: 0, softSeconds: 0)
        }
        let setup = try s.client()
        #expect(try setup.call("SET", "known", "value") == .simpleString("OK"))
        #expect(try setup.call("SET", "big", String(repeating: "x", count: 3 << 20)) == .simpleString("OK"))
        // One reply larger than the hard limit: closed without a reply, like Redis.
        let c = try s.client()
        try c.send(command: "GET", "big")
        let (bytes, closed) = c.readUntilClosed(timeout: 10)
        #expect(closed)
        #expect(bytes.isEmpty)
        #expect(s.state.counters.outputBufferDisconnections.load(ordering: .relaxed) == 1)
        // A client that reads is not affected by many smaller replies.
        let reader = try s.client()
        #expect(try reader.call("SET", "mid", String(repeating: "y", count: 100_000)) == .simpleString("OK"))
        var pipeline: [UInt8] = []
        for _ in 0..<200 { pipeline += SocketClient.encode([Array("GET".utf8), Array("mid".utf8)]) }
        try reader.send(pipeline)
        for _ in 0..<200 {
            guard case .bulkString(let b?) = try reader.reply() else { Issue.record("missing reply"); break }
            #expect(b.readableBytes == 100_000)
        }
        try expectHealthy(s, after: "the hard limit")
    }

    @Test func idleClientsAreClosed() throws {
        let s = try LiveServer { $0.idleTimeoutSeconds = 1 }
        let idle = try s.client()
        #expect(try idle.call("PING") == Self.pong)
        let busy = try s.client()
        let started = monotonicSeconds()
        var busyAnswered = true
        while monotonicSeconds() - started < 2.6 {
            let answer = try busy.call("PING")
            busyAnswered = busyAnswered && answer == Self.pong
            usleep(300_000)
        }
        #expect(busyAnswered)
        let (_, closed) = idle.readUntilClosed(timeout: 3)
        #expect(closed)
        #expect(s.state.counters.idleDisconnections.load(ordering: .relaxed) >= 1)
        // CONFIG SET timeout 0 turns it off.
        #expect(try busy.call("CONFIG", "SET", "timeout", "0") == .simpleString("OK"))
        let kept = try s.client()
        #expect(try kept.call("PING") == Self.pong)
        usleep(2_300_000)
        #expect(try kept.call("PING") == Self.pong)
    }

    @Test func maxclientsRefusesOneMore() throws {
        let s = try LiveServer { $0.maxClients = 2 }
        let a = try s.client()
        let b = try s.client()
        #expect(try a.call("PING") == Self.pong)
        #expect(try b.call("PING") == Self.pong)
        let c = try s.client()
        let (bytes, closed) = c.readUntilClosed(timeout: 5)
        #expect(String(decoding: bytes, as: UTF8.self) == "-ERR max number of clients reached\r\n")
        #expect(closed)
        #expect(s.state.counters.rejectedConnections.load(ordering: .relaxed) == 1)
        b.close()
        // The slot frees once the server has seen the close (bounded wait).
        var answered = false
        for _ in 0..<50 where !answered {
            usleep(50_000)
            if s.state.connectedClients < 2, let d = try? s.client(), (try? d.call("PING")) == Self.pong { answered = true }
        }
        #expect(answered)
        // Raised at run time.
        #expect(try a.call("CONFIG", "SET", "maxclients", "5") == .simpleString("OK"))
        let more = try (0..<3).map { _ in try s.client() }
        for m in more { #expect(try m.call("PING") == Self.pong) }
    }

    @Test func protocolAttacksCloseOnlyThatConnection() throws {
        let s = try LiveServer()
        let keeper = try s.client()
        #expect(try keeper.call("SET", "known", "value") == .simpleString("OK"))

        // A bulk longer than proto-max-bulk-len.
        let bulk = try s.client()
        try bulk.send(Array("*3\r\n$3\r\nSET\r\n$5\r\nknown\r\n$600000000\r\n".utf8))
        var (bytes, closed) = bulk.readUntilClosed(timeout: 5)
        #expect(String(decoding: bytes, as: UTF8.self) == "-ERR Protocol error: invalid bulk length\r\n")
        #expect(closed)
        try expectHealthy(s, after: "an oversized bulk")

        // A multibulk count above the limit.
        let count = try s.client()
        try count.send(Array("*2147483648\r\n".utf8))
        (bytes, closed) = count.readUntilClosed(timeout: 5)
        #expect(String(decoding: bytes, as: UTF8.self) == "-ERR Protocol error: invalid multibulk length\r\n")
        #expect(closed)
        try expectHealthy(s, after: "a huge multibulk count")

        // 100 MB of one line with no CRLF: refused after 64 KB.
        let line = try s.client()
        let block = [UInt8](repeating: UInt8(ascii: "a"), count: 1 << 20)
        var sentMB = 0
        for _ in 0..<100 {
            guard (try? line.send(block, timeout: 5)) == true else { break }
            sentMB += 1
        }
        (bytes, closed) = line.readUntilClosed(timeout: 5)
        #expect(String(decoding: bytes, as: UTF8.self).hasPrefix("-ERR Protocol error: too big inline request"))
        #expect(closed)
        #expect(sentMB < 100)
        try expectHealthy(s, after: "a 100 MB line")

        // The connection that behaved is still open.
        #expect(try keeper.call("PING") == Self.pong)
        #expect(s.state.counters.protocolErrors.load(ordering: .relaxed) == 3)
    }

    @Test func unfinishedRequestOverTheQueryBufferLimitCloses() throws {
        let s = try LiveServer { $0.queryBufferLimit = 1 << 20 }
        let c = try s.client()
        #expect(try c.call("SET", "known", "value") == .simpleString("OK"))
        // Two complete 600 KB arguments of a five-argument request, never finished.
        let big = [UInt8](repeating: UInt8(ascii: "q"), count: 600_000)
        var partial = Array("*5\r\n$3\r\nSET\r\n".utf8)
        for _ in 0..<2 { partial += Array("$600000\r\n".utf8) + big + [13, 10] }
        let attacker = try s.client()
        try attacker.send(partial)
        let (bytes, closed) = attacker.readUntilClosed(timeout: 5)
        #expect(bytes.isEmpty)
        #expect(closed)
        #expect(s.state.counters.queryBufferDisconnections.load(ordering: .relaxed) == 1)
        try expectHealthy(s, after: "an unfinished request over the query buffer limit")
        // A complete request of the same size is fine.
        let ok = try s.client()
        #expect(try ok.call("SET", "big", String(repeating: "q", count: 900_000)) == .simpleString("OK"))
    }

    @Test func protocolLimitsFollowConfigSet() throws {
        let s = try LiveServer()
        let c = try s.client()
        #expect(try c.call("SET", "known", "value") == .simpleString("OK"))
        #expect(try c.call("CONFIG", "SET", "proto-max-bulk-len", "1mb") == .simpleString("OK"))
        let big = String(repeating: "z", count: (1 << 20) + 1)
        let d = try s.client()
        try d.send(SocketClient.encode([Array("SET".utf8), Array("known".utf8), Array(big.utf8)]))
        let (bytes, closed) = d.readUntilClosed(timeout: 5)
        #expect(String(decoding: bytes, as: UTF8.self) == "-ERR Protocol error: invalid bulk length\r\n")
        #expect(closed)
        try expectHealthy(s, after: "a bulk over a lowered limit")
    }

    @Test func authFlow() throws {
        let s = try LiveServer { $0.requirePass = "s3cret" }
        let c = try s.client()
        #expect(try c.call("PING") == .simpleError("NOAUTH Authentication required."))
        #expect(try c.call("GET", "k") == .simpleError("NOAUTH Authentication required."))
        #expect(try c.call("AUTH", "wrong") == .simpleError("WRONGPASS invalid username-password pair or user is disabled."))
        #expect(try c.call("AUTH", "default", "wrong") == .simpleError("WRONGPASS invalid username-password pair or user is disabled."))
        #expect(try c.call("AUTH", "s3cret") == .simpleString("OK"))
        #expect(try c.call("PING") == Self.pong)
        #expect(try c.call("CONFIG", "GET", "requirepass")
                == .array([.bulkString(ByteBuffer(string: "requirepass")), .bulkString(ByteBuffer(string: "********"))]))
        // Before authenticating, Redis's tighter request bounds apply: more than 10 arguments
        // is a protocol error that closes the connection.
        let e = try s.client()
        try e.send(SocketClient.encode((0..<11).map { _ in Array("x".utf8) }))
        let (bytes, closed) = e.readUntilClosed(timeout: 5)
        #expect(String(decoding: bytes, as: UTF8.self) == "-ERR Protocol error: unauthenticated multibulk length\r\n")
        #expect(closed)
        // HELLO with AUTH.
        let h = try s.client()
        guard case .map = try h.call("HELLO", "3", "AUTH", "default", "s3cret") else {
            Issue.record("HELLO 3 AUTH failed")
            return
        }
        #expect(try h.call("PING") == Self.pong)
    }

    @Test func protectedModeRefusesNonLocalClients() throws {
        let s = try LiveServer()
        #expect(try s.client().call("SET", "known", "value") == .simpleString("OK"))
        // 127.0.0.2 is loopback but not local by Redis 7.0's rule.
        let outsider = try s.client(source: "127.0.0.2")
        let (bytes, closed) = outsider.readUntilClosed(timeout: 5)
        #expect(String(decoding: bytes, as: UTF8.self) == ConnectionHandler.protectedModeError)
        #expect(closed)
        #expect(s.state.counters.protectedModeDenials.load(ordering: .relaxed) == 1)
        try expectHealthy(s, after: "a refused client")

        // A password lifts it: the client must then authenticate like any other.
        let admin = try s.client()
        #expect(try admin.call("CONFIG", "SET", "requirepass", "pw") == .simpleString("OK"))
        let withPassword = try s.client(source: "127.0.0.2")
        #expect(try withPassword.call("PING") == .simpleError("NOAUTH Authentication required."))
        #expect(try withPassword.call("AUTH", "pw") == .simpleString("OK"))
        #expect(try withPassword.call("PING") == Self.pong)

        // So does protected-mode no.
        #expect(try withPassword.call("CONFIG", "SET", "requirepass", "", "protected-mode", "no") == .simpleString("OK"))
        let allowed = try s.client(source: "127.0.0.2")
        #expect(try allowed.call("PING") == Self.pong)
    }
}
