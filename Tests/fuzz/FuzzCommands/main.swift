// libFuzzer target for the command layer (KVServer): sequences of commands run through
// CommandHarness, a server state over a store on the in-memory file system, with no network.
//
// Input layout (a byte past the end of the input reads as 0):
//   byte 0            number of commands, 1 + b % 16
//   per command:
//     name byte       b == 0xFF: a raw name follows (length byte, % 128, then that many bytes);
//                     otherwise the command table's name number b % n (n names, sorted, as
//                     COMMAND LIST answers at start-up), upper-case when b / n is odd
//     argc byte       number of arguments after the name: for a table name with b < 0x80,
//                     the command's arity (COMMAND INFO) plus, for a variadic one, b % 4 more;
//                     otherwise (b & 0x7F) % 12. At most 11.
//     per argument:   category byte c, then the category's bytes (`categories[c % 16]`):
//       0-3  edgeNumber     64-bit edge number: index byte into `edgeNumbers`
//       4    twistedNumber  edge number with a twist: index byte, variant byte ("-", "+",
//                           " " prefix or a trailing "0")
//       5    floatWord      inf, -inf, nan, 1e-400, ...: index byte into `floatWords`
//       6-7  optionWord     option or subcommand word of a Redis command, configuration
//                           parameter, glob or INFO section: index byte into `optionWords`
//       8-9  key            key (also index and field name): index byte into `keyNames`
//       10   empty          the empty string
//       11   huge           size byte (1 KiB * (1 + b % 8)), fill byte
//       12   raw            length byte (% 128), then that many bytes of the input
//       13   smallInteger   one byte, as a signed decimal (-128...127)
//       14   json           shape byte ({"f":V} or {"a":{"b":V}}), value index byte
//       15   replicationToken  byte even = this harness's replication id, odd = its layout
//                           generation (so SHALE.REPLPULL/REPLSNAP get past the history check)
// Generation stops at the end of the input (a started command is completed with zeros), or
// after QUIT-like commands that close the connection.
//
// Index back-fills run on a background thread, so a query right after IDX.CREATE would mostly
// see "still building", and whether it did would depend on timing. After IDX.*, SHARDS and
// REPLICAOF commands the target therefore waits (IDX.LIST, IDX.INFO, 1 ms sleeps; at most
// `settleBudgetMillis` per input) until no index is building, so the queries reach the index
// and an input behaves the same on every run.
//
// Never sent (such a command is skipped, its bytes consumed):
//   - SHUTDOWN and anything named like DEBUG (raw names included);
//   - requests that are legitimately huge or slow, not wrong: SETRANGE whose offset plus value
//     length is over 1 MiB and within the 512 MiB string limit (it would build that string,
//     and a few of them exceed libFuzzer's memory limit), and SHARDS SET to more than 64 shards
//     (about 1.7 ms per shard under the sanitizers, so SHARDS SET 1024 takes 1.7 s). Offsets
//     and counts past the limits, and every non-number, are still sent.
// REPLICAOF/SLAVEOF with a host are refused by the harness itself; REPLICAOF NO ONE runs.
//
// Checks, beyond "no trap, no sanitizer report" (libFuzzer sees those):
//   - every input (harness creation, its commands, the final PING, teardown) finishes within
//     `inputBoundMillis` = 2000 ms of wall time; libFuzzer's -timeout=10 covers inputs that
//     never return at all;
//   - after the commands, the harness still answers PING with +PONG.
//
// A fresh harness per input, so no state (keys, indexes, shard count, configuration, slowlog,
// followers, client name) leaks from one input into the next and every failure replays from
// its input alone. It is the dominant cost: under the sanitizers creating one (two shards on a
// new in-memory file system) takes about 3.6 ms and closing it 0.7 ms, against about 0.35 ms
// for 16 commands on a reused harness; reuse would run ~10x more inputs per second, but a
// crash could then depend on earlier inputs that libFuzzer does not save.
//
// LeakSanitizer cannot follow the pointer Swift keeps to an object's weak-reference side table
// (it is stored shifted, inside the reference count), so a side table whose object outlives
// its weak references looks leaked (llvm/llvm-project#56751). `__lsan_default_suppressions`
// below suppresses exactly those allocations (formWeakReference); any object really leaked
// is still reported through its own allocation.
//
// `SHALE_FUZZ_SEEDS=DIR` writes the seed corpus to DIR and exits (Tools/fuzz.sh seeds).
// Built only by Tools/fuzz.sh (SHALE_FUZZ=1 swift build -Xswiftc -sanitize=fuzzer,address).

