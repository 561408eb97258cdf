import KVProtocol
import KVStore

/// Redis's `checkStringLength`: a string of `size + append` bytes is refused with Redis's
/// error when it passes `proto-max-bulk-len` (live) or the engine's value limit, or when the
/// sum overflows. Every size computed from client numbers goes through here first.
func checkStringLength(_ server: ServerState, _ size: Int64, _ append: Int64) throws(CommandError) {
    let limit = min(Int64(server.live.withLock { $0.limits.maxBulkLength }), Int64(KVLimits.maxValueSize))
    let (total, overflow) = size.addingReportingOverflow(append)
    if overflow || total > limit || total < size || total < append { throw CommandError.tooLarge }
}

/// SET/GETEX option flags, as Redis's `parseExtendedStringArgumentsOrReply` has them.
struct SetFlags: OptionSet {
    let rawValue: Int
    static let nx = SetFlags(rawValue: 1)
    static let xx = SetFlags(rawValue: 2)
    static let get = SetFlags(rawValue: 4)
    static let keepTTL = SetFlags(rawValue: 8)
    static let persist = SetFlags(rawValue: 16)
    static let ex = SetFlags(rawValue: 32)
    static let px = SetFlags(rawValue: 64)
    static let exat = SetFlags(rawValue: 128)
    static let pxat = SetFlags(rawValue: 256)
    static let anyExpire: SetFlags = [.ex, .px, .exat, .pxat]
}

