import KVProtocol
import KVStore

/// Sorted-set ranges (ZRANGE and its older forms, ZRANGESTORE, ZREMRANGEBY*) and the set
/// operations (ZUNION, ZINTER, ZDIFF and their STORE forms, ZINTERCARD).
extension Commands {
    static let sortedSetRangeCommands: [CommandSpec] = [
        CommandSpec("zrange", -4, ["readonly"], keys: (1, 1, 1)) { c in
            try zrangeReply(c, try ZRangeQuery(c.args, from: 2, style: .zrange))
        },
        CommandSpec("zrangestore", -5, ["write", "denyoom"], keys: (1, 2, 1)) { c in try zrangestore(c) },
        CommandSpec("zrangebyscore", -4, ["readonly"], keys: (1, 1, 1)) { c in
            try zrangeReply(c, try ZRangeQuery(c.args, from: 2, style: .byScore(reverse: false)))
        },
        CommandSpec("zrevrangebyscore", -4, ["readonly"], keys: (1, 1, 1)) { c in
            try zrangeReply(c, try ZRangeQuery(c.args, from: 2, style: .byScore(reverse: true)))
        },
        CommandSpec("zrangebylex", -4, ["readonly"], keys: (1, 1, 1)) { c in
            try zrangeReply(c, try ZRangeQuery(c.args, from: 2, style: .byLex(reverse: false)))
        },
        CommandSpec("zrevrangebylex", -4, ["readonly"], keys: (1, 1, 1)) { c in
            try zrangeReply(c, try ZRangeQuery(c.args, from: 2, style: .byLex(reverse: true)))
        },
        CommandSpec("zrevrange", -4, ["readonly"], keys: (1, 1, 1)) { c in
            try zrangeReply(c, try ZRangeQuery(c.args, from: 2, style: .byRank(reverse: true)))
        },
        CommandSpec("zremrangebyscore", 4, ["write"], keys: (1, 1, 1)) { c in
            let range = try ScoreRange(c.args[2], c.args[3])
            return try zremrange(c, "zremrangebyscore") { u, m, body in try zwalk(u, 0, m, range) { member, s in body(member, s); return true } }
        },
        CommandSpec("zremrangebylex", 4, ["write"], keys: (1, 1, 1)) { c in
            let range = try LexRange(c.args[2], c.args[3])
            return try zremrange(c, "zremrangebylex") { u, m, body in try zwalkLex(u, 0, m, range, reverse: false) { member, s in body(member, s); return true } }
        },
        CommandSpec("zremrangebyrank", 4, ["write"], keys: (1, 1, 1)) { c in
            let start = try RedisText.int(c.args[2]), stop = try RedisText.int(c.args[3])
            return try zremrange(c, "zremrangebyrank") { u, m, body in
                guard let (from, to) = listRange(CollectionMeta(type: .zset, version: 0, count: m.count, head: 0, tail: m.count), start, stop) else { return }
                var rank: Int64 = 0
                try u.scanElements(0, m, kind: CollectionLayout.scoreKind) { sub, _ in
                    defer { rank += 1 }
                    if rank < from { return true }
                    if rank >= to { return false }
                    body(Array(sub[8...]), CollectionLayout.score(ofOrdered: sub))
                    return true
                }
            }
        },
        CommandSpec("zunion", -3, ["readonly"], movableKeys: CommandSpec.numkeys(at: 1)) { c in try zsetOperation(c, .union, store: false) },
        CommandSpec("zinter", -3, ["readonly"], movableKeys: CommandSpec.numkeys(at: 1)) { c in try zsetOperation(c, .inter, store: false) },
        CommandSpec("zdiff", -3, ["readonly"], movableKeys: CommandSpec.numkeys(at: 1)) { c in try zsetOperation(c, .diff, store: false) },
        CommandSpec("zunionstore", -4, ["write", "denyoom"], keys: (1, 1, 1), movableKeys: storeKeys) { c in try zsetOperation(c, .union, store: true) },
        CommandSpec("zinterstore", -4, ["write", "denyoom"], keys: (1, 1, 1), movableKeys: storeKeys) { c in try zsetOperation(c, .inter, store: true) },
        CommandSpec("zdiffstore", -4, ["write", "denyoom"], keys: (1, 1, 1), movableKeys: storeKeys) { c in try zsetOperation(c, .diff, store: true) },
        CommandSpec("zintercard", -3, ["readonly"], movableKeys: CommandSpec.numkeys(at: 1)) { c in
            let n = try RedisText.int(c.args[1])
            if n < 1 { throw CommandError("ERR at least 1 input key is needed for 'zintercard' command") }
            if n > Int64(c.argc - 2) { throw CommandError.syntax }
            try checkSortedSetInputs(c, Array(c.args[2..<(2 + Int(n))]))
            var limit = 0
            var j = 2 + Int(n)
            while j < c.argc {
                guard RedisText.eq(c.args[j], "limit"), j + 1 < c.argc else { throw CommandError.syntax }
                guard let l = RedisText.parseInt(c.args[j + 1]), l >= 0 else { throw CommandError("ERR LIMIT can't be negative") }
                limit = Int(min(l, Int64(Int.max)))
                j += 2
            }
            let keys = Array(c.args[2..<(2 + Int(n))])
            let result = try zcombine(c, .inter, keys: keys, weights: Array(repeating: 1, count: keys.count), aggregate: .sum, store: nil)
            return .integer(Int64(limit > 0 ? min(limit, result.count) : result.count))
        },
    ]

