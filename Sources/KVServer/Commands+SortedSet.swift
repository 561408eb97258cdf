import KVProtocol
import KVStore

/// Sorted sets: per member a member record (its score) and a score entry (`score member`,
/// in score order), both in one batch (`CollectionLayout`). Lookups by member read the member
/// record; ranges, ranks and pops walk the score entries. Ranks cost O(rank) (no counts in
/// the index), ranges from either end O(returned).
extension Commands {
    static let sortedSetCommands: [CommandSpec] = [
        CommandSpec("zadd", -4, ["write", "denyoom", "fast"], keys: (1, 1, 1)) { c in try zadd(c) },
        CommandSpec("zincrby", 4, ["write", "denyoom", "fast"], keys: (1, 1, 1)) { c in
            guard let incr = RedisText.parseDouble(c.args[2]) else { throw CommandError.notFloat }
            let member = c.args[3]
            let change = try changeCollection(c, .zset, create: true) { u, meta -> Double in
                var m = meta!
                let old = try zscore(u, 0, m, member)
                // A new member takes the increment as it is (`-0` included, as Redis answers).
                let score = old.map { $0 + incr } ?? incr
                if score.isNaN { throw CommandError("ERR resulting score is not a number (NaN)") }
                zput(u, 0, &m, member, score, old: old)
                meta = m
                return score
            }
            if change.created { notify(c, .new, "new", c.args[1]) }
            notify(c, .zset, "zincr", c.args[1])
            return scoreReply(c, change.result)
        },
        CommandSpec("zrem", -3, ["write", "fast"], keys: (1, 1, 1)) { c in
            let change = try changeCollection(c, .zset, create: false) { u, meta -> Int64 in
                guard var m = meta else { return 0 }
                var removed: Int64 = 0
                for member in c.args.dropFirst(2) {
                    guard let s = try zscore(u, 0, m, member) else { continue }
                    zdel(u, 0, &m, member, s)
                    removed += 1
                }
                meta = m
                return removed
            }
            if change.result > 0 { notify(c, .zset, "zrem", c.args[1]) }
            if change.deleted { notify(c, .generic, "del", c.args[1]) }
            return .integer(change.result)
        },
        CommandSpec("zcard", 2, ["readonly", "fast"], keys: (1, 1, 1)) { c in
            .integer(try readCollection(c, .zset) { _, meta in meta?.count ?? 0 })
        },
        CommandSpec("zscore", 3, ["readonly", "fast"], keys: (1, 1, 1)) { c in
            let s = try readCollection(c, .zset) { u, meta in try meta.flatMap { try zscore(u, 0, $0, c.args[2]) } }
            return s.map { scoreReply(c, $0) } ?? .nullBulk
        },
        CommandSpec("zmscore", -3, ["readonly", "fast"], keys: (1, 1, 1)) { c in
            .array(try readCollection(c, .zset) { u, meta in
                try c.args.dropFirst(2).map { member -> RESPValue in
                    try meta.flatMap { try zscore(u, 0, $0, member) }.map { scoreReply(c, $0) } ?? .nullBulk
                }
            })
        },
        CommandSpec("zcount", 4, ["readonly", "fast"], keys: (1, 1, 1)) { c in
            let range = try ScoreRange(c.args[2], c.args[3])
            return .integer(try readCollection(c, .zset) { u, meta -> Int64 in
                guard let m = meta else { return 0 }
                var n: Int64 = 0
                try zwalk(u, 0, m, range) { _, _ in n += 1; return true }
                return n
            })
        },
        CommandSpec("zlexcount", 4, ["readonly", "fast"], keys: (1, 1, 1)) { c in
            let range = try LexRange(c.args[2], c.args[3])
            return .integer(try readCollection(c, .zset) { u, meta -> Int64 in
                guard let m = meta else { return 0 }
                var n: Int64 = 0
                try zwalkLex(u, 0, m, range, reverse: false) { _, _ in n += 1; return true }
                return n
            })
        },
        CommandSpec("zrank", 3, ["readonly", "fast"], keys: (1, 1, 1)) { c in try zrank(c, reverse: false) },
        CommandSpec("zrevrank", 3, ["readonly", "fast"], keys: (1, 1, 1)) { c in try zrank(c, reverse: true) },
        CommandSpec("zpopmin", -2, ["write", "fast"], keys: (1, 1, 1)) { c in try zpop(c, max: false) },
        CommandSpec("zpopmax", -2, ["write", "fast"], keys: (1, 1, 1)) { c in try zpop(c, max: true) },
        CommandSpec("zmpop", -4, ["write"], movableKeys: CommandSpec.numkeys(at: 1)) { c in
            let (keys, max, count) = try mpopArguments(c.args, at: 1, words: ("min", "max"))
            let (popped, events) = try zpopFirst(c.store, keys, max: max, count: count)
            publish(c, events)
            guard let (key, pairs) = popped else { return .array(nil) }
            return .array([.bulk(key), .array(pairs.map { .array([.bulk($0.0), scoreReply(c, $0.1)]) })])
        },
        CommandSpec("bzpopmin", -3, ["write", "noscript", "blocking", "fast"], keys: (1, -2, 1)) { c in try bzpop(&c, max: false) },
        CommandSpec("bzpopmax", -3, ["write", "noscript", "blocking", "fast"], keys: (1, -2, 1)) { c in try bzpop(&c, max: true) },
        CommandSpec("bzmpop", -5, ["write", "blocking"], movableKeys: CommandSpec.numkeys(at: 2)) { c in
            let timeout = try blockTimeout(c.args[1], now: c.store.now)
            let (keys, max, count) = try mpopArguments(c.args, at: 2, words: ("min", "max"))
            let store = c.store, resp3 = c.resp3
            return try park(&c, keys: keys, timeout: timeout, timeoutReply: .array(nil)) { ready in
                let (popped, events) = try zpopFirst(store, ready.map { [$0] } ?? keys, max: max, count: count)
                guard let (key, pairs) = popped else { return nil }
                return (.array([.bulk(key), .array(pairs.map { .array([.bulk($0.0), scoreValue(resp3, $0.1)]) })]), events)
            }
        },
        CommandSpec("zrandmember", -2, ["readonly"], keys: (1, 1, 1)) { c in try zrandmember(c) },
        CommandSpec("zscan", -3, ["readonly"], keys: (1, 1, 1)) { c in
            var out: [RESPValue] = []
            let next = try scanCollection(c, .zset) { member, value in
                out.append(.bulk(Array(member)))
                out.append(.bulk(RESPEncoder.formatDouble(CollectionLayout.score(ofValue: value) ?? 0)))
            }
            return .array([.bulk(String(next)), .array(out)])
        },
    ]

