import KVProtocol
import KVStore

extension Commands {
    static let keyCommands: [CommandSpec] = [
        CommandSpec("del", -2, ["write"], keys: (1, -1, 1)) { c in try deleteKeys(&c) },
        CommandSpec("unlink", -2, ["write", "fast"], keys: (1, -1, 1)) { c in try deleteKeys(&c) },
        CommandSpec("exists", -2, ["readonly", "fast"], keys: (1, -1, 1)) { c in
            let rows = try readConsistently(c.store, Array(c.args.dropFirst()))
            for (i, row) in rows.enumerated() where row == nil { notify(c, .keyMiss, "keymiss", c.args[i + 1]) }
            return .integer(Int64(rows.filter { $0 != nil }.count))
        },
        CommandSpec("type", 2, ["readonly", "fast"], keys: (1, 1, 1)) { c in
            .simpleString(try read(c, c.args[1])?.type.name ?? "none")
        },
        CommandSpec("expire", -3, ["write", "fast"], keys: (1, 1, 1)) { c in try expire(&c, base: c.store.now, unit: 1000) },
        CommandSpec("pexpire", -3, ["write", "fast"], keys: (1, 1, 1)) { c in try expire(&c, base: c.store.now, unit: 1) },
        CommandSpec("expireat", -3, ["write", "fast"], keys: (1, 1, 1)) { c in try expire(&c, base: 0, unit: 1000) },
        CommandSpec("pexpireat", -3, ["write", "fast"], keys: (1, 1, 1)) { c in try expire(&c, base: 0, unit: 1) },
        CommandSpec("ttl", 2, ["readonly", "fast"], keys: (1, 1, 1)) { c in try ttl(c, unit: 1000) },
        CommandSpec("pttl", 2, ["readonly", "fast"], keys: (1, 1, 1)) { c in try ttl(c, unit: 1) },
        CommandSpec("expiretime", 2, ["readonly", "fast"], keys: (1, 1, 1)) { c in
            guard let row = try read(c, c.args[1]) else { return .integer(-2) }
            guard let t = row.expiresAt else { return .integer(-1) }
            return .integer(t / 1000)
        },
        CommandSpec("pexpiretime", 2, ["readonly", "fast"], keys: (1, 1, 1)) { c in
            guard let row = try read(c, c.args[1]) else { return .integer(-2) }
            return .integer(row.expiresAt ?? -1)
        },
        CommandSpec("persist", 2, ["write", "fast"], keys: (1, 1, 1)) { c in
            let reply = try c.store.modify([c.args[1]]) { rows -> RESPValue in
                guard rows[0]?.expiresAt != nil else { return .zero }
                rows[0]!.expiresAt = nil
                return .one
            }
            if reply == .one { notify(c, .generic, "persist", c.args[1]) }
            return reply
        },
        CommandSpec("keys", 2, ["readonly"]) { c in
            let pattern = c.args[1]
            let all = pattern == [UInt8(ascii: "*")]
            let prefix = Glob.literalPrefix(pattern)
            let scan = prefix.isEmpty ? try c.store.scan() : try c.store.scan(prefix: prefix)
            var out: [RESPValue] = []
            while let (k, _) = try scan.nextEntry() {
                if all || Glob.match(pattern, k) { out.append(.bulk(k)) }
            }
            return .array(out)
        },
        CommandSpec("scan", -2, ["readonly"]) { c in try scan(c) },
        CommandSpec("rename", 3, ["write"], keys: (1, 2, 1)) { c in try rename(&c, nx: false) },
        CommandSpec("renamenx", 3, ["write", "fast"], keys: (1, 2, 1)) { c in try rename(&c, nx: true) },
        CommandSpec("randomkey", 1, ["readonly"]) { c in
            // The store is ordered, not hashed: probe a random point between the first and
            // the last key and take the key at or after it.
            guard let (first, _) = try c.store.scan().nextEntry(), let (last, _) = try c.store.scan(reverse: true).nextEntry() else {
                return .nullBulk
            }
            if let (k, _) = try c.store.scan(from: randomProbe(first, last)).nextEntry() { return .bulk(k) }
            return .bulk(first)
        },
        CommandSpec("dbsize", 1, ["readonly", "fast"]) { c in .integer(Int64(try c.store.count())) },
        CommandSpec("flushdb", -1, ["write"]) { c in try flush(c) },
        CommandSpec("flushall", -1, ["write"]) { c in try flush(c) },
    ]

    static func deleteKeys(_ c: inout CommandCall) throws -> RESPValue {
        var seen = Set<[UInt8]>()
        let keys = c.args.dropFirst().filter { seen.insert($0).inserted }
        // One modify for all keys: readers holding the locks see all or none deleted.
        var deleted: [[UInt8]] = []
        let n = try c.store.modify(keys) { rows -> Int64 in
            var n: Int64 = 0
            for i in rows.indices where rows[i] != nil {
                rows[i] = nil
                deleted.append(keys[i])
                n += 1
            }
            return n
        }
        for k in deleted { notify(c, .generic, "del", k) }
        return .integer(n)
    }

