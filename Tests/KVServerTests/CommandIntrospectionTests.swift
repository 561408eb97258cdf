import KVFileSystem
import KVProtocol
@testable import KVServer
import Testing

/// COMMAND's subcommands through the command executor: reply shapes (the same values are
/// written as RESP2 arrays or RESP3 maps and sets), COUNT, LIST and its filters, INFO and
/// DOCS of commands, subcommands and unknown names, GETKEYS and GETKEYSANDFLAGS.
@Suite("COMMAND introspection")
struct CommandIntrospectionTests {
    static func map(_ pairs: [(String, RESPValue)]) -> RESPValue { .map(pairs.map { .init(key: bulk($0.0), value: $0.1) }) }
    static func statuses(_ s: String...) -> RESPValue { .set(s.map { .simpleString($0) }) }

    static let getInfo = RESPValue.array([
        bulk("get"), .integer(2), statuses("readonly", "fast"), .integer(1), .integer(1), .integer(1),
        statuses("@read", "@string", "@fast"), .set([]),
        .set([map([("flags", statuses("RO", "access")),
                   ("begin_search", map([("type", bulk("index")), ("spec", map([("index", .integer(1))]))])),
                   ("find_keys", map([("type", bulk("range")),
                                      ("spec", map([("lastkey", .integer(0)), ("keystep", .integer(1)), ("limit", .integer(0))]))]))])]),
        .set([]),
    ])

    @Test func infoShapes() throws {
        let h = try Harness()
        #expect(h.run("COMMAND", "INFO", "get") == .array([Self.getInfo]))
        #expect(h.run("COMMAND", "INFO", "GET", "nosuch", "get|x", "client|nosuch") == .array([Self.getInfo, nullBulk, nullBulk, nullBulk]))
        // A container lists its subcommands, each a full entry under its full name.
        guard case .array(let entries?) = h.run("COMMAND", "INFO", "client"), case .array(let client?) = entries[0],
              case .array(let subs?) = client[9] else {
            Issue.record("COMMAND INFO client: no subcommand array")
            return
        }
        #expect(client[0] == bulk("client") && client[1] == .integer(-2) && client[2] == .set([]))
        let names = subs.compactMap { sub -> String? in
            guard case .array(let e?) = sub, case .bulkString(let b?) = e[0] else { return nil }
            return String(buffer: b)
        }
        #expect(names == names.sorted() && names.contains("client|kill") && names.contains("client|setinfo"))
        #expect(names.contains("client|tracking") && !names.contains("client|unblock"), "exactly the subcommands the server answers")
        guard case .array(let kill?) = h.run("COMMAND", "INFO", "CLIENT|KILL"), case .array(let k?) = kill[0] else {
            Issue.record("COMMAND INFO client|kill")
            return
        }
        #expect(k[0] == bulk("client|kill") && k[1] == .integer(-3) && k[2] == Self.statuses("admin", "noscript", "loading", "stale"))
        #expect(k[6] == Self.statuses("@admin", "@slow", "@dangerous", "@connection"))
        // No names: every command, as COMMAND itself answers.
        let all = h.run("COMMAND")
        #expect(h.run("COMMAND", "INFO") == all)
        guard case .array(let every?) = all else { Issue.record("COMMAND"); return }
        #expect(every.count == Commands.specs.count)
    }

    @Test func countAndList() throws {
        let h = try Harness()
        #expect(h.run("COMMAND", "COUNT") == .integer(Int64(Commands.specs.count)))
        #expect(h.run("COMMAND", "COUNT", "x") == err("ERR wrong number of arguments for 'command|count' command"))
        guard case .array(let listed?) = h.run("COMMAND", "LIST") else { Issue.record("COMMAND LIST"); return }
        let names = Set(listed.map { v -> String in
            guard case .bulkString(let b?) = v else { return "" }
            return String(buffer: b)
        })
        #expect(names.isSuperset(of: ["get", "set", "client", "client|kill", "config|get", "command|getkeysandflags", "shards|set"]))
        #expect(names.count == listed.count && names.contains("client|tracking") && !names.contains("client|unblock"))
        let strings = ["append", "decr", "decrby", "get", "getdel", "getex", "getrange", "getset", "incr", "incrby", "incrbyfloat",
                       "mget", "mset", "msetnx", "psetex", "set", "setex", "setnx", "setrange", "strlen", "substr"]
        #expect(h.run("COMMAND", "LIST", "FILTERBY", "ACLCAT", "STRING") == .array(strings.map { bulk($0) }))
        #expect(h.run("COMMAND", "LIST", "FILTERBY", "aclcat", "@string") == .array([]))
        #expect(h.run("COMMAND", "LIST", "FILTERBY", "aclcat", "nosuch") == .array([]))
        #expect(h.run("COMMAND", "LIST", "FILTERBY", "MODULE", "x") == .array([]))
        #expect(h.run("COMMAND", "LIST", "FILTERBY", "PATTERN", "CONFIG|[gs]et") == .array([bulk("config|get"), bulk("config|set")]))
        guard case .array(let admin?) = h.run("COMMAND", "LIST", "FILTERBY", "aclcat", "admin") else { Issue.record("ACLCAT"); return }
        #expect(admin.contains(bulk("client|kill")) && admin.contains(bulk("shards")) && !admin.contains(bulk("client")))
        for bad in [["LIST", "x"], ["LIST", "FILTERBY"], ["LIST", "FILTERBY", "foo", "x"], ["LIST", "FILTERBY", "pattern", "x", "y"]] {
            #expect(h.runBytes([Array("COMMAND".utf8)] + bad.map { Array($0.utf8) }) == err("ERR syntax error"), "\(bad)")
        }
    }