    /// A score reply: a RESP3 double, a RESP2 bulk string.
    static func scoreReply(_ c: CommandCall, _ d: Double) -> RESPValue { scoreValue(c.resp3, d) }

    static func scoreValue(_ resp3: Bool, _ d: Double) -> RESPValue { resp3 ? .double(d) : .bulk(RESPEncoder.formatDouble(d)) }

    /// A member's score.
    static func zscore(_ u: KeyedUpdate, _ i: Int, _ m: CollectionMeta, _ member: [UInt8]) throws -> Double? {
        guard let v = try u.element(i, m, member) else { return nil }
        return v.withUnsafeBytes { CollectionLayout.score(ofValue: $0) }
    }

    /// Sets `member`'s score (`old`: its score now, nil when it is new).
    static func zput(_ u: KeyedUpdate, _ i: Int, _ m: inout CollectionMeta, _ member: [UInt8], _ given: Double, old: Double?) {
        // Stored as Redis stores it: -0 as 0.
        let score = given == 0 ? 0 : given
        if let old {
            if old == score { return }
            u.deleteElement(i, m, kind: CollectionLayout.scoreKind, CollectionLayout.scoreBytes(old) + member)
        } else {
            m.count += 1
        }
        u.putElement(i, m, member, CollectionLayout.scoreValue(score))
        let entry = CollectionLayout.scoreBytes(score) + member
        u.putElement(i, m, kind: CollectionLayout.scoreKind, entry, [])
        // A new entry outside the pops' floor or ceiling moves it.
        if !m.floor.isEmpty && entry.lexicographicallyPrecedes(m.floor) { m.floor = entry }
        if !m.ceiling.isEmpty && m.ceiling.lexicographicallyPrecedes(entry) { m.ceiling = entry }
    }

    /// Removes `member` (whose score is `score`).
    static func zdel(_ u: KeyedUpdate, _ i: Int, _ m: inout CollectionMeta, _ member: [UInt8], _ score: Double) {
        u.deleteElement(i, m, member)
        u.deleteElement(i, m, kind: CollectionLayout.scoreKind, CollectionLayout.scoreBytes(score) + member)
        m.count -= 1
    }

    /// A score range: `min max` with `(` for exclusive ends and `-inf`/`+inf`.
    struct ScoreRange {
        var min: Double, max: Double
        var minExclusive = false, maxExclusive = false

