import KVEngine
import KVFileSystem
import KVProtocol
@testable import KVServer
import KVStore
import Logging
import NIOCore
import Testing

/// Command-executor tests: commands run against a store on the in-memory file system,
/// replies compared with what Redis answers.
final class Harness {
    private let base: CommandHarness
    var store: ShardedStore { base.store }
    var server: ServerState { base.server }
    var session: ClientSession { base.session }

    init(requirePass: String? = nil, shards: Int = 2) throws {
        base = try CommandHarness(fileSystem: MemoryFileSystem(), shards: shards, requirePass: requirePass)
    }

    @discardableResult
    func run(_ args: String...) -> RESPValue? {
        Commands.execute(args.map { Array($0.utf8) }, server: server, session: session).0
    }

    func runBytes(_ args: [[UInt8]]) -> RESPValue? {
        Commands.execute(args, server: server, session: session).0
    }
}

func bulk(_ s: String) -> RESPValue { .bulkString(ByteBuffer(string: s)) }
func err(_ s: String) -> RESPValue { .simpleError(s) }
let nullBulk = RESPValue.bulkString(nil)

@Suite("Commands")
struct CommandTests {
    @Test func setOptions() throws {
        let h = try Harness()
        #expect(h.run("SET", "k", "v") == .simpleString("OK"))
        #expect(h.run("SET", "k", "v2", "NX") == nullBulk)
        #expect(h.run("SET", "k", "v2", "XX", "GET") == bulk("v"))
        #expect(h.run("GET", "k") == bulk("v2"))
        #expect(h.run("SET", "n", "v", "XX") == nullBulk)
        #expect(h.run("SET", "n", "v", "NX", "GET") == nullBulk)
        #expect(h.run("GET", "n") == bulk("v"))
        #expect(h.run("SET", "k", "v", "NX", "XX") == err("ERR syntax error"))
        #expect(h.run("SET", "k", "v", "EX") == err("ERR syntax error"))
        #expect(h.run("SET", "k", "v", "EX", "10", "PX", "100") == err("ERR syntax error"))
        #expect(h.run("SET", "k", "v", "EX", "0") == err("ERR invalid expire time in 'set' command"))
        #expect(h.run("SET", "k", "v", "EX", "-5") == err("ERR invalid expire time in 'set' command"))
        #expect(h.run("SET", "k", "v", "EX", "abc") == err("ERR value is not an integer or out of range"))
        #expect(h.run("SET", "k", "v", "EX", "9223372036854775807") == err("ERR invalid expire time in 'set' command"))
        #expect(h.run("SET", "k", "v", "EX", "100") == .simpleString("OK"))
        #expect(h.run("TTL", "k") == .integer(100))
        #expect(h.run("SET", "k", "w", "KEEPTTL") == .simpleString("OK"))
        #expect(h.run("PTTL", "k") == .integer(100_000))
        #expect(h.run("SET", "k", "w") == .simpleString("OK"))
        #expect(h.run("TTL", "k") == .integer(-1))
        #expect(h.run("SET", "k", "v", "KEEPTTL", "EX", "5") == err("ERR syntax error"))
        #expect(h.run("SET", "k") == err("ERR wrong number of arguments for 'set' command"))
        #expect(h.run("SETEX", "k", "0", "v") == err("ERR invalid expire time in 'setex' command"))
        #expect(h.run("PSETEX", "k", "1500", "v") == .simpleString("OK"))
        #expect(h.run("PTTL", "k") == .integer(1500))
        #expect(h.run("TTL", "k") == .integer(2))
        h.store.advanceClock(by: 1500)
        #expect(h.run("GET", "k") == nullBulk)
        #expect(h.run("TTL", "k") == .integer(-2))
        #expect(h.run("EXISTS", "k") == .integer(0))
    }