    @Test func docs() throws {
        let h = try Harness()
        let getDoc = Self.map([
            ("summary", bulk("Get the value of a key")), ("since", bulk("1.0.0")), ("group", bulk("string")),
            ("complexity", bulk("O(1)")),
            ("arguments", .array([Self.map([("name", bulk("key")), ("type", bulk("key")), ("key_spec_index", .integer(0))])])),
        ])
        #expect(h.run("COMMAND", "DOCS", "GET", "nosuch") == .map([.init(key: bulk("get"), value: getDoc)]))
        #expect(h.run("COMMAND", "DOCS", "nosuch") == .map([]))
        guard case .map(let getset) = h.run("COMMAND", "DOCS", "getset"), case .map(let fields) = getset[0].value else {
            Issue.record("COMMAND DOCS getset")
            return
        }
        #expect(fields.map(\.key) == ["summary", "since", "group", "complexity", "doc_flags", "deprecated_since", "replaced_by",
                                      "arguments"].map { bulk($0) })
        #expect(fields[4].value == Self.statuses("deprecated"))
        guard case .map(let slowlog) = h.run("COMMAND", "DOCS", "slowlog"), case .map(let s) = slowlog[0].value,
              case .map(let subs) = s.last!.value else {
            Issue.record("COMMAND DOCS slowlog")
            return
        }
        #expect(s.last!.key == bulk("subcommands"))
        #expect(subs.map(\.key) == ["slowlog|get", "slowlog|help", "slowlog|len", "slowlog|reset"].map { bulk($0) })
        guard case .map(let replpull) = h.run("COMMAND", "DOCS", "shale.replpull"), case .map(let r) = replpull[0].value else {
            Issue.record("COMMAND DOCS shale.replpull")
            return
        }
        #expect(r.contains { $0.key == bulk("doc_flags") && $0.value == Self.statuses("syscmd") })
        guard case .map(let all) = h.run("COMMAND", "DOCS") else { Issue.record("COMMAND DOCS"); return }
        #expect(all.count == Commands.specs.count)
    }

    @Test func getKeysAndFlags() throws {
        let h = try Harness()
        func keys(_ pairs: (String, RESPValue)...) -> RESPValue { .array(pairs.map { .array([bulk($0.0), $0.1]) }) }
        #expect(h.run("COMMAND", "GETKEYSANDFLAGS", "set", "a", "b") == keys(("a", Self.statuses("OW", "update"))))
        #expect(h.run("COMMAND", "GETKEYSANDFLAGS", "SET", "a", "b", "EX", "1", "get")
                == keys(("a", Self.statuses("RW", "access", "update"))))
        #expect(h.run("COMMAND", "GETKEYSANDFLAGS", "rename", "a", "b")
                == keys(("a", Self.statuses("RW", "access", "delete")), ("b", Self.statuses("OW", "update"))))
        #expect(h.run("COMMAND", "GETKEYSANDFLAGS", "mset", "a", "1", "b", "2")
                == keys(("a", Self.statuses("OW", "update")), ("b", Self.statuses("OW", "update"))))
        #expect(h.run("COMMAND", "GETKEYSANDFLAGS", "object", "encoding", "k") == keys(("k", Self.statuses("RO"))))
        #expect(h.run("COMMAND", "GETKEYS", "memory", "usage", "k", "SAMPLES", "5") == .array([bulk("k")]))
        #expect(h.run("COMMAND", "GETKEYS", "del", "a", "b", "c") == .array([bulk("a"), bulk("b"), bulk("c")]))
        // Redis's errors, in Redis's order: unknown command, no keys, then arity.
        #expect(h.run("COMMAND", "GETKEYSANDFLAGS", "get") == err("ERR wrong number of arguments for 'command|getkeysandflags' command"))
        #expect(h.run("COMMAND", "GETKEYS", "nosuch", "a") == err("ERR Invalid command specified"))
        #expect(h.run("COMMAND", "GETKEYS", "object", "nosuch", "a") == err("ERR Invalid command specified"))
        #expect(h.run("COMMAND", "GETKEYS", "echo", "a", "b") == err("ERR The command has no key arguments"))
        #expect(h.run("COMMAND", "GETKEYS", "client", "list") == err("ERR The command has no key arguments"))
        #expect(h.run("COMMAND", "GETKEYS", "get", "a", "b") == err("ERR Invalid number of arguments specified for command"))
        #expect(h.run("COMMAND", "HELP", "x") == err("ERR wrong number of arguments for 'command|help' command"))
        #expect(h.run("COMMAND", "NOPE") == err("ERR unknown subcommand 'NOPE'. Try COMMAND HELP."))
    }
}