    /// Key positions of `destination numkeys key ...`.
    static let storeKeys: @Sendable ([[UInt8]]) -> [Int] = { args in
        let inputs = CommandSpec.numkeys(at: 2)(args)
        return inputs.isEmpty ? [] : [1] + inputs
    }

    /// One ZRANGE-family request, parsed as Redis 7.0 parses it.
    struct ZRangeQuery {
        enum Style { case zrange, byScore(reverse: Bool), byLex(reverse: Bool), byRank(reverse: Bool) }
        enum Kind { case rank, score, lex }
        var kind = Kind.rank
        var reverse = false
        var withScores = false
        var offset: Int64 = 0
        var limit: Int64 = -1
        var start: [UInt8], stop: [UInt8]

        init(_ args: [[UInt8]], from at: Int, style: Style, allowScores: Bool = true) throws {
            start = args[at]
            stop = args[at + 1]
            var hasLimit = false
            var j = at + 2
            switch style {
            case .zrange: break
            case .byScore(let r): kind = .score; reverse = r
            case .byLex(let r): kind = .lex; reverse = r
            case .byRank(let r): reverse = r
            }
            while j < args.count {
                let a = args[j]
                if allowScores && RedisText.eq(a, "withscores") {
                    withScores = true
                } else if RedisText.eq(a, "limit") && j + 2 < args.count {
                    offset = try RedisText.int(args[j + 1])
                    limit = try RedisText.int(args[j + 2])
                    hasLimit = true
                    j += 2
                } else if case .zrange = style, RedisText.eq(a, "byscore"), kind == .rank {
                    kind = .score
                } else if case .zrange = style, RedisText.eq(a, "bylex"), kind == .rank {
                    kind = .lex
                } else if case .zrange = style, RedisText.eq(a, "rev") {
                    reverse = true
                } else {
                    throw CommandError.syntax
                }
                j += 1
            }
            // Redis refuses a LIMIT with a count on a rank range (any offset goes with -1).
            if hasLimit && limit != -1 && kind == .rank {
                throw CommandError("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")
            }
            if withScores && kind == .lex { throw CommandError("ERR syntax error, WITHSCORES not supported in combination with BYLEX") }
            // The reverse forms take max before min.
            if reverse && kind != .rank { swap(&start, &stop) }
        }

        /// The members (and scores) of the query on key `i`'s sorted set.
        func run(_ u: KeyedUpdate, _ i: Int, _ m: CollectionMeta) throws -> [([UInt8], Double)] {
            var out: [([UInt8], Double)] = []
            switch kind {
            case .rank:
                let s = try RedisText.int(start), e = try RedisText.int(stop)
                guard let (from, to) = listRange(CollectionMeta(type: .zset, version: 0, count: m.count, head: 0, tail: m.count), s, e) else { return [] }
                // Ranks cost a walk from an end: start from the nearer one.
                let fromEnd = from > m.count - to
                let (skip, take) = fromEnd ? (m.count - to, to - from) : (from, to - from)
                var rank: Int64 = 0
                try u.scanElements(i, m, kind: CollectionLayout.scoreKind, reverse: reverse != fromEnd) { sub, _ in
                    defer { rank += 1 }
                    if rank < skip { return true }
                    if rank >= skip + take { return false }
                    out.append((Array(sub[8...]), CollectionLayout.score(ofOrdered: sub)))
                    return true
                }
                if fromEnd { out.reverse() }
            case .score, .lex:
                if offset < 0 { return [] }
                var skipped: Int64 = 0
                let collect: ([UInt8], Double) -> Bool = { member, s in
                    if skipped < offset {
                        skipped += 1
                        return true
                    }
                    out.append((member, s))
                    return limit < 0 || Int64(out.count) < limit
                }
                if limit == 0 { return [] }
                if kind == .score {
                    try zwalk(u, i, m, try ScoreRange(start, stop), reverse: reverse, collect)
                } else {
                    try zwalkLex(u, i, m, try LexRange(start, stop), reverse: reverse, collect)
                }
            }
            return out
        }