        init(_ lo: [UInt8], _ hi: [UInt8]) throws {
            func parse(_ a: [UInt8]) throws -> (Double, Bool) {
                let ex = a.first == UInt8(ascii: "(")
                // Redis's zslParseRange: strtod over the whole rest (empty reads as 0).
                guard let d = RedisText.parseRangeDouble(ex ? Array(a.dropFirst()) : a) else { throw CommandError("ERR min or max is not a float") }
                return (d, ex)
            }
            (min, minExclusive) = try parse(lo)
            (max, maxExclusive) = try parse(hi)
        }

        init(min: Double, max: Double) {
            self.min = min
            self.max = max
        }

        func aboveMin(_ s: Double) -> Bool { minExclusive ? s > min : s >= min }
        func belowMax(_ s: Double) -> Bool { maxExclusive ? s < max : s <= max }
        var isEmpty: Bool { min > max || (min == max && (minExclusive || maxExclusive)) }
    }

    /// A lex range: `[a`, `(a`, `-`, `+`.
    struct LexRange {
        enum Bound { case minusInf, plusInf, value([UInt8], exclusive: Bool) }
        var min: Bound, max: Bound

        init(_ lo: [UInt8], _ hi: [UInt8]) throws {
            func parse(_ a: [UInt8]) throws -> Bound {
                switch a.first {
                case UInt8(ascii: "-") where a.count == 1: return .minusInf
                case UInt8(ascii: "+") where a.count == 1: return .plusInf
                case UInt8(ascii: "["): return .value(Array(a.dropFirst()), exclusive: false)
                case UInt8(ascii: "("): return .value(Array(a.dropFirst()), exclusive: true)
                default: throw CommandError("ERR min or max not valid string range item")
                }
            }
            min = try parse(lo)
            max = try parse(hi)
        }

        func aboveMin(_ s: UnsafeRawBufferPointer) -> Bool {
            switch min {
            case .minusInf: return true
            case .plusInf: return false
            case .value(let v, let ex): let c = v.withUnsafeBytes { compareBytes(s, $0) }; return ex ? c > 0 : c >= 0
            }
        }

        /// Whether no string can be in the range (start above end, or equal with an open end).
        var isEmpty: Bool {
            switch (min, max) {
            case (.plusInf, _), (_, .minusInf): return true
            case (.minusInf, _), (_, .plusInf): return false
            case (.value(let a, let ax), .value(let b, let bx)):
                let c = a.withUnsafeBytes { x in b.withUnsafeBytes { compareBytes(x, $0) } }
                return c > 0 || (c == 0 && (ax || bx))
            }
        }

        func belowMax(_ s: UnsafeRawBufferPointer) -> Bool {
            switch max {
            case .minusInf: return false
            case .plusInf: return true
            case .value(let v, let ex): let c = v.withUnsafeBytes { compareBytes(s, $0) }; return ex ? c < 0 : c <= 0
            }
        }
    }

    /// Walks the members with scores in `range` in score order (descending with `reverse`):
    /// `body` gets the member and score and returns whether to go on.
    static func zwalk(_ u: KeyedUpdate, _ i: Int, _ m: CollectionMeta, _ range: ScoreRange, reverse: Bool = false,
                      _ body: ([UInt8], Double) throws -> Bool) throws {
        if range.isEmpty { return }
        let lower = range.min.isInfinite && range.min < 0 ? nil : CollectionLayout.scoreBytes(range.min)
        var upper: [UInt8]?
        if !(range.max.isInfinite && range.max > 0) {
            // Past every entry of score `max`: the 8 score bytes plus one.
            var b = CollectionLayout.scoreBytes(range.max)
            var j = 7
            while j >= 0 {
                b[j] &+= 1
                if b[j] != 0 { break }
                j -= 1
            }
            upper = b
        }
        try u.scanElements(i, m, kind: CollectionLayout.scoreKind, from: lower, to: upper, reverse: reverse) { sub, _ in
            let s = CollectionLayout.score(ofOrdered: sub)
            if !range.aboveMin(s) { return !reverse }
            if !range.belowMax(s) { return reverse }
            return try body(Array(sub[8...]), s)
        }
    }