extension Commands {
    static let stringCommands: [CommandSpec] = [
        CommandSpec("get", 2, ["readonly", "fast"], keys: (1, 1, 1)) { c in
            try bulkOrNull(c.server, try readString(c, c.args[1])?.value)
        },
        CommandSpec("set", -3, ["write", "denyoom"], keys: (1, 1, 1)) { c in try set(&c) },
        CommandSpec("setnx", 3, ["write", "denyoom", "fast"], keys: (1, 1, 1)) { c in
            let v = c.args[2]
            let reply = try c.store.modify([c.args[1]]) { rows -> RESPValue in
                if rows[0] != nil { return .zero }
                rows[0] = StoredEntry(value: v)
                return .one
            }
            if reply == .one {
                notify(c, .new, "new", c.args[1])
                notify(c, .string, "set", c.args[1])
            }
            return reply
        },
        CommandSpec("setex", 4, ["write", "denyoom"], keys: (1, 1, 1)) { c in
            let at = try expireMillis(c.args[2], unit: 1000, relative: true, now: c.store.now, command: "setex")
            try putNotifyingNew(c, c.args[1], c.args[3], expiresAt: at)
            notify(c, .string, "set", c.args[1])
            notify(c, .generic, "expire", c.args[1])
            return .ok
        },
        CommandSpec("psetex", 4, ["write", "denyoom"], keys: (1, 1, 1)) { c in
            let at = try expireMillis(c.args[2], unit: 1, relative: true, now: c.store.now, command: "psetex")
            try putNotifyingNew(c, c.args[1], c.args[3], expiresAt: at)
            notify(c, .string, "set", c.args[1])
            notify(c, .generic, "expire", c.args[1])
            return .ok
        },
        CommandSpec("getset", 3, ["write", "denyoom", "fast"], keys: (1, 1, 1)) { c in
            let v = c.args[2]
            let old = try c.store.modify([c.args[1]]) { rows -> [UInt8]? in
                let old = try stringRow(rows[0])?.value
                rows[0] = StoredEntry(value: v)
                return old
            }
            if old == nil { notify(c, .new, "new", c.args[1]) }
            notify(c, .string, "set", c.args[1])
            return try bulkOrNull(c.server, old)
        },
        CommandSpec("getdel", 2, ["write", "fast"], keys: (1, 1, 1)) { c in
            let old = try c.store.modify([c.args[1]]) { rows -> [UInt8]? in
                let old = try stringRow(rows[0])?.value
                rows[0] = nil
                return old
            }
            if old != nil { notify(c, .generic, "del", c.args[1]) }
            return try bulkOrNull(c.server, old)
        },
        CommandSpec("getex", -2, ["write", "fast"], keys: (1, 1, 1)) { c in try getex(&c) },
        CommandSpec("mget", -2, ["readonly", "fast"], keys: (1, -1, 1)) { c in
            let rows = try readConsistently(c.store, Array(c.args.dropFirst()))
            var out: [RESPValue] = []
            out.reserveCapacity(rows.count)
            for (i, row) in rows.enumerated() {
                if row == nil { notify(c, .keyMiss, "keymiss", c.args[i + 1]) }
                // Redis answers nil for a key holding another type.
                out.append(try bulkOrNull(c.server, row?.type == .string ? row?.value : nil))
            }
            return .array(out)
        },
        CommandSpec("mset", -3, ["write", "denyoom"], keys: (1, -1, 2)) { c in
            if c.argc % 2 == 0 { throw CommandError.wrongArity("mset") }
            let (keys, values) = pairs(c.args)
            var created: [Bool] = []
            try c.store.modify(keys) { rows in
                created = rows.map { $0 == nil }
                for i in rows.indices { rows[i] = StoredEntry(value: values[i]) }
            }
            for (i, k) in keys.enumerated() {
                // A key given twice is new only the first time.
                if created[i] && keys.firstIndex(of: k) == i { notify(c, .new, "new", k) }
                notify(c, .string, "set", k)
            }
            return .ok
        },
        CommandSpec("msetnx", -3, ["write", "denyoom"], keys: (1, -1, 2)) { c in
            if c.argc % 2 == 0 { throw CommandError.wrongArity("msetnx") }
            let (keys, values) = pairs(c.args)
            let reply = try c.store.modify(keys) { rows -> RESPValue in
                if rows.contains(where: { $0 != nil }) { return .zero }
                for i in rows.indices { rows[i] = StoredEntry(value: values[i]) }
                return .one
            }
            if reply == .one {
                for (i, k) in keys.enumerated() {
                    if keys.firstIndex(of: k) == i { notify(c, .new, "new", k) }
                    notify(c, .string, "set", k)
                }
            }
            return reply
        },
        CommandSpec("incr", 2, ["write", "denyoom", "fast"], keys: (1, 1, 1)) { c in try incrBy(&c, 1) },
        CommandSpec("decr", 2, ["write", "denyoom", "fast"], keys: (1, 1, 1)) { c in try incrBy(&c, -1) },
        CommandSpec("incrby", 3, ["write", "denyoom", "fast"], keys: (1, 1, 1)) { c in
            try incrBy(&c, try RedisText.int(c.args[2]))
        },
        CommandSpec("decrby", 3, ["write", "denyoom", "fast"], keys: (1, 1, 1)) { c in
            let n = try RedisText.int(c.args[2])
            if n == Int64.min { throw CommandError("ERR decrement would overflow") }
            return try incrBy(&c, -n)
        },
        CommandSpec("incrbyfloat", 3, ["write", "denyoom", "fast"], keys: (1, 1, 1)) { c in
            guard let incr = RedisText.parseLongDouble(c.args[2]) else { throw CommandError.notFloat }
            var created = false
            let text = try c.store.modify([c.args[1]]) { rows -> [UInt8] in
                created = rows[0] == nil
                var value: RedisText.LongDouble = 0
                if let row = try stringRow(rows[0]) {
                    guard let v = RedisText.parseLongDouble(row.value) else { throw CommandError.notFloat }
                    value = v
                }
                value += incr
                if value.isNaN || value.isInfinite { throw CommandError("ERR increment would produce NaN or Infinity") }
                let text = Array(RedisText.formatHuman(value).utf8)
                rows[0] = StoredEntry(value: text, expiresAt: rows[0]?.expiresAt)
                return text
            }
            if created { notify(c, .new, "new", c.args[1]) }
            notify(c, .string, "incrbyfloat", c.args[1])
            return .bulk(text)
        },
        CommandSpec("append", 3, ["write", "denyoom", "fast"], keys: (1, 1, 1)) { c in
            let suffix = c.args[2]
            let server = c.server
            var created = false
            let reply = try c.store.modify([c.args[1]]) { rows -> RESPValue in
                created = rows[0] == nil
                var row = try stringRow(rows[0]) ?? StoredEntry(value: [])
                try checkStringLength(server, Int64(row.value.count), Int64(suffix.count))
                row.value += suffix
                rows[0] = row
                return .integer(Int64(row.value.count))
            }
            if created { notify(c, .new, "new", c.args[1]) }
            notify(c, .string, "append", c.args[1])
            return reply
        },
        CommandSpec("strlen", 2, ["readonly", "fast"], keys: (1, 1, 1)) { c in
            .integer(Int64(try readString(c, c.args[1])?.value.count ?? 0))
        },
        CommandSpec("getrange", 4, ["readonly"], keys: (1, 1, 1)) { c in
            var start = try RedisText.int(c.args[2])
            var end = try RedisText.int(c.args[3])
            let value = try readString(c, c.args[1])?.value ?? []
            let n = Int64(value.count)
            if start < 0 && end < 0 && start > end { return .bulk([]) }
            if start < 0 { start = n + start }
            if end < 0 { end = n + end }
            if start < 0 { start = 0 }
            if end < 0 { end = 0 }
            if end >= n { end = n - 1 }
            if start > end || n == 0 { return .bulk([]) }
            return .bulk(Array(value[Int(start)...Int(end)]))
        },
        CommandSpec("substr", 4, ["readonly"], keys: (1, 1, 1)) { c in
            var call = c
            return try table["getrange"]!.handler(&call)
        },
        CommandSpec("setrange", 4, ["write", "denyoom"], keys: (1, 1, 1)) { c in
            let offset = try RedisText.int(c.args[2])
            if offset < 0 { throw CommandError.offsetOutOfRange }
            let patch = c.args[3]
            let server = c.server
            var changed = false, created = false
            let reply = try c.store.modify([c.args[1]]) { rows -> RESPValue in
                var row = try stringRow(rows[0]) ?? StoredEntry(value: [])
                if patch.isEmpty { return .integer(Int64(row.value.count)) }
                changed = true
                created = rows[0] == nil
                // Checked before any arithmetic: offset + length can overflow 64 bits.
                try checkStringLength(server, offset, Int64(patch.count))
                let o = Int(offset)
                if row.value.count < o + patch.count {
                    row.value.append(contentsOf: repeatElement(0, count: o + patch.count - row.value.count))
                }
                row.value.replaceSubrange(o..<(o + patch.count), with: patch)
                rows[0] = row
                return .integer(Int64(row.value.count))
            }
            if created { notify(c, .new, "new", c.args[1]) }
            if changed { notify(c, .string, "setrange", c.args[1]) }
            return reply
        },
    ]

