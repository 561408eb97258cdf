import KVProtocol

/// Redis 7.0's command flags: the third element of a `COMMAND INFO` entry.
///
/// The visible flags come first, in the order Redis writes them; `may_replicate`,
/// `sentinel`, `only_sentinel` and `protected` are flags Redis keeps but leaves out of its
/// reply, and so does this server (`may_replicate` is read by `CLIENT PAUSE WRITE`).
/// Written as a string of names in the tables: `"write denyoom fast"`.
struct CommandFlags: OptionSet, Sendable, Hashable, ExpressibleByStringLiteral {
    let rawValue: UInt32
    init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Every flag with its name and whether `COMMAND INFO` shows it, in Redis's reply order.
    static let names: [(flag: CommandFlags, name: String, visible: Bool)] = [
        "write", "readonly", "denyoom", "module", "admin", "pubsub", "noscript", "blocking", "loading", "stale",
        "skip_monitor", "skip_slowlog", "asking", "fast", "no_auth", "no_mandatory_keys", "no_async_loading",
        "no_multi", "movablekeys", "allow_busy", "may_replicate", "sentinel", "only_sentinel", "protected",
    ].enumerated().map { (CommandFlags(rawValue: 1 << UInt32($0.offset)), $0.element, $0.offset < 20) }

    static let write = CommandFlags(rawValue: 1 << 0)
    static let readonly = CommandFlags(rawValue: 1 << 1)
    static let admin = CommandFlags(rawValue: 1 << 4)
    static let pubsub = CommandFlags(rawValue: 1 << 5)
    static let blocking = CommandFlags(rawValue: 1 << 7)
    static let fast = CommandFlags(rawValue: 1 << 13)
    static let noAuth = CommandFlags(rawValue: 1 << 14)
    static let noMandatoryKeys = CommandFlags(rawValue: 1 << 15)
    static let movableKeys = CommandFlags(rawValue: 1 << 18)
    static let mayReplicate = CommandFlags(rawValue: 1 << 20)

    /// The flags of a list of names; nil when a name is not one of ``names``.
    init?(names list: [String]) {
        var flags = CommandFlags()
        for n in list {
            guard let f = Self.names.first(where: { $0.name == n }) else { return nil }
            flags.insert(f.flag)
        }
        self = flags
    }

    /// Space-separated names; an unknown name stops the program (the tables are literals,
    /// and the metadata tests build every one).
    init(stringLiteral text: String) {
        guard let flags = CommandFlags(names: text.split(separator: " ").map(String.init)) else {
            preconditionFailure("unknown command flag in '\(text)'")
        }
        self = flags
    }

    /// The names `COMMAND INFO` shows, in Redis's order.
    var visibleNames: [String] { Self.names.filter { $0.visible && contains($0.flag) }.map(\.name) }
    /// Every name, hidden ones included.
    var allNames: [String] { Self.names.filter { contains($0.flag) }.map(\.name) }
}

/// Redis's ACL categories (the seventh element of `COMMAND INFO`, `COMMAND LIST FILTERBY
/// ACLCAT`), in the order Redis writes them. Tables give only the categories a command
/// declares; the ones Redis derives from the flags are added by ``implied(by:)``.
struct ACLCategories: OptionSet, Sendable, Hashable, ExpressibleByStringLiteral {
    let rawValue: UInt32
    init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Category names without the `@`, in Redis's order.
    static let names = [
        "keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap", "hyperloglog", "geo",
        "stream", "pubsub", "admin", "fast", "slow", "blocking", "dangerous", "connection", "transaction", "scripting",
    ]

    static func named(_ name: String) -> ACLCategories? {
        Self.names.firstIndex(of: name).map { ACLCategories(rawValue: 1 << UInt32($0)) }
    }

    init(stringLiteral text: String) {
        var c = ACLCategories()
        for n in text.split(separator: " ") {
            guard let one = Self.named(String(n)) else { preconditionFailure("unknown ACL category '\(n)'") }
            c.insert(one)
        }
        self = c
    }

    /// Redis's `setImplicitACLCategories`: write, read (not for scripting commands), admin
    /// and dangerous, pubsub, fast, blocking from the flags; slow when not fast.
    static func implied(by flags: CommandFlags, declared: ACLCategories) -> ACLCategories {
        var c = declared
        if flags.contains(.write) { c.insert("write") }
        if flags.contains(.readonly) && !declared.contains("scripting") { c.insert("read") }
        if flags.contains(.admin) { c.formUnion("admin dangerous") }
        if flags.contains(.pubsub) { c.insert("pubsub") }
        if flags.contains(.fast) { c.insert("fast") }
        if flags.contains(.blocking) { c.insert("blocking") }
        if !c.contains("fast") { c.insert("slow") }
        return c
    }

