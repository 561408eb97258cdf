import KVProtocol
import KVStore

/// Lists: items at positions `head ..< tail` of their metadata (`CollectionLayout`), one
/// element record per item keyed by its position. Pushes and pops at either end touch one
/// record; LINSERT and LREM shift the items on one side (O(N), as in Redis).
extension Commands {
    enum ListEnd {
        case left, right

        init(_ arg: [UInt8]) throws {
            if RedisText.eq(arg, "left") { self = .left } else if RedisText.eq(arg, "right") { self = .right } else { throw CommandError.syntax }
        }

        var pushEvent: String { self == .left ? "lpush" : "rpush" }
        var popEvent: String { self == .left ? "lpop" : "rpop" }
    }

    /// A keyspace event a list or blocking operation raises, published after it committed.
    typealias Event = (type: KeyspaceEventFlags, name: String, key: [UInt8])

    static let listCommands: [CommandSpec] = [
        CommandSpec("lpush", -3, ["write", "denyoom", "fast"], keys: (1, 1, 1)) { c in try push(c, .left, onlyExisting: false) },
        CommandSpec("rpush", -3, ["write", "denyoom", "fast"], keys: (1, 1, 1)) { c in try push(c, .right, onlyExisting: false) },
        CommandSpec("lpushx", -3, ["write", "denyoom", "fast"], keys: (1, 1, 1)) { c in try push(c, .left, onlyExisting: true) },
        CommandSpec("rpushx", -3, ["write", "denyoom", "fast"], keys: (1, 1, 1)) { c in try push(c, .right, onlyExisting: true) },
        CommandSpec("lpop", -2, ["write", "fast"], keys: (1, 1, 1)) { c in try pop(c, .left) },
        CommandSpec("rpop", -2, ["write", "fast"], keys: (1, 1, 1)) { c in try pop(c, .right) },
        CommandSpec("llen", 2, ["readonly", "fast"], keys: (1, 1, 1)) { c in
            .integer(try readCollection(c, .list) { _, meta in meta?.count ?? 0 })
        },
        CommandSpec("lrange", 4, ["readonly"], keys: (1, 1, 1)) { c in
            let start = try RedisText.int(c.args[2]), stop = try RedisText.int(c.args[3])
            return .array(try readCollection(c, .list) { u, meta -> [RESPValue] in
                guard let meta, let (from, to) = listRange(meta, start, stop) else { return [] }
                return try listItems(u, 0, meta, from, to).map { .bulk($0) }
            })
        },
        CommandSpec("lindex", 3, ["readonly"], keys: (1, 1, 1)) { c in
            // Redis's order: the key (absent: nil; another type: WRONGTYPE), then the index.
            try readCollection(c, .list) { u, meta -> RESPValue in
                guard let meta else { return .nullBulk }
                guard let p = listPosition(meta, try RedisText.int(c.args[2])) else { return .nullBulk }
                return try u.element(0, meta, CollectionLayout.positionBytes(p)).map { .bulk($0) } ?? .nullBulk
            }
        },
        CommandSpec("lset", 4, ["write", "denyoom"], keys: (1, 1, 1)) { c in
            let item = c.args[3]
            _ = try changeCollection(c, .list, create: false) { u, meta in
                // Redis's order: the key (absent: no such key; another type: WRONGTYPE), then
                // the index.
                guard let m = meta else { throw CommandError.noSuchKey }
                guard let p = listPosition(m, try RedisText.int(c.args[2])) else { throw CommandError("ERR index out of range") }
                u.putElement(0, m, CollectionLayout.positionBytes(p), item)
            }
            notify(c, .list, "lset", c.args[1])
            return .ok
        },
        CommandSpec("linsert", 5, ["write", "denyoom"], keys: (1, 1, 1)) { c in
            let before: Bool
            if RedisText.eq(c.args[2], "before") { before = true } else if RedisText.eq(c.args[2], "after") { before = false } else {
                throw CommandError.syntax
            }
            let pivot = c.args[3], item = c.args[4]
            let change = try changeCollection(c, .list, create: false) { u, meta -> Int64 in
                guard var m = meta else { return 0 }
                var found: Int64?
                var i: Int64 = 0
                try u.scanElements(0, m) { _, value in
                    if value.elementsEqual(pivot) {
                        found = i
                        return false
                    }
                    i += 1
                    return true
                }
                guard let at = found else { return -1 }
                try insertItem(u, 0, &m, at: before ? at : at + 1, item)
                meta = m
                return m.count
            }
            if change.result > 0 { notify(c, .list, "linsert", c.args[1]) }
            return .integer(change.result)
        },
        CommandSpec("lrem", 4, ["write"], keys: (1, 1, 1)) { c in
            let count = try RedisText.int(c.args[2])
            let item = c.args[3]
            let change = try changeCollection(c, .list, create: false) { u, meta -> Int64 in
                guard var m = meta else { return 0 }
                let items = try listItems(u, 0, m, m.head, m.tail)
                var remove = Set<Int>()
                let limit = count == 0 ? Int.max : Int(min(count.magnitude, UInt64(Int.max)))
                for j in (count >= 0 ? Array(items.indices) : items.indices.reversed()) where items[j] == item {
                    remove.insert(j)
                    if remove.count >= limit { break }
                }
                guard let first = remove.min() else { return 0 }
                let keep = items.indices.filter { !remove.contains($0) && $0 >= first }
                for j in first..<items.count { u.deleteElement(0, m, CollectionLayout.positionBytes(m.head + Int64(j))) }
                for (n, j) in keep.enumerated() {
                    u.putElement(0, m, CollectionLayout.positionBytes(m.head + Int64(first + n)), items[j])
                }
                m.tail = m.head + Int64(first + keep.count)
                m.count = m.tail - m.head
                meta = m
                return Int64(remove.count)
            }
            if change.result > 0 { notify(c, .list, "lrem", c.args[1]) }
            if change.deleted { notify(c, .generic, "del", c.args[1]) }
            return .integer(change.result)
        },
        CommandSpec("ltrim", 4, ["write"], keys: (1, 1, 1)) { c in
            let start = try RedisText.int(c.args[2]), stop = try RedisText.int(c.args[3])
            let change = try changeCollection(c, .list, create: false) { u, meta -> Bool in
                guard var m = meta else { return false }
                if let (from, to) = listRange(m, start, stop) {
                    for p in m.head..<from { u.deleteElement(0, m, CollectionLayout.positionBytes(p)) }
                    for p in to..<m.tail { u.deleteElement(0, m, CollectionLayout.positionBytes(p)) }
                    if from == m.head && to == m.tail {
                        // Nothing trimmed: the item is written again so the metadata is too
                        // (WATCH sees an LTRIM, as in Redis).
                        let p = CollectionLayout.positionBytes(m.head)
                        u.putElement(0, m, p, try u.element(0, m, p) ?? [])
                    }
                    m.head = from
                    m.tail = to
                } else {
                    // Everything goes: the key is deleted; its items are left to compaction.
                    u.deleteElement(0, m, CollectionLayout.positionBytes(m.head))
                    m.tail = m.head
                }
                m.count = m.tail - m.head
                meta = m
                return true
            }
            if change.result { notify(c, .list, "ltrim", c.args[1]) }
            if change.deleted { notify(c, .generic, "del", c.args[1]) }
            return .ok
        },
        CommandSpec("lpos", -3, ["readonly"], keys: (1, 1, 1)) { c in try lpos(c) },
        CommandSpec("lmove", 5, ["write", "denyoom"], keys: (1, 2, 1)) { c in
            let from = try ListEnd(c.args[3]), to = try ListEnd(c.args[4])
            let (moved, events) = try moveItem(c.store, c.args[1], c.args[2], from, to)
            publish(c, events)
            return moved.map { .bulk($0) } ?? .nullBulk
        },
        CommandSpec("rpoplpush", 3, ["write", "denyoom"], keys: (1, 2, 1)) { c in
            let (moved, events) = try moveItem(c.store, c.args[1], c.args[2], .right, .left)
            publish(c, events)
            return moved.map { .bulk($0) } ?? .nullBulk
        },
        CommandSpec("lmpop", -4, ["write"], movableKeys: CommandSpec.numkeys(at: 1)) { c in
            let (keys, end, count) = try listMpopArguments(c.args, at: 1)
            let (popped, events) = try popFirst(c.store, keys, end, count: count)
            publish(c, events)
            guard let (key, items) = popped else { return .array(nil) }
            return .array([.bulk(key), .array(items.map { .bulk($0) })])
        },
    ]

