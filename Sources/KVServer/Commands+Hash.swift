import KVProtocol
import KVStore

/// Hashes: one element record per field (`CollectionLayout`), the value its record's value.
extension Commands {
    static let hashCommands: [CommandSpec] = [
        CommandSpec("hset", -4, ["write", "denyoom", "fast"], keys: (1, 1, 1)) { c in
            if c.argc % 2 != 0 { throw CommandError.wrongArity("hset") }
            return .integer(try hset(c))
        },
        CommandSpec("hmset", -4, ["write", "denyoom", "fast"], keys: (1, 1, 1)) { c in
            if c.argc % 2 != 0 { throw CommandError.wrongArity("hmset") }
            _ = try hset(c)
            return .ok
        },
        CommandSpec("hsetnx", 4, ["write", "denyoom", "fast"], keys: (1, 1, 1)) { c in
            let field = c.args[2], value = c.args[3]
            let change = try changeCollection(c, .hash, create: true) { u, meta -> Bool in
                if try u.element(0, meta!, field) != nil { return false }
                u.putElement(0, meta!, field, value)
                meta!.count += 1
                return true
            }
            if change.created { notify(c, .new, "new", c.args[1]) }
            if change.result { notify(c, .hash, "hset", c.args[1]) }
            return change.result ? .one : .zero
        },
        CommandSpec("hget", 3, ["readonly", "fast"], keys: (1, 1, 1)) { c in
            let value = try readCollection(c, .hash) { u, meta in try meta.flatMap { try u.element(0, $0, c.args[2]) } }
            return try bulkOrNull(c.server, value)
        },
        CommandSpec("hmget", -3, ["readonly", "fast"], keys: (1, 1, 1)) { c in
            try readCollection(c, .hash) { u, meta -> RESPValue in
                var out: [RESPValue] = []
                out.reserveCapacity(c.argc - 2)
                for f in c.args.dropFirst(2) {
                    let v = try meta.flatMap { try u.element(0, $0, f) }
                    out.append(v.map { .bulk($0) } ?? .nullBulk)
                }
                return .array(out)
            }
        },
        CommandSpec("hdel", -3, ["write", "fast"], keys: (1, 1, 1)) { c in try removeElements(c, .hash, event: "hdel", .hash) },
        CommandSpec("hlen", 2, ["readonly", "fast"], keys: (1, 1, 1)) { c in
            .integer(try readCollection(c, .hash) { _, meta in meta?.count ?? 0 })
        },
        CommandSpec("hstrlen", 3, ["readonly", "fast"], keys: (1, 1, 1)) { c in
            .integer(Int64(try readCollection(c, .hash) { u, meta in try meta.flatMap { try u.element(0, $0, c.args[2]) } }?.count ?? 0))
        },
        CommandSpec("hexists", 3, ["readonly", "fast"], keys: (1, 1, 1)) { c in
            try readCollection(c, .hash) { u, meta in try meta.flatMap { try u.element(0, $0, c.args[2]) } } != nil ? .one : .zero
        },
        CommandSpec("hkeys", 2, ["readonly"], keys: (1, 1, 1)) { c in
            .array(try hashAll(c).map { .bulk($0.sub) })
        },
        CommandSpec("hvals", 2, ["readonly"], keys: (1, 1, 1)) { c in
            .array(try hashAll(c).map { .bulk($0.value) })
        },
        CommandSpec("hgetall", 2, ["readonly"], keys: (1, 1, 1)) { c in
            let all = try hashAll(c)
            if c.resp3 { return .map(all.map { RESPValue.Entry(key: .bulk($0.sub), value: .bulk($0.value)) }) }
            var out: [RESPValue] = []
            out.reserveCapacity(all.count * 2)
            for (f, v) in all {
                out.append(.bulk(f))
                out.append(.bulk(v))
            }
            return .array(out)
        },
        CommandSpec("hincrby", 4, ["write", "denyoom", "fast"], keys: (1, 1, 1)) { c in
            let incr = try RedisText.int(c.args[3])
            let field = c.args[2]
            let change = try changeCollection(c, .hash, create: true) { u, meta -> Int64 in
                var value: Int64 = 0
                let old = try u.element(0, meta!, field)
                if let old {
                    guard let v = RedisText.parseInt(old) else { throw CommandError("ERR hash value is not an integer") }
                    value = v
                }
                let (sum, overflow) = value.addingReportingOverflow(incr)
                if overflow { throw CommandError.overflow }
                u.putElement(0, meta!, field, RedisText.bytes(sum))
                if old == nil { meta!.count += 1 }
                return sum
            }
            if change.created { notify(c, .new, "new", c.args[1]) }
            notify(c, .hash, "hincrby", c.args[1])
            return .integer(change.result)
        },
        CommandSpec("hincrbyfloat", 4, ["write", "denyoom", "fast"], keys: (1, 1, 1)) { c in
            guard let incr = RedisText.parseLongDouble(c.args[3]) else { throw CommandError.notFloat }
            if incr.isNaN || incr.isInfinite { throw CommandError("ERR value is NaN or Infinity") }
            let field = c.args[2]
            let change = try changeCollection(c, .hash, create: true) { u, meta -> [UInt8] in
                var value: RedisText.LongDouble = 0
                let old = try u.element(0, meta!, field)
                if let old {
                    guard let v = RedisText.parseLongDouble(old) else { throw CommandError("ERR hash value is not a float") }
                    value = v
                }
                value += incr
                if value.isNaN || value.isInfinite { throw CommandError("ERR increment would produce NaN or Infinity") }
                let text = Array(RedisText.formatHuman(value).utf8)
                u.putElement(0, meta!, field, text)
                if old == nil { meta!.count += 1 }
                return text
            }
            if change.created { notify(c, .new, "new", c.args[1]) }
            notify(c, .hash, "hincrbyfloat", c.args[1])
            return .bulk(change.result)
        },
        CommandSpec("hrandfield", -2, ["readonly"], keys: (1, 1, 1)) { c in try hrandfield(c) },
        CommandSpec("hscan", -3, ["readonly"], keys: (1, 1, 1)) { c in
            var out: [RESPValue] = []
            let next = try scanCollection(c, .hash) { f, v in
                out.append(.bulk(Array(f)))
                out.append(.bulk(Array(v)))
            }
            return .array([.bulk(String(next)), .array(out)])
        },
    ]

