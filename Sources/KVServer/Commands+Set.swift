import KVProtocol
import KVStore

/// Sets: one element record per member (`CollectionLayout`), with an empty value.
extension Commands {
    static let setCommands: [CommandSpec] = [
        CommandSpec("sadd", -3, ["write", "denyoom", "fast"], keys: (1, 1, 1)) { c in
            let change = try changeCollection(c, .set, create: true) { u, meta -> Int64 in
                var added: Int64 = 0
                for m in c.args.dropFirst(2) where try u.element(0, meta!, m) == nil {
                    u.putElement(0, meta!, m, [])
                    meta!.count += 1
                    added += 1
                }
                return added
            }
            if change.created { notify(c, .new, "new", c.args[1]) }
            if change.result > 0 { notify(c, .set, "sadd", c.args[1]) }
            return .integer(change.result)
        },
        CommandSpec("srem", -3, ["write", "fast"], keys: (1, 1, 1)) { c in try removeElements(c, .set, event: "srem", .set) },
        CommandSpec("scard", 2, ["readonly", "fast"], keys: (1, 1, 1)) { c in
            .integer(try readCollection(c, .set) { _, meta in meta?.count ?? 0 })
        },
        CommandSpec("sismember", 3, ["readonly", "fast"], keys: (1, 1, 1)) { c in
            try readCollection(c, .set) { u, meta in try meta.flatMap { try u.element(0, $0, c.args[2]) } } != nil ? .one : .zero
        },
        CommandSpec("smismember", -3, ["readonly", "fast"], keys: (1, 1, 1)) { c in
            .array(try readCollection(c, .set) { u, meta in
                try c.args.dropFirst(2).map { m -> RESPValue in try meta.flatMap { try u.element(0, $0, m) } != nil ? .one : .zero }
            })
        },
        CommandSpec("smembers", 2, ["readonly"], keys: (1, 1, 1)) { c in
            let all = try readCollection(c, .set) { u, meta in try meta.map { try allElements(u, 0, $0) } ?? [] }
            return setReply(c, all.map(\.sub))
        },
        CommandSpec("spop", -2, ["write", "fast"], keys: (1, 1, 1)) { c in try spop(c) },
        CommandSpec("srandmember", -2, ["readonly"], keys: (1, 1, 1)) { c in
            if c.argc > 3 { throw CommandError.syntax }
            guard c.argc == 3 else {
                let pick = try readCollection(c, .set) { u, meta in
                    try meta.flatMap { try randomElements(u, 0, $0, count: 1, distinct: true).first }
                }
                return pick.map { .bulk($0.sub) } ?? .nullBulk
            }
            let (count, distinct) = try randomCount(c.args[2])
            let picks = try readCollection(c, .set) { u, meta in
                try meta.map { try randomElements(u, 0, $0, count: count, distinct: distinct) } ?? []
            }
            return .array(picks.map { .bulk($0.sub) })
        },
        CommandSpec("smove", 4, ["write", "fast"], keys: (1, 2, 1)) { c in try smove(c) },
        CommandSpec("sinter", -2, ["readonly"], keys: (1, -1, 1)) { c in
            setReply(c, try setAlgebra(c, .inter, keys: Array(c.args.dropFirst()), store: nil))
        },
        CommandSpec("sunion", -2, ["readonly"], keys: (1, -1, 1)) { c in
            setReply(c, try setAlgebra(c, .union, keys: Array(c.args.dropFirst()), store: nil))
        },
        CommandSpec("sdiff", -2, ["readonly"], keys: (1, -1, 1)) { c in
            setReply(c, try setAlgebra(c, .diff, keys: Array(c.args.dropFirst()), store: nil))
        },
        CommandSpec("sinterstore", -3, ["write", "denyoom"], keys: (1, -1, 1)) { c in
            .integer(Int64(try setAlgebra(c, .inter, keys: Array(c.args.dropFirst(2)), store: c.args[1]).count))
        },
        CommandSpec("sunionstore", -3, ["write", "denyoom"], keys: (1, -1, 1)) { c in
            .integer(Int64(try setAlgebra(c, .union, keys: Array(c.args.dropFirst(2)), store: c.args[1]).count))
        },
        CommandSpec("sdiffstore", -3, ["write", "denyoom"], keys: (1, -1, 1)) { c in
            .integer(Int64(try setAlgebra(c, .diff, keys: Array(c.args.dropFirst(2)), store: c.args[1]).count))
        },
        CommandSpec("sintercard", -3, ["readonly"], movableKeys: CommandSpec.numkeys(at: 1)) { c in try sintercard(c) },
        CommandSpec("sscan", -3, ["readonly"], keys: (1, 1, 1)) { c in
            var out: [RESPValue] = []
            let next = try scanCollection(c, .set) { m, _ in out.append(.bulk(Array(m))) }
            return .array([.bulk(String(next)), .array(out)])
        },
    ]

    /// A reply of set members: a RESP3 set, a RESP2 array.
    static func setReply(_ c: CommandCall, _ members: [[UInt8]]) -> RESPValue {
        let values = members.map { RESPValue.bulk($0) }
        return c.resp3 ? .set(values) : .array(values)
    }

    /// `SPOP key [count]`.
    static func spop(_ c: CommandCall) throws -> RESPValue {
        if c.argc > 3 { throw CommandError.syntax }
        let count = c.argc == 3 ? try positiveCount(c.args[2]) : 1
        let change = try changeCollection(c, .set, create: false) { u, meta -> [[UInt8]]? in
            guard meta != nil else { return nil }
            let picks = try randomElements(u, 0, meta!, count: count, distinct: true)
            for p in picks { u.deleteElement(0, meta!, p.sub) }
            meta!.count -= Int64(picks.count)
            return picks.map(\.sub)
        }
        let popped = change.result ?? []
        if !popped.isEmpty { notify(c, .set, "spop", c.args[1]) }
        if change.deleted { notify(c, .generic, "del", c.args[1]) }
        if c.argc == 2 { return popped.first.map { .bulk($0) } ?? .nullBulk }
        return setReply(c, popped)
    }