    /// The live rows of `keys` (repeats allowed), read while holding their write locks, so a
    /// multi-key write (MSET, RENAME) is seen whole or not at all, as in Redis.
    static func readConsistently(_ store: ShardedStore, _ keys: [[UInt8]]) throws -> [StoredEntry?] {
        if keys.count == 1 { return [try store.getEntry(keys[0])] }
        let (distinct, positions) = DistinctKeys.of(keys)
        let rows = try store.modify(distinct) { rows in rows }
        return positions.map { rows[$0] }
    }

    /// A bulk reply of a read value, counting keyspace hits and misses.
    static func bulkOrNull(_ server: ServerState, _ value: [UInt8]?) throws -> RESPValue {
        if let value {
            server.counters.keyspaceHits.add()
            return .bulk(value)
        }
        server.counters.keyspaceMisses.add()
        return .nullBulk
    }

    /// The distinct keys of `k1 v1 k2 v2 ...` (from index 1) with their last values.
    static func pairs(_ args: [[UInt8]]) -> ([[UInt8]], [[UInt8]]) {
        var keys: [[UInt8]] = []
        var values: [[UInt8]] = []
        var index: [[UInt8]: Int] = [:]
        var i = 1
        while i + 1 < args.count {
            if let j = index[args[i]] {
                values[j] = args[i + 1]
            } else {
                index[args[i]] = keys.count
                keys.append(args[i])
                values.append(args[i + 1])
            }
            i += 2
        }
        return (keys, values)
    }

