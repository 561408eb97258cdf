import KVProtocol
import KVStore

/// OBJECT and MEMORY: what a key's value is and costs, answered for this engine.
///
/// - `OBJECT ENCODING` classifies a string value the way Redis would store it — `int` (an
///   integer of at most 20 characters that reads back identically), `embstr` (at most 44
///   bytes), `raw` — so clients and tests that branch on it behave as with Redis. The LSM
///   itself keeps every value as bytes in its row.
/// - `OBJECT REFCOUNT` is 1: values are never shared between keys here.
/// - `OBJECT IDLETIME` and `OBJECT FREQ` are refused: the engine keeps no per-key access
///   clock or counter (FREQ with Redis's own text, since this server's policy is noeviction).
/// - `MEMORY USAGE` is the bytes the row takes in the engine: the encoded key (slot-tagged
///   user key plus the 8-byte sequence trailer), the value with its expiry envelope, and the
///   per-entry varint lengths.
extension Commands {
    static let objectCommands: [CommandSpec] = [
        CommandSpec("object", -2, [], subcommands: ["encoding", "refcount", "idletime", "freq", "help"]) { c in try object(c) },
        CommandSpec("memory", -2, [], subcommands: ["usage", "help"]) { c in try memory(c) },
    ]

    /// Redis's encoding name for a string value.
    static func stringEncoding(_ value: [UInt8]) -> String {
        if value.count <= 20, let n = RedisText.parseInt(value), RedisText.bytes(n) == value { return "int" }
        return value.count <= 44 ? "embstr" : "raw"
    }

    /// The encoding name of a row: Redis's names for strings; for a collection, the name of
    /// the Redis encoding with the same costs (elements are engine records looked up by key:
    /// `hashtable` for hashes and sets, `quicklist` for lists, `skiplist` for sorted sets,
    /// which keep a score-ordered index).
    static func encoding(_ row: StoredEntry) -> String {
        switch row.type {
        case .string: return stringEncoding(row.value)
        case .hash, .set: return "hashtable"
        case .list: return "quicklist"
        case .zset: return "skiplist"
        }
    }

    static func object(_ c: CommandCall) throws -> RESPValue {
        let sub = RedisText.lower(c.args[1])
        switch sub {
        case "encoding", "refcount", "idletime", "freq":
            if c.argc != 3 { throw CommandError.wrongArity("object|\(sub)") }
            guard let row = try c.store.getEntry(c.args[2]) else { return .nullBulk }
            switch sub {
            case "encoding": return .bulk(encoding(row))
            case "refcount": return .integer(1)
            case "idletime":
                throw CommandError("ERR idle time is not tracked: this server keeps no per-key access clock")
            default:
                throw CommandError("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.")
            }
        case "help":
            if c.argc != 2 { throw CommandError.wrongArity("object|help") }
            return .array([
                "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "ENCODING <key>",
                "    Return the kind of internal representation used in order to store the value",
                "    associated with a <key>.",
                "FREQ <key>",
                "    Return the access frequency index of the <key>. The returned integer is",
                "    proportional to the logarithm of the recent access frequency of the key.",
                "IDLETIME <key>",
                "    Return the idle time of the <key>, that is the approximated number of",
                "    seconds elapsed since the last access to the key.",
                "REFCOUNT <key>",
                "    Return the number of references of the value associated with the specified",
                "    <key>.",
                "HELP",
                "    Prints this help.",
            ].map { .simpleString($0) })
        default:
            throw CommandError.unknownSubcommand(c.args[1], of: "object")
        }
    }

    static func memory(_ c: CommandCall) throws -> RESPValue {
        let sub = RedisText.lower(c.args[1])
        switch sub {
        case "usage":
            // MEMORY USAGE key [SAMPLES count]: the samples option is accepted (nothing here is
            // sampled: the row is measured whole).
            if c.argc < 3 { throw CommandError.wrongArity("memory|usage") }
            if c.argc != 3 && c.argc != 5 { throw CommandError.syntax }
            var samples: Int64 = 5
            if c.argc == 5 {
                guard RedisText.eq(c.args[3], "samples") else { throw CommandError.syntax }
                samples = try RedisText.int(c.args[4])
                if samples < 0 { throw CommandError.syntax }
            }
            guard let row = try c.store.getEntry(c.args[2]) else { return .nullBulk }
            let key = EngineKey.encode(c.args[2]).count + 8
            let value = RowValue.encode(row.value, expiresAt: row.expiresAt).count
            var total = Int64(key + value + varintLength(UInt64(key)) + varintLength(UInt64(value)))
            if row.type != .string {
                // A collection: its element records, measured on up to `samples` of them (0:
                // all) and scaled to the count, as Redis samples nested values.
                total += try c.store.update([c.args[2]]) { u -> Int64 in
                    guard let m = try u.collection(0, row.type) else { return 0 }
                    let prefix = CollectionLayout.elementPrefix(c.args[2], version: m.version).count + 1 + 8
                    var seen: Int64 = 0, bytes: Int64 = 0
                    try u.scanElements(0, m) { sub, v in
                        let k = prefix + sub.count
                        bytes += Int64(k + v.count + varintLength(UInt64(k)) + varintLength(UInt64(v.count)))
                        seen += 1
                        return samples == 0 || seen < samples
                    }
                    guard seen > 0 else { return 0 }
                    // Sorted sets keep a score entry per member too.
                    let perElement = bytes / seen + (row.type == .zset ? Int64(prefix + 8 + 3) + bytes / seen - 8 : 0)
                    let (product, overflow) = perElement.multipliedReportingOverflow(by: m.count)
                    return overflow ? Int64.max / 2 : product
                }
            }
            return .integer(total)
        case "help":
            if c.argc != 2 { throw CommandError.wrongArity("memory|help") }
            return .array([
                "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "USAGE <key> [SAMPLES <count>]",
                "    Return memory in bytes used by <key> and its value. Nested values are",
                "    sampled up to <count> times (default: 5, 0 means sample all).",
                "HELP",
                "    Prints this help.",
            ].map { .simpleString($0) })
        default:
            throw CommandError.unknownSubcommand(c.args[1], of: "memory")
        }
    }
}
