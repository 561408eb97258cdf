import KVBase
import KVFileSystem
import KVProtocol
@testable import KVServer
import NIOCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Numbers from clients are hostile: every arithmetic on them is checked, and a request that
/// waits parks without holding a thread.
@Suite("Hardening")
struct HardeningTests {
    @Test func setrangeAndAppendCheckTheSizeBeforeAnyArithmetic() throws {
        let h = try Harness()
        let tooLarge = err("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
        // offset + length overflows 64 bits: refused, not trapped.
        #expect(h.run("SETRANGE", "k", "9223372036854775807", "v") == tooLarge)
        #expect(h.run("SETRANGE", "k", "9223372036854775800", "0123456789") == tooLarge)
        #expect(h.run("SETRANGE", "k", "536870911", "xx") == tooLarge)
        #expect(h.run("SETRANGE", "k", "-1", "v") == err("ERR offset is out of range"))
        #expect(h.run("SETRANGE", "k", "-9223372036854775808", "v") == err("ERR offset is out of range"))
        // An empty patch never grows the string, whatever the offset.
        #expect(h.run("SETRANGE", "k", "9223372036854775807", "") == .integer(0))
        #expect(h.run("EXISTS", "k") == .integer(0))
        #expect(h.run("SET", "k", "hello") == .simpleString("OK"))
        #expect(h.run("SETRANGE", "k", "9223372036854775807", "") == .integer(5))
        #expect(h.run("SETRANGE", "k", "9223372036854775807", "v") == tooLarge)
        #expect(h.run("SETRANGE", "k", "2", "LL") == .integer(5))
        #expect(h.run("GET", "k") == bulk("heLLo"))
        // The limit is proto-max-bulk-len as it is now.
        #expect(h.run("CONFIG", "SET", "proto-max-bulk-len", "1mb") == .simpleString("OK"))
        #expect(h.run("SETRANGE", "k", "1048575", "xx") == tooLarge)
        #expect(h.run("APPEND", "k", String(repeating: "a", count: (1 << 20) - 4)) == tooLarge)
        #expect(h.run("APPEND", "k", "!") == .integer(6))
    }

    @Test func rangesAndCountsAtTheEdgesOf64Bits() throws {
        let h = try Harness()
        #expect(h.run("SET", "k", "hello") == .simpleString("OK"))
        #expect(h.run("GETRANGE", "k", "-9223372036854775808", "9223372036854775807") == bulk("hello"))
        #expect(h.run("GETRANGE", "k", "9223372036854775807", "-9223372036854775808") == bulk(""))
        #expect(h.run("GETRANGE", "k", "-9223372036854775808", "-9223372036854775808") == bulk("h"))
        #expect(h.run("INCRBY", "n", "9223372036854775807") == .integer(Int64.max))
        #expect(h.run("INCRBY", "n", "1") == err("ERR increment or decrement would overflow"))
        #expect(h.run("DECRBY", "n", "-9223372036854775808") == err("ERR decrement would overflow"))
        #expect(h.run("EXPIRE", "k", "9223372036854775807") == err("ERR invalid expire time in 'expire' command"))
        #expect(h.run("PEXPIRE", "k", "9223372036854775807") == err("ERR invalid expire time in 'pexpire' command"))
        #expect(h.run("EXPIREAT", "k", "-9223372036854775808") == err("ERR invalid expire time in 'expireat' command"))
        #expect(h.run("SET", "k", "v", "EX", "9223372036854775807") == err("ERR invalid expire time in 'set' command"))
        #expect(h.run("SET", "k", "v", "PX", "9223372036854775807") == err("ERR invalid expire time in 'set' command"))
        #expect(h.run("PEXPIREAT", "k", "9223372036854775807") == .integer(1))
        #expect(h.run("TTL", "k") == .integer((Int64.max - 1_700_000_000_000 + 500) / 1000))
        #expect(h.run("SCAN", "0", "COUNT", "9223372036854775807") != nil)
        #expect(h.run("SLOWLOG", "GET", "9223372036854775807") != nil)
        #expect(h.run("CLIENT", "LIST", "ID", "9223372036854775807") == bulk(""))
        #expect(h.run("CLIENT", "TRACKING", "ON", "REDIRECT", "-9223372036854775808")
                == err("ERR The client ID you want redirect to does not exist"))
        #expect(h.run("CONFIG", "SET", "tracking-table-max-keys", "9223372036854775807") == .simpleString("OK"))
        #expect(h.run("SELECT", "-9223372036854775808") == err("ERR DB index is out of range"))
        #expect(h.run("IDX.CREATE", "i", "f") == .simpleString("OK"))
        let ready = monotonicMillis() + 5_000
        while h.run("IDX.QUERY", "i", "EQ", "x") != .array([]) && monotonicMillis() < ready { usleep(10_000) }
        #expect(h.run("IDX.QUERY", "i", "EQ", "x", "LIMIT", "9223372036854775807", "9223372036854775807") == .array([]))
    }