    /// Publishes events an operation collected.
    static func publish(_ c: CommandCall, _ events: [Event]) {
        for e in events { notify(c, e.type, e.name, e.key) }
    }

    /// The position of list index `index` (negative: from the end), or nil out of range.
    static func listPosition(_ m: CollectionMeta, _ index: Int64) -> Int64? {
        if index >= 0 { return index < m.count ? m.head + index : nil }
        return index >= -m.count ? m.tail + index : nil
    }

    /// The positions `from ..< to` of Redis's `start stop` range (LRANGE, LTRIM), or nil when
    /// it is empty.
    static func listRange(_ m: CollectionMeta, _ start: Int64, _ stop: Int64) -> (Int64, Int64)? {
        let n = m.count
        var s = start < 0 ? (start < -n ? 0 : n + start) : start
        var e = stop < 0 ? (stop < -n ? -1 : n + stop) : stop
        if s < 0 { s = 0 }
        if e >= n { e = n - 1 }
        if s > e || s >= n { return nil }
        return (m.head + s, m.head + e + 1)
    }

    /// The items at positions `from ..< to`.
    static func listItems(_ u: KeyedUpdate, _ i: Int, _ m: CollectionMeta, _ from: Int64, _ to: Int64) throws -> [[UInt8]] {
        var out: [[UInt8]] = []
        out.reserveCapacity(Int(min(to - from, 1 << 20)))
        try u.scanElements(i, m, from: CollectionLayout.positionBytes(from), to: CollectionLayout.positionBytes(to)) { _, value in
            out.append(Array(value))
            return true
        }
        return out
    }