    /// `@name` for each category, in Redis's order.
    var replyNames: [String] {
        Self.names.enumerated().filter { contains(ACLCategories(rawValue: 1 << UInt32($0.offset))) }.map { "@" + $0.element }
    }
}

/// The flags of a key specification (and of a key in `COMMAND GETKEYSANDFLAGS`), in the
/// order Redis writes them: `RO`, `RW`, `OW`, `RM`, then access, update, insert, delete,
/// not_key, incomplete, variable_flags.
struct KeySpecFlags: OptionSet, Sendable, Hashable, ExpressibleByStringLiteral {
    let rawValue: UInt16
    init(rawValue: UInt16) { self.rawValue = rawValue }

    static let names = ["RO", "RW", "OW", "RM", "access", "update", "insert", "delete", "not_key", "incomplete", "variable_flags"]
    static let notKey = KeySpecFlags(rawValue: 1 << 8)
    static let incomplete = KeySpecFlags(rawValue: 1 << 9)
    static let variableFlags = KeySpecFlags(rawValue: 1 << 10)

    init(stringLiteral text: String) {
        var f = KeySpecFlags()
        for n in text.split(separator: " ") {
            guard let i = Self.names.firstIndex(of: String(n)) else { preconditionFailure("unknown key spec flag '\(n)'") }
            f.insert(KeySpecFlags(rawValue: 1 << UInt16(i)))
        }
        self = f
    }

    var replyNames: [String] {
        Self.names.enumerated().filter { contains(KeySpecFlags(rawValue: 1 << UInt16($0.offset))) }.map(\.element)
    }
}

/// A Redis 7 key specification: where a command's keys start (`begin_search`), how many
/// follow (`find_keys`), and what the command does to them (``KeySpecFlags``).
struct KeySpec: Sendable, Hashable {
    /// Where the search for keys begins.
    enum BeginSearch: Sendable, Hashable {
        /// At this argument.
        case index(Int)
        /// After the first argument equal to `keyword` (case-insensitive), searching from
        /// `startFrom` (negative: from the end, backwards).
        case keyword(String, startFrom: Int)
    }

    /// Which arguments from the beginning are keys.
    enum FindKeys: Sendable, Hashable {
        /// Up to `lastKey` past the beginning (negative: counted from the end), every `step`th;
        /// with `limit` > 1 and `lastKey` -1, only 1/limit of the rest.
        case range(lastKey: Int, step: Int, limit: Int)
        /// The argument `keyNumIndex` past the beginning gives the number of keys, the first
        /// of which is `firstKey` past the beginning, then every `step`th.
        case keynum(keyNumIndex: Int, firstKey: Int, step: Int)
    }

    let flags: KeySpecFlags
    let begin: BeginSearch
    let find: FindKeys
    let notes: String?

    init(_ flags: KeySpecFlags, _ begin: BeginSearch, _ find: FindKeys, notes: String? = nil) {
        self.flags = flags
        self.begin = begin
        self.find = find
        self.notes = notes
    }

    /// One key at argument `index`.
    static func at(_ index: Int, _ flags: KeySpecFlags, notes: String? = nil) -> KeySpec {
        KeySpec(flags, .index(index), .range(lastKey: 0, step: 1, limit: 0), notes: notes)
    }

    /// Keys from argument `index` to `last` past it (negative: from the end), every `step`th.
    static func from(_ index: Int, _ flags: KeySpecFlags, last: Int, step: Int = 1, notes: String? = nil) -> KeySpec {
        KeySpec(flags, .index(index), .range(lastKey: last, step: step, limit: 0), notes: notes)
    }

