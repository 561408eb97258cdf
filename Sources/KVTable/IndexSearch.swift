import KVBase

/// A table's index keys as fixed-width numbers, for point lookups that touch a few cache
/// lines instead of binary-searching the index block itself (a walk that misses the cache at
/// almost every step, since each probe decodes an entry somewhere in the block).
///
/// Built when a table opens, from an index block written with restart interval 1 (every
/// entry is a restart point): `common` is the longest prefix shared by the user keys of the
/// index entries (all but perhaps the last, see below), and `prefixes[i]` is the 8 bytes of
/// entry `i`'s user key after `common`, big-endian and zero-padded. For two user keys that
/// share `common`, a smaller prefix means a smaller key; equal prefixes say nothing, and those
/// few entries are compared in full.
/// (For internal-key tables the user key is the key without its 8-byte trailer; keys equal
/// in user key order by trailer, which the full comparison handles.)
///
/// The last index entry is often a short successor of the table's last key ("1" after
/// "0000999"), which shares nothing with the rest: `common` is taken from the other entries,
/// and entries from `shared` on (that last one, when it does not share `common`) are always
/// compared in full.
///
/// Immutable after init; read by any thread.
struct IndexSearch: Sendable {
    let common: [UInt8]
    let prefixes: [UInt64]
    /// Entries `0..<shared` start with `common`.
    let shared: Int
    /// All entries.
    let entries: Int

    /// The search over `index`, or nil when its layout does not allow one (an interval other
    /// than 1, or a key shorter than the trailer in an internal-key table).
    init?(index: Block, order: KeyOrder) throws(KVError) {
        // First pass: count the entries and keep the first, second-to-last and last user keys.
        var cursor = BlockCursor(block: index, order: order)
        var count = 0
        var first: [UInt8] = []
        var previous: [UInt8] = []
        var last: [UInt8] = []
        try cursor.seekToFirst()
        while cursor.isValid {
            let key = cursor.key
            if order == .internalKey && key.count < internalKeyTrailerSize { return nil }
            swap(&previous, &last)
            last.removeAll(keepingCapacity: true)
            last.append(contentsOf: Self.userKey(key, order))
            if count == 0 { first = last }
            count += 1
            try cursor.next()
        }
        guard count == cursor.restartCount else { return nil }
        // Sorted keys: the prefix the first and the second-to-last share is shared by all
        // between them.
        let bound = count >= 2 ? previous : last
        var n = 0
        while n < first.count && n < bound.count && first[n] == bound[n] { n += 1 }
        let common = Array(first[..<n])
        let shared = count > 0 && !last.starts(with: common) ? count - 1 : count
        // Second pass: the prefixes of the entries that share `common`.
        var prefixes: [UInt64] = []
        prefixes.reserveCapacity(shared)
        try cursor.seekToFirst()
        while cursor.isValid && prefixes.count < shared {
            prefixes.append(Self.prefix(Self.userKey(cursor.key, order), after: n))
            try cursor.next()
        }
        self.common = common
        self.shared = shared
        self.prefixes = prefixes
        entries = count
    }

    @inline(__always)
    static func userKey(_ key: UnsafeRawBufferPointer, _ order: KeyOrder) -> UnsafeRawBufferPointer {
        order == .internalKey && key.count >= internalKeyTrailerSize
            ? UnsafeRawBufferPointer(rebasing: key[..<(key.count - internalKeyTrailerSize)]) : key
    }

    /// Bytes `skip..<skip+8` of `key`, big-endian, zero-padded.
    @inline(__always)
    static func prefix(_ key: UnsafeRawBufferPointer, after skip: Int) -> UInt64 {
        var v: UInt64 = 0
        let end = min(key.count, skip + 8)
        var i = skip
        var shift: UInt64 = 56
        while i < end {
            v |= UInt64(key[i]) << shift
            shift &-= 8
            i += 1
        }
        return v
    }

    /// The entries `lo..<hi` whose order against a key of user key `userKey` the prefixes
    /// cannot tell: every entry before `lo` is smaller, every entry from `hi` on is larger.
    @inline(__always)
    func candidates(_ userKey: UnsafeRawBufferPointer) -> (lo: Int, hi: Int) {
        let count = entries
        let n = common.count
        if n > 0 {
            let r = common.withUnsafeBytes { c in compareRaw(userKey.baseAddress, min(userKey.count, n), c.baseAddress, n) }
            // Below every entry: smaller in the shared part, or a proper prefix of it.
            if r < 0 { return (0, 0) }
            // Above every entry that shares the prefix: only the ones after them remain.
            if r > 0 { return (shared, count) }
        }
        let p = Self.prefix(userKey, after: n)
        return prefixes.withUnsafeBufferPointer { a in
            var lo = 0
            var hi = a.count
            while lo < hi {
                let mid = (lo + hi) >> 1
                if a[mid] < p { lo = mid + 1 } else { hi = mid }
            }
            var end = lo
            hi = a.count
            while end < hi {
                let mid = (end + hi) >> 1
                if a[mid] <= p { end = mid + 1 } else { hi = mid }
            }
            // Past every entry that shares the prefix: the ones after them are unknown too.
            return (lo, end == a.count ? count : end)
        }
    }
}