    /// HSET/HMSET: sets the field-value pairs from argument 2; returns how many fields are new.
    static func hset(_ c: CommandCall) throws -> Int64 {
        let change = try changeCollection(c, .hash, create: true) { u, meta -> Int64 in
            var added: Int64 = 0
            var i = 2
            while i + 1 < c.argc {
                if try u.element(0, meta!, c.args[i]) == nil {
                    meta!.count += 1
                    added += 1
                }
                u.putElement(0, meta!, c.args[i], c.args[i + 1])
                i += 2
            }
            return added
        }
        if change.created { notify(c, .new, "new", c.args[1]) }
        notify(c, .hash, "hset", c.args[1])
        return change.result
    }

    /// Every field and value of the hash at `c.args[1]`, in field order.
    static func hashAll(_ c: CommandCall) throws -> [(sub: [UInt8], value: [UInt8])] {
        try readCollection(c, .hash) { u, meta in try meta.map { try allElements(u, 0, $0) } ?? [] }
    }

    /// `HRANDFIELD key [count [WITHVALUES]]`.
    static func hrandfield(_ c: CommandCall) throws -> RESPValue {
        if c.argc > 4 || (c.argc == 4 && !RedisText.eq(c.args[3], "withvalues")) { throw CommandError.syntax }
        let withValues = c.argc == 4
        guard c.argc >= 3 else {
            let pick = try readCollection(c, .hash) { u, meta in
                try meta.flatMap { try randomElements(u, 0, $0, count: 1, distinct: true).first }
            }
            return pick.map { .bulk($0.sub) } ?? .nullBulk
        }
        let (count, distinct) = try randomCount(c.args[2])
        if withValues && count > Int.max / 2 { throw CommandError("ERR value is out of range") }
        let picks = try readCollection(c, .hash) { u, meta in
            try meta.map { try randomElements(u, 0, $0, count: count, distinct: distinct) } ?? []
        }
        if !withValues { return .array(picks.map { .bulk($0.sub) }) }
        if c.resp3 { return .array(picks.map { .array([.bulk($0.sub), .bulk($0.value)]) }) }
        var out: [RESPValue] = []
        out.reserveCapacity(picks.count * 2)
        for p in picks {
            out.append(.bulk(p.sub))
            out.append(.bulk(p.value))
        }
        return .array(out)
    }
}