    /// The reply map of `COMMAND INFO`'s eighth element.
    var reply: RESPValue {
        func map(_ pairs: [(String, RESPValue)]) -> RESPValue { .map(pairs.map { .init(key: .bulk($0.0), value: $0.1) }) }
        let beginReply: RESPValue
        switch begin {
        case .index(let i):
            beginReply = map([("type", .bulk("index")), ("spec", map([("index", .integer(Int64(i)))]))])
        case .keyword(let k, let s):
            beginReply = map([("type", .bulk("keyword")),
                              ("spec", map([("keyword", .bulk(k)), ("startfrom", .integer(Int64(s)))]))])
        }
        let findReply: RESPValue
        switch find {
        case .range(let last, let step, let limit):
            findReply = map([("type", .bulk("range")), ("spec", map([
                ("lastkey", .integer(Int64(last))), ("keystep", .integer(Int64(step))), ("limit", .integer(Int64(limit))),
            ]))])
        case .keynum(let idx, let first, let step):
            findReply = map([("type", .bulk("keynum")), ("spec", map([
                ("keynumidx", .integer(Int64(idx))), ("firstkey", .integer(Int64(first))), ("keystep", .integer(Int64(step))),
            ]))])
        }
        var pairs: [(String, RESPValue)] = []
        if let notes { pairs.append(("notes", .bulk(notes))) }
        pairs += [("flags", .set(flags.replyNames.map { .simpleString($0) })), ("begin_search", beginReply), ("find_keys", findReply)]
        return map(pairs)
    }
}

/// The flags of a documented argument.
struct ArgFlags: OptionSet, Sendable, Hashable {
    let rawValue: UInt8
    static let optional = ArgFlags(rawValue: 1)
    static let multiple = ArgFlags(rawValue: 2)
    static let multipleToken = ArgFlags(rawValue: 4)

    var replyNames: [String] {
        [(ArgFlags.optional, "optional"), (.multiple, "multiple"), (.multipleToken, "multiple_token")]
            .filter { contains($0.0) }.map(\.1)
    }
}

/// One argument of a command's documentation (`COMMAND DOCS`'s `arguments`): a value, a
/// token, or a group (`oneof`, `block`) of arguments.
struct CommandArg: Sendable, Hashable {
    /// Redis's argument types.
    enum Kind: String, Sendable, Hashable {
        case string, integer, double, key, pattern
        case unixTime = "unix-time"
        case pureToken = "pure-token"
        case oneof, block
    }

    let name: String
    let kind: Kind
    var keySpecIndex: Int?
    var token: String?
    var summary: String?
    var since: String?
    var deprecatedSince: String?
    var flags: ArgFlags = []
    var arguments: [CommandArg] = []

    static func arg(_ kind: Kind, _ name: String, keySpec: Int? = nil, token: String? = nil, summary: String? = nil,
                    since: String? = nil, deprecated: String? = nil, _ flags: ArgFlags = [], _ arguments: [CommandArg] = []) -> CommandArg {
        CommandArg(name: name, kind: kind, keySpecIndex: keySpec, token: token, summary: summary, since: since,
                   deprecatedSince: deprecated, flags: flags, arguments: arguments)
    }

    /// A key, described by key spec `spec`.
    static func key(_ name: String, _ spec: Int, token: String? = nil, since: String? = nil, _ flags: ArgFlags = []) -> CommandArg {
        arg(.key, name, keySpec: spec, token: token, since: since, flags)
    }

    static func string(_ name: String, token: String? = nil, summary: String? = nil, since: String? = nil,
                       deprecated: String? = nil, _ flags: ArgFlags = []) -> CommandArg {
        arg(.string, name, token: token, summary: summary, since: since, deprecated: deprecated, flags)
    }

    static func integer(_ name: String, token: String? = nil, summary: String? = nil, since: String? = nil,
                        _ flags: ArgFlags = []) -> CommandArg {
        arg(.integer, name, token: token, summary: summary, since: since, flags)
    }

    static func double(_ name: String, token: String? = nil, since: String? = nil, _ flags: ArgFlags = []) -> CommandArg {
        arg(.double, name, token: token, since: since, flags)
    }

    static func pattern(_ name: String, token: String? = nil, since: String? = nil, _ flags: ArgFlags = []) -> CommandArg {
        arg(.pattern, name, token: token, since: since, flags)
    }

    static func unixTime(_ name: String, token: String? = nil, since: String? = nil, _ flags: ArgFlags = []) -> CommandArg {
        arg(.unixTime, name, token: token, since: since, flags)
    }

    /// A word on its own (`NX`).
    static func pure(_ name: String, _ token: String, summary: String? = nil, since: String? = nil,
                     _ flags: ArgFlags = []) -> CommandArg {
        arg(.pureToken, name, token: token, summary: summary, since: since, flags)
    }

    /// One of `arguments`.
    static func oneOf(_ name: String, token: String? = nil, since: String? = nil, _ flags: ArgFlags = [],
                      of arguments: [CommandArg]) -> CommandArg {
        arg(.oneof, name, token: token, since: since, flags, arguments)
    }