    /// `SMOVE source destination member`.
    static func smove(_ c: CommandCall) throws -> RESPValue {
        let src = c.args[1], dst = c.args[2], member = c.args[3]
        var events: [(KeyspaceEventFlags, String, [UInt8])] = []
        let keys = src == dst ? [src] : [src, dst]
        let moved = try c.store.update(keys) { u -> Bool in
            guard var from = try u.collection(0, .set) else { return false }
            let d = keys.count - 1
            var to = try u.collection(d, .set)
            if src == dst { return try u.element(0, from, member) != nil }
            guard try u.element(0, from, member) != nil else { return false }
            u.deleteElement(0, from, member)
            from.count -= 1
            u.setCollection(0, from)
            events.append((.set, "srem", src))
            if from.count == 0 { events.append((.generic, "del", src)) }
            if to == nil {
                to = u.newCollection(d, .set)
                events.append((.new, "new", dst))
            }
            if try u.element(d, to!, member) == nil {
                u.putElement(d, to!, member, [])
                to!.count += 1
                u.setCollection(d, to!)
                events.append((.set, "sadd", dst))
            }
            return true
        }
        for (t, e, k) in events { notify(c, t, e, k) }
        return moved ? .one : .zero
    }

    enum SetOperation { case inter, union, diff }

    /// SINTER/SUNION/SDIFF over `keys` (missing keys are empty sets; any key of another type
    /// is `-WRONGTYPE`), and with `store` the STORE form: the result replaces `store` (an
    /// empty result deletes it). Returns the members in member order.
    static func setAlgebra(_ c: CommandCall, _ op: SetOperation, keys: [[UInt8]], store: [UInt8]?) throws -> [[UInt8]] {
        // Positions of `keys` among the distinct keys, then of `store` (last) when given.
        let (distinct, positions) = DistinctKeys.of(keys + (store.map { [$0] } ?? []))
        var event: String?
        let result = try c.store.update(distinct) { u -> [[UInt8]] in
            var metas: [CollectionMeta?] = []
            for i in keys.indices { metas.append(try u.collection(positions[i], .set)) }
            let result = try combine(u, op, Array(positions.prefix(keys.count)), metas)
            guard store != nil else { return result }
            let d = positions[keys.count]
            if result.isEmpty {
                if u.rows[d] != nil {
                    u.setRow(d, nil)
                    event = "del"
                }
                return result
            }
            var m = u.newCollection(d, .set)
            for member in result { u.putElement(d, m, member, []) }
            m.count = Int64(result.count)
            u.setRow(d, StoredEntry(value: m.encoded, type: .set))
            event = op == .inter ? "sinterstore" : op == .union ? "sunionstore" : "sdiffstore"
            return result
        }
        if let store, let event { notify(c, event == "del" ? .generic : .set, event, store) }
        return result
    }

    /// The members of the set operation over key indexes `at` whose metadata is `metas`.
    static func combine(_ u: KeyedUpdate, _ op: SetOperation, _ at: [Int], _ metas: [CollectionMeta?]) throws -> [[UInt8]] {
        switch op {
        case .inter:
            if metas.contains(where: { $0 == nil }) { return [] }
            // Walk the smallest set, probe the others.
            let order = metas.indices.sorted { metas[$0]!.count < metas[$1]!.count }
            var out: [[UInt8]] = []
            try u.scanElements(at[order[0]], metas[order[0]]!) { sub, _ in
                let m = Array(sub)
                for j in order.dropFirst() where try u.element(at[j], metas[j]!, m) == nil { return true }
                out.append(m)
                return true
            }
            return out
        case .union:
            var all = Set<[UInt8]>()
            for (j, m) in metas.enumerated() {
                guard let m else { continue }
                try u.scanElements(at[j], m) { sub, _ in all.insert(Array(sub)); return true }
            }
            return all.sorted { $0.lexicographicallyPrecedes($1) }
        case .diff:
            guard let first = metas[0] else { return [] }
            var out: [[UInt8]] = []
            try u.scanElements(at[0], first) { sub, _ in
                let m = Array(sub)
                for j in metas.indices.dropFirst() {
                    if let mj = metas[j], try u.element(at[j], mj, m) != nil { return true }
                }
                out.append(m)
                return true
            }
            return out
        }
    }

    /// `SINTERCARD numkeys key [key ...] [LIMIT limit]`.
    static func sintercard(_ c: CommandCall) throws -> RESPValue {
        guard let n = RedisText.parseInt(c.args[1]), n > 0 else { throw CommandError("ERR numkeys should be greater than 0") }
        if n > Int64(c.argc - 2) { throw CommandError("ERR Number of keys can't be greater than number of args") }
        let keys = Array(c.args[2..<(2 + Int(n))])
        var limit = 0
        var j = 2 + Int(n)
        while j < c.argc {
            if RedisText.eq(c.args[j], "limit") && j + 1 < c.argc {
                guard let l = RedisText.parseInt(c.args[j + 1]), l >= 0 else { throw CommandError("ERR LIMIT can't be negative") }
                limit = Int(min(l, Int64(Int.max)))
                j += 2
            } else {
                throw CommandError.syntax
            }
        }
        let members = try setAlgebra(c, .inter, keys: keys, store: nil)
        return .integer(Int64(limit > 0 ? min(limit, members.count) : members.count))
    }
}
