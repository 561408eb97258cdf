import KVProtocol

extension Commands {
    /// Every command's and subcommand's metadata, by full lower-case name (`get`,
    /// `client|kill`). It may
    /// hold commands that ``specs`` does not have yet; the metadata tests check that it holds
    /// every one that ``specs`` has, and every declared subcommand.
    static let metadataList: [CommandMetadata] =
        CommandMetadata.stringGroup + CommandMetadata.keyspaceGroup + CommandMetadata.serverGroup
        + CommandMetadata.commandGroup + CommandMetadata.connectionGroup + CommandMetadata.pubsubGroup
        + CommandMetadata.shaleGroup + CommandMetadata.clusterGroup + CommandMetadata.hashGroup + CommandMetadata.listGroup
        + CommandMetadata.setGroup + CommandMetadata.sortedSetGroup

    static let metadata: [String: CommandMetadata] = {
        var m: [String: CommandMetadata] = [:]
        for e in metadataList { m[e.name] = e }
        return m
    }()
}

/// The replies of `COMMAND` and its subcommands, built once from the command table
/// (``Commands/specs``, with each spec's declared subcommands) and the metadata
/// (``Commands/metadata``), and kept.
///
/// A command without metadata (which the metadata tests do not let happen) is still listed,
/// with its arity, flags and key range from its spec and a bare summary.
final class CommandIntrospection: Sendable {
    /// One command or subcommand as `COMMAND` reports it.
    struct Entry: Sendable {
        let metadata: CommandMetadata
        /// Its `COMMAND INFO` entry (subcommands included).
        let info: RESPValue
        /// Its `COMMAND DOCS` map (subcommands included).
        let docs: RESPValue
        /// Full names of its subcommands, sorted; empty for a plain command.
        let subcommands: [String]
    }

    static let shared = CommandIntrospection(specs: Commands.specs, metadata: Commands.metadataList)

    /// Top-level commands and subcommands by full lower-case name.
    let entries: [String: Entry]
    /// Top-level command names, sorted.
    let names: [String]
    /// `COMMAND` (and `COMMAND INFO` without names).
    let all: RESPValue
    /// `COMMAND DOCS` without names.
    let allDocs: RESPValue
    /// `COMMAND LIST`: every command followed by its subcommands.
    let listed: [String]

    init(specs: [CommandSpec], metadata list: [CommandMetadata]) {
        var byName: [String: CommandMetadata] = [:]
        for m in list { byName[m.name] = m }
        var entries: [String: Entry] = [:]
        for spec in specs {
            // Redis lists subcommands in its hash table's order, which changes from process to
            // process; here they are sorted by name.
            let subs = Set(spec.subcommands.map { spec.name + "|" + $0 }).sorted()
            var subEntries: [Entry] = []
            for sub in subs {
                let m = byName[sub] ?? Self.fallback(name: sub, arity: -2, flags: [], keys: (0, 0, 0))
                let e = Entry(metadata: m, info: Self.info(m, subcommands: []), docs: m.doc.reply(subcommands: nil), subcommands: [])
                entries[sub] = e
                subEntries.append(e)
            }
            let m = byName[spec.name] ?? Self.fallback(name: spec.name, arity: spec.arity, flags: spec.flags,
                                                       keys: (spec.firstKey, spec.lastKey, spec.step))
            let docs = m.doc.reply(subcommands: subs.isEmpty ? nil : .map(subEntries.map { .init(key: .bulk($0.metadata.name), value: $0.docs) }))
            entries[spec.name] = Entry(metadata: m, info: Self.info(m, subcommands: subEntries.map(\.info)), docs: docs,
                                       subcommands: subs)
        }
        self.entries = entries
        names = specs.map(\.name).sorted()
        all = .array(names.map { entries[$0]!.info })
        allDocs = .map(names.map { .init(key: .bulk($0), value: entries[$0]!.docs) })
        listed = names.flatMap { [$0] + entries[$0]!.subcommands }
    }

    /// The `COMMAND INFO` entry of a command (Redis 7.0's ten elements).
    static func info(_ m: CommandMetadata, subcommands: [RESPValue]) -> RESPValue {
        .array([
            .bulk(m.name), .integer(Int64(m.arity)),
            .set(m.flags.visibleNames.map { .simpleString($0) }),
            .integer(Int64(m.legacyKeys.first)), .integer(Int64(m.legacyKeys.last)), .integer(Int64(m.legacyKeys.step)),
            .set(m.aclCategories.replyNames.map { .simpleString($0) }),
            .set(m.tips.map { .bulk($0) }),
            .set(m.keySpecs.map(\.reply)),
            subcommands.isEmpty ? .set([]) : .array(subcommands),
        ])
    }

    /// Metadata for a command the tables lack: what its spec knows.
    static func fallback(name: String, arity: Int, flags: [String], keys: (Int, Int, Int)) -> CommandMetadata {
        var specs: [KeySpec] = []
        if keys.0 > 0 {
            specs = [.from(keys.0, "RW", last: keys.1 < 0 ? keys.1 : keys.1 - keys.0, step: max(1, keys.2))]
        }
        return CommandMetadata(name, arity, CommandFlags(names: flags) ?? [], keys: specs, name.uppercased(), since: "0.3.0",
                               group: "generic")
    }

