import Foundation
import KVFileSystem
import KVProtocol
@testable import KVServer
import Testing

/// A reply or a JSON value in one comparable form: maps become dictionaries (key order is
/// checked by the end-to-end tests, on the wire), sets and arrays lists.
indirect enum Plain: Hashable, CustomStringConvertible {
    case str(String), int(Int), list([Plain]), obj([String: Plain]), null

    init(_ v: RESPValue) {
        switch v {
        case .simpleString(let s): self = .str(s)
        case .bulkString(let b?): self = .str(String(buffer: b))
        case .bulkString(nil), .null, .array(nil): self = .null
        case .integer(let n): self = .int(Int(n))
        case .array(let a?): self = .list(a.map(Plain.init))
        case .set(let a): self = .list(a.map(Plain.init))
        case .map(let entries):
            var d: [String: Plain] = [:]
            for e in entries {
                guard case .str(let k) = Plain(e.key) else { preconditionFailure("map key \(e.key)") }
                d[k] = Plain(e.value)
            }
            self = .obj(d)
        default: preconditionFailure("unexpected reply \(v)")
        }
    }

    init(json: Any) {
        if let s = json as? String {
            self = .str(s)
        } else if let n = json as? NSNumber {
            self = .int(n.intValue)
        } else if let a = json as? [Any] {
            self = .list(a.map { Plain(json: $0) })
        } else if let d = json as? [String: Any] {
            self = .obj(d.mapValues { Plain(json: $0) })
        } else {
            self = .null
        }
    }

    var list: [Plain] { if case .list(let l) = self { return l } else { return [] } }
    var obj: [String: Plain] { if case .obj(let d) = self { return d } else { return [:] } }
    var description: String {
        switch self {
        case .str(let s): return "\"\(s)\""
        case .int(let n): return String(n)
        case .list(let l): return "[" + l.map(\.description).joined(separator: ", ") + "]"
        case .obj(let d): return "{" + d.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + "}"
        case .null: return "null"
        }
    }
}

/// The command metadata behind COMMAND: complete for every command and subcommand kvserver
/// has (and for the ones being added), in agreement with the command table, and equal to
/// redis-server 7.0's for Redis's commands (Tests/e2e/data/redis-command-info.json, taken
/// from a real redis-server by Tests/e2e/data/extract_redis_commands.py).
@Suite("Command metadata")
struct CommandMetadataTests {
    func args(_ a: String...) -> [[UInt8]] { a.map { Array($0.utf8) } }

    /// Commands and subcommands other work is adding: their entries are in the tables already.
    static let coming = ["multi", "exec", "discard", "watch", "unwatch",
                         "client|tracking", "client|caching", "client|trackinginfo", "client|getredir"]