    /// All of `arguments`, in order.
    static func block(_ name: String, token: String? = nil, since: String? = nil, _ flags: ArgFlags = [],
                      of arguments: [CommandArg]) -> CommandArg {
        arg(.block, name, token: token, since: since, flags, arguments)
    }

    /// The reply map of the argument (Redis's field order).
    var reply: RESPValue {
        var pairs: [(String, RESPValue)] = [("name", .bulk(name)), ("type", .bulk(kind.rawValue))]
        if let keySpecIndex { pairs.append(("key_spec_index", .integer(Int64(keySpecIndex)))) }
        if let token { pairs.append(("token", .bulk(token))) }
        if let summary { pairs.append(("summary", .bulk(summary))) }
        if let since { pairs.append(("since", .bulk(since))) }
        if let deprecatedSince { pairs.append(("deprecated_since", .bulk(deprecatedSince))) }
        if !flags.isEmpty { pairs.append(("flags", .set(flags.replyNames.map { .simpleString($0) }))) }
        if kind == .oneof || kind == .block { pairs.append(("arguments", .array(arguments.map(\.reply)))) }
        return .map(pairs.map { .init(key: .bulk($0.0), value: $0.1) })
    }
}

/// A command's documentation: what `COMMAND DOCS` reports.
struct CommandDoc: Sendable {
    let summary: String
    let since: String
    /// Redis's command group (`string`, `generic`, `server`, `connection`, `pubsub`, ...).
    let group: String
    let complexity: String?
    /// Set for a deprecated command: since which version, and what replaces it.
    let deprecated: (since: String, replacedBy: String)?
    /// A command for the servers' own use (Redis's `syscmd` doc flag: PSYNC, REPLCONF; here
    /// the SHALE.* replication commands).
    let syscmd: Bool
    /// Changes by version, oldest first.
    let history: [(version: String, change: String)]
    let arguments: [CommandArg]

    /// The reply map (Redis's field order); `subcommands` is the map of the subcommands'
    /// docs, nil for a command without subcommands.
    func reply(subcommands: RESPValue?) -> RESPValue {
        var pairs: [(String, RESPValue)] = [("summary", .bulk(summary)), ("since", .bulk(since)), ("group", .bulk(group))]
        if let complexity { pairs.append(("complexity", .bulk(complexity))) }
        if deprecated != nil || syscmd {
            let flags = (deprecated != nil ? ["deprecated"] : []) + (syscmd ? ["syscmd"] : [])
            pairs.append(("doc_flags", .set(flags.map { .simpleString($0) })))
        }
        if let deprecated {
            pairs += [("deprecated_since", .bulk(deprecated.since)), ("replaced_by", .bulk(deprecated.replacedBy))]
        }
        if !history.isEmpty {
            pairs.append(("history", .set(history.map { .array([.bulk($0.version), .bulk($0.change)]) })))
        }
        if !arguments.isEmpty { pairs.append(("arguments", .array(arguments.map(\.reply)))) }
        if let subcommands { pairs.append(("subcommands", subcommands)) }
        return .map(pairs.map { .init(key: .bulk($0.0), value: $0.1) })
    }
}

/// Everything `COMMAND` reports about one command or subcommand, as Redis 7.0 reports it:
/// arity, flags, ACL categories, tips, key specifications and documentation.
///
/// The tables (`CommandMetadata+*.swift`) hold one entry per command name, subcommands under
/// their full name (`client|kill`); ``Commands/metadata`` finds them. A command of
/// ``Commands/specs`` without an entry fails the metadata tests.
struct CommandMetadata: Sendable {
    /// The full lower-case name: `get`, `client|kill`.
    let name: String
    let arity: Int
    /// The declared flags, plus `movablekeys` where the key specs call for it.
    let flags: CommandFlags
    /// The declared categories plus those Redis derives from the flags.
    let aclCategories: ACLCategories
    /// Hints for clients (`request_policy:all_shards`, `nondeterministic_output`, ...).
    let tips: [String]
    let keySpecs: [KeySpec]
    let doc: CommandDoc
    /// The key flags of one request, for a command whose key spec has `variable_flags`
    /// (SET: `RW access update` with GET, else `OW update`).
    let variableKeyFlags: (@Sendable ([[UInt8]]) -> KeySpecFlags)?
    /// Redis's legacy first key, last key and step (`COMMAND INFO`'s fourth to sixth
    /// elements), derived from the key specs as Redis derives them.
    let legacyKeys: (first: Int, last: Int, step: Int)