import KVFileSystem
import FuzzSupport
import KVProtocol
import KVServer
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Longest wall time one input may take, in milliseconds.
let inputBoundMillis: Int64 = 2000
/// Longest time one input spends waiting for index back-fills, in milliseconds.
let settleBudgetMillis: Int64 = 500

let maxCommands = 16
let maxArguments = 11

let edgeNumbers: [String] = [
    "0", "1", "-1", "2", "-2", "3", "10", "100", "1000", "1024", "65535", "65536",
    String(Int64.max), String(Int64.min), String(Int64.max - 1), String(Int64.min + 1),
    "9223372036854775808", "-9223372036854775809", "18446744073709551615", "18446744073709551616",
    "4294967295", "4294967296", "2147483647", "2147483648", "-2147483648", "-2147483649",
    "536870911", "536870912", "536870913", "9223372036854775", "-9223372036854775", "9223372036854776",
    "1700000000", "1700000000000", "1e308", "-1e308", "1e18", "1e19", "00", "-0", "+1", "0x10", "1.5",
    "9223372036854775807.0", "99999999999999999999999",
]

let floatWords: [String] = [
    "inf", "-inf", "+inf", "nan", "-nan", "0.1", "1e-400", "-0.0", "1.7976931348623157e308",
    "4.9e-324", "infinity", "-infinity", "NaN", "1e", ".", "0.1e-1", "1e308", "-1e308", "1e309",
    "5e-324", "0x1p3", " 1", "1 ", "1.",
]

let optionWords: [String] = [
    // SET, GETEX, EXPIRE
    "NX", "XX", "GT", "LT", "EX", "PX", "EXAT", "PXAT", "KEEPTTL", "GET", "PERSIST",
    // SCAN, CLIENT LIST, IDX.*
    "MATCH", "COUNT", "TYPE", "LIMIT", "WITHVALUES", "EQ", "PREFIX", "RANGE", "ID", "ADDR", "SKIPME",
    "STRING", "NUMBER", "normal", "master", "replica", "pubsub",
    // FLUSHALL, BGSAVE, REPLICAOF NO ONE, and SHUTDOWN's options (given to other commands)
    "ASYNC", "SYNC", "SCHEDULE", "NOSAVE", "SAVE", "NOW", "FORCE", "ABORT", "NO", "ONE",
    // subcommands
    "SET", "RESETSTAT", "REWRITE", "HELP", "LIST", "INFO", "DOCS", "SETNAME", "GETNAME", "SETINFO",
    "LIB-NAME", "LIB-VER", "LEN", "RESET", "AUTH", "default",
    // configuration parameters (CONFIG GET/SET)
    "requirepass", "maxclients", "timeout", "slowlog-log-slower-than", "slowlog-max-len",
    "proto-max-bulk-len", "proto-max-multibulk-len", "proto-inline-max-size", "client-query-buffer-limit",
    "client-output-buffer-limit", "latency-tracking", "latency-tracking-info-percentiles", "log-level",
    "loglevel", "protected-mode", "port", "shards", "appendonly", "maxmemory", "yes", "no", "verbose",
    // glob patterns (KEYS, SCAN MATCH, CONFIG GET)
    "*", "k*", "*[a-", "\\", "?", "[^a]*", "doc:*",
    // INFO sections
    "all", "everything", "server", "clients", "stats", "commandstats", "latencystats", "errorstats",
    "replication", "keyspace",
]

let keyNames: [String] = ["k", "n", "doc:1", "doc:2", "i", "f", "a.b", "{k}x", "key"]