    /// Walks the members in score order from the first within the lex range while they stay
    /// below its end (Redis's walk for the BYLEX commands, meant for equal scores).
    static func zwalkLex(_ u: KeyedUpdate, _ i: Int, _ m: CollectionMeta, _ range: LexRange, reverse: Bool,
                         _ body: ([UInt8], Double) throws -> Bool) throws {
        if range.isEmpty { return }
        // Redis's early exit: the last member must be at or above the start, the first at
        // or below the end (in score order; it assumes equal scores).
        var first: [UInt8]?, last: [UInt8]?
        try u.scanElements(i, m, kind: CollectionLayout.scoreKind) { sub, _ in first = Array(sub[8...]); return false }
        try u.scanElements(i, m, kind: CollectionLayout.scoreKind, reverse: true) { sub, _ in last = Array(sub[8...]); return false }
        guard let first, let last, last.withUnsafeBytes({ range.aboveMin($0) }), first.withUnsafeBytes({ range.belowMax($0) }) else { return }
        var started = false
        try u.scanElements(i, m, kind: CollectionLayout.scoreKind, reverse: reverse) { sub, _ in
            let member = UnsafeRawBufferPointer(rebasing: sub[8...])
            if !started {
                guard reverse ? range.belowMax(member) : range.aboveMin(member) else { return true }
                started = true
            }
            guard reverse ? range.aboveMin(member) : range.belowMax(member) else { return false }
            return try body(Array(member), CollectionLayout.score(ofOrdered: sub))
        }
    }

    /// `ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]`.
    static func zadd(_ c: CommandCall) throws -> RESPValue {
        var nx = false, xx = false, gt = false, lt = false, ch = false, incr = false
        var j = 2
        while j < c.argc {
            let a = c.args[j]
            if RedisText.eq(a, "nx") { nx = true } else if RedisText.eq(a, "xx") { xx = true } else if RedisText.eq(a, "gt") { gt = true }
            else if RedisText.eq(a, "lt") { lt = true } else if RedisText.eq(a, "ch") { ch = true } else if RedisText.eq(a, "incr") { incr = true }
            else { break }
            j += 1
        }
        let elements = c.argc - j
        if elements % 2 != 0 || elements == 0 { throw CommandError.syntax }
        if nx && xx { throw CommandError("ERR XX and NX options at the same time are not compatible") }
        if (gt && nx) || (lt && nx) || (gt && lt) { throw CommandError("ERR GT, LT, and/or NX options at the same time are not compatible") }
        if incr && elements > 2 { throw CommandError("ERR INCR option supports a single increment-element pair") }
        var pairs: [(Double, [UInt8])] = []
        while j + 1 < c.argc {
            guard let s = RedisText.parseDouble(c.args[j]) else { throw CommandError.notFloat }
            pairs.append((s, c.args[j + 1]))
            j += 2
        }
        var changedCount: Int64 = 0
        let change = try changeCollection(c, .zset, create: !xx) { u, meta -> (added: Int64, score: Double?) in
            guard var m = meta else { return (0, nil) }
            var added: Int64 = 0
            var last: Double?
            for (s, member) in pairs {
                let old = try zscore(u, 0, m, member)
                var score = s
                if let old {
                    if nx { last = nil; continue }
                    if incr {
                        score = old + s  // a stored score is never -0
                        if score.isNaN { throw CommandError("ERR resulting score is not a number (NaN)") }
                    }
                    if (gt && score <= old) || (lt && score >= old) { last = nil; continue }
                    if score != old { changedCount += 1 }
                } else {
                    if xx { last = nil; continue }
                    added += 1
                }
                zput(u, 0, &m, member, score, old: old)
                last = score
            }
            meta = m
            return (added, last)
        }
        if change.created { notify(c, .new, "new", c.args[1]) }
        if change.result.added + changedCount > 0 { notify(c, .zset, incr ? "zincr" : "zadd", c.args[1]) }
        if incr { return change.result.score.map { scoreReply(c, $0) } ?? .nullBulk }
        return .integer(change.result.added + (ch ? changedCount : 0))
    }

    /// ZRANK/ZREVRANK.
    static func zrank(_ c: CommandCall, reverse: Bool) throws -> RESPValue {
        let member = c.args[2]
        let rank = try readCollection(c, .zset) { u, meta -> Int64? in
            guard let m = meta, let s = try zscore(u, 0, m, member) else { return nil }
            var n: Int64 = 0
            var found = false
            let target = CollectionLayout.scoreBytes(s) + member
            try u.scanElements(0, m, kind: CollectionLayout.scoreKind, reverse: reverse) { sub, _ in
                if sub.elementsEqual(target) {
                    found = true
                    return false
                }
                n += 1
                return true
            }
            return found ? n : nil
        }
        return rank.map { .integer($0) } ?? .nullBulk
    }