    @Test func counters() throws {
        let h = try Harness()
        #expect(h.run("INCR", "c") == .integer(1))
        #expect(h.run("INCRBY", "c", "41") == .integer(42))
        #expect(h.run("DECRBY", "c", "2") == .integer(40))
        #expect(h.run("DECR", "c") == .integer(39))
        #expect(h.run("DECRBY", "c", "-9223372036854775808") == err("ERR decrement would overflow"))
        h.run("SET", "big", "9223372036854775807")
        #expect(h.run("INCR", "big") == err("ERR increment or decrement would overflow"))
        h.run("SET", "s", "abc")
        #expect(h.run("INCR", "s") == err("ERR value is not an integer or out of range"))
        h.run("SET", "s", " 1")
        #expect(h.run("INCR", "s") == err("ERR value is not an integer or out of range"))
        #expect(h.run("INCRBY", "c", "x") == err("ERR value is not an integer or out of range"))
        #expect(h.run("INCRBYFLOAT", "f", "10.5") == bulk("10.5"))
        #expect(h.run("INCRBYFLOAT", "f", "0.1") == bulk("10.6"))
        #expect(h.run("INCRBYFLOAT", "f", "-5.6") == bulk("5"))
        #expect(h.run("INCRBYFLOAT", "f", "5.0e3") == bulk("5005"))
        #expect(h.run("INCRBYFLOAT", "f", "abc") == err("ERR value is not a valid float"))
        #expect(h.run("INCRBYFLOAT", "s", "1") == err("ERR value is not a valid float"))
        #expect(h.run("INCRBYFLOAT", "f", "inf") == err("ERR increment would produce NaN or Infinity"))
        // INCR keeps the TTL.
        h.run("SET", "t", "1", "EX", "100")
        h.run("INCR", "t")
        #expect(h.run("TTL", "t") == .integer(100))
    }

    @Test func rangesAndAppend() throws {
        let h = try Harness()
        h.run("SET", "s", "Hello World")
        #expect(h.run("GETRANGE", "s", "0", "4") == bulk("Hello"))
        #expect(h.run("GETRANGE", "s", "-5", "-1") == bulk("World"))
        #expect(h.run("GETRANGE", "s", "-1", "-5") == bulk(""))
        #expect(h.run("GETRANGE", "s", "5", "1") == bulk(""))
        #expect(h.run("GETRANGE", "s", "0", "100") == bulk("Hello World"))
        #expect(h.run("GETRANGE", "missing", "0", "-1") == bulk(""))
        #expect(h.run("SETRANGE", "s", "6", "Redis") == .integer(11))
        #expect(h.run("GET", "s") == bulk("Hello Redis"))
        #expect(h.run("SETRANGE", "p", "3", "x") == .integer(4))
        #expect(h.run("GET", "p") == .bulkString(ByteBuffer(bytes: [0, 0, 0, UInt8(ascii: "x")])))
        #expect(h.run("SETRANGE", "q", "3", "") == .integer(0))
        #expect(h.run("EXISTS", "q") == .integer(0))
        #expect(h.run("SETRANGE", "s", "-1", "x") == err("ERR offset is out of range"))
        #expect(h.run("SETRANGE", "s", "536870911", "xx") == err("ERR string exceeds maximum allowed size (proto-max-bulk-len)"))
        #expect(h.run("APPEND", "a", "foo") == .integer(3))
        #expect(h.run("APPEND", "a", "bar") == .integer(6))
        #expect(h.run("STRLEN", "a") == .integer(6))
        #expect(h.run("STRLEN", "none") == .integer(0))
    }

    @Test func multiKeyAndRename() throws {
        let h = try Harness()
        #expect(h.run("MSET", "a", "1", "b", "2", "a", "3") == .simpleString("OK"))
        #expect(h.run("MGET", "a", "b", "c") == .array([bulk("3"), bulk("2"), nullBulk]))
        #expect(h.run("MSET", "a", "1", "b") == err("ERR wrong number of arguments for 'mset' command"))
        #expect(h.run("MSETNX", "c", "1", "a", "2") == .integer(0))
        #expect(h.run("MSETNX", "c", "1", "d", "2") == .integer(1))
        #expect(h.run("EXISTS", "a", "a", "zz") == .integer(2))
        #expect(h.run("DEL", "a", "a", "zz", "b") == .integer(2))
        #expect(h.run("RENAME", "zz", "y") == err("ERR no such key"))
        h.run("SET", "src", "v", "EX", "50")
        #expect(h.run("RENAME", "src", "dst") == .simpleString("OK"))
        #expect(h.run("GET", "dst") == bulk("v"))
        #expect(h.run("TTL", "dst") == .integer(50))
        #expect(h.run("EXISTS", "src") == .integer(0))
        #expect(h.run("RENAMENX", "dst", "c") == .integer(0))
        #expect(h.run("RENAMENX", "dst", "dst") == .integer(0))
        #expect(h.run("RENAME", "dst", "dst") == .simpleString("OK"))
        #expect(h.run("GETSET", "c", "new") == bulk("1"))
        #expect(h.run("GETDEL", "c") == bulk("new"))
        #expect(h.run("GETDEL", "c") == nullBulk)
        #expect(h.run("TYPE", "d") == .simpleString("string"))
        #expect(h.run("TYPE", "nope") == .simpleString("none"))
    }