let jsonValues: [String] = [
    "1", "-1", "0", "1.5", "9223372036854775807", "-9223372036854775808", "9223372036854775808",
    "1e308", "-1e308", "1e400", "\"a\"", "\"\"", "\"b\"", "true", "null", "[1]", "{}", "\"\\u0000\"",
]

/// A command the fuzzer may name: its lower-case name and its arity (n: exactly n words with
/// the name, -n: at least n).
struct TableCommand: Sendable {
    var name: [UInt8]
    var arity: Int
}

/// The command table as COMMAND LIST and COMMAND INFO answer it at start-up, sorted by name,
/// without the excluded commands.
let commandTable: [TableCommand] = {
    let harness = makeHarness()
    guard case .array(let items?)? = harness.run([Array("COMMAND".utf8), Array("LIST".utf8)]).reply else {
        fail("COMMAND LIST did not answer an array")
    }
    var names: [[UInt8]] = []
    for item in items {
        guard case .bulkString(let buffer?) = item else { fail("COMMAND LIST answered \(item)") }
        let name = Array(buffer.readableBytesView)
        if !excluded(name) { names.append(name) }
    }
    if names.isEmpty { fail("COMMAND LIST answered no commands") }
    names.sort { $0.lexicographicallyPrecedes($1) }
    guard case .array(let infos?)? = harness.run([Array("COMMAND".utf8), Array("INFO".utf8)] + names).reply,
          infos.count == names.count
    else {
        fail("COMMAND INFO did not answer one entry per command")
    }
    return zip(names, infos).map { name, info in
        guard case .array(let fields?) = info, fields.count >= 2, case .integer(let arity) = fields[1] else {
            fail("COMMAND INFO \(String(decoding: name, as: UTF8.self)) answered \(info)")
        }
        return TableCommand(name: name, arity: Int(arity))
    }
}()

/// `name` in ASCII lower case.
func lowercased(_ name: [UInt8]) -> String {
    String(decoding: name.map { $0 >= 65 && $0 <= 90 ? $0 | 0x20 : $0 }, as: UTF8.self)
}

/// Commands never sent, by name.
func excluded(_ name: [UInt8]) -> Bool {
    let lower = lowercased(name)
    return lower == "shutdown" || lower.contains("debug")
}

/// SETRANGE results (offset plus value length) above this and within `maxStringLimit` are
/// not sent.
let maxSentStringLength: Int64 = 1 << 20
/// The server's largest string (the default proto-max-bulk-len, the engine's value limit).
let maxStringLimit: Int64 = 512 << 20
/// SHARDS SET counts above this and within `maxShardCount` (the server's maximum) are not sent.
let maxSentShards: Int64 = 64
let maxShardCount: Int64 = 1024

/// Requests skipped although valid: they would build a huge string or many shards (see the
/// header). Swift's integer parsing accepts a superset of what the server accepts (a leading
/// "+", leading zeros, any length), so everything the server would run is caught.
func tooExpensive(_ command: [[UInt8]]) -> Bool {
    let name = lowercased(command[0])
    if name == "setrange" && command.count == 4 && !command[3].isEmpty,
       let offset = Int64(String(decoding: command[2], as: UTF8.self)) {
        let (end, overflow) = offset.addingReportingOverflow(Int64(command[3].count))
        return !overflow && end > maxSentStringLength && end <= maxStringLimit
    }
    if name == "shards" && command.count == 3 && lowercased(command[1]) == "set",
       let n = Int64(String(decoding: command[2], as: UTF8.self)) {
        return n > maxSentShards && n <= maxShardCount
    }
    return false
}

func makeHarness() -> CommandHarness {
    do {
        return try CommandHarness(fileSystem: MemoryFileSystem())
    } catch {
        fail("cannot create a command harness: \(error)")
    }
}

func monotonicMillisNow() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

/// Reads the input front to back; past the end every byte is 0.
struct Reader {
    let input: UnsafeRawBufferPointer
    var position = 0

    var atEnd: Bool { position >= input.count }

    mutating func byte() -> UInt8 {
        guard position < input.count else { return 0 }
        defer { position += 1 }
        return input[position]
    }

    mutating func bytes(_ count: Int) -> [UInt8] {
        let end = min(position + count, input.count)
        guard position < end else { return [] }
        defer { position = end }
        return Array(input[position..<end])
    }
}