    @Test func waitArgumentsFollowRedis() throws {
        let h = try Harness()
        #expect(h.run("WAIT", "1", "9223372036854775807") == err("ERR timeout is out of range"))
        #expect(h.run("WAIT", "1", "-1") == err("ERR timeout is negative"))
        #expect(h.run("WAIT", "1", "x") == err("ERR timeout is not an integer or out of range"))
        #expect(h.run("WAIT", "x", "0") == err("ERR value is not an integer or out of range"))
        #expect(h.run("WAIT", "0", "0") == .integer(0))
        #expect(h.run("WAIT", "-9223372036854775808", "0") == .integer(0))
    }

    @Test func parkedWaitIsAnsweredByItsTimerAndHoldsNoThread() throws {
        let h = try CommandHarness(fileSystem: MemoryFileSystem(), deferredWaitMillis: 2_000)
        let started = monotonicMillis()
        // A huge but valid timeout (the timer is clamped, not overflowed), answered by the
        // client going away (the harness abandons it after 2 s).
        #expect(h.run([Array("WAIT".utf8), Array("1".utf8), Array("9223372036854775".utf8)]).reply == nil)
        let t0 = monotonicMillis()
        #expect(h.run([Array("WAIT".utf8), Array("1".utf8), Array("150".utf8)]).reply == .integer(0))
        let waited = monotonicMillis() - t0
        #expect(waited >= 140 && waited < 1_900, "WAIT 1 150 took \(waited) ms")
        #expect(monotonicMillis() - started < 10_000)
        #expect(h.server.replication.parkedWaits == 0)
    }

    /// 64 clients parked in `WAIT 1 0` and one in `WAIT 1 5000` hold no worker thread: SET and
    /// GET on another connection answer within 50 ms, and the 5 s one returns on time.
    @Test func waitingClientsDoNotStallOthers() throws {
        let live = try LiveServer { $0.workerThreads = 4 }
        defer { live.stop() }
        var waiters: [SocketClient] = []
        for _ in 0..<64 {
            let c = try live.client()
            try c.send(command: "WAIT", "1", "0")
            waiters.append(c)
        }
        let timed = try live.client()
        let t0 = monotonicSeconds()
        try timed.send(command: "WAIT", "1", "5000")
        let deadline = monotonicSeconds() + 10
        while live.state.replication.parkedWaits < 65 && monotonicSeconds() < deadline { usleep(10_000) }
        #expect(live.state.replication.parkedWaits == 65)
        let other = try live.client()
        // Parked clients are Redis's blocked clients.
        try other.send(command: "INFO", "clients")
        guard case .bulkString(let info?) = try other.promptReply(timeout: 5) else {
            Issue.record("INFO clients did not answer")
            return
        }
        #expect(String(buffer: info).contains("blocked_clients:65\r\n"))
        var worst = 0.0
        for i in 0..<100 {
            let s = monotonicSeconds()
            try other.send(command: "SET", "k\(i)", "v\(i)")
            #expect(try other.promptReply(timeout: 5) == .simpleString("OK"))
            try other.send(command: "GET", "k\(i)")
            #expect(try other.promptReply(timeout: 5) == bulk("v\(i)"))
            worst = max(worst, monotonicSeconds() - s)
        }
        #expect(worst < 0.05, "slowest SET+GET took \(Int(worst * 1000)) ms")
        #expect(try timed.promptReply(timeout: 10) == .integer(0))
        let took = monotonicSeconds() - t0
        #expect(took >= 4.9 && took < 6.0, "WAIT 1 5000 returned after \(took) s")
        // Clients that go away take their parked WAITs with them.
        for c in waiters { c.close() }
        let gone = monotonicSeconds() + 10
        while live.state.replication.parkedWaits > 0 && monotonicSeconds() < gone { usleep(10_000) }
        #expect(live.state.replication.parkedWaits == 0)
    }
}