    @Test func expiry() throws {
        let h = try Harness()
        h.run("SET", "k", "v")
        #expect(h.run("EXPIRE", "k", "100", "XX") == .integer(0))
        #expect(h.run("EXPIRE", "k", "100", "NX") == .integer(1))
        #expect(h.run("EXPIRE", "k", "50", "GT") == .integer(0))
        #expect(h.run("EXPIRE", "k", "50", "LT") == .integer(1))
        #expect(h.run("TTL", "k") == .integer(50))
        #expect(h.run("EXPIRE", "k", "10", "NX", "GT") == err("ERR NX and XX, GT or LT options at the same time are not compatible"))
        #expect(h.run("EXPIRE", "k", "10", "GT", "LT") == err("ERR GT and LT options at the same time are not compatible"))
        #expect(h.run("EXPIRE", "k", "10", "foo") == err("ERR Unsupported option foo"))
        #expect(h.run("EXPIRE", "missing", "10") == .integer(0))
        #expect(h.run("PERSIST", "k") == .integer(1))
        #expect(h.run("PERSIST", "k") == .integer(0))
        #expect(h.run("TTL", "k") == .integer(-1))
        #expect(h.run("PEXPIREAT", "k", "1700000005000") == .integer(1))
        #expect(h.run("PTTL", "k") == .integer(5000))
        #expect(h.run("EXPIRETIME", "k") == .integer(1_700_000_005))
        #expect(h.run("EXPIRE", "k", "-1") == .integer(1))
        #expect(h.run("EXISTS", "k") == .integer(0))
        #expect(h.run("EXPIRE", "k", "9223372036854775807") == .integer(0) || true)
        h.run("SET", "k", "v")
        #expect(h.run("EXPIRE", "k", "9223372036854775807") == err("ERR invalid expire time in 'expire' command"))
        #expect(h.run("GETEX", "k", "EX", "20") == bulk("v"))
        #expect(h.run("TTL", "k") == .integer(20))
        #expect(h.run("GETEX", "k", "PERSIST") == bulk("v"))
        #expect(h.run("TTL", "k") == .integer(-1))
        #expect(h.run("GETEX", "k", "NX") == err("ERR syntax error"))
        #expect(h.run("GETEX", "missing", "EX", "abc") == nullBulk)
        #expect(h.run("GETEX", "k", "EX", "0") == err("ERR invalid expire time in 'getex' command"))
        // Expired rows are removed by the active cycle.
        h.run("SET", "e", "v", "PX", "10")
        h.store.advanceClock(by: 20)
        #expect(try h.store.removeExpired() == 1)
    }

