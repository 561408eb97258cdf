import KVProtocol
@testable import KVServer
import NIOCore
import Testing

/// A pipeline's consecutive plain SETs, and its consecutive INCR/DECR/INCRBY/DECRBY, run as
/// one store operation each: the replies and the data must be exactly those of running the
/// requests one by one.
@Suite("Pipelines")
struct PipelineTests {
    @Test func coalescedRunsGiveTheRepliesOfOneByOne() throws {
        let live = try LiveServer()
        defer { live.stop() }
        let c = try live.client()
        let requests: [[String]] = [
            ["SET", "a", "1"], ["SET", "b", "x"], ["SET", "a", "2"], ["SET", "t", "7"],
            ["EXPIRE", "t", "1000"],
            ["INCR", "a"], ["INCR", "a"], ["INCRBY", "a", "10"], ["INCR", "b"], ["DECR", "n"],
            ["DECRBY", "a", "-9223372036854775808"], ["INCRBY", "c", "abc"], ["INCRBY", "m", "9223372036854775807"],
            ["INCR", "m"], ["DECRBY", "a", "4"], ["INCR", "t"],
            ["SET", "a", "5"], ["SET", "a", "6"],
            ["INCR", "a"], ["GET", "a"], ["GET", "b"], ["GET", "n"], ["GET", "c"], ["TTL", "t"], ["GET", "t"],
        ]
        var bytes: [UInt8] = []
        for r in requests { bytes += SocketClient.encode(r.map { Array($0.utf8) }) }
        try c.send(bytes)
        var replies: [RESPValue] = []
        for _ in requests {
            guard let r = try c.reply(timeout: 10) else { break }
            replies.append(r)
        }
        let ok = RESPValue.simpleString("OK")
        let expected: [RESPValue] = [
            ok, ok, ok, ok, .integer(1),
            .integer(3), .integer(4), .integer(14), err("ERR value is not an integer or out of range"), .integer(-1),
            err("ERR decrement would overflow"), err("ERR value is not an integer or out of range"), .integer(Int64.max),
            err("ERR increment or decrement would overflow"), .integer(10), .integer(8),
            ok, ok,
            .integer(7), bulk("7"), bulk("x"), bulk("-1"), nullBulk, .integer(1000), bulk("8"),
        ]
        #expect(replies.count == expected.count)
        for (i, (got, want)) in zip(replies, expected).enumerated() {
            #expect(got == want, "reply \(i) to \(requests[i])")
        }
    }
}