    static func expire(_ c: inout CommandCall, base: Int64, unit: Int64) throws -> RESPValue {
        var nx = false, xx = false, gt = false, lt = false
        for opt in c.args.dropFirst(3) {
            if RedisText.eq(opt, "nx") { nx = true }
            else if RedisText.eq(opt, "xx") { xx = true }
            else if RedisText.eq(opt, "gt") { gt = true }
            else if RedisText.eq(opt, "lt") { lt = true }
            else { throw CommandError("ERR Unsupported option \(String(decoding: opt, as: UTF8.self))") }
        }
        if nx && (xx || gt || lt) { throw CommandError("ERR NX and XX, GT or LT options at the same time are not compatible") }
        if gt && lt { throw CommandError("ERR GT and LT options at the same time are not compatible") }
        var when = try RedisText.int(c.args[2])
        if unit == 1000 {
            if when > Int64.max / 1000 || when < Int64.min / 1000 { throw CommandError.invalidExpire(c.name) }
            when *= 1000
        }
        if when > Int64.max - base { throw CommandError.invalidExpire(c.name) }
        when += base
        let now = c.store.now
        var event = ""
        let reply = try c.store.modify([c.args[1]]) { rows -> RESPValue in
            guard let row = rows[0] else { return .zero }
            let current = row.expiresAt ?? -1
            if nx && current != -1 { return .zero }
            if xx && current == -1 { return .zero }
            if gt && (when <= current || current == -1) { return .zero }
            if lt && current != -1 && when >= current { return .zero }
            if when <= now {
                rows[0] = nil
                event = "del"
            } else {
                rows[0]!.expiresAt = when
                event = "expire"
            }
            return .one
        }
        if !event.isEmpty { notify(c, .generic, event, c.args[1]) }
        return reply
    }

    static func ttl(_ c: CommandCall, unit: Int64) throws -> RESPValue {
        guard let row = try read(c, c.args[1]) else { return .integer(-2) }
        guard let t = row.expiresAt else { return .integer(-1) }
        var left = t - c.store.now
        if left < 0 { left = 0 }
        return .integer(unit == 1000 ? (left + 500) / 1000 : left)
    }

    static func rename(_ c: inout CommandCall, nx: Bool) throws -> RESPValue {
        let src = c.args[1], dst = c.args[2]
        if src == dst {
            guard try c.store.getEntry(src) != nil else { throw CommandError.noSuchKey }
            return nx ? .zero : .ok
        }
        var renamed = false, created = false
        let reply = try c.store.update([src, dst]) { u -> RESPValue in
            guard let row = u.rows[0] else { throw CommandError.noSuchKey }
            if nx && u.rows[1] != nil { return .zero }
            created = u.rows[1] == nil
            if row.type == .string {
                u.setRow(1, row)
            } else {
                // A collection's elements are keyed by its key: copied under a new version.
                try u.copyCollection(0, to: 1)
            }
            u.setRow(0, nil)
            renamed = true
            return nx ? .one : .ok
        }
        if renamed {
            notify(c, .generic, "rename_from", src)
            if created { notify(c, .new, "new", dst) }
            notify(c, .generic, "rename_to", dst)
        }
        return reply
    }

    /// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`. Cursor 0 starts; any other
    /// cursor names a position remembered by the server (see `ScanCursors`); an unknown one
    /// starts again from the beginning, so no key is ever missed.
    static func scan(_ c: CommandCall) throws -> RESPValue {
        let cursorText = String(decoding: c.args[1], as: UTF8.self)
        guard let cursor = UInt64(cursorText), !cursorText.hasPrefix("+") else { throw CommandError.invalidCursor }
        var count = 10
        var pattern: [UInt8]?
        var typeFilter: [UInt8]?
        var j = 2
        while j < c.argc {
            let remaining = c.argc - j - 1
            if RedisText.eq(c.args[j], "count") && remaining >= 1 {
                let n = try RedisText.int(c.args[j + 1])
                if n < 1 { throw CommandError.syntax }
                count = Int(min(n, 1 << 20))
                j += 2
            } else if RedisText.eq(c.args[j], "match") && remaining >= 1 {
                pattern = c.args[j + 1]
                j += 2
            } else if RedisText.eq(c.args[j], "type") && remaining >= 1 {
                typeFilter = c.args[j + 1]
                j += 2
            } else {
                throw CommandError.syntax
            }
        }
        if pattern == [UInt8(ascii: "*")] { pattern = nil }
        var after: [UInt8]?
        if cursor != 0 { after = c.server.cursors.position(cursor) }
        let scan = try c.store.scan(from: after.map { $0 + [0] })
        var keys: [RESPValue] = []
        var last: [UInt8]?
        var examined = 0
        let wanted = typeFilter.map { RedisText.lower($0) }
        while examined < count, let (k, row) = try scan.nextRow() {
            examined += 1
            last = k
            if let wanted, row.type.name != wanted { continue }
            if let pattern, !Glob.match(pattern, k) { continue }
            keys.append(.bulk(k))
        }
        var next: UInt64 = 0
        if let last, examined == count, try scan.nextRow() != nil {
            next = c.server.cursors.remember(last)
        }
        return .array([.bulk(String(next)), .array(keys)])
    }

    static func flush(_ c: CommandCall) throws -> RESPValue {
        if c.argc > 2 { throw CommandError.syntax }
        if c.argc == 2 && !RedisText.eq(c.args[1], "async") && !RedisText.eq(c.args[1], "sync") { throw CommandError.syntax }
        // Delete in chunks through the row write path, so index entries go too. The scan
        // reads a snapshot, so the deletions do not disturb it.
        let scan = try c.store.scan()
        var done = false
        while !done {
            var batch = WriteBatch()
            var n = 0
            while n < 1000 {
                guard let (k, _) = try scan.nextEntry() else {
                    done = true
                    break
                }
                batch.delete(k)
                n += 1
            }
            if n > 0 { try c.store.write(batch) }
        }
        c.server.keyspace.flushed()
        return .ok
    }
}