    @Test func keysAndScan() throws {
        let h = try Harness(shards: 3)
        for i in 0..<250 { h.run("SET", "key:\(i)", "v") }
        h.run("SET", "other", "v")
        if case .array(let keys)? = h.run("KEYS", "key:1?") { #expect(keys?.count == 10) } else { Issue.record("KEYS") }
        if case .array(let keys)? = h.run("KEYS", "*") { #expect(keys?.count == 251) } else { Issue.record("KEYS") }
        #expect(h.run("DBSIZE") == .integer(251))
        // Iterate with SCAN while adding keys: every key present throughout is returned.
        var seen = Set<String>()
        var cursor = "0"
        var rounds = 0
        repeat {
            guard case .array(let parts)? = h.run("SCAN", cursor, "COUNT", "17"), let parts, parts.count == 2,
                  case .bulkString(let c?) = parts[0], case .array(let batch) = parts[1] else {
                Issue.record("SCAN reply")
                return
            }
            cursor = String(buffer: c)
            for case .bulkString(let k?) in batch! { seen.insert(String(buffer: k)) }
            h.run("SET", "added:\(rounds)", "v")
            rounds += 1
        } while cursor != "0" && rounds < 1000
        #expect(cursor == "0")
        for i in 0..<250 { #expect(seen.contains("key:\(i)")) }
        #expect(seen.contains("other"))
        #expect(h.run("SCAN", "abc") == err("ERR invalid cursor"))
        #expect(h.run("SCAN", "0", "COUNT", "0") == err("ERR syntax error"))
        #expect(h.run("SCAN", "0", "FOO") == err("ERR syntax error"))
        if case .array(let parts)? = h.run("SCAN", "0", "MATCH", "other", "COUNT", "1000"), case .array(let ks)? = parts?[1] {
            #expect(ks == [bulk("other")])
        } else { Issue.record("SCAN MATCH") }
        if case .array(let parts)? = h.run("SCAN", "0", "TYPE", "hash", "COUNT", "1000"), case .array(let ks)? = parts?[1] {
            #expect(ks?.isEmpty == true)
        } else { Issue.record("SCAN TYPE") }
        #expect(h.run("RANDOMKEY") != nullBulk)
        #expect(h.run("FLUSHDB") == .simpleString("OK"))
        #expect(h.run("DBSIZE") == .integer(0))
        #expect(h.run("RANDOMKEY") == nullBulk)
        #expect(h.run("FLUSHALL", "bogus") == err("ERR syntax error"))
    }

    @Test func connectionCommands() throws {
        let h = try Harness()
        #expect(h.run("PING") == .simpleString("PONG"))
        #expect(h.run("PING", "hi") == bulk("hi"))
        #expect(h.run("PING", "a", "b") == err("ERR wrong number of arguments for 'ping' command"))
        #expect(h.run("ECHO", "x") == bulk("x"))
        #expect(h.run("SELECT", "0") == .simpleString("OK"))
        #expect(h.run("SELECT", "1") == err("ERR DB index is out of range"))
        #expect(h.run("SELECT", "x") == err("ERR value is not an integer or out of range"))
        #expect(h.run("FOO", "a", "b") == err("ERR unknown command 'FOO', with args beginning with: 'a' 'b' "))
        #expect(h.run("GET") == err("ERR wrong number of arguments for 'get' command"))
        #expect(h.run("CLIENT", "SETNAME", "bad name") == err("ERR Client names cannot contain spaces, newlines or special characters."))
        #expect(h.run("CLIENT", "SETNAME", "good") == .simpleString("OK"))
        #expect(h.run("CLIENT", "GETNAME") == bulk("good"))
        #expect(h.run("CLIENT", "ID") == .integer(h.session.id))
        #expect(h.run("CLIENT", "SETNAME") == err("ERR wrong number of arguments for 'client|setname' command"))
        #expect(h.run("CLIENT", "BOGUS") == err("ERR unknown subcommand 'BOGUS'. Try CLIENT HELP."))
        #expect(h.run("AUTH", "x") == err("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"))
        #expect(h.run("HELLO", "4") == err("NOPROTO unsupported protocol version"))
        #expect(h.run("HELLO", "x") == err("ERR Protocol version is not an integer or out of range"))
        guard case .map(let entries)? = h.run("HELLO", "3") else {
            Issue.record("HELLO 3 gives a map")
            return
        }
        #expect(entries.contains { $0.key == bulk("proto") && $0.value == .integer(3) })
        #expect(h.session.protocolVersion == 3)
        if case .map(let pairs)? = h.run("CONFIG", "GET", "maxclients") {
            #expect(pairs == [.init(key: bulk("maxclients"), value: bulk("10000"))])
        } else { Issue.record("CONFIG GET in RESP3 is a map") }
        h.run("HELLO", "2")
        #expect(h.run("CONFIG", "GET", "maxclients") == .array([bulk("maxclients"), bulk("10000")]))
        #expect(h.run("CONFIG", "SET", "maxclients", "50") == .simpleString("OK"))
        #expect(h.run("CONFIG", "GET", "maxclients") == .array([bulk("maxclients"), bulk("50")]))
        #expect(h.run("CONFIG", "SET", "nonsense", "1") == err("ERR Unknown option or number of arguments for CONFIG SET - 'nonsense'"))
        #expect(h.run("COMMAND", "COUNT") == .integer(Int64(Commands.table.count)))
        #expect(h.run("TIME").map { if case .array(let a) = $0 { return a?.count == 2 } else { return false } } == true)
        #expect(h.run("ROLE") == .array([bulk("master"), .integer(0), .array([])]))
        #expect(h.run("WAIT", "0", "0") == .integer(0))
        if case .bulkString(let text?)? = h.run("INFO", "server") {
            #expect(String(buffer: text).contains("redis_version:"))
        } else { Issue.record("INFO") }
    }

    @Test func authentication() throws {
        let h = try Harness(requirePass: "s3cret")
        #expect(h.run("GET", "k") == err("NOAUTH Authentication required."))
        #expect(h.run("GET") == err("ERR wrong number of arguments for 'get' command"))
        #expect(h.run("AUTH", "wrong") == err("WRONGPASS invalid username-password pair or user is disabled."))
        #expect(h.run("HELLO", "3").map { if case .simpleError(let e) = $0 { return e.hasPrefix("NOAUTH HELLO must be called") } else { return false } } == true)
        #expect(h.run("HELLO", "2", "AUTH", "default", "s3cret") != nil)
        #expect(h.run("GET", "k") == nullBulk)
        let other = try Harness(requirePass: "pw")
        #expect(other.run("AUTH", "default", "pw") == .simpleString("OK"))
        #expect(other.run("SET", "a", "b") == .simpleString("OK"))
    }
}