    /// Pushes `items` one by one at `end` of key `i`'s list.
    static func pushItems(_ u: KeyedUpdate, _ i: Int, _ m: inout CollectionMeta, _ end: ListEnd, _ items: some Sequence<[UInt8]>) {
        for item in items {
            if end == .left {
                m.head -= 1
                u.putElement(i, m, CollectionLayout.positionBytes(m.head), item)
            } else {
                u.putElement(i, m, CollectionLayout.positionBytes(m.tail), item)
                m.tail += 1
            }
        }
        m.count = m.tail - m.head
    }

    /// Pops up to `count` items from `end` of key `i`'s list, in pop order.
    static func popItems(_ u: KeyedUpdate, _ i: Int, _ m: inout CollectionMeta, _ end: ListEnd, count: Int) throws -> [[UInt8]] {
        let n = Int64(min(Int64(count), m.count))
        if n <= 0 { return [] }
        let from = end == .left ? m.head : m.tail - n
        var items = try listItems(u, i, m, from, from + n)
        for p in from..<(from + n) { u.deleteElement(i, m, CollectionLayout.positionBytes(p)) }
        if end == .left { m.head += n } else {
            m.tail -= n
            items.reverse()
        }
        m.count = m.tail - m.head
        return items
    }

    /// Inserts `item` so that it becomes index `at` (0 ... count), shifting the shorter side.
    static func insertItem(_ u: KeyedUpdate, _ i: Int, _ m: inout CollectionMeta, at: Int64, _ item: [UInt8]) throws {
        if at <= m.count / 2 {
            let moving = try listItems(u, i, m, m.head, m.head + at)
            for (j, v) in moving.enumerated() { u.putElement(i, m, CollectionLayout.positionBytes(m.head - 1 + Int64(j)), v) }
            m.head -= 1
        } else {
            let moving = try listItems(u, i, m, m.head + at, m.tail)
            for (j, v) in moving.enumerated() { u.putElement(i, m, CollectionLayout.positionBytes(m.head + at + 1 + Int64(j)), v) }
            m.tail += 1
        }
        u.putElement(i, m, CollectionLayout.positionBytes(m.head + at), item)
        m.count = m.tail - m.head
    }

