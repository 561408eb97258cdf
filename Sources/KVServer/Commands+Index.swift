import KVProtocol
import KVStore

extension Commands {
    /// `IDX.*`: secondary indexes over JSON values (SPEC §4 "Indexes").
    static let indexCommands: [CommandSpec] = [
        CommandSpec("idx.create", -3, ["write", "denyoom"]) { c in
            let name = String(decoding: c.args[1], as: UTF8.self)
            let field = String(decoding: c.args[2], as: UTF8.self)
            var type = IndexType.string
            var prefix: [UInt8]?
            var source = IndexSource.json
            var j = 3
            while j < c.argc {
                if RedisText.eq(c.args[j], "type") && j + 1 < c.argc {
                    if RedisText.eq(c.args[j + 1], "string") {
                        type = .string
                    } else if RedisText.eq(c.args[j + 1], "number") {
                        type = .number
                    } else {
                        throw CommandError("ERR index TYPE must be STRING or NUMBER")
                    }
                    j += 2
                } else if RedisText.eq(c.args[j], "on") && j + 1 < c.argc {
                    if RedisText.eq(c.args[j + 1], "hash") {
                        source = .hash
                    } else if RedisText.eq(c.args[j + 1], "json") {
                        source = .json
                    } else {
                        throw CommandError("ERR index ON must be HASH or JSON")
                    }
                    j += 2
                } else if RedisText.eq(c.args[j], "prefix") && j + 1 < c.argc {
                    prefix = c.args[j + 1]
                    j += 2
                } else {
                    throw CommandError.syntax
                }
            }
            try indexCall { try c.store.createIndex(IndexDefinition(name: name, field: field, type: type, keyPrefix: prefix, source: source)) }
            return .ok
        },
        CommandSpec("idx.drop", 2, ["write"]) { c in
            let name = String(decoding: c.args[1], as: UTF8.self)
            try indexCall { try c.store.dropIndex(name) }
            return .ok
        },
        CommandSpec("idx.list", 1, ["readonly"]) { c in
            .array(c.store.indexes().map { .bulk($0.name) })
        },
        CommandSpec("idx.info", 2, ["readonly"]) { c in
            let name = String(decoding: c.args[1], as: UTF8.self)
            let info = try indexCall { try c.store.indexInfo(name) }
            let pairs: [(String, RESPValue)] = [
                ("name", .bulk(info.name)),
                ("field", .bulk(info.field)),
                ("type", .bulk(info.type.rawValue)),
                ("on", .bulk(info.definition.source.rawValue)),
                ("prefix", .bulk(info.keyPrefix ?? [])),
                ("state", .bulk(info.state.rawValue)),
                ("progress", .integer(Int64(info.progress))),
                ("entries", .integer(Int64(info.entries))),
                ("queries", .integer(Int64(info.queries))),
                ("average_result_size", .bulk(InfoReport.format2(info.averageResultSize))),
            ]
            if c.resp3 { return .map(pairs.map { .init(key: .bulk($0.0), value: $0.1) }) }
            return .array(pairs.flatMap { [RESPValue.bulk($0.0), $0.1] })
        },
        CommandSpec("idx.query", -4, ["readonly"]) { c in try indexQuery(c) },
    ]

    /// Runs an index call, turning engine errors into plain `-ERR <message>` replies.
    static func indexCall<R>(_ body: () throws -> R) throws -> R {
        do {
            return try body()
        } catch let e as KVError {
            switch e {
            case .invalidArgument(let m), .notFound(let m), .invalidState(let m):
                throw CommandError("ERR " + m)
            default:
                throw e
            }
        }
    }

    /// Parses a RANGE bound: a number, `-inf` or `+inf` (an open end).
    static func rangeBound(_ s: [UInt8]) throws -> Double? {
        if RedisText.eq(s, "-inf") || RedisText.eq(s, "+inf") || RedisText.eq(s, "inf") { return nil }
        guard let d = RedisText.parseDouble(s), d.isFinite else {
            throw CommandError("ERR min or max is not a float")
        }
        return d
    }

    static func indexQuery(_ c: CommandCall) throws -> RESPValue {
        let name = String(decoding: c.args[1], as: UTF8.self)
        let info = try indexCall { try c.store.indexInfo(name) }
        let query: IndexQuery
        var j: Int
        if RedisText.eq(c.args[2], "eq") {
            if info.type == .number {
                guard let d = RedisText.parseDouble(c.args[3]), d.isFinite else {
                    throw CommandError("ERR EQ value of a NUMBER index must be a number")
                }
                query = .equals(.number(d))
            } else {
                query = .equals(.string(c.args[3]))
            }
            j = 4
        } else if RedisText.eq(c.args[2], "prefix") {
            query = .prefix(c.args[3])
            j = 4
        } else if RedisText.eq(c.args[2], "range") {
            guard c.argc >= 5 else { throw CommandError.wrongArity("idx.query") }
            query = .range(lo: try rangeBound(c.args[3]), hi: try rangeBound(c.args[4]))
            j = 5
        } else {
            throw CommandError.syntax
        }
        var offset = 0
        var limit: Int?
        var withValues = false
        while j < c.argc {
            if RedisText.eq(c.args[j], "limit") && j + 2 < c.argc {
                let o = try RedisText.int(c.args[j + 1])
                let n = try RedisText.int(c.args[j + 2])
                if o < 0 || n < 0 { throw CommandError("ERR LIMIT offset and count must not be negative") }
                offset = Int(o)
                limit = Int(n)
                j += 3
            } else if RedisText.eq(c.args[j], "withvalues") {
                withValues = true
                j += 1
            } else {
                throw CommandError.syntax
            }
        }
        let hits = try indexCall { try c.store.query(index: name, query, offset: offset, limit: limit, withValues: withValues) }
        if withValues {
            return .array(hits.flatMap { [RESPValue.bulk($0.key), $0.value.map { .bulk($0) } ?? .nullBulk] })
        }
        return .array(hits.map { .bulk($0.key) })
    }
}