/// What the replication-token category needs from the harness, asked for once per input.
struct ReplicationTokens {
    var replid: [UInt8] = []
    var generation: [UInt8] = []

    init(_ harness: CommandHarness) {
        guard case .array(let items?)? = harness.run([Array("SHALE.REPLLAYOUT".utf8)]).reply, items.count >= 2 else {
            return
        }
        if case .bulkString(let b?) = items[0] { replid = Array(b.readableBytesView) }
        if case .integer(let n) = items[1] { generation = Array(String(n).utf8) }
    }
}

func word(_ list: [String], _ b: UInt8) -> [UInt8] {
    Array(list[Int(b) % list.count].utf8)
}

/// What an argument is made of; see the header.
enum Category: Equatable {
    case edgeNumber, twistedNumber, floatWord, optionWord, key, empty, huge, raw, smallInteger, json
    case replicationToken
}

/// The category of each value of the category byte % 16: numbers and words weigh more.
let categories: [Category] = [
    .edgeNumber, .edgeNumber, .edgeNumber, .edgeNumber, .twistedNumber, .floatWord, .optionWord, .optionWord,
    .key, .key, .empty, .huge, .raw, .smallInteger, .json, .replicationToken,
]

/// The category byte that selects `category`.
func categoryByte(_ category: Category) -> UInt8 {
    UInt8(categories.firstIndex(of: category)!)
}

/// One argument, from its category byte on.
func argument(_ r: inout Reader, _ harness: CommandHarness, _ tokens: inout ReplicationTokens?) -> [UInt8] {
    switch categories[Int(r.byte()) % categories.count] {
    case .edgeNumber:
        return word(edgeNumbers, r.byte())
    case .twistedNumber:
        let n = edgeNumbers[Int(r.byte()) % edgeNumbers.count]
        switch r.byte() % 4 {
        case 0: return Array(("-" + n).utf8)
        case 1: return Array(("+" + n).utf8)
        case 2: return Array((" " + n).utf8)
        default: return Array((n + "0").utf8)
        }
    case .floatWord:
        return word(floatWords, r.byte())
    case .optionWord:
        return word(optionWords, r.byte())
    case .key:
        return word(keyNames, r.byte())
    case .empty:
        return []
    case .huge:
        let size = 1024 * (1 + Int(r.byte() % 8))
        return [UInt8](repeating: r.byte(), count: size)
    case .raw:
        return r.bytes(Int(r.byte() % 128))
    case .smallInteger:
        return Array(String(Int8(bitPattern: r.byte())).utf8)
    case .json:
        let shape = r.byte()
        let value = jsonValues[Int(r.byte()) % jsonValues.count]
        return Array((shape % 2 == 0 ? "{\"f\":\(value)}" : "{\"a\":{\"b\":\(value)}}").utf8)
    case .replicationToken:
        let which = r.byte()
        if tokens == nil { tokens = ReplicationTokens(harness) }
        return which % 2 == 0 ? tokens!.replid : tokens!.generation
    }
}

/// The number of arguments after the name, from the argc byte (see the header).
func argumentCount(_ b: UInt8, arity: Int?) -> Int {
    guard let arity, b < 0x80 else { return Int(b & 0x7F) % (maxArguments + 1) }
    let fixed = abs(arity) - 1
    return min(maxArguments, arity < 0 ? fixed + Int(b % 4) : fixed)
}

/// Whether some index is still back-filling.
func indexBuilding(_ harness: CommandHarness) -> Bool {
    guard case .array(let names?)? = harness.run([Array("IDX.LIST".utf8)]).reply else { return false }
    let state = RESPValue(bulk: "state")
    let building = RESPValue(bulk: "building")
    for case .bulkString(let name?) in names {
        switch harness.run([Array("IDX.INFO".utf8), Array(name.readableBytesView)]).reply {
        case .array(let items?)?:
            for i in stride(from: 0, to: items.count - 1, by: 2) where items[i] == state && items[i + 1] == building {
                return true
            }
        case .map(let entries)?:
            if entries.contains(where: { $0.key == state && $0.value == building }) { return true }
        default:
            continue
        }
    }
    return false
}