    /// LPUSH/RPUSH (and the X forms: only onto an existing list).
    static func push(_ c: CommandCall, _ end: ListEnd, onlyExisting: Bool) throws -> RESPValue {
        let change = try changeCollection(c, .list, create: !onlyExisting) { u, meta -> Int64 in
            guard var m = meta else { return 0 }
            pushItems(u, 0, &m, end, c.args.dropFirst(2))
            meta = m
            return m.count
        }
        if change.created { notify(c, .new, "new", c.args[1]) }
        if change.result > 0 { notify(c, .list, end.pushEvent, c.args[1]) }
        return .integer(change.result)
    }

    /// LPOP/RPOP `key [count]`.
    static func pop(_ c: CommandCall, _ end: ListEnd) throws -> RESPValue {
        if c.argc > 3 { throw CommandError.wrongArity(c.name) }
        let count = c.argc == 3 ? try positiveCount(c.args[2]) : 1
        let change = try changeCollection(c, .list, create: false) { u, meta -> [[UInt8]]? in
            guard var m = meta else { return nil }
            let items = try popItems(u, 0, &m, end, count: count)
            meta = m
            return items
        }
        guard let items = change.result else { return c.argc == 3 ? .array(nil) : .nullBulk }
        if !items.isEmpty { notify(c, .list, end.popEvent, c.args[1]) }
        if change.deleted { notify(c, .generic, "del", c.args[1]) }
        if c.argc == 3 { return .array(items.map { .bulk($0) }) }
        return items.first.map { .bulk($0) } ?? .nullBulk
    }

    /// LMOVE: pops an item from `from` of `src` and pushes it at `to` of `dst` (one list:
    /// a rotation). Nil when `src` is absent.
    static func moveItem(_ store: ShardedStore, _ src: [UInt8], _ dst: [UInt8], _ from: ListEnd, _ to: ListEnd) throws -> ([UInt8]?, [Event]) {
        var events: [Event] = []
        let keys = src == dst ? [src] : [src, dst]
        let item = try store.update(keys) { u -> [UInt8]? in
            guard var s = try u.collection(0, .list) else { return nil }
            let d = keys.count - 1
            var target = d == 0 ? nil : try u.collection(d, .list)
            guard let item = try popItems(u, 0, &s, from, count: 1).first else { return nil }
            // Redis's event order: the destination's (new, push), then the source's (pop, del).
            if d == 0 {
                pushItems(u, 0, &s, to, [item])
                u.setCollection(0, s)
                events.append((.list, to.pushEvent, dst))
                events.append((.list, from.popEvent, src))
            } else {
                u.setCollection(0, s)
                if target == nil {
                    target = u.newCollection(d, .list)
                    events.append((.new, "new", dst))
                }
                pushItems(u, d, &target!, to, [item])
                u.setCollection(d, target!)
                events.append((.list, to.pushEvent, dst))
                events.append((.list, from.popEvent, src))
                if s.count == 0 { events.append((.generic, "del", src)) }
            }
            return item
        }
        return (item, events)
    }

    /// `numkeys key ... WHERE [COUNT count]` from argument `at` (LMPOP, BLMPOP with LEFT|RIGHT;
    /// ZMPOP, BZMPOP with MIN|MAX): the keys, whether WHERE is the second word, the count.
    static func mpopArguments(_ args: [[UInt8]], at: Int, words: (StaticString, StaticString)) throws -> ([[UInt8]], Bool, Int) {
        guard let n = RedisText.parseInt(args[at]), n > 0 else { throw CommandError("ERR numkeys should be greater than 0") }
        if n > Int64(args.count - at - 1) { throw CommandError("ERR Number of keys can't be greater than number of args") }
        let keys = Array(args[(at + 1)..<(at + 1 + Int(n))])
        var j = at + 1 + Int(n)
        guard j < args.count else { throw CommandError.syntax }
        let second: Bool
        if RedisText.eq(args[j], words.0) { second = false } else if RedisText.eq(args[j], words.1) { second = true } else { throw CommandError.syntax }
        j += 1
        var count = 1
        var sawCount = false
        while j < args.count {
            guard !sawCount, RedisText.eq(args[j], "count"), j + 1 < args.count else { throw CommandError.syntax }
            guard let c = RedisText.parseInt(args[j + 1]), c > 0 else { throw CommandError("ERR count should be greater than 0") }
            count = Int(min(c, Int64(Int.max)))
            sawCount = true
            j += 2
        }
        return (keys, second, count)
    }