        /// Checks the range arguments before the key is read (Redis reports them first).
        func validate() throws {
            switch kind {
            case .rank: _ = try RedisText.int(start); _ = try RedisText.int(stop)
            case .score: _ = try ScoreRange(start, stop)
            case .lex: _ = try LexRange(start, stop)
            }
        }
    }

    /// A ZRANGE-family reply.
    static func zrangeReply(_ c: CommandCall, _ q: ZRangeQuery) throws -> RESPValue {
        try q.validate()
        let result = try readCollection(c, .zset) { u, meta in try meta.map { try q.run(u, 0, $0) } ?? [] }
        if !q.withScores { return .array(result.map { .bulk($0.0) }) }
        if c.resp3 { return .array(result.map { .array([.bulk($0.0), scoreReply(c, $0.1)]) }) }
        var out: [RESPValue] = []
        out.reserveCapacity(result.count * 2)
        for (member, s) in result {
            out.append(.bulk(member))
            out.append(scoreReply(c, s))
        }
        return .array(out)
    }

    /// `ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]`.
    static func zrangestore(_ c: CommandCall) throws -> RESPValue {
        let q = try ZRangeQuery(c.args, from: 3, style: .zrange, allowScores: false)
        try q.validate()
        let dst = c.args[1], src = c.args[2]
        var event: String?
        let keys = dst == src ? [src] : [src, dst]
        let n = try c.store.update(keys) { u -> Int64 in
            let result = try u.collection(0, .zset).map { try q.run(u, 0, $0) } ?? []
            let d = keys.count - 1
            if result.isEmpty {
                if u.rows[d] != nil {
                    u.setRow(d, nil)
                    event = "del"
                }
                return 0
            }
            var m = u.newCollection(d, .zset)
            for (member, s) in result { zput(u, d, &m, member, s, old: nil) }
            u.setRow(d, StoredEntry(value: m.encoded, type: .zset))
            event = "zrangestore"
            return m.count
        }
        if let event { notify(c, event == "del" ? .generic : .zset, event, dst) }
        return .integer(n)
    }

    /// ZREMRANGEBY*: removes what `walk` yields.
    static func zremrange(_ c: CommandCall, _ event: String,
                          _ walk: (KeyedUpdate, CollectionMeta, ([UInt8], Double) -> Void) throws -> Void) throws -> RESPValue {
        let change = try changeCollection(c, .zset, create: false) { u, meta -> Int64 in
            guard var m = meta else { return 0 }
            var doomed: [([UInt8], Double)] = []
            try walk(u, m) { doomed.append(($0, $1)) }
            for (member, s) in doomed { zdel(u, 0, &m, member, s) }
            meta = m
            return Int64(doomed.count)
        }
        if change.result > 0 { notify(c, .zset, event, c.args[1]) }
        if change.deleted { notify(c, .generic, "del", c.args[1]) }
        return .integer(change.result)
    }

    enum Aggregate { case sum, min, max }

    /// ZUNION/ZINTER/ZDIFF `numkeys key ... [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]`
    /// and the STORE forms (`destination numkeys key ...`, no WITHSCORES).
    static func zsetOperation(_ c: CommandCall, _ op: SetOperation, store: Bool) throws -> RESPValue {
        let at = store ? 2 : 1
        let name = c.name
        guard let n = RedisText.parseInt(c.args[at]) else { throw CommandError.notInteger }
        if n < 1 { throw CommandError("ERR at least 1 input key is needed for '\(name)' command") }
        if n > Int64(c.argc - at - 1) { throw CommandError.syntax }
        let keys = Array(c.args[(at + 1)..<(at + 1 + Int(n))])
        // Redis reads the inputs (WRONGTYPE) before it parses the options.
        try checkSortedSetInputs(c, keys)
        var weights = [Double](repeating: 1, count: keys.count)
        var aggregate = Aggregate.sum
        var withScores = false
        var j = at + 1 + Int(n)
        while j < c.argc {
            let a = c.args[j]
            if op != .diff && RedisText.eq(a, "weights") && j + keys.count < c.argc {
                for w in 0..<keys.count {
                    guard let v = RedisText.parseDouble(c.args[j + 1 + w]) else { throw CommandError("ERR weight value is not a float") }
                    weights[w] = v
                }
                j += keys.count + 1
            } else if op != .diff && RedisText.eq(a, "aggregate") && j + 1 < c.argc {
                let v = c.args[j + 1]
                if RedisText.eq(v, "sum") { aggregate = .sum } else if RedisText.eq(v, "min") { aggregate = .min }
                else if RedisText.eq(v, "max") { aggregate = .max } else { throw CommandError.syntax }
                j += 2
            } else if !store && RedisText.eq(a, "withscores") {
                withScores = true
                j += 1
            } else {
                throw CommandError.syntax
            }
        }
        let result = try zcombine(c, op, keys: keys, weights: weights, aggregate: aggregate, store: store ? c.args[1] : nil)
        if store { return .integer(Int64(result.count)) }
        if !withScores { return .array(result.map { .bulk($0.0) }) }
        if c.resp3 { return .array(result.map { .array([.bulk($0.0), scoreReply(c, $0.1)]) }) }
        var out: [RESPValue] = []
        for (member, s) in result {
            out.append(.bulk(member))
            out.append(scoreReply(c, s))
        }
        return .array(out)
    }

