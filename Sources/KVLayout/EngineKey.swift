import KVBase

/// How a store lays user keys and its own records out in each shard's engine key space.
///
/// User keys are stored as themselves, except that a user key starting with byte `0xFF` gets
/// one more `0xFF` in front. Engine keys starting with `0xFF` followed by any byte below
/// `0xFF` are therefore free for the store's own records (index entries, expiry entries,
/// shard-local metadata), and user scans skip that one contiguous range. The mapping keeps
/// user-key order: unescaped keys sort below `0xFF`, escaped keys above the reserved range,
/// and among themselves as before. Keys not starting with `0xFF` (nearly all) cost nothing.
///
/// ```
/// engine key := user key                       (user key not starting with 0xFF)
///             | 0xFF user key                  (user key starting with 0xFF)
///             | 0xFF 0x01 meta-name            (shard-local metadata; never moves)
///             | 0xFF 0x02 index-entry          (see IndexKeys; owned by the row's slot)
///             | 0xFF 0x03 expiry-ms:8 BE  escaped(user key)   (expiry entry)
///             | 0xFF 0x04 escaped(user key) version:8 BE kind:1 sub   (collection element;
///                                                           see CollectionLayout)
/// escaped(b) := each byte of b, with 0x00 written as 0x00 0xFF, then 0x00 0x01
/// ```
/// `escaped` is order-preserving and self-delimiting, so records embedding a user key sort by
/// what precedes it and then by the key.
package enum EngineKey {
    /// The first byte of every reserved engine key.
    public static let reservedByte: UInt8 = 0xFF
    /// Tag of shard-local metadata records.
    public static let metaTag: UInt8 = 0x01
    /// Tag of secondary-index entries.
    public static let indexTag: UInt8 = 0x02
    /// Tag of expiry entries.
    public static let expiryTag: UInt8 = 0x03
    /// Tag of collection elements (hash fields, list items, set and sorted-set members).
    public static let elementTag: UInt8 = 0x04

    /// The kind of an engine key.
    public enum Kind: Equatable, Sendable {
        /// A user row.
        case row
        /// A reserved record of the given tag.
        case reserved(UInt8)
    }

    /// Classifies an engine key.
    @inlinable
    public static func kind(_ key: UnsafeRawBufferPointer) -> Kind {
        if key.count >= 2 && key[0] == reservedByte && key[1] != reservedByte { return .reserved(key[1]) }
        return .row
    }

    /// The engine key of a user key: the key itself, or the key with `0xFF` in front when it
    /// starts with `0xFF`.
    @inlinable
    public static func encode(_ user: [UInt8]) -> [UInt8] {
        if user.first == reservedByte { return [reservedByte] + user }
        return user
    }

    /// Runs `body` over the engine key of `user` without copying it in the common case.
    @inlinable
    package static func withEncoded<R>(_ user: [UInt8], _ body: (UnsafeRawBufferPointer) throws(KVError) -> R) throws(KVError) -> R {
        try withBytes(user.first == reservedByte ? [reservedByte] + user : user, body)
    }

    /// The user key of a row's engine key (the inverse of ``encode(_:)``).
    @inlinable
    public static func decodeRow(_ key: UnsafeRawBufferPointer) -> [UInt8] {
        if key.count >= 2 && key[0] == reservedByte { return Array(key[1...]) }
        return Array(key)
    }

    /// The slot of a row's engine key (one that ``kind(_:)`` classifies as a row).
    @inlinable
    public static func slot(ofRow key: UnsafeRawBufferPointer) -> Int {
        if key.first == reservedByte {
            return HashSlot.slot(of: UnsafeRawBufferPointer(rebasing: key[1...]))
        }
        return HashSlot.slot(of: key)
    }

    // MARK: expiry entries

    /// The engine key of the expiry entry for `user` expiring at `expiresAt` (ms since epoch).
    package static func expiryEntry(_ user: [UInt8], at expiresAt: Int64) -> [UInt8] {
        var k: [UInt8] = [reservedByte, expiryTag]
        k.reserveCapacity(12 + user.count + 4)
        appendBigEndian(UInt64(bitPattern: expiresAt) ^ (1 << 63), to: &k)
        appendEscaped(user, to: &k)
        return k
    }

    /// The lower bound of all expiry entries.
    package static let expiryStart: [UInt8] = [reservedByte, expiryTag]

    /// The exclusive upper bound of expiry entries due at or before `now`.
    package static func expiryBound(_ now: Int64) -> [UInt8] {
        var k: [UInt8] = [reservedByte, expiryTag]
        appendBigEndian(UInt64(bitPattern: now &+ 1) ^ (1 << 63), to: &k)
        return k
    }

    /// Decodes an expiry entry: the user key and the expiry time.
    package static func decodeExpiryEntry(_ key: UnsafeRawBufferPointer) -> (user: [UInt8], expiresAt: Int64)? {
        guard key.count > 10, kind(key) == .reserved(expiryTag) else { return nil }
        var t: UInt64 = 0
        for i in 2..<10 { t = t << 8 | UInt64(key[i]) }
        guard let (user, end) = decodeEscaped(key, from: 10), end == key.count else { return nil }
        return (user, Int64(bitPattern: t ^ (1 << 63)))
    }

    // MARK: order-preserving byte strings

    /// Appends `v` big-endian (so byte order equals numeric order for unsigned values).
    public static func appendBigEndian(_ v: UInt64, to out: inout [UInt8]) {
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: v >> UInt64(shift))) }
    }

    /// Appends the escaped, terminated form of `bytes`: `0x00` becomes `0x00 0xFF`, and
    /// `0x00 0x01` ends it. Byte order of escaped strings equals byte order of the strings.
    public static func appendEscaped<C: Collection>(_ bytes: C, to out: inout [UInt8]) where C.Element == UInt8 {
        appendEscapedPrefix(bytes, to: &out)
        out.append(0x00)
        out.append(0x01)
    }

    /// Appends the escaped form of `bytes` without the terminator: a prefix of the escaped
    /// form of every string that starts with `bytes`.
    public static func appendEscapedPrefix<C: Collection>(_ bytes: C, to out: inout [UInt8]) where C.Element == UInt8 {
        for b in bytes {
            out.append(b)
            if b == 0 { out.append(0xFF) }
        }
    }

    /// Decodes an escaped string starting at `start`; returns it and the offset after its
    /// terminator, or nil when the encoding is damaged.
    public static func decodeEscaped(_ key: UnsafeRawBufferPointer, from start: Int) -> ([UInt8], Int)? {
        var out: [UInt8] = []
        var i = start
        while i < key.count {
            let b = key[i]
            if b != 0 {
                out.append(b)
                i += 1
                continue
            }
            guard i + 1 < key.count else { return nil }
            switch key[i + 1] {
            case 0xFF: out.append(0)
            case 0x01: return (out, i + 2)
            default: return nil
            }
            i += 2
        }
        return nil
    }
}