    /// Redis's `getExpireMillisecondsOrReply`: the absolute expiry time in ms.
    static func expireMillis(_ arg: [UInt8], unit: Int64, relative: Bool, now: Int64, command: String) throws -> Int64 {
        var ms = try RedisText.int(arg)
        if ms <= 0 || (unit == 1000 && ms > Int64.max / 1000) { throw CommandError.invalidExpire(command) }
        ms *= unit
        if relative { ms = ms &+ now }
        if ms <= 0 { throw CommandError.invalidExpire(command) }
        return ms
    }

    /// Parses SET/GETEX options from index 3 (SET) or 2 (GETEX).
    static func parseSetFlags(_ args: [[UInt8]], from start: Int, isSet: Bool) throws -> (SetFlags, [UInt8]?) {
        var flags: SetFlags = []
        var expire: [UInt8]?
        var j = start
        while j < args.count {
            let opt = args[j]
            let hasNext = j + 1 < args.count
            if isSet && RedisText.eq(opt, "nx") && !flags.contains(.xx) {
                flags.insert(.nx)
            } else if isSet && RedisText.eq(opt, "xx") && !flags.contains(.nx) {
                flags.insert(.xx)
            } else if isSet && RedisText.eq(opt, "get") {
                flags.insert(.get)
            } else if isSet && RedisText.eq(opt, "keepttl") && flags.isDisjoint(with: [.persist, .ex, .exat, .px, .pxat]) {
                flags.insert(.keepTTL)
            } else if !isSet && RedisText.eq(opt, "persist") && flags.isDisjoint(with: [.ex, .exat, .px, .pxat, .keepTTL]) {
                flags.insert(.persist)
            } else if RedisText.eq(opt, "ex") && flags.isDisjoint(with: [.keepTTL, .persist, .exat, .px, .pxat]) && hasNext {
                flags.insert(.ex)
                expire = args[j + 1]
                j += 1
            } else if RedisText.eq(opt, "px") && flags.isDisjoint(with: [.keepTTL, .persist, .ex, .exat, .pxat]) && hasNext {
                flags.insert(.px)
                expire = args[j + 1]
                j += 1
            } else if RedisText.eq(opt, "exat") && flags.isDisjoint(with: [.keepTTL, .persist, .ex, .px, .pxat]) && hasNext {
                flags.insert(.exat)
                expire = args[j + 1]
                j += 1
            } else if RedisText.eq(opt, "pxat") && flags.isDisjoint(with: [.keepTTL, .persist, .ex, .exat, .px]) && hasNext {
                flags.insert(.pxat)
                expire = args[j + 1]
                j += 1
            } else {
                throw CommandError.syntax
            }
            j += 1
        }
        return (flags, expire)
    }

    /// The absolute expiry time of parsed SET/GETEX flags.
    static func expireTime(_ flags: SetFlags, _ arg: [UInt8]?, now: Int64, command: String) throws -> Int64? {
        guard let arg else { return nil }
        let unit: Int64 = flags.contains(.ex) || flags.contains(.exat) ? 1000 : 1
        let relative = flags.contains(.ex) || flags.contains(.px)
        return try expireMillis(arg, unit: unit, relative: relative, now: now, command: command)
    }

    static func set(_ c: inout CommandCall) throws -> RESPValue {
        let (flags, expireArg) = try parseSetFlags(c.args, from: 3, isSet: true)
        let at = try expireTime(flags, expireArg, now: c.store.now, command: "set")
        let value = c.args[2]
        if flags.isDisjoint(with: [.nx, .xx, .get, .keepTTL]) {
            try putNotifyingNew(c, c.args[1], value, expiresAt: at)
            notify(c, .string, "set", c.args[1])
            if at != nil { notify(c, .generic, "expire", c.args[1]) }
            return .ok
        }
        let server = c.server
        var written = false, created = false
        let reply = try c.store.modify([c.args[1]]) { rows -> RESPValue in
            let old = rows[0]
            var reply = RESPValue.ok
            if flags.contains(.get) { reply = try bulkOrNull(server, try stringRow(old)?.value) }
            if (flags.contains(.nx) && old != nil) || (flags.contains(.xx) && old == nil) {
                return flags.contains(.get) ? reply : .nullBulk
            }
            rows[0] = StoredEntry(value: value, expiresAt: flags.contains(.keepTTL) ? old?.expiresAt : at)
            written = true
            created = old == nil
            return reply
        }
        if created { notify(c, .new, "new", c.args[1]) }
        if written {
            notify(c, .string, "set", c.args[1])
            if at != nil { notify(c, .generic, "expire", c.args[1]) }
        }
        return reply
    }