    static func redisTable() throws -> [String: Any] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../e2e/data/redis-command-info.json").standardized
        let data = try Data(contentsOf: url)
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test func everyCommandAndSubcommandHasMetadata() {
        for spec in Commands.specs {
            #expect(Commands.metadata[spec.name] != nil, "no metadata for \(spec.name): add it to a CommandMetadata table")
            for sub in spec.subcommands {
                #expect(Commands.metadata[spec.name + "|" + sub] != nil, "no metadata for \(spec.name)|\(sub)")
            }
        }
        for name in Self.coming { #expect(Commands.metadata[name] != nil, "no metadata for \(name)") }
        // One entry per name, names lower-case.
        #expect(Set(Commands.metadataList.map(\.name)).count == Commands.metadataList.count)
        for m in Commands.metadataList { #expect(m.name == m.name.lowercased()) }
    }

    @Test func specsAgreeWithMetadata() throws {
        for spec in Commands.specs {
            let m = try #require(Commands.metadata[spec.name])
            #expect(spec.arity == m.arity, "\(spec.name): arity")
            let flags = try #require(CommandFlags(names: spec.flags), "\(spec.name): unknown flag in \(spec.flags)")
            #expect(flags == m.flags.subtracting(.movableKeys), "\(spec.name): flags \(spec.flags) vs \(m.flags.allNames)")
            #expect(spec.firstKey == m.legacyKeys.first && spec.lastKey == m.legacyKeys.last && spec.step == m.legacyKeys.step,
                    "\(spec.name): key range")
            // GETKEYS (the key specs) finds the keys the legacy range names, for every argument
            // count the arity allows (up to 9).
            for argc in 1...9 where spec.arityOK(argc) {
                let request = [Array(spec.name.utf8)] + (1..<argc).map { Array("a\($0)".utf8) }
                let found = m.keys(in: request)?.map(\.position) ?? []
                if spec.movableKeys == nil {
                    #expect(found == spec.keyPositions(argc: argc), "\(spec.name) with \(argc) arguments")
                    continue
                }
                // A `numkeys` command: with a count of 2 at any position, the server's key
                // finder and the key specs agree.
                for at in 1..<argc {
                    var r = request
                    r[at] = Array("2".utf8)
                    let specs = m.keys(in: r)?.map(\.position) ?? []
                    #expect(specs == spec.keyPositions(r), "\(spec.name): numkeys 2 at \(at) of \(argc) arguments")
                }
            }
        }
    }

    /// A subcommand with metadata is answered exactly when its command declares it: one the
    /// handler answers but the spec does not declare (or the reverse) fails here.
    @Test func declaredSubcommandsAreTheAnsweredOnes() throws {
        let h = try CommandHarness(fileSystem: MemoryFileSystem())
        for m in Commands.metadataList where m.name.contains("|") {
            let parts = m.name.split(separator: "|").map(String.init)
            guard let spec = Commands.table[parts[0]] else { continue }
            let reply = h.run(args(parts[0].uppercased(), parts[1].uppercased())).reply
            let unknown = reply == .simpleError(CommandError.unknownSubcommand(Array(parts[1].uppercased().utf8), of: parts[0]).message)
            #expect(unknown != spec.subcommands.contains(parts[1]), "\(m.name): \(String(describing: reply))")
        }
    }

    /// Every command of the Redis table that has metadata here: COMMAND INFO and COMMAND DOCS
    /// equal redis-server's (subcommands: the ones kvserver has, each equal to Redis's).
    @Test func redisCommandsMatchRedis() throws {
        let table = try Self.redisTable()
        let intro = CommandIntrospection.shared
        var compared = 0
        for (name, value) in table {
            let entry = try #require(value as? [String: Any])
            let m = try #require(Commands.metadata[name], "\(name) is in redis-command-info.json but has no metadata")
            let info: RESPValue, docs: RESPValue, subs: [String]
            if let e = intro.entries[name] {
                (info, docs, subs) = (e.info, e.docs, e.subcommands)
            } else {
                (info, docs, subs) = (CommandIntrospection.info(m, subcommands: []), m.doc.reply(subcommands: nil), [])
            }
            var want = Plain(json: entry["info"]!).list
            var got = Plain(info).list
            let wantSubs = Dictionary(uniqueKeysWithValues: want[9].list.map { ($0.list[0], $0) })
            for sub in got[9].list where sub.list[0] != .str("client|setinfo") {
                #expect(wantSubs[sub.list[0]] == sub, "\(name): COMMAND INFO of \(sub.list[0])")
            }
            for (sub, meta) in zip(subs, subs.map { Commands.metadata[$0]! }) where sub != "client|setinfo" {
                let wanted = wantSubs[.str(sub)].map { $0.list } ?? []
                #expect(!wanted.isEmpty && wanted[1] == .int(meta.arity), "\(sub): not in Redis, or arity")
            }
            (want[9], got[9]) = (.null, .null)
            #expect(got == want, "\(name): COMMAND INFO\n got  \(got)\n want \(want)")
            var wantDocs = Plain(json: entry["docs"]!).obj
            var gotDocs = Plain(docs).obj
            let wantSubDocs = wantDocs.removeValue(forKey: "subcommands")?.obj ?? [:]
            for (sub, d) in gotDocs.removeValue(forKey: "subcommands")?.obj ?? [:] where sub != "client|setinfo" {
                #expect(wantSubDocs[sub] == d, "\(sub): COMMAND DOCS\n got  \(d)\n want \(String(describing: wantSubDocs[sub]))")
            }
            #expect(gotDocs == wantDocs, "\(name): COMMAND DOCS\n got  \(Plain.obj(gotDocs))\n want \(Plain.obj(wantDocs))")
            compared += 1
        }
        #expect(compared == table.count)
        for spec in Commands.specs where !spec.name.hasPrefix("idx.") && !spec.name.hasPrefix("shale.") && spec.name != "shards" {
            #expect(table[spec.name] != nil, "\(spec.name) is missing from redis-command-info.json: extract it again")
        }
    }

    @Test func derivedFields() throws {
        // ACL categories Redis derives from the flags, and ones a table declares.
        let get = try #require(Commands.metadata["get"])
        #expect(get.aclCategories.replyNames == ["@read", "@string", "@fast"])
        let role = try #require(Commands.metadata["role"])
        #expect(role.aclCategories.replyNames == ["@admin", "@fast", "@dangerous"])
        // Several consecutive range specs make one legacy range; a keyword spec makes the keys movable.
        #expect(Commands.metadata["rename"]!.legacyKeys == (1, 2, 1))
        let keyword = CommandMetadata("x", -2, "readonly", keys: [KeySpec("RO", .keyword("KEYS", startFrom: 1),
                                                                           .range(lastKey: -1, step: 1, limit: 0))],
                                      "x", since: "1.0.0", group: "generic")
        #expect(keyword.flags.contains(.movableKeys) && keyword.legacyKeys == (0, 0, 0))
        #expect(keyword.keys(in: args("x", "a", "KEYS", "k1", "k2"))?.map(\.position) == [3, 4])
        #expect(keyword.keys(in: args("x", "a", "b"))?.isEmpty == true)
        let keynum = CommandMetadata("y", -3, "readonly", keys: [KeySpec("RO", .index(1),
                                                                         .keynum(keyNumIndex: 0, firstKey: 1, step: 1))],
                                     "y", since: "1.0.0", group: "generic")
        #expect(keynum.keys(in: args("y", "2", "a", "b", "c"))?.map(\.position) == [2, 3])
        #expect(keynum.keys(in: args("y", "5", "a")) == nil)
        #expect(keynum.keys(in: args("y", "x", "a")) == nil)
    }

    @Test func kvserverCommands() throws {
        for name in ["idx.create", "idx.drop", "idx.list", "idx.info", "idx.query"] {
            let m = try #require(Commands.metadata[name])
            #expect(m.keySpecs.isEmpty && m.legacyKeys == (0, 0, 0) && m.doc.group == "generic", "\(name): no keys")
        }
        for name in ["shards", "shards|set", "shale.repllayout", "shale.replpull", "shale.replsnap"] {
            let m = try #require(Commands.metadata[name])
            #expect(m.flags.contains(.admin) && m.aclCategories.replyNames.contains("@dangerous"), "\(name): admin")
            #expect(m.doc.syscmd == name.hasPrefix("shale."))
        }
        let h = try Harness()
        #expect(h.run("COMMAND", "GETKEYS", "IDX.QUERY", "i", "EQ", "v") == err("ERR The command has no key arguments"))
        #expect(h.run("COMMAND", "GETKEYS", "SHARDS", "SET", "3") == err("ERR The command has no key arguments"))
        #expect(h.run("COMMAND", "GETKEYS", "SHARDS", "NOPE", "3") == err("ERR Invalid command specified"))
    }
}