    /// Pops up to `count` members with the lowest (or, `max`, highest) scores.
    static func zpopItems(_ u: KeyedUpdate, _ i: Int, _ m: inout CollectionMeta, max: Bool, count: Int) throws -> [([UInt8], Double)] {
        var out: [([UInt8], Double)] = []
        if count <= 0 { return out }
        try u.scanElements(i, m, kind: CollectionLayout.scoreKind, reverse: max) { sub, _ in
            out.append((Array(sub[8...]), CollectionLayout.score(ofOrdered: sub)))
            return out.count < count
        }
        for (member, s) in out { zdel(u, i, &m, member, s) }
        // Nothing lives beyond the last entry popped: later walks start there.
        if let (member, s) = out.last {
            if max { m.ceiling = CollectionLayout.scoreBytes(s) + member } else { m.floor = CollectionLayout.scoreBytes(s) + member }
        }
        return out
    }

    /// ZPOPMIN/ZPOPMAX `key [count]`.
    static func zpop(_ c: CommandCall, max: Bool) throws -> RESPValue {
        if c.argc > 3 { throw CommandError.syntax }
        let count = c.argc == 3 ? try positiveCount(c.args[2]) : 1
        let change = try changeCollection(c, .zset, create: false) { u, meta -> [([UInt8], Double)] in
            guard var m = meta else { return [] }
            let popped = try zpopItems(u, 0, &m, max: max, count: count)
            meta = m
            return popped
        }
        if !change.result.isEmpty { notify(c, .zset, max ? "zpopmax" : "zpopmin", c.args[1]) }
        if change.deleted { notify(c, .generic, "del", c.args[1]) }
        if c.resp3 && c.argc == 3 { return .array(change.result.map { .array([.bulk($0.0), scoreReply(c, $0.1)]) }) }
        var out: [RESPValue] = []
        for (member, s) in change.result {
            out.append(.bulk(member))
            out.append(scoreReply(c, s))
        }
        return .array(out)
    }

    /// Pops from the first of `keys` holding a sorted set; nil when none does.
    static func zpopFirst(_ store: ShardedStore, _ keys: [[UInt8]], max: Bool, count: Int) throws -> (([UInt8], [([UInt8], Double)])?, [Event]) {
        let distinct = DistinctKeys.of(keys).distinct
        var events: [Event] = []
        let popped = try store.update(distinct) { u -> ([UInt8], [([UInt8], Double)])? in
            for (i, k) in distinct.enumerated() {
                guard var m = try u.collection(i, .zset) else { continue }
                let items = try zpopItems(u, i, &m, max: max, count: count)
                u.setCollection(i, m)
                events.append((.zset, max ? "zpopmax" : "zpopmin", k))
                if m.count == 0 { events.append((.generic, "del", k)) }
                return (k, items)
            }
            return nil
        }
        return (popped, events)
    }

    /// BZPOPMIN/BZPOPMAX `key [key ...] timeout`.
    static func bzpop(_ c: inout CommandCall, max: Bool) throws -> RESPValue {
        let timeout = try blockTimeout(c.args[c.argc - 1], now: c.store.now)
        let keys = Array(c.args[1..<(c.argc - 1)])
        let store = c.store, resp3 = c.resp3
        return try park(&c, keys: keys, timeout: timeout, timeoutReply: .array(nil)) { ready in
            let (popped, events) = try zpopFirst(store, ready.map { [$0] } ?? keys, max: max, count: 1)
            guard let (key, pairs) = popped, let (member, s) = pairs.first else { return nil }
            return (.array([.bulk(key), .bulk(member), scoreValue(resp3, s)]), events)
        }
    }

    /// `ZRANDMEMBER key [count [WITHSCORES]]`.
    static func zrandmember(_ c: CommandCall) throws -> RESPValue {
        if c.argc > 4 || (c.argc == 4 && !RedisText.eq(c.args[3], "withscores")) { throw CommandError.syntax }
        guard c.argc >= 3 else {
            let pick = try readCollection(c, .zset) { u, meta in try meta.flatMap { try randomElements(u, 0, $0, count: 1, distinct: true).first } }
            return pick.map { .bulk($0.sub) } ?? .nullBulk
        }
        let (count, distinct) = try randomCount(c.args[2])
        let withScores = c.argc == 4
        if withScores && count > Int.max / 2 { throw CommandError("ERR value is out of range") }
        let picks = try readCollection(c, .zset) { u, meta in try meta.map { try randomElements(u, 0, $0, count: count, distinct: distinct) } ?? [] }
        if !withScores { return .array(picks.map { .bulk($0.sub) }) }
        let scored = picks.map { ($0.sub, $0.value.withUnsafeBytes { CollectionLayout.score(ofValue: $0) } ?? 0) }
        if c.resp3 { return .array(scored.map { .array([.bulk($0.0), scoreReply(c, $0.1)]) }) }
        var out: [RESPValue] = []
        for (member, s) in scored {
            out.append(.bulk(member))
            out.append(scoreReply(c, s))
        }
        return .array(out)
    }
}