    static func getex(_ c: inout CommandCall) throws -> RESPValue {
        let (flags, expireArg) = try parseSetFlags(c.args, from: 2, isSet: false)
        let now = c.store.now
        let server = c.server
        let args = c.args
        var event: (KeyspaceEventFlags, String)?
        let reply = try c.store.modify([c.args[1]]) { rows -> RESPValue in
            guard let row = try stringRow(rows[0]) else { return try bulkOrNull(server, nil) }
            let at = try expireTime(flags, expireArg, now: now, command: "getex")
            if let at {
                if at <= now {
                    rows[0] = nil
                    event = (.generic, "del")
                } else {
                    rows[0]!.expiresAt = at
                    event = (.generic, "expire")
                }
            } else if flags.contains(.persist) {
                if row.expiresAt != nil { event = (.generic, "persist") }
                rows[0]!.expiresAt = nil
            }
            _ = args
            return try bulkOrNull(server, row.value)
        }
        if let (type, name) = event { notify(c, type, name, c.args[1]) }
        return reply
    }

    static func incrBy(_ c: inout CommandCall, _ incr: Int64) throws -> RESPValue {
        var created = false
        let reply = try c.store.modify([c.args[1]]) { rows -> RESPValue in
            created = rows[0] == nil
            var value: Int64 = 0
            if let row = try stringRow(rows[0]) {
                guard let v = RedisText.parseInt(row.value) else { throw CommandError.notInteger }
                value = v
            }
            if (incr < 0 && value < 0 && incr < Int64.min - value) || (incr > 0 && value > 0 && incr > Int64.max - value) {
                throw CommandError.overflow
            }
            value += incr
            rows[0] = StoredEntry(value: RedisText.bytes(value), expiresAt: rows[0]?.expiresAt)
            return .integer(value)
        }
        if created { notify(c, .new, "new", c.args[1]) }
        notify(c, .string, "incrby", c.args[1])
        return reply
    }

    /// Stores `value` under `key`; with `new` events enabled, through a read-modify-write
    /// that tells whether the key was created (a `new` event then), else as a blind write.
    static func putNotifyingNew(_ c: CommandCall, _ key: [UInt8], _ value: [UInt8], expiresAt: Int64?) throws {
        guard c.server.keyspace.wants(.new) else {
            try c.store.put(key, value, expiresAt: expiresAt)
            return
        }
        let created = try c.store.modify([key]) { rows -> Bool in
            let created = rows[0] == nil
            rows[0] = StoredEntry(value: value, expiresAt: expiresAt)
            return created
        }
        if created { notify(c, .new, "new", key) }
    }

    /// Publishes a keyspace event for `key` (one atomic load when notifications are off).
    @inline(__always)
    static func notify(_ c: CommandCall, _ type: KeyspaceEventFlags, _ event: String, _ key: [UInt8]) {
        c.server.keyspace.notify(type, event, key)
    }

    /// `row` when it holds a string (or is nil); `-WRONGTYPE` otherwise.
    @inline(__always)
    static func stringRow(_ row: StoredEntry?) throws(CommandError) -> StoredEntry? {
        if let row, row.type != .string { throw CommandError.wrongType }
        return row
    }

    /// The live string row of `key` for a read command: `-WRONGTYPE` for another type; a miss
    /// is a `keymiss` event.
    static func readString(_ c: CommandCall, _ key: [UInt8]) throws -> StoredEntry? {
        try stringRow(try read(c, key))
    }

    /// The live row of `key` for a read command; a miss is a `keymiss` event.
    static func read(_ c: CommandCall, _ key: [UInt8]) throws -> StoredEntry? {
        let row = try c.store.getEntry(key)
        if row == nil { notify(c, .keyMiss, "keymiss", key) }
        return row
    }
}
