import KVProtocol
import KVStore

/// What the collection commands (hashes, sets) share: running a command on one key's
/// collection under its lock, full reads, random picks and the SCAN-style cursor.
extension Commands {
    /// The outcome of a write to one collection: the handler's result and whether the key
    /// was created or deleted by it.
    struct CollectionChange<R> {
        var result: R
        var created = false
        var deleted = false
    }

    /// Runs `body` on key `c.args[1]`'s collection of `type` under the key's lock.
    ///
    /// `body` gets the metadata (a new, empty collection when the key is absent and `create`
    /// is set; otherwise nil for an absent key) and changes it in place. When `body` staged any
    /// element change, the metadata is written (a collection left empty deletes the key).
    static func changeCollection<R>(_ c: CommandCall, _ type: ValueType, key: [UInt8]? = nil, create: Bool,
                                    _ body: (KeyedUpdate, inout CollectionMeta?) throws -> R) throws -> CollectionChange<R> {
        try c.store.update([key ?? c.args[1]]) { u -> CollectionChange<R> in
            let existing = try u.collection(0, type)
            var meta = existing ?? (create ? u.newCollection(0, type) : nil)
            let result = try body(u, &meta)
            var change = CollectionChange(result: result)
            if let m = meta, !u.elementsUnchanged {
                u.setCollection(0, m)
                change.created = existing == nil && m.count > 0
                change.deleted = existing != nil && m.count <= 0
            }
            return change
        }
    }

    /// Runs `body` on the collection of `type` under `key` (nil when absent) for a read.
    static func readCollection<R>(_ c: CommandCall, _ type: ValueType, key: [UInt8]? = nil,
                                  _ body: (KeyedUpdate, CollectionMeta?) throws -> R) throws -> R {
        let k = key ?? c.args[1]
        return try c.store.update([k]) { u -> R in
            let meta = try u.collection(0, type)
            if meta == nil { notify(c, .keyMiss, "keymiss", k) }
            return try body(u, meta)
        }
    }

    /// HDEL/SREM: deletes the fields or members from argument 2 of the collection of `type`
    /// at `c.args[1]`; publishes `event` (and `del` when it empties the key); returns how many
    /// there were.
    static func removeElements(_ c: CommandCall, _ type: ValueType, event: String, _ flag: KeyspaceEventFlags) throws -> RESPValue {
        let change = try changeCollection(c, type, create: false) { u, meta -> Int64 in
            guard meta != nil else { return 0 }
            var removed: Int64 = 0
            for e in c.args.dropFirst(2) where try u.element(0, meta!, e) != nil {
                u.deleteElement(0, meta!, e)
                meta!.count -= 1
                removed += 1
            }
            return removed
        }
        if change.result > 0 { notify(c, flag, event, c.args[1]) }
        if change.deleted { notify(c, .generic, "del", c.args[1]) }
        return .integer(change.result)
    }

    /// Every element (member kind) of key `i`'s collection, in sub-key order.
    static func allElements(_ u: KeyedUpdate, _ i: Int, _ m: CollectionMeta) throws -> [(sub: [UInt8], value: [UInt8])] {
        var out: [(sub: [UInt8], value: [UInt8])] = []
        out.reserveCapacity(Int(min(m.count, 1 << 20)))
        try u.scanElements(i, m) { sub, value in
            out.append((Array(sub), Array(value)))
            return true
        }
        return out
    }

    /// Redis's `count` argument of SRANDMEMBER/HRANDFIELD/SPOP-like commands: a count and
    /// whether the picks must be distinct (a negative count allows repeats).
    static func randomCount(_ arg: [UInt8]) throws -> (count: Int, distinct: Bool) {
        let l = try RedisText.int(arg)
        if l == Int64.min { throw outsideLongRange }
        let n = l >= 0 ? l : -l
        // A reply is built whole: a count past this would only exhaust memory.
        if n > maxRandomCount && l < 0 { throw CommandError("ERR value is out of range") }
        return (Int(min(n, Int64(Int.max))), l >= 0)
    }

    /// Redis's `getPositiveLongFromObjectOrReply` without a message: a count of 0 or more
    /// (LPOP, SPOP, ZPOPMIN...); anything else, text included, is out of range.
    static func positiveCount(_ arg: [UInt8]) throws -> Int {
        guard let n = RedisText.parseInt(arg), n >= 0 else { throw CommandError("ERR value is out of range, must be positive") }
        return Int(min(n, Int64(Int.max)))
    }

    /// Redis's message for a number outside `-LONG_MAX ... LONG_MAX`.
    static let outsideLongRange = CommandError("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")

    /// The largest count of repeated random picks one reply may ask for.
    static let maxRandomCount: Int64 = 1 << 24