/// Waits until no index is back-filling, or until `deadline` (monotonic milliseconds).
func settleIndexes(_ harness: CommandHarness, deadline: Int64) {
    for _ in 0..<1000 {
        if monotonicMillisNow() >= deadline || !indexBuilding(harness) { return }
        usleep(1000)
    }
}

/// Commands after which an index may be back-filling.
func startsIndexWork(_ name: [UInt8]) -> Bool {
    let lower = lowercased(name)
    return lower.hasPrefix("idx.") || lower == "shards" || lower == "replicaof" || lower == "slaveof"
}

/// A short rendering of a command for failure messages.
func describe(_ command: [[UInt8]]) -> String {
    command.map { a in
        let text = String(decoding: a.prefix(40), as: UTF8.self)
        return a.count > 40 ? "\(text)...(\(a.count) bytes)" : text
    }.joined(separator: " ")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCommands(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size >= 1 else { return 0 }
    let table = commandTable
    let started = monotonicMillisNow()
    var r = Reader(input: UnsafeRawBufferPointer(start: data, count: size))
    var ran: [String] = []
    var slowest = (millis: Int64(-1), command: "")
    do {
        let harness = makeHarness()
        var tokens: ReplicationTokens?
        let count = 1 + Int(r.byte()) % maxCommands
        for _ in 0..<count {
            if r.atEnd { break }
            let pick = r.byte()
            var name: [UInt8]
            var arity: Int?
            if pick == 0xFF {
                name = r.bytes(Int(r.byte() % 128))
            } else {
                let entry = table[Int(pick) % table.count]
                name = entry.name
                arity = entry.arity
                if (Int(pick) / table.count) % 2 == 1 { name = name.map { $0 >= 97 && $0 <= 122 ? $0 - 32 : $0 } }
            }
            let argc = argumentCount(r.byte(), arity: arity)
            var command = [name]
            for _ in 0..<argc { command.append(argument(&r, harness, &tokens)) }
            if excluded(name) || tooExpensive(command) { continue }
            ran.append(describe(command))
            let before = monotonicMillisNow()
            let closes = harness.run(command).closes
            let took = monotonicMillisNow() - before
            if took > slowest.millis { slowest = (took, ran.last!) }
            if closes { break }
            if startsIndexWork(name) { settleIndexes(harness, deadline: started + settleBudgetMillis) }
        }
        // A RESP2 client with subscriptions answers PING with ["pong", ""], as Redis does.
        let subscribedRESP2 = harness.session.isSubscribed && harness.session.protocolVersion == 2
        // With a password set, a client that never authenticated (or was reset: RESET
        // de-authenticates, as in Redis) is refused.
        // A client between MULTI and EXEC has its PING queued.
        let wanted: RESPValue = !harness.session.authenticated
            ? .simpleError("NOAUTH Authentication required.")
            : harness.session.inMulti.load(ordering: .relaxed) ? .simpleString("QUEUED")
            : subscribedRESP2
            ? .array([.bulkString(ByteBuffer(string: "pong")), .bulkString(ByteBuffer(string: ""))]) : .simpleString("PONG")
        let pong = harness.run([Array("PING".utf8)]).reply
        if pong != wanted {
            fail("PING answered \(pong?.description ?? "nothing") after: \(ran.joined(separator: " | "))")
        }
    }
    let elapsed = monotonicMillisNow() - started
    if elapsed > inputBoundMillis {
        fail("one input took \(elapsed) ms (bound \(inputBoundMillis) ms); slowest command \(slowest.millis) ms: "
            + "\(slowest.command); all: \(ran.joined(separator: " | "))")
    }
    return 0
}

// MARK: seed corpus

/// Encodes commands with raw names (name byte 0xFF) and raw arguments, so the seeds do not
/// depend on the order of the command table or of the word lists.
func encode(_ commands: [[String]]) -> [UInt8] {
    precondition(!commands.isEmpty && commands.count <= maxCommands)
    var out = [UInt8(commands.count - 1)]
    for command in commands {
        let name = Array(command[0].utf8)
        precondition(name.count < 128 && command.count - 1 <= maxArguments)
        out += [0xFF, UInt8(name.count)] + name
        out.append(UInt8(command.count - 1))
        for a in command.dropFirst() {
            let bytes = Array(a.utf8)
            precondition(bytes.count < 128)
            out += [categoryByte(.raw), UInt8(bytes.count)] + bytes
        }
    }
    return out
}

let i64max = String(Int64.max)
let i64min = String(Int64.min)

let seeds: [(String, [[String]])] = [
    ("setrange-offset-max", [["SETRANGE", "k", i64max, "v"], ["GET", "k"]]),
    ("setrange-offset-edges", [["SETRANGE", "k", "536870912", "v"], ["SETRANGE", "k", "536870911", ""],
                               ["SETRANGE", "k", "9223372036854775", "v"], ["SETRANGE", "k", "-1", "v"]]),
    ("wait-timeout-max", [["WAIT", "1", i64max]]),
    ("wait-timeout-huge", [["WAIT", "1", "9223372036854775"]]),
    ("wait-edges", [["WAIT", "0", "0"], ["WAIT", i64min, "1"], ["WAIT", "1", "-1"], ["WAIT", "1", "1"],
                    ["WAIT", "1", "0"], ["WAIT", "2", "4294967295"]]),
    ("getrange-extremes", [["SET", "k", "hello"], ["GETRANGE", "k", i64min, i64max], ["GETRANGE", "k", i64max, i64min],
                           ["SUBSTR", "k", "-1", i64min], ["GETRANGE", "missing", i64min, i64max]]),
    ("expire-max", [["SET", "k", "v"], ["EXPIRE", "k", i64max], ["TTL", "k"], ["PTTL", "k"], ["EXPIRETIME", "k"],
                    ["PEXPIRE", "k", i64max, "GT"], ["EXPIREAT", "k", "9223372036854775"], ["PEXPIRETIME", "k"]]),
    ("pexpireat-min", [["SET", "k", "v"], ["PEXPIREAT", "k", i64min], ["EXISTS", "k"], ["SET", "n", "v"],
                       ["EXPIRE", "n", i64min], ["PEXPIRE", "n", i64min, "LT"]]),
    ("set-ex-max", [["SET", "k", "v", "EX", i64max], ["SET", "k", "v", "PX", i64max], ["SET", "k", "v", "EXAT", i64max],
                    ["SET", "k", "v", "PXAT", i64max], ["SET", "k", "v", "EX", "9223372036854775"],
                    ["GETEX", "k", "EX", i64max], ["GETEX", "k", "PXAT", i64min], ["SETEX", "k", i64max, "v"],
                    ["PSETEX", "k", i64max, "v"], ["SET", "k", "v", "KEEPTTL", "GET"], ["TTL", "k"]]),
    ("incrby-max-twice", [["INCRBY", "k", i64max], ["INCRBY", "k", i64max], ["INCR", "k"], ["GET", "k"]]),
    ("decrby-min", [["DECRBY", "k", i64min], ["SET", "n", i64min], ["DECR", "n"], ["INCRBY", "n", "-1"],
                    ["DECRBY", "n", i64max], ["INCRBY", "k", i64min], ["DECRBY", "k", "1"]]),
    ("scan-count-max", [["SET", "k", "v"], ["SET", "n", "1"], ["SCAN", "0", "COUNT", i64max],
                        ["SCAN", "0", "COUNT", "1", "MATCH", "*", "TYPE", "string"],
                        ["SCAN", "18446744073709551615", "COUNT", "1"], ["SCAN", "1", "COUNT", i64min], ["KEYS", "*"]]),
    ("slowlog-get-max", [["CONFIG", "SET", "slowlog-log-slower-than", "0"], ["PING"], ["SET", "k", "v"],
                         ["SLOWLOG", "GET", i64max], ["SLOWLOG", "GET", "-1"], ["SLOWLOG", "GET", i64min],
                         ["SLOWLOG", "LEN"], ["SLOWLOG", "RESET"]]),
    ("idx-query-limit-number", [["IDX.CREATE", "i", "f", "TYPE", "NUMBER"], ["SET", "doc:1", "{\"f\":1}"],
                                ["SET", "doc:2", "{\"f\":2.5}"],
                                ["IDX.QUERY", "i", "RANGE", "-inf", "+inf", "LIMIT", i64max, i64max],
                                ["IDX.QUERY", "i", "RANGE", "-inf", "+inf", "LIMIT", "1", i64max, "WITHVALUES"],
                                ["IDX.QUERY", "i", "EQ", "1", "LIMIT", "0", i64max],
                                ["IDX.QUERY", "i", "RANGE", "1e308", "inf", "LIMIT", "9223372036854775806", "2"],
                                ["IDX.INFO", "i"]]),
    ("idx-query-limit-string", [["IDX.CREATE", "s", "a.b", "PREFIX", "doc:"],
                                ["SET", "doc:1", "{\"a\":{\"b\":\"x\"}}"],
                                ["IDX.QUERY", "s", "PREFIX", "x", "LIMIT", i64max, "1"],
                                ["IDX.QUERY", "s", "EQ", "x", "LIMIT", "1", i64max, "WITHVALUES"],
                                ["IDX.QUERY", "s", "PREFIX", "", "LIMIT", "0", "18446744073709551615"],
                                ["IDX.LIST"], ["IDX.DROP", "s"]]),
    ("config-set-huge", [["CONFIG", "SET", "slowlog-max-len", i64max], ["CONFIG", "SET", "maxclients", i64max],
                         ["CONFIG", "SET", "timeout", i64max], ["CONFIG", "SET", "proto-max-bulk-len", i64max],
                         ["CONFIG", "SET", "client-query-buffer-limit", "18446744073709551615"],
                         ["CONFIG", "SET", "proto-max-multibulk-len", "2147483648"],
                         ["CONFIG", "SET", "slowlog-log-slower-than", i64min],
                         ["CONFIG", "SET", "proto-inline-max-size", "9223372036854775807gb"],
                         ["CONFIG", "SET", "client-output-buffer-limit", "normal \(i64max) \(i64max) \(i64max)"],
                         ["CONFIG", "SET", "latency-tracking-info-percentiles", "1e308 -1 nan"],
                         ["CONFIG", "GET", "*"], ["INFO", "everything"]]),
    ("config-set-memory-units", [["CONFIG", "SET", "proto-max-bulk-len", "8589934591gb"],
                                 ["CONFIG", "SET", "client-query-buffer-limit", "9223372036854775807kb"],
                                 ["CONFIG", "SET", "proto-inline-max-size", "-1mb"],
                                 ["CONFIG", "SET", "slowlog-max-len", "0"], ["CONFIG", "RESETSTAT"],
                                 ["CONFIG", "GET", "proto-*"]]),
    ("client-list-id-max", [["CLIENT", "LIST", "ID", i64max], ["CLIENT", "LIST", "ID", "1", i64max, i64min],
                            ["CLIENT", "LIST", "TYPE", "normal"], ["CLIENT", "SETNAME", "x"], ["CLIENT", "INFO"],
                            ["CLIENT", "ID"], ["CLIENT", "GETNAME"]]),
    ("select-min", [["SELECT", i64min], ["SELECT", "9223372036854775808"], ["SELECT", "0"], ["SELECT", i64max]]),
    ("incrbyfloat-1e308-twice", [["INCRBYFLOAT", "k", "1e308"], ["INCRBYFLOAT", "k", "1e308"], ["GET", "k"],
                                 ["INCRBYFLOAT", "n", "1e-400"], ["INCRBYFLOAT", "n", "-inf"],
                                 ["INCRBYFLOAT", "n", "nan"], ["SET", "f", "1.7976931348623157e308"],
                                 ["INCRBYFLOAT", "f", "1.7976931348623157e308"]]),
    ("hello-and-introspection", [["HELLO", "3"], ["COMMAND", "DOCS"], ["COMMAND", "INFO", "get", "nope"],
                                 ["COMMAND", "COUNT"], ["CONFIG", "GET", "*"], ["INFO"], ["HELLO", "2", "SETNAME", "c"],
                                 ["ROLE"], ["SHARDS"], ["DBSIZE"], ["LASTSAVE"], ["TIME"]]),
    ("strings-basic", [["SET", "k", "v", "NX"], ["APPEND", "k", "tail"], ["STRLEN", "k"],
                       ["MSET", "a.b", "1", "n", "2"], ["MGET", "k", "n", "x"], ["MSETNX", "k", "1"],
                       ["GETSET", "n", "3"], ["GETDEL", "n"],
                       ["RENAME", "k", "key"], ["RENAMENX", "key", "a.b"], ["RANDOMKEY"], ["TYPE", "key"],
                       ["PERSIST", "key"], ["DEL", "key", "a.b"], ["FLUSHALL"], ["SAVE"]]),
    ("replication", [["SHALE.REPLLAYOUT"], ["REPLICAOF", "NO", "ONE"], ["SHALE.REPLSNAP", "x", "f", "0", "1"],
                     ["SHALE.REPLPULL", "x", "f", "1", "0", "1", "1"], ["WAIT", "0", "0"], ["ROLE"]]),
    ("shards", [["SET", "k", "v"], ["SHARDS", "SET", "3"], ["GET", "k"], ["SHARDS", "SET", "1"], ["SHARDS"],
                ["SHARDS", "SET", i64max], ["BGSAVE", "SCHEDULE"]]),
    ("auth", [["AUTH", "x"], ["CONFIG", "SET", "requirepass", "pw"], ["AUTH", "bad"], ["AUTH", "default", "pw"],
              ["HELLO", "3", "AUTH", "default", "pw"], ["QUIT"]]),
]

/// Seeds in the fuzzer's own categories (word lists, huge strings, replication tokens).
let categorySeeds: [(String, [UInt8])] = {
    let key = categoryByte(.key), huge = categoryByte(.huge), raw = categoryByte(.raw)
    let token = categoryByte(.replicationToken)
    func name(_ s: String) -> [UInt8] { [0xFF, UInt8(s.utf8.count)] + Array(s.utf8) }
    func text(_ s: String) -> [UInt8] { [raw, UInt8(s.utf8.count)] + Array(s.utf8) }
    return [
        // SET k <4 KiB of 'a'>; APPEND k <8 KiB of '9'>; STRLEN k   (keyNames[0] is "k")
        ("huge-strings", [2] + name("SET") + [2, key, 0, huge, 3, 0x61] + name("APPEND") + [2, key, 0, huge, 7, 0x39]
            + name("STRLEN") + [1, key, 0]),
        // SHALE.REPLPULL <replid> f 1 <generation> 1 1; WAIT 1 1   (two shards: two positions)
        ("replpull-tokens", [1] + name("SHALE.REPLPULL") + [6, token, 0] + text("f") + text("1") + [token, 1]
            + text("1") + text("1") + name("WAIT") + [2] + text("1") + text("1")),
    ]
}()

func writeSeeds(_ dir: String) {
    mkdir(dir, 0o755)
    let all = seeds.map { ($0.0, encode($0.1)) } + categorySeeds
    for (name, bytes) in all {
        guard let f = fopen(dir + "/" + name, "wb") else { fail("cannot write \(dir)/\(name)") }
        if fwrite(bytes, 1, bytes.count, f) != bytes.count { fail("cannot write \(dir)/\(name)") }
        fclose(f)
    }
}

/// Read by LeakSanitizer at start-up (see the header).
let leakSuppressions: StaticString = "leak:formWeakReference\n"

@_cdecl("__lsan_default_suppressions")
public func lsanDefaultSuppressions() -> UnsafePointer<CChar> {
    UnsafeRawPointer(leakSuppressions.utf8Start).assumingMemoryBound(to: CChar.self)
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>?, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> CInt {
    if let dir = getenv("SHALE_FUZZ_SEEDS") {
        writeSeeds(String(cString: dir))
        exit(0)
    }
    _ = commandTable
    return 0
}

// MARK: entry point

/// The executable's entry point in debug builds (see `runFuzzer`).
@_cdecl("FuzzCommands_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzCommands)
}