    /// LMPOP's and BLMPOP's arguments from `at`.
    static func listMpopArguments(_ args: [[UInt8]], at: Int) throws -> ([[UInt8]], ListEnd, Int) {
        let (keys, right, count) = try mpopArguments(args, at: at, words: ("left", "right"))
        return (keys, right ? .right : .left, count)
    }

    /// Pops up to `count` items from `end` of the first of `keys` holding a list; nil when
    /// none does.
    static func popFirst(_ store: ShardedStore, _ keys: [[UInt8]], _ end: ListEnd, count: Int) throws -> (([UInt8], [[UInt8]])?, [Event]) {
        try popFirstDistinct(store, DistinctKeys.of(keys).distinct, end, count: count)
    }

    /// ``popFirst(_:_:_:count:)`` over distinct keys, tried in the order given.
    static func popFirstDistinct(_ store: ShardedStore, _ distinct: [[UInt8]], _ end: ListEnd, count: Int) throws -> (([UInt8], [[UInt8]])?, [Event]) {
        var events: [Event] = []
        let popped = try store.update(distinct) { u -> ([UInt8], [[UInt8]])? in
            for (i, k) in distinct.enumerated() {
                guard var m = try u.collection(i, .list) else { continue }
                let items = try popItems(u, i, &m, end, count: count)
                u.setCollection(i, m)
                events.append((.list, end.popEvent, k))
                if m.count == 0 { events.append((.generic, "del", k)) }
                return (k, items)
            }
            return nil
        }
        return (popped, events)
    }

    /// `LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]`.
    static func lpos(_ c: CommandCall) throws -> RESPValue {
        var rank: Int64 = 1, count: Int64?, maxlen: Int64 = 0
        var j = 3
        while j < c.argc {
            guard j + 1 < c.argc else { throw CommandError.syntax }
            let v = c.args[j + 1]
            if RedisText.eq(c.args[j], "rank") {
                rank = try RedisText.int(v)
                if rank == 0 {
                    throw CommandError("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list")
                }
            } else if RedisText.eq(c.args[j], "count") {
                guard let n = RedisText.parseInt(v), n >= 0 else { throw CommandError("ERR COUNT can't be negative") }
                count = n
            } else if RedisText.eq(c.args[j], "maxlen") {
                guard let n = RedisText.parseInt(v), n >= 0 else { throw CommandError("ERR MAXLEN can't be negative") }
                maxlen = n
            } else {
                throw CommandError.syntax
            }
            j += 2
        }
        let element = c.args[2]
        // Redis negates RANK in C: the most negative one stays negative, so it acts as -1 and
        // its COUNT test (`matches - rank + 1 >= count`) never stops the walk.
        let reverse = rank < 0
        let skip = rank == Int64.min ? 0 : rank.magnitude - 1
        let want = count.map { $0 == 0 || rank == Int64.min ? Int64.max : $0 } ?? 1
        let found = try readCollection(c, .list) { u, meta -> [Int64] in
            guard let m = meta else { return [] }
            var out: [Int64] = []
            var seen: UInt64 = 0
            var examined: Int64 = 0
            var index: Int64 = reverse ? m.count - 1 : 0
            try u.scanElements(0, m, reverse: reverse) { _, value in
                if maxlen > 0 && examined >= maxlen { return false }
                examined += 1
                if value.elementsEqual(element) {
                    if seen >= skip { out.append(index) } else { seen += 1 }
                }
                index += reverse ? -1 : 1
                return Int64(out.count) < want
            }
            return out
        }
        if count != nil { return .array(found.map { .integer($0) }) }
        return found.first.map { .integer($0) } ?? .nullBulk
    }
}