    /// Redis's `lookupCommandBySds`: `name` or `container|sub`, case-insensitive.
    func entry(named name: String) -> Entry? {
        let parts = name.lowercased().split(separator: "|", omittingEmptySubsequences: false)
        if parts.count == 1 { return entries[String(parts[0])] }
        guard parts.count == 2, let base = entries[String(parts[0])], !base.subcommands.isEmpty else { return nil }
        return entries[name.lowercased()]
    }

    /// Redis's `lookupCommand` for a request: the command, or its subcommand when it has
    /// subcommands and the request names one (nil for an unknown one).
    func entry(request args: [[UInt8]]) -> Entry? {
        guard let first = args.first, let base = entries[RedisText.lower(first)] else { return nil }
        if args.count == 1 || base.subcommands.isEmpty { return base }
        return entries[base.metadata.name + "|" + RedisText.lower(args[1])]
    }
}

extension Commands {
    /// COMMAND [COUNT | INFO [name ...] | DOCS [name ...] | LIST [FILTERBY MODULE m | ACLCAT c |
    /// PATTERN p] | GETKEYS cmd ... | GETKEYSANDFLAGS cmd ... | HELP], Redis 7.0's replies.
    static func command(_ c: CommandCall) throws -> RESPValue {
        let intro = CommandIntrospection.shared
        if c.argc == 1 { return intro.all }
        let sub = RedisText.lower(c.args[1])
        if let m = intro.entries["command|" + sub]?.metadata,
           !(m.arity >= 0 ? c.argc == m.arity : c.argc >= -m.arity) {
            throw CommandError.wrongArity("command|" + sub)
        }
        switch sub {
        case "count":
            return .integer(Int64(intro.names.count))
        case "info":
            if c.argc == 2 { return intro.all }
            return .array(c.args.dropFirst(2).map { intro.entry(named: String(decoding: $0, as: UTF8.self))?.info ?? .nullBulk })
        case "docs":
            if c.argc == 2 { return intro.allDocs }
            let found = c.args.dropFirst(2).compactMap { intro.entry(named: String(decoding: $0, as: UTF8.self)) }
            return .map(found.map { .init(key: .bulk($0.metadata.name), value: $0.docs) })
        case "list":
            return try commandList(c, intro)
        case "getkeys", "getkeysandflags":
            return try commandGetKeys(c, intro, withFlags: sub == "getkeysandflags")
        case "help":
            return .array(["COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                           "(no subcommand)", "    Return details about all commands.",
                           "COUNT", "    Return the total number of commands in this server.",
                           "LIST", "    Return a list of all commands in this server.",
                           "INFO [<command-name> ...]", "    Return details about multiple commands.",
                           "    If no command names are given, documentation details for all",
                           "    commands are returned.",
                           "DOCS [<command-name> ...]", "    Return documentation details about multiple commands.",
                           "    If no command names are given, documentation details for all",
                           "    commands are returned.",
                           "GETKEYS <full-command>", "    Return the keys from a full command.",
                           "GETKEYSANDFLAGS <full-command>", "    Return the keys and the access flags from a full command.",
                           "HELP", "    Prints this help."].map { .simpleString($0) })
        default:
            throw CommandError.unknownSubcommand(c.args[1], of: "command")
        }
    }

    /// COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN pattern]: every command
    /// and subcommand (a filter tests each, subcommands on their own); no modules here, so
    /// MODULE lists nothing, as Redis does for a module it does not have.
    static func commandList(_ c: CommandCall, _ intro: CommandIntrospection) throws -> RESPValue {
        if c.argc == 2 { return .array(intro.listed.map { .bulk($0) }) }
        guard c.argc == 5, RedisText.eq(c.args[2], "filterby") else { throw CommandError.syntax }
        let value = c.args[4]
        let keep: (CommandMetadata) -> Bool
        if RedisText.eq(c.args[3], "module") {
            keep = { _ in false }
        } else if RedisText.eq(c.args[3], "aclcat") {
            let category = ACLCategories.named(RedisText.lower(value))
            keep = { m in category.map { m.aclCategories.contains($0) } ?? false }
        } else if RedisText.eq(c.args[3], "pattern") {
            keep = { m in Glob.match(value, Array(m.name.utf8), noCase: true) }
        } else {
            throw CommandError.syntax
        }
        return .array(intro.listed.filter { keep(intro.entries[$0]!.metadata) }.map { .bulk($0) })
    }

    /// COMMAND GETKEYS / GETKEYSANDFLAGS: the keys of a full command found by its key specs,
    /// with Redis's errors in Redis's order.
    static func commandGetKeys(_ c: CommandCall, _ intro: CommandIntrospection, withFlags: Bool) throws -> RESPValue {
        let request = Array(c.args[2...])
        guard let entry = intro.entry(request: request) else { throw CommandError("ERR Invalid command specified") }
        let m = entry.metadata
        guard m.hasKeys else { throw CommandError("ERR The command has no key arguments") }
        if (m.arity > 0 && m.arity != request.count) || request.count < -m.arity {
            throw CommandError("ERR Invalid number of arguments specified for command")
        }
        guard let keys = m.keys(in: request), !keys.isEmpty else {
            if m.flags.contains(.noMandatoryKeys) { return .array([]) }
            throw CommandError("ERR Invalid arguments specified for command")
        }
        return .array(keys.map { key in
            withFlags ? .array([.bulk(request[key.position]), .set(key.flags.replyNames.map { .simpleString($0) })])
                : .bulk(request[key.position])
        })
    }
}