    init(_ name: String, _ arity: Int, _ flags: CommandFlags, acl: ACLCategories = [], tips: String = "",
         keys: [KeySpec] = [], _ summary: String, since: String, group: String, complexity: String? = nil,
         deprecated: (since: String, replacedBy: String)? = nil, syscmd: Bool = false, history: [(String, String)] = [],
         args: [CommandArg] = [], variableKeyFlags: (@Sendable ([[UInt8]]) -> KeySpecFlags)? = nil) {
        self.name = name
        self.arity = arity
        self.tips = tips.split(separator: " ").map(String.init)
        self.keySpecs = keys
        self.doc = CommandDoc(summary: summary, since: since, group: group, complexity: complexity, deprecated: deprecated, syscmd: syscmd,
                              history: history.map { (version: $0.0, change: $0.1) }, arguments: args)
        self.variableKeyFlags = variableKeyFlags
        let (legacy, movable) = Self.legacyRange(keys)
        self.legacyKeys = legacy
        self.flags = movable ? flags.union(.movableKeys) : flags
        self.aclCategories = ACLCategories.implied(by: flags, declared: acl)
    }

    /// Redis's `populateCommandLegacyRangeSpec`: one range spec from index specs with step 1
    /// that follow one another; anything else makes the keys movable.
    static func legacyRange(_ specs: [KeySpec]) -> (range: (first: Int, last: Int, step: Int), movable: Bool) {
        if specs.isEmpty { return ((0, 0, 0), false) }
        if specs.count == 1, case .index(let pos) = specs[0].begin, case .range(let last, let step, _) = specs[0].find {
            return ((pos, last >= 0 ? last + pos : last, step), specs[0].flags.contains(.incomplete))
        }
        var movable = false
        var first = Int.max, last = 0, previousLast = 0
        for spec in specs {
            guard case .index(let pos) = spec.begin, case .range(let lastKey, let step, _) = spec.find else {
                movable = true
                continue
            }
            if step != 1 || (previousLast != 0 && previousLast != pos - 1) {
                movable = true
                continue
            }
            if spec.flags.contains(.incomplete) { movable = true }
            first = min(first, pos)
            let absolute = lastKey >= 0 ? lastKey + pos : lastKey
            // Redis compares as unsigned, so a negative (from the end) last key wins.
            last = UInt(bitPattern: last) > UInt(bitPattern: absolute) ? last : absolute
            previousLast = last
        }
        if first == Int.max { return ((0, 0, 0), true) }
        return ((first, last, 1), movable)
    }

    /// Whether a request of the command can name keys: a key spec that is not `not_key`.
    var hasKeys: Bool { keySpecs.contains { !$0.flags.contains(.notKey) } }

    /// The keys of a request (`args[0]` the command name) with their flags, found by the key
    /// specs as Redis's `getKeysUsingKeySpecs` finds them; nil when the arguments do not fit
    /// a spec (Redis's "Invalid arguments specified for command").
    func keys(in args: [[UInt8]]) -> [(position: Int, flags: KeySpecFlags)]? {
        var out: [(position: Int, flags: KeySpecFlags)] = []
        let argc = args.count
        for spec in keySpecs where !spec.flags.contains(.notKey) {
            var first = 0
            switch spec.begin {
            case .index(let pos):
                first = pos
            case .keyword(let keyword, let startFrom):
                let start = startFrom > 0 ? startFrom : argc + startFrom
                let end = startFrom > 0 ? argc - 1 : 1
                var i = start
                while i != end && i >= 1 && i < argc {
                    if RedisText.lower(args[i]) == keyword.lowercased() {
                        first = i + 1
                        break
                    }
                    i += start <= end ? 1 : -1
                }
                if first == 0 { continue }
            }
            let last: Int, step: Int
            switch spec.find {
            case .range(let lastKey, let keyStep, let limit):
                step = keyStep
                if lastKey >= 0 {
                    last = first + lastKey
                } else if limit == 0 {
                    last = argc + lastKey
                } else {
                    last = first + ((argc - first) / limit + lastKey)
                }
            case .keynum(let index, let firstKey, let keyStep):
                step = keyStep
                guard index < argc - first, let n = RedisText.parseInt(args[first + index]), n >= 0, n < Int64(argc) else {
                    return nil
                }
                first += firstKey
                last = first + Int(n) - 1
            }
            if last >= argc || last < first || first >= argc { return nil }
            let flags = spec.flags.contains(.variableFlags) ? (variableKeyFlags?(args) ?? spec.flags) : spec.flags
            for i in stride(from: first, through: last, by: max(1, step)) {
                out.append((i, flags))
            }
        }
        return out
    }
}