    /// `count` random elements of key `i`'s collection (distinct ones, at most all of them, or
    /// with repeats). Small collections, and distinct picks of at least half, read everything;
    /// otherwise each pick seeks to a random point between the first and the last element.
    static func randomElements(_ u: KeyedUpdate, _ i: Int, _ m: CollectionMeta, count: Int, distinct: Bool) throws -> [(sub: [UInt8], value: [UInt8])] {
        if count <= 0 || m.count <= 0 { return [] }
        if m.count <= 128 || (distinct && Int64(count) >= m.count / 2) {
            var all = try allElements(u, i, m)
            if all.isEmpty { return [] }
            if distinct {
                all.shuffle()
                return Array(all.prefix(count))
            }
            return (0..<count).map { _ in all.randomElement()! }
        }
        var first: [UInt8] = [], last: [UInt8] = []
        try u.scanElements(i, m) { sub, _ in first = Array(sub); return false }
        try u.scanElements(i, m, reverse: true) { sub, _ in last = Array(sub); return false }
        var out: [(sub: [UInt8], value: [UInt8])] = []
        var seen = Set<[UInt8]>()
        var attempts = 0
        // `count` comes from the client: bound the attempts without multiplying it.
        let maxAttempts = min(count, 1 << 20) * 8 + 64
        while out.count < count && attempts < maxAttempts {
            attempts += 1
            let probe = randomProbe(first, last)
            var got: (sub: [UInt8], value: [UInt8])?
            try u.scanElements(i, m, from: probe) { sub, value in
                got = (Array(sub), Array(value))
                return false
            }
            // Past the last element: draw again. (Wrapping around to the first element would
            // favour the front, and its pops would leave a run of deletions that every later
            // call's walk to the first element crosses.)
            guard let pick = got else { continue }
            if distinct && !seen.insert(pick.sub).inserted { continue }
            out.append(pick)
        }
        if !distinct && out.count < count {
            // Probes that kept landing past the end (a rare layout): repeat what was found.
            if out.isEmpty { try u.scanElements(i, m) { sub, value in out.append((Array(sub), Array(value))); return false } }
            while !out.isEmpty && out.count < count { out.append(out.randomElement()!) }
        }
        if distinct && out.count < count {
            // Unlucky probes: take the rest in order from what was not picked.
            try u.scanElements(i, m) { sub, value in
                let s = Array(sub)
                if !seen.contains(s) {
                    seen.insert(s)
                    out.append((s, Array(value)))
                }
                return out.count < count
            }
        }
        return out
    }

    /// A random byte string between `first` and `last`: their common prefix, a random byte
    /// between theirs at the first position where they differ, then random bytes up to the
    /// longer one's length, each drawn from the range of byte values the two use after the
    /// common prefix. Members are mostly text (digits, letters): uniform random bytes would
    /// fall past the end of each run of them, so every probe would land on one of a few
    /// elements at run starts, and after each pop the next probe there would walk over all
    /// the earlier pops' deletions (quadratic SPOP). Drawn from the members' own range, the
    /// probes spread over the elements.
    static func randomProbe(_ first: [UInt8], _ last: [UInt8]) -> [UInt8] {
        var i = 0
        while i < first.count && i < last.count && first[i] == last[i] { i += 1 }
        var probe = Array(first[..<i])
        var lo = UInt8.max, hi = UInt8.min
        for b in first[i...] { lo = min(lo, b); hi = max(hi, b) }
        for b in last[i...] { lo = min(lo, b); hi = max(hi, b) }
        if lo > hi { (lo, hi) = (0, 255) }
        let from = i < first.count ? first[i] : lo
        let to = i < last.count ? last[i] : hi
        probe.append(UInt8.random(in: min(from, to)...max(from, to)))
        let length = max(first.count, last.count, i + 1)
        while probe.count < length { probe.append(UInt8.random(in: lo...hi)) }
        return probe
    }

    /// A cursor as Redis's `parseScanCursorOrReply` reads it (`strtoul`: a sign is allowed,
    /// `-1` wraps around); an unknown one starts from the beginning.
    static func scanCursor(_ arg: [UInt8]) throws -> UInt64 {
        var digits = arg[...]
        var negative = false
        if let f = digits.first, f == UInt8(ascii: "+") || f == UInt8(ascii: "-") {
            negative = f == UInt8(ascii: "-")
            digits = digits.dropFirst()
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0 >= 48 && $0 <= 57 }),
              let v = UInt64(String(decoding: digits, as: UTF8.self)) else { throw CommandError.invalidCursor }
        return negative ? 0 &- v : v
    }

    /// `HSCAN`/`SSCAN key cursor [MATCH pattern] [COUNT count]`: the cursor names the last
    /// element returned (remembered by the server, as SCAN's); calls `emit` for each element
    /// that matches. Returns the next cursor (0 at the end).
    static func scanCollection(_ c: CommandCall, _ type: ValueType,
                               _ emit: (_ sub: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) -> Void) throws -> UInt64 {
        let cursor = try scanCursor(c.args[2])
        // Redis's order: the cursor, then the key (absent: an empty scan; another type:
        // WRONGTYPE), then the options.
        return try readCollection(c, type) { u, meta -> UInt64 in
            guard let meta else { return 0 }
            var count = 10
            var pattern: [UInt8]?
            var j = 3
            while j < c.argc {
                if RedisText.eq(c.args[j], "count") && j + 1 < c.argc {
                    let n = try RedisText.int(c.args[j + 1])
                    if n < 1 { throw CommandError.syntax }
                    count = Int(min(n, 1 << 20))
                } else if RedisText.eq(c.args[j], "match") && j + 1 < c.argc {
                    pattern = c.args[j + 1]
                } else {
                    throw CommandError.syntax
                }
                j += 2
            }
            if pattern == [UInt8(ascii: "*")] { pattern = nil }
            let after = cursor == 0 ? nil : c.server.cursors.position(cursor)
            var examined = 0
            var last: [UInt8]?
            var more = false
            try u.scanElements(0, meta, from: after.map { $0 + [0] }) { sub, value in
                if examined == count {
                    more = true
                    return false
                }
                examined += 1
                if pattern == nil || Glob.match(pattern!, Array(sub)) { emit(sub, value) }
                last = Array(sub)
                return true
            }
            guard more, let last else { return 0 }
            return c.server.cursors.remember(last)
        }
    }
}