    /// `-WRONGTYPE` when one of `keys` holds something other than a sorted set or a set.
    static func checkSortedSetInputs(_ c: CommandCall, _ keys: [[UInt8]]) throws {
        for k in keys {
            if let row = try c.store.getEntry(k), row.type != .zset && row.type != .set { throw CommandError.wrongType }
        }
    }

    /// The members and scores of a sorted-set operation over `keys` (sorted sets, or sets with
    /// score 1; missing keys are empty), in score order; with `store`, written there (an empty
    /// result deletes it).
    static func zcombine(_ c: CommandCall, _ op: SetOperation, keys: [[UInt8]], weights: [Double], aggregate: Aggregate,
                         store: [UInt8]?) throws -> [([UInt8], Double)] {
        let distinct = DistinctKeys.of(keys + (store.map { [$0] } ?? [])).distinct
        var event: String?
        let result = try c.store.update(distinct) { u -> [([UInt8], Double)] in
            // Each input as member → score (sets: 1).
            var inputs: [[[UInt8]: Double]?] = []
            for k in keys {
                let i = distinct.firstIndex(of: k)!
                guard let row = u.rows[i] else { inputs.append(nil); continue }
                var members: [[UInt8]: Double] = [:]
                switch row.type {
                case .zset:
                    let m = try u.collection(i, .zset)!
                    try u.scanElements(i, m) { member, v in members[Array(member)] = CollectionLayout.score(ofValue: v) ?? 0; return true }
                case .set:
                    let m = try u.collection(i, .set)!
                    try u.scanElements(i, m) { member, _ in members[Array(member)] = 1; return true }
                default:
                    throw CommandError.wrongType
                }
                inputs.append(members)
            }
            // Redis's zunionInterAggregate: a NaN sum is 0; MIN/MAX keep the current value
            // against a NaN.
            func agg(_ a: Double, _ b: Double) -> Double {
                switch aggregate {
                case .sum: let s = a + b; return s.isNaN ? 0 : s
                case .min: return b < a ? b : a
                case .max: return b > a ? b : a
                }
            }
            func weighted(_ s: Double, _ w: Double) -> Double { let v = s * w; return v.isNaN ? 0 : v }
            // Redis combines the inputs from the smallest to the largest.
            let order = inputs.indices.sorted { (inputs[$0]?.count ?? 0, $0) < (inputs[$1]?.count ?? 0, $1) }
            var acc: [[UInt8]: Double] = [:]
            switch op {
            case .union:
                for j in order {
                    for (member, s) in inputs[j] ?? [:] {
                        let v = weighted(s, weights[j])
                        acc[member] = acc[member].map { agg($0, v) } ?? v
                    }
                }
            case .inter:
                if inputs.contains(where: { $0 == nil }) { break }
                // The first (smallest) input's product is zeroed when NaN; the others' are
                // aggregated as they are.
                outer: for (member, s0) in inputs[order[0]]! {
                    var v = weighted(s0, weights[order[0]])
                    for j in order.dropFirst() {
                        guard let s = inputs[j]![member] else { continue outer }
                        v = agg(v, s * weights[j])
                    }
                    acc[member] = v
                }
            case .diff:
                guard let first = inputs[0] else { break }
                for (member, s) in first where !inputs.dropFirst().contains(where: { $0?[member] != nil }) { acc[member] = s }
            }
            let sorted = acc.map { ($0.key, $0.value) }.sorted { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0.lexicographicallyPrecedes($1.0) }
            guard let store else { return sorted }
            let d = distinct.firstIndex(of: store)!
            if sorted.isEmpty {
                if u.rows[d] != nil {
                    u.setRow(d, nil)
                    event = "del"
                }
                return sorted
            }
            var m = u.newCollection(d, .zset)
            for (member, s) in sorted { zput(u, d, &m, member, s, old: nil) }
            u.setRow(d, StoredEntry(value: m.encoded, type: .zset))
            event = op == .union ? "zunionstore" : op == .inter ? "zinterstore" : "zdiffstore"
            return sorted
        }
        if let store, let event { notify(c, event == "del" ? .generic : .zset, event, store) }
        return result
    }
}
